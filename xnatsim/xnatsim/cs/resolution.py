"""Command resolution (spec B.2-B.4, B.7, A.7.1): from a wrapper and launch parameters to what runs.

Pure logic over XNAT object JSON (A.13) supplied by a :class:`Loader`; it creates no directory
and starts nothing (see :mod:`xnatsim.cs.launcher`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from xnatsim.cs.jsonpath import JsonPathError, matches_filter
from xnatsim.cs.templates import (
    ResolutionError,
    find_illegal,
    render_multiple,
    render_value,
    resolve_carets,
    substitute,
)

__all__ = [
    "INJECTED_ENV",
    "Loader",
    "MountSpec",
    "OutputSpec",
    "Resolved",
    "apply_overlay",
    "resolve",
]

Doc = dict[str, Any]

#: Variables the Container Service injects; a command defining one breaks the launch (B.6).
INJECTED_ENV = ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_WORKFLOW_ID", "XNAT_EVENT_ID")

#: Types whose objects have a directory that can feed a mount (``MOUNTABLE_TYPES``).
_MOUNTABLE = {"Project", "ProjectAsset", "SubjectAssessor", "Session", "Scan", "Assessor", "Resource", "File"}
_XNAT_TYPES = {
    "Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor",
    "Resource", "File", "File[]", "Directory", "Config",
}
#: child list key, and the keys a value may be compared with (A.7.1).
_CHILDREN: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("Project", "Subject"): ("subjects", ("uri", "id", "label", "directory")),
    ("Project", "ProjectAsset"): ("project-assets", ("uri", "id", "label", "directory")),
    ("Subject", "Session"): ("sessions", ("uri", "id", "label", "directory")),
    ("Subject", "SubjectAssessor"): ("subject-assessors", ("uri", "id", "label", "directory")),
    ("Session", "Scan"): ("scans", ("uri", "id", "directory")),
    ("Session", "Assessor"): ("assessors", ("uri", "id", "label")),
    ("Resource", "File"): ("files", ("uri",)),
    ("Resource", "File[]"): ("files", ("uri",)),
}
#: input types whose value must load as an object of that same kind
_TYPED_BY_KIND = {"Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor", "Resource"}
_RESOURCE_PARENTS = {"Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor"}
#: upward derivations: (child type, wanted type) → the property holding the parent's id.
_UPWARD: dict[tuple[str, str], str] = {
    ("ProjectAsset", "Project"): "project-id", ("Subject", "Project"): "project-id",
    ("Session", "Project"): "project-id", ("SubjectAssessor", "Project"): "project-id",
    ("Scan", "Project"): "project-id", ("Assessor", "Project"): "project-id",
    ("Session", "Subject"): "subject-id", ("SubjectAssessor", "Subject"): "subject-id",
    ("Scan", "Session"): "session-id", ("Assessor", "Session"): "session-id",
}


class Loader(Protocol):
    """Where resolution finds XNAT objects, as A.13 JSON (children included unless told not to)."""

    def load(self, uri: str, *, children: bool = True) -> Doc | None:
        """The object at an archive URI (``/archive/experiments/E/scans/1``), or None."""

    def by_id(self, xnat_type: str, ident: str, *, children: bool = True) -> Doc | None:
        """The object of ``xnat_type`` with that id (project id, accession id…), or None."""


@dataclass
class MountSpec:
    """A command mount after resolution. ``source`` is None for an output mount (fresh build dir)."""

    name: str
    container_path: str
    source: str | None
    read_only: bool
    #: copy ``source`` into a fresh writable build dir instead of binding it (``writable: true``)
    copy: bool = False


@dataclass
class OutputSpec:
    """One output handler to run after a successful container."""

    output: str
    handler: str
    mount: str
    path: str
    required: bool
    type: str
    #: wrapper input or earlier handler named by ``as-a-child-of``
    parent_input: str
    #: the parent's URI when it is a wrapper input (handlers' own parents are known only later)
    parent_uri: str | None
    label: str
    format: str | None = None
    description: str | None = None
    content: str | None = None
    tags: list[str] = field(default_factory=list)
    #: ``xsi-type`` of an Assessor/Scan handler
    xsi_type: str | None = None


@dataclass
class Resolved:
    """Everything a launch needs once the inputs are resolved."""

    command_line: str
    override_entrypoint: bool
    environment: dict[str, str]
    mounts: list[MountSpec]
    outputs: list[OutputSpec]
    #: wrapper input name → resolved value (URI or string; None when unresolved)
    wrapper_values: dict[str, str | None]
    command_values: dict[str, str | None]
    #: wrapper input name → the resolved object JSON (XNAT-typed inputs)
    objects: dict[str, Doc]
    raw_map: dict[str, str]
    working_directory: str | None = None
    container_name: str | None = None
    container_labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)


def apply_overlay(command: Doc, wrapper_name: str, config: Mapping[str, Any] | None) -> tuple[Doc, Doc]:
    """Copies of the command and wrapper with a site/project configuration applied (A.12).

    ``config`` has XNAT's shape: ``{"inputs": {name: {"default-value", "matcher", …}},
    "outputs": {handler name: {"label"}}}``.
    """
    cmd = copy.deepcopy(command)
    wrapper = next((w for w in cmd["xnat"] if w["name"] == wrapper_name), None)
    if wrapper is None:
        raise ResolutionError(f'command {cmd.get("id")} has no wrapper "{wrapper_name}"')
    if not config:
        return cmd, wrapper
    inputs = config.get("inputs") or {}
    for inp in [*cmd["inputs"], *wrapper["external-inputs"], *wrapper["derived-inputs"]]:
        over = inputs.get(inp["name"]) or {}
        for key in ("default-value", "matcher"):
            if over.get(key) is not None:
                inp[key] = over[key]
    for handler in wrapper["output-handlers"]:
        label = ((config.get("outputs") or {}).get(handler["name"]) or {}).get("label")
        if label is not None:
            handler["label"] = label
    return cmd, wrapper


def _of_type(obj: Doc | None, itype: str) -> Doc | None:
    """``obj`` if it is an object of the input's type (XNAT loads a URI as that type; another kind
    of object does not convert, so the input gets no value)."""
    if obj is None or itype not in _TYPED_BY_KIND:
        return obj
    kind = obj.get("type")
    return obj if kind == itype or (itype == "SubjectAssessor" and kind == "Session") else None


def _obj_from_value(inp: Doc, value: str, loader: Loader) -> Doc | None:
    itype = inp["type"]
    children = bool(inp.get("load-children", True))
    if value.startswith("/"):
        uri = value if value.startswith("/archive") else "/archive" + value
        return _of_type(loader.load(uri, children=children), itype)
    if value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ResolutionError(f'input "{inp["name"]}": cannot parse object JSON') from exc
        ref = parsed.get("uri") if isinstance(parsed, dict) else None
        return _of_type(loader.load(ref, children=children), itype) if isinstance(ref, str) else None
    if itype == "Scan":
        return None  # a Scan has no id lookup: it must be given as a URI
    return _of_type(loader.by_id(itype, value, children=children), itype)


def _matcher_ok(matcher: str | None, obj: Any, raw: Mapping[str, str]) -> bool:
    if not matcher:
        return True
    text = substitute(matcher, raw) or ""
    try:
        return matches_filter(text, obj)
    except JsonPathError as exc:
        raise ResolutionError(f"invalid matcher {text!r}: {exc}") from exc


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _derive_candidates(inp: Doc, parent: Doc, loader: Loader) -> list[Doc]:
    """Objects of ``inp``'s type derivable from ``parent`` (A.7.1), before filtering."""
    want, have = inp["type"], parent.get("type", "")
    children = bool(inp.get("load-children", True))
    if want == "Resource" and have in _RESOURCE_PARENTS:
        return list(parent.get("resources") or [])
    if (have, want) in _CHILDREN:
        return list(parent.get(_CHILDREN[(have, want)][0]) or [])
    if (have, want) in _UPWARD:
        ident = parent.get(_UPWARD[(have, want)])
        found = loader.by_id(want, str(ident), children=children) if ident else None
        return [found] if found else []
    if (have, want) == ("Resource", "Scan"):
        puri = parent.get("parent-uri")
        found = loader.load(puri, children=children) if isinstance(puri, str) else None
        return [found] if found and found.get("type") == "Scan" else []
    if (have, want) == ("Resource", "Directory"):
        return [parent]
    return []


