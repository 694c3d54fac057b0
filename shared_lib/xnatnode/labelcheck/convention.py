"""A project's naming convention: the YAML/JSON document, its JSON Schema, and the compiled form.

The document lives in the project's configuration service
(``/data/projects/P/config/xnatnode/labels``, read with ``contents=true``) or in a file given with
``--convention``.  It is parsed with PyYAML (JSON is read by the same parser, so both formats give
line numbers), checked against :data:`SCHEMA` with ``jsonschema``, then compiled
(:func:`compile_convention`): the template becomes two regular expressions, one with only the
allowed values, one with any value, so a label can be told "wrong shape" apart from "right shape,
value not allowed".  Every problem raises :class:`ConventionError` naming the key and the line.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from xnatnode.labelcheck.rules import FAIL_ON, RULES, FailOn, Severity

#: Where the convention lives in XNAT's configuration service.
CONFIG_TOOL = "xnatnode"
CONFIG_PATH = "labels"

_REGEX = {"type": "string", "minLength": 1, "format": "regex"}
_VALUES = {
    "oneOf": [
        {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1},
        _REGEX,
    ]
}

#: JSON Schema of the convention document (documented in the README, section "Convention").
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "xnatnode label convention",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "description": {"type": "string"},
        "project": _REGEX,
        "subject": _REGEX,
        "session": {"type": "string", "minLength": 1},
        "fields": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
            "additionalProperties": _VALUES,
        },
        "modality": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z0-9]+$"},
            "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9]+:[A-Za-z0-9]+$"},
        },
        "scan-types": _VALUES,
        "case-sensitive": {"type": "boolean"},
        "uniqueness": {"enum": ["project", "site"]},
        "severity": {
            "type": "object",
            "propertyNames": {"enum": sorted(RULES)},
            "additionalProperties": {"enum": ["error", "warning", "off"]},
        },
        "fail-on": {"enum": list(FAIL_ON)},
        "dicom": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "patient-id": {"enum": ["session", "subject", "ignore"]},
                "patient-name": {"enum": ["session", "subject", "ignore"]},
            },
        },
    },
}


class ConventionError(ValueError):
    """A convention that cannot be used; the message names the source, key and line."""


@dataclass(frozen=True, slots=True)
class Values:
    """Allowed values of a field: a list (case per convention) or a regular expression."""

    listed: tuple[str, ...] = ()
    pattern: str | None = None

    def regex(self) -> str:
        if self.pattern is not None:
            return f"(?:{_strip_anchors(self.pattern)})"
        return "(?:" + "|".join(re.escape(v) for v in sorted(self.listed, key=len, reverse=True)) + ")"

    def allows(self, value: str, *, case_sensitive: bool) -> bool:
        if self.pattern is not None:
            flags = 0 if case_sensitive else re.IGNORECASE
            return re.fullmatch(_strip_anchors(self.pattern), value, flags) is not None
        if case_sensitive:
            return value in self.listed
        return value.lower() in {v.lower() for v in self.listed}

    def describe(self) -> str:
        return f"/{self.pattern}/" if self.pattern is not None else ", ".join(self.listed)


@dataclass(frozen=True, slots=True)
class Convention:
    """A checked convention (``source`` says where it came from: ``config``, a file, or ``none``)."""

    source: str = "none"
    location: str = ""
    project: str | None = None
    subject: str | None = None
    session: str | None = None
    fields: Mapping[str, Values] = field(default_factory=dict)
    modality: Mapping[str, str] = field(default_factory=dict)
    scan_types: Values | None = None
    case_sensitive: bool = False
    uniqueness: Literal["project", "site"] = "project"
    severity: Mapping[str, Severity | Literal["off"]] = field(default_factory=dict)
    fail_on: FailOn = "never"
    patient_id: Literal["session", "subject", "ignore"] = "session"
    patient_name: Literal["session", "subject", "ignore"] = "subject"
    #: the template compiled: any value per placeholder / allowed values only (None: no template)
    loose: re.Pattern[str] | None = None
    strict: re.Pattern[str] | None = None
    #: ``{date}`` placeholders: name -> strftime format
    dates: Mapping[str, str] = field(default_factory=dict)
    #: the loose expression with the ``{subject}`` part left open (see :meth:`loose_for`)
    loose_source: str = ""

    @property
    def present(self) -> bool:
        return self.source != "none"

    @property
    def flags(self) -> int:
        return 0 if self.case_sensitive else re.IGNORECASE

    def loose_for(self, subject_label: str) -> re.Pattern[str] | None:
        """The loose expression with ``{subject}`` pinned to the session's own subject label, so
        that the other fields are split where that label ends (``DEMO_002_MRx`` with subject
        ``DEMO_002`` gives visit ``x``, not subject ``DEMO``)."""
        if not self.loose_source or _SUBJECT_MARK not in self.loose_source or not subject_label:
            return None
        return _compiled(self.loose_source.replace(_SUBJECT_MARK, re.escape(subject_label)), self.flags)

    def placeholders(self) -> list[str]:
        return list(self.loose.groupindex) if self.loose is not None else []


#: A project without a convention: XNAT's own rules only.
NO_CONVENTION = Convention()


# --------------------------------------------------------------------------- parsing


def parse_document(text: str | bytes, source: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """The document's data and the line (1-based) of every key and item, by path.

    A UTF-8 BOM is dropped; tabs used for indentation, syntax errors and duplicate keys raise
    :class:`ConventionError` with the line and column."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConventionError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConventionError(_yaml_message(exc, source, text)) from None
    except yaml.YAMLError as exc:
        raise ConventionError(f"{source}: {exc}") from None
    if node is None:
        raise ConventionError(f"{source}: the document is empty")
    lines: dict[tuple[str | int, ...], int] = {}
    return _construct(node, (), lines, source), lines


