"""What the Container Service / Event Service CLI commands share: where xnatsim is, and a client.

Every command talks REST, as an admin's tools would: to a running server (``--url``), or to one it
starts for the duration of the command on a data folder (``--data``; containers then reach it on
127.0.0.1). The password comes from ``XNATSIM_PASSWORD`` (default ``admin``), never from argv.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

__all__ = ["CLIError", "Client", "add_connection_arguments", "connect", "print_json"]


class CLIError(Exception):
    """A failure to report to the user (message) with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--url", help="a running xnatsim (http://127.0.0.1:8080)")
    group.add_argument("--data", type=Path, help="data folder: start xnatsim on it for this command")
    parser.add_argument("--user", default="admin", help="login (password from $XNATSIM_PASSWORD, default admin)")


class Client:
    """Minimal JSON-over-HTTP client for xnatsim's ``/xapi`` routes."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": "Basic " + token}

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
                *, raw: bool = False) -> Any:
        """The decoded JSON answer (text when not JSON, bytes with ``raw``); CLIError on >= 400."""
        url = self.url + path + ("?" + urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                payload = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            raise CLIError(f"{method} {path} failed ({exc.code}): {_strip_html(text)}") from exc
        except urllib.error.URLError as exc:
            raise CLIError(f"cannot reach {self.url}: {exc.reason}") from exc
        if raw:
            return payload
        if "json" in ctype and payload:
            return json.loads(payload)
        return payload.decode("utf-8", "replace")


def _strip_html(text: str) -> str:
    if "<h3>" in text:
        return text.split("<h3>", 1)[1].split("</h3>", 1)[0]
    return text.strip()


@contextlib.contextmanager
def connect(args: argparse.Namespace) -> Iterator[Client]:
    """A client for ``--url``, or for a server started on ``--data`` (stopped afterwards)."""
    password = os.environ.get("XNATSIM_PASSWORD", "admin")
    if args.url:
        yield Client(args.url, args.user, password)
        return
    from xnatsim.server import ServerConfig, make_server, serve_in_thread, stop_in_thread

    config = ServerConfig(data_dir=args.data, host="127.0.0.1", port=0, fetch_schemas=False)
    server = make_server(config)
    thread = serve_in_thread(server)
    try:
        yield Client(server.app.url, args.user, password)
    finally:
        stop_in_thread(server, thread)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")
