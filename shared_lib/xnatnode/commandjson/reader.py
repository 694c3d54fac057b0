"""Reads command JSON into the :mod:`~xnatnode.commandjson.model` the way XNAT does.

The reader mirrors how XNAT's Jackson mapper reads the JSON (spec A.1): unknown keys are ignored
(we warn), ``null`` lists/maps are empty, scalars are coerced (``"false"`` -> false, ``1`` ->
``"1"``), and only what Jackson itself refuses (an object where a string belongs, a missing input
``name``...) becomes an ``E-PARSE`` error. It never raises on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

from xnatnode.commandjson.findings import Finding, error, pointer, warning
from xnatnode.commandjson.model import (
    Command,
    CommandInput,
    Mount,
    Output,
    OutputHandler,
    Route,
    Secret,
    Wrapper,
    WrapperInput,
    default_tag,
    or_default,
)

# --- keys each object accepts -------------------------------------------------------------------

_COMMAND_KEYS = frozenset(
    {
        "id", "name", "label", "description", "version", "schema-version", "info-url", "image",
        "container-name", "type", "index", "hash", "working-directory", "command-line",
        "command-metadata", "override-entrypoint", "mounts", "environment-variables", "ports",
        "inputs", "outputs", "xnat", "reserve-memory", "limit-memory", "limit-cpu", "runtime",
        "ipc-mode", "ipcMode", "auto-remove", "shm-size", "network", "container-labels", "gpus",
        "generic-resources", "ulimits", "secrets", "visibility",
    }
)  # fmt: skip
_MOUNT_KEYS = frozenset({"id", "name", "writable", "path"})
_INPUT_KEYS = frozenset(
    {
        "id", "name", "label", "description", "type", "required", "matcher", "default-value",
        "replacement-key", "command-line-flag", "command-line-separator", "true-value",
        "false-value", "sensitive", "select-values", "multiple-delimiter",
    }
)  # fmt: skip
_OUTPUT_KEYS = frozenset({"id", "name", "description", "required", "mount", "path", "glob"})
_WRAPPER_KEYS = frozenset(
    {"id", "name", "label", "description", "contexts", "external-inputs", "derived-inputs",
     "output-handlers"}
)  # fmt: skip
_EXTERNAL_KEYS = frozenset(
    {
        "id", "name", "label", "description", "type", "matcher", "default-value",
        "replacement-key", "required", "load-children", "user-settable", "sensitive",
        "provides-value-for-command-input", "provides-files-for-command-mount",
        "via-setup-command",
    }
)  # fmt: skip
_DERIVED_KEYS = _EXTERNAL_KEYS | {
    "derived-from-wrapper-input", "derived-from-xnat-object-property", "multiple", "parser",
}  # fmt: skip
_HANDLER_KEYS = frozenset(
    {
        "id", "name", "accepts-command-output", "as-a-child-of", "as-a-child-of-wrapper-input",
        "via-wrapup-command", "type", "label", "format", "description", "content", "tags",
        "xsi-type",
    }
)  # fmt: skip
_SECRET_KEYS = frozenset({"source", "destination"})
_SECRET_PART_KEYS = frozenset({"type", "identifier"})

_T = TypeVar("_T")

_JSON_KIND = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return _JSON_KIND.get(type(value), type(value).__name__)


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def _scalar_text(value: object) -> str | None:
    """The string Jackson makes of a JSON scalar (``true`` -> ``"true"``, ``1`` -> ``"1"``);
    None for anything else (null, an object, an array)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    return None


