"""XNAT's rules for project IDs and subject, session and scan labels: the one place they live.

What XNAT itself does (``shared/reference/label-validation.md`` §1-2):

* Project IDs: ``^[A-Za-z0-9_-]+$``; REST refuses anything else with 417.
* Subject and session labels: REST does **not** check their characters, but DICOM import makes
  every label it derives legal with ``Labels.toLabelChars`` (dicom-xnat-util), which replaces
  each character outside ``[\\w-]`` by ``_``.  Java's ``\\w`` without UNICODE_CHARACTER_CLASS is
  ASCII (``[A-Za-z0-9_]``), so ``é`` becomes ``_`` too.  :func:`clean_label` is that function.
* Scan IDs: DICOM import uses the SeriesNumber when it is a valid file name, else the cleaned
  SeriesInstanceUID.  We accept ``[\\w.-]`` for scan IDs (a file-name-safe superset that keeps
  dotted IDs such as ``1.1`` legal) and suggest the cleaned form otherwise.
* Length: labels are ``xs:string`` without a maxLength, stored as ``VARCHAR(255)``: at most 255.
* The session label ``dicom_upload`` is the import service's fallback when no field named one.

Problems carry a stable ``code`` (``label-empty``, ``label-characters``, ``label-length``,
``label-placeholder``), a message and, where one exists, the ``suggestion`` XNAT itself would
have produced.  nifti-import calls :func:`check_label` / :func:`suggest_label` before creating
anything; label-validation turns the same problems into findings.

The second half holds the label *shapes* project-summary reports (:func:`label_suffix`,
:func:`visit_of`, :func:`label_pattern`): pure string functions over the same token rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

#: Longest label XNAT stores (``VARCHAR(255)``).
MAX_LENGTH = 255

#: The session label XNAT's DICOM import service falls back to when no header names one.
DICOM_UPLOAD_FALLBACK = "dicom_upload"


class Kind(StrEnum):
    """What a label names; each kind has its own character rule."""

    PROJECT = "project"
    SUBJECT = "subject"
    SESSION = "session"
    SCAN = "scan"


#: Characters allowed per kind (the character class, without brackets).
_ALLOWED: dict[Kind, str] = {
    Kind.PROJECT: r"A-Za-z0-9_\-",
    Kind.SUBJECT: r"A-Za-z0-9_\-",
    Kind.SESSION: r"A-Za-z0-9_\-",
    Kind.SCAN: r"A-Za-z0-9_.\-",
}
_LEGAL = {kind: re.compile(f"[{chars}]+") for kind, chars in _ALLOWED.items()}
_ILLEGAL = {kind: re.compile(f"[^{chars}]") for kind, chars in _ALLOWED.items()}
#: Human wording of the allowed characters, for messages.
_ALLOWED_TEXT = {
    Kind.PROJECT: "letters, digits, _ and -",
    Kind.SUBJECT: "letters, digits, _ and -",
    Kind.SESSION: "letters, digits, _ and -",
    Kind.SCAN: "letters, digits, _, . and -",
}


@dataclass(frozen=True, slots=True)
class LabelProblem:
    """One way a label breaks XNAT's rules."""

    code: str
    kind: Kind
    label: str
    message: str
    #: The label XNAT's own cleaning would give, when that is a legal label.
    suggestion: str | None = None


def clean_label(text: str) -> str:
    """XNAT's ``Labels.toLabelChars``: every character outside ``[A-Za-z0-9_-]`` becomes ``_``
    (``DOE^JOHN`` -> ``DOE_JOHN``, ``sub 01.v2`` -> ``sub_01_v2``).  Nothing is collapsed or
    trimmed, exactly as XNAT does it."""
    return _ILLEGAL[Kind.SESSION].sub("_", text)


def suggest_label(label: str, kind: Kind | str = Kind.SESSION) -> str | None:
    """The legal label closest to ``label`` the way XNAT would make it: characters cleaned as
    :func:`clean_label` does (``.`` kept for scans), cut to :data:`MAX_LENGTH`.  ``None`` when
    ``label`` is already legal or nothing usable is left (an empty or all-blank label)."""
    kind = Kind(kind)
    if is_legal(label, kind) or not label.strip():
        return None
    return _ILLEGAL[kind].sub("_", label.strip())[:MAX_LENGTH]


def is_legal(label: str, kind: Kind | str = Kind.SESSION) -> bool:
    """True when ``label`` passes every rule of :func:`check_label`."""
    kind = Kind(kind)
    return len(label) <= MAX_LENGTH and _LEGAL[kind].fullmatch(label) is not None


