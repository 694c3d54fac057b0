"""The convention document: parsing with line numbers, the schema, the compiled template."""

from __future__ import annotations

import pytest
from xnatnode.labelcheck.convention import ConventionError, load_convention

GOOD = """\
subject: '^sub[0-9]{3}$'
session: '{subject}_{visit}_{modality}'
fields:
  visit: [baseline, m12, m24]
modality:
  mr: xnat:mrSessionData
  pet: xnat:petSessionData
fail-on: error
"""


def load(text: str | bytes) -> object:
    return load_convention(text, "file", "labels.yaml")


def test_good_document_compiles() -> None:
    c = load_convention(GOOD, "file", "labels.yaml")
    assert c.present
    assert c.fail_on == "error"
    assert c.strict is not None
    assert c.loose is not None
    assert c.strict.fullmatch("sub001_m12_mr")
    assert c.strict.fullmatch("SUB001_M12_MR")  # case-insensitive by default
    assert not c.strict.fullmatch("sub001_m36_mr")
    m = c.loose.fullmatch("sub001_m36_mr")
    assert m is not None
    assert m.groupdict() == {"subject": "sub001", "visit": "m36", "modality": "mr"}


def test_json_document_is_read_too() -> None:
    c = load_convention('{"subject": "^s[0-9]+$", "fields": {"visit": "^v[0-9]$"}, '
                       '"session": "{subject}-{visit}"}', "file", "labels.json")
    assert c.strict is not None
    assert c.strict.fullmatch("s12-v3")


def test_bom_is_accepted() -> None:
    c = load_convention(b"\xef\xbb\xbf" + GOOD.encode(), "config", "config xnatnode/labels")
    assert c.subject == "^sub[0-9]{3}$"


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("subject: '^s$'\n# comment\nsesion: '{subject}'\n", r"line 3: sesion: unknown key",
                 id="unknown-key-named-with-its-line"),
    pytest.param("subject: x\ndicom:\n  patient: session\n", r"line 3: dicom\.patient: unknown key",
                 id="nested-unknown-key"),
    pytest.param("fields:\n  visit: [a]\n\tother: [b]\n", r"labels\.yaml: line 3, column 1: .*tab",
                 id="tab-indentation-names-line-and-column"),
    pytest.param("subject: '^s$'\nfields: [a, b\n", r"line 3, column 1: .* flow sequence at line 2, column 9",
                 id="syntax-error-names-the-line"),
    pytest.param("session: '{subject}_{site}'\n", r"line 1: session: placeholder \{site\}",
                 id="unknown-placeholder-in-template"),
    pytest.param("session: '{subject}_{modality}'\n", "needs the 'modality' map",
                 id="modality-placeholder-needs-the-map"),
    pytest.param("subject: a\nsubject: b\n", r"line 2: key 'subject' appears twice", id="duplicate-key"),
    pytest.param("# nothing\n", "empty", id="empty-document"),
    pytest.param("- a\n- b\n", r"line 1: \(document\)", id="non-mapping-document"),
])
def test_bad_document_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(ConventionError, match=message):
        load(text)


def test_wrong_types_and_values() -> None:
    with pytest.raises(ConventionError) as info:
        load("subject: '([a-z'\nfail-on: sometimes\nfields:\n  visit: 3\nseverity:\n  nope: off\n")
    text = str(info.value)
    assert "line 1: subject: not a valid regular expression" in text
    assert "line 2: fail-on: 'sometimes' is not one of error, warning, never" in text
    assert "line 4: fields.visit: must be a list of allowed values or a regular expression" in text
    assert "line 6: severity.nope" in text


def test_date_placeholder() -> None:
    c = load_convention("session: '{subject}_{date:%Y%m%d}'\n", "file", "x")
    assert c.dates == {"date": "%Y%m%d"}
    assert c.strict is not None
    assert c.strict.fullmatch("sub1_20240102")
    with pytest.raises(ConventionError, match="%H is not supported"):
        load("session: '{subject}_{date:%H}'\n")


def test_not_utf8() -> None:
    with pytest.raises(ConventionError, match="not UTF-8"):
        load(b"subject: '\xff'\n")
