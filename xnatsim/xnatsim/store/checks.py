"""What the store accepts as a name (label, ID) and as a file path inside a resource."""

from __future__ import annotations

from .models import StoreError

#: XNAT's catalog file in every resource folder: ``<label>_catalog.xml``
CATALOG_SUFFIX = "_catalog.xml"
#: the longest label, ID or file name (UTF-8 bytes): a folder or file name, with room for ``_catalog.xml``
MAX_NAME_BYTES = 200
#: the longest file path inside a resource (UTF-8 bytes)
MAX_PATH_BYTES = 1024


def check_name(value: str, what: str) -> str:
    """Refuse names that could escape a folder: empty, ``.``/``..``, ``/``, ``\\``, NUL; or too long for one."""
    if not value or value in (".", "..") or any(c in value for c in "/\\\x00") or value != value.strip():
        raise StoreError(400, f"Invalid {what}: {value!r}.")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise StoreError(400, f"Invalid {what}: longer than {MAX_NAME_BYTES} bytes.")
    return value


def check_relpath(value: str) -> str:
    """Validate a file path inside a resource (``a/b.txt``); refuse absolute and ``..`` paths."""
    if not value or "\x00" in value or "\\" in value or value.startswith("/"):
        raise StoreError(400, f"Invalid file path: {value!r}.")
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise StoreError(400, f"Invalid file path: {value!r}.")
    if len(value.encode("utf-8")) > MAX_PATH_BYTES or any(len(p.encode("utf-8")) > 255 for p in parts):
        raise StoreError(400, f"Invalid file path: longer than {MAX_PATH_BYTES} bytes or a part over 255.")
    if parts[-1].endswith(CATALOG_SUFFIX):
        raise StoreError(400, f"Reserved file name: {parts[-1]!r}.")
    return value
