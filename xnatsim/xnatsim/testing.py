"""Start and stop an xnatsim server from tests and benchmarks.

::

    with running_server(tmp_path) as server:
        server.session().get(server.url + "/data/projects")  # logged in as admin
        assert server.stats()["requests"] == 1

``in_process=True`` (default) serves from a thread of the calling process (``server.app`` and
``server.store`` are the live objects). ``in_process=False`` runs ``python -m xnatsim serve`` as a
subprocess bound to 127.0.0.1 (benchmarks; containers using host networking); ``server.store``
then opens the same data folder from this process (SQLite WAL allows that; listeners registered
here do not see the server's changes).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatsim.server import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    App,
    ServerConfig,
    XnatSimServer,
    make_server,
    serve_in_thread,
    stop_in_thread,
)
from xnatsim.store import Store

if TYPE_CHECKING:
    import requests

START_TIMEOUT = 60.0


@dataclass
class Server:
    """A running server: where it is, who may log in, and its test controls."""

    url: str
    data_dir: Path
    user: str = ADMIN_USER
    password: str = ADMIN_PASSWORD
    #: the live app when in process, else None
    app: App | None = None
    process: subprocess.Popen[bytes] | None = None
    _store: Store | None = field(default=None, repr=False)
    _httpd: XnatSimServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self.app is not None:
            return self.app.store
        if self._store is None:
            self._store = Store(self.data_dir)
        return self._store

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            result: dict[str, Any] = json.loads(resp.read())
        return result

    def stats(self, *, with_log: bool = False) -> dict[str, Any]:
        """``{"requests": N, "routes": {"GET /data/projects": n, …}, "statuses": {…}, …}``."""
        return self._control("GET", "/xnatsim/stats" + ("?log=true" if with_log else ""))

    def reset_stats(self) -> None:
        self._control("POST", "/xnatsim/stats/reset")

    def session(self) -> requests.Session:
        """A ``requests`` session logged in as this server's admin (Basic auth on every request)."""
        import requests  # only tests and benchmarks need it

        session = requests.Session()
        session.auth = (self.user, self.password)
        return session

    def set_faults(self, **values: float) -> dict[str, Any]:
        """e.g. ``set_faults(fail_every=3)``, ``set_faults(latency_ms=0, drop_every=0)``."""
        return self._control("POST", "/xnatsim/faults", values)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@contextlib.contextmanager
def running_server(data_dir: str | Path | None = None, *, port: int = 0, latency_ms: float = 0,
                   seed: str | None = None, in_process: bool = True, schema_cache: Path | None = None,
                   **config: Any) -> Iterator[Server]:
    """Run a server on 127.0.0.1 for the duration of the ``with`` block.

    ``data_dir=None`` uses a temporary folder removed afterwards. Extra keyword arguments are
    :class:`~xnatsim.server.ServerConfig` fields (``fail_every``, ``max_body``, ``strict_labels`` …).
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="xnatsim-"))
        folder = Path(data_dir)
        if in_process:
            server = _start_in_process(folder, port, latency_ms, seed, schema_cache, config)
        else:
            server = _start_subprocess(folder, port, latency_ms, seed, schema_cache, config)
        try:
            yield server
        finally:
            server.close()
            if server.process is not None:
                _stop_process(server.process)
            elif server.app is not None:
                _stop_thread(server)


def _start_in_process(folder: Path, port: int, latency_ms: float, seed: str | None, schema_cache: Path | None,
                      config: dict[str, Any]) -> Server:
    cfg = ServerConfig(data_dir=folder, host="127.0.0.1", port=port, latency_ms=latency_ms,
                       schema_cache=schema_cache, **config)
    httpd = make_server(cfg)
    if seed:
        from xnatsim import seed as seed_module

        seed_module.apply(httpd.app.store, seed)
    thread = serve_in_thread(httpd)
    return Server(httpd.app.url, folder, app=httpd.app, _httpd=httpd, _thread=thread)


def _stop_thread(server: Server) -> None:
    assert server.app is not None
    assert server._httpd is not None
    stop_in_thread(server._httpd, server._thread)


def _start_subprocess(folder: Path, port: int, latency_ms: float, seed: str | None, schema_cache: Path | None,
                      config: dict[str, Any]) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    ready = folder / f".ready-{os.getpid()}-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "xnatsim", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data", str(folder), "--latency-ms", str(latency_ms), "--ready-file", str(ready)]
    if seed:
        cmd += ["--seed", seed]
    if schema_cache:
        cmd += ["--schema-cache", str(schema_cache)]
    flags = {"fail_rate": "--fail-rate", "fail_every": "--fail-every", "drop_every": "--drop-every",
             "fail_status": "--fail-status", "site_id": "--site-id", "idle_timeout": "--idle-timeout",
             "dicom_port": "--dicom-port", "dicom_ae": "--dicom-ae",
             "dicom_processes": "--dicom-processes", "session_idle_seconds": "--session-idle-seconds"}
    for key, value in config.items():
        if key in flags:
            cmd += [flags[key], str(value)]
        elif key == "max_body":
            cmd += ["--max-body-mb", str(value / 1024 / 1024)]
        elif key == "strict_labels" and value:
            cmd.append("--strict-labels")
        elif key == "fetch_schemas" and not value:
            cmd.append("--no-fetch-schemas")
        else:
            raise TypeError(f"running_server(in_process=False) does not support {key}=")
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"xnatsim serve exited with status {process.returncode}")
        if time.monotonic() > deadline:
            _stop_process(process)
            raise RuntimeError("xnatsim serve did not start in time")
        time.sleep(0.05)
    url = ready.read_text(encoding="utf-8").strip()
    ready.unlink(missing_ok=True)
    return Server(url, folder, process=process)


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class Api:
    """A ``requests`` session against the session's xnatsim, logged in as admin with Basic auth."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.url
        self.session = server.session()
        self._counter = 0

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self("DELETE", path, **kwargs)

    def new_project(self, prefix: str = "P") -> str:
        """Create a project with a fresh ID and return the ID."""
        self._counter += 1
        project = f"{prefix}{self._counter}_{uuid.uuid4().hex[:6]}"
        response = self.put(f"/data/projects/{project}", params={"xsiType": "xnat:projectData"})
        assert response.status_code == 200, response.text
        return project
