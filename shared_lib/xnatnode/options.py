"""Command-line flag groups shared by the commands, kept free of heavy imports.

Building ``xnatnode``'s parser imports every command module, so the flags live here rather than
beside the code that uses them (:mod:`xnatnode.client` imports ``requests``): ``xnatnode --version``
and argument errors stay fast in a container.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from xnatnode.credentials import ENV_PASS, ENV_USER

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3


def positive_float(text: str) -> float:
    """An argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def int_in_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}: {text!r}")
        return value

    convert.__name__ = f"int from {low} to {high}"
    return convert


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the XNAT connection flags. Passwords come only from ``XNAT_PASS`` or netrc."""
    group = parser.add_argument_group(
        "XNAT connection",
        f"Credentials come from {ENV_USER}/{ENV_PASS} (set by the Container Service: an alias "
        "token) or from the netrc file; a password is never a command-line flag.",
    )
    group.add_argument("--xnat-host", metavar="URL",
                       help="XNAT base URL (default: $XNAT_HOST)")
    group.add_argument("--xnat-user", metavar="USER",
                       help=f"user or alias token (default: ${ENV_USER}, else the netrc login)")
    tls = group.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", metavar="FILE",
                     help="PEM file of CA certificates to verify XNAT's TLS certificate with")
    tls.add_argument("--insecure", action="store_true",
                     help="do not verify XNAT's TLS certificate (not recommended)")
    group.add_argument("--timeout", metavar="SECONDS", type=positive_float,
                       default=DEFAULT_TIMEOUT,
                       help=f"time-out of one request (default: {DEFAULT_TIMEOUT:g})")
    group.add_argument("--retries", metavar="N", type=int_in_range(0, 100), default=DEFAULT_RETRIES,
                       help=f"retries of a failed idempotent request (default: {DEFAULT_RETRIES})")
    group.add_argument("--netrc", metavar="FILE",
                       help="netrc file with the password (default: $NETRC, else ~/.netrc)")
