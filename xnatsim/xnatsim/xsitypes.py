"""The XNAT data types xnatsim knows (from xnat.xsd of XNAT 1.8), and their families.

Kept static so the server works without the schema files; the names and root elements were
read from ``xnat/tests/xnat.xml`` of the xnat 0.8.1 sdist (XNAT's own xnat.xsd).
"""

from __future__ import annotations

_MODALITIES = ("cr", "ct", "dx3DCraniofacial", "dx", "ecg", "eeg", "eps", "es", "esv", "gm", "gmv", "hd",
               "io", "meg", "mg", "mr", "nm", "op", "opt", "otherDicom", "pet", "petmr", "rf", "rg", "rt",
               "sm", "sr", "us", "xa3D", "xa", "xc", "xcv")
_SCAN_PREFIXES = ("cr", "ct", "dx3DCraniofacial", "dx", "ecg", "eeg", "eps", "es", "esv", "gm", "gmv", "hd",
                  "io", "meg", "mg", "mr", "mrs", "nm", "op", "opt", "otherDicom", "pet", "rf", "rg", "sc",
                  "seg", "sm", "sr", "us", "voiceAudio", "xa3D", "xa", "xc", "xcv")

#: concrete image session types (``xnat:imageSessionData`` descendants)
SESSION_TYPES: frozenset[str] = frozenset(f"xnat:{m}SessionData" for m in _MODALITIES)
#: subject assessors that are not image sessions
OTHER_SUBJECT_ASSESSOR_TYPES: frozenset[str] = frozenset({"xnat:subjectVariablesData"})
SUBJECT_ASSESSOR_TYPES: frozenset[str] = SESSION_TYPES | OTHER_SUBJECT_ASSESSOR_TYPES
#: image assessors (hang under a session: ``…/experiments/E/assessors/A``)
IMAGE_ASSESSOR_TYPES: frozenset[str] = frozenset(
    {"xnat:qcAssessmentData", "xnat:qcManualAssessorData", "xnat:mrAssessorData", "xnat:petAssessorData"})
EXPERIMENT_TYPES: frozenset[str] = SUBJECT_ASSESSOR_TYPES | IMAGE_ASSESSOR_TYPES
SCAN_TYPES: frozenset[str] = frozenset(
    {f"xnat:{p}ScanData" for p in _SCAN_PREFIXES} | {"xnat:rtImageScanData"}) - {"xnat:rtScanData"}
#: abstract types accepted as ``xsiType=`` filters on listings
ABSTRACT_EXPERIMENT_TYPES: frozenset[str] = frozenset(
    {"xnat:experimentData", "xnat:subjectAssessorData", "xnat:imageSessionData", "xnat:imageAssessorData"})
ABSTRACT_SCAN_TYPES: frozenset[str] = frozenset({"xnat:imageScanData"})

#: root element names of XML documents (``<xnat:MRSession …>``)
_SPECIAL_ROOTS = {
    "xnat:projectData": "Project", "xnat:subjectData": "Subject", "xnat:subjectVariablesData": "SubjectVariables",
    "xnat:qcAssessmentData": "QCAssessment", "xnat:qcManualAssessorData": "QCManualAssessment",
    "xnat:resourceCatalog": "ResourceCatalog", "xnat:rtImageScanData": "RTImageScan",
    "xnat:otherDicomSessionData": "OtherDicomSession", "xnat:otherDicomScanData": "OtherDicomScan",
    "xnat:dx3DCraniofacialSessionData": "DX3DCraniofacialSession",
    "xnat:dx3DCraniofacialScanData": "DX3DCraniofacialScan", "xnat:xa3DSessionData": "XA3DSession",
    "xnat:xa3DScanData": "XA3DScan", "xnat:voiceAudioScanData": "VoiceAudioScan", "xnat:segScanData": "SegScan",
    "xnat:mrAssessorData": "MRAssessor", "xnat:petAssessorData": "PETAssessor",
}

#: the ``modality`` value of each session family (``mrSessionData`` → ``MR``)
def modality_of(xsi_type: str) -> str:
    """DICOM-style modality code of a session or scan type (``xnat:petSessionData`` → ``PT``)."""
    name = xsi_type.split(":", 1)[-1]
    for suffix in ("SessionData", "ScanData"):
        if name.endswith(suffix):
            code = name[: -len(suffix)].upper()
            return {"PET": "PT", "PETMR": "PT"}.get(code, code)
    return ""


def root_element(xsi_type: str) -> str:
    """``xnat:mrSessionData`` → ``xnat:MRSession`` (the XML document's root element)."""
    if xsi_type in _SPECIAL_ROOTS:
        return "xnat:" + _SPECIAL_ROOTS[xsi_type]
    name = xsi_type.split(":", 1)[-1]
    for suffix, tail in (("SessionData", "Session"), ("ScanData", "Scan")):
        if name.endswith(suffix):
            return "xnat:" + name[: -len(suffix)].upper() + tail
    return xsi_type


def scan_type_for(session_type: str) -> str:
    """The scan type matching a session type (``xnat:mrSessionData`` → ``xnat:mrScanData``)."""
    candidate = session_type.replace("SessionData", "ScanData")
    if candidate == "xnat:petmrScanData":
        return "xnat:petScanData"
    return candidate if candidate in SCAN_TYPES else "xnat:otherDicomScanData"


def canonical(xsi_type: str, known: frozenset[str]) -> str | None:
    """The known spelling of ``xsi_type`` (XNAT matches type names case-insensitively)."""
    if xsi_type in known:
        return xsi_type
    lowered = xsi_type.lower()
    for name in known:
        if name.lower() == lowered:
            return name
    return None
