"""Where the XNAT host, user and password come from.

Precedence per value (the Container Service injects the environment variables):

* host: argument (``--xnat-host``) -> ``XNAT_HOST``;
* user: argument (``--xnat-user``) -> ``XNAT_USER`` -> the netrc entry of the host;
* password: argument (Python API only, never a flag) -> ``XNAT_PASS`` -> the netrc entry
  (used only when its login matches the user, or no user was given).

Inside a Container Service job ``XNAT_USER`` is the *alias* of a per-launch alias token and
``XNAT_PASS`` its *secret*; both are used as HTTP Basic credentials. The rule for "launched by
XNAT" (:func:`launched_by_xnat`): ``XNAT_HOST``, ``XNAT_USER`` and ``XNAT_PASS`` are all set and
non-empty, as the Container Service sets them in every job (spec B.6); a person running a command
by hand rarely sets all three. A password from ``XNAT_PASS`` is only ever sent to ``XNAT_HOST``:
a host given otherwise (``--xnat-host``, the API) is refused while ``XNAT_PASS`` is in use. The netrc file is
``netrc_file`` -> ``$NETRC`` -> ``~/.netrc``, and the machine key is the host's ``host:port``
(as xnatpy looks it up) or, failing that, the bare host name (as curl does).
"""

from __future__ import annotations

import netrc
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from xnatnode.errors import ConfigError
from xnatnode.redact import MASK, register_secret

ENV_HOST = "XNAT_HOST"
ENV_USER = "XNAT_USER"
ENV_PASS = "XNAT_PASS"

_ALIAS_TOKEN = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


@dataclass(frozen=True, repr=False)
class Credentials:
    """A host and the login for it; ``repr``/``str`` never show the password."""

    host: str
    user: str
    password: str
    source: str = "arguments"

    def __repr__(self) -> str:
        return (
            f"Credentials(host={self.host!r}, user={self.user!r}, password='{MASK}', "
            f"source={self.source!r})"
        )

    __str__ = __repr__

    @property
    def is_alias_token(self) -> bool:
        """Whether ``user`` looks like an XNAT alias token (a UUID), as the CS injects."""
        return bool(_ALIAS_TOKEN.match(self.user))


def launched_by_xnat(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a Container Service job: ``XNAT_HOST``, ``XNAT_USER`` and
    ``XNAT_PASS`` all set (see the module docstring)."""
    env = os.environ if environ is None else environ
    return all(env.get(name) for name in (ENV_HOST, ENV_USER, ENV_PASS))


def refused_in_a_job(what: str, because: str) -> str:
    """The message refusing ``what`` in a Container Service job (see :func:`launched_by_xnat`),
    with the way out for a run by hand that only looks like one."""
    return (f"{what} refused: XNAT's Container Service launched this job ({ENV_HOST}, {ENV_USER} and "
            f"{ENV_PASS} are set), so {because}. Running by hand? Leave {ENV_PASS} unset and keep the "
            "password in ~/.netrc (or --netrc FILE)")


def normalize_host(host: str) -> str:
    """``scheme://host[:port][/path]`` without a trailing slash; ``https://`` if no scheme is given."""
    text = host.strip()
    if not text:
        raise ConfigError("the XNAT host is empty: set XNAT_HOST or pass --xnat-host URL")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"the XNAT host must be an http:// or https:// URL, not {parts.scheme}://..."
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "the XNAT host URL must not contain a user or password: "
            "use XNAT_USER/XNAT_PASS or ~/.netrc"
        )
    if not parts.hostname:
        raise ConfigError(f"the XNAT host {text!r} has no host name")
    if parts.query or parts.fragment:
        raise ConfigError(f"the XNAT host {text!r} must not have a query or fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(f"the XNAT host {text!r} has a bad port: {exc}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def netrc_path(netrc_file: str | os.PathLike[str] | None = None,
               environ: Mapping[str, str] | None = None) -> Path:
    """The netrc file to read: the argument, else ``$NETRC``, else ``~/.netrc``."""
    env = os.environ if environ is None else environ
    if netrc_file:
        return Path(netrc_file)
    if env.get("NETRC"):
        return Path(env["NETRC"])
    return Path.home() / ".netrc"


def _shown(path: Path) -> str:
    """The netrc path as the admin knows it: ``~/.netrc`` for the default one."""
    return "~/.netrc" if path == Path.home() / ".netrc" else str(path)


def netrc_login(host: str, path: Path) -> tuple[str, str] | None:
    """``(login, password)`` of the netrc entry for ``host``'s ``host:port`` or host name."""
    if not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:
        # The parser's message may quote a token of the file: report only where it failed.
        raise ConfigError(f"cannot parse netrc file {path} (line {exc.lineno})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read netrc file {path}: {exc.strerror}") from None
    parts = urlsplit(host)
    for machine in (parts.netloc, parts.hostname or ""):
        found = entries.authenticators(machine) if machine else None
        if found is not None:
            login, _account, password = found
            if login and password:
                return login, password
    return None


def resolve_credentials(
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    *,
    netrc_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Resolve host, user and password (see the module docstring) and register the secret."""
    env = os.environ if environ is None else environ
    raw_host = host or env.get(ENV_HOST)
    if not raw_host:
        raise ConfigError(
            f"no XNAT host: set {ENV_HOST} (the Container Service does) or pass --xnat-host URL"
        )
    base = normalize_host(raw_host)
    sources: list[str] = []
    if user:
        sources.append("user from arguments")
    elif env.get(ENV_USER):
        user = env[ENV_USER]
        sources.append(f"user from {ENV_USER}")
    if password:
        sources.append("password from arguments")
    elif env.get(ENV_PASS):
        password = env[ENV_PASS]
        sources.append(f"password from {ENV_PASS}")
        home = env.get(ENV_HOST)
        if home and normalize_host(home) != base:
            raise ConfigError(
                f"the password in {ENV_PASS} belongs to {ENV_HOST} ({normalize_host(home)}) and "
                f"is never sent to another host ({base}); unset {ENV_PASS} to use netrc there"
            )
    path = netrc_path(netrc_file, env)
    if not password:
        if (netrc_file or env.get("NETRC")) and not path.is_file():
            where = "--netrc" if netrc_file else "$NETRC"
            raise ConfigError(f"the netrc file {path} ({where}) does not exist")
        found = netrc_login(base, path)
        if found is not None and (not user or found[0] == user):
            if not user:
                sources.append(f"user from {path}")
            user, password = found
            sources.append(f"password from {path}")
    if not user:
        raise ConfigError(
            f"no XNAT credentials for {base}: set {ENV_USER} and {ENV_PASS} "
            f"(an alias token works), or add 'machine {urlsplit(base).netloc}' to {_shown(path)}"
        )
    if not password:
        raise ConfigError(
            f"no password for XNAT user {user!r} at {base}: set {ENV_PASS} "
            f"or add 'machine {urlsplit(base).netloc} login {user} password ...' to {_shown(path)}"
        )
    register_secret(password, user=user)
    return Credentials(host=base, user=user, password=password, source=", ".join(sources))
