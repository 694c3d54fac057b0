"""XNAT's validation errors (spec A.14): one hand-made bad document per rule, XNAT's exact text.

Each case starts from ``bad_command_json/good.json`` (accepted, no warning) and breaks one thing.
Expected texts are copied from the plugin's ``Command.validate`` source, quirks included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from command_docs import Doc, derived, good, handler, keys, wrapper
from xnatnode.commandjson import validate_document, xnat_errors

CMD = 'Command "good" - '
WRAP = CMD + 'wrapper "good-project" - '
SELECT_NOTE = (
    "Note that command inputs with values provided by xnat inputs shouldn't be designated as "
    "select (they'll automatically render as a select if their xnat input resolves to more than "
    "one value)."
)
WRAPPER_TYPES = (
    "string, boolean, number, file, Directory, File[], File, Project, ProjectAsset, Subject, "
    "SubjectAssessor, Session, Scan, Assessor, Resource, Config"
)





def test_base_document_is_clean() -> None:
    report = validate_document(good())
    assert report.findings == []
    assert report.ok


def _patch(target: Doc, changes: dict[str, Any]) -> None:
    """Sets each key of ``changes`` (``_`` for ``-``) in ``target``; None removes the key (which must be there)."""
    for key, value in keys(changes).items():
        if value is None:
            target.pop(key)
        else:
            target[key] = value


def _set(**changes: Any) -> Callable[[Doc], None]:
    return lambda doc: _patch(doc, changes)


def _setup(doc: Doc) -> None:
    doc.update(
        type="docker-setup", ports={"8080": "8080"}, **{"environment-variables": {"A": "b"}}
    )


def _ulimit(value: str) -> Callable[[Doc], None]:
    return lambda doc: doc.update(ulimits={"nofile": value})


def _input(**fields: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        doc["inputs"].append(
            {"name": "mode", **keys(fields)}
        )
        doc["command-line"] += " #mode#"

    return apply


def _select_fed(doc: Doc) -> None:
    doc["inputs"][0].update({"type": "select-one", "select-values": ["P1", "P2"]})


def _derived_from(parent: str | None) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        if parent is None:
            del derived(doc)["derived-from-wrapper-input"]
        else:
            derived(doc)["derived-from-wrapper-input"] = parent

    return apply


def _derived_from_later(doc: Doc) -> None:
    derived(doc)["derived-from-wrapper-input"] = "project-label"
    wrapper(doc)["derived-inputs"].append(
        {"name": "project-label", "derived-from-wrapper-input": "project",
         "derived-from-xnat-object-property": "label"}
    )  # fmt: skip


def _multiple(**fields: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        derived(doc)["multiple"] = True
        _patch(derived(doc), fields)

    return apply


def _handler(**fields: Any) -> Callable[[Doc], None]:
    return lambda doc: _patch(handler(doc), fields)


def _second_handler(**fields: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        extra = {"name": "more", "accepts-command-output": "report", "as-a-child-of": "project",
                 "label": "MORE"}  # fmt: skip
        extra.update(keys(fields))
        wrapper(doc)["output-handlers"].append(extra)

    return apply


def _parent_is_multiple(doc: Doc) -> None:
    _multiple()(doc)
    handler(doc)["as-a-child-of"] = "project-id"


CASES: list[tuple[str, Callable[[Doc], None], str, str]] = [
    # 1. command name
    ("name-blank", _set(name="  "), "E-COMMAND-NAME-BLANK", "Command name cannot be blank."),
    # 2. image
    ("image-missing", _set(image=None), "E-IMAGE-BLANK", CMD + "image name cannot be blank."),
    # 3. type
    ("type-unknown", _set(type="Docker"), "E-TYPE-UNKNOWN",
     CMD + 'Cannot validate command of type "Docker". Known types: docker, docker-setup, '
     "docker-wrapup"),
    ("type-empty", _set(type=""), "E-TYPE-UNKNOWN",
     CMD + 'Cannot validate command of type "". Known types: docker, docker-setup, docker-wrapup'),
    # 5. setup/wrapup commands may not declare things (note XNAT's double space)
    ("setup-mounts", _setup, "E-SPECIAL-DECLARES", CMD + " Setup commands cannot declare any mounts."),
    ("setup-inputs", _setup, "E-SPECIAL-DECLARES", CMD + " Setup commands cannot declare any inputs."),
    ("setup-outputs", _setup, "E-SPECIAL-DECLARES", CMD + " Setup commands cannot declare any outputs."),
    ("setup-wrappers", _setup, "E-SPECIAL-DECLARES", CMD + " Setup commands cannot declare any wrappers."),
    ("setup-env", _setup, "E-SPECIAL-DECLARES",
     CMD + " Setup commands cannot declare any environment variables."),
    ("setup-ports", _setup, "E-SPECIAL-DECLARES", CMD + " Setup commands cannot declare any ports."),
    ("wrapup-mounts", _set(type="docker-wrapup"), "E-SPECIAL-DECLARES",
     CMD + " Wrapup commands cannot declare any mounts."),
    # 6. ulimits
    ("ulimit-empty", _ulimit(""), "E-ULIMIT-FORMAT",
     CMD + ' incorrect ulimit format: . Should be "name" : "softlimit:hardlimit" or "name" : "limit"'),
    ("ulimit-two-colons", _ulimit("1:2:3"), "E-ULIMIT-FORMAT",
     CMD + ' incorrect ulimit format: 1:2:3. Should be "name" : "softlimit:hardlimit" or "name" : '
     '"limit"'),
    # 8. mounts
    ("mount-name-blank", lambda d: d["mounts"][0].update(name=""), "E-MOUNT-NAME-BLANK",
     CMD + "Mount name cannot be blank."),
    ("mount-path-blank", lambda d: d["mounts"][0].pop("path"), "E-MOUNT-PATH-BLANK",
     CMD + 'Mount "in" path cannot be blank.'),
    ("mount-duplicate", lambda d: d["mounts"].append({"name": "out", "path": "/o"}),
     "E-MOUNT-NAME-DUPLICATE", CMD + 'mount name "out" is not unique.'),
    # 9. command inputs (note: no final period on the blank-name text)
    ("input-name-blank", lambda d: d["inputs"][1].update(name=""), "E-INPUT-NAME-BLANK",
     CMD + "Command input name cannot be blank"),
    ("input-name-chars", lambda d: d["inputs"][1].update(name="be verbose"), "E-INPUT-NAME-CHARS",
     CMD + 'Command input "be verbose" name should contain only alphanumeric, _ and - characters.'),
    ("input-delimiter", _input(multiple_delimiter="tab"), "E-INPUT-DELIMITER",
     CMD + 'Invalid multiple-delimiter "tab", choose from: quoted-space, space, comma, flag'),
    ("input-select-no-values", _input(type="select-one"), "E-INPUT-SELECT-NO-VALUES",
     CMD + 'Command input "mode" is designated as type "select-one" but doesn\'t list '
     "select-values. " + SELECT_NOTE),
    ("input-values-not-select", _input(select_values=["a"]), "E-INPUT-SELECT-VALUES-NOT-SELECT",
     CMD + 'Command input "mode" has select-values set, but is not a select type.'),
    ("input-default-not-in-select", _input(type="select-one", select_values=["a", "b"],
                                           default_value="c"),
     "E-INPUT-DEFAULT-NOT-IN-SELECT",
     CMD + 'Command input "mode" default value "c" is not one of the select-values "[a, b]"'),
    ("input-defaults-not-in-select-many",
     _input(type="select-many", select_values=["a", "b"], default_value='["a", "c"]'),
     "E-INPUT-DEFAULT-NOT-IN-SELECT",
     CMD + 'Command input "mode" one or more default values in "[a, c]" is not in the list of '
     'select-values "[a, b]"'),
    ("input-duplicate", lambda d: d["inputs"].append({"name": "project"}), "E-INPUT-NAME-DUPLICATE",
     CMD + 'input name "project" is not unique.'),
    # 10. outputs
    ("output-name-blank", lambda d: d["outputs"][0].update(name=""), "E-OUTPUT-NAME-BLANK",
     CMD + "Output name cannot be blank."),
    ("output-mount-blank", lambda d: d["outputs"][0].pop("mount"), "E-OUTPUT-MOUNT-BLANK",
     CMD + 'Output "report" - mount cannot be blank.'),
    ("output-name-chars", lambda d: d["outputs"][0].update(name="the.report"), "E-OUTPUT-NAME-CHARS",
     CMD + 'Command output "the.report" name should contain only alphanumeric, _ and - characters.'),
    ("output-duplicate", lambda d: d["outputs"].append({"name": "report", "mount": "out"}),
     "E-OUTPUT-NAME-DUPLICATE", CMD + 'output name "report" is not unique.'),
    ("output-mount-unknown", lambda d: d["outputs"][0].update(mount="nope"), "E-OUTPUT-MOUNT-UNKNOWN",
     CMD + 'output "report" references unknown mount "nope". Known mounts: in, out'),
    ("output-mount-null", lambda d: d["outputs"][0].pop("mount"), "E-OUTPUT-MOUNT-UNKNOWN",
     CMD + 'output "report" references unknown mount "null". Known mounts: in, out'),
    # 11. wrappers
    ("wrapper-name-blank", lambda d: wrapper(d).pop("name"), "E-WRAPPER-NAME-BLANK",
     CMD + "Command wrapper name cannot be blank."),
    ("wrapper-duplicate", lambda d: d["xnat"].append(good()["xnat"][0]), "E-WRAPPER-NAME-DUPLICATE",
     CMD + 'wrapper name "good-project" is not unique.'),
    # 12. wrapper inputs
    ("winput-name-blank", lambda d: wrapper(d)["external-inputs"][0].update(name=" "),
     "E-WRAPPER-INPUT-NAME-BLANK", WRAP + "Command wrapper input name cannot be blank."),
    ("winput-type", lambda d: wrapper(d)["external-inputs"][0].update(type="project"),
     "E-WRAPPER-INPUT-TYPE",
     WRAP + f'Command wrapper input "project" - Unknown type "project". Known types: {WRAPPER_TYPES}'),
    ("winput-type-empty", lambda d: derived(d).update(type=""), "E-WRAPPER-INPUT-TYPE",
     WRAP + f'Command wrapper input "project-id" - Unknown type "". Known types: {WRAPPER_TYPES}'),
    ("winput-via-setup", lambda d: derived(d).update({"via-setup-command": "xnat/setup:1.0"}),
     "E-WRAPPER-INPUT-VIA-SETUP",
     WRAP + 'Command wrapper input "project-id" - "via-setup-command": "xnat/setup:1.0" - You '
     'cannot set "via-setup-command" on an input that does not provide files for a command mount.'),
    ("winput-name-chars", lambda d: derived(d).update(name="project id"),
     "E-WRAPPER-INPUT-NAME-CHARS",
     WRAP + 'Command wrapper input "project id" name should contain only alphanumeric, _ and - '
     "characters."),
    ("winput-duplicate", lambda d: derived(d).update(name="project"), "E-WRAPPER-INPUT-NAME-DUPLICATE",
     WRAP + 'derived input name "project" is not unique.'),
    ("winput-duplicate-external",
     lambda d: wrapper(d)["external-inputs"].append({"name": "project", "type": "Project"}),
     "E-WRAPPER-INPUT-NAME-DUPLICATE", WRAP + 'external input name "project" is not unique.'),
    # 13. wrapper input feeding a select
    ("winput-feeds-select", _select_fed, "E-WRAPPER-INPUT-FEEDS-SELECT",
     WRAP + 'derived input "project-id" provides values for command input "project", which is a '
     "select type. " + SELECT_NOTE),
    # 14. derived inputs
    ("derived-from-blank", _derived_from(None), "E-DERIVED-FROM-BLANK",
     WRAP + 'Command wrapper input "project-id" - property "derived-from-wrapper-input" cannot be '
     "blank."),
    ("derived-from-null-unknown", _derived_from(None), "E-DERIVED-FROM-UNKNOWN",
     WRAP + 'derived input "project-id" is derived from an unknown XNAT input "null". Known '
     "inputs: project-id, project"),
    ("derived-from-self", _derived_from("project-id"), "E-DERIVED-FROM-SELF",
     WRAP + 'derived input "project-id" is derived from itself.'),
    ("derived-from-later", _derived_from_later, "E-DERIVED-FROM-UNKNOWN",
     WRAP + 'derived input "project-id" is derived from an unknown XNAT input "project-label". '
     "Known inputs: project-id, project"),
    ("derived-multiple-files", _multiple(provides_files_for_command_mount="in"),
     "E-DERIVED-MULTIPLE-FILES",
     WRAP + 'derived input "project-id" is designated as a "multiple" input, which means it cannot '
     "provide files for command mounts (consider mounting the parent element)."),
    ("derived-multiple-no-value", _multiple(provides_value_for_command_input=None),
     "E-DERIVED-MULTIPLE-NO-VALUE",
     WRAP + 'derived input "project-id" is designated as a "multiple" input, whichmeans it must '
     "directly provide values for some command input."),
    # 15. output handlers
    ("handler-name-blank", _handler(name=""), "E-HANDLER-NAME-BLANK",
     WRAP + "Command wrapper output - name cannot be blank."),
    ("handler-output-blank", _handler(accepts_command_output=None), "E-HANDLER-OUTPUT-BLANK",
     WRAP + 'Command wrapper output "report-resource" - property "accepts-command-output" cannot be '
     "blank."),
    ("handler-output-unknown", _handler(accepts_command_output="reprot"), "E-HANDLER-OUTPUT-UNKNOWN",
     WRAP + 'output handler refers to unknown command output "reprot". Known outputs: report.'),
    ("handler-parent-blank", _handler(as_a_child_of=None), "E-HANDLER-PARENT-BLANK",
     WRAP + 'Command wrapper output "report-resource" - property "as-a-child-of" cannot be blank.'),
    ("handler-parent-unknown", _handler(as_a_child_of="session"), "E-HANDLER-PARENT-UNKNOWN",
     WRAP + 'output handler does not refer to a known wrapper input or output. "as-a-child-of": '
     '"session".\nKnown inputs: project-id, project.\nKnown outputs (so far): .'),
    ("handler-parent-later-handler", _handler(as_a_child_of="more"), "E-HANDLER-PARENT-UNKNOWN",
     WRAP + 'output handler does not refer to a known wrapper input or output. "as-a-child-of": '
     '"more".\nKnown inputs: project-id, project.\nKnown outputs (so far): .'),
    ("handler-type", _handler(type="resource"), "E-HANDLER-TYPE",
     WRAP + 'Command wrapper output "report-resource" - Unknown type "resource". Known types: '
     "Resource, Assessor, Scan"),
    ("handler-type-empty", _handler(type=""), "E-HANDLER-TYPE",
     WRAP + 'Command wrapper output "report-resource" - Unknown type "". Known types: '
     "Resource, Assessor, Scan"),
    ("handler-label-blank", _handler(label=None), "E-HANDLER-LABEL-BLANK",
     WRAP + 'Command wrapper output "report-resource" - when type = Resource, label cannot be blank.'),
    ("handler-name-chars", _handler(name="report resource"), "E-HANDLER-NAME-CHARS",
     WRAP + 'Command wrapper output "report resource" name should contain only alphanumeric, _ and '
     "- characters."),
    ("handler-duplicate", _second_handler(name="report-resource"), "E-HANDLER-NAME-DUPLICATE",
     WRAP + 'output handler name "report-resource" is not unique.'),
    ("handler-parent-multiple", _parent_is_multiple, "E-HANDLER-PARENT-MULTIPLE",
     WRAP + 'output handler "report-resource" has "as-a-child-of": "project-id", but that input is '
     "set to allow multiple values."),
    ("handler-parent-property", _handler(as_a_child_of="project-id"), "E-HANDLER-PARENT-PROPERTY",
     WRAP + 'output handler "report-resource" has "as-a-child-of": "project-id", but that input\'s '
     'value is set to "id", which will cause the upload to fail (a "uri" is required for upload).'),
    # 16. outputs not handled in a wrapper
    ("output-unhandled", lambda d: wrapper(d).pop("output-handlers"), "E-OUTPUT-UNHANDLED",
     WRAP + 'command output "report" is not handled by any output handler.'),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "code", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_xnat_error(mutate: Callable[[Doc], None], code: str, message: str) -> None:
    doc = good()
    mutate(doc)
    report = validate_document(doc)
    found = [(f.code, f.message) for f in report.errors]
    assert (code, message) in found, "\n".join(m for _, m in found)
    assert not report.ok
    assert all(f.source == "xnat" for f in report.errors if f.code == code)


def test_every_xnat_error_code_has_a_case() -> None:
    """The table above covers every error code the validator can emit from XNAT's own rules."""
    source = Path(str(xnat_errors.__file__)).read_text()
    emitted = set(re.findall(r'"(E-[A-Z-]+)"', source))
    elsewhere = {"E-IMAGE-NO-TAG", "E-VISIBILITY", "E-SECRET-RESERVED", "E-SECRET-ENV-CLASH"}
    assert emitted - elsewhere - {code for _, _, code, _ in CASES} == set()


