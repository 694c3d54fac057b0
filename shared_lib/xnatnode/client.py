"""A lean, counted, retrying connection to XNAT, with xnatpy on demand.

The default path is plain HTTP: one keep-alive :class:`requests.Session` that sends the user and
password (or alias token alias and secret) as HTTP Basic credentials. It costs no requests to set
up, where ``xnat.connect()`` costs a dozen or more plus about a second of class generation
(see ``benchmarks/connect_cost.md``): a command launched once per session in a bulk launch must
not pay that. :meth:`Connection.xnatpy` opens an xnatpy session with the same credentials, lazily,
for the code where the object model pays.

Idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) are retried with exponential back-off and
jitter (:class:`~xnatnode.settings.RetrySettings`) on connection failures, dropped connections,
time-outs and 502/503/504; reads (GET, HEAD, OPTIONS) also on 500 and on a JSON answer that does
not parse (a truncated body); POST only when the connection could not even be opened. Every
attempt is counted in :attr:`Connection.request_count`.

Time limits: ``timeout`` is the deadline of one attempt of a request, from connecting to the last
byte of the answer (a server that dribbles one byte a second is cut off, not waited for). A
download (:meth:`Connection.download`) may take as long as its size needs: ``timeout`` bounds it up
to the answer's headers, and then its body must keep up at least :data:`STALL_BYTES` per
``timeout`` window, or the attempt counts as stalled (retried like a dropped answer). The run's
:class:`~xnatnode.deadline.Deadline` bounds everything: no attempt starts, and no retry waits,
past it, and a request still running when it comes is cut (exit 3).

Credentials are sent to the connection's own host only: requests drops the ``Authorization``
header on a redirect to another host, and in a Container Service job the host is ``XNAT_HOST``
(no flag may change it, see :mod:`xnatnode.settings`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit

import requests
import urllib3

from xnatnode import __version__
from xnatnode.credentials import (
    ENV_PASS,
    ENV_USER,
    Credentials,
    launched_by_xnat,
    refused_in_a_job,
    resolve_credentials,
)
from xnatnode.deadline import NEVER, Deadline
from xnatnode.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unreachable,
    XnatError,
)
from xnatnode.redact import redact
from xnatnode.safefiles import open_output
from xnatnode.settings import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_WORKERS,
    STALL_BYTES,
    ConnectionSettings,
    RetrySettings,
)

__all__ = [
    "ConfigError",
    "Conflict",
    "Connection",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "Unreachable",
    "XnatError",
    "connect",
    "connect_with",
]

log = logging.getLogger(__name__)

#: Methods that may be repeated without changing the result.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Methods that only read: also retried on 500 and on an answer that does not parse.
READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Statuses of a proxy or a restarting XNAT: worth another try on idempotent requests.
RETRY_STATUSES = frozenset({502, 503, 504})
#: Statuses worth another try on reads only (a 500 on a write may have done part of it).
READ_RETRY_STATUSES = RETRY_STATUSES | {500}
#: File bodies are sent in reads of this size, not urllib3's 16 KiB: a fraction of the calls
#: (and of the per-read cost of a body that hashes what it sends).
UPLOAD_BLOCK = 1 << 20

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
        retry: RetrySettings | None = None,
        deadline: Deadline = NEVER,
    ) -> None:
        retry = retry or RetrySettings(retries=retries, backoff=backoff)
        if not (timeout > 0 and timeout < float("inf")):
            raise ConfigError(f"the time-out must be a positive number of seconds, not {timeout}")
        if retry.retries < 0:
            raise ConfigError(f"retries must be 0 or more, not {retry.retries}")
        if isinstance(verify, str) and not Path(verify).exists():
            raise ConfigError(f"CA bundle {verify} does not exist")
        self._credentials = credentials
        self.host: str = credentials.host
        self.user: str = credentials.user
        self.verify: Verify = verify
        self.timeout = float(timeout)
        self.retry = retry
        self.deadline = deadline
        self._count_lock = threading.Lock()
        self._request_count = 0
        self._session = requests.Session()
        self._session.auth = (credentials.user, credentials.password)
        self._session.headers["User-Agent"] = USER_AGENT
        self._send_verify = _environment_once(self._session, credentials.host, verify)
        # Retries are ours (so that each attempt is counted); see _WatchedAdapter for the pool.
        adapter = _WatchedAdapter(pool_connections=2, pool_maxsize=MAX_WORKERS, max_retries=0)
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

    @property
    def retries(self) -> int:
        """Retries of a failed idempotent request."""
        return self.retry.retries

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
        check: Callable[[requests.Response], None] | None = None,
    ) -> requests.Response:
        """Send one request (with retries); raise an :class:`XnatError` on failure or status >= 400.

        ``check`` inspects a successful answer of a read and raises :class:`Unusable` for one
        that is worth asking again (say, JSON cut short).
        """
        method = method.upper()
        url = self.url(path)
        shown = _shown(url, self.host)
        idempotent = method in IDEMPOTENT
        retry_statuses = READ_RETRY_STATUSES if method in READS else RETRY_STATUSES
        rewind = _rewinder(data, files)
        limit = timeout or self.timeout
        attempt = 0
        while True:
            self.deadline.check(f"waiting to send {method} {shown}")
            self._count()
            started = time.monotonic()
            budget = min(limit, self.deadline.remaining())
            retry_after: str | None = None
            watch = _Watch()
            try:
                with watch.cutting_after(budget + _GRACE), self.deadline.watching(watch.cut):
                    response = self._send(method, url, params=params, data=data, files=files,
                                          headers=headers, stream=stream, timeout=budget)
                if watch.fired:  # cut mid-headers, http.client may take what came as complete
                    response.close()
                    raise requests.ConnectionError("cut off")
            except requests.RequestException as exc:
                failure: requests.RequestException = exc
                if self.deadline.expired():
                    raise self.deadline.error(f"waiting for XNAT's answer to {method} {shown}") from None
                if watch.fired:
                    failure = _CutOff(f"no complete answer within {budget:g} s")
                retry = (
                    attempt < self.retries
                    and rewind is not None
                    and _transient(failure)
                    and (idempotent or _never_sent(failure))
                )
                if not retry:
                    raise self._failure(method, shown, failure, attempt + 1, budget) from None
                reason = _why(failure, budget)
            else:
                if response.history:
                    self._count(len(response.history))
                log.debug(
                    "%s %s -> %d (%.3f s)",
                    method, shown, response.status_code, time.monotonic() - started,
                )
                status = response.status_code
                if response.history and _is_login_page(response.url):
                    response.close()
                    raise Unauthorized(
                        redact(
                            f"XNAT at {self.host} sent {method} {shown} to its login page: the "
                            f"credentials of user {self.user!r} were not accepted; check "
                            f"{ENV_USER}/{ENV_PASS} or ~/.netrc (alias tokens expire)"
                        ),
                        status=status, method=method, url=shown,
                    )
                if status in retry_statuses and idempotent and rewind is not None:
                    if attempt >= self.retries:
                        raise self._status_error(method, shown, response, attempt + 1)
                    reason = f"XNAT answered {status} {response.reason}"
                    retry_after = response.headers.get("Retry-After")
                    response.close()
                elif status >= 400:
                    raise self._status_error(method, shown, response, attempt + 1)
                elif check is None:
                    return response
                else:
                    try:
                        check(response)
                    except Unusable as exc:
                        if method not in READS or attempt >= self.retries:
                            raise XnatError(redact(f"{exc} ({attempt + 1} attempts)"
                                                   if attempt else str(exc)),
                                            status=status, method=method, url=shown) from None
                        reason = str(exc)
                    else:
                        return response
            delay = self._delay(attempt, retry_after)
            if delay >= self.deadline.remaining():
                raise self.deadline.error(f"retrying {method} {shown} ({reason})")
            log.warning("%s %s: %s; retry %d/%d in %.1f s",
                        method, shown, reason, attempt + 1, self.retries, delay)
            time.sleep(delay)
            attempt += 1
            if rewind is not None:
                rewind()

    def _send(self, method: str, url: str, *, params: Mapping[str, Any] | None, data: Any, files: Any,
              headers: Mapping[str, str] | None, stream: bool, timeout: float) -> requests.Response:
        """One attempt: what ``Session.request`` does, without merging the session's settings.

        ``Session.request`` merges the session's headers, parameters, credentials, hooks, cookies
        (a copy of the jar) and environment into every request through generic helpers (each
        mapping checked against runtime protocols, lists of pairs rebuilt): a fifth of a small
        request's client CPU. A connection's settings are fixed (its headers, credentials and
        cookie jar, no hooks or parameters, the proxies and CA bundle of
        :func:`_environment_once`), so the request is built by requests' own ``Request.prepare``
        with them merged here, and sent by ``Session.send`` as before (the adapter and its pool,
        redirects, the cookies XNAT sets).
        """
        session = self._session
        merged = session.headers
        if headers:
            merged = requests.structures.CaseInsensitiveDict(merged)
            merged.update(headers)
        cookies = requests.cookies.RequestsCookieJar()  # a copy, as Session.request makes
        cookies.update(session.cookies)
        prepared = requests.Request(method, url, headers=merged, files=files, data=data or {},
                                    params=params or {}, auth=session.auth, cookies=cookies).prepare()
        return session.send(prepared, stream=stream, timeout=timeout, verify=self._send_verify,
                            proxies=session.proxies, cert=None, allow_redirects=True)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """Back-off before retry ``attempt + 1``: doubling, with up to 10% jitter (so that many
        jobs hit by the same outage do not come back at once), at least a sane Retry-After,
        at most ``max_delay``."""
        growth = float(2 ** min(attempt, 30))
        delay = self.retry.backoff * growth * (1 + random.uniform(0, 0.1))
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                wanted = float(retry_after)
                if 0 <= wanted < float("inf"):
                    delay = max(delay, wanted)
        return min(delay, self.retry.max_delay)

    def _failure(self, method: str, shown: str, exc: requests.RequestException, attempts: int,
                 timeout: float | None = None) -> XnatError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if not _transient(exc) and not isinstance(exc, requests.exceptions.SSLError):
            return XnatError(redact(f"{method} {shown} failed{tries}: {type(exc).__name__}: {exc}"),
                             method=method, url=shown)
        why = _why(exc, timeout or self.timeout)
        message = f"cannot reach XNAT at {self.host} ({method} {shown}{tries}): {why}"
        hostname = urlsplit(self.host).hostname or ""
        # Only when nothing answered: a server that accepted the connection is not the hint's case.
        if _is_local(hostname) and running_in_container() and _never_sent(exc):
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
        """``GET path?format=json``, parsed; an answer cut short is asked for again."""
        query = dict(params or {})
        query.setdefault("format", "json")
        parsed: list[Any] = []

        def parse(response: requests.Response) -> None:
            parsed[:] = [_parse_json(response, self.host)]

        self.request("GET", path, params=query, check=parse)
        return parsed[0]

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
        """Stream ``GET path`` into ``dest``, written safely (:mod:`xnatnode.safefiles`).

        A drop mid-way, or a stall (fewer than :data:`STALL_BYTES` within a ``timeout`` window: a
        server that sends a byte now and then would otherwise hold the job, and its alias token,
        until the run's deadline), starts it again after a back-off; after the retries it is
        :class:`Unreachable` (exit 3). The run's deadline cuts a download that is still running.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shown = _shown(self.url(path), self.host)
        attempt = 0
        while True:
            response = self.request("GET", path, params=params, stream=True)
            watch = _Watch()
            watch.connection = getattr(response.raw, "connection", None)  # the body's socket
            progress = _Progress(self.timeout, watch.cut)
            try:
                with watch.cutting_after(self.deadline.remaining()), \
                        self.deadline.watching(watch.cut), progress.guarding(), \
                        open_output(dest, "wb") as out:
                    # Blocks of STALL_BYTES: a read returns when one is full, so progress shows.
                    for chunk in response.iter_content(chunk_size=STALL_BYTES):
                        out.write(chunk)
                        progress.add(len(chunk))
                    if watch.fired:  # a body without a length ends quietly when cut
                        raise requests.ConnectionError("cut off")
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                failure: requests.RequestException = exc
                if self.deadline.expired() or (watch.fired and not progress.stalled):
                    raise self.deadline.error(f"downloading {shown}") from None
                if progress.stalled:
                    failure = _CutOff(progress.explain())
                if attempt >= self.retries:
                    raise self._failure("GET", shown, failure, attempt + 1) from None
                delay = self._delay(attempt, None)
                if delay >= self.deadline.remaining():
                    raise self.deadline.error(f"retrying the download of {shown}") from None
                log.warning("GET %s: download interrupted (%s); retry %d/%d in %.1f s",
                            shown, _why(failure, self.timeout), attempt + 1, self.retries, delay)
                time.sleep(delay)
                attempt += 1
            else:
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
        try:
            import xnat  # heavy, and optional (the xnatnode[xnatpy] extra): only here
            import xnat.exceptions
        except ImportError:
            raise ConfigError(
                "xnatpy is not installed: pip install 'xnatnode[xnatpy]' (no xnatnode command "
                "needs it; the images do not carry it)"
            ) from None

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


class Unusable(Exception):
    """A successful answer that cannot be used (say, JSON cut short): worth asking again."""


class _CutOff(requests.Timeout):
    """An attempt cut off by its deadline (the server answered too slowly)."""


#: How long after its time-out an attempt is cut (a silent server's read time-out comes first).
_GRACE = 0.25


class _Watch:
    """Cuts the connection of the current thread's request when its time is up.

    ``timeout`` in requests limits each socket read, so a server that sends a byte now and then
    never times out; this closes the socket (from a timer thread) once the attempt's own
    deadline passes, which makes the blocked read fail at once.
    """

    def __init__(self) -> None:
        self.fired = False
        self.connection: Any = None

    @contextlib.contextmanager
    def cutting_after(self, seconds: float) -> Iterator[None]:
        """Cut this thread's request if the block is still running after ``seconds``."""
        alarm = None
        previous = getattr(_watching, "watch", None)
        _watching.watch = self
        if seconds != float("inf"):
            alarm = _WATCHDOG.schedule(time.monotonic() + max(0.0, seconds), self.cut)
        try:
            yield
        finally:
            if alarm is not None:
                alarm.cancelled = True
            _watching.watch = previous

    def cut(self) -> None:
        """Close the watched request's socket now (from any thread)."""
        self.fired = True
        sock = (getattr(self.connection, "sock", None)
                or getattr(self.connection, "watched_sock", None))
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket, even under TLS


@dataclass(order=True)
class _Alarm:
    when: float
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _Watchdog:
    """One daemon thread that fires the alarms of every :class:`_Watch` and of every download's
    stall check (:class:`_Progress`) when their time comes.

    Hand-written rather than a ``threading.Timer`` per request: starting and cancelling a thread
    for each request cost more client CPU than the request itself on small uploads (a tenth of
    nifti-import's CPU on 1,000 files of 100 KB). Cancelled alarms are only marked, and dropped
    when they come due.
    """

    def __init__(self) -> None:
        self._alarms: list[_Alarm] = []
        self._ready = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, action: Callable[[], None]) -> _Alarm:
        """Call ``action`` (from the watchdog's thread) at ``when`` (``time.monotonic``) unless
        the returned alarm's ``cancelled`` is set first."""
        alarm = _Alarm(when, next(self._seq), action)
        with self._ready:
            heapq.heappush(self._alarms, alarm)
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._run, name="xnatnode-watchdog", daemon=True)
                self._thread.start()
            if self._alarms[0] is alarm:
                self._ready.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._alarms or (self._alarms[0].when > time.monotonic()
                                           and not self._alarms[0].cancelled):
                    self._ready.wait(self._alarms[0].when - time.monotonic() if self._alarms else None)
                alarm = heapq.heappop(self._alarms)
            if not alarm.cancelled:
                alarm.action()


