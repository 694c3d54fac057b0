"""Command documents as XNAT reads them: scalar coercion, defaults, and the normalized form (A.1-A.9).

Commands are kept as plain JSON dicts in XNAT's kebab-case, exactly what ``GET /xapi/commands``
returns; this module turns a posted or label-borne document into that form.
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = [
    "COMMAND_INPUT_TYPES",
    "COMMAND_TYPES",
    "HANDLER_TYPES",
    "IMAGE_TAG",
    "MULTIPLE_DELIMITERS",
    "NAME_CHARS",
    "VISIBILITIES",
    "WRAPPER_INPUT_TYPES",
    "XNAT_OBJECT_TYPES",
    "coerce_bool",
    "normalize",
]

Doc = dict[str, Any]

COMMAND_TYPES = ("docker", "docker-setup", "docker-wrapup")
VISIBILITIES = ("public", "private", "protected")
COMMAND_INPUT_TYPES = ("string", "boolean", "number", "select-one", "select-many", "file")
WRAPPER_INPUT_TYPES = (
    "string", "boolean", "number", "Directory", "File[]", "File", "Project", "ProjectAsset",
    "Subject", "SubjectAssessor", "Session", "Scan", "Assessor", "Resource", "Config", "file",
)
XNAT_OBJECT_TYPES = (
    "Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor",
    "Resource", "File", "File[]", "Directory", "Config",
)
HANDLER_TYPES = ("Resource", "Assessor", "Scan")
MULTIPLE_DELIMITERS = ("quoted-space", "space", "comma", "flag")
#: ``[A-Za-z0-9_-]``: what input, output, handler and wrapper-input names may hold (since 2.0.1).
NAME_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
#: an image "has a tag" when it ends with ``:tag`` (a digest ``@sha256:…`` passes too).
IMAGE_TAG = re.compile(r":[A-Za-z0-9_.-]+$")

_BOOL_KEYS = {
    "override-entrypoint", "auto-remove", "writable", "required", "sensitive", "user-settable",
    "load-children", "multiple",
}
_STR_KEYS = {"default-value", "true-value", "false-value", "command-line-separator"}


def coerce_bool(value: Any) -> bool | None:
    """Jackson's coercion: ``"true"``/``"false"`` strings and numbers become booleans."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        return None
    if isinstance(value, (int, float)):
        return bool(value)
    return None


def _coerce_scalar(key: str, value: Any) -> Any:
    if key in _BOOL_KEYS:
        return coerce_bool(value)
    if key in _STR_KEYS and value is not None and not isinstance(value, str):
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return value


def _coerce(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _coerce(_coerce_scalar(k, v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_coerce(v) for v in obj]
    return obj


def _list(doc: Doc, key: str) -> list[Any]:
    value = doc.get(key)
    return value if isinstance(value, list) else []


def _map(doc: Doc, key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def normalize(document: Doc, *, create: bool = True, image: str | None = None) -> Doc:
    """The command as XNAT stores it, before ids are assigned (a deep copy).

    ``create`` applies create-time rules (``:latest`` tag defaulting, the legacy
    ``as-a-child-of-wrapper-input`` fallback, ids stripped); ``image`` overrides the
    document's image (``?image=`` or the image-label route).
    """
    doc: Doc = _coerce(copy.deepcopy(document))
    if image is not None:
        doc["image"] = image
    if create:
        doc.pop("id", None)
        img = doc.get("image")
        if isinstance(img, str) and img.strip() and not IMAGE_TAG.search(img):
            doc["image"] = img + ":latest"
    doc.setdefault("name", "")
    doc["type"] = doc.get("type") or "docker"
    doc["visibility"] = doc.get("visibility") or "public"
    doc["override-entrypoint"] = bool(doc.get("override-entrypoint"))
    for key in ("mounts", "inputs", "outputs", "xnat", "secrets"):
        doc[key] = _list(doc, key)
    for key in ("environment-variables", "ports"):
        doc[key] = _map(doc, key)
    for mount in doc["mounts"]:
        mount.setdefault("name", "")
        mount["writable"] = bool(mount.get("writable"))
        if create:
            mount.pop("id", None)
    for inp in doc["inputs"]:
        if create:
            inp.pop("id", None)
        if inp.get("type") not in COMMAND_INPUT_TYPES:
            inp["type"] = "string"
        inp["required"] = bool(inp.get("required"))
        inp["select-values"] = _list(inp, "select-values")
        if not inp.get("replacement-key"):
            inp["replacement-key"] = f"#{inp.get('name', '')}#"
    for out in doc["outputs"]:
        if create:
            out.pop("id", None)
        out.setdefault("name", "")
        out["required"] = bool(out.get("required"))
    for wrapper in doc["xnat"]:
        _normalize_wrapper(wrapper, create=create)
    return doc


def _normalize_wrapper(wrapper: Doc, *, create: bool) -> None:
    if create:
        wrapper.pop("id", None)
    wrapper.setdefault("name", "")
    wrapper["contexts"] = _list(wrapper, "contexts")
    for key in ("external-inputs", "derived-inputs", "output-handlers"):
        wrapper[key] = _list(wrapper, key)
    for kind in ("external-inputs", "derived-inputs"):
        for inp in wrapper[kind]:
            if create:
                inp.pop("id", None)
            if inp.get("type") is None:
                inp["type"] = "string"
            inp["required"] = True if inp.get("required") is None else bool(inp["required"])
            inp["load-children"] = (
                True if inp.get("load-children") is None else bool(inp["load-children"])
            )
            if not inp.get("replacement-key"):
                inp["replacement-key"] = f"#{inp.get('name', '')}#"
            if kind == "derived-inputs":
                inp["multiple"] = bool(inp.get("multiple"))
    for handler in wrapper["output-handlers"]:
        if create:
            handler.pop("id", None)
            legacy = handler.pop("as-a-child-of-wrapper-input", None)
            if not handler.get("as-a-child-of") and legacy:
                handler["as-a-child-of"] = legacy
        else:
            handler.pop("as-a-child-of-wrapper-input", None)
        handler.setdefault("name", "")
        handler["type"] = handler.get("type") or "Resource"
        handler["tags"] = _list(handler, "tags")


def store_form(doc: Doc) -> Doc:
    """Storage quirks applied after validation: a lowercase ``file`` wrapper input becomes ``string``."""
    for wrapper in doc["xnat"]:
        for kind in ("external-inputs", "derived-inputs"):
            for inp in wrapper[kind]:
                if inp.get("type") == "file":
                    inp["type"] = "string"
    return doc
