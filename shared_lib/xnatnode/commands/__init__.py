"""One module per ``xnatnode`` subcommand (see :mod:`xnatnode.cli`)."""
