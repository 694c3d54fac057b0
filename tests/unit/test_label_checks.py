"""The checks on in-memory records (no server): codes, severities, messages, suggestions."""

from __future__ import annotations

import datetime as dt

from xnatnode.labelcheck.checks import run_checks
from xnatnode.labelcheck.convention import NO_CONVENTION, Convention, load_convention
from xnatnode.labelcheck.page import build_page
from xnatnode.labelcheck.records import (
    ScanRec,
    SeriesHeader,
    SessionRec,
    SiteLabel,
    Snapshot,
    SubjectRec,
)
from xnatnode.labelcheck.report import build
from xnatnode.labelcheck.rules import Finding, fails, totals, verdict
from xnatnode.reports import render

CONVENTION = """\
subject: '^sub[0-9]{3}$'
session: '{subject}_{visit}_{modality}'
fields: {visit: [baseline, m12]}
modality: {mr: xnat:mrSessionData, pet: xnat:petSessionData}
scan-types: '^(T1w|T2w)$'
"""
DAY = dt.date(2024, 1, 2)


def conv(text: str = CONVENTION) -> Convention:
    return load_convention(text, "file", "test")


def snap(*sessions: SessionRec, scans: tuple[ScanRec, ...] = (), context: str = "project",
         subjects: tuple[SubjectRec, ...] | None = None) -> Snapshot:
    subs = subjects if subjects is not None else tuple(
        {s.subject_id: SubjectRec(s.subject_id, s.subject_label) for s in sessions}.values())
    return Snapshot("P1", "project" if context == "project" else "session", subjects=list(subs),
                    sessions=list(sessions), scans=list(scans), targets=[s.id for s in sessions])


def session(label: str, subject: str = "sub001", xsi: str = "xnat:mrSessionData", sid: str = "",
            date: dt.date | None = DAY, **kw: str) -> SessionRec:
    return SessionRec(sid or f"E_{label}", label, f"S_{subject}", subject, xsi, date, **kw)


def rules(findings: list[Finding]) -> list[str]:
    return sorted(f.rule for f in findings)


def test_good_labels_pass() -> None:
    s = session("sub001_baseline_mr")
    found = run_checks(snap(s, scans=(ScanRec(s.id, "1", "T1w", "MR"),)), conv())
    assert found == []
    assert verdict(found) == "pass"


def test_without_convention_only_xnat_rules() -> None:
    s = session("any label", subject="whatever")
    found = run_checks(snap(s), NO_CONVENTION)
    assert rules(found) == ["xnat-characters"]
    assert found[0].suggestion == "rename to 'any_label' (as XNAT's DICOM import would)"


def test_template_findings_are_specific() -> None:
    found = run_checks(snap(
        session("sub001_m36_mr"),
        session("sub002_m12_mr", subject="sub001"),
        session("sub001_m12_pet"),
        session("sub001_m12_ct"),
        session("nonsense"),
    ), conv())
    by_label = {f.object_label: (f.rule, f.suggestion) for f in found}
    assert by_label["sub001_m36_mr"][0] == "session-field"
    assert by_label["sub002_m12_mr"] == ("session-subject", "rename to 'sub001_m12_mr' or move the session to its subject")
    assert by_label["sub001_m12_pet"] == ("session-modality", "rename to 'sub001_m12_mr'")
    assert by_label["sub001_m12_ct"][0] == "session-field"
    assert by_label["nonsense"][0] == "session-template"


def test_template_suggestion_from_xnat_cleaning() -> None:
    [template, chars] = sorted(run_checks(snap(session("sub001 m12.mr")), conv()), key=lambda f: f.rule)
    assert (template.rule, chars.rule) == ("session-template", "xnat-characters")
    assert template.suggestion == "rename to 'sub001_m12_mr'"


def test_subject_pattern_and_scan_types() -> None:
    s = session("sub01_baseline_mr", subject="sub01")
    found = run_checks(snap(s, scans=(ScanRec(s.id, "1", "", "MR"), ScanRec(s.id, "2", "T1w", "MR"))), conv())
    assert rules(found) == ["scan-type", "session-template", "subject-pattern"]
    scan = next(f for f in found if f.rule == "scan-type")
    assert scan.object_id == f"{s.id}/1"
    assert "has no type" in scan.message


def test_severity_override_and_off() -> None:
    c = conv(CONVENTION + "severity:\n  scan-type: error\n  subject-pattern: 'off'\n")
    s = session("sub01_baseline_mr", subject="sub01")
    found = run_checks(snap(s, scans=(ScanRec(s.id, "1", "DWI"),)), c)
    assert {f.rule: f.severity for f in found} == {"scan-type": "error", "session-template": "error"}


def test_near_duplicates_and_site_uniqueness() -> None:
    a = session("sub001_baseline_mr")
    b = session("SUB001-Baseline-MR", sid="E2")
    snapshot = snap(a, b)
    snapshot.site_labels = [SiteLabel("OTHER", "X1", "sub001_baseline_mr"), SiteLabel("P1", a.id, a.label)]
    found = run_checks(snapshot, conv(CONVENTION + "uniqueness: site\n"))
    assert rules(found).count("near-duplicate") == 2
    site = [f for f in found if f.rule == "duplicate-site"]
    assert [f.object_label for f in site] == ["sub001_baseline_mr"]
    assert "OTHER/sub001_baseline_mr" in site[0].message