def check_label(label: str, kind: Kind | str = Kind.SESSION) -> list[LabelProblem]:
    """Every problem XNAT's rules find in ``label`` (empty list: legal).

    ``label-placeholder`` (``dicom_upload``, XNAT's fallback session label) is legal but almost
    certainly not the label anybody meant; it is reported so callers can warn."""
    kind = Kind(kind)
    if not label:
        return [LabelProblem("label-empty", kind, label, f"the {kind} label is empty")]
    suggestion = suggest_label(label, kind)
    problems: list[LabelProblem] = []
    bad = sorted(set(_ILLEGAL[kind].findall(label)))
    if bad:
        shown = " ".join(repr(c) for c in bad[:8]) + (" ..." if len(bad) > 8 else "")
        problems.append(LabelProblem(
            "label-characters", kind, label,
            f"{kind} label {label!r} has characters XNAT does not allow in labels ({shown}); "
            f"allowed: {_ALLOWED_TEXT[kind]}",
            suggestion,
        ))
    if len(label) > MAX_LENGTH:
        problems.append(LabelProblem(
            "label-length", kind, label,
            f"{kind} label is {len(label)} characters long; XNAT stores at most {MAX_LENGTH}",
            suggestion,
        ))
    if kind is Kind.SESSION and label == DICOM_UPLOAD_FALLBACK:
        problems.append(LabelProblem(
            "label-placeholder", kind, label,
            f"session label {label!r} is XNAT's fallback when no DICOM field named the session",
        ))
    return problems


def project_id(text: str) -> str:
    """An argparse type: an XNAT project ID (``ArgumentTypeError`` otherwise)."""
    if not is_legal(text, Kind.PROJECT):
        import argparse

        raise argparse.ArgumentTypeError(
            f"not an XNAT project ID (letters, digits, _ and - only): {text!r}")
    return text


def problems_text(problems: list[LabelProblem]) -> str:
    """One line for a list of problems (messages joined, suggestion appended once)."""
    text = "; ".join(p.message for p in problems)
    suggestion = next((p.suggestion for p in problems if p.suggestion), None)
    return f"{text} (XNAT would use {suggestion!r})" if suggestion else text


# --------------------------------------------------------------------------- label shapes

#: Label tokens that name a modality rather than a visit (dropped when deriving the visit).
MODALITY_TOKENS = frozenset(
    {"mr", "mri", "pet", "pt", "ct", "petct", "petmr", "mrpet", "ctpet", "dwi", "fmri", "spect"}
)
#: The visit of a label that encodes none.
NO_VISIT = "(none)"

SEPARATORS = re.compile(r"[_\-.\s]+")


def tokens(text: str) -> list[str]:
    """The label's parts between separators (``_``, ``-``, ``.``, blanks)."""
    return [t for t in SEPARATORS.split(text) if t]


def label_suffix(session_label: str, subject_label: str) -> str | None:
    """What the session label adds to the subject label (``subj001_baseline_mr`` → ``baseline_mr``).

    The subject label is removed as a prefix (case-insensitively) or, failing that, as a run of
    whole tokens anywhere in the label.  ``""`` if the label is the subject label, ``None`` if
    the label does not contain it at all.
    """
    label = session_label.strip()
    subject = subject_label.strip()
    if not subject:
        return None
    if label.lower().startswith(subject.lower()):
        rest = label[len(subject) :]
        # "subj001_..." yes, but "subj0012_..." is another subject: need a separator or the end.
        if not rest or SEPARATORS.match(rest):
            return "_".join(tokens(rest))
    parts = tokens(label)
    sub = [t.lower() for t in tokens(subject)]
    lowered = [t.lower() for t in parts]
    for i in range(len(parts) - len(sub) + 1):
        if lowered[i : i + len(sub)] == sub:
            return "_".join(parts[:i] + parts[i + len(sub) :])
    return None


def visit_of(session_label: str, subject_label: str) -> str:
    """The visit a session label encodes: its suffix without modality tokens
    (``baseline_mr`` → ``baseline``); :data:`NO_VISIT` when nothing is left or nothing matches."""
    suffix = label_suffix(session_label, subject_label)
    if not suffix:
        return NO_VISIT
    parts = [t for t in tokens(suffix) if t.lower() not in MODALITY_TOKENS]
    return "_".join(parts) if parts else NO_VISIT


def label_pattern(session_label: str, subject_label: str) -> str:
    """The session label's shape: subject label as ``{subject}``, digit runs as ``#``
    (``subj001_v2_mr`` → ``{subject}_v#_mr``)."""
    label = session_label.strip()
    subject = subject_label.strip()
    if subject and label.lower().startswith(subject.lower()):
        rest = label[len(subject) :]
        if not rest or SEPARATORS.match(rest):
            return "{subject}" + re.sub(r"\d+", "#", rest)
    if subject:
        idx = label.lower().find(subject.lower())
        if idx >= 0:
            return (
                re.sub(r"\d+", "#", label[:idx])
                + "{subject}"
                + re.sub(r"\d+", "#", label[idx + len(subject) :])
            )
    return re.sub(r"\d+", "#", label)


def near_duplicate_key(label: str) -> str:
    """A key equal for labels that differ only in case, ``-``/``_``/``.``/blank separators or
    leading zeros of digit runs (``Sub-01_MR`` and ``sub_1_mr`` share a key)."""
    parts = [re.sub(r"\d+", lambda m: str(int(m.group())), t.lower()) for t in tokens(label)]
    return "_".join(parts)
