"""Who may do what: XNAT's project roles (owner, member, collaborator) and accessibility.

* site admins: everything;
* owner: read, create/edit, delete; member: read, create/edit; collaborator: read only;
* ``public`` projects are readable by every logged-in user; ``protected`` ones are listed but their
  data is not readable; ``private`` ones are invisible to non-members.

Unreadable projects answer 403 on direct access (as XNAT's restlets do) and are left out of
listings.
"""

from __future__ import annotations

from typing import Literal

from xnatsim.routing import HTTPError
from xnatsim.store import Project, Store

Action = Literal["read", "edit", "delete"]


def can(store: Store, user: str | None, project: Project, action: Action) -> bool:
    if user is None:
        return False
    if store.is_admin(user):
        return True
    role = store.role(project.id, user)
    if action == "read":
        return role is not None or project.accessibility == "public"
    if action == "edit":
        return role in ("owner", "member")
    return role == "owner"


def require(store: Store, user: str | None, project: Project, action: Action) -> None:
    """403 unless ``user`` may ``action`` in ``project``."""
    if can(store, user, project, action):
        return
    if action == "read":
        raise HTTPError(403, f"User {user} does not have access to project {project.id}.")
    if action == "edit":
        raise HTTPError(403, "Specified user account has insufficient create privileges for experiments in "
                             "this project." if user else "Authentication required.")
    raise HTTPError(403, f"User {user} does not have permission to delete data in project {project.id}.")


def visible_projects(store: Store, user: str | None) -> list[str] | None:
    """IDs of projects ``user`` may read, or None meaning all (admins)."""
    if store.is_admin(user):
        return None
    rows = store.query(
        "SELECT id FROM projects WHERE accessibility='public' OR id IN (SELECT project FROM roles WHERE login=?)",
        (user or "",))
    return [r[0] for r in rows]


def listed_projects(store: Store, user: str | None) -> list[str] | None:
    """IDs of projects shown in ``/data/projects`` (readable + protected), None meaning all."""
    if store.is_admin(user):
        return None
    rows = store.query(
        "SELECT id FROM projects WHERE accessibility IN ('public', 'protected') "
        "OR id IN (SELECT project FROM roles WHERE login=?)", (user or "",))
    return [r[0] for r in rows]
