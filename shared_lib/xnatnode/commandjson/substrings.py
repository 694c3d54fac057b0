"""Which of many keys occur inside a text, without testing every key against every text.

A command may have thousands of inputs, and several warnings ask "does this replacement key occur
in that text (or in another key)?". Testing each key with ``in`` against each text costs keys x
texts, quadratic in the number of inputs (20,000 inputs took minutes). :class:`KeyIndex` instead
looks up, at each place in the text where some key could start (its first character), one window
per distinct key length in a set: the cost grows with the text's length times the number of
distinct key lengths, not with the number of keys. Hand-written because the standard library has no multi-pattern search (``re`` tries an
alternation's branches one by one, the same quadratic cost), and the validator stays standard
library only so that build.sh can run it without a virtual environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator


class KeyIndex:
    """The set of keys to look for, grouped by length."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(key for key in keys if key)
        self._lengths = sorted({len(key) for key in self.keys})
        firsts = "".join(sorted({re.escape(key[0]) for key in self.keys}))
        self._starts = re.compile(f"[{firsts}]") if firsts else None

    def occurrences(self, text: str) -> Iterator[tuple[str, int]]:
        """Every ``(key, start)`` where a key occurs in ``text`` (overlaps included)."""
        if self._starts is None:
            return
        keys, lengths, size = self.keys, self._lengths, len(text)
        for match in self._starts.finditer(text):
            start = match.start()
            for length in lengths:
                if start + length > size:
                    break
                piece = text[start : start + length]
                if piece in keys:
                    yield piece, start

    def found_in(self, text: str) -> set[str]:
        """The keys that occur in ``text``."""
        return {key for key, _start in self.occurrences(text)}