def test_image_without_tag_is_defaulted_on_create_but_rejected_on_update() -> None:
    doc = good()
    doc["image"] = "registry.example.org:5000/good"
    assert validate_document(doc).ok  # create: ":latest" appended
    update = validate_document(doc, route="update")
    assert [f.message for f in update.errors] == [
        CMD + "image name must include version tag. e.g. image_name:tag"
    ]
    doc["image"] = "good@sha256:" + "0" * 64
    assert validate_document(doc, route="update").ok  # a digest counts as a tag


def test_blank_but_non_empty_image_passes_create_like_xnat() -> None:
    doc = good()
    doc["image"] = "   "  # XNAT appends ":latest" before checking, so "   :latest" passes
    assert validate_document(doc).ok


def test_label_route_takes_the_image_from_the_pull() -> None:
    doc = good()
    del doc["image"]
    assert [f.code for f in validate_document(doc).errors] == ["E-IMAGE-BLANK"]
    assert validate_document([doc]).ok
    pulled = validate_document([doc], image="xnatnode/good:2.0")
    assert pulled.ok
    assert pulled.codes() == []
    untagged = validate_document([doc], image="xnatnode/good")
    assert untagged.codes() == ["W-IMAGE-NO-TAG"]


def test_post_image_parameter_overrides_the_document() -> None:
    doc = good()
    doc["image"] = "xnatnode/good"
    assert validate_document(doc, image="xnatnode/good:1.0").codes() == []
    doc["image"] = "x:1"
    assert validate_document(doc, route="update", image="y").ok  # update has no ?image=