def _yaml_message(exc: yaml.MarkedYAMLError, source: str, text: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
    problem = exc.problem or exc.context or "syntax error"
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
        problem = "a tab character: YAML indents with spaces only"
    context = exc.context_mark
    if exc.context and context is not None and context is not mark:
        problem += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
    return f"{source}: {where}: {problem}"


def _construct(node: yaml.Node, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int],
               source: str, loader: yaml.SafeLoader | None = None) -> Any:
    """Build the value of ``node`` with PyYAML's safe constructor, recording each path's line."""
    loader = loader or yaml.SafeLoader("")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ConventionError(f"{source}: line {line}: key {key!r} must be text")
            if key in out:
                raise ConventionError(f"{source}: line {line}: key {_key((*path, key))!r} appears twice")
            out[key] = _construct(value_node, (*path, key), lines, source, loader)
            lines[(*path, key)] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, source, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


# --------------------------------------------------------------------------- schema


def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def check_schema(data: Any, lines: Mapping[tuple[str | int, ...], int], source: str) -> None:
    """Raise :class:`ConventionError` listing every schema problem with its key and line."""
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(k for k in error.instance if k not in allowed):
                known = ", ".join(sorted(allowed))
                problems.append(f"line {lines.get((*path, key), '?')}: {_key((*path, key))}: unknown key "
                                f"(known keys: {known})")
            continue
        if error.validator == "propertyNames":
            bad = error.instance if isinstance(error.instance, str) else None
            key_path = (*path, bad) if bad is not None else path
            problems.append(f"line {lines.get(key_path, lines.get(path, '?'))}: {_key(key_path)}: "
                            f"not an allowed key ({error.message})")
            continue
        problems.append(f"line {lines.get(path, '?')}: {_key(path)}: {_schema_message(error)}")
    if problems:
        raise ConventionError(f"{source}: " + "; ".join(problems))


def _schema_message(error: Any) -> str:
    if error.validator == "format" and error.validator_value == "regex":
        try:
            re.compile(error.instance)
        except re.error as exc:
            return f"not a valid regular expression ({exc})"
    if error.validator == "oneOf":
        return "must be a list of allowed values or a regular expression string"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return str(error.message)


def _key(path: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in path) or "(document)"


# --------------------------------------------------------------------------- compiling

#: Stands for the ``{subject}`` part of a loose template until a subject label is known.
_SUBJECT_MARK = "(?:\x00SUBJECT\x00)"


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)(?::([^{}]*))?\}")
#: strftime directives a date placeholder may use, and what they match
_DATE_PARTS = {"%Y": r"\d{4}", "%y": r"\d{2}", "%m": r"\d{2}", "%d": r"\d{2}", "%%": "%"}


