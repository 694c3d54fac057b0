"""Commands, wrappers, enablement and configuration (spec A.10-A.12, C.1-C.2)."""

from __future__ import annotations

import copy
from typing import Any

from xnatsim.cs.db import DocumentDB
from xnatsim.cs.model import normalize, store_form
from xnatsim.cs.validation import validate

__all__ = ["CommandError", "Registry", "xsi_matches"]

Doc = dict[str, Any]

#: "equal to, or an instance of" for the XSI types xnatsim knows (A.6 contexts).
_XSI_PARENTS: dict[str, tuple[str, ...]] = {
    "xnat:imageSessionData": ("xnat:experimentData", "xnat:subjectAssessorData"),
    "xnat:subjectAssessorData": ("xnat:experimentData",),
    "xnat:imageAssessorData": ("xnat:experimentData", "xnat:derivedData"),
    "xnat:imageScanData": (),
}


def xsi_matches(context: str, xsi_type: str) -> bool:
    """Whether a wrapper context accepts an object of ``xsi_type`` (``xnat:imageSessionData``
    matches ``xnat:mrSessionData``, not the reverse)."""
    if context == xsi_type:
        return True
    low = xsi_type.lower()
    if low.endswith("sessiondata"):
        ancestors = ("xnat:imageSessionData", *_XSI_PARENTS["xnat:imageSessionData"])
    elif low.endswith("scandata"):
        ancestors = ("xnat:imageScanData",)
    elif low.endswith("assessordata") and xsi_type != "xnat:subjectAssessorData":
        ancestors = ("xnat:imageAssessorData", *_XSI_PARENTS["xnat:imageAssessorData"])
    else:
        ancestors = _XSI_PARENTS.get(xsi_type, ())
    return context in ancestors


class CommandError(ValueError):
    """A command refused: ``errors`` holds XNAT's messages; ``status`` the HTTP code."""

    def __init__(self, errors: list[str], status: int = 400) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
        self.status = status

    @property
    def body(self) -> str:
        """The response body XNAT sends (``Invalid command:`` and one error per line)."""
        if self.errors and self.errors[0].startswith("This command duplicates"):
            return self.errors[0]
        return "Invalid command:\n" + "\n".join(self.errors)