class _Reader:
    """Reads one JSON object field by field the way Jackson would, recording what it finds."""

    def __init__(self, raw: dict[str, Any], loc: str, findings: list[Finding]) -> None:
        self.raw = raw
        self.loc = loc
        self.findings = findings
        self.failed = False

    def fail(self, key: str, expected: str, value: object) -> None:
        self.failed = True
        self.findings.append(
            error(
                "E-PARSE",
                f'XNAT cannot read "{key}": expected {expected}, got {_kind(value)} '
                f"(the whole document is rejected before validation).",
                pointer(self.loc, key),
                source="xnatnode",
            )
        )

    def _coerced(self, key: str, value: object, expected: str) -> None:
        self.findings.append(
            warning(
                "W-COERCED-SCALAR",
                f'"{key}" is {_kind(value)} where XNAT expects {expected}; XNAT converts it '
                f"({json.dumps(value)}), but write the proper JSON type.",
                pointer(self.loc, key),
            )
        )

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or isinstance(value, str):
            return value
        text = _scalar_text(value)
        if text is not None:
            self._coerced(key, value, "a string")
            return text
        self.fail(key, "a string", value)
        return None

    def flag(self, key: str) -> bool | None:
        value = self.raw.get(key)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value in ("true", "True", "TRUE"):
                self._coerced(key, value, "a boolean")
                return True
            if value in ("false", "False", "FALSE"):
                self._coerced(key, value, "a boolean")
                return False
            if value == "":
                return None
        elif isinstance(value, int):
            self._coerced(key, value, "a boolean")
            return value != 0
        self.fail(key, "a boolean", value)
        return None

    def integer(self, key: str) -> int | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float):
            self._coerced(key, value, "an integer")
            return int(value)
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                pass
            else:
                self._coerced(key, value, "an integer")
                return number
        self.fail(key, "an integer", value)
        return None

    def number(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                self._coerced(key, value, "a number")
                return number
        self.fail(key, "a number", value)
        return None

    def texts(self, key: str) -> list[str]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, "an array of strings", value)
            return []
        out: list[str] = []
        for item in value:
            text = _scalar_text(item)
            if text is None:
                self.fail(key, "an array of strings", value)
                return []
            out.append(text)
        return out

    def mapping(self, key: str) -> dict[str, str] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, "an object of strings", value)
            return None
        out: dict[str, str] = {}
        for name, item in value.items():
            text = _scalar_text(item)
            if text is None:
                self.fail(key, "an object whose values are strings", item)
                return None
            out[name] = text
        return out

    def objects(self, key: str) -> list[tuple[dict[str, Any], str]]:
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, "an array of objects", value)
            return []
        out: list[tuple[dict[str, Any], str]] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{key}/{index}", "an object", item)
                continue
            out.append((item, pointer(self.loc, key, index)))
        return out

    def required_name(self, what: str) -> str:
        """``name`` where XNAT's model cannot hold null (input names): missing is a parse error."""
        if self.raw.get("name") is None:
            self.failed = True
            self.findings.append(
                error(
                    "E-PARSE",
                    f'{what} has no "name": XNAT fails to read the document (not a validation '
                    "message; the request fails as a parse error).",
                    self.loc,
                    source="xnatnode",
                )
            )
            return ""
        return self.text("name") or ""

    def null_name(self, what: str) -> None:
        """``name`` missing where XNAT's model holds null (outputs, handlers): its validation fails."""
        self.failed = True
        self.findings.append(
            error(
                "E-PARSE",
                f'{what} has no "name": XNAT\'s validation fails with an internal error (null '
                "name) instead of a message.",
                self.loc,
                source="xnatnode",
            )
        )

    def each(
        self, key: str, read: Callable[[dict[str, Any], str, list[Finding]], tuple[_T, bool]],
        into: list[_T],
    ) -> bool:
        """Reads every object of the array ``key`` with ``read`` into ``into``; True if one failed."""
        failed = False
        for item_raw, item_loc in self.objects(key):
            item, bad = read(item_raw, item_loc, self.findings)
            into.append(item)
            failed |= bad
        return failed

    def unknown_keys(self, known: frozenset[str], what: str) -> None:
        for key in self.raw:
            if key not in known:
                self.findings.append(
                    warning(
                        "W-UNKNOWN-KEY",
                        f'unknown {what} key "{key}": XNAT silently ignores it (a typo?).',
                        pointer(self.loc, key),
                    )
                )


# --- readers per object --------------------------------------------------------------------------


def _read_mount(raw: dict[str, Any], loc: str, out: list[Finding]) -> tuple[Mount, bool]:
    r = _Reader(raw, loc, out)
    mount = Mount(r.text("name") or "", r.text("path"), bool(r.flag("writable")), loc)
    r.unknown_keys(_MOUNT_KEYS, "mount")
    return mount, r.failed


