"""Every real command file in ../shared/reference/command-json-examples gets its recorded verdict."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from xnatnode.commandjson import validate_document, validate_file

_INDEX = Path(__file__).resolve().parents[3] / "shared/reference/command-json-examples/index.json"
ENTRIES: list[Any] = (
    [pytest.param(e, id=e["file"]) for e in json.loads(_INDEX.read_text())]
    if _INDEX.is_file()
    else [pytest.param(None, marks=pytest.mark.skip(reason="../shared is absent"))]
)

#: How the index words its warnings -> the code we emit (and, when known, where).
_WARNING_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"unknown top-level key '(?P<key>[^']+)'"), "W-UNKNOWN-KEY"),
    (re.compile(r"wrapper (?P<wrapper>\S+) has no contexts"), "W-EMPTY-CONTEXTS"),
]


@pytest.mark.parametrize("entry", ENTRIES)
def test_recorded_verdict(entry: dict[str, Any], reference_dir: Path) -> None:
    path = reference_dir / "command-json-examples" / entry["file"]
    verdict: str = entry["emulated_validation"]
    post = validate_file(path, route="post")
    label = validate_document([json.loads(path.read_text())])  # as an image label carries it
    errors = [f.message for f in post.errors]
    if verdict.startswith("valid"):
        assert post.ok, errors
        assert label.ok
    elif verdict.startswith("needs image"):
        assert [f.code for f in post.errors] == ["E-IMAGE-BLANK"]
        assert label.ok
        assert "W-IMAGE-MISSING" in label.codes()
    elif verdict.startswith("INVALID"):
        assert not post.ok
        assert not label.ok
        names = re.findall(r"'([^']+)'", verdict)
        assert names
        for name in names:
            assert any(f'"{name}"' in message for message in errors), (name, errors)
        assert all(f.source == "xnat" for f in post.errors)
    else:
        pytest.fail(f"unknown verdict wording: {verdict}")
    for text in entry["warnings"]:
        for pattern, code in _WARNING_PATTERNS:
            match = pattern.search(text)
            if match:
                hits = [f for f in post.warnings if f.code == code]
                key = match.groupdict().get("key")
                if key:
                    hits = [f for f in hits if f.location == f"/{key}"]
                assert hits, (text, post.warnings)
                break
        else:
            pytest.fail(f"no known warning code for the index's warning {text!r}")


def test_the_example_set_is_not_empty(reference_dir: Path) -> None:
    assert len(json.loads((reference_dir / "command-json-examples/index.json").read_text())) >= 20
