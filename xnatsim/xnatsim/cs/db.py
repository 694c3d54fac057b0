"""Persistence for the Container Service and Event Service: JSON documents in a small SQLite file.

One table of ``(kind, id, json)`` rows and one of id counters; thread-safe behind one lock.
``:memory:`` works for tests.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["DocumentDB"]

Doc = dict[str, Any]


class DocumentDB:
    """Documents by (kind, integer id); kinds: command, site-config, container, subscription…"""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS docs (kind TEXT, id INTEGER, key TEXT, body TEXT, "
            "PRIMARY KEY (kind, id))"
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS docs_key ON docs (kind, key)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)")

    def next_id(self, name: str) -> int:
        """A new id from counter ``name`` (1, 2, …)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            self._conn.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (name, value))
            return value

    def put(self, kind: str, ident: int, doc: Doc, key: str = "") -> None:
        """Store ``doc`` (replacing); ``key`` is an indexed lookup string (e.g. a project id)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", (kind, ident, key, json.dumps(doc))
            )

    def get(self, kind: str, ident: int) -> Doc | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM docs WHERE kind=? AND id=?", (kind, ident)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str, key: str | None = None) -> list[Doc]:
        """Every document of ``kind`` (only those with ``key`` when given), by id."""
        with self._lock:
            if key is None:
                rows = self._conn.execute("SELECT body FROM docs WHERE kind=? ORDER BY id", (kind,))
            else:
                rows = self._conn.execute(
                    "SELECT body FROM docs WHERE kind=? AND key=? ORDER BY id", (kind, key)
                )
            return [json.loads(r[0]) for r in rows.fetchall()]

    def delete(self, kind: str, ident: int) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM docs WHERE kind=? AND id=?", (kind, ident))
            return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