def _read_input(raw: dict[str, Any], loc: str, out: list[Finding]) -> tuple[CommandInput, bool]:
    r = _Reader(raw, loc, out)
    item = CommandInput(
        name=r.required_name("A command input"),
        loc=loc,
        type=r.text("type") or "string",
        required=bool(r.flag("required")),
        default_value=r.text("default-value"),
        raw_replacement_key=r.text("replacement-key"),
        command_line_flag=r.text("command-line-flag"),
        command_line_separator=r.text("command-line-separator"),
        true_value=r.text("true-value"),
        false_value=r.text("false-value"),
        select_values=r.texts("select-values"),
        multiple_delimiter=r.text("multiple-delimiter"),
        matcher=r.text("matcher"),
        sensitive=r.flag("sensitive"),
    )
    r.text("label")
    r.text("description")
    r.unknown_keys(_INPUT_KEYS, "command input")
    return item, r.failed


def _read_output(raw: dict[str, Any], loc: str, out: list[Finding]) -> tuple[Output, bool]:
    r = _Reader(raw, loc, out)
    item = Output(
        name=r.text("name"),
        loc=loc,
        mount=r.text("mount"),
        path=r.text("path"),
        glob=r.text("glob"),
        required=r.flag("required"),
    )
    r.text("description")
    r.unknown_keys(_OUTPUT_KEYS, "output")
    if item.name is None:
        r.null_name("An output")
    return item, r.failed


def _read_wrapper_input(
    raw: dict[str, Any], loc: str, out: list[Finding], *, kind: Literal["external", "derived"]
) -> tuple[WrapperInput, bool]:
    r = _Reader(raw, loc, out)
    item = WrapperInput(
        kind=kind,
        name=r.required_name(f"A {kind} wrapper input"),
        loc=loc,
        type=or_default(r.text("type"), "string"),
        matcher=r.text("matcher"),
        default_value=r.text("default-value"),
        raw_replacement_key=r.text("replacement-key"),
        required=r.flag("required") is not False,
        load_children=r.flag("load-children") is not False,
        user_settable=r.flag("user-settable"),
        sensitive=r.flag("sensitive"),
        provides_value_for_command_input=r.text("provides-value-for-command-input"),
        provides_files_for_command_mount=r.text("provides-files-for-command-mount"),
        via_setup_command=r.text("via-setup-command"),
    )
    r.text("label")
    r.text("description")
    if kind == "derived":
        item.derived_from_wrapper_input = r.text("derived-from-wrapper-input")
        item.derived_from_xnat_object_property = r.text("derived-from-xnat-object-property")
        item.multiple = bool(r.flag("multiple"))
        item.parser = r.text("parser")
    r.unknown_keys(_DERIVED_KEYS if kind == "derived" else _EXTERNAL_KEYS, f"{kind} input")
    return item, r.failed


def _read_handler(
    raw: dict[str, Any], loc: str, out: list[Finding], *, route: Route
) -> tuple[OutputHandler, bool]:
    r = _Reader(raw, loc, out)
    parent = r.text("as-a-child-of")
    legacy = r.text("as-a-child-of-wrapper-input")
    item = OutputHandler(
        name=r.text("name"),
        loc=loc,
        accepts_command_output=r.text("accepts-command-output"),
        as_a_child_of=parent,
        via_wrapup_command=r.text("via-wrapup-command"),
        type=or_default(r.text("type"), "Resource"),
        label=r.text("label"),
        format=r.text("format"),
        description=r.text("description"),
        content=r.text("content"),
        tags=r.texts("tags"),
        xsi_type=r.text("xsi-type"),
    )
    if parent is None and legacy is not None and route != "update":
        item.as_a_child_of, item.legacy_parent_key = legacy, True
    known = _HANDLER_KEYS if route != "update" else _HANDLER_KEYS - {"as-a-child-of-wrapper-input"}
    r.unknown_keys(known, "output handler")
    if item.name is None:
        r.null_name("An output handler")
    return item, r.failed


def _read_wrapper(
    raw: dict[str, Any], loc: str, out: list[Finding], *, route: Route
) -> tuple[Wrapper, bool]:
    r = _Reader(raw, loc, out)
    wrapper = Wrapper(
        name=r.text("name") or "",
        loc=loc,
        label=r.text("label"),
        description=r.text("description"),
        contexts=list(dict.fromkeys(r.texts("contexts"))),
    )
    failed = r.each(
        "external-inputs", partial(_read_wrapper_input, kind="external"), wrapper.external_inputs
    )
    failed |= r.each(
        "derived-inputs", partial(_read_wrapper_input, kind="derived"), wrapper.derived_inputs
    )
    failed |= r.each("output-handlers", partial(_read_handler, route=route), wrapper.output_handlers)
    r.unknown_keys(_WRAPPER_KEYS, "wrapper")
    return wrapper, failed or r.failed


