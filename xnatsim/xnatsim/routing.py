"""How a module adds HTTP routes to xnatsim.

A route module is any importable module with a ``register(router: Router) -> None`` function;
the server imports every name in :data:`xnatsim.server.ROUTE_MODULES` and calls it. Declare the
handlers at module level on a :class:`Routes` table, so tools and tests can import and call them,
and let the table register them::

    routes = Routes()

    @routes.route("GET", "/data/projects/{project}/things/{rest:path}")
    def things(request: Request) -> Response:
        return Response.json({"project": request.params["project"]})

    register = routes.register

Path patterns are matched against the **decoded** request path after the legacy prefixes
``/data/archive/`` and ``/REST/`` have been rewritten to ``/data/`` (XNAT registers every archive
route under both). ``{name}`` matches one path segment, ``{name:path}`` the rest of the path
(may contain ``/``). Each segment is percent-decoded on its own, so a ``%2F`` inside a segment
reaches the handler as ``/`` inside one parameter and can be rejected there.

Handlers return a :class:`Response` or raise :class:`HTTPError`; ``auth`` on a route says who may
call it: ``"user"`` (default: any authenticated user, else 401), ``"public"`` (anyone; the user is
still resolved when credentials are sent) or ``"admin"`` (site admins, else 403).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    from xnatsim.controls import Controls
    from xnatsim.serverconfig import ServerConfig
    from xnatsim.store import Store

Auth = Literal["user", "public", "admin"]
Handler = Callable[["Request"], "Response"]

#: Legacy URL prefixes rewritten to ``/data/`` before matching (longest first).
ALIASES: tuple[tuple[str, str], ...] = (("/data/archive/", "/data/"), ("/REST/", "/data/"))


class Body(Protocol):
    """The request body stream (bounded to Content-Length by the server)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class Site(Protocol):
    """What a handler reaches through ``request.app``: the running simulator
    (:class:`xnatsim.server.App`, which imports this module, so it is named here by its shape)."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def controls(self) -> Controls: ...

    @property
    def router(self) -> Router: ...

    #: free-form state of route modules (``state["cs"]``, set in their ``setup(app)``)
    @property
    def state(self) -> dict[str, Any]: ...

    @property
    def url(self) -> str: ...

    def check_credentials(self, login: str, password: str) -> Credentials | None: ...


class HTTPError(Exception):
    """Raise from a handler to answer with ``status`` and XNAT's HTML status page."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Query:
    """Form-decoded query parameters (``+`` is a space), in order, repeated keys kept."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.items: list[tuple[str, str]] = parse_qsl(raw, keep_blank_values=True)
        self._last: dict[str, str] = {}
        self._lower: dict[str, str] = {}
        for key, value in self.items:
            self._last[key] = value
            self._lower[key.lower()] = value

    def get(self, key: str, default: str | None = None) -> str | None:
        """The last value of ``key`` (exact name), or ``default``."""
        return self._last.get(key, default)

    def get_ci(self, key: str, default: str | None = None) -> str | None:
        """The last value of ``key`` compared case-insensitively (XNAT reads most flags so)."""
        return self._lower.get(key.lower(), default)

    def flag(self, key: str) -> bool:
        """True when ``key`` is given as ``true`` (any case) — XNAT's boolean flags."""
        value = self.get_ci(key)
        return value is not None and value.strip().lower() == "true"

    def __contains__(self, key: object) -> bool:
        return key in self._last

    def keys(self) -> Iterable[str]:
        return self._last.keys()


@dataclass(frozen=True)
class Credentials:
    """Who sent a request: the user and, when they authenticated with one, the alias token's alias."""

    user: str
    token: str | None = None


@dataclass
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    #: decoded path after alias rewriting (``/data/projects/P``)
    path: str
    #: path exactly as sent, before alias rewriting and decoding
    raw_path: str
    query: Query
    #: header names lower-cased
    headers: dict[str, str]
    #: the request body; read at most ``content_length`` bytes (already bounded by the server)
    body: Body
    content_length: int
    app: Site
    #: path parameters from the route pattern, percent-decoded
    params: dict[str, str] = field(default_factory=dict)
    #: authenticated login, or None (only possible on public routes)
    user: str | None = None
    #: the route pattern that matched (``GET /data/projects/{project}``)
    route: str = ""
    cookies: dict[str, str] = field(default_factory=dict)
    #: the alias token the request authenticated with (Basic auth, or a session made with it)
    token: str | None = None

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def content_type(self) -> str:
        """Media type without parameters, lower-cased (``""`` when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def read_body(self, limit: int | None = None) -> bytes:
        """The whole body (at most ``limit`` bytes; 413 when larger)."""
        if limit is not None and self.content_length > limit:
            raise HTTPError(413, f"Request body too large ({self.content_length} > {limit} bytes).")
        return self.body.read(self.content_length) if self.content_length else b""

    def require_user(self) -> str:
        """The logged-in user, else 401."""
        if self.user is None:
            raise HTTPError(401, "Authentication required.", {"WWW-Authenticate": 'Basic realm="XNAT"'})
        return self.user

    def format(self, default: str = "json") -> str:
        """The requested representation (``format=`` lower-cased)."""
        return (self.query.get_ci("format") or default).lower()


@dataclass
class Response:
    """What a handler returns. ``body`` is bytes or an iterator of chunks (streamed, chunked)."""

    status: int = 200
    body: bytes | Iterator[bytes] = b""
    content_type: str = "text/plain;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain;charset=UTF-8") -> Response:
        return cls(status, text.encode("utf-8"), content_type)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        """Compact JSON (XNAT's Jackson/JSONObject output has no spaces)."""
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, data, "application/json;charset=UTF-8")

    @classmethod
    def xml(cls, text: str | bytes, status: int = 200, content_type: str = "text/xml;charset=UTF-8") -> Response:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return cls(status, data, content_type)

    @classmethod
    def empty(cls, status: int = 200) -> Response:
        return cls(status, b"", "text/plain;charset=UTF-8")


