"""The few Java behaviours XNAT's validation messages depend on, reproduced in Python.

XNAT builds its messages with Java string concatenation (``null`` prints as ``null``), joins
``HashSet``/``HashMap`` contents (iteration order follows String hash codes, not insertion), uses
``String.split`` (trailing empty strings dropped) and Commons Lang ``StringUtils.isBlank``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: ``Character.isWhitespace``: Unicode space separators except the no-break ones, plus controls.
_JAVA_WHITESPACE = frozenset(
    "\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2008\u2009\u200a\u2028\u2029\u205f\u3000"
)


def is_blank(value: str | None) -> bool:
    """``StringUtils.isBlank``: null, empty or only Java whitespace."""
    return value is None or all(ch in _JAVA_WHITESPACE for ch in value)


def jstr(value: object) -> str:
    """A value as Java's ``"" + value`` renders it (``null``, ``true``, ``[a, b]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(jstr(item) for item in value) + "]"
    return str(value)


def split_count(value: str, sep: str) -> int:
    """``value.split(sep).length`` in Java: trailing empty strings are removed."""
    parts = value.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return len(parts) if parts else (1 if value == "" else 0)


def string_hash(value: str | None) -> int:
    """``String.hashCode`` (over UTF-16 code units, 32-bit signed wrap-around); null hashes to 0."""
    if value is None:
        return 0
    h = 0
    data = value.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] | data[i + 1] << 8)) & 0xFFFFFFFF
    return h


def _table_size_for(capacity: int) -> int:
    size = 1
    while size < capacity:
        size <<= 1
    return size


class JavaHashSet:
    """Insertion into a ``java.util.HashSet`` of strings, to reproduce its iteration order.

    ``capacity`` is the constructor argument (``new HashSet<>(n)``); ``None`` means ``new
    HashSet<>()``. Only the final table size matters for the order: buckets are visited in index
    order and entries inside a bucket keep insertion order (resizes split buckets stably).
    """

    def __init__(self, capacity: int | None = None) -> None:
        self._items: list[str | None] = []
        self._present: set[str | None] = set()
        self._cap = 0
        self._threshold = 0 if capacity is None else _table_size_for(capacity)

    @classmethod
    def copy_of(cls, items: Iterable[str | None]) -> JavaHashSet:
        """``new HashSet<>(collection)``."""
        materialised = list(items)
        result = cls(max(int(len(materialised) / 0.75) + 1, 16))
        for item in materialised:
            result.add(item)
        return result

    def _resize(self) -> None:
        old_cap, old_thr, new_thr = self._cap, self._threshold, 0
        if old_cap > 0:
            new_cap = old_cap << 1
            if old_cap >= 16:
                new_thr = old_thr << 1
        elif old_thr > 0:
            new_cap = old_thr
        else:
            new_cap, new_thr = 16, 12
        if new_thr == 0:
            new_thr = int(new_cap * 0.75)
        self._cap, self._threshold = new_cap, new_thr

    def add(self, item: str | None) -> bool:
        """Add ``item``; False when already present (like ``Set.add``)."""
        if item in self._present:
            return False
        if self._cap == 0:
            self._resize()
        self._items.append(item)
        self._present.add(item)
        if len(self._items) > self._threshold:
            self._resize()
        return True

    def discard(self, item: str | None) -> None:
        if item in self._present:
            self._present.remove(item)
            self._items.remove(item)

    def __contains__(self, item: object) -> bool:
        return item in self._present

    def __len__(self) -> int:
        return len(self._items)

    def ordered(self) -> list[str | None]:
        """The iteration order Java would produce."""
        mask = max(self._cap, 1) - 1

        def bucket(item: str | None) -> int:
            h = string_hash(item)
            return (h ^ (h >> 16)) & mask

        return sorted(self._items, key=bucket)  # sorted() is stable: bucket order, then insertion

    def join(self) -> str:
        """``StringUtils.join(set, ", ")``."""
        return ", ".join(jstr(item) for item in self.ordered())
