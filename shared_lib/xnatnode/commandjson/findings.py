"""Findings (errors and warnings) and the report that collects them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

#: Where a finding's text comes from.
#: ``xnat``: the Container Service's own message, verbatim (plugin ``Command.validate``).
#: ``xnat-unverified``: a rule XNAT enforces whose exact message text is not known to us.
#: ``xnatnode``: our own message (documents XNAT cannot read, and the warnings).
Source = Literal["xnat", "xnat-unverified", "xnatnode"]


@dataclass(frozen=True)
class Finding:
    """One problem: a stable ``code``, the ``message``, and a JSON Pointer ``location``."""

    severity: Severity
    code: str
    message: str
    location: str
    source: Source = "xnatnode"

    def to_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "location": self.location,
            "source": self.source,
        }


def error(code: str, message: str, location: str, source: Source = "xnat") -> Finding:
    return Finding("error", code, message, location, source)


def warning(code: str, message: str, location: str) -> Finding:
    return Finding("warning", code, message, location, "xnatnode")


@dataclass
class Report:
    """Everything found in one document (a command object, or a label's array of them)."""

    findings: list[Finding] = field(default_factory=list)
    #: Number of command objects examined (1 for an object, the array length for a label).
    commands: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when XNAT would accept the document (warnings do not count)."""
        return not self.errors

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "commands": self.commands,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }


def pointer(base: str, *parts: str | int) -> str:
    """Extend JSON Pointer ``base`` with ``parts`` (escaping ``~`` and ``/``)."""
    out = base
    for part in parts:
        out += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return out
