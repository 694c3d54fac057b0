"""Warnings: one hand-made document per trap; each must raise exactly the expected codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from command_docs import GOOD, Doc, derived, external, good, handler, keys, wrapper
from xnatnode.commandjson import reader, traps, validate, validate_document, validate_text


def _add_input(**fields: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        doc["inputs"].append(
            {"name": "extra", **keys(fields)}
        )
        doc["command-line"] += " '#extra#'"  # quoted: a user-settable value

    return apply


def _substring_keys(doc: Doc) -> None:
    doc["inputs"][0]["replacement-key"] = "SCAN"
    doc["inputs"].append({"name": "scan-id", "replacement-key": "SCAN_ID"})
    doc["command-line"] = "good --project SCAN --id SCAN_ID [VERBOSE]"


def _key_in_path(doc: Doc) -> None:
    doc["inputs"].append({"name": "where", "replacement-key": "input"})
    doc["command-line"] += " --where input"


def _two_external(doc: Doc) -> None:
    wrapper(doc)["external-inputs"].append({"name": "other", "type": "Project"})


def _same_mount(doc: Doc) -> None:
    wrapper(doc)["derived-inputs"].append(
        {"name": "resource", "type": "Resource", "derived-from-wrapper-input": "project",
         "matcher": "@.label == 'DATA'", "provides-files-for-command-mount": "in"}
    )  # fmt: skip


def _derived(**fields: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        item = {"name": "more", "derived-from-wrapper-input": "project"}
        item.update(keys(fields))
        wrapper(doc)["derived-inputs"].append(item)

    return apply


def _chain(doc: Doc) -> None:
    wrapper(doc)["output-handlers"].append(
        {"name": "child", "accepts-command-output": "report", "as-a-child-of": "report-resource",
         "label": "CHILD"}
    )  # fmt: skip


def _output_on_input_mount(doc: Doc) -> None:
    doc["outputs"][0]["mount"] = "in"


def _output_on_writable_input_mount(doc: Doc) -> None:
    doc["outputs"][0]["mount"] = "in"
    doc["mounts"][0]["writable"] = True


def _no_wrapper(doc: Doc) -> None:
    doc["xnat"] = []


def _second_wrapper_sets_project(doc: Doc) -> None:
    """A second wrapper that does not fill "project": there the user types its value."""
    second = json.loads(json.dumps(wrapper(doc)))
    second["name"] = "other"
    second["derived-inputs"] = []
    doc["xnat"].append(second)


def _quoted_settable_project(doc: Doc) -> None:
    derived(doc).pop("user-settable")
    doc["command-line"] = doc["command-line"].replace("#PROJECT#", "'#PROJECT#'")


def _setup_override(doc: Doc) -> None:
    for key in ("mounts", "inputs", "outputs", "xnat"):
        doc.pop(key)
    doc.update({"type": "docker-setup", "override-entrypoint": True, "command-line": "stage"})


CASES: list[tuple[str, Callable[[Doc], None], set[str]]] = [
    ("unknown-key", lambda d: d.update(workdir="/app"), {"W-UNKNOWN-KEY"}),
    ("unknown-nested-key", lambda d: d["mounts"][0].update(readonly=True), {"W-UNKNOWN-KEY"}),
    ("coerced-scalar", lambda d: d["mounts"][0].update(writable="false"), {"W-COERCED-SCALAR"}),
    ("empty-contexts", lambda d: wrapper(d).update(contexts=[]), {"W-EMPTY-CONTEXTS"}),
    ("wrapper-no-description", lambda d: wrapper(d).pop("description"), {"W-WRAPPER-NO-DESCRIPTION"}),
    ("env-injected-name", lambda d: d.update({"environment-variables": {"XNAT_HOST": "x"}}),
     {"W-ENV-INJECTED-NAME"}),
    ("xnat-pass-on-line", lambda d: d.update({"command-line": d["command-line"] + " XNAT_PASS"}),
     {"W-XNAT-PASS-ON-COMMAND-LINE"}),
    ("xnat-pass-shell", lambda d: d.update({"command-line": d["command-line"] + " -p $XNAT_PASS",
                                            "override-entrypoint": True}),
     {"W-XNAT-PASS-ON-COMMAND-LINE", "W-SHELL-FORM"}),
    ("shell-form", lambda d: d.update({"override-entrypoint": True}), {"W-SHELL-FORM"}),
    # issue 8 item 1: a launch value that splits into extra flags, shell syntax taken literally
    ("unquoted-launch-value", lambda d: derived(d).pop("user-settable"),
     {"W-UNQUOTED-LAUNCH-VALUE"}),
    ("unquoted-in-one-wrapper", _second_wrapper_sets_project, {"W-UNQUOTED-LAUNCH-VALUE"}),
    ("quoted-launch-value", _quoted_settable_project, set()),
    ("shell-syntax-in-exec-form", lambda d: d.update(
        {"command-line": d["command-line"] + " && rm -rf /tmp/x; echo $(id) `id`"}),
     {"W-SHELL-SYNTAX-IN-EXEC-FORM"}),
    ("shell-syntax-in-shell-form", lambda d: d.update(
        {"command-line": d["command-line"] + " && echo done", "override-entrypoint": True}),
     {"W-SHELL-FORM"}),
    ("shell-var-in-exec-form", lambda d: d.update({"command-line": d["command-line"] + " $HOME"}),
     {"W-SHELL-VAR-NOT-EXPANDED"}),
    ("override-on-setup", _setup_override, {"W-OVERRIDE-ENTRYPOINT-IGNORED"}),
    ("no-command-line", lambda d: d.pop("command-line"), {"W-NO-COMMAND-LINE", "W-INPUT-UNUSED"}),
    ("wrapper-key-on-line", lambda d: d.update({"command-line": d["command-line"] + " #project-id#"}),
     {"W-UNRESOLVED-KEY-ON-COMMAND-LINE"}),
    ("unknown-key-on-line", lambda d: d.update({"command-line": d["command-line"] + " #session#"}),
     {"W-UNRESOLVED-KEY-ON-COMMAND-LINE"}),
    ("key-substring-of-key", _substring_keys,
     {"W-REPLACEMENT-KEY-SUBSTRING", "W-REPLACEMENT-KEY-IN-TEXT", "W-UNQUOTED-LAUNCH-VALUE"}),
    ("key-in-literal-path", _key_in_path, {"W-REPLACEMENT-KEY-IN-TEXT", "W-UNQUOTED-LAUNCH-VALUE"}),
    ("input-type-unknown", _add_input(type="integer"), {"W-INPUT-TYPE-UNKNOWN"}),
    ("input-unused", lambda d: d["inputs"].append({"name": "spare"}), {"W-INPUT-UNUSED"}),
    ("select-many-no-default", _add_input(type="select-many", select_values=["a"]),
     {"W-SELECT-MANY-NO-DEFAULT"}),
    ("illegal-default", _add_input(default_value="a;b"), {"W-ILLEGAL-STRING-IN-DEFAULT"}),
    ("illegal-wrapper-default", lambda d: external(d).update({"default-value": "f(x)"}),
     {"W-ILLEGAL-STRING-IN-DEFAULT"}),
    ("caret-pair", _add_input(default_value="^a.*b^"), {"W-CARET-PAIR"}),
    ("extra-external-inputs", _two_external, {"W-EXTRA-EXTERNAL-INPUTS"}),
    ("same-command-input-twice", lambda d: external(d).update(
        {"provides-value-for-command-input": "project"}), {"W-SAME-COMMAND-INPUT-TWICE"}),
    ("same-mount-twice", _same_mount, {"W-SAME-MOUNT-TWICE"}),
    ("setup-ref-registry-port", lambda d: external(d).update(
        {"via-setup-command": "registry.example.org:5000/stage:1.0"}),
     {"W-SPECIAL-REF-REGISTRY-PORT"}),
    ("wrapup-ref-registry-port", lambda d: handler(d).update(
        {"via-wrapup-command": "host:5000/tidy:1.0:tidy"}), {"W-SPECIAL-REF-REGISTRY-PORT"}),
    ("legacy-parent-key", lambda d: handler(d).update(
        {"as-a-child-of-wrapper-input": handler(d).pop("as-a-child-of")}), {"W-LEGACY-PARENT-KEY"}),
    ("handler-chain", _chain, {"W-HANDLER-CHAIN"}),
    ("provides-value-unknown", lambda d: derived(d).update(
        {"provides-value-for-command-input": "projekt"}),
     {"W-PROVIDES-VALUE-UNKNOWN", "W-UNQUOTED-LAUNCH-VALUE"}),
    ("provides-files-unknown", lambda d: external(d).update(
        {"provides-files-for-command-mount": "inn"}), {"W-PROVIDES-FILES-UNKNOWN"}),
    ("files-from-subject", lambda d: external(d).update(type="Subject"),
     {"W-FILES-FROM-NON-FILE-TYPE"}),
    ("derived-never-resolves", _derived(type="boolean"), {"W-DERIVED-NEVER-RESOLVES"}),
    ("derived-string-no-property", _derived(type="string"), {"W-DERIVED-STRING-NO-PROPERTY"}),
    ("derivation-impossible", _derived(type="Scan"), {"W-DERIVATION-IMPOSSIBLE"}),
    ("output-path-absolute", lambda d: d["outputs"][0].update(path="/output/report"),
     {"W-OUTPUT-PATH"}),
    ("output-path-dotdot", lambda d: d["outputs"][0].update(path="../report"), {"W-OUTPUT-PATH"}),
    ("output-glob", lambda d: d["outputs"][0].update(glob="*.json"), {"W-OUTPUT-GLOB-IGNORED"}),
    ("output-on-read-only-mount", _output_on_input_mount, {"W-OUTPUT-ON-READ-ONLY-MOUNT"}),
    ("output-on-input-mount", _output_on_writable_input_mount, {"W-OUTPUT-ON-INPUT-MOUNT"}),
    ("output-optional", lambda d: d["outputs"][0].pop("required"), {"W-OUTPUT-OPTIONAL"}),
    ("derived-no-matcher", _derived(type="Resource"), {"W-DERIVED-NO-MATCHER"}),
    ("derived-with-matcher", _derived(type="Resource", matcher="@.label == 'DICOM'"), set()),
    ("derived-upward", _derived(type="Project"), {"W-DERIVATION-IMPOSSIBLE"}),
    ("caret-in-env", lambda d: d.update({"environment-variables": {"RE": "^a^"}}),
     {"W-CARET-PAIR"}),
    ("output-no-handler", _no_wrapper,
     {"W-NO-WRAPPER", "W-OUTPUT-NO-HANDLER", "W-UNQUOTED-LAUNCH-VALUE"}),
    ("image-no-tag", lambda d: d.update(image="xnatnode/good"), {"W-IMAGE-NO-TAG"}),
    ("image-latest", lambda d: d.update(image="xnatnode/good:latest"), {"W-IMAGE-LATEST"}),
    ("no-reserve-memory", lambda d: d.pop("reserve-memory"), {"W-NO-RESERVE-MEMORY"}),
    ("no-limit-memory", lambda d: d.pop("limit-memory"), {"W-NO-LIMIT-MEMORY"}),
    ("reserve-above-limit", lambda d: d.update({"reserve-memory": 4096}),
     {"W-MEMORY-RESERVE-ABOVE-LIMIT"}),
    ("constant-container-name", lambda d: d.update({"container-name": "good"}),
     {"W-CONSTANT-CONTAINER-NAME"}),
    ("gpus", lambda d: d.update(gpus="all"), {"W-GPUS-IGNORED"}),
    ("ipc-mode-on-create", lambda d: d.update({"ipc-mode": "host"}), {"W-IPC-MODE-IGNORED"}),
    ("docker-only", lambda d: d.update(runtime="nvidia"), {"W-DOCKER-ONLY-SETTING"}),
    ("generic-resources", lambda d: d.update({"generic-resources": {"gpu": "1"}}),
     {"W-GENERIC-RESOURCES-NOT-DOCKER"}),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "codes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_warning(mutate: Callable[[Doc], None], codes: set[str]) -> None:
    doc = good()
    mutate(doc)
    report = validate_document(doc)
    assert report.ok, report.errors
    assert {f.code for f in report.warnings} == codes, [f.message for f in report.warnings]
    assert all(f.source == "xnatnode" and f.message for f in report.warnings)


def test_ipc_mode_is_honoured_on_update() -> None:
    doc = good()
    doc["ipc-mode"] = "host"
    codes = validate_document(doc, route="update").codes()
    assert "W-IPC-MODE-IGNORED" not in codes
    assert "W-DOCKER-ONLY-SETTING" in codes


def test_label_warnings() -> None:
    assert validate_document([]).codes() == ["W-EMPTY-LABEL"]
    twice = validate_document([good(), good()])
    assert twice.codes() == ["W-DUPLICATE-COMMAND"]
    assert twice.warnings[0].location == "/1"
    no_image = good()
    del no_image["image"]
    assert validate_document([no_image]).codes() == ["W-IMAGE-MISSING"]


def test_duplicate_json_key() -> None:
    text = GOOD.read_text().replace('"name": "good",', '"name": "good", "name": "good",', 1)
    assert validate_text(text).codes() == ["W-DUPLICATE-JSON-KEY"]


def test_locations_point_into_label_arrays() -> None:
    doc = good()
    wrapper(doc)["contexts"] = []
    report = validate_document([good(), doc])
    assert [(f.code, f.location) for f in report.findings] == [
        ("W-EMPTY-CONTEXTS", "/1/xnat/0/contexts"),
        ("W-DUPLICATE-COMMAND", "/1"),
    ]


def test_every_warning_code_has_a_case() -> None:
    sources = "".join(Path(str(m.__file__)).read_text() for m in (reader, traps, validate))
    emitted = set(re.findall(r'"(W-[A-Z-]+)"', sources))
    covered = set().union(*(codes for _, _, codes in CASES))
    covered |= {"W-EMPTY-LABEL", "W-DUPLICATE-COMMAND", "W-IMAGE-MISSING", "W-DUPLICATE-JSON-KEY"}
    assert emitted - covered == set()
