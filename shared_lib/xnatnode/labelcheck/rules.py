"""The rules label-validation applies: stable codes, default severities, and the findings they give.

Codes never change meaning once released (the README lists them); a convention may change a
rule's severity or turn it off (``severity: {code: error|warning|off}``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

Severity = Literal["error", "warning"]
ObjectType = Literal["project", "subject", "session", "scan"]
FailOn = Literal["error", "warning", "never"]
#: fail-on's values (the convention's key and ``--fail-on``)
FAIL_ON: tuple[str, ...] = get_args(FailOn)
Verdict = Literal["pass", "warnings", "fail"]


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    title: str


_RULE_LIST = (
    Rule("xnat-characters", "error", "Characters XNAT does not allow in labels"),
    Rule("xnat-length", "error", "Label longer than XNAT stores"),
    Rule("xnat-empty", "error", "Empty label"),
    Rule("xnat-placeholder", "warning", "XNAT's fallback session label"),
    Rule("project-pattern", "error", "Project ID does not match the convention"),
    Rule("subject-pattern", "error", "Subject label does not match the convention"),
    Rule("session-template", "error", "Session label does not follow the template"),
    Rule("session-field", "error", "Session label field with a value that is not allowed"),
    Rule("session-subject", "error", "Session label does not start with its subject's label"),
    Rule("session-modality", "error", "Modality token disagrees with the session type"),
    Rule("scan-type", "warning", "Scan type not in the allowed list"),
    Rule("duplicate-label", "error", "Label used more than once"),
    Rule("duplicate-site", "error", "Session label used in another project"),
    Rule("near-duplicate", "warning", "Labels that differ only in case, separators or leading zeros"),
    Rule("date-mismatch", "error", "Date in the label differs from the session date"),
    Rule("date-missing", "warning", "Session without a date"),
    Rule("dicom-patient-id", "warning", "PatientID differs from the label"),
    Rule("dicom-patient-name", "warning", "PatientName differs from the label"),
    Rule("dicom-study-date", "error", "StudyDate differs from the session date"),
    Rule("dicom-modality", "error", "DICOM Modality disagrees with the session type"),
    Rule("dicom-study-uid", "error", "More than one StudyInstanceUID in one session"),
    Rule("dicom-unreadable", "warning", "DICOM file that could not be read"),
)
#: Every rule by code, in report order.
RULES: dict[str, Rule] = {r.code: r for r in _RULE_LIST}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken by one object."""

    rule: str
    severity: Severity
    object_type: ObjectType
    object_id: str
    object_label: str
    message: str
    suggestion: str = ""


class Collector:
    """Gathers findings, applying the convention's severities (``off`` drops the finding)."""

    def __init__(self, severity: Mapping[str, str] | None = None) -> None:
        self.severity = dict(severity or {})
        self.findings: list[Finding] = []

    def add(self, rule: str, object_type: ObjectType, object_id: str, object_label: str,
            message: str, suggestion: str | None = None) -> None:
        level = self.severity.get(rule, RULES[rule].severity)
        if level == "off":
            return
        severity: Severity = "error" if level == "error" else "warning"
        self.findings.append(Finding(rule, severity, object_type,
                                     object_id, object_label, message, suggestion or ""))


def totals(findings: Iterable[Finding]) -> dict[str, object]:
    """Counts by severity and by rule (rules in :data:`RULES` order)."""
    items = list(findings)
    by_rule = Counter(f.rule for f in items)
    return {
        "findings": len(items),
        "error": sum(f.severity == "error" for f in items),
        "warning": sum(f.severity == "warning" for f in items),
        "by_rule": {code: by_rule[code] for code in RULES if by_rule[code]},
    }


def verdict(findings: Iterable[Finding]) -> Verdict:
    levels = {f.severity for f in findings}
    return "fail" if "error" in levels else "warnings" if levels else "pass"


def fails(findings: Iterable[Finding], fail_on: FailOn) -> bool:
    """True when ``fail-on`` asks for a non-zero exit given these findings."""
    levels = {f.severity for f in findings}
    if fail_on == "error":
        return "error" in levels
    if fail_on == "warning":
        return bool(levels)
    return False