@pytest.mark.parametrize("value", ["1024", "1024:2048", "1:2:", "unlimited"])
def test_ulimit_values_xnat_accepts(value: str) -> None:
    doc = good()
    doc["ulimits"] = {"nofile": value}
    assert validate_document(doc).ok


def test_select_many_default_subset_is_accepted() -> None:
    doc = good()
    _input(type="select-many", select_values=["a", "b"], default_value='["b"]')(doc)
    assert validate_document(doc).ok


def test_update_ignores_the_legacy_parent_key() -> None:
    doc = good()
    handler(doc)["as-a-child-of-wrapper-input"] = handler(doc).pop("as-a-child-of")
    assert validate_document(doc).ok
    messages = [f.message for f in validate_document(doc, route="update").errors]
    assert (
        WRAP
        + 'Command wrapper output "report-resource" - property "as-a-child-of" cannot be blank.'
    ) in messages


def test_errors_come_in_xnat_order() -> None:
    doc = good()
    doc["name"] = "bad"
    doc["mounts"].append({"name": "out"})
    doc["outputs"][0]["mount"] = "nope"
    wrapper(doc)["name"] = ""
    handler(doc)["label"] = ""
    head = 'Command "bad" - '
    assert [f.message for f in validate_document(doc).errors] == [
        head + 'mount name "out" is not unique.',
        head + 'Mount "out" path cannot be blank.',
        head + 'output "report" references unknown mount "nope". Known mounts: in, out',
        head
        + 'wrapper "" - Command wrapper output "report-resource" - when type = Resource, label '
        "cannot be blank.",
        head + "Command wrapper name cannot be blank.",
    ]


