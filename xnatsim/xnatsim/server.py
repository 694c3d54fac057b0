"""The HTTP server: a threaded HTTP/1.1 server dispatching to the route table.

Route modules are listed in :data:`ROUTE_MODULES`; each defines ``register(router)`` and may define
``setup(app)`` (called once the :class:`App` exists, e.g. to add a store listener or keep state in
``app.state``). Other parts of xnatsim add their module name to the tuple (one line).
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import logging
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from xnatsim import __version__
from xnatsim.controls import Controls
from xnatsim.httpbody import BoundedReader, dechunk
from xnatsim.routing import (
    Auth,
    Credentials,
    HTTPError,
    Query,
    Request,
    Response,
    Router,
    normalize_path,
)
from xnatsim.serverconfig import ServerConfig as ServerConfig  # re-exported: its old home
from xnatsim.store import Store, StoreError

log = logging.getLogger("xnatsim.server")

#: Route modules, imported in order; each has ``register(router)`` and optionally ``setup(app)``.
ROUTE_MODULES: tuple[str, ...] = (
    "xnatsim.rest.control",
    "xnatsim.rest.auth",
    "xnatsim.rest.site",
    "xnatsim.rest.projects",
    "xnatsim.rest.subjects",
    "xnatsim.rest.experiments",
    "xnatsim.rest.scans",
    "xnatsim.rest.resources",
    "xnatsim.rest.files",
    "xnatsim.rest.config",
    "xnatsim.rest.search",
    "xnatsim.rest.refresh",
    "xnatsim.cs.routes",
    "xnatsim.events.routes",
    "xnatsim.dicomdump",
    "xnatsim.importer",
    "xnatsim.prearchive",
    "xnatsim.rest.dicomscp",
)

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"


class App:
    """The running simulator: config, store, routes, test controls and extension state."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store(config.data_dir, site_id=config.site_id)
        if not self.store.user_exists(ADMIN_USER):
            self.store.add_user(ADMIN_USER, ADMIN_PASSWORD, admin=True, first_name="Admin", last_name="User")
        self.controls = Controls(config.latency_ms, config.fail_rate, config.fail_every, config.drop_every,
                                 config.fail_status)
        #: free-form state for route modules (``app.state["cs"] = …``)
        self.state: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []
        #: the base URL once the server listens (``http://127.0.0.1:8080``)
        self.url = ""
        self.router = Router()
        modules = [importlib.import_module(name) for name in ROUTE_MODULES]
        for module in modules:
            module.register(self.router)
        for module in modules:
            setup = getattr(module, "setup", None)
            if setup is not None:
                setup(self)

    # -- authentication -------------------------------------------------------------

    def authenticate(self, headers: dict[str, str],
                     cookies: dict[str, str]) -> tuple[Credentials | None, str | None]:
        """``(credentials, new_session_id)`` from the JSESSIONID cookie or HTTP Basic credentials.

        Raises 401 for Basic credentials that do not check out. Basic auth without a valid cookie
        creates a new session (as XNAT does); its id comes back so the caller sets the cookie. A
        session made with an alias token is bound to it and ends with it.
        """
        sid = cookies.get("JSESSIONID")
        if sid:
            found = self.store.session_login(sid)
            if found is not None:
                return Credentials(*found), None
        header = headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            try:
                login, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise HTTPError(401, "Authentication failed.", _CHALLENGE) from exc
            credentials = self.check_credentials(login, password)
            if credentials is None:
                raise HTTPError(401, "Authentication failed.", _CHALLENGE)
            return credentials, self.store.create_session(credentials.user, token=credentials.token)
        return None, None

    def admit(self, auth: Auth, headers: dict[str, str],
              cookies: dict[str, str]) -> tuple[Credentials | None, str | None]:
        """:meth:`authenticate` as a route's ``auth`` requires: 401 without a user unless public,
        403 for non-admins on admin routes; bad credentials on a public route count as none."""
        try:
            credentials, new_session = self.authenticate(headers, cookies)
        except HTTPError:
            if auth != "public":
                raise
            credentials, new_session = None, None
        if credentials is None and auth != "public":
            raise HTTPError(401, "Authentication required.", _CHALLENGE)
        if auth == "admin" and not self.store.is_admin(credentials.user if credentials else None):
            raise HTTPError(403, "Only site administrators can do this.")
        return credentials, new_session

    def check_credentials(self, login: str, password: str) -> Credentials | None:
        """The user for a login/password pair, or the user and token for an alias token (alias, secret)."""
        if self.store.check_password(login, password):
            return Credentials(login)
        user = self.store.validate_token(login, password)
        return Credentials(user, token=login) if user is not None else None

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the app closes (route modules stop their services this way)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Stop what route modules started (last started, first stopped), then the store."""
        while self._closers:
            self._closers.pop()()
        self.store.close()


_CHALLENGE = {"WWW-Authenticate": 'Basic realm="XNAT"'}

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict", 413: "Request Entity Too Large",
            415: "Unsupported Media Type", 417: "Expectation Failed", 422: "Unprocessable Entity",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


_TOKEN_SECRET = re.compile(r"(/services/tokens/(?:validate|invalidate)/[^/?\s]+/)[^/?\s]+")


def redact(text: str) -> str:
    """Hide alias-token secrets that travel in URL paths (token validate/invalidate)."""
    return _TOKEN_SECRET.sub(r"\1******", text)


def error_page(status: int, message: str) -> bytes:
    """Restlet's default status page (the text XNAT sends with an error status)."""
    return (
        "<html>\n<head>\n   <title>Status page</title>\n</head>\n<body>\n"
        f"<h3>{escape(message)}</h3>\n"
        "<p>You can get technical details <a href=\"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html\">here"
        "</a>.<br>\nPlease continue your visit at our <a href=\"/\">home page</a>.\n</p>\n</body>\n</html>\n"
    ).encode()


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "xnatsim/" + __version__
    sys_version = ""
    server: XnatSimServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.app.config.idle_timeout or None)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_expect_100(self) -> bool:
        """Refuse an oversize body before the client sends it (else: ``100 Continue``)."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        limit = self.server.app.config.max_body
        if length > limit:
            path = urlsplit(self.path).path or "/"
            if not path.startswith("/xnatsim/"):
                matched = self.server.app.router.match(self.command, path)
                route = matched[0].name if matched else f"{self.command} <unmatched>"
                self.server.app.controls.refused(self.command, redact(path), route, 413)
            page = error_page(413, f"Request body too large ({length} > {limit} bytes).")
            self.send_response(413, _REASONS[413])
            self.send_header("Content-Type", "text/html;charset=UTF-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(page)
            self.close_connection = True
            return False
        return super().handle_expect_100()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.app.config.log_requests:
            log.info("%s - %s", self.address_string(), redact(format % args))

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def _dispatch(self) -> None:
        app = self.server.app
        started = time.perf_counter()
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        method = self.command
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = 0
        if "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                length = -1
        body = BoundedReader(self.rfile, max(length, 0))
        matched = app.router.match(method, raw_path)
        route_name = matched[0].name if matched else f"{method} <unmatched>"
        controlled = not raw_path.startswith("/xnatsim/")
        if controlled:
            decision = app.controls.before_request(route_name)
            if decision == "drop":
                app.controls.after_request(method, redact(raw_path), route_name, 0, time.perf_counter() - started)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
        else:
            decision = "ok"
        status = 500
        spool: IO[bytes] | None = None
        try:
            if decision == "fail":
                raise HTTPError(app.controls.fail_status, "Simulated failure (xnatsim fault injection).")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                spool = tempfile.TemporaryFile(dir=app.store.tmp_dir)  # noqa: SIM115 - closed after the reply
                length = dechunk(self.rfile, spool, app.config.max_body, self)
                spool.seek(0)
                body = BoundedReader(spool, length)
            if length < 0:
                raise HTTPError(400, "Invalid Content-Length.")
            if length > app.config.max_body:
                self.close_connection = True
                raise HTTPError(413, f"Request body too large ({length} > {app.config.max_body} bytes).")
            if matched is None:
                raise HTTPError(404, "The requested resource does not exist.")
            if matched is False:
                raise HTTPError(405, "Method Not Allowed")
            route, params = matched
            cookies = _cookies(headers.get("cookie", ""))
            credentials, new_session = app.admit(route.auth, headers, cookies)
            user = credentials.user if credentials else None
            request = Request(method, _normalized(raw_path), raw_path, Query(split.query), headers, body, length,
                              app, params, user, route.name, cookies, credentials.token if credentials else None)
            response = route.handler(request)
            if new_session and "Set-Cookie" not in response.headers:
                response.headers["Set-Cookie"] = f"JSESSIONID={new_session}; Path=/; HttpOnly"
        except HTTPError as exc:
            response = Response(exc.status, error_page(exc.status, exc.message), "text/html;charset=UTF-8",
                                dict(exc.headers))
        except StoreError as exc:
            response = Response(exc.status, error_page(exc.status, exc.message), "text/html;charset=UTF-8")
        except TimeoutError:  # the client stalled mid-body for longer than idle_timeout
            self.close_connection = True
            response = Response(408, error_page(408, "Request timed out."), "text/html;charset=UTF-8")
        except Exception:
            log.exception("internal error on %s %s", method, raw_path)
            response = Response(500, error_page(500, "Internal Server Error"), "text/html;charset=UTF-8")
        if not body.drain():
            self.close_connection = True
        if spool is not None:
            spool.close()
        status = response.status
        if controlled:
            # recorded before the reply goes out, so a client that reads /xnatsim/stats right after
            # its last reply always finds that request's status and log entry there
            app.controls.after_request(method, redact(raw_path), route_name, status, time.perf_counter() - started)
        try:
            self._send(response, head=method == "HEAD")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: Response, *, head: bool) -> None:
        self.send_response(response.status, _REASONS.get(response.status))
        self.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if isinstance(response.body, bytes):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if not head:
                self.wfile.write(response.body)
            return
        if head:
            if "Content-Length" not in response.headers:
                self.send_header("Content-Length", "0")
            self.end_headers()
            _close_iter(response.body)
            return
        if "Content-Length" in response.headers:
            self.end_headers()
            try:
                for chunk in response.body:
                    self.wfile.write(chunk)
            finally:
                _close_iter(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            _close_iter(response.body)


def _close_iter(body: Iterator[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _normalized(raw_path: str) -> str:
    return unquote(normalize_path(raw_path))


def _cookies(header: str) -> dict[str, str]:
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


class XnatSimServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` carrying the :class:`App`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: App) -> None:
        self.app = app
        super().__init__((app.config.host, app.config.port), RequestHandler)
        host, port = self.server_address[:2]
        app.url = f"http://{host!s}:{port}"


def make_server(config: ServerConfig, store: Store | None = None) -> XnatSimServer:
    """Build the app and bind the socket (``config.port=0`` picks a free port; see ``.app.url``)."""
    app = App(config, store)
    try:
        return XnatSimServer(app)
    except BaseException:
        app.close()
        raise


def serve_in_thread(server: XnatSimServer) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread; stop with :func:`stop_in_thread`."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="xnatsim-server", daemon=True)
    thread.start()
    return thread


def stop_in_thread(server: XnatSimServer, thread: threading.Thread | None) -> None:
    """Stop a server started by :func:`serve_in_thread`, then close its app."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=10)
    server.app.close()
