"""Run one benchmark child and measure it: wall time, its own peak RSS, exit status and output.

Peak RSS is read by GNU time (``/usr/bin/time -f %M``, Debian package ``time``, which
``./build.sh setup`` installs) wrapped around the command, not by our own ``os.wait4``: on Linux
a child's ``ru_maxrss`` starts at its parent's high-water mark, because at exec the kernel folds
the replaced address space's peak (the benchmark parent's, forked or vforked, ~55-60 MB) into
the process's maximum: ``python3 -c pass`` and ``storescu`` reported the parent's ~55 MB.
GNU time is exec'd with that inheritance, but its own address space is ~1 MB, and the command
is its child, so the ``ru_maxrss`` that time reads from ``wait4`` is the command's own (the
largest of it and the children it waited for, e.g. worker processes): ``python3 -c pass`` 8 MB,
``storescu`` 13-16 MB, a child that touches 200 MB 208 MB (tests/unit/test_benchmark_measure.py).
``VmHWM`` in ``/proc/<pid>/status`` is per address space and would be right too, but it is gone
once the process exits (a zombie has none): reading it needs polling, which misses the last
peak, or ptrace. A launcher of our own would repeat what time does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True)
class Measured:
    """One child's run: wall seconds, peak RSS (KiB), exit status as ``Popen.returncode``
    (negative: killed by that signal), and its stdout and stderr (decoded, whole)."""

    wall_s: float
    peak_rss_kib: int
    exit: int
    stdout: str
    stderr: str

    @property
    def peak_rss_mib(self) -> float:
        return round(self.peak_rss_kib / 1024, 1)

    def checked(self, what: str) -> Measured:
        """This run, if it exited 0; else RuntimeError naming ``what`` with the end of its output."""
        if self.exit != 0:
            raise RuntimeError(f"{what}: exit {self.exit}\n{self.stdout[-1000:]}{self.stderr[-3000:]}")
        return self


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` (with ``env``, default ours) to its end and measure it (see the module doc)."""
    if not os.access(GNU_TIME, os.X_OK):
        raise RuntimeError(f"{GNU_TIME} (GNU time, Debian package 'time') is needed to measure peak RSS; "
                           "./build.sh setup installs it")
    path = env.get("PATH") if env is not None else None
    if shutil.which(cmd[0], path=path) is None:  # as Popen would, rather than time's exit 127
        raise FileNotFoundError(f"{cmd[0]}: not found")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", prefix="rss-", suffix=".txt") as report:
        started = time.monotonic()
        code = subprocess.run([str(GNU_TIME), "-f", "%M", "-o", report.name, *cmd], env=env, stdout=out,
                              stderr=err, check=False).returncode
        wall = time.monotonic() - started
        lines = report.read().splitlines() or [""]
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if not lines[-1].isdigit():
        raise RuntimeError(f"{GNU_TIME} measured nothing (exit {code}): {lines}\n{stderr[-2000:]}")
    signalled = [line for line in lines if line.startswith("Command terminated by signal ")]
    if signalled:
        code = -int(signalled[0].rsplit(" ", 1)[1])
    return Measured(round(wall, 3), int(lines[-1]), code, stdout, stderr)
