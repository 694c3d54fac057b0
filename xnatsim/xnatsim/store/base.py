"""The store's foundation: folders, one SQLite connection per thread, write transactions,
change listeners and site-wide IDs."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .models import Listener
from .schema import DB_NAME, SCHEMA, upgrade

log = logging.getLogger("xnatsim.store")


class StoreBase:
    """Folders and database of a store; the other layers add their tables' operations."""

    def __init__(self, data_dir: str | Path, *, site_id: str = "XNATSIM") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.archive_dir = self.data_dir / "archive"
        self.tmp_dir = self.data_dir / "tmp"
        self.build_dir = self.data_dir / "build"
        for folder in (self.data_dir, self.archive_dir, self.tmp_dir, self.build_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / DB_NAME
        self.site_id = site_id
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._pending: list[tuple[str, str, dict[str, Any]]] = []
        db = self.db
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        upgrade(db)
        db.commit()

    # -- connections and transactions ------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only SQL query on this thread's connection (for listings and other modules)."""
        return self.db.execute(sql, tuple(params)).fetchall()

    def cursor(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Like :meth:`query` but returns the cursor, for streaming large results."""
        return self.db.execute(sql, tuple(params))

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A serialised write transaction; listeners fire after it commits."""
        with self._write_lock:
            db = self.db
            outer = db.in_transaction
            if not outer:
                db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if not outer:
                    db.execute("ROLLBACK")
                    self._pending.clear()
                raise
            if outer:
                return
            db.execute("COMMIT")
            events, self._pending = self._pending, []
        for event in events:
            self._notify(*event)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._conn_lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- listeners ------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(event, xsi_type, object_dict)`` after every committed change (see module doc)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def _emit(self, event: str, xsi_type: str, obj: dict[str, Any]) -> None:
        self._pending.append((event, xsi_type, obj))

    def _notify(self, event: str, xsi_type: str, obj: dict[str, Any]) -> None:
        for fn in list(self._listeners):
            try:
                fn(event, xsi_type, obj)
            except Exception:
                log.exception("store listener %r failed on %s %s", fn, event, xsi_type)

    # -- ids ------------------------------------------------------------------------

    def next_id(self, code: str) -> str:
        """The next never-used ID ``<SITE>_<code>NNNNN`` (code ``S`` subjects, ``E`` experiments)."""
        prefix = f"{self.site_id}_{code}"
        with self.write() as db:
            row = db.execute("SELECT value FROM counters WHERE prefix=?", (prefix,)).fetchone()
            value = (row[0] if row else 0) + 1
            table = "subjects" if code == "S" else "experiments"
            while db.execute(f"SELECT 1 FROM {table} WHERE id=?", (f"{prefix}{value:05d}",)).fetchone():
                value += 1
            db.execute(
                "INSERT INTO counters(prefix, value) VALUES(?, ?) "
                "ON CONFLICT(prefix) DO UPDATE SET value=excluded.value",
                (prefix, value),
            )
        return f"{prefix}{value:05d}"