def test_visibility_and_secrets_rules() -> None:
    doc = good()
    doc["visibility"] = "Public"
    doc["environment-variables"] = {"MYAPP_TOKEN": "x"}
    doc["secrets"] = [
        {"source": {"type": "system-property", "identifier": "a"},
         "destination": {"type": "environment-variable", "identifier": "XNAT_PASS"}},
        {"source": {"type": "system-property", "identifier": "b"},
         "destination": {"type": "environment-variable", "identifier": "MYAPP_TOKEN"}},
    ]  # fmt: skip
    report = validate_document(doc)
    assert [f.code for f in report.errors] == [
        "E-VISIBILITY",
        "E-SECRET-RESERVED",
        "E-SECRET-ENV-CLASH",
    ]
    assert {f.source for f in report.errors} == {"xnat-unverified"}
    doc["visibility"] = "protected"
    doc["secrets"] = doc["secrets"][:1]
    doc["secrets"][0]["destination"]["identifier"] = "MYAPP_API_TOKEN"
    assert validate_document(doc).ok


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(mounts="in"), 'XNAT cannot read "mounts": expected an array of objects'),
        (lambda d: d["inputs"][0].pop("name"), "A command input has no \"name\""),
        (lambda d: derived(d).pop("name"), "A derived wrapper input has no \"name\""),
        (lambda d: d["mounts"][0].update(writable="no"), 'XNAT cannot read "writable"'),
        (lambda d: d.update(name={"x": 1}), 'XNAT cannot read "name": expected a string'),
        (lambda d: d.update({"reserve-memory": "lots"}), 'XNAT cannot read "reserve-memory"'),
        (lambda d: d.update({"environment-variables": {"A": None}}), "environment-variables"),
        (lambda d: d["outputs"][0].pop("name"), 'An output has no "name"'),
        (lambda d: handler(d).pop("name"), 'An output handler has no "name"'),
        (lambda d: d.update(secrets=[{"source": {"type": "vault"}, "destination": {}}]),
         'secret source type "vault"'),
    ],
)  # fmt: skip
def test_documents_xnat_cannot_read(mutate: Callable[[Doc], None], needle: str) -> None:
    doc = good()
    mutate(doc)
    report = validate_document(doc)
    assert [f.code for f in report.errors] == ["E-PARSE"] * len(report.errors)
    assert any(needle in f.message for f in report.errors), report.errors


