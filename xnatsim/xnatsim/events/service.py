"""Event Service subscriptions that launch Container Service wrappers (spec D.1).

A session created in the store (PUT, import) fires ``SessionEvent``/``CREATED``; a new scan fires
``ScanEvent``/``CREATED``. Every active subscription whose event type, status, projects and
payload filter (a JSONPath predicate over the object's JSON, evaluated as ``$[?(<filter>)]``) match
launches its wrapper with the object's URI as the first external input, merged with the
subscription's ``attributes``, as the subscription owner (or the event's user when
``act-as-event-user`` is set). Events are handled on a background thread, as XNAT does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from xnatsim.cs.db import DocumentDB
from xnatsim.cs.jsonpath import JsonPathError, matches_filter
from xnatsim.cs.service import ContainerService, LaunchRefused
from xnatsim.cs.xnatobjects import StoreLoader
from xnatsim.store import Store

__all__ = ["ACTION_PREFIX", "EVENT_TYPES", "EventService", "SubscriptionError"]

log = logging.getLogger("xnatsim.events")

Doc = dict[str, Any]
ACTION_PREFIX = "org.nrg.containers.services.CommandActionProvider:"
SESSION_EVENT = "org.nrg.xnat.eventservice.events.SessionEvent"
SCAN_EVENT = "org.nrg.xnat.eventservice.events.ScanEvent"
EVENT_TYPES: dict[str, Doc] = {
    SESSION_EVENT: {"display-name": "Image Session Event", "node-type": "Session",
                    "statuses": ["CREATED", "UPDATED", "DELETED"], "description": "Image session created, updated or deleted."},
    SCAN_EVENT: {"display-name": "Scan Event", "node-type": "Scan",
                 "statuses": ["CREATED", "UPDATED", "DELETED"], "description": "Scan created, updated or deleted."},
}
_STATUS = {"created": "CREATED", "updated": "UPDATED", "deleted": "DELETED"}
#: stop waiting for queued events after this long when closing
_DRAIN_TIMEOUT = 30.0


class SubscriptionError(ValueError):
    """A subscription refused (message is XNAT-like; ``status`` the HTTP code)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def payload_filter(event_filter: Doc) -> str | None:
    """The payload filter under either key XNAT versions use."""
    value = event_filter.get("json-path-filter") or event_filter.get("payload-filter")
    return str(value) if value else None


