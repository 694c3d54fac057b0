"""The Event Service stand-in: subscriptions that launch Container Service wrappers on events."""