def _strip_anchors(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$")


def _may_span_separators(pattern: str) -> bool:
    """Whether a field's expression may match ``_``, ``-``, ``.`` or a blank (then the loose
    template lets that field's value hold them).  A reading of the pattern's text, not of its
    language: ``.``, ``_``, ``-``, ``\\s``, ``\\W`` outside a character class, or a class holding
    ``_``, ``.``, ``\\s``, a leading or trailing ``-``, or negated."""
    classes = re.findall(r"\[(?:\\.|[^\]])*\]", pattern)
    rest = re.sub(r"\[(?:\\.|[^\]])*\]", "", pattern)
    if any(c in rest for c in "._-") or "\\s" in rest or "\\W" in rest:
        return True
    return any("_" in c or "." in c or "\\s" in c or c.startswith(("[-", "[^")) or c.endswith("-]")
               for c in classes)


def _date_regex(fmt: str) -> str:
    out = ""
    for part in re.split(r"(%.)", fmt):
        if part.startswith("%") and len(part) == 2:
            if part not in _DATE_PARTS:
                raise ValueError(f"date format {fmt!r}: {part} is not supported (use %Y %y %m %d)")
            out += _DATE_PARTS[part]
        else:
            out += re.escape(part)
    return out


def _template(template: str, fields: Mapping[str, Values], modality: Mapping[str, str],
              subject: str | None) -> tuple[str, str, dict[str, str]]:
    """Loose and strict regular expressions of a template, and its date placeholders."""
    loose = strict = ""
    dates: dict[str, str] = {}
    pos = 0
    seen: set[str] = set()
    for m in _PLACEHOLDER.finditer(template):
        literal = template[pos : m.start()]
        if "{" in literal or "}" in literal:
            raise ValueError(f"unbalanced brace in {literal!r}")
        loose += re.escape(literal)
        strict += re.escape(literal)
        name, fmt = m.group(1), m.group(2)
        if name in seen:
            raise ValueError(f"placeholder {{{name}}} appears twice")
        seen.add(name)
        if name == "date" or fmt is not None:
            if name in fields:
                raise ValueError(f"{{{name}:…}} is a date placeholder but fields.{name} is also given")
            dates[name] = fmt or "%Y%m%d"
            part = _date_regex(dates[name])
            any_part = part
        elif name == "subject":
            part = f"(?:{_strip_anchors(subject)})" if subject else r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
            any_part = _SUBJECT_MARK
        elif name == "modality":
            if not modality:
                raise ValueError("{modality} needs the 'modality' map (token -> xsiType)")
            part = "(?:" + "|".join(re.escape(k) for k in sorted(modality, key=len, reverse=True)) + ")"
            any_part = r"[A-Za-z0-9]+"
        elif name in fields:
            part = fields[name].regex()
            pattern = fields[name].pattern
            any_part = r".+?" if pattern is not None and _may_span_separators(pattern) else r"[A-Za-z0-9]+?"
        else:
            raise ValueError(f"placeholder {{{name}}} is not 'subject', 'modality', 'date' or a key of 'fields'")
        loose += f"(?P<{name}>{any_part})"
        strict += f"(?P<{name}>{part})"
        pos = m.end()
    rest = template[pos:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"unbalanced brace in {rest!r}")
    return loose + re.escape(rest), strict + re.escape(rest), dates


def compile_convention(data: Mapping[str, Any], lines: Mapping[tuple[str | int, ...], int],
                       source: str, location: str) -> Convention:
    """A :class:`Convention` from a schema-valid document."""

    def fail(key: tuple[str | int, ...], message: str) -> ConventionError:
        return ConventionError(f"{location}: line {lines.get(key, '?')}: {_key(key)}: {message}")

    def values(raw: Any) -> Values:
        if isinstance(raw, str):
            return Values(pattern=raw)
        return Values(listed=tuple(str(v) for v in raw))

    fields = {name: values(raw) for name, raw in (data.get("fields") or {}).items()}
    modality = dict(data.get("modality") or {})
    case_sensitive = bool(data.get("case-sensitive", False))
    loose = strict = None
    loose_source = ""
    dates: dict[str, str] = {}
    template = data.get("session")
    if template:
        try:
            loose_text, strict_text, dates = _template(template, fields, modality, data.get("subject"))
        except ValueError as exc:
            raise fail(("session",), str(exc)) from None
        flags = 0 if case_sensitive else re.IGNORECASE
        loose_source = loose_text
        loose = re.compile(loose_text.replace(_SUBJECT_MARK, ".+?"), flags)
        strict = re.compile(strict_text, flags)
    dicom = data.get("dicom") or {}
    return Convention(
        source=source, location=location, project=data.get("project"), subject=data.get("subject"),
        session=template, fields=fields, modality=modality,
        scan_types=values(data["scan-types"]) if "scan-types" in data else None,
        case_sensitive=case_sensitive, uniqueness=data.get("uniqueness", "project"),
        severity=dict(data.get("severity") or {}), fail_on=data.get("fail-on", "never"),
        patient_id=dicom.get("patient-id", "session"), patient_name=dicom.get("patient-name", "subject"),
        loose=loose, strict=strict, dates=dates, loose_source=loose_source,
    )


def load_convention(text: str | bytes, source: str, location: str) -> Convention:
    """Parse, schema-check and compile a convention document (``source``: ``config`` or ``file``;
    ``location``: what messages call it, e.g. the file name)."""
    data, lines = parse_document(text, location)
    check_schema(data, lines, location)
    return compile_convention(data, lines, source, location)


def parse_date_token(value: str, fmt: str) -> dt.date | None:
    """The date a ``{date}`` token encodes, ``None`` when it is no real date (``20240230``)."""
    try:
        return dt.datetime.strptime(value, fmt).date()
    except ValueError:
        return None
