"""XNAT's command validation (spec A.14): exactly the errors ``Command.validate()`` reports."""

from __future__ import annotations

from typing import Any

from xnatsim.cs.model import (
    COMMAND_TYPES,
    HANDLER_TYPES,
    IMAGE_TAG,
    MULTIPLE_DELIMITERS,
    NAME_CHARS,
    VISIBILITIES,
    WRAPPER_INPUT_TYPES,
)

__all__ = ["validate"]

Doc = dict[str, Any]


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def validate(doc: Doc) -> list[str]:
    """Every validation error of a normalized command (empty list: valid)."""
    errors: list[str] = []
    name = doc.get("name")
    if _blank(name):
        errors.append("Command name cannot be blank.")
    prefix = f'Command "{name}" - '
    image = doc.get("image")
    if _blank(image):
        errors.append(prefix + "image name cannot be blank.")
    elif not IMAGE_TAG.search(str(image)):
        errors.append(prefix + f'image name "{image}" must include a version tag.')
    ctype = doc.get("type")
    if ctype not in COMMAND_TYPES:
        errors.append(
            prefix + f'Cannot instantiate command of type "{ctype}". '
            f"Must be one of {', '.join(COMMAND_TYPES)}."
        )
    if doc.get("visibility") not in VISIBILITIES:
        errors.append(
            prefix + f'visibility "{doc.get("visibility")}" must be one of {", ".join(VISIBILITIES)}.'
        )
    if ctype in ("docker-setup", "docker-wrapup"):
        errors += [
            prefix + f'a {ctype} command cannot declare "{key}".'
            for key in ("mounts", "inputs", "outputs", "xnat", "environment-variables", "ports", "secrets")
            if doc.get(key)
        ]
    for key, value in (doc.get("ulimits") or {}).items():
        text = "" if value is None else str(value)
        if not text.strip() or text.count(":") > 1:
            errors.append(prefix + f'ulimit "{key}" value "{text}" must be "n" or "soft:hard".')
    env_names = set(doc.get("environment-variables") or {})
    for secret in doc.get("secrets") or []:
        dest = ((secret or {}).get("destination") or {}).get("identifier")
        if dest in ("XNAT_USER", "XNAT_PASS", "XNAT_HOST"):
            errors.append(prefix + f'secret destination "{dest}" is reserved.')
        elif dest in env_names:
            errors.append(prefix + f'secret destination "{dest}" is also an environment variable.')
    errors += _mounts(doc, prefix)
    errors += _inputs(doc, prefix)
    errors += _outputs(doc, prefix)
    errors += _wrappers(doc, prefix)
    return errors


def _mounts(doc: Doc, prefix: str) -> list[str]:
    errors: list[str] = []
    seen: set[str] = set()
    for mount in doc.get("mounts") or []:
        mname = mount.get("name")
        if _blank(mname):
            errors.append(prefix + "mount name cannot be blank.")
        elif mname in seen:
            errors.append(prefix + f'mount name "{mname}" is not unique.')
        else:
            seen.add(mname)
        if _blank(mount.get("path")):
            errors.append(prefix + f'mount "{mname}" path cannot be blank.')
    return errors


def _inputs(doc: Doc, prefix: str) -> list[str]:
    errors: list[str] = []
    seen: set[str] = set()
    for inp in doc.get("inputs") or []:
        iname = inp.get("name")
        if _blank(iname):
            errors.append(prefix + "command input name cannot be blank.")
            continue
        if not NAME_CHARS.match(iname):
            errors.append(f"Command input '{iname}' name should contain only alphanumeric, _ and -")
        if iname in seen:
            errors.append(prefix + f'command input name "{iname}" is not unique.')
        seen.add(iname)
        delim = inp.get("multiple-delimiter")
        if delim is not None and delim not in MULTIPLE_DELIMITERS:
            errors.append(
                prefix + f'command input "{iname}" multiple-delimiter "{delim}" must be one of '
                f"{', '.join(MULTIPLE_DELIMITERS)}."
            )
        select = inp.get("type") in ("select-one", "select-many")
        values = [str(v) for v in inp.get("select-values") or []]
        if select and not values:
            errors.append(prefix + f'command input "{iname}" is a select type but has no select-values.')
        if values and not select:
            errors.append(prefix + f'command input "{iname}" has select-values but is not a select type.')
        default = inp.get("default-value")
        if select and values and default is not None and default != "":
            defaults = _json_list(default) if inp.get("type") == "select-many" else None
            errors += [
                prefix + f'command input "{iname}" default value "{item}" is not one of its select-values.'
                for item in (defaults if defaults is not None else [default])
                if item not in values
            ]
    return errors


def _json_list(text: str) -> list[str] | None:
    import json

    if not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def _outputs(doc: Doc, prefix: str) -> list[str]:
    errors: list[str] = []
    mounts = {m.get("name") for m in doc.get("mounts") or []}
    seen: set[str] = set()
    for out in doc.get("outputs") or []:
        oname = out.get("name")
        if _blank(oname):
            errors.append(prefix + "output name cannot be blank.")
        else:
            if not NAME_CHARS.match(oname):
                errors.append(f"Command output '{oname}' name should contain only alphanumeric, _ and -")
            if oname in seen:
                errors.append(prefix + f'output name "{oname}" is not unique.')
            seen.add(oname)
        mount = out.get("mount")
        if _blank(mount):
            errors.append(prefix + f'output "{oname}" mount cannot be blank.')
        elif mount not in mounts:
            errors.append(prefix + f'output "{oname}" references unknown mount "{mount}".')
    return errors


