"""A scripted HTTP server on 127.0.0.1 for the client and runtime unit tests.

Each ``(METHOD, path)`` gets a queue of replies; the last one repeats. A reply is a
:class:`Reply` (status, body, headers), :data:`DROP` (close the connection without answering)
or :class:`Slow` (answer after a pause). Every request is recorded.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Slow:
    seconds: float
    reply: Reply = field(default_factory=Reply)


@dataclass
class Dribble:
    """Answer ``reply`` one byte every ``interval`` seconds, from the status line on."""

    interval: float
    reply: Reply = field(default_factory=Reply)


@dataclass
class Cut:
    """Send ``reply``'s headers and the first ``keep`` bytes of its body, then close."""

    keep: int
    reply: Reply = field(default_factory=Reply)
    #: announce the full length (a dropped answer) or none (a short body that looks complete)
    announce_length: bool = True


@dataclass
class Trickle:
    """Send ``reply``'s headers at once, then its body ``step`` bytes every ``interval`` seconds."""

    interval: float
    step: int
    reply: Reply = field(default_factory=Reply)
    announce_length: bool = True


DROP = "drop"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client_port: int


def xnatpy_routes(server: FakeServer) -> None:
    """The endpoints ``xnat.connect(..., no_parse_model=True)`` needs (xnatpy-internals §1), as
    user alice, and an empty project listing."""
    server.route("GET", "/", Reply(200, "<html>XNAT</html>"))
    server.route("PUT", "/data/services/auth", Reply(200, "ABCDEF0123456789"))
    server.route("GET", "/data/auth", Reply(200, "User 'alice' is logged in"))
    server.route("GET", "/data/JSESSION", Reply(200, "ABCDEF0123456789"))
    server.route("DELETE", "/data/JSESSION", Reply(200, ""))
    server.route("GET", "/data/projects", Reply(200, {"ResultSet": {"Result": []}}))


class FakeServer:
    """``with FakeServer() as srv: srv.route("GET", "/data/x", Reply(...)); srv.url``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[tuple[str, str], list[Any]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def route(self, method: str, path: str, *replies: Any) -> None:
        self.routes[(method.upper(), path)] = list(replies)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def _next(self, method: str, path: str) -> Any:
        with self._lock:
            queue = self.routes.get((method, path))
            if not queue:
                return Reply(404, "<html><body><h3>Not found</h3></body></html>")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one segment (no delayed-ACK stalls)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake._lock:
                    fake.seen.append(Seen(self.command, parts.path, dict(parse_qsl(parts.query)),
                                          dict(self.headers.items()), body,
                                          int(self.client_address[1])))
                reply = fake._next(self.command, parts.path)
                if reply == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(reply, Slow):
                    time.sleep(reply.seconds)
                    reply = reply.reply
                if isinstance(reply, Dribble | Cut | Trickle):
                    self._raw(reply)
                    return
                payload, kind = reply.payload()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get("Content-Type", kind))
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    if key != "Content-Type":
                        self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _raw(self, special: Dribble | Cut | Trickle) -> None:
                payload, kind = special.reply.payload()
                kind = special.reply.headers.get("Content-Type", kind)
                length = (f"Content-Length: {len(payload)}\r\n"
                          if isinstance(special, Dribble) or special.announce_length else "")
                head = (f"HTTP/1.1 {special.reply.status} X\r\nContent-Type: {kind}\r\n{length}"
                        "Connection: close\r\n\r\n").encode()
                self.close_connection = True
                try:
                    if isinstance(special, Cut):
                        self.connection.sendall(head + payload[:special.keep])
                    elif isinstance(special, Trickle):
                        self.connection.sendall(head)
                        for i in range(0, len(payload), special.step):
                            time.sleep(special.interval)
                            self.connection.sendall(payload[i:i + special.step])
                    else:
                        for i in range(len(head + payload)):
                            self.connection.sendall((head + payload)[i:i + 1])
                            time.sleep(special.interval)
                except OSError:
                    pass
                self.connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        return Handler

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
