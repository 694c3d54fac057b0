"""Event Service subscriptions that launch Container Service wrappers (spec D.1).

A session created in the store (a REST PUT, even of an empty session, or a DICOM archive) fires
``SessionEvent``/``CREATED``; a new scan fires ``ScanEvent``/``CREATED``; a session's update fires
nothing, as in XNAT. Every active subscription whose event type, status, projects and payload filter
(a JSONPath predicate over the object's JSON, evaluated as ``$[?(<filter>)]``) match launches its
wrapper with the object's URI as the first external input, merged with the subscription's
``attributes``, as the subscription owner (or the event's user when ``act-as-event-user`` is set).
Events are handled on a background thread, as XNAT does. Nothing fires while the Event Service is
off, which it is on a fresh XNAT (``eventService.enabled`` defaults to false).
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
from xnatsim.events.model import (
    ACTION_PREFIX,
    EVENT_TYPES,
    SCAN_EVENT,
    SESSION_EVENT,
    Delivery,
    Doc,
    Subscription,
    SubscriptionError,
)
from xnatsim.store import Store

__all__ = ["ACTION_PREFIX", "EVENT_TYPES", "EventService", "SubscriptionError"]

log = logging.getLogger("xnatsim.events")

#: store change -> event status, per event type (a session update is no SessionEvent)
_STATUS = {
    SESSION_EVENT: {"created": "CREATED", "deleted": "DELETED", "merged": "MERGED"},
    SCAN_EVENT: {"created": "CREATED", "updated": "UPDATED", "deleted": "DELETED"},
}
#: stop waiting for queued events after this long when closing
_DRAIN_TIMEOUT = 30.0


def _filter_matches(flt: str, payload: Doc) -> bool:
    """XNAT replaces ``'`` by ``"`` in the filter, then applies it to the serialised object."""
    return matches_filter(flt.replace("'", '"'), payload)


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
    def create(self, body: Any, user: str, project: str | None = None) -> Subscription:
        """Validate and store a subscription (site-wide, or for ``project``)."""
        if not self.enabled:
            raise SubscriptionError("The Event Service is disabled; enable it at /xapi/events/prefs.", 400)
        sub = self._checked(Subscription.from_request(body), project)
        sub.id = self.db.next_id("subscription")
        sub.owner = user
        self._save(sub)
        return sub

    def update(self, sub_id: int, body: Any) -> Subscription:
        old = self.get(sub_id)
        if old is None:
            raise SubscriptionError(f"No subscription {sub_id}.", 404)
        if not isinstance(body, dict):
            raise SubscriptionError("The subscription must be a JSON object.")
        projects = old.event_filter.project_ids
        sub = self._checked(Subscription.from_request({**old.to_doc(), **body}),
                            projects[0] if len(projects) == 1 else None)
        sub.id, sub.owner, sub.use_counter, sub.created = old.id, old.owner, old.use_counter, old.created
        self._save(sub)
        return sub

    def _checked(self, sub: Subscription, project: str | None) -> Subscription:
        """Refuse what XNAT refuses: unknown wrapper or event, a wrapper not enabled where the
        subscription applies, a project route selecting other projects, a bad payload filter."""
        flt = sub.event_filter
        if self.cs.registry.wrapper(sub.wrapper_id) is None:
            raise SubscriptionError(f"No wrapper {sub.wrapper_id} for action-key {sub.action_key}.")
        event_type = EVENT_TYPES.get(flt.event_type)
        if event_type is None:
            raise SubscriptionError(f'Unknown event-type "{flt.event_type}".')
        if flt.status not in event_type.statuses:
            raise SubscriptionError(f'Event {flt.event_type} has no status "{flt.status}".')
        if project is not None:
            if flt.project_ids and flt.project_ids != [project]:
                raise SubscriptionError(f"A project subscription can only select project {project}.")
            flt.project_ids = [project]
        reg = self.cs.registry
        if not reg.enabled_for_site(sub.wrapper_id):
            raise SubscriptionError(f"Action {sub.action_key} is not available: the wrapper is not enabled on the site.")
        missing = [p for p in flt.project_ids if not reg.enabled_for_project(sub.wrapper_id, p)]
        if missing:
            raise SubscriptionError(f"Action {sub.action_key} is not available in project(s) {', '.join(missing)}.")
        if flt.payload_filter:
            try:
                _filter_matches(flt.payload_filter, {})
            except JsonPathError as exc:
                raise SubscriptionError(f"Invalid payload filter: {exc}") from exc
        return sub

    def _save(self, sub: Subscription) -> None:
        self.db.put("subscription", sub.id, sub.to_doc())

    def get(self, sub_id: int) -> Subscription | None:
        doc = self.db.get("subscription", sub_id)
        return Subscription.from_doc(doc) if doc is not None else None

    def subscriptions(self, project: str | None = None) -> list[Subscription]:
        subs = [Subscription.from_doc(d) for d in self.db.all("subscription")]
        if project is not None:
            subs = [s for s in subs if project in s.event_filter.project_ids]
        return subs

    def set_active(self, sub_id: int, active: bool) -> Subscription:
        sub = self.get(sub_id)
        if sub is None:
            raise SubscriptionError(f"No subscription {sub_id}.", 404)
        sub.active = active
        self._save(sub)
        return sub

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
            event_type = SESSION_EVENT
        elif kind == "scan":
            event_type = SCAN_EVENT
        else:
            return
        status = _STATUS[event_type].get(event)
        if status is None or not self.enabled:  # a fresh XNAT has the Event Service off
            return
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._worker, name="xnatsim-events", daemon=True)
                self._thread.start()
        self._queue.put((event_type, status, obj))

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
        subs = [s for s in self.subscriptions()
                if s.active and s.event_filter.event_type == event_type and s.event_filter.status == status]
        if not subs:
            return
        payload = self._payload(event_type, status, obj)
        if payload is None:
            return
        project = payload.get("project-id") or obj.get("project")
        for sub in subs:
            projects = sub.event_filter.project_ids
            if projects and project not in projects:
                continue
            self._deliver(sub, event_type, status, payload, project, obj)

    def _deliver(self, sub: Subscription, event_type: str, status: str, payload: Doc, project: str | None,
                 obj: Doc) -> None:
        user = (obj.get("insert_user") or sub.owner) if sub.act_as_event_user else sub.owner
        delivery = Delivery(
            id=self.db.next_id("delivery"), event_type=event_type, status=status, subscription=sub,
            user=user, project=project,
            trigger={"uri": payload.get("uri"), "label": payload.get("label"), "xsi-type": payload.get("xsiType")},
        )
        delivery.note("SUBSCRIPTION_TRIGGERED")
        try:
            self._act(sub, delivery, payload, project)
        finally:
            self._save_delivery(delivery)

    def _act(self, sub: Subscription, delivery: Delivery, payload: Doc, project: str | None) -> None:
        flt = sub.event_filter.payload_filter
        try:
            matched = not flt or _filter_matches(flt, payload)
        except JsonPathError as exc:
            delivery.note("FAILED", f"payload filter error: {exc}")
            return
        if not matched:
            delivery.note("OBJECT_FILTER_MISMATCH_HALT", f"payload filter {flt!r} does not match")
            return
        delivery.note("OBJECT_FILTERED")
        found = self.cs.registry.wrapper(sub.wrapper_id)
        projects = sub.event_filter.project_ids
        config_project = projects[0] if len(projects) == 1 else (project if projects else None)
        if found is None or not self.cs.registry.enabled(sub.wrapper_id, config_project):
            delivery.note("ACTION_FAILED", "the wrapper is no longer available or enabled")
            return
        _command, wrapper = found
        if not wrapper["external-inputs"]:
            delivery.note("ACTION_FAILED", "the wrapper has no external input")
            return
        root = wrapper["external-inputs"][0]["name"]
        params = {**sub.attributes, root: payload.get("uri", "")}
        delivery.note("ACTION_CALLED")
        try:
            response = self.cs.launch(sub.wrapper_id, params, delivery.user, project=config_project,
                                      root_element=root)
        except LaunchRefused as exc:
            delivery.note("ACTION_FAILED", str(exc))
            return
        delivery.container_id = response.get("container-id")
        delivery.workflow_id = response.get("workflow-id")
        delivery.note("ACTION_COMPLETE", "launch queued")
        sub.use_counter += 1
        self._save(sub)

    def _save_delivery(self, delivery: Delivery) -> None:
        self.db.put("delivery", delivery.id, delivery.to_doc(), key=delivery.project or "")