_WATCHDOG = _Watchdog()


#: The :class:`_Watch` of each thread's request in progress.
_watching = threading.local()


class _Progress:
    """Cuts a streamed body that stalls: fewer than :data:`STALL_BYTES` within ``window`` s.

    Not a limit on the whole download (a big file may take hours at a good rate): each block of
    :data:`STALL_BYTES` has to come within ``window`` seconds of the one before (or of the start),
    which a server dribbling a byte now and then fails although each socket read is in time.
    The reading loop only adds up bytes; the check is an alarm of the shared :class:`_Watchdog`
    at the end of the current window, re-armed from the last block while blocks keep coming.
    """

    def __init__(self, window: float, cut: Callable[[], None]) -> None:
        self.window = window
        self.received = 0
        self.stalled = False
        self._cut = cut
        self._started = self._mark = time.monotonic()
        self._mark_bytes = 0
        #: Held while the alarm checks and while the block ends: no cut once it has ended.
        self._lock = threading.Lock()
        self._done = False
        self._alarm: _Alarm | None = None

    def add(self, count: int) -> None:
        """Count ``count`` bytes received (from the reading thread)."""
        self.received += count
        if self.received - self._mark_bytes >= STALL_BYTES:
            self._mark, self._mark_bytes = time.monotonic(), self.received

    @contextlib.contextmanager
    def guarding(self) -> Iterator[None]:
        """Check the block's progress at each window's end; stop checking when it ends. Entered
        once, as soon as the object is made (its start time is the window's start)."""
        self._arm()
        try:
            yield
        finally:
            with self._lock:
                self._done = True
                if self._alarm is not None:
                    self._alarm.cancelled = True

    def _arm(self) -> None:
        self._alarm = _WATCHDOG.schedule(self._mark + self.window, self._check)

    def _check(self) -> None:
        """On the watchdog's thread: cut a stalled body, else check again a window after the
        last block."""
        with self._lock:
            if self._done:
                return
            if time.monotonic() - self._mark >= self.window:
                self.stalled = True
                self._cut()
            else:
                self._arm()

    def explain(self) -> str:
        """Why the attempt was given up, with the rate it fell below and the rate it had."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        floor = STALL_BYTES / self.window
        return (
            f"the download stalled: less than {STALL_BYTES // 1024} KiB came within the "
            f"time-out of {self.window:g} s (below {_rate(floor)}); {self.received} bytes in "
            f"{elapsed:.0f} s so far, {_rate(self.received / elapsed)}"
        )


def _rate(per_second: float) -> str:
    """``per_second`` bytes per second, readable: ``2.1 KiB/s``."""
    if per_second < 1024:
        return f"{per_second:.1f} B/s"
    if per_second < 1 << 20:
        return f"{per_second / 1024:.1f} KiB/s"
    return f"{per_second / (1 << 20):.1f} MiB/s"


def _watched(connection_class: type[Any]) -> type[Any]:
    """A urllib3 connection class that tells the thread's :class:`_Watch` which socket to cut."""

    class Watched(connection_class):  # type: ignore[misc]
        def connect(self) -> None:
            self._register()
            super().connect()

        def request(self, *args: Any, **kwargs: Any) -> None:
            self._register()
            super().request(*args, **kwargs)
            # http.client drops ``sock`` once an answer that closes the connection begins, but
            # its body is still read from this socket: keep it, for cutting.
            self.watched_sock = self.sock

        def _register(self) -> None:
            watch = getattr(_watching, "watch", None)
            if watch is not None:
                watch.connection = self

    Watched.__name__ = f"Watched{connection_class.__name__}"
    return Watched


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPConnection)


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPSConnection)


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections a :class:`_Watch` can cut.

    The connection keeps up to :data:`~xnatnode.settings.MAX_WORKERS` keep-alive connections,
    the upper bound of every ``--workers`` flag: with more threads than pooled connections
    urllib3 discards the surplus ("Connection pool is full") and each request connects anew.
    Sized to that bound rather than to the run's own ``--workers`` because urllib3 opens
    connections only when a thread needs one: a run with 4 workers still holds at most 4, and
    no worker count has to travel from the command's options to the connection.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", UPLOAD_BLOCK)
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool, "https": _WatchedHTTPSPool,
        }


