"""``python -m xnatsim``."""

import sys

from xnatsim.cli import main

sys.exit(main())
