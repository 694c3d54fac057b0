"""Event Service REST routes (``/xapi/events/…``, label-validation.md §3, spec D.1).

Create is the singular ``POST /xapi/events/subscription`` (site administrators) or
``POST /xapi/projects/{P}/events/subscription`` (project owners) and answers 201 with the text
``<name>:<id>``, as XNAT's ``EventServiceRestApi`` does; the plural is the listing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from xnatsim.events.model import EVENT_TYPES, Subscription, SubscriptionError
from xnatsim.events.service import EventService
from xnatsim.routing import HTTPError, Request, Response, Routes

if TYPE_CHECKING:
    from xnatsim.server import App

__all__ = ["events", "register", "setup"]

_SITE, _PROJECT = "/xapi/events", "/xapi/projects/{project}/events"

routes = Routes()


def setup(app: App) -> None:
    """Start the Event Service on the Container Service's database (``app.state["events"]``)."""
    if "events" in app.state:
        return
    from xnatsim.cs.routes import setup as cs_setup

    cs_setup(app)
    events = EventService(app.store, app.state["cs-db"], app.state["cs"])
    app.state["events"] = events
    app.on_close(events.close)  # closes before the Container Service it launches into


def events(request: Request) -> EventService:
    service: EventService = request.app.state["events"]
    return service


def _body(request: Request) -> Any:
    data = request.read_body(1024 * 1024)
    try:
        return json.loads(data) if data.strip() else {}
    except ValueError as exc:
        raise HTTPError(400, f"Could not parse the JSON body: {exc}") from exc


def _id(request: Request) -> int:
    value = request.params["sid"]
    if not value.isdigit():
        raise HTTPError(404, f"No subscription {value}.")
    return int(value)


def _can_manage(request: Request, project: str | None) -> str:
    user = request.require_user()
    store = request.store
    if store.is_admin(user):
        return user
    if project is not None and store.role(project, user) == "owner":
        return user
    raise HTTPError(403, "Only site administrators (or project owners) can manage subscriptions.")


def _refused(exc: SubscriptionError) -> Response:
    return Response.text(str(exc), exc.status)


def _found(request: Request) -> Subscription:
    sub = events(request).get(_id(request))
    if sub is None:
        raise HTTPError(404, f"No subscription {request.params['sid']}.")
    return sub


# --------------------------------------------------------------------------- handlers


@routes.route("GET", f"{_SITE}/prefs")
def get_prefs(request: Request) -> Response:
    return Response.json(events(request).prefs())


@routes.route("POST", f"{_SITE}/prefs")
@routes.route("PUT", f"{_SITE}/prefs")
def put_prefs(request: Request) -> Response:
    _can_manage(request, None)
    body = _body(request)
    if not isinstance(body, dict):
        raise HTTPError(400, "The body must be a JSON object.")
    return Response.json(events(request).set_prefs(body))


@routes.route("GET", f"{_SITE}/events")
def event_types(request: Request) -> Response:
    return Response.json([t.to_doc() for t in EVENT_TYPES.values()])


@routes.route("GET", f"{_SITE}/actions", f"{_PROJECT}/actions")
def actions(request: Request) -> Response:
    project = request.params.get("project") or request.query.get("project")
    return Response.json(events(request).actions(project, request.query.get("xsitype")))


@routes.route("POST", f"{_SITE}/subscription", f"{_PROJECT}/subscription")
def create(request: Request) -> Response:
    project = request.params.get("project")
    user = _can_manage(request, project)
    try:
        sub = events(request).create(_body(request), user, project)
    except SubscriptionError as exc:
        return _refused(exc)
    return Response.text(f"{sub.name}:{sub.id}", 201)


@routes.route("GET", f"{_SITE}/subscriptions", f"{_PROJECT}/subscriptions")
def list_subscriptions(request: Request) -> Response:
    request.require_user()
    return Response.json([s.to_doc() for s in events(request).subscriptions(request.params.get("project"))])


@routes.route("GET", f"{_SITE}/subscription/{{sid}}", f"{_PROJECT}/subscription/{{sid}}")
def get_subscription(request: Request) -> Response:
    request.require_user()
    return Response.json(_found(request).to_doc())


@routes.route("PUT", f"{_SITE}/subscription/{{sid}}", f"{_PROJECT}/subscription/{{sid}}")
def update(request: Request) -> Response:
    _can_manage(request, request.params.get("project"))
    try:
        return Response.json(events(request).update(_id(request), _body(request)).to_doc())
    except SubscriptionError as exc:
        return _refused(exc)


def _set_active(request: Request, active: bool) -> Response:
    _can_manage(request, request.params.get("project"))
    try:
        return Response.json(events(request).set_active(_id(request), active).to_doc())
    except SubscriptionError as exc:
        return _refused(exc)


@routes.route("POST", f"{_SITE}/subscription/{{sid}}/activate", f"{_PROJECT}/subscription/{{sid}}/activate")
def activate(request: Request) -> Response:
    return _set_active(request, True)


@routes.route("POST", f"{_SITE}/subscription/{{sid}}/deactivate",
               f"{_PROJECT}/subscription/{{sid}}/deactivate")
def deactivate(request: Request) -> Response:
    return _set_active(request, False)


@routes.route("DELETE", f"{_SITE}/subscription/{{sid}}", f"{_PROJECT}/subscription/{{sid}}")
def delete(request: Request) -> Response:
    _can_manage(request, request.params.get("project"))
    if not events(request).delete(_id(request)):
        raise HTTPError(404, f"No subscription {request.params['sid']}.")
    return Response.empty(204)


@routes.route("GET", f"{_SITE}/delivered", f"{_PROJECT}/delivered")
def delivered(request: Request) -> Response:
    request.require_user()
    sub = request.query.get("subscriptionid")
    project = request.params.get("project") or request.query.get("project")
    return Response.json(events(request).deliveries(
        project=project, subscription_id=int(sub) if sub and sub.isdigit() else None))


register = routes.register