def test_a_single_object_is_not_a_label() -> None:
    report = validate_document(good(), route="label")
    assert [f.code for f in report.errors] == ["E-LABEL-NOT-ARRAY"]


@pytest.mark.parametrize("doc", [None, 3, "text", [1]])
def test_non_objects_are_reported_not_raised(doc: object) -> None:
    report = validate_document(doc)
    assert [f.code for f in report.errors] == ["E-PARSE"]


def test_missing_command_name_prints_null_like_java() -> None:
    doc = good()
    del doc["name"]
    doc["type"] = "dockerr"
    assert [f.message for f in validate_document(doc).errors] == [
        "Command name cannot be blank.",
        'Command "null" - Cannot validate command of type "dockerr". Known types: docker, '
        "docker-setup, docker-wrapup",
    ]


def test_unhandled_outputs_follow_java_hash_order() -> None:
    doc = good()
    for name in ("summary-json", "tables", "charts"):
        doc["outputs"].append({"name": name, "mount": "out", "required": True})
    messages = [f.message for f in validate_document(doc).errors]
    # A JVM iterates this java.util.HashSet as [tables, charts, summary-json].
    assert messages == [
        WRAP + f'command output "{name}" is not handled by any output handler.'
        for name in ("tables", "charts", "summary-json")
    ]
