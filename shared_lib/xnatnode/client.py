"""A lean, counted, retrying connection to XNAT, with xnatpy on demand.

The default path is plain HTTP: one keep-alive :class:`requests.Session` that sends the user and
password (or alias token alias and secret) as HTTP Basic credentials. It costs no requests to set
up, where ``xnat.connect()`` costs a dozen or more plus about a second of class generation
(see ``benchmarks/connect_cost.md``): a command launched once per session in a bulk launch must
not pay that. :meth:`Connection.xnatpy` opens an xnatpy session with the same credentials, lazily,
for the code where the object model pays.

Idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) are retried with exponential back-off on
connection failures, dropped connections, time-outs and 502/503/504; POST only when the
connection could not even be opened. Every attempt is counted in :attr:`Connection.request_count`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit

import requests
import urllib3

from xnatnode import __version__
from xnatnode.credentials import ENV_PASS, ENV_USER, Credentials, resolve_credentials
from xnatnode.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unreachable,
    XnatError,
)
from xnatnode.options import DEFAULT_RETRIES, DEFAULT_TIMEOUT, add_connection_arguments
from xnatnode.redact import redact

__all__ = [
    "ConfigError",
    "Conflict",
    "Connection",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "Unreachable",
    "XnatError",
    "add_connection_arguments",
    "connect",
    "connect_from_args",
]

log = logging.getLogger(__name__)

#: Methods that may be repeated without changing the result.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Statuses of a proxy or a restarting XNAT: worth another try on idempotent requests.
RETRY_STATUSES = frozenset({502, 503, 504})
#: Longest wait between two attempts, whatever the back-off or Retry-After says.
MAX_DELAY = 30.0
DEFAULT_BACKOFF = 0.5

Verify = bool | str
USER_AGENT = f"xnatnode/{__version__} requests/{requests.__version__}"
_LOCAL_HOSTS = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0"})


def running_in_container() -> bool:
    """Whether this process seems to run inside a Docker/Podman container or a Kubernetes pod."""
    return (
        Path("/.dockerenv").exists()
        or Path("/run/.containerenv").exists()
        or "KUBERNETES_SERVICE_HOST" in os.environ
    )


def _is_local(hostname: str) -> bool:
    return hostname.lower() in _LOCAL_HOSTS or hostname.startswith("127.")


class Connection:
    """A connection to one XNAT with one set of credentials (see the module docstring)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        verify: Verify = True,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"the time-out must be positive, not {timeout}")
        if retries < 0:
            raise ConfigError(f"retries must be 0 or more, not {retries}")
        if isinstance(verify, str) and not Path(verify).exists():
            raise ConfigError(f"CA bundle {verify} does not exist")
        self._credentials = credentials
        self.host: str = credentials.host
        self.user: str = credentials.user
        self.verify: Verify = verify
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = backoff
        self._count_lock = threading.Lock()
        self._request_count = 0
        self._session = requests.Session()
        self._session.auth = (credentials.user, credentials.password)
        self._session.headers["User-Agent"] = USER_AGENT
        # Retries are ours (so that each attempt is counted); the pool serves a few threads.
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._xnatpy: Any = None
        self._closed = False
        if verify is False:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            log.warning("TLS certificate verification is OFF for %s", self.host)

    # -- bookkeeping -----------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far: every attempt, redirect hop and xnatpy request."""
        return self._request_count

    def _count(self, n: int = 1) -> None:
        with self._count_lock:
            self._request_count += n

    def __repr__(self) -> str:
        return (
            f"Connection(host={self.host!r}, user={self.user!r}, "
            f"requests={self._request_count})"
        )

    __str__ = __repr__

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the xnatpy session (if one was opened) and the keep-alive connections."""
        if self._closed:
            return
        self._closed = True
        if self._xnatpy is not None:
            session, self._xnatpy = self._xnatpy, None
            try:
                session.disconnect()
            except Exception as exc:  # closing must not hide the command's own outcome
                log.debug("closing the xnatpy session failed: %s", exc)
        self._session.close()

    # -- requests --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``/data/...``) on this XNAT."""
        if path.startswith(self.host + "/"):
            return path
        if not path.startswith("/"):
            raise ValueError(f"XNAT paths start with '/' (e.g. /data/projects), not {path!r}")
        return self.host + path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> requests.Response:
        """Send one request (with retries); raise an :class:`XnatError` on failure or status >= 400."""
        method = method.upper()
        url = self.url(path)
        shown = _shown(url, self.host)
        idempotent = method in IDEMPOTENT
        rewind = _rewinder(data, files)
        attempt = 0
        while True:
            self._count()
            started = time.monotonic()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    files=files,
                    headers=dict(headers) if headers else None,
                    stream=stream,
                    timeout=timeout or self.timeout,
                    verify=self.verify,
                )
            except requests.RequestException as exc:
                retry = (
                    attempt < self.retries
                    and rewind is not None
                    and _transient(exc)
                    and (idempotent or _never_sent(exc))
                )
                if not retry:
                    raise self._failure(method, shown, exc, attempt + 1, timeout) from None
                delay = self._delay(attempt, None)
                log.warning(
                    "%s %s: %s; retry %d/%d in %.1f s",
                    method, shown, _why(exc, timeout or self.timeout), attempt + 1, self.retries, delay,
                )
            else:
                if response.history:
                    self._count(len(response.history))
                log.debug(
                    "%s %s -> %d (%.3f s)",
                    method, shown, response.status_code, time.monotonic() - started,
                )
                status = response.status_code
                if (
                    status in RETRY_STATUSES
                    and idempotent
                    and rewind is not None
                    and attempt < self.retries
                ):
                    delay = self._delay(attempt, response.headers.get("Retry-After"))
                    log.warning(
                        "%s %s: XNAT answered %d %s; retry %d/%d in %.1f s",
                        method, shown, status, response.reason, attempt + 1, self.retries, delay,
                    )
                    response.close()
                elif status >= 400:
                    raise self._status_error(method, shown, response, attempt + 1)
                else:
                    return response
            time.sleep(delay)
            attempt += 1
            if rewind is not None:
                rewind()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = float(self.backoff * (2**attempt))
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, float(retry_after))
        return min(delay, MAX_DELAY)

    def _failure(self, method: str, shown: str, exc: requests.RequestException, attempts: int,
                 timeout: float | None = None) -> XnatError:
        if not isinstance(exc, requests.ConnectionError | requests.Timeout):
            return XnatError(redact(f"{method} {shown} failed: {type(exc).__name__}: {exc}"),
                             method=method, url=shown)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        why = _why(exc, timeout or self.timeout)
        message = f"cannot reach XNAT at {self.host} ({method} {shown}{tries}): {why}"
        hostname = urlsplit(self.host).hostname or ""
        # A read time-out means something listening answered the connection: not the hint's case.
        if (_is_local(hostname) and running_in_container()
                and not isinstance(exc, requests.ReadTimeout)):
            message += (
                f". {hostname} inside a container is the container itself, not the XNAT server:"
                " set XNAT's Processing URL (Administer > Site Administration > Pipeline Settings)"
                " to an address that job containers can reach, or pass --xnat-host"
            )
        return Unreachable(redact(message), method=method, url=shown)

    def _status_error(self, method: str, shown: str, response: requests.Response, attempts: int) -> XnatError:
        status = response.status_code
        detail = _body_excerpt(response)
        suffix = f": {detail}" if detail else ""
        error: type[XnatError]
        if status == 401:
            error = Unauthorized
            message = (
                f"XNAT at {self.host} refused the credentials of user {self.user!r} "
                f"(401 Unauthorized, {method} {shown}): check {ENV_USER}/{ENV_PASS} or ~/.netrc; "
                "alias tokens expire (XNAT's aliasTokenTimeout) and the Container Service "
                "invalidates a launch's token when its container finishes"
            )
        elif status == 403:
            error = Forbidden
            message = f"user {self.user!r} may not {method} {shown} on XNAT (403 Forbidden){suffix}"
        elif status == 404:
            error = NotFound
            message = f"not found on XNAT: {method} {shown} (404){suffix}"
        elif status == 409:
            error = Conflict
            message = f"conflict on XNAT: {method} {shown} (409){suffix}"
        elif status in RETRY_STATUSES:
            error = Unreachable
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            message = (
                f"XNAT at {self.host} is unavailable: {method} {shown} answered "
                f"{status} {response.reason}{tries}"
            )
        else:
            error = XnatError
            message = f"XNAT answered {status} {response.reason} to {method} {shown}{suffix}"
        response.close()
        return error(redact(message), status=status, method=method, url=shown)

    # -- conveniences ----------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        """``GET path``."""
        return self.request("GET", path, params=params, **kwargs)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET path?format=json``, parsed."""
        query = dict(params or {})
        query.setdefault("format", "json")
        response = self.request("GET", path, params=query)
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise XnatError(
                redact(
                    f"expected JSON from GET {_shown(response.url, self.host)}, got {kind}: "
                    f"{_body_excerpt(response)}"
                ),
                status=response.status_code,
                method="GET",
                url=path,
            ) from None

    def get_table(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
        """The ``ResultSet.Result`` rows of a listing, every value as text (``None`` -> ``""``)."""
        document = self.get_json(path, params)
        try:
            rows = document["ResultSet"]["Result"]
        except (KeyError, TypeError):
            raise XnatError(f"GET {path} returned no ResultSet.Result listing", method="GET",
                            url=path) from None
        if not isinstance(rows, list):
            raise XnatError(f"GET {path}: ResultSet.Result is not a list", method="GET", url=path)
        return [
            {str(key): "" if value is None else str(value) for key, value in row.items()}
            for row in rows
            if isinstance(row, dict)
        ]

    def put(self, path: str, params: Mapping[str, Any] | None = None, data: Any = None,
            **kwargs: Any) -> requests.Response:
        """``PUT path`` (retried: PUT is idempotent)."""
        return self.request("PUT", path, params=params, data=data, **kwargs)

    def post(self, path: str, params: Mapping[str, Any] | None = None, data: Any = None,
             **kwargs: Any) -> requests.Response:
        """``POST path`` (retried only when the connection could not be opened)."""
        return self.request("POST", path, params=params, data=data, **kwargs)

    def delete(self, path: str, params: Mapping[str, Any] | None = None,
               **kwargs: Any) -> requests.Response:
        """``DELETE path``."""
        return self.request("DELETE", path, params=params, **kwargs)

    def download(self, path: str, dest: Path, params: Mapping[str, Any] | None = None) -> Path:
        """Stream ``GET path`` into ``dest`` (via ``dest.part``); a drop mid-way starts it again."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        attempt = 0
        while True:
            response = self.request("GET", path, params=params, stream=True)
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        out.write(chunk)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                if attempt >= self.retries:
                    partial.unlink(missing_ok=True)
                    raise self._failure("GET", _shown(self.url(path), self.host),
                                        requests.ConnectionError(str(exc)), attempt + 1) from None
                delay = self._delay(attempt, None)
                log.warning("GET %s: download interrupted (%s); retry %d/%d in %.1f s",
                            path, type(exc).__name__, attempt + 1, self.retries, delay)
                time.sleep(delay)
                attempt += 1
            else:
                partial.replace(dest)
                return dest
            finally:
                response.close()

    def upload(self, path: str, source: Path | bytes, params: Mapping[str, Any] | None = None,
               *, content_type: str = "application/octet-stream") -> requests.Response:
        """``PUT path`` with the raw bytes of ``source`` as body (how XNAT stores a file)."""
        headers = {"Content-Type": content_type}
        if isinstance(source, bytes | bytearray):
            return self.request("PUT", path, params=params, data=bytes(source), headers=headers)
        with Path(source).open("rb") as body:
            return self.request("PUT", path, params=params, data=body, headers=headers)

    # -- xnatpy ----------------------------------------------------------------------------

    def xnatpy(self, *, extension_types: bool = True, parse_model: bool = True) -> Any:
        """An ``xnat.session.BaseXNATSession`` with the same credentials, opened on first use.

        Costs ``xnat.connect()``'s requests and class generation once (counted in
        :attr:`request_count`); ``extension_types=False`` fetches only the xnat and xdat schemas,
        ``parse_model=False`` skips the model (raw ``get``/``put`` only). The first call's options
        decide; later calls return the same session.
        """
        if self._closed:
            raise XnatError("the connection is closed")
        if self._xnatpy is None:
            self._xnatpy = self._open_xnatpy(extension_types=extension_types, parse_model=parse_model)
        return self._xnatpy

    def _open_xnatpy(self, *, extension_types: bool, parse_model: bool) -> Any:
        import xnat  # heavy: only here
        import xnat.exceptions

        log.info("opening an xnatpy session on %s", self.host)
        started = time.monotonic()
        before = self._request_count
        try:
            with _counting_sessions(self._count_hook, self.verify):
                session = xnat.connect(
                    server=self.host,
                    user=self._credentials.user,
                    password=self._credentials.password,
                    verify=self.verify is not False,
                    extension_types=extension_types,
                    no_parse_model=not parse_model,
                    default_timeout=self.timeout,
                    pilot_timeout=self.timeout,
                    logger=logging.getLogger("xnatnode.xnatpy"),
                )
        except xnat.exceptions.XNATLoginFailedError as exc:
            raise Unauthorized(
                redact(
                    f"xnatpy could not log in to {self.host} as {self.user!r} ({exc}): check "
                    f"{ENV_USER}/{ENV_PASS} or ~/.netrc; alias tokens expire"
                ),
                status=401,
            ) from None
        except requests.RequestException as exc:
            raise self._failure("GET", "/ (xnatpy connect)", exc, 1) from None
        except xnat.exceptions.XNATError as exc:
            raise XnatError(redact(f"xnatpy could not connect to {self.host}: {exc}")) from None
        log.info(
            "xnatpy session open: %d requests, %.2f s",
            self._request_count - before, time.monotonic() - started,
        )
        return session

    def _count_hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._count()


