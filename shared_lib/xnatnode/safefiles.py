"""Safe writes of output files: the one way every command writes a file.

An output folder may be shared (XNAT's build space, a group-writable mount), so a planted link or
file must not redirect a write. Each file is written to a new temporary name in the same folder,
created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``) with an unpredictable name, then renamed
over the final name in one step: the rename replaces a link planted at the final name instead of
following it, and readers never see half a file. On any failure (a full disk, a signal) the
temporary file is removed and the final name is left as it was.

Hand-written rather than :func:`tempfile.mkstemp`: mkstemp cannot open relative to a directory
descriptor, and this holds the output folder open so that a folder swapped for a link mid-write
cannot move the rename elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

#: Prefix of the temporary names (hidden, so a listing of the folder does not show them).
TEMP_PREFIX = ".xnatnode-"
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
    os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


@overload
def open_output(path: Path | str, mode: Literal["w"] = "w", *, encoding: str = "utf-8",
                newline: str | None = None) -> contextlib.AbstractContextManager[IO[str]]: ...


@overload
def open_output(path: Path | str, mode: Literal["wb"], *, encoding: str = "utf-8",
                newline: str | None = None) -> contextlib.AbstractContextManager[IO[bytes]]: ...


def open_output(path: Path | str, mode: str = "w", *, encoding: str = "utf-8",
                newline: str | None = None) -> contextlib.AbstractContextManager[IO[Any]]:
    """``with open_output(path) as fh: fh.write(...)``: ``path`` appears, complete, only when the
    block ends without an exception (``mode`` ``"w"`` for text, ``"wb"`` for bytes)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_output writes new files only (mode 'w' or 'wb'), not {mode!r}")
    return _output(Path(path), mode, encoding, newline)


@contextlib.contextmanager
def _output(path: Path, mode: str, encoding: str, newline: str | None) -> Iterator[IO[Any]]:
    name = path.name
    if not name or name in (".", ".."):
        raise ValueError(f"not a file name: {path}")
    dir_fd = os.open(path.parent, _DIR_FLAGS)
    try:
        temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}-{name}"[:255]
        fd = os.open(temp, _OPEN_FLAGS, 0o666, dir_fd=dir_fd)
        renamed = False
        try:
            if "b" in mode:
                handle: IO[Any] = os.fdopen(fd, "wb")
            else:
                handle = os.fdopen(fd, "w", encoding=encoding, newline=newline)
            try:
                with handle:
                    yield handle
            except OSError as exc:
                if exc.filename is None:
                    exc.filename = str(path)  # "no space left to write <path>"
                raise
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            renamed = True
        finally:
            if not renamed:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def write_text(path: Path | str, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` safely (see the module docstring); returns ``path``."""
    with open_output(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` safely (see the module docstring); returns ``path``."""
    with open_output(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def leftovers(directory: Path | str) -> list[Path]:
    """Temporary files of interrupted writes in ``directory`` (none after a clean run)."""
    return sorted(p for p in Path(directory).iterdir() if p.name.startswith(TEMP_PREFIX))