class Registry:
    """Stored commands with ids on every sub-object, plus site/project enablement and configs."""

    def __init__(self, db: DocumentDB) -> None:
        self.db = db

    # ------------------------------------------------------------------------------ commands
    def _assign_ids(self, doc: Doc) -> Doc:
        doc["id"] = doc.get("id") or self.db.next_id("command")
        for key in ("mounts", "inputs", "outputs"):
            for item in doc[key]:
                item["id"] = item.get("id") or self.db.next_id(f"command-{key}")
        for wrapper in doc["xnat"]:
            wrapper["id"] = wrapper.get("id") or self.db.next_id("wrapper")
            for key in ("external-inputs", "derived-inputs", "output-handlers"):
                for item in wrapper[key]:
                    item["id"] = item.get("id") or self.db.next_id("wrapper-part")
        return doc

    def create(self, document: Doc, *, image: str | None = None) -> Doc:
        """Validate and store a new command (POST /commands, or an image label); CommandError if refused."""
        if not isinstance(document, dict):
            raise CommandError(["The command must be a JSON object."])
        doc = normalize(document, create=True, image=image)
        errors = validate(doc)
        if errors:
            raise CommandError(errors)
        for other in self.commands():
            if (other["name"], other.get("image"), other.get("version")) == (
                doc["name"], doc.get("image"), doc.get("version")
            ):
                raise CommandError(["This command duplicates a command already in the database."])
        doc = self._assign_ids(store_form(doc))
        self._save(doc)
        return doc

    def update(self, command_id: int, document: Doc) -> Doc:
        """Replace a command (POST /commands/{id}); sub-objects keep ids when the body carries them."""
        if self.get(command_id) is None:
            raise CommandError([f"No command with id {command_id}."], status=404)
        doc = normalize(document, create=False)
        doc["id"] = command_id
        errors = validate(doc)
        if errors:
            raise CommandError(errors)
        doc = self._assign_ids(store_form(doc))
        self._save(doc)
        return doc

    def _save(self, doc: Doc) -> None:
        self.db.put("command", doc["id"], doc)
        for wrapper in doc["xnat"]:
            self.db.put("wrapper-owner", wrapper["id"], {"command-id": doc["id"]})

    def get(self, command_id: int) -> Doc | None:
        return self.db.get("command", command_id)

    def commands(self, *, name: str | None = None, version: str | None = None, image: str | None = None) -> list[Doc]:
        """Commands, filtered by exact name / version / image."""
        out = []
        for doc in self.db.all("command"):
            if name is not None and doc["name"] != name:
                continue
            if version is not None and doc.get("version") != version:
                continue
            if image is not None and doc.get("image") != image:
                continue
            out.append(doc)
        return out

    def delete(self, command_id: int) -> bool:
        doc = self.get(command_id)
        if doc is None:
            return False
        for wrapper in doc["xnat"]:
            self.db.delete("wrapper-owner", wrapper["id"])
        return self.db.delete("command", command_id)

    def wrapper(self, wrapper_id: int) -> tuple[Doc, Doc] | None:
        """(command, wrapper) for a wrapper id."""
        owner = self.db.get("wrapper-owner", wrapper_id)
        command = self.get(owner["command-id"]) if owner else None
        if command is None:
            return None
        wrapper = next((w for w in command["xnat"] if w["id"] == wrapper_id), None)
        return (command, wrapper) if wrapper is not None else None

    def wrapper_by_name(self, command_id: int, name: str) -> tuple[Doc, Doc] | None:
        """(command, wrapper) by command id + wrapper name (or the wrapper id as a string)."""
        command = self.get(command_id)
        if command is None:
            return None
        for wrapper in command["xnat"]:
            if wrapper["name"] == name or str(wrapper["id"]) == name:
                return command, wrapper
        return None

    def find_wrapper(self, ref: str) -> tuple[Doc, Doc] | None:
        """A wrapper by id, or by name (first command holding it), for the CLI."""
        if ref.isdigit():
            return self.wrapper(int(ref))
        for command in self.commands():
            for wrapper in command["xnat"]:
                if wrapper["name"] == ref:
                    return command, wrapper
        return None

    # ---------------------------------------------------------------------------- enablement
    def set_enabled(self, wrapper_id: int, enabled: bool, project: str | None = None) -> None:
        kind = "site-enabled" if project is None else f"project-enabled:{project}"
        self.db.put(kind, wrapper_id, {"enabled": enabled, "project": project}, key=project or "")

    def enabled_for_site(self, wrapper_id: int) -> bool:
        """Site enablement (no stored configuration means disabled)."""
        doc = self.db.get("site-enabled", wrapper_id)
        return bool(doc and doc["enabled"])

    def enabled_for_project(self, wrapper_id: int, project: str) -> bool:
        doc = self.db.get(f"project-enabled:{project}", wrapper_id)
        return bool(doc and doc["enabled"])

    def enabled(self, wrapper_id: int, project: str | None) -> bool:
        """Effective enablement: site, and project too when a project is given."""
        if not self.enabled_for_site(wrapper_id):
            return False
        return project is None or self.enabled_for_project(wrapper_id, project)

    def projects_enabled(self, wrapper_id: int, projects: list[str]) -> list[str]:
        return [p for p in projects if self.enabled_for_project(wrapper_id, p)]

    # ------------------------------------------------------------------------- configuration
    def config(self, wrapper_id: int, project: str | None = None) -> Doc:
        """The site (or project, falling back to site) configuration of a wrapper (A.12)."""
        doc = None
        if project is not None:
            doc = self.db.get(f"config:{project}", wrapper_id)
        if doc is None:
            doc = self.db.get("config:", wrapper_id)
        return copy.deepcopy(doc) if doc else {"inputs": {}, "outputs": {}}

    def set_config(self, wrapper_id: int, config: Doc, project: str | None = None) -> None:
        self.db.put(f"config:{project or ''}", wrapper_id, config)

    def delete_config(self, wrapper_id: int, project: str | None = None) -> bool:
        return self.db.delete(f"config:{project or ''}", wrapper_id)

    # ----------------------------------------------------------------------------- available
    def available(self, xsi_type: str, project: str | None, *, site: bool = False) -> list[Doc]:
        """What can run on an object of ``xsi_type`` (``commands/available``)."""
        items = []
        for command in self.commands():
            for wrapper in command["xnat"]:
                contexts = wrapper["contexts"]
                if site:
                    ok = "site" in contexts or any(xsi_matches(c, xsi_type) for c in contexts)
                else:
                    ok = bool(wrapper["external-inputs"]) and any(xsi_matches(c, xsi_type) for c in contexts)
                if not ok:
                    continue
                root = wrapper["external-inputs"][0]["name"] if wrapper["external-inputs"] else None
                items.append({
                    "command-id": command["id"], "command-name": command["name"],
                    "command-label": command.get("label"), "command-description": command.get("description"),
                    "wrapper-id": wrapper["id"], "wrapper-name": wrapper["name"],
                    "wrapper-label": wrapper.get("label"), "wrapper-description": wrapper.get("description"),
                    "wrapper-contexts": contexts, "image-name": command.get("image"),
                    "image-type": command["type"], "enabled": self.enabled(wrapper["id"], project),
                    "root-element-name": root,
                })
        return items
