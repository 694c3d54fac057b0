"""The route table: every handler is a module-level function that tools and tests can import."""

from __future__ import annotations

import importlib

from xnatsim.routing import Request, Response, Router, Routes
from xnatsim.server import ROUTE_MODULES


def _router() -> Router:
    router = Router()
    for name in ROUTE_MODULES:
        importlib.import_module(name).register(router)
    return router


def test_handlers_are_module_level_functions() -> None:
    closures = []
    for route in _router().routes:
        handler = route.handler
        module = importlib.import_module(handler.__module__)
        if getattr(module, handler.__name__, None) is not handler:
            closures.append(f"{route.name} -> {handler.__module__}.{handler.__qualname__}")
    assert closures == []


def test_every_route_module_declares_its_routes_on_a_routes_table() -> None:
    """``register`` of each module is its :class:`Routes` table's, so ``routes.entries`` lists
    everything the module serves."""
    plain = [name for name in ROUTE_MODULES
             if not isinstance(getattr(importlib.import_module(name).register, "__self__", None), Routes)]
    assert plain == []


def test_routes_table_registers_what_it_declares() -> None:
    routes = Routes()

    @routes.route("GET", "/a/{x}", "/b/{x}", auth="public")
    def handler(request: Request) -> Response:
        return Response.text(request.params["x"])

    router = Router()
    routes.register(router)
    assert sorted(r.name for r in router.routes) == ["GET /a/{x}", "GET /b/{x}"]
    assert {r.auth for r in router.routes} == {"public"}
    matched = router.match("GET", "/b/1")
    assert matched
    assert matched[0].handler is handler
    assert matched[1] == {"x": "1"}
