"""Users, project roles, web sessions and alias tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any

from .base import StoreBase
from .checks import check_name
from .models import ROLES, Role, StoreError, User

TOKEN_LIFETIME_MS = 48 * 3600 * 1000


def _hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + "\x00" + secret).encode("utf-8")).hexdigest()


_USER_COLS = "rowid, login, admin, enabled, first_name, last_name, email"


def _user(r: tuple[Any, ...]) -> User:
    return User(int(r[0]), r[1], bool(r[2]), bool(r[3]), r[4] or "", r[5] or "", r[6] or "")


def _alive(enabled: int | None, expires: int | None) -> bool:
    """Whether a token row (``enabled``, ``expires`` in epoch ms) may still be used."""
    return bool(enabled) and expires is not None and expires >= time.time() * 1000


class Accounts(StoreBase):
    """Users (salted password hashes), roles, JSESSIONID sessions and alias tokens."""

    def add_user(self, login: str, password: str, *, admin: bool = False, first_name: str = "",
                 last_name: str = "", email: str = "") -> None:
        """Create or replace a user (password stored salted and hashed)."""
        check_name(login, "user name")
        salt = secrets.token_hex(8)
        with self.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO users(login, salt, pw_hash, admin, enabled, first_name, last_name, email)"
                " VALUES(?, ?, ?, ?, 1, ?, ?, ?)",
                (login, salt, _hash_secret(salt, password), int(admin), first_name, last_name, email),
            )

    def check_password(self, login: str, password: str) -> bool:
        row = self.db.execute("SELECT salt, pw_hash, enabled FROM users WHERE login=?", (login,)).fetchone()
        if row is None or not row[2]:
            return False
        return hmac.compare_digest(row[1], _hash_secret(row[0], password))

    def user_exists(self, login: str) -> bool:
        return self.db.execute("SELECT 1 FROM users WHERE login=?", (login,)).fetchone() is not None

    def is_admin(self, login: str | None) -> bool:
        if login is None:
            return False
        row = self.db.execute("SELECT admin FROM users WHERE login=?", (login,)).fetchone()
        return bool(row and row[0])

    def list_users(self) -> list[User]:
        """Every user, by login."""
        return [_user(r) for r in self.db.execute(f"SELECT {_USER_COLS} FROM users ORDER BY login")]

    def get_user(self, login: str) -> User | None:
        row = self.db.execute(f"SELECT {_USER_COLS} FROM users WHERE login=?", (login,)).fetchone()
        return _user(row) if row else None

    def set_role(self, project: str, login: str, role: Role | None) -> None:
        """Make ``login`` an owner/member/collaborator of ``project`` (None removes the role)."""
        if role is not None and role not in ROLES:
            raise StoreError(400, f"Unknown role {role!r}.")
        with self.write() as db:
            if role is None:
                db.execute("DELETE FROM roles WHERE project=? AND login=?", (project, login))
            else:
                db.execute("INSERT OR REPLACE INTO roles(project, login, role) VALUES(?, ?, ?)",
                           (project, login, role))

    def role(self, project: str, login: str | None) -> str | None:
        if login is None:
            return None
        row = self.db.execute("SELECT role FROM roles WHERE project=? AND login=?", (project, login)).fetchone()
        return str(row[0]) if row else None

    def create_session(self, login: str, *, token: str | None = None) -> str:
        """A new HTTP session id (the JSESSIONID value) for ``login``.

        ``token`` is the alias of the token the session was made with: the session then ends when
        the token is revoked or expires (see :meth:`session_login`).
        """
        sid = secrets.token_hex(16).upper()
        with self.write() as db:
            db.execute("INSERT INTO sessions(id, login, created, token) VALUES(?, ?, ?, ?)",
                       (sid, login, time.time(), token))
        return sid

    def session_login(self, sid: str) -> tuple[str, str | None] | None:
        """``(login, token alias or None)`` of a live session, else None.

        A session made with an alias token does not outlive it: once the token is revoked or has
        expired the session is deleted and None returned (xnatsim's choice, see the README).
        """
        row = self.db.execute(
            "SELECT s.login, s.token, t.enabled, t.expires FROM sessions s"
            " LEFT JOIN tokens t ON t.alias = s.token WHERE s.id=?", (sid,)).fetchone()
        if row is None:
            return None
        login, token, enabled, expires = row
        if token is not None and not _alive(enabled, expires):
            self.delete_session(sid)
            return None
        return str(login), token

    def session_user(self, sid: str) -> str | None:
        found = self.session_login(sid)
        return found[0] if found else None

    def delete_session(self, sid: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM sessions WHERE id=?", (sid,))

    def issue_token(self, login: str, *, lifetime_ms: int = TOKEN_LIFETIME_MS,
                    parent: str | None = None) -> dict[str, Any]:
        """Issue an alias token for ``login``; returns XNAT's token JSON (``alias``, ``secret`` …).

        The Container Service emulation calls this to inject ``XNAT_USER``/``XNAT_PASS``.
        ``parent`` is the alias token the request asking for it authenticated with: the new token
        then expires no later than its parent and is revoked with it (:meth:`revoke_token`), so a
        job's token cannot mint one that outlives the job.
        """
        if not self.user_exists(login):
            raise StoreError(404, f"User {login} not found.")
        alias = str(uuid.uuid4())
        secret = secrets.token_urlsafe(48)[:64]
        salt = secrets.token_hex(8)
        created = int(time.time() * 1000)
        expires = created + lifetime_ms
        with self.write() as db:
            if parent is not None:
                row = db.execute("SELECT enabled, expires FROM tokens WHERE alias=?", (parent,)).fetchone()
                if row is None or not _alive(*row):
                    raise StoreError(401, "Authentication failed.")
                expires = min(expires, int(row[1]))
            cur = db.execute(
                "INSERT INTO tokens(alias, salt, secret_hash, login, created, expires, enabled, parent)"
                " VALUES(?, ?, ?, ?, ?, ?, 1, ?)",
                (alias, salt, _hash_secret(salt, secret), login, created, expires, parent),
            )
            token_id = int(cur.lastrowid or 0)
        return {
            "secret": secret, "estimatedExpirationTime": expires, "alias": alias,
            "xdatUserId": login, "singleUse": False, "id": token_id, "disabled": 0,
            "created": created, "enabled": True, "timestamp": created,
        }

    def validate_token(self, alias: str, secret: str) -> str | None:
        """The login an enabled, unexpired token belongs to, else None."""
        row = self.db.execute(
            "SELECT salt, secret_hash, login, expires, enabled FROM tokens WHERE alias=?", (alias,)).fetchone()
        if row is None or not _alive(row[4], row[3]):
            return None
        return str(row[2]) if hmac.compare_digest(row[1], _hash_secret(row[0], secret)) else None

    def revoke_token(self, alias: str) -> bool:
        """Disable a token and every token issued with it (see :meth:`issue_token`); True when it existed."""
        with self.write() as db:
            cur = db.execute(  # the statement starts with UPDATE so that sqlite3 reports rowcount
                "UPDATE tokens SET enabled=0 WHERE alias IN (WITH RECURSIVE issued(alias) AS (SELECT ?"
                " UNION SELECT t.alias FROM tokens t JOIN issued i ON t.parent = i.alias) SELECT alias FROM issued)",
                (alias,))
            return cur.rowcount > 0

    def list_tokens(self, login: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, alias, login, created, expires, enabled FROM tokens WHERE login=? ORDER BY id",
            (login,)).fetchall()
        return [{"id": r[0], "alias": r[1], "xdatUserId": r[2], "created": r[3],
                 "estimatedExpirationTime": r[4], "enabled": bool(r[5]), "singleUse": False} for r in rows]
