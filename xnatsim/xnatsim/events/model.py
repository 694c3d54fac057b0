"""Typed Event Service objects and their JSON as XNAT writes it (``SubscriptionCreator``,
``EventFilterCreator``, ``Subscription``, ``SubscriptionDelivery``; label-validation.md §3).

Each class reads the JSON XNAT accepts (``from_doc``) and writes the JSON XNAT serves
(``to_doc``); the database stores the ``to_doc`` form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]

ACTION_PREFIX = "org.nrg.containers.services.CommandActionProvider:"
SESSION_EVENT = "org.nrg.xnat.eventservice.events.SessionEvent"
SCAN_EVENT = "org.nrg.xnat.eventservice.events.ScanEvent"


@dataclass(frozen=True, slots=True)
class EventType:
    """An event class XNAT offers for subscriptions and the statuses it fires with."""

    id: str
    display_name: str
    node_type: str
    statuses: tuple[str, ...]
    description: str

    def to_doc(self) -> Doc:
        return {"type": self.id, "display-name": self.display_name, "node-type": self.node_type,
                "statuses": list(self.statuses), "description": self.description}


#: ``SessionEvent`` fires CREATED on a session's first save (DICOM archive, or a REST PUT, even
#: of an empty session), MERGED when a merge workflow saves it, DELETED; an update is no event.
EVENT_TYPES: dict[str, EventType] = {
    SESSION_EVENT: EventType(SESSION_EVENT, "Image Session Event", "Session", ("CREATED", "MERGED", "DELETED"),
                             "Image session created, merged or deleted."),
    SCAN_EVENT: EventType(SCAN_EVENT, "Scan Event", "Scan", ("CREATED", "UPDATED", "DELETED"),
                          "Scan created, updated or deleted."),
}


class SubscriptionError(ValueError):
    """A subscription refused (message is XNAT-like; ``status`` the HTTP code)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class EventFilter:
    """``event-filter``: which events a subscription takes."""

    event_type: str
    status: str = "CREATED"
    project_ids: list[str] = field(default_factory=list)
    #: JSONPath predicate on the event object, evaluated as ``$[?(<filter>)]``
    payload_filter: str | None = None
    #: what else the client sent (``filter-nodes``, ``schedule`` …), kept and served back
    extra: Doc = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Any) -> EventFilter:
        if not isinstance(doc, dict):
            raise SubscriptionError("event-filter must be a JSON object.")
        known = {"event-type", "status", "project-ids", "payload-filter", "json-path-filter"}
        projects = doc.get("project-ids") or []
        if not isinstance(projects, list):
            raise SubscriptionError("event-filter.project-ids must be a list of project IDs.")
        # XNAT's EventFilterCreator names it payload-filter; older clients send json-path-filter.
        flt = doc.get("payload-filter") or doc.get("json-path-filter")
        return cls(event_type=str(doc.get("event-type") or ""), status=str(doc.get("status") or "CREATED"),
                   project_ids=[str(p) for p in projects], payload_filter=str(flt) if flt else None,
                   extra={k: v for k, v in doc.items() if k not in known})

    def to_doc(self) -> Doc:
        doc: Doc = {"event-type": self.event_type, "status": self.status, "project-ids": list(self.project_ids)}
        if self.payload_filter:
            doc["payload-filter"] = self.payload_filter
        return {**self.extra, **doc}


@dataclass(slots=True)
class Subscription:
    """A stored subscription: an event filter and the action it triggers."""

    name: str
    action_key: str
    event_filter: EventFilter
    active: bool = True
    attributes: dict[str, str] = field(default_factory=dict)
    act_as_event_user: bool = False
    id: int = 0
    owner: str = ""
    use_counter: int = 0
    created: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def wrapper_id(self) -> int:
        return int(self.action_key[len(ACTION_PREFIX):])

    @classmethod
    def from_request(cls, body: Any) -> Subscription:
        """What a client POSTs or PUTs (``SubscriptionCreator``); checked for shape only."""
        if not isinstance(body, dict):
            raise SubscriptionError("The subscription must be a JSON object.")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SubscriptionError("A subscription needs a name.")
        key = body.get("action-key") or ""
        if not isinstance(key, str) or not key.startswith(ACTION_PREFIX) or not key[len(ACTION_PREFIX):].isdigit():
            raise SubscriptionError(f'Unknown action-key "{key}".')
        attributes = body.get("attributes")
        attributes = {} if attributes is None else attributes
        if not isinstance(attributes, dict):
            raise SubscriptionError("attributes must be a JSON object of name → value.")
        return cls(name=name, action_key=key, event_filter=EventFilter.from_doc(body.get("event-filter") or {}),
                   active=body.get("active", True) is not False,
                   attributes={str(k): str(v) for k, v in attributes.items()},
                   act_as_event_user=bool(body.get("act-as-event-user")))

    @classmethod
    def from_doc(cls, doc: Doc) -> Subscription:
        sub = cls.from_request(doc)
        sub.id = int(doc["id"])
        sub.owner = str(doc.get("subscription-owner") or doc.get("subscriber") or "")
        sub.use_counter = int(doc.get("use-counter") or 0)
        sub.created = int(doc.get("created") or 0)
        return sub

    def to_doc(self) -> Doc:
        return {"id": self.id, "name": self.name, "active": self.active, "action-key": self.action_key,
                "attributes": dict(self.attributes), "act-as-event-user": self.act_as_event_user,
                "event-filter": self.event_filter.to_doc(), "subscription-owner": self.owner,
                "valid": True, "validation-message": None, "created": self.created,
                "custom-listener-id": None, "use-counter": self.use_counter}


@dataclass(frozen=True, slots=True)
class StatusEntry:
    status: str
    timestamp: int
    message: str | None = None

    def to_doc(self) -> Doc:
        return {"status": self.status, "timestamp": self.timestamp, "message": self.message}


@dataclass(slots=True)
class Delivery:
    """One event handed to one subscription, with its status history."""

    id: int
    event_type: str
    status: str
    subscription: Subscription
    user: str
    project: str | None
    trigger: Doc
    history: list[StatusEntry] = field(default_factory=list)
    container_id: str | None = None
    workflow_id: str | None = None

    def note(self, status: str, message: str | None = None) -> None:
        self.history.append(StatusEntry(status, int(time.time() * 1000), message))

    @property
    def last(self) -> str:
        return self.history[-1].status if self.history else ""

    def to_doc(self) -> Doc:
        sub = self.subscription
        return {"id": self.id, "event-type": self.event_type, "status": self.status,
                "subscription": {"id": sub.id, "name": sub.name, "action-key": sub.action_key},
                "user": self.user, "project": self.project, "trigger": dict(self.trigger),
                "status-history": [h.to_doc() for h in self.history],
                "container-id": self.container_id, "workflow-id": self.workflow_id}