class EventService:
    """Subscriptions, the store listener that fires them, and the delivery history."""

    def __init__(self, store: Store, db: DocumentDB, cs: ContainerService) -> None:
        self.store = store
        self.db = db
        self.cs = cs
        self.loader = StoreLoader(store)
        self._queue: queue.Queue[tuple[str, str, Doc] | None] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        store.add_listener(self._on_change)

    # ---------------------------------------------------------------------------- prefs
    @property
    def enabled(self) -> bool:
        prefs = self.db.get("event-prefs", 1)
        return bool(prefs and prefs.get("enabled"))

    def prefs(self) -> Doc:
        return {"enabled": self.enabled}

    def set_prefs(self, doc: Doc) -> Doc:
        if "enabled" in doc:
            value = doc["enabled"]
            enabled = value if isinstance(value, bool) else str(value).lower() == "true"
            self.db.put("event-prefs", 1, {"enabled": enabled})
        return self.prefs()

    # ---------------------------------------------------------------------- subscriptions
    def create(self, body: Doc, user: str, project: str | None = None) -> Doc:
        """Validate and store a subscription (site-wide, or for ``project``)."""
        if not self.enabled:
            raise SubscriptionError("The Event Service is disabled; enable it at /xapi/events/prefs.", 400)
        if not isinstance(body, dict):
            raise SubscriptionError("The subscription must be a JSON object.")
        doc = self._checked(body, project)
        doc["id"] = self.db.next_id("subscription")
        doc["subscriber"] = user
        doc["use-counter"] = 0
        doc["valid"] = True
        self.db.put("subscription", doc["id"], doc)
        return doc

    def update(self, sub_id: int, body: Doc) -> Doc:
        old = self.get(sub_id)
        if old is None:
            raise SubscriptionError(f"No subscription {sub_id}.", 404)
        projects = old["event-filter"].get("project-ids") or []
        doc = self._checked({**old, **body}, projects[0] if len(projects) == 1 else None)
        doc.update({k: old[k] for k in ("id", "subscriber", "use-counter")})
        self.db.put("subscription", sub_id, doc)
        return doc

    def _checked(self, body: Doc, project: str | None) -> Doc:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SubscriptionError("A subscription needs a name.")
        key = body.get("action-key") or ""
        if not isinstance(key, str) or not key.startswith(ACTION_PREFIX) or not key[len(ACTION_PREFIX):].isdigit():
            raise SubscriptionError(f'Unknown action-key "{key}".')
        wrapper_id = int(key[len(ACTION_PREFIX):])
        found = self.cs.registry.wrapper(wrapper_id)
        if found is None:
            raise SubscriptionError(f"No wrapper {wrapper_id} for action-key {key}.")
        event_filter = dict(body.get("event-filter") or {})
        event_type = event_filter.get("event-type") or ""
        if event_type not in EVENT_TYPES:
            raise SubscriptionError(f'Unknown event-type "{event_type}".')
        status = event_filter.get("status") or "CREATED"
        if status not in EVENT_TYPES[event_type]["statuses"]:
            raise SubscriptionError(f'Event {event_type} has no status "{status}".')
        projects = [str(p) for p in event_filter.get("project-ids") or []]
        if project is not None:
            if projects and projects != [project]:
                raise SubscriptionError(f"A project subscription can only select project {project}.")
            projects = [project]
        reg = self.cs.registry
        if not reg.enabled_for_site(wrapper_id):
            raise SubscriptionError(f"Action {key} is not available: the wrapper is not enabled on the site.")
        missing = [p for p in projects if not reg.enabled_for_project(wrapper_id, p)]
        if missing:
            raise SubscriptionError(f"Action {key} is not available in project(s) {', '.join(missing)}.")
        flt = payload_filter(event_filter)
        if flt:
            try:
                matches_filter(flt.replace("'", '"'), {})
            except JsonPathError as exc:
                raise SubscriptionError(f"Invalid payload filter: {exc}") from exc
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise SubscriptionError("attributes must be a JSON object of name → value.")
        event_filter.update({"event-type": event_type, "status": status, "project-ids": projects})
        return {
            "name": name, "active": body.get("active", True) is not False,
            "action-key": key, "attributes": {str(k): str(v) for k, v in attributes.items()},
            "act-as-event-user": bool(body.get("act-as-event-user")), "event-filter": event_filter,
            "custom-listener-id": None,
        }

    def get(self, sub_id: int) -> Doc | None:
        return self.db.get("subscription", sub_id)

    def subscriptions(self, project: str | None = None) -> list[Doc]:
        subs = self.db.all("subscription")
        if project is not None:
            subs = [s for s in subs if project in (s["event-filter"].get("project-ids") or [])]
        return subs

    def set_active(self, sub_id: int, active: bool) -> Doc:
        doc = self.get(sub_id)
        if doc is None:
            raise SubscriptionError(f"No subscription {sub_id}.", 404)
        doc["active"] = active
        self.db.put("subscription", sub_id, doc)
        return doc

    def delete(self, sub_id: int) -> bool:
        return self.db.delete("subscription", sub_id)

    def deliveries(self, *, project: str | None = None, subscription_id: int | None = None) -> list[Doc]:
        docs = self.db.all("delivery", key=project) if project else self.db.all("delivery")
        if subscription_id is not None:
            docs = [d for d in docs if d["subscription"]["id"] == subscription_id]
        return docs

    def actions(self, project: str | None, xsi_type: str | None) -> list[Doc]:
        """Wrappers offered as actions (enabled on the site, and in ``project`` when given)."""
        from xnatsim.cs.registry import xsi_matches

        out = []
        for item in self.cs.registry.available(xsi_type or "", project, site=xsi_type is None):
            if xsi_type is None and not item["wrapper-contexts"]:
                continue
            if not self.cs.registry.enabled(item["wrapper-id"], project):
                continue
            if xsi_type and not any(xsi_matches(c, xsi_type) for c in item["wrapper-contexts"]):
                continue
            out.append({"action-key": f"{ACTION_PREFIX}{item['wrapper-id']}", "display-name": item["wrapper-name"],
                        "description": item["wrapper-description"], "provider": ACTION_PREFIX[:-1],
                        "attributes": {}, "wrapper-contexts": item["wrapper-contexts"]})
        return out

    # ----------------------------------------------------------------------------- firing
    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued event has been handled (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self.store.remove_listener(self._on_change)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(_DRAIN_TIMEOUT)

    def _on_change(self, event: str, xsi_type: str, obj: Doc) -> None:
        kind = obj.get("kind")
        if kind == "experiment" and not obj.get("session_id") and xsi_type.lower().endswith("sessiondata"):
            item = (SESSION_EVENT, _STATUS.get(event, event.upper()), obj)
        elif kind == "scan":
            item = (SCAN_EVENT, _STATUS.get(event, event.upper()), obj)
        else:
            return
        if not self.enabled:  # a fresh XNAT has the Event Service off: nothing is delivered
            return
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._worker, name="xnatsim-events", daemon=True)
                self._thread.start()
        self._queue.put(item)

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._handle(*item)
            except Exception:
                log.exception("event handling failed")
            finally:
                self._queue.task_done()

    def _payload(self, event_type: str, status: str, obj: Doc) -> Doc | None:
        if status == "DELETED":
            return {"id": obj.get("id"), "label": obj.get("label"), "xsiType": obj.get("xsi_type"),
                    "project-id": obj.get("project")}
        if event_type == SESSION_EVENT:
            return self.loader.load(f"/archive/experiments/{obj['id']}")
        return self.loader.load(f"/archive/experiments/{obj['experiment_id']}/scans/{obj['id']}")

    def _handle(self, event_type: str, status: str, obj: Doc) -> None:
        if not self.enabled:
            return
        subs = [
            s for s in self.db.all("subscription")
            if s["active"] and s["event-filter"]["event-type"] == event_type and s["event-filter"]["status"] == status
        ]
        if not subs:
            return
        payload = self._payload(event_type, status, obj)
        if payload is None:
            return
        project = payload.get("project-id") or obj.get("project")
        for sub in subs:
            projects = sub["event-filter"].get("project-ids") or []
            if projects and project not in projects:
                continue
            self._deliver(sub, event_type, status, payload, project, obj)

    def _deliver(self, sub: Doc, event_type: str, status: str, payload: Doc, project: str | None, obj: Doc) -> None:
        history: list[Doc] = []

        def note(state: str, message: str | None = None) -> None:
            history.append({"status": state, "timestamp": int(time.time() * 1000), "message": message})

        note("SUBSCRIPTION_TRIGGERED")
        user = (obj.get("insert_user") or sub["subscriber"]) if sub.get("act-as-event-user") else sub["subscriber"]
        delivery: Doc = {
            "id": self.db.next_id("delivery"), "event-type": event_type, "status": status,
            "subscription": {"id": sub["id"], "name": sub["name"], "action-key": sub["action-key"]},
            "user": user, "project": project,
            "trigger": {"uri": payload.get("uri"), "label": payload.get("label"), "xsi-type": payload.get("xsiType")},
            "status-history": history, "container-id": None, "workflow-id": None,
        }
        flt = payload_filter(sub["event-filter"])
        try:
            matched = not flt or matches_filter(flt.replace("'", '"'), payload)
        except JsonPathError as exc:
            note("FAILED", f"payload filter error: {exc}")
            matched = False
        if not matched:
            if history[-1]["status"] != "FAILED":
                note("OBJECT_FILTER_MISMATCH_HALT", f"payload filter {flt!r} does not match")
            self._save_delivery(delivery)
            return
        note("OBJECT_FILTERED")
        wrapper_id = int(sub["action-key"][len(ACTION_PREFIX):])
        found = self.cs.registry.wrapper(wrapper_id)
        projects = sub["event-filter"].get("project-ids") or []
        config_project = projects[0] if len(projects) == 1 else (project if projects else None)
        if found is None or not self.cs.registry.enabled(wrapper_id, config_project):
            note("ACTION_FAILED", "the wrapper is no longer available or enabled")
            self._save_delivery(delivery)
            return
        _command, wrapper = found
        if not wrapper["external-inputs"]:
            note("ACTION_FAILED", "the wrapper has no external input")
            self._save_delivery(delivery)
            return
        root = wrapper["external-inputs"][0]["name"]
        params = {**sub["attributes"], root: payload.get("uri", "")}
        note("ACTION_CALLED")
        try:
            response = self.cs.launch(wrapper_id, params, user, project=config_project, root_element=root)
            delivery["container-id"] = response.get("container-id")
            delivery["workflow-id"] = response.get("workflow-id")
            note("ACTION_COMPLETE", "launch queued")
            sub["use-counter"] = int(sub.get("use-counter") or 0) + 1
            self.db.put("subscription", sub["id"], sub)
        except LaunchRefused as exc:
            note("ACTION_FAILED", str(exc))
        self._save_delivery(delivery)

    def _save_delivery(self, delivery: Doc) -> None:
        self.db.put("delivery", delivery["id"], delivery, key=delivery.get("project") or "")
