"""Errors raised by :mod:`xnatnode.client`; :mod:`xnatnode.runtime` maps them to exit codes.

Messages name the method and URL (never credentials) and say what to check.
"""

from __future__ import annotations


class XnatError(Exception):
    """A request to XNAT failed, or the connection could not be set up."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url


class ConfigError(XnatError):
    """Connection settings are missing or malformed (no host, no credentials, bad netrc)."""


class Unreachable(XnatError):
    """XNAT could not be reached: unknown host, connection refused, time-out, TLS failure, 502-504."""


class Unauthorized(XnatError):
    """HTTP 401: the credentials were refused."""


class Forbidden(XnatError):
    """HTTP 403: logged in, but not allowed to do this."""


class NotFound(XnatError):
    """HTTP 404: the object or path does not exist (or is invisible to this user)."""


class Conflict(XnatError):
    """HTTP 409: the object already exists or the request clashes with its state."""