def _wrappers(doc: Doc, prefix: str) -> list[str]:
    errors: list[str] = []
    seen: set[str] = set()
    inputs = {i.get("name"): i for i in doc.get("inputs") or []}
    outputs = [o.get("name") for o in doc.get("outputs") or []]
    for wrapper in doc.get("xnat") or []:
        wname = wrapper.get("name")
        if _blank(wname):
            errors.append(prefix + "wrapper name cannot be blank.")
        elif wname in seen:
            errors.append(prefix + f'wrapper name "{wname}" is not unique.')
        seen.add(wname)
        wprefix = prefix + f'wrapper "{wname}" - '
        errors += _wrapper_inputs(wrapper, wprefix, inputs)
        errors += _handlers(wrapper, wprefix, outputs)
        handled = {h.get("accepts-command-output") for h in wrapper.get("output-handlers") or []}
        errors += [
            wprefix + f'command output "{o}" is not handled by any output handler.'
            for o in outputs
            if o and o not in handled
        ]
    return errors


def _wrapper_inputs(wrapper: Doc, wprefix: str, inputs: dict[Any, Doc]) -> list[str]:
    errors: list[str] = []
    earlier: set[str] = set()
    for kind in ("external-inputs", "derived-inputs"):
        for inp in wrapper.get(kind) or []:
            iname = inp.get("name")
            if _blank(iname):
                errors.append(wprefix + "input name cannot be blank.")
                continue
            if not NAME_CHARS.match(iname):
                errors.append(f"Wrapper input '{iname}' name should contain only alphanumeric, _ and -")
            if iname in earlier:
                errors.append(wprefix + f'input name "{iname}" is not unique.')
            itype = inp.get("type")
            if itype not in WRAPPER_INPUT_TYPES:
                errors.append(
                    wprefix + f'input "{iname}" has unknown type "{itype}". '
                    f"Must be one of {', '.join(WRAPPER_INPUT_TYPES)}."
                )
            if inp.get("via-setup-command") and not inp.get("provides-files-for-command-mount"):
                errors.append(
                    wprefix + f'input "{iname}" has via-setup-command but no '
                    "provides-files-for-command-mount."
                )
            target = inp.get("provides-value-for-command-input")
            target_inp = inputs.get(target) if target else None
            if target_inp is not None and (
                target_inp.get("type") in ("select-one", "select-many")
                or target_inp.get("select-values")
            ):
                errors.append(
                    wprefix + f'input "{iname}" cannot provide a value for select command input '
                    f'"{target}".'
                )
            if kind == "derived-inputs":
                parent = inp.get("derived-from-wrapper-input")
                if _blank(parent):
                    errors.append(wprefix + f'derived input "{iname}" derived-from-wrapper-input cannot be blank.')
                elif parent == iname:
                    errors.append(wprefix + f'derived input "{iname}" cannot be derived from itself.')
                elif parent not in earlier:
                    errors.append(
                        wprefix + f'derived input "{iname}" is derived from "{parent}", which is not '
                        "an input declared before it."
                    )
                if inp.get("multiple"):
                    if inp.get("provides-files-for-command-mount"):
                        errors.append(
                            wprefix + f'derived input "{iname}" has multiple=true and cannot '
                            "provide files for a mount."
                        )
                    if not target:
                        errors.append(
                            wprefix + f'derived input "{iname}" has multiple=true and must '
                            "provide a value for a command input."
                        )
            earlier.add(iname)
    return errors


def _handlers(wrapper: Doc, wprefix: str, outputs: list[Any]) -> list[str]:
    errors: list[str] = []
    derived = {i.get("name"): i for i in wrapper.get("derived-inputs") or []}
    wrapper_inputs = {i.get("name") for i in wrapper.get("external-inputs") or []} | set(derived)
    earlier: set[str] = set()
    for handler in wrapper.get("output-handlers") or []:
        hname = handler.get("name")
        if _blank(hname):
            errors.append(wprefix + "output handler name cannot be blank.")
            hname = ""
        else:
            if not NAME_CHARS.match(hname):
                errors.append(f"Output handler '{hname}' name should contain only alphanumeric, _ and -")
            if hname in earlier:
                errors.append(wprefix + f'output handler name "{hname}" is not unique.')
        hp = wprefix + f'output handler "{hname}" - '
        accepts = handler.get("accepts-command-output")
        if _blank(accepts):
            errors.append(hp + "accepts-command-output cannot be blank.")
        elif accepts not in outputs:
            errors.append(hp + f'accepts-command-output "{accepts}" is not a command output.')
        parent = handler.get("as-a-child-of")
        if _blank(parent):
            errors.append(hp + "as-a-child-of cannot be blank.")
        elif parent not in wrapper_inputs and parent not in earlier:
            errors.append(
                hp + f'as-a-child-of "{parent}" is not a wrapper input or an earlier output handler.'
            )
        elif parent in derived:
            target = derived[parent]
            if target.get("multiple"):
                errors.append(hp + f'as-a-child-of "{parent}" is a derived input with multiple=true.')
            prop = target.get("derived-from-xnat-object-property")
            if prop and prop != "uri":
                errors.append(
                    hp + f'as-a-child-of "{parent}" is derived from property "{prop}"; only "uri" '
                    "can be an output parent."
                )
        htype = handler.get("type")
        if htype not in HANDLER_TYPES:
            errors.append(hp + f'type "{htype}" must be one of {", ".join(HANDLER_TYPES)}.')
        if htype == "Resource" and _blank(handler.get("label")):
            errors.append(hp + "a Resource output handler must have a label.")
        earlier.add(hname)
    return errors
