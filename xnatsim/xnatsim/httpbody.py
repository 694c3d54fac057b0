"""Request bodies as xnatsim's handlers read them: a bounded view of the connection's stream, and
``Transfer-Encoding: chunked`` decoding (``http.server`` does neither)."""

from __future__ import annotations

import io
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import IO, BinaryIO

from xnatsim.routing import HTTPError


class BoundedReader:
    """The request body: at most ``length`` bytes of the socket stream."""

    def __init__(self, stream: BinaryIO | io.BufferedIOBase, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1, /) -> bytes:
        return self._take(self._stream.read, size)

    def readline(self, size: int = -1, /) -> bytes:
        return self._take(self._stream.readline, size)

    def _take(self, read: Callable[[int], bytes], size: int) -> bytes:
        """``read(n)`` with ``n`` capped at what is left of the body."""
        if self.remaining <= 0:
            return b""
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = read(size)
        self.remaining -= len(data)
        return data

    def drain(self, limit: int = 64 * 1024**2) -> bool:
        """Discard what the handler did not read; False when too much is left (close instead)."""
        if self.remaining > limit:
            return False
        try:
            while self.remaining > 0:
                if not self.read(min(self.remaining, 1 << 20)):
                    return False
        except OSError:  # the client stalled (idle_timeout) or went away
            return False
        return True


def dechunk(stream: BinaryIO | io.BufferedIOBase, out: IO[bytes], limit: int,
             handler: BaseHTTPRequestHandler) -> int:
    """Decode a ``Transfer-Encoding: chunked`` body into ``out``; returns its length (413 over ``limit``)."""
    total = 0
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            handler.close_connection = True
            raise HTTPError(400, "Malformed chunked request body.") from exc
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return total
        total += size
        if total > limit:
            handler.close_connection = True
            raise HTTPError(413, f"Request body too large (> {limit} bytes).")
        remaining = size
        while remaining > 0:
            data = stream.read(min(remaining, 1 << 20))
            if not data:
                handler.close_connection = True
                raise HTTPError(400, "The chunked request body ended early.")
            out.write(data)
            remaining -= len(data)
        stream.readline(1024)  # the CRLF after each chunk