# -- helpers ---------------------------------------------------------------------------------

_xnatpy_lock = threading.Lock()


@contextlib.contextmanager
def _counting_sessions(hook: Callable[..., None], verify: Verify) -> Iterator[None]:
    """While xnatpy connects, make its ``requests.Session`` count responses and use ``verify``.

    ``xnat.connect()`` builds its own session and (in 0.8.1) ignores a CA-bundle path given as
    ``verify``; this hands it one that already counts and verifies like ours.
    """
    original = requests.Session

    class CountingSession(original):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__()
            self.hooks["response"].append(hook)
            if isinstance(verify, str):
                self.verify = verify

    with _xnatpy_lock:
        requests.Session = CountingSession  # type: ignore[misc]
        try:
            yield
        finally:
            requests.Session = original  # type: ignore[misc]


def _shown(url: str, host: str) -> str:
    """The part of ``url`` to show in messages: the path below the host, query included."""
    return url[len(host):] if url.startswith(host) else url


_STATUS_PAGE_BOILERPLATE = re.compile(
    r"You can get technical details\s+here\s*\.|Please continue your visit at our\s+home page\s*\.",
    re.IGNORECASE,
)


def _body_excerpt(response: requests.Response, limit: int = 300) -> str:
    """A short plain-text excerpt of an error body (HTML tags dropped)."""
    try:
        text = response.text
    except Exception:  # a body that cannot be read adds nothing to the message
        return ""
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    # The boilerplate of Restlet's status page, which XNAT sends with most error statuses.
    text = _STATUS_PAGE_BOILERPLATE.sub(" ", text)
    text = re.sub(r"\s+([.,;:])", r"\1", " ".join(text.split()))
    return text[:limit] + ("..." if len(text) > limit else "")


