"""The known-good command document every bad-document test starts from, and its parts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOOD = Path(__file__).parent / "bad_command_json" / "good.json"
Doc = dict[str, Any]


def good() -> Doc:
    """A fresh copy of ``bad_command_json/good.json`` (accepted, no warnings)."""
    doc: Doc = json.loads(GOOD.read_text())
    return doc


def keys(fields: dict[str, Any]) -> Doc:
    """Keyword arguments as command JSON keys: ``default_value`` -> ``default-value``."""
    return {k.replace("_", "-"): v for k, v in fields.items()}


def wrapper(doc: Doc) -> Doc:
    first: Doc = doc["xnat"][0]
    return first


def derived(doc: Doc) -> Doc:
    first: Doc = wrapper(doc)["derived-inputs"][0]
    return first


def external(doc: Doc) -> Doc:
    first: Doc = wrapper(doc)["external-inputs"][0]
    return first


def handler(doc: Doc) -> Doc:
    first: Doc = wrapper(doc)["output-handlers"][0]
    return first
