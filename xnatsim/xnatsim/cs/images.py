"""Commands from image labels (spec A.10): read ``org.nrg.commands`` and save each command."""

from __future__ import annotations

import json
import logging
from typing import Any

from xnatsim.cs.backend import DockerBackend
from xnatsim.cs.registry import CommandError, Registry

__all__ = ["LABEL", "parse_label", "save_image_commands"]

log = logging.getLogger("xnatsim.cs.images")

LABEL = "org.nrg.commands"
Doc = dict[str, Any]


def parse_label(value: str) -> list[Doc]:
    """The label's JSON array of commands; anything else is refused (XNAT only logs that)."""
    parsed = json.loads(value)
    if not isinstance(parsed, list):
        raise ValueError(f"{LABEL} must hold a JSON array of commands, not a {type(parsed).__name__}")
    return [c for c in parsed if isinstance(c, dict)]


def save_image_commands(registry: Registry, backend: DockerBackend, image: str) -> tuple[list[Doc], list[str]]:
    """Save the commands an image's label carries (``POST /xapi/docker/images/save?image=``).

    As in XNAT each command's ``image`` becomes the name given here and ``hash`` the image id;
    invalid commands and duplicates are skipped and only reported (logged), never raised.
    Returns (saved commands, problems). LookupError when the image is not on the engine.
    """
    image_id, labels = backend.image_labels(image)
    raw = labels.get(LABEL)
    if not raw:
        return [], [f"image {image} has no {LABEL} label"]
    try:
        documents = parse_label(raw)
    except ValueError as exc:
        log.warning("image %s: cannot parse %s: %s", image, LABEL, exc)
        return [], [f"cannot parse {LABEL}: {exc}"]
    saved: list[Doc] = []
    problems: list[str] = []
    for document in documents:
        document = {**document, "hash": image_id}
        try:
            saved.append(registry.create(document, image=image))
        except CommandError as exc:
            log.warning("image %s: command %r not saved: %s", image, document.get("name"), exc)
            problems.append(f"{document.get('name')}: {exc.body}")
    return saved, problems