def _parse_json(response: requests.Response, host: str) -> Any:
    """The JSON of an answer; :class:`Unusable` if a JSON answer does not parse (cut short),
    :class:`XnatError` if the answer is not JSON at all (an HTML page, say)."""
    kind = response.headers.get("Content-Type", "no content type")
    shown = _shown(response.url, host)
    try:
        return response.json()
    except ValueError as exc:
        size = len(response.content)
        if "json" in kind.lower():
            raise Unusable(
                f"XNAT's answer to GET {shown} is not valid JSON ({size} bytes, {exc}): an "
                "answer cut short"
            ) from None
        raise XnatError(
            redact(f"expected JSON from GET {shown}, got {kind}: {_body_excerpt(response)}"),
            status=response.status_code, method="GET", url=shown,
        ) from None


_LOGIN_PATH = re.compile(r"/(app/template/login\.vm|app/action/login\w*|login)/?$", re.IGNORECASE)


def _is_login_page(url: str) -> bool:
    """Whether ``url`` is XNAT's login page (where it redirects an unauthenticated request)."""
    return bool(_LOGIN_PATH.search(urlsplit(url).path))


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


def _environment_once(session: requests.Session, host: str, verify: Verify) -> Verify:
    """Take what requests reads from the environment for every request, once, for ``host``.

    With ``trust_env`` (its default) requests looks up the proxy variables (twice: the proxies
    and ``no_proxy``) and the CA-bundle variables again on every request: a third of the client
    CPU of a small PUT in a typical environment (70-odd variables, each decoded). The values are
    the same for every request of a connection (one host), so they are resolved here as requests
    would resolve them: the proxies for ``host`` (none when ``no_proxy`` covers it), and
    ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` in place of ``verify=True``. The session then
    stops consulting the environment (``trust_env = False``), which also means that a redirect to
    another host (never XNAT's own behaviour; our credentials are dropped on one) goes the way of
    the connection's host, proxy or not, and picks no credentials out of ``~/.netrc`` for that
    host. Returns the ``verify`` to send with.
    """
    session.proxies.update(requests.utils.get_environ_proxies(host))
    session.trust_env = False
    if verify is True:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return verify


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
    if isinstance(exc, _CutOff):
        return str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc).lower()
        if any(sign in text for sign in _NOT_TLS):
            return ("the server does not speak TLS there (a plain-HTTP port behind an https:// "
                    "URL? use http:// or the HTTPS port)")
        if "certificate" not in text and "verify" not in text:
            return f"TLS handshake failed ({_first_line(reason)})"
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


