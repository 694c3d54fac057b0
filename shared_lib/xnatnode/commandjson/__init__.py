"""Model and validator of Container Service command JSON (XNAT's own rules, plus known traps).

``validate_document(obj)``, ``validate_text(text)`` and ``validate_file(path)`` return a
:class:`Report` whose ``errors`` carry XNAT's own messages (spec A.14) and whose ``warnings`` flag
documents XNAT accepts but that misbehave at launch. Standard library only: it runs in build.sh.
"""

from xnatnode.commandjson.findings import Finding, Report
from xnatnode.commandjson.model import Command, Route
from xnatnode.commandjson.reader import read_command
from xnatnode.commandjson.validate import (
    UnreadableDocument,
    validate_document,
    validate_file,
    validate_text,
)

__all__ = [
    "Command",
    "Finding",
    "Report",
    "Route",
    "UnreadableDocument",
    "read_command",
    "validate_document",
    "validate_file",
    "validate_text",
]
