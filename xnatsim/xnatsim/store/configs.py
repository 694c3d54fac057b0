"""Versioned configuration entries (XNAT's ``/data/config`` and project configs)."""

from __future__ import annotations

from typing import Any

from .base import StoreBase
from .models import ConfigEntry, StoreError, now_text
from .rows import CONFIG_COLS, config_row


class Configs(StoreBase):
    """Config entries by project (``""`` site-wide), tool and path, each change a new version."""

    def get_config(self, project: str, tool: str, path: str, version: int | None = None) -> ConfigEntry | None:
        """The latest (or given) version of a config entry; ``project=""`` is site-wide."""
        sql = f"SELECT {CONFIG_COLS} FROM configs WHERE project=? AND tool=? AND path=?"
        params: list[Any] = [project, tool, path]
        if version is not None:
            sql += " AND version=?"
            params.append(version)
        row = self.db.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchone()
        return config_row(row) if row else None

    def config_history(self, project: str, tool: str, path: str) -> list[ConfigEntry]:
        rows = self.db.execute(f"SELECT {CONFIG_COLS} FROM configs WHERE project=? AND tool=? AND path=? "
                               "ORDER BY version", (project, tool, path))
        return [config_row(r) for r in rows]

    def list_configs(self, project: str, tool: str | None = None) -> list[ConfigEntry]:
        """Latest version of every entry of ``project`` (and ``tool``)."""
        sql = (f"SELECT {CONFIG_COLS} FROM configs c WHERE project=? "
               "AND version=(SELECT max(version) FROM configs d WHERE d.project=c.project AND d.tool=c.tool "
               "AND d.path=c.path)")
        params: list[Any] = [project]
        if tool is not None:
            sql += " AND tool=?"
            params.append(tool)
        return [config_row(r) for r in self.db.execute(sql + " ORDER BY tool, path", params)]

    def put_config(self, project: str, tool: str, path: str, contents: str | None, *, user: str,
                   reason: str = "", status: str | None = None, unversioned: bool = False) -> bool:
        """Store a config entry; returns True when it was new (201), False when replaced/unchanged.

        ``contents=None`` with ``status`` only toggles the status of the current entry.
        """
        with self.write() as db:
            current = self.get_config(project, tool, path)
            if contents is None:
                if current is None or status is None:
                    raise StoreError(400, "No body contents.")
                contents = current.contents
            new_status = status or "enabled"
            if current is not None and current.contents == contents and current.status == new_status:
                return False
            version = 1 if current is None else current.version + (0 if unversioned else 1)
            db.execute(
                "INSERT OR REPLACE INTO configs(project, tool, path, version, contents, status, reason, login,"
                " create_date, unversioned) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project, tool, path, version, contents, new_status, reason, user, now_text(), int(unversioned)),
            )
        return current is None

    def disable_config(self, project: str, tool: str, path: str, *, user: str) -> bool:
        current = self.get_config(project, tool, path)
        if current is None:
            return False
        self.put_config(project, tool, path, current.contents, user=user, status="disabled")
        return True
