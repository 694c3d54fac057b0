"""The README's Kubernetes section against the reference read in the Container Service's source.

Line breaks do not count: both texts are compared with their white space collapsed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: (what the README says, what the reference says it from), one row per fact.
FACTS = [
    ("POST /xapi/commands", "commands must be **POSTed as JSON** (`/xapi/commands`)"),
    ("Docker server images not available in Kubernetes mode",
     "Docker server images not available in Kubernetes mode."),
    ("`hostPath` volume at XNAT's *own* path", "one `hostPath` volume per mount at **`xnatHostPath`**"),
    ("with *no* path translation", "XNAT's own path, *no* path translation"),
    ("`persistentVolumeClaim` volume with a `subPath`",
     "one `persistentVolumeClaim` volume per distinct PVC name, each mount uses `subPath ="),
    ("`securityContext.runAsUser`", "`securityContext.runAsUser = container-user` (numeric"),
    ("no `runAsGroup`, no `fsGroup`", "**no runAsGroup/fsGroup**"),
    ("shell-splits the command line", "`args = shell-split(cmdline)` to the image entrypoint"),
    ("stdout and stderr reach XNAT merged", "stdout/stderr arrive **merged**"),
    ("`backoffLimit: 0`", "`backoffLimit = 0`"),
    ("after a week", "Kubernetes Jobs otherwise expire after 1 week"),
    ("`$KUBECONFIG`, then `$CATALINA_HOME/.kube/config`",
     "CS reads `$KUBECONFIG`, then `$CATALINA_HOME/.kube/config`"),
]


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


@pytest.mark.parametrize(("readme", "reference"), FACTS)
def test_each_fact_is_in_the_readme_and_the_reference(
    reference_dir: Path, readme: str, reference: str
) -> None:
    section = " ".join(_section((REPO / "README.md").read_text("utf-8"), "Kubernetes").split())
    source = " ".join((reference_dir / "container-service-swarm-k8s.md").read_text("utf-8").split())
    assert reference in source, "the reference no longer says this: re-check the README"
    assert readme in section


def test_every_command_runs_without_a_shell_as_the_section_says() -> None:
    for path in sorted((REPO / "command-json").glob("*.json")):
        for command in json.loads(path.read_text("utf-8")):
            assert command.get("override-entrypoint") is False, path.name
