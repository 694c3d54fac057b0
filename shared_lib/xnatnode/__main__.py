"""``python -m xnatnode`` runs the CLI."""

import sys

from xnatnode.cli import main

sys.exit(main())