def _rewinder(data: Any, files: Any) -> Callable[[], None] | None:
    """How to reset a request body before a retry; ``None`` if it cannot be replayed."""
    bodies = [data]
    if isinstance(files, Mapping):
        bodies.extend(
            value[1] if isinstance(value, tuple) and len(value) > 1 else value
            for value in files.values()
        )
    elif files is not None:
        return None
    positions: list[tuple[IO[Any], int]] = []
    for body in bodies:
        if body is None or isinstance(body, str | bytes | bytearray | Mapping | list | tuple):
            continue
        if hasattr(body, "read"):
            try:
                if not body.seekable():
                    return None
                positions.append((body, body.tell()))
            except (AttributeError, OSError):
                return None
            continue
        return None  # a generator or iterator: consumed by the first attempt

    def rewind() -> None:
        for body, position in positions:
            body.seek(position)

    return rewind


def _transient(exc: requests.RequestException) -> bool:
    """Worth another try: refused/dropped connections, DNS hiccups, time-outs (not TLS errors)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(
        exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError
    )


def _never_sent(exc: requests.RequestException) -> bool:
    """The request cannot have reached XNAT (so even a POST may be repeated)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _why(exc: BaseException, timeout: float) -> str:
    """A short human reason for a connection failure."""
    reason: Any = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            "TLS certificate verification failed (for a private CA pass --ca-bundle FILE; "
            f"{_first_line(reason)})"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connection timed out after {timeout:g} s"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "unknown host (DNS lookup failed)"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        text = str(reason).lower()
        if "refused" in text:
            return "connection refused"
        return f"cannot connect ({_first_line(reason)})"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection dropped while reading the answer"
    text = str(reason)
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset" in text.lower():
        return "connection dropped by the server"
    return _first_line(reason)