def _filter_by_value(candidates: list[Doc], keys: tuple[str, ...], value: str, multiple: bool) -> list[Doc]:
    wanted: list[str] = [value]
    if multiple and value.lstrip().startswith("["):
        try:
            wanted = [str(v) for v in json.loads(value)]
        except ValueError:
            wanted = [value]
    for key in keys:
        hits = [c for c in candidates if _as_text(c.get(key)) in wanted]
        if hits:
            return hits
    return []


def resolve(
    command: Doc,
    wrapper: Doc,
    params: Mapping[str, str],
    loader: Loader,
) -> Resolved:
    """Resolve ``wrapper`` of ``command`` (overlay already applied) with launch ``params``."""
    raw: dict[str, str] = {}
    wvalues: dict[str, str | None] = {}
    wlists: dict[str, list[str]] = {}
    objects: dict[str, Doc] = {}
    #: derived XNAT-typed inputs whose resolved parent gives several candidates, or none
    ambiguous: list[str] = []
    unresolved: list[str] = []
    wrapper_inputs = {i["name"]: i for i in [*wrapper["external-inputs"], *wrapper["derived-inputs"]]}

    def carets(text: str | None) -> str | None:
        return None if text is None else resolve_carets(text, command, wrapper)

    for inp in wrapper["external-inputs"]:
        name = inp["name"]
        value = params.get(name, inp.get("default-value"))
        value = carets(_as_text(value))
        if value is not None and inp["type"] in _XNAT_TYPES:
            obj = _obj_from_value(inp, value, loader)
            if obj is not None and _matcher_ok(inp.get("matcher"), obj, raw):
                objects[name] = obj
                prop = inp.get("derived-from-xnat-object-property")
                value = _as_text(obj.get(prop)) if prop else obj.get("uri")
            else:
                value = None
        wvalues[name] = value
        raw[inp["replacement-key"]] = value or ""

    for inp in wrapper["derived-inputs"]:
        name = inp["name"]
        parent_obj = objects.get(inp.get("derived-from-wrapper-input", ""))
        value = None
        if parent_obj is not None:
            prop = inp.get("derived-from-xnat-object-property")
            if inp["type"] == "string":
                value = _as_text(parent_obj.get(prop)) if prop else None
                parser = inp.get("parser")
                if value is not None and parser:
                    value = value if re.fullmatch(parser, value) else None
            elif inp["type"] in ("boolean", "number", "Config"):
                value = None  # never resolves in 3.7.3
            else:
                candidates = _derive_candidates(inp, parent_obj, loader)
                given = params.get(name, inp.get("default-value"))
                if given:
                    keys = _CHILDREN.get((parent_obj.get("type", ""), inp["type"]), ("", ("uri", "id", "label", "directory")))[1]
                    candidates = _filter_by_value(candidates, keys, str(given), bool(inp.get("multiple")))
                candidates = [c for c in candidates if _matcher_ok(inp.get("matcher"), c, raw)]
                if inp["type"] == "Directory":
                    values = [c.get("directory") for c in candidates]
                else:
                    values = [c.get(prop) if prop else c.get("uri") for c in candidates]
                texts = [t for t in (_as_text(v) for v in values) if t is not None]
                if inp.get("multiple"):
                    wlists[name] = texts
                    value = "[" + ", ".join(texts) + "]" if texts else None
                elif len(candidates) == 1:
                    objects[name] = candidates[0]
                    value = texts[0] if texts else None
                elif len(candidates) > 1:
                    ambiguous.append(name)
                else:
                    unresolved.append(name)
        wvalues[name] = carets(value)
        raw[inp["replacement-key"]] = wvalues[name] or ""

    # command inputs: default, then launch parameter, then the providing wrapper input
    providers: dict[str, Doc] = {}
    for inp in [*wrapper["external-inputs"], *wrapper["derived-inputs"]]:
        target = inp.get("provides-value-for-command-input")
        if target:
            providers[target] = inp
    cvalues: dict[str, str | None] = {}
    cl_map: dict[str, str] = {}
    for inp in command["inputs"]:
        name = inp["name"]
        value = _as_text(params.get(name, inp.get("default-value")))
        provider = providers.get(name)
        if provider is not None:
            value = wvalues.get(provider["name"])
        value = carets(value)
        if inp["type"] == "boolean" and not (provider is not None and value is None):
            is_true = value is not None and value.strip().lower() == "true"
            mapped = inp.get("true-value") if is_true else inp.get("false-value")
            value = mapped if mapped is not None else value
        cvalues[name] = value
        key = inp["replacement-key"]
        raw[key] = value or ""
        if provider is not None and provider["name"] in wlists:
            cl_map[key] = render_multiple(
                wlists[provider["name"]], inp.get("command-line-flag"),
                inp.get("command-line-separator"), inp.get("multiple-delimiter"),
            )
        elif value is None and provider is not None and not provider.get("required"):
            cl_map[key] = ""
        elif value is not None:
            cl_map[key] = render_value(
                value, flag=inp.get("command-line-flag"), separator=inp.get("command-line-separator"),
                delimiter=inp.get("multiple-delimiter"), select_many=inp["type"] == "select-many",
            )
        elif not inp.get("required"):
            cl_map[key] = ""

    # the injection guard, then required and unique-value checks
    for name, val in [*wvalues.items(), *cvalues.items()]:
        for piece in wlists.get(name, [val] if val is not None else []):
            bad = find_illegal(piece)
            if bad is not None:
                # XNAT's message (checkForIllegalInputValue), without the value
                raise ResolutionError(f'Input "{name}" has a value containing illegal string "{bad}".')
    # XNAT stops at the first required derived input without a unique value (findUniqueResolvedValues;
    # the double space is XNAT's) ...
    for name in [*ambiguous, *unresolved]:
        if wrapper_inputs[name].get("required"):
            if name in ambiguous:
                raise ResolutionError(f'Input "{name}"  does not have a unique, resolved value and multiple = true '
                                      "is not set in command.json.")
            raise ResolutionError(
                f'Input "{name}" could not be resolved for this item. You might check the JSONPath matchers in '
                f'command.json and confirm that this item has {wrapper_inputs[name]["type"]} data.')
    # ... then lists every required input left without a value
    missing = [n for n, i in wrapper_inputs.items() if i.get("required") and wvalues.get(n) is None]
    missing += [i["name"] for i in command["inputs"] if i.get("required") and cvalues.get(i["name"]) is None]
    if missing:
        raise ResolutionError(
            f"Missing values for required input{'' if len(missing) == 1 else 's'}: {', '.join(missing)}.")

    command_line = carets(substitute(command.get("command-line"), cl_map))
    if command_line is None:
        raise ResolutionError("the command has no command-line")

    def tmpl(text: str | None) -> str | None:
        return carets(substitute(text, raw))

    env = {tmpl(k) or "": tmpl(v) or "" for k, v in command["environment-variables"].items()}
    mounts = _mounts(command, wrapper, objects, wvalues, tmpl)
    outputs = _outputs(command, wrapper, wvalues, tmpl)
    return Resolved(
        command_line=command_line,
        override_entrypoint=bool(command.get("override-entrypoint")),
        environment=env,
        mounts=mounts,
        outputs=outputs,
        wrapper_values=wvalues,
        command_values=cvalues,
        objects=objects,
        raw_map=raw,
        working_directory=tmpl(command.get("working-directory")) or None,
        container_name=tmpl(command.get("container-name")) or None,
        container_labels={k: tmpl(v) or "" for k, v in (command.get("container-labels") or {}).items()},
        ports={tmpl(k) or "": tmpl(v) or "" for k, v in command["ports"].items()},
    )


