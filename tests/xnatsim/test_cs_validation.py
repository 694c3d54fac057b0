"""XNAT's command validation (spec A.14) and create-time normalization (A.1-A.11)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from xnatsim.cs.model import normalize
from xnatsim.cs.validation import validate

GOOD: dict[str, Any] = {
    "name": "probe", "image": "repo/probe:1.0", "version": "1", "command-line": "run #IN#",
    "mounts": [{"name": "in", "path": "/input"}, {"name": "out", "path": "/output", "writable": True}],
    "inputs": [{"name": "in-value", "replacement-key": "#IN#"}],
    "outputs": [{"name": "report", "mount": "out"}],
    "xnat": [{
        "name": "w", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "provides-files-for-command-mount": "in"}],
        "derived-inputs": [{"name": "label", "type": "string", "derived-from-wrapper-input": "session",
                            "derived-from-xnat-object-property": "label", "provides-value-for-command-input": "in-value"}],
        "output-handlers": [{"name": "h", "accepts-command-output": "report", "as-a-child-of": "session",
                             "type": "Resource", "label": "OUT"}],
    }],
}


def errors_of(mutate: Any = None, **top: Any) -> list[str]:
    doc = copy.deepcopy(GOOD)
    doc.update(top)
    if mutate:
        mutate(doc)
    return validate(normalize(doc))


def test_good_command_is_valid() -> None:
    assert errors_of() == []


def test_reference_examples_match_their_recorded_verdicts(reference_dir: Path) -> None:
    folder = reference_dir / "command-json-examples"
    entries = json.loads((folder / "index.json").read_text())
    assert len(entries) >= 20
    for entry in entries:
        errors = validate(normalize(json.loads((folder / entry["file"]).read_text())))
        verdict = entry["emulated_validation"]
        if verdict.startswith("valid"):
            assert errors == [], entry["file"]
        elif verdict.startswith("needs image"):
            assert errors, entry["file"]
            assert all("image name cannot be blank" in e for e in errors), entry["file"]
            # ... and valid once the label route supplies the image
            doc = json.loads((folder / entry["file"]).read_text())
            assert validate(normalize(doc, image="repo/img:1")) == [], entry["file"]
        else:
            for message in verdict.removeprefix("INVALID: ").split("; "):
                assert message in errors, (entry["file"], message)


def test_create_defaults_and_coercion() -> None:
    doc = normalize({**GOOD, "image": "repo/probe", "override-entrypoint": "true",
                     "inputs": [{"name": "b", "type": "boolean", "default-value": False, "required": "true"},
                                {"name": "weird", "type": "File"}],
                     "mounts": [{"name": "in", "path": "/input", "writable": "false"},
                                {"name": "out", "path": "/output"}]})
    assert doc["image"] == "repo/probe:latest"  # a tag-less image gets :latest on create
    assert doc["override-entrypoint"] is True
    assert doc["inputs"][0]["default-value"] == "false"  # non-string defaults become strings
    assert doc["inputs"][0]["required"] is True
    assert doc["inputs"][0]["replacement-key"] == "#b#"
    assert doc["inputs"][1]["type"] == "string"  # unknown command-input types are stored as string
    assert doc["mounts"][0]["writable"] is False
    wrapper_input = doc["xnat"][0]["external-inputs"][0]
    assert wrapper_input["required"] is True  # wrapper inputs default to required
    assert doc["visibility"] == "public"
    assert doc["type"] == "docker"


def test_update_does_not_default_the_tag_nor_accept_legacy_keys() -> None:
    doc = copy.deepcopy(GOOD)
    doc["image"] = "repo/probe"
    handler = doc["xnat"][0]["output-handlers"][0]
    handler["as-a-child-of-wrapper-input"] = handler.pop("as-a-child-of")
    assert validate(normalize(doc)) == []  # create: :latest and the legacy key are fine
    errors = validate(normalize(doc, create=False))
    assert any("must include a version tag" in e for e in errors)
    assert any("as-a-child-of cannot be blank" in e for e in errors)


def _set(path: str, value: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        keys = path.split("/")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        if value is _DELETE:
            del target[last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


_DELETE = object()


def _both(*mutations: Any) -> Any:
    def mutate(doc: dict[str, Any]) -> None:
        for m in mutations:
            m(doc)
    return mutate


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (_set("name", " "), "Command name cannot be blank"),
        (_set("image", ""), "image name cannot be blank"),
        (_set("image", "host:5000/repo"), ""),  # :5000/repo is no tag, but create appends :latest
        (_set("type", "Docker"), "Cannot instantiate command of type"),
        (_set("visibility", "Public"), "visibility"),
        (_set("ulimits", {"nofile": "1:2:3"}), "ulimit"),
        (_set("secrets", [{"destination": {"identifier": "XNAT_PASS"}}]), "reserved"),
        (_set("mounts/1/name", "in"), "is not unique"),
        (_set("mounts/0/path", ""), "path cannot be blank"),
        (_set("inputs/0/name", "in value"), "name should contain only alphanumeric"),
        (_set("inputs/0/multiple-delimiter", "semicolon"), "multiple-delimiter"),
        (_set("inputs/0/type", "select-one"), "has no select-values"),
        (_set("inputs/0/select-values", ["a"]), "is not a select type"),
        (_set("outputs/0/mount", "nowhere"), "unknown mount"),
        (_set("outputs/0/name", "re.port"), "name should contain only alphanumeric"),
        (_set("xnat/0/external-inputs/0/type", "session"), "unknown type"),
        (_set("xnat/0/external-inputs/0/via-setup-command", "repo/setup:1"), ""),
        (_set("xnat/0/derived-inputs/0/derived-from-wrapper-input", "later"), "not an input declared before"),
        (_set("xnat/0/derived-inputs/0/derived-from-wrapper-input", "label"), "cannot be derived from itself"),
        (_set("xnat/0/derived-inputs/0/name", "session"), "is not unique"),
        (_both(_set("xnat/0/derived-inputs/0/multiple", True),
               _set("xnat/0/derived-inputs/0/provides-value-for-command-input", _DELETE)), "must provide a value"),
        (_set("xnat/0/output-handlers/0/label", _DELETE), "must have a label"),
        (_set("xnat/0/output-handlers/0/type", "resource"), "must be one of"),
        (_set("xnat/0/output-handlers/0/as-a-child-of", "label"), 'only "uri" can be an output parent'),
        (_set("xnat/0/output-handlers/0/as-a-child-of", "nobody"), "is not a wrapper input"),
        (_set("xnat/0/output-handlers/0/accepts-command-output", "other"), "is not a command output"),
        (_set("type", "docker-setup"), "cannot declare"),
    ],
)
def test_each_rule(mutate: Any, fragment: str) -> None:
    errors = errors_of(mutate)
    if fragment:
        assert any(fragment in e for e in errors), errors
    else:
        assert errors == []


def test_select_default_must_be_listed_and_select_cannot_be_fed() -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["inputs"][0].update({"type": "select-many", "select-values": ["a", "b"], "default-value": '["a", "c"]'})

    errors = errors_of(mutate)
    assert any('default value "c"' in e for e in errors)
    assert any("cannot provide a value for select" in e for e in errors)


def test_every_output_must_be_handled_in_every_wrapper() -> None:
    def mutate(doc: dict[str, Any]) -> None:
        second = copy.deepcopy(doc["xnat"][0])
        second["name"] = "w2"
        second["output-handlers"] = []
        doc["xnat"].append(second)

    assert any('wrapper "w2"' in e and "not handled" in e for e in errors_of(mutate))