_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: Auth
    regex: re.Pattern[str]
    #: the number of literal characters; more specific routes are tried first
    specificity: int
    #: the literal text before the first parameter (a cheap pre-filter)
    prefix: str = ""

    @property
    def name(self) -> str:
        """The stats key: ``METHOD pattern``."""
        return f"{self.method} {self.pattern}"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/a/{x}/b/{rest:path}`` → a regex over the *raw* (still percent-encoded) path."""
    out: list[str] = []
    pos = 0
    for match in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : match.start()]))
        if match.group(2) == "path":
            out.append(f"(?P<{match.group(1)}>.+?)")
        else:
            out.append(f"(?P<{match.group(1)}>[^/]+)")
        pos = match.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(out) + "/?$")


def normalize_path(raw_path: str) -> str:
    """Rewrite legacy prefixes (``/data/archive/``, ``/REST/``) to ``/data/`` (still encoded)."""
    for prefix, target in ALIASES:
        if raw_path.startswith(prefix):
            return target + raw_path[len(prefix) :]
    if raw_path in ("/data/archive", "/REST"):
        return "/data"
    return raw_path


def decode_param(raw: str, *, is_path: bool) -> str:
    """Percent-decode a matched parameter; a ``path`` parameter is decoded segment by segment."""
    if is_path:
        return "/".join(unquote(part) for part in raw.split("/"))
    return unquote(raw)


class Router:
    """The route table: method + path pattern → handler."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, *, auth: Auth = "user") -> None:
        """Register ``handler`` for ``method`` (``GET``, ``PUT``, …) and ``pattern``."""
        literal = len(_PARAM.sub("", pattern))
        prefix = pattern.split("{", 1)[0]
        route = Route(method.upper(), pattern, handler, auth, compile_pattern(pattern), literal, prefix)
        self._routes.append(route)
        self._routes.sort(key=lambda r: -r.specificity)

    def route(self, method: str, *patterns: str, auth: Auth = "user") -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`; several patterns may share one handler."""
        return _decorator(self.add, method, patterns, auth)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | Literal[False] | None:
        """The route for a request and its decoded parameters.

        Returns None when no pattern matches the path (404) and False when a pattern matches but
        not for this method (405). ``HEAD`` matches ``GET`` routes.
        """
        path = normalize_path(raw_path)
        want = "GET" if method == "HEAD" else method
        path_matched = False
        for route in self._routes:
            if not path.startswith(route.prefix):
                continue
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method != want:
                path_matched = True
                continue
            path_params = {m.group(1) for m in _PARAM.finditer(route.pattern) if m.group(2) == "path"}
            params = {
                key: decode_param(value, is_path=key in path_params)
                for key, value in found.groupdict().items()
            }
            return route, params
        return False if path_matched else None

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)


class Routes:
    """A module's routes, declared at module level and added to a :class:`Router` by :meth:`register`.

    The handlers stay plain module functions (``rest.subjects.get(request)``) that tools and tests
    can reach; :attr:`entries` lists what the module serves without starting a server.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, Handler, Auth]] = []

    def add(self, method: str, pattern: str, handler: Handler, *, auth: Auth = "user") -> None:
        self.entries.append((method, pattern, handler, auth))

    def route(self, method: str, *patterns: str, auth: Auth = "user") -> Callable[[Handler], Handler]:
        """Like :meth:`Router.route`: several patterns may share one handler."""
        return _decorator(self.add, method, patterns, auth)

    def register(self, router: Router) -> None:
        """Add every declared route to ``router`` (a route module's ``register``)."""
        for method, pattern, handler, auth in self.entries:
            router.add(method, pattern, handler, auth=auth)


def _decorator(add: Callable[..., None], method: str, patterns: tuple[str, ...],
               auth: Auth) -> Callable[[Handler], Handler]:
    """The decorator that adds ``handler`` for each of ``patterns``, returning it unchanged."""

    def decorate(handler: Handler) -> Handler:
        for pattern in patterns:
            add(method, pattern, handler, auth=auth)
        return handler

    return decorate
