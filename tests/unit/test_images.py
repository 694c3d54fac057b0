"""The one image-name rule (xnatnode.images) and ``xnatnode images``, which build.sh reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from xnatnode import __version__
from xnatnode.cli import main
from xnatnode.images import BASE, PlanError, command_names, image_name, plan

REPO = Path(__file__).resolve().parents[2]


def test_the_rule() -> None:
    assert image_name("project-summary", "1.2.3") == "xnatnode/project-summary:1.2.3"
    assert image_name(BASE) == f"xnatnode/base:{__version__}"


def test_every_command_json_image_is_the_rules_output() -> None:
    """The ``image`` fields are written by hand: each must equal what the build tags."""
    files = sorted((REPO / "command-json").glob("*.json"))
    assert files
    for path in files:
        for command in json.loads(path.read_text("utf-8")):
            assert command["image"] == image_name(path.stem), path.name
    assert command_names(REPO / "containers") == [p.stem for p in files]


def test_the_repository_plan_is_consistent() -> None:
    images = plan(REPO / "containers", REPO / "command-json")
    assert [i.name for i in images] == command_names(REPO / "containers")
    assert all(i.tag == image_name(i.name) for i in images)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    containers, jsondir = tmp_path / "containers", tmp_path / "command-json"
    (containers / BASE).mkdir(parents=True)
    (containers / BASE / "Dockerfile").write_text("FROM scratch\n")
    jsondir.mkdir()
    return containers, jsondir


def _add(tree: tuple[Path, Path], name: str, image: str | None = None) -> None:
    (tree[0] / name).mkdir()
    doc = [{"name": name, "image": image or image_name(name)}]
    (tree[1] / f"{name}.json").write_text(json.dumps(doc))


def test_new_folders_are_discovered_not_listed(tree: tuple[Path, Path]) -> None:
    _add(tree, "zeta")
    _add(tree, "alpha")
    assert [(i.name, i.tag) for i in plan(*tree)] == [
        ("alpha", image_name("alpha")), ("zeta", image_name("zeta")),
    ]
    assert [i.name for i in plan(*tree, only=["zeta", BASE])] == ["zeta"]
    assert plan(*tree, only=[BASE]) == []


def test_every_problem_is_listed_at_once(tree: tuple[Path, Path]) -> None:
    _add(tree, "good")
    _add(tree, "wrong-tag", image="xnatnode/wrong-tag:latest")
    (tree[0] / "orphan").mkdir()
    (tree[1] / "stray.json").write_text("[]")
    (tree[0] / "broken").mkdir()
    (tree[1] / "broken.json").write_text("[{")
    with pytest.raises(PlanError) as info:
        plan(*tree)
    text = str(info.value)
    assert "stray.json has no image folder" in text
    assert "containers/orphan/ has no command JSON" in text
    assert "broken.json: not valid JSON" in text
    assert "has image 'xnatnode/wrong-tag:latest', but this build tags the image" in text
    assert len(info.value.problems) == 4


def test_the_command_prints_name_tag_and_file(
    tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _add(tree, "probe")
    status = main(["images", "--containers", str(tree[0]), "--command-json", str(tree[1])])
    assert status == 0
    assert capsys.readouterr().out == f"probe\t{image_name('probe')}\t{tree[1] / 'probe.json'}\n"
    assert main(["images", "--tag", BASE]) == 0
    assert capsys.readouterr().out == f"{image_name(BASE)}\n"
    assert main(["images", "--containers", str(tree[0]), "--command-json", str(tree[1]), "nope"]) == 1
    assert "no image folder" in capsys.readouterr().err


def test_building_the_parser_needs_only_the_standard_library() -> None:
    """build.sh runs ``python3 -m xnatnode images`` from the source tree, with no venv: no
    command module may import a third-party package at module level."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from xnatnode.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}"
        " - set(sys.stdlib_module_names) - {'xnatnode'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
        cwd=REPO,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_demo_adds_the_images_the_command_json_names() -> None:
    """xnatsim shares no code with xnatnode: its demo reads the rule's output from the JSON."""
    from xnatsim.cs.cli_demo import COMMAND_JSON, command_images

    assert COMMAND_JSON == REPO / "command-json"
    names = command_names(REPO / "containers")
    assert command_images(COMMAND_JSON) == [image_name(name) for name in names]