def _first_line(value: object) -> str:
    text = str(value).strip().splitlines()
    return text[0][:200] if text else type(value).__name__


# -- construction ----------------------------------------------------------------------------


def connect(
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    *,
    verify: Verify = True,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    netrc_file: str | os.PathLike[str] | None = None,
) -> Connection:
    """A :class:`Connection`; missing values come from ``XNAT_HOST``/``XNAT_USER``/``XNAT_PASS``,
    then the netrc file. Sends no request."""
    credentials = resolve_credentials(host, user, password, netrc_file=netrc_file)
    connection = Connection(credentials, verify=verify, timeout=timeout, retries=retries,
                            backoff=backoff)
    log.info("XNAT at %s (%s)", credentials.host, credentials.source)
    return connection


def connect_from_args(args: argparse.Namespace) -> Connection:
    """:func:`connect` with the flags of :func:`add_connection_arguments`."""
    verify: Verify = True
    if getattr(args, "insecure", False):
        verify = False
    elif getattr(args, "ca_bundle", None):
        verify = str(args.ca_bundle)
    return connect(
        getattr(args, "xnat_host", None),
        getattr(args, "xnat_user", None),
        verify=verify,
        timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
        retries=getattr(args, "retries", DEFAULT_RETRIES),
        netrc_file=getattr(args, "netrc", None),
    )