def _mounts(command: Doc, wrapper: Doc, objects: dict[str, Doc], wvalues: dict[str, str | None], tmpl: Any) -> list[MountSpec]:
    feeders: dict[str, Doc] = {}
    for inp in [*wrapper["external-inputs"], *wrapper["derived-inputs"]]:
        target = inp.get("provides-files-for-command-mount")
        if target:
            feeders[target] = inp  # the last one found wins
    mounts: list[MountSpec] = []
    for mount in command["mounts"]:
        path = tmpl(mount.get("path")) or ""
        feeder = feeders.get(mount["name"])
        if feeder is None:
            mounts.append(MountSpec(mount["name"], path, None, read_only=False))
            continue
        obj = objects.get(feeder["name"])
        source: str | None = None
        if feeder["type"] == "Directory":
            source = wvalues.get(feeder["name"])
        elif obj is not None:
            if obj.get("type") not in _MOUNTABLE:
                raise ResolutionError(
                    f'Input "{feeder["name"]}" of type {obj.get("type")} cannot provide files for '
                    f'mount "{mount["name"]}".'
                )
            source = obj.get("path") if obj.get("type") == "File" else obj.get("directory")
        if source is None:
            if feeder.get("required"):
                raise ResolutionError(f'Input "{feeder["name"]}" has no files for mount "{mount["name"]}".')
            mounts.append(MountSpec(mount["name"], path, None, read_only=False))
            continue
        writable = bool(mount.get("writable"))
        mounts.append(MountSpec(mount["name"], path, source, read_only=not writable, copy=writable))
    return mounts


def _outputs(command: Doc, wrapper: Doc, wvalues: dict[str, str | None], tmpl: Any) -> list[OutputSpec]:
    outputs = {o["name"]: o for o in command["outputs"]}
    specs: list[OutputSpec] = []
    for handler in wrapper["output-handlers"]:
        out = outputs.get(handler.get("accepts-command-output", ""))
        if out is None:
            continue
        parent = handler.get("as-a-child-of", "")
        specs.append(OutputSpec(
            output=out["name"], handler=handler["name"], mount=out.get("mount", ""),
            path=tmpl(out.get("path")) or "", required=bool(out.get("required")),
            type=handler.get("type") or "Resource", parent_input=parent,
            parent_uri=wvalues.get(parent),
            label=tmpl(handler.get("label")) or out["name"],
            format=tmpl(handler.get("format")), description=tmpl(handler.get("description")),
            content=tmpl(handler.get("content")), tags=[tmpl(t) or "" for t in handler.get("tags") or []],
            xsi_type=handler.get("xsi-type"),
        ))
    return specs
