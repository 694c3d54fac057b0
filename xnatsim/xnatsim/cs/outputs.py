"""Output handlers (spec B.9 step 3-5): upload a finished container's outputs into the store."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnatsim.cs.resolution import OutputSpec
from xnatsim.cs.xnatobjects import StoreLoader
from xnatsim.store import Parent, StagedFile, Store, StoreError, md5_file

__all__ = ["UploadResult", "parent_of", "run_handlers"]

Doc = dict[str, Any]


@dataclass
class UploadResult:
    handler: str
    output: str
    required: bool
    ok: bool
    message: str
    #: URI of what was created (resource, assessor or scan)
    uri: str | None = None

    def as_json(self) -> Doc:
        """The container record's ``outputs`` entry."""
        return {"name": self.output, "from-output-handler": self.handler, "required": self.required,
                "created": self.uri, "ok": self.ok, "message": self.message}


def parent_of(obj: Doc) -> Parent:
    """The store parent for an object's A.13 JSON (what a resource hangs on)."""
    kind = obj.get("type")
    if kind == "Project":
        return Parent("project", obj["id"])
    if kind == "Subject":
        return Parent("subject", obj["project-id"], subject_id=obj["id"])
    if kind in ("Session", "SubjectAssessor", "Assessor"):
        return Parent("experiment", obj["project-id"], experiment_id=obj["id"])
    if kind == "Scan":
        return Parent("scan", obj["project-id"], experiment_id=obj["session-id"], scan_pk=obj["integer-id"])
    raise StoreError(400, f"Cannot upload to an object of type {kind}.")


def _order(specs: list[OutputSpec]) -> list[OutputSpec]:
    """Handlers in dependency order: one that targets another handler runs after it."""
    names = {s.handler for s in specs}
    done: list[OutputSpec] = []
    placed: set[str] = set()
    pending = list(specs)
    for _ in range(len(specs) + 1):
        rest = []
        for spec in pending:
            if spec.parent_input in names and spec.parent_input not in placed:
                rest.append(spec)
            else:
                done.append(spec)
                placed.add(spec.handler)
        pending = rest
        if not pending:
            break
    return done + pending


def _can_edit(store: Store, user: str, project: str) -> bool:
    return store.is_admin(user) or store.role(project, user) in ("owner", "member")


def _entries(base: Path) -> list[tuple[str, Path]]:
    """(relative path, file) for everything under ``base`` (or ``base`` itself when a file)."""
    if base.is_file():
        return [(base.name, base)]
    found = []
    for root, _dirs, files in os.walk(base):
        for name in files:
            full = Path(root) / name
            found.append((full.relative_to(base).as_posix(), full))
    return sorted(found)


def run_handlers(
    store: Store,
    specs: list[OutputSpec],
    mount_paths: dict[str, Path],
    user: str,
) -> list[UploadResult]:
    """Run every output handler; ``mount_paths`` maps mount names to their host directories."""
    loader = StoreLoader(store)
    created: dict[str, str] = {}
    results: list[UploadResult] = []
    for spec in _order(specs):
        try:
            uri = _run_one(store, loader, spec, mount_paths, created, user)
            created[spec.handler] = uri
            results.append(UploadResult(spec.handler, spec.output, spec.required, True, "uploaded", uri))
        except (StoreError, OSError, ValueError, ET.ParseError) as exc:
            message = exc.message if isinstance(exc, StoreError) else str(exc)
            results.append(UploadResult(spec.handler, spec.output, spec.required, False, message))
    return results


def _run_one(
    store: Store, loader: StoreLoader, spec: OutputSpec, mount_paths: dict[str, Path],
    created: dict[str, str], user: str,
) -> str:
    parent_uri = created.get(spec.parent_input) or spec.parent_uri
    if not parent_uri:
        raise ValueError(f'output handler "{spec.handler}": as-a-child-of "{spec.parent_input}" has no value')
    parent_obj = loader.load(parent_uri, children=False)
    if parent_obj is None:
        raise ValueError(f'output handler "{spec.handler}": parent {parent_uri} not found')
    mount_dir = mount_paths.get(spec.mount)
    if mount_dir is None:
        raise ValueError(f'output "{spec.output}": mount "{spec.mount}" has no directory')
    base = Path(spec.path) if os.path.isabs(spec.path) else mount_dir / spec.path
    entries = _entries(base) if base.exists() else []
    if not entries:
        raise ValueError(f'output "{spec.output}": nothing to upload at {spec.path or "/"} in mount "{spec.mount}"')
    parent = parent_of(parent_obj)
    if not _can_edit(store, user, parent.project):
        raise ValueError(f"user {user} cannot edit {parent_uri}")
    if spec.type == "Resource":
        label = spec.label or spec.output
        resource, _ = store.create_resource(
            parent, label, format=spec.format or "", content=spec.content or "",
            description=spec.description or "", tags=",".join(spec.tags), exist_ok=True,
        )
        folder = store.stage()
        try:
            staged: list[StagedFile] = []
            for rel, src in entries:
                target = folder / f"{len(staged)}"
                shutil.copyfile(src, target)
                staged.append(StagedFile(rel, target, target.stat().st_size, md5_file(target)))
            store.add_files(resource, staged, overwrite=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return f"{parent_obj['uri']}/resources/{label}"
    xml_files = [src for rel, src in entries if rel.lower().endswith(".xml")]
    if len(xml_files) != 1:
        raise ValueError(f'output "{spec.output}": a {spec.type} output needs exactly one .xml file, found {len(xml_files)}')
    return _create_from_xml(store, spec, parent_obj, xml_files[0], user)


def _create_from_xml(store: Store, spec: OutputSpec, parent_obj: Doc, xml_file: Path, user: str) -> str:
    root = ET.parse(xml_file).getroot()
    xsi = root.tag.split("}", 1)[-1]
    prefix = "xnat"
    if root.tag.startswith("{"):
        ns = root.tag[1:].split("}", 1)[0]
        prefix = ns.rstrip("/").rsplit("/", 1)[-1]
    xsi_type = spec.xsi_type or (xsi if ":" in xsi else f"{prefix}:{xsi}")
    if parent_obj.get("type") != "Session":
        raise ValueError(f"a {spec.type} output must be created in a session, not {parent_obj.get('type')}")
    if spec.type == "Scan":
        scan_id = root.get("ID") or store.next_scan_id(parent_obj["id"])
        store.put_scan(parent_obj["id"], scan_id, xsi_type, {})
        return f"{parent_obj['uri']}/scans/{scan_id}"
    label = root.get("label") or root.get("ID") or f"{parent_obj['label']}_{spec.output}"
    exp, _ = store.put_experiment(parent_obj["project-id"], parent_obj["subject-id"], label, xsi_type, {},
                                  user=user, session_id=parent_obj["id"])
    return f"{parent_obj['uri']}/assessors/{exp.id}"
