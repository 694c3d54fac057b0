"""How ``validate-command-json``'s run time grows with the number of command inputs.

Each case is one command whose ``inputs`` hold N string inputs, each with its own bracketed
replacement key on the command line; with ``--shape wrapper`` (the default) one wrapper's N
derived inputs feed them (the shape of a large generated command), with ``--shape inputs`` the
command has no wrapper. The time is that of ``validate_text`` on the JSON text, best of
``--repeat`` runs, in this process. Linear growth keeps the time per input flat as N grows.

Usage::

    python benchmarks/validate_command_json.py [--sizes 1000 5000 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

from xnatnode.commandjson import validate_text


def document(n: int, shape: str = "wrapper") -> str:
    """A valid command with ``n`` inputs (fed by ``n`` derived wrapper inputs), as JSON text."""
    inputs: list[dict[str, Any]] = []
    derived: list[dict[str, Any]] = []
    keys: list[str] = []
    for i in range(n):
        key = f"#IN{i}#"
        keys.append(key)
        inputs.append(
            {"name": f"in{i}", "type": "string", "replacement-key": key,
             "command-line-flag": f"--in{i}", "required": False}
        )
        derived.append(
            {"name": f"d{i}", "type": "string", "derived-from-wrapper-input": "session",
             "derived-from-xnat-object-property": "label", "user-settable": False,
             "provides-value-for-command-input": f"in{i}"}
        )
    command = {
        "name": "many-inputs", "version": "1.0", "image": "xnatnode/bench:1.0", "type": "docker",
        "command-line": "probe " + " ".join(keys),
        "xnat": [{
            "name": "many-inputs", "description": "benchmark", "contexts": ["xnat:imageSessionData"],
            "external-inputs": [{"name": "session", "type": "Session", "required": True}],
            "derived-inputs": derived,
        }],
        "inputs": inputs,
    }  # fmt: skip
    if shape == "inputs":
        del command["xnat"]
    return json.dumps(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", choices=("wrapper", "inputs"), default="wrapper")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, shape {args.shape}, "
          f"{args.repeat} runs, best")
    print("| inputs | seconds | µs per input | findings |")
    print("|---:|---:|---:|---:|")
    for n in args.sizes:
        text = document(n, args.shape)
        best = float("inf")
        findings = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = validate_text(text, route="post")
            best = min(best, time.perf_counter() - started)
            findings = len(report.findings)
        print(f"| {n} | {best:.2f} | {best / n * 1e6:.0f} | {findings} |")


if __name__ == "__main__":
    main()
