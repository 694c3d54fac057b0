"""Event Service REST routes (``/xapi/events/…``, spec D.1)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from xnatsim.events.service import EVENT_TYPES, EventService, SubscriptionError
from xnatsim.routing import HTTPError, Request, Response, Router

if TYPE_CHECKING:
    from xnatsim.server import App

__all__ = ["events", "register", "setup"]


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


def register(router: Router) -> None:
    @router.route("GET", "/xapi/events/prefs")
    def get_prefs(request: Request) -> Response:
        return Response.json(events(request).prefs())

    @router.route("PUT", "/xapi/events/prefs")
    def put_prefs(request: Request) -> Response:
        _can_manage(request, None)
        body = _body(request)
        if not isinstance(body, dict):
            raise HTTPError(400, "The body must be a JSON object.")
        return Response.json(events(request).set_prefs(body))

    router.add("POST", "/xapi/events/prefs", put_prefs)

    @router.route("GET", "/xapi/events/events")
    def event_types(request: Request) -> Response:
        return Response.json([{"type": k, **v} for k, v in EVENT_TYPES.items()])

    @router.route("GET", "/xapi/events/actions", "/xapi/projects/{project}/events/actions")
    def actions(request: Request) -> Response:
        project = request.params.get("project") or request.query.get("project")
        return Response.json(events(request).actions(project, request.query.get("xsitype")))

    @router.route("POST", "/xapi/events/subscription", "/xapi/projects/{project}/events/subscription")
    def create(request: Request) -> Response:
        project = request.params.get("project")
        user = _can_manage(request, project)
        try:
            doc = events(request).create(_body(request), user, project)
        except SubscriptionError as exc:
            return Response.text(str(exc), exc.status)
        return Response.json(doc, 201)

    @router.route("GET", "/xapi/events/subscriptions", "/xapi/projects/{project}/events/subscriptions")
    def list_subscriptions(request: Request) -> Response:
        request.require_user()
        return Response.json(events(request).subscriptions(request.params.get("project")))

    @router.route("GET", "/xapi/events/subscription/{sid}", "/xapi/projects/{project}/events/subscription/{sid}")
    def get_subscription(request: Request) -> Response:
        request.require_user()
        doc = events(request).get(_id(request))
        if doc is None:
            raise HTTPError(404, f"No subscription {request.params['sid']}.")
        return Response.json(doc)

    @router.route("PUT", "/xapi/events/subscription/{sid}", "/xapi/projects/{project}/events/subscription/{sid}")
    def update(request: Request) -> Response:
        _can_manage(request, request.params.get("project"))
        try:
            return Response.json(events(request).update(_id(request), _body(request)))
        except SubscriptionError as exc:
            return Response.text(str(exc), exc.status)

    for verb, active in (("activate", True), ("deactivate", False)):

        def toggle(request: Request, active: bool = active) -> Response:
            _can_manage(request, request.params.get("project"))
            try:
                return Response.json(events(request).set_active(_id(request), active))
            except SubscriptionError as exc:
                return Response.text(str(exc), exc.status)

        router.add("POST", f"/xapi/events/subscription/{{sid}}/{verb}", toggle)
        router.add("POST", f"/xapi/projects/{{project}}/events/subscription/{{sid}}/{verb}", toggle)

    @router.route("DELETE", "/xapi/events/subscription/{sid}", "/xapi/projects/{project}/events/subscription/{sid}")
    def delete(request: Request) -> Response:
        _can_manage(request, request.params.get("project"))
        if not events(request).delete(_id(request)):
            raise HTTPError(404, f"No subscription {request.params['sid']}.")
        return Response.empty(204)

    @router.route("GET", "/xapi/events/delivered", "/xapi/projects/{project}/events/delivered")
    def delivered(request: Request) -> Response:
        request.require_user()
        sub = request.query.get("subscriptionid")
        project = request.params.get("project") or request.query.get("project")
        return Response.json(events(request).deliveries(
            project=project, subscription_id=int(sub) if sub and sub.isdigit() else None))
