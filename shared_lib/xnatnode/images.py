"""The one image-name rule, ``xnatnode/<command>:<version>``, and the images a build makes.

Every name comes from :func:`image_name`: build.sh asks ``xnatnode images`` for the tags it
builds, the tests import the rule, and each ``command-json/<command>.json`` writes the rule's
output in its ``image`` field (checked here before a build and by a test). xnatsim shares no code
with this package: it reads those ``image`` fields.

Which images exist is discovered, never listed: every folder of ``containers/`` but ``base`` is a
command image, paired with ``command-json/<folder>.json``. Standard library only (build.sh runs it
without a virtual environment).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xnatnode import __version__

REPOSITORY = "xnatnode"
#: The folder of containers/ (and image name) of the shared base image; not a command.
BASE = "base"


def image_name(name: str, version: str = __version__) -> str:
    """The tag of image ``name`` (a command, or :data:`BASE`) at ``version``."""
    return f"{REPOSITORY}/{name}:{version}"


@dataclass(frozen=True)
class CommandImage:
    """One command image: its name, its tag, and the command JSON its label carries."""

    name: str
    tag: str
    command_json: Path


class PlanError(ValueError):
    """The containers/ and command-json/ folders do not make a consistent build (one line each)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def command_names(containers: Path) -> list[str]:
    """Every image folder of ``containers`` but the base, sorted."""
    return sorted(d.name for d in containers.iterdir() if d.is_dir() and d.name != BASE)


def _json_problems(path: Path, tag: str) -> list[str]:
    """What is wrong with ``path`` as the org.nrg.commands label of image ``tag``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return [f"{path}: not valid JSON: {exc}"]
    if not isinstance(doc, list) or not doc or not all(isinstance(c, dict) for c in doc):
        return [
            f"{path}: must be a non-empty JSON array of command objects (the org.nrg.commands "
            "label)"
        ]
    return [
        f"{path}: command {command.get('name')!r} has image {command.get('image')!r}, but this "
        f"build tags the image {tag!r}"
        for command in doc
        if command.get("image") != tag
    ]


def plan(
    containers: Path,
    command_json: Path,
    only: Sequence[str] = (),
    version: str = __version__,
) -> list[CommandImage]:
    """The command images to build, checked; raises :class:`PlanError` listing every problem.

    ``only`` names the images wanted (``base`` alone means none); without it every folder of
    ``containers`` is built, and every JSON file of ``command_json`` must have its folder too.
    """
    problems: list[str] = []
    if not (containers / BASE / "Dockerfile").is_file():
        problems.append(f"{containers / BASE / 'Dockerfile'} is missing")
    if only:
        names = [name for name in dict.fromkeys(only) if name != BASE]
        problems += [
            f"no image folder {containers / name}/" for name in names
            if not (containers / name).is_dir()
        ]
    else:
        names = command_names(containers)
        problems += [
            f"{path} has no image folder: {containers / path.stem}/ is missing"
            for path in sorted(command_json.glob("*.json"))
            if not (containers / path.stem).is_dir()
        ]
    images: list[CommandImage] = []
    for name in names:
        path = command_json / f"{name}.json"
        if not (containers / name).is_dir():
            continue
        if not path.is_file():
            problems.append(f"containers/{name}/ has no command JSON: {path} is missing")
            continue
        tag = image_name(name, version)
        problems += _json_problems(path, tag)
        images.append(CommandImage(name, tag, path))
    if problems:
        raise PlanError(problems)
    return images
