"""What a written report or record says about when and by what it was made."""

from __future__ import annotations

import datetime as dt

from xnatnode import __version__


def utc_timestamp(when: dt.datetime | None = None) -> str:
    """``when`` (default: now) in UTC to the second, ISO 8601 with ``Z``: ``2026-01-31T12:00:00Z``."""
    moment = dt.datetime.now(dt.UTC) if when is None else when.astimezone(dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def generator(command: str) -> str:
    """What a report names as its generator: ``xnatnode <version> <command>``."""
    return f"xnatnode {__version__} {command}"
