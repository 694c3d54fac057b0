"""``python -m xnatsim fetch-schemas``: download and cache XNAT's xnat/xdat schemas."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "fetch-schemas"
HELP = "download the xnat 0.8.1 sdist from PyPI and cache XNAT's xnat.xsd/xdat.xsd for the server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema-cache", type=Path, default=None,
                        help="cache folder (default ~/.cache/xnatsim/schemas)")


def run(args: argparse.Namespace) -> int:
    from xnatsim.schemas import default_cache, fetch

    cache = args.schema_cache or default_cache()
    if fetch(cache):
        print(f"XNAT schemas cached in {cache}")
        return 0
    print("could not fetch the XNAT schemas (see the log above)")
    return 1