#: OpenSSL's words for a TLS client that got a plain-HTTP answer.
_NOT_TLS = ("wrong version number", "record layer failure", "http request", "unknown protocol",
            "packet length too long")


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
    retry: RetrySettings | None = None,
    netrc_file: str | os.PathLike[str] | None = None,
    deadline: Deadline = NEVER,
) -> Connection:
    """A :class:`Connection`; missing values come from ``XNAT_HOST``/``XNAT_USER``/``XNAT_PASS``,
    then the netrc file. Sends no request."""
    credentials = resolve_credentials(host, user, password, netrc_file=netrc_file)
    connection = Connection(credentials, verify=verify, timeout=timeout, retries=retries,
                            backoff=backoff, retry=retry, deadline=deadline)
    log.info("XNAT at %s (%s)", credentials.host, credentials.source)
    return connection


def connect_with(
    settings: ConnectionSettings,
    *,
    deadline: Deadline = NEVER,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """:func:`connect` with a run's :class:`~xnatnode.settings.ConnectionSettings`.

    In a Container Service job (:func:`~xnatnode.credentials.launched_by_xnat`) the connection
    comes from the environment only: any connection flag is a :class:`ConfigError` (exit 2),
    so that no launch value can send the job's alias token to another host.
    """
    env = os.environ if environ is None else environ
    if launched_by_xnat(env) and settings.given:
        raise ConfigError(refused_in_a_job(
            ", ".join(settings.given),
            "the connection comes from the environment only (a launch value must not redirect the job's token)",
        ))
    return connect(
        settings.host,
        settings.user,
        verify=settings.verify,
        timeout=settings.timeout,
        retry=settings.retry,
        netrc_file=settings.netrc,
        deadline=deadline,
    )
