"""The Container Service stand-in: commands, wrappers, enablement, launches on the Docker engine.

Written from the reference spec (container-service-spec.md, plugin 3.7.3); shares no code with
the ``xnatnode`` client library.
"""
