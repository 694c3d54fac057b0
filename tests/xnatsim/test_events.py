"""xnatsim's Event Service objects and routes: XNAT's JSON, statuses and answers."""

from __future__ import annotations

import pytest
from xnatsim.events import routes
from xnatsim.events.model import (
    ACTION_PREFIX,
    EVENT_TYPES,
    SESSION_EVENT,
    EventFilter,
    Subscription,
    SubscriptionError,
)


def test_session_event_statuses_are_xnats() -> None:
    assert EVENT_TYPES[SESSION_EVENT].statuses == ("CREATED", "MERGED", "DELETED")


def test_filter_reads_both_keys_and_writes_payload_filter() -> None:
    old = EventFilter.from_doc({"event-type": SESSION_EVENT, "json-path-filter": "@.label", "schedule": "x"})
    new = EventFilter.from_doc({"event-type": SESSION_EVENT, "payload-filter": "@.label"})
    assert old.payload_filter == new.payload_filter == "@.label"
    assert old.to_doc() == {"schedule": "x", "event-type": SESSION_EVENT, "status": "CREATED",
                            "project-ids": [], "payload-filter": "@.label"}


def test_subscription_round_trip() -> None:
    body = {"name": "n", "action-key": f"{ACTION_PREFIX}7", "attributes": {"a": 1},
            "event-filter": {"event-type": SESSION_EVENT, "project-ids": ["P"]}}
    sub = Subscription.from_request(body)
    sub.id, sub.owner = 3, "admin"
    doc = sub.to_doc()
    assert doc["subscription-owner"] == "admin"
    assert doc["attributes"] == {"a": "1"}
    again = Subscription.from_doc(doc)
    assert (again.id, again.wrapper_id, again.event_filter.project_ids) == (3, 7, ["P"])


@pytest.mark.parametrize(("body", "message"), [
    ([], "JSON object"),
    ({"name": " "}, "needs a name"),
    ({"name": "n", "action-key": "other:1"}, "Unknown action-key"),
    ({"name": "n", "action-key": f"{ACTION_PREFIX}1", "attributes": []}, "attributes"),
    ({"name": "n", "action-key": f"{ACTION_PREFIX}1", "event-filter": {"project-ids": "P"}}, "project-ids"),
])
def test_bad_subscriptions(body: object, message: str) -> None:
    with pytest.raises(SubscriptionError, match=message):
        Subscription.from_request(body)


def test_route_handlers_are_module_level() -> None:
    assert routes.routes.entries
    for _method, path, handler, _auth in routes.routes.entries:
        assert "<locals>" not in handler.__qualname__
        assert handler.__module__ == routes.__name__
        assert path.startswith("/xapi/")
