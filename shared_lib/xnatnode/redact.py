"""Keep secrets out of logs, messages and reports.

Every password or alias-token secret the client resolves is registered here (with its
URL-encoded and HTTP Basic forms); :func:`redact` masks them in any text, and
:class:`RedactingFormatter` applies that to every log line, tracebacks included.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()


def register_secret(secret: str | None, *, user: str | None = None) -> None:
    """Remember ``secret`` (and its encoded forms) so that :func:`redact` masks it."""
    global _ordered
    if not secret:
        return
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    if user is not None:
        forms.add(base64.b64encode(f"{user}:{secret}".encode()).decode("ascii"))
    with _lock:
        _secrets.update(form for form in forms if form)
        # Longest first, so that a secret containing another is masked whole.
        _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    global _ordered
    with _lock:
        _secrets.clear()
        _ordered = ()


#: The password of a ``scheme://user:password@host`` URL (given by mistake, say as --xnat-host).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def redact(text: str) -> str:
    """``text`` with every registered secret, and any password in a URL, replaced by ``***``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    return text


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like value with secrets masked in every string (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments and traceback) never shows a secret."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
