"""xnatsim: a local stand-in for XNAT's REST API, Container Service and Event Service."""

__version__ = "0.1.0"