def _read_secret(raw: dict[str, Any], loc: str, out: list[Finding]) -> tuple[Secret, bool]:
    r = _Reader(raw, loc, out)
    secret = Secret(loc)
    failed = False
    for part, expected_type in (
        ("source", "system-property"),
        ("destination", "environment-variable"),
    ):
        value = raw.get(part)
        if not isinstance(value, dict):
            r.fail(part, "an object", value)
            continue
        pr = _Reader(value, pointer(loc, part), out)
        kind, ident = pr.text("type"), pr.text("identifier")
        pr.unknown_keys(_SECRET_PART_KEYS, f"secret {part}")
        if kind != expected_type:
            failed = True
            out.append(
                error(
                    "E-PARSE",
                    f'XNAT cannot read secret {part} type "{kind}": the only known type is '
                    f'"{expected_type}".',
                    pointer(loc, part, "type"),
                    source="xnatnode",
                )
            )
        failed |= pr.failed
        if part == "source":
            secret.source_type, secret.source_identifier = kind, ident
        else:
            secret.destination_type, secret.destination_identifier = kind, ident
    r.unknown_keys(_SECRET_KEYS, "secret")
    return secret, failed or r.failed


def read_command(
    raw: object, loc: str = "", route: Route = "post", pulled_image: str | None = None
) -> tuple[Command | None, list[Finding]]:
    """Read one command object. Returns ``(None, findings)`` when XNAT could not read it at all.

    ``pulled_image`` is the image name XNAT is given besides the JSON: the name the admin pulls the
    image by (label route) or ``POST /xapi/commands?image=`` (post route). It replaces the
    document's ``image`` exactly as XNAT does; the update route has no such parameter.
    """
    findings: list[Finding] = []
    if not isinstance(raw, dict):
        findings.append(
            error(
                "E-PARSE",
                f"A command must be a JSON object, got {_kind(raw)}.",
                loc or "/",
                source="xnatnode",
            )
        )
        return None, findings
    r = _Reader(raw, loc, findings)
    written = r.text("image")
    cmd = Command(
        loc=loc,
        route=route,
        name=r.text("name"),
        label=r.text("label"),
        description=r.text("description"),
        version=r.text("version"),
        schema_version=r.text("schema-version"),
        info_url=r.text("info-url"),
        image_as_written=written,
        container_name=r.text("container-name"),
        type=or_default(r.text("type"), "docker"),
        index=r.text("index"),
        hash=r.text("hash"),
        working_directory=r.text("working-directory"),
        command_line=r.text("command-line"),
        override_entrypoint=r.flag("override-entrypoint"),
        environment_variables=r.mapping("environment-variables") or {},
        ports=r.mapping("ports") or {},
        reserve_memory=r.integer("reserve-memory"),
        limit_memory=r.integer("limit-memory"),
        limit_cpu=r.number("limit-cpu"),
        runtime=r.text("runtime"),
        auto_remove=r.flag("auto-remove"),
        shm_size=r.integer("shm-size"),
        network=r.text("network"),
        container_labels=r.mapping("container-labels"),
        gpus=r.text("gpus"),
        generic_resources=r.mapping("generic-resources"),
        ulimits=r.mapping("ulimits"),
        visibility=r.text("visibility"),
        keys=frozenset(raw),
    )
    # The creation DTO reads the key "ipcMode"; only the update route reads "ipc-mode" (A.2).
    cmd.ipc_mode = r.text("ipc-mode" if route == "update" else "ipcMode")
    if route != "update":
        r.text("ipc-mode")
    if route == "update":
        cmd.image = written
    elif pulled_image and pulled_image.strip():
        cmd.image, cmd.image_as_written = default_tag(pulled_image), pulled_image
    else:
        cmd.image = default_tag(written)
    failed = r.each("mounts", _read_mount, cmd.mounts)
    failed |= r.each("inputs", _read_input, cmd.inputs)
    failed |= r.each("outputs", _read_output, cmd.outputs)
    failed |= r.each("xnat", partial(_read_wrapper, route=route), cmd.wrappers)
    failed |= r.each("secrets", _read_secret, cmd.secrets)
    known = _COMMAND_KEYS - ({"ipcMode"} if route == "update" else set())
    r.unknown_keys(known, "top-level")
    return (None if failed or r.failed else cmd), findings
