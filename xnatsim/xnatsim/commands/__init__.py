"""Subcommands of ``python -m xnatsim`` (registered in :mod:`xnatsim.cli`)."""
