"""findings.html on the report layer: the verdict at the top, key figures, the notes (convention,
header source, anonymisation), then one collapsible section per broken rule with its findings and
suggestions; findings.json and findings.csv beside it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from xnatnode.labelcheck.rules import RULES, Finding
from xnatnode.reports import (
    Column,
    Fact,
    Facts,
    Level,
    Link,
    Note,
    Page,
    RunRecord,
    Section,
    Table,
    Total,
    Verdict,
    quantity,
    write_report,
)

SEVERITY_LEVELS: dict[str, Level] = {"error": "error", "warning": "warning"}
_VERDICTS: dict[str, tuple[Level, str]] = {
    "pass": ("ok", "All labels follow the rules"),
    "warnings": ("warning", "Labels follow the rules, with warnings"),
    "fail": ("error", "Labels break the rules"),
}


def _verdict(doc: dict[str, Any]) -> Verdict:
    level, text = _VERDICTS[doc["verdict"]]
    totals = doc["totals"]
    detail = f"{quantity(totals['error'], 'error')}, {quantity(totals['warning'], 'warning')}"
    if doc["fail_on"] != "never":
        detail += f"; fail-on {doc['fail_on']}"
    return Verdict(level, text, detail)


def build_page(doc: dict[str, Any], findings: list[Finding], run: RunRecord | None = None) -> Page:
    """The findings page for ``doc`` (findings.json)."""
    by_rule: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_rule[f.rule].append(f)
    columns = [
        Column("Severity", "severity", levels=SEVERITY_LEVELS),
        Column("Object", lambda f: f"{f.object_type} {f.object_label}", wrap=True),
        Column("Message", "message", wrap=True),
        Column("Suggestion", "suggestion", wrap=True),
    ]
    sections = []
    for code in RULES:
        found = by_rule.get(code)
        if not found:
            continue
        errors = sum(f.severity == "error" for f in found)
        n, word = (errors, "error") if errors else (len(found), "warning")
        badge = quantity(n, word)
        sections.append(Section(
            f"{code}: {RULES[code].title}",
            [Table(columns, found, csv="findings.csv", empty="None.")],
            id=code, collapsible=True, badge=badge, badge_level="error" if errors else "warning",
        ))
    session = doc.get("session")
    scope = (f"session {session['label']} ({session['id']})" if session
             else f"all {doc['checked']['sessions']} sessions")
    convention = doc["convention"]
    facts = [
        Fact("Convention", convention["location"] or "none", convention["template"] or ""),
        Fact("Headers", ", ".join(f"{k}: {v}" for k, v in doc["headers"]["sources"].items()) or "none"),
        Fact("PatientID compared with", doc["headers"]["patient_id_compared_with"] + " label"),
        Fact("PatientName compared with", doc["headers"]["patient_name_compared_with"] + " label"),
    ]
    parts: list[Any] = [Facts(facts), *[Note(n) for n in doc["notes"]]]
    if sections:
        parts.append(Section("Findings by rule", sections, id="findings"))
    else:
        parts.append(Note("No findings.", level="ok"))
    checked = doc["checked"]
    return Page(
        title=f"{doc['project']} — label-validation",
        heading=f"Labels of {doc['project']}",
        subtitle=f"Checked {scope} · {doc['generated']}",
        verdict=_verdict(doc),
        totals=[Total("Errors", doc["totals"]["error"], level="error" if doc["totals"]["error"] else "ok"),
                Total("Warnings", doc["totals"]["warning"],
                      level="warning" if doc["totals"]["warning"] else "ok"),
                Total("Subjects", checked["subjects"]), Total("Sessions", checked["sessions"]),
                Total("Scans", checked["scans"]), Total("DICOM series read", checked["dicom_series"])],
        parts=parts,
        run=run,
        footer=[Link("findings.csv"), Link("findings.json")],
    )


def write_reports(document: dict[str, Any], findings: list[Finding], out_dir: Path,
                  run: RunRecord | None = None) -> list[Path]:
    """findings.json (``document``), findings.csv and findings.html in ``out_dir``; the paths written."""
    return write_report(out_dir, "findings", document=document, rows=findings,
                        fields=Finding, page=build_page(document, findings, run))
