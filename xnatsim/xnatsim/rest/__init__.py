"""XNAT's REST API families, one module each (registered in :data:`xnatsim.server.ROUTE_MODULES`)."""