def test_session_context_reports_only_its_session() -> None:
    a = session("sub001_baseline_mr")
    b = session("SUB001-Baseline-MR", sid="E2")
    snapshot = snap(a, b, context="session")
    snapshot.targets = [a.id]
    found = run_checks(snapshot, conv())
    assert [(f.rule, f.object_label) for f in found] == [("near-duplicate", "sub001_baseline_mr")]


def test_dates() -> None:
    c = conv("session: '{subject}_{date}'\n")
    found = run_checks(snap(session("sub001_20240103"), session("sub001_20240230"),
                            session("sub001_20240102", date=None)), c)
    by_label = {f.object_label: f for f in found}
    assert by_label["sub001_20240103"].rule == "date-mismatch"
    assert by_label["sub001_20240103"].suggestion.startswith("rename to 'sub001_20240102'")
    assert by_label["sub001_20240230"].rule == "session-field"
    assert by_label["sub001_20240102"].rule == "date-missing"


def _header(sid: str, scan: str, **kw: str) -> SeriesHeader:
    values = {"patient_id": "sub001_baseline_mr", "patient_name": "sub001", "study_date": "20240102",
              "modality": "MR", "study_uid": "1.2.3"}
    values.update(kw)
    return SeriesHeader(sid, scan, f"s/SCANS/{scan}/DICOM/a.dcm", **values)


def test_dicom_headers_from_the_mount() -> None:
    s = session("sub001_baseline_mr")
    good = snap(s)
    good.headers = {s.id: [_header(s.id, "1"), _header(s.id, "2", modality="SR", study_uid="1.2.3")]}
    assert run_checks(good, NO_CONVENTION) == []
    bad = snap(s)
    bad.headers = {s.id: [_header(s.id, "1", patient_id="X", patient_name="DOE^JOHN", study_date="20200101",
                                  modality="CT"), _header(s.id, "2", study_uid="9.9", modality="CT")]}
    found = run_checks(bad, NO_CONVENTION)
    assert rules(found) == ["dicom-modality", "dicom-patient-id", "dicom-patient-name", "dicom-study-date",
                            "dicom-study-uid"]
    assert all("archived DICOM" in f.message or "StudyInstanceUID" in f.message for f in found)


def test_patient_name_is_compared_after_xnat_cleaning() -> None:
    s = session("DOE_JOHN_mr", subject="DOE_JOHN")
    snapshot = snap(s)
    snapshot.headers = {s.id: [_header(s.id, "1", patient_id="DOE_JOHN_mr", patient_name="DOE^JOHN")]}
    assert run_checks(snapshot, NO_CONVENTION) == []


def test_stored_header_fields_when_nothing_is_mounted() -> None:
    s = session("sub001_baseline_mr", dcm_patient_id="12345", dcm_patient_name="sub001")
    found = run_checks(snap(s, scans=(ScanRec(s.id, "1", "T1w", "PT"),)), NO_CONVENTION)
    assert rules(found) == ["dicom-modality", "dicom-patient-id"]
    assert "XNAT's stored dcmPatientId" in found[1].message or "XNAT's stored dcmPatientId" in found[0].message


def test_dicom_comparison_can_be_retargeted() -> None:
    c = conv("dicom: {patient-id: subject, patient-name: ignore}\n")
    s = session("sub001_baseline_mr", dcm_patient_id="sub001", dcm_patient_name="someone")
    assert run_checks(snap(s), c) == []


def test_fail_on_and_totals() -> None:
    found = run_checks(snap(session("sub001 baseline", date=None)), NO_CONVENTION)
    assert totals(found)["by_rule"] == {"xnat-characters": 1, "date-missing": 1}
    assert fails(found, "error")
    assert fails(found, "warning")
    assert not fails(found, "never")
    warnings_only = [f for f in found if f.severity == "warning"]
    assert not fails(warnings_only, "error")
    assert verdict(warnings_only) == "warnings"


def test_fields_split_where_the_subject_label_ends() -> None:
    c = conv("subject: '^DEMO_[0-9]{3}$'\nsession: '{subject}_{modality}{visit}'\n"
             "fields: {visit: '^[0-9]$'}\nmodality: {MR: xnat:mrSessionData}\n")
    found = run_checks(snap(session("DEMO_002_MRx", subject="DEMO_002")), c)
    assert [(f.rule, f.message) for f in found] == [
        ("session-field", "visit 'x' in session label 'DEMO_002_MRx' is not allowed (allowed: /^[0-9]$/)")]
    other = run_checks(snap(session("DEMO_003_MR1", subject="DEMO_002")), c)
    assert [f.rule for f in other] == ["session-subject"]


def test_header_equal_to_an_illegal_label_is_no_mismatch() -> None:
    s = session("sub001 mr.v2", dcm_patient_id="sub001 mr.v2", dcm_patient_name="sub001")
    assert [f.rule for f in run_checks(snap(s), NO_CONVENTION)] == ["xnat-characters"]


def test_a_field_value_does_not_swallow_separators() -> None:
    c = conv("session: '{subject}_{modality}{visit}'\nfields: {visit: '^[0-9]$'}\n"
             "modality: {MR: xnat:mrSessionData}\n")
    [finding] = run_checks(snap(session("nifti01_baseline_mr", subject="nifti01")), c)
    assert finding.rule == "session-template"


def test_the_findings_page_counts_in_words() -> None:
    records = snap(session("sub001 baseline", date=None))
    found = run_checks(records, NO_CONVENTION)  # one error, one warning
    outcome = build(records, NO_CONVENTION, found, fail_on="never",
                    generated=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), source={})
    html = render(build_page(outcome.document, outcome.findings))
    assert "1 error, 1 warning" in html
    assert "1 errors" not in html
    assert "1 warnings" not in html
