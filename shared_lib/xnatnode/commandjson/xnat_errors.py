"""XNAT's own validation (``Command.validate`` of the Container Service plugin, spec A.14).

Messages, their order and their quirks (double spaces, ``null``, missing spaces, Java ``HashSet``
order in "Known ..." lists) are those of the plugin source, so a message printed here is the line
XNAT puts after ``Invalid command:`` in its HTTP 400 answer. Two rules introduced in 3.7 (secrets
destinations, ``visibility``) are enforced with texts of our own (source ``xnat-unverified``).
"""

from __future__ import annotations

import json
import re

from xnatnode.commandjson.findings import Finding, Source, error, pointer
from xnatnode.commandjson.javaisms import JavaHashSet, is_blank, jstr, split_count
from xnatnode.commandjson.model import Command, CommandInput, WrapperInput, has_tag

COMMAND_TYPES = ("docker", "docker-setup", "docker-wrapup")
VISIBILITIES = ("public", "private", "protected")
MULTIPLE_DELIMITERS = ("quoted-space", "space", "comma", "flag")
WRAPPER_INPUT_TYPES = (
    "string", "boolean", "number", "file", "Directory", "File[]", "File", "Project",
    "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor", "Resource",
    "Config",
)  # fmt: skip
HANDLER_TYPES = ("Resource", "Assessor", "Scan")
#: Environment variables the plugin injects and a secret may not target (A.8).
RESERVED_SECRET_NAMES = ("XNAT_USER", "XNAT_PASS", "XNAT_HOST")

_BAD_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")

_SELECT_NOTE = (
    "Note that command inputs with values provided by xnat inputs shouldn't be designated as "
    "select (they'll automatically render as a select if their xnat input resolves to more than "
    "one value)."
)


class _Errors:
    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, code: str, message: str, location: str, source: Source = "xnat") -> None:
        self.items.append(error(code, message, location, source))


def _is_select(item: CommandInput) -> bool:
    return item.type in ("select-one", "select-many")


def _input_errors(item: CommandInput, out: _Errors, prefix: str) -> None:
    loc = item.loc
    if is_blank(item.name):
        out.add("E-INPUT-NAME-BLANK", prefix + "Command input name cannot be blank", loc)
    if _BAD_NAME_CHAR.search(item.name):
        out.add(
            "E-INPUT-NAME-CHARS",
            f'{prefix}Command input "{item.name}" name should contain only alphanumeric, _ and - '
            "characters.",
            pointer(loc, "name"),
        )
    md = item.multiple_delimiter
    if md is not None and md not in MULTIPLE_DELIMITERS:
        out.add(
            "E-INPUT-DELIMITER",
            f'{prefix}Invalid multiple-delimiter "{md}", choose from: '
            + ", ".join(MULTIPLE_DELIMITERS),
            pointer(loc, "multiple-delimiter"),
        )
    values = item.select_values
    if _is_select(item) and not values:
        out.add(
            "E-INPUT-SELECT-NO-VALUES",
            f'{prefix}Command input "{item.name}" is designated as type "{item.type}" but doesn\'t '
            f"list select-values. {_SELECT_NOTE}",
            pointer(loc, "type"),
        )
    elif not _is_select(item) and values:
        out.add(
            "E-INPUT-SELECT-VALUES-NOT-SELECT",
            f'{prefix}Command input "{item.name}" has select-values set, but is not a select type.',
            pointer(loc, "select-values"),
        )
    default = item.default_value
    default_list: list[str | None] | None = None
    if item.type == "select-many" and default is not None:
        try:
            parsed = json.loads(default)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(not isinstance(v, dict | list) for v in parsed):
            default_list = [None if v is None else jstr(v) for v in parsed]
    if default_list is not None:
        if default_list and values and not set(default_list) <= set(values):
            out.add(
                "E-INPUT-DEFAULT-NOT-IN-SELECT",
                f'{prefix}Command input "{item.name}" one or more default values in '
                f'"{jstr(default_list)}" is not in the list of select-values "{jstr(values)}"',
                pointer(loc, "default-value"),
            )
    elif default is not None and values and default not in values:
        out.add(
            "E-INPUT-DEFAULT-NOT-IN-SELECT",
            f'{prefix}Command input "{item.name}" default value "{default}" is not one of the '
            f'select-values "{jstr(values)}"',
            pointer(loc, "default-value"),
        )


def _wrapper_input_errors(item: WrapperInput, out: _Errors, prefix: str) -> None:
    loc, name = item.loc, item.name
    if is_blank(name):
        out.add(
            "E-WRAPPER-INPUT-NAME-BLANK",
            prefix + "Command wrapper input name cannot be blank.",
            loc,
        )
    if item.type not in WRAPPER_INPUT_TYPES:
        out.add(
            "E-WRAPPER-INPUT-TYPE",
            f'{prefix}Command wrapper input "{name}" - Unknown type "{item.type}". Known types: '
            + ", ".join(WRAPPER_INPUT_TYPES),
            pointer(loc, "type"),
        )
    if not is_blank(item.via_setup_command) and is_blank(item.provides_files_for_command_mount):
        out.add(
            "E-WRAPPER-INPUT-VIA-SETUP",
            f'{prefix}Command wrapper input "{name}" - "via-setup-command": '
            f'"{item.via_setup_command}" - You cannot set "via-setup-command" on an input that '
            "does not provide files for a command mount.",
            pointer(loc, "via-setup-command"),
        )
    if _BAD_NAME_CHAR.search(name):
        out.add(
            "E-WRAPPER-INPUT-NAME-CHARS",
            f'{prefix}Command wrapper input "{name}" name should contain only alphanumeric, _ and '
            "- characters.",
            pointer(loc, "name"),
        )
    if item.kind != "derived":
        return
    if is_blank(item.derived_from_wrapper_input):
        out.add(
            "E-DERIVED-FROM-BLANK",
            f'{prefix}Command wrapper input "{name}" - property "derived-from-wrapper-input" '
            "cannot be blank.",
            loc,
        )
    if item.multiple:
        if not is_blank(item.provides_files_for_command_mount):
            out.add(
                "E-DERIVED-MULTIPLE-FILES",
                f'{prefix}derived input "{name}" is designated as a "multiple" input, which means '
                "it cannot provide files for command mounts (consider mounting the parent "
                "element).",
                pointer(loc, "provides-files-for-command-mount"),
            )
        if is_blank(item.provides_value_for_command_input):
            # XNAT's text lacks the space between "which" and "means".
            out.add(
                "E-DERIVED-MULTIPLE-NO-VALUE",
                f'{prefix}derived input "{name}" is designated as a "multiple" input, '
                "whichmeans it must directly provide values for some command input.",
                pointer(loc, "multiple"),
            )


def _feeds_select(
    item: WrapperInput, inputs: dict[str, CommandInput], out: _Errors, prefix: str
) -> None:
    target = inputs.get(item.provides_value_for_command_input or "\0")
    if target is not None and (_is_select(target) or target.select_values):
        out.add(
            "E-WRAPPER-INPUT-FEEDS-SELECT",
            f'{prefix}{item.kind} input "{item.name}" provides values for command input '
            f'"{target.name}", which is a select type. {_SELECT_NOTE}',
            pointer(item.loc, "provides-value-for-command-input"),
        )


def _name_unique(
    item: WrapperInput, names: JavaHashSet, by_name: dict[str, WrapperInput], out: _Errors,
    prefix: str,
) -> None:
    """Adds the input's name to the wrapper's (external and derived inputs share one set)."""
    if not names.add(item.name):
        out.add(
            "E-WRAPPER-INPUT-NAME-DUPLICATE",
            f'{prefix}{item.kind} input name "{item.name}" is not unique.',
            item.loc,
        )
    else:
        by_name[item.name] = item


def _docker_errors(cmd: Command, out: _Errors, head: str) -> None:
    for key, value in (cmd.ulimits or {}).items():
        if value == "" or (":" in value and split_count(value, ":") > 2):
            out.add(
                "E-ULIMIT-FORMAT",
                f'{head} incorrect ulimit format: {value}. Should be "name" : '
                '"softlimit:hardlimit" or "name" : "limit"',
                pointer(cmd.loc, "ulimits", key),
            )

    mount_names = JavaHashSet(len(cmd.mounts))
    for mount in cmd.mounts:
        if not mount_names.add(mount.name):
            out.add(
                "E-MOUNT-NAME-DUPLICATE",
                f'{head}mount name "{mount.name}" is not unique.',
                mount.loc,
            )
        if is_blank(mount.name):
            out.add("E-MOUNT-NAME-BLANK", head + "Mount name cannot be blank.", mount.loc)
        if is_blank(mount.path):
            out.add(
                "E-MOUNT-PATH-BLANK",
                f'{head}Mount "{mount.name}" path cannot be blank.',
                mount.loc,
            )
    known_mounts = mount_names.join()

    inputs: dict[str, CommandInput] = {}
    for cinput in cmd.inputs:
        if cinput.name in inputs:
            out.add(
                "E-INPUT-NAME-DUPLICATE",
                f'{head}input name "{cinput.name}" is not unique.',
                cinput.loc,
            )
        else:
            inputs[cinput.name] = cinput
        _input_errors(cinput, out, head)

    output_names = JavaHashSet(len(cmd.outputs))
    for output in cmd.outputs:
        name = jstr(output.name)
        if not output_names.add(output.name):
            out.add(
                "E-OUTPUT-NAME-DUPLICATE", f'{head}output name "{name}" is not unique.', output.loc
            )
        if output.mount not in mount_names:
            out.add(
                "E-OUTPUT-MOUNT-UNKNOWN",
                f'{head}output "{name}" references unknown mount "{jstr(output.mount)}". '
                f"Known mounts: {known_mounts}",
                pointer(output.loc, "mount"),
            )
        if is_blank(output.name):
            out.add("E-OUTPUT-NAME-BLANK", head + "Output name cannot be blank.", output.loc)
        if is_blank(output.mount):
            out.add(
                "E-OUTPUT-MOUNT-BLANK",
                f'{head}Output "{name}" - mount cannot be blank.',
                output.loc,
            )
        if output.name is not None and _BAD_NAME_CHAR.search(output.name):
            out.add(
                "E-OUTPUT-NAME-CHARS",
                f'{head}Command output "{name}" name should contain only alphanumeric, _ and - '
                "characters.",
                pointer(output.loc, "name"),
            )
    known_outputs = output_names.join()

    wrapper_names: set[str] = set()
    for wrapper in cmd.wrappers:
        if wrapper.name in wrapper_names:
            out.add(
                "E-WRAPPER-NAME-DUPLICATE",
                f'{head}wrapper name "{wrapper.name}" is not unique.',
                wrapper.loc,
            )
        wrapper_names.add(wrapper.name)
        prefix = f'{head}wrapper "{wrapper.name}" - '

        wrapper_inputs = JavaHashSet(len(wrapper.external_inputs) + len(wrapper.derived_inputs))
        by_name: dict[str, WrapperInput] = {}
        for winput in wrapper.external_inputs:
            _name_unique(winput, wrapper_inputs, by_name, out, prefix)
            _feeds_select(winput, inputs, out, prefix)
            _wrapper_input_errors(winput, out, prefix)

        multiple: set[str] = set()
        for winput in wrapper.derived_inputs:
            _name_unique(winput, wrapper_inputs, by_name, out, prefix)
            parent = winput.derived_from_wrapper_input
            if winput.name == parent:
                out.add(
                    "E-DERIVED-FROM-SELF",
                    f'{prefix}derived input "{winput.name}" is derived from itself.',
                    pointer(winput.loc, "derived-from-wrapper-input"),
                )
            if parent not in wrapper_inputs:
                out.add(
                    "E-DERIVED-FROM-UNKNOWN",
                    f'{prefix}derived input "{winput.name}" is derived from an unknown XNAT input '
                    f'"{jstr(parent)}". Known inputs: {wrapper_inputs.join()}',
                    pointer(winput.loc, "derived-from-wrapper-input"),
                )
            _feeds_select(winput, inputs, out, prefix)
            _wrapper_input_errors(winput, out, prefix)
            if winput.multiple:
                multiple.add(winput.name)
        known_inputs = wrapper_inputs.join()

        handler_names = JavaHashSet(len(wrapper.output_handlers))
        handled: set[str | None] = set()
        for handler in wrapper.output_handlers:
            hname, loc = jstr(handler.name), handler.loc
            if handler.accepts_command_output not in output_names:
                out.add(
                    "E-HANDLER-OUTPUT-UNKNOWN",
                    f"{prefix}output handler refers to unknown command output "
                    f'"{jstr(handler.accepts_command_output)}". Known outputs: {known_outputs}.',
                    pointer(loc, "accepts-command-output"),
                )
            else:
                handled.add(handler.accepts_command_output)
            target = handler.as_a_child_of
            if target not in wrapper_inputs and target not in handler_names:
                out.add(
                    "E-HANDLER-PARENT-UNKNOWN",
                    f"{prefix}output handler does not refer to a known wrapper input or output. "
                    f'"as-a-child-of": "{jstr(target)}".\nKnown inputs: {known_inputs}.'
                    f"\nKnown outputs (so far): {handler_names.join()}.",
                    pointer(loc, "as-a-child-of"),
                )
            if target in multiple:
                out.add(
                    "E-HANDLER-PARENT-MULTIPLE",
                    f'{prefix}output handler "{hname}" has "as-a-child-of": "{target}", but that '
                    "input is set to allow multiple values.",
                    pointer(loc, "as-a-child-of"),
                )
            parent_input = by_name.get(target) if target is not None else None
            prop = parent_input.derived_from_xnat_object_property if parent_input else None
            if (
                parent_input
                and parent_input.kind == "derived"
                and prop is not None
                and prop != "uri"
            ):
                out.add(
                    "E-HANDLER-PARENT-PROPERTY",
                    f'{prefix}output handler "{hname}" has "as-a-child-of": "{target}", but that '
                    f'input\'s value is set to "{prop}", which will cause the upload to fail (a '
                    '"uri" is required for upload).',
                    pointer(loc, "as-a-child-of"),
                )
            if not handler_names.add(handler.name):
                out.add(
                    "E-HANDLER-NAME-DUPLICATE",
                    f'{prefix}output handler name "{hname}" is not unique.',
                    loc,
                )
            _handler_errors(handler.name, handler.accepts_command_output, target, handler.type,
                            handler.label, loc, out, prefix)  # fmt: skip

        not_handled = JavaHashSet.copy_of(output_names.ordered())
        for handled_name in handled:
            not_handled.discard(handled_name)
        for unhandled in not_handled.ordered():
            out.add(
                "E-OUTPUT-UNHANDLED",
                f'{prefix}command output "{jstr(unhandled)}" is not handled by any output handler.',
                pointer(wrapper.loc, "output-handlers"),
            )
        if is_blank(wrapper.name):
            out.add(
                "E-WRAPPER-NAME-BLANK", head + "Command wrapper name cannot be blank.", wrapper.loc
            )


def _handler_errors(
    name: str | None,
    output: str | None,
    target: str | None,
    kind: str,
    label: str | None,
    loc: str,
    out: _Errors,
    prefix: str,
) -> None:
    if is_blank(name):
        out.add(
            "E-HANDLER-NAME-BLANK", prefix + "Command wrapper output - name cannot be blank.", loc
        )
    own = f'{prefix}Command wrapper output "{jstr(name)}" - '
    if is_blank(output):
        out.add(
            "E-HANDLER-OUTPUT-BLANK",
            own + 'property "accepts-command-output" cannot be blank.',
            pointer(loc, "accepts-command-output"),
        )
    if is_blank(target):
        out.add(
            "E-HANDLER-PARENT-BLANK",
            own + 'property "as-a-child-of" cannot be blank.',
            pointer(loc, "as-a-child-of"),
        )
    if kind not in HANDLER_TYPES:
        out.add(
            "E-HANDLER-TYPE",
            f'{own}Unknown type "{kind}". Known types: ' + ", ".join(HANDLER_TYPES),
            pointer(loc, "type"),
        )
    if kind == "Resource" and is_blank(label):
        out.add("E-HANDLER-LABEL-BLANK", own + "when type = Resource, label cannot be blank.", loc)
    if name is not None and _BAD_NAME_CHAR.search(name):
        out.add(
            "E-HANDLER-NAME-CHARS",
            f'{prefix}Command wrapper output "{name}" name should contain only alphanumeric, _ '
            "and - characters.",
            pointer(loc, "name"),
        )


def _special_errors(cmd: Command, out: _Errors, head: str, what: str) -> None:
    declared = (
        ("mounts", cmd.mounts, "mounts"),
        ("inputs", cmd.inputs, "inputs"),
        ("outputs", cmd.outputs, "outputs"),
        ("xnat", cmd.wrappers, "wrappers"),
        ("environment-variables", cmd.environment_variables, "environment variables"),
        ("ports", cmd.ports, "ports"),
    )
    for key, value, noun in declared:
        if value:
            out.add(
                "E-SPECIAL-DECLARES",
                f"{head} {what} commands cannot declare any {noun}.",
                pointer(cmd.loc, key),
            )
    if cmd.secrets:
        out.add(
            "E-SPECIAL-DECLARES",
            f"{head} {what} commands cannot declare any secrets.",
            pointer(cmd.loc, "secrets"),
            source="xnat-unverified",
        )


def _secret_errors(cmd: Command, out: _Errors, head: str) -> None:
    for secret in cmd.secrets:
        name = secret.destination_identifier
        loc = pointer(secret.loc, "destination", "identifier")
        if name in RESERVED_SECRET_NAMES:
            out.add(
                "E-SECRET-RESERVED",
                f'{head}secret destination "{name}" is reserved: the Container Service sets '
                + ", ".join(RESERVED_SECRET_NAMES)
                + " itself.",
                loc,
                source="xnat-unverified",
            )
        elif name is not None and name in cmd.environment_variables:
            out.add(
                "E-SECRET-ENV-CLASH",
                f'{head}secret destination "{name}" is also defined in environment-variables.',
                loc,
                source="xnat-unverified",
            )


def xnat_errors(cmd: Command) -> list[Finding]:
    """The errors XNAT's validation reports for ``cmd``, in XNAT's order."""
    out = _Errors()
    if is_blank(cmd.name):
        out.add("E-COMMAND-NAME-BLANK", "Command name cannot be blank.", pointer(cmd.loc, "name"))
    head = f'Command "{jstr(cmd.name)}" - '
    # Label route without a known pull name: XNAT fills "image" itself, so nothing to check.
    image_known = not (cmd.route == "label" and cmd.image is None)
    if image_known and is_blank(cmd.image):
        out.add("E-IMAGE-BLANK", head + "image name cannot be blank.", pointer(cmd.loc, "image"))
    if cmd.image and not has_tag(cmd.image):
        out.add(
            "E-IMAGE-NO-TAG",
            head + "image name must include version tag. e.g. image_name:tag",
            pointer(cmd.loc, "image"),
        )
    if cmd.type == "docker":
        _docker_errors(cmd, out, head)
    elif cmd.type == "docker-setup":
        _special_errors(cmd, out, head, "Setup")
    elif cmd.type == "docker-wrapup":
        _special_errors(cmd, out, head, "Wrapup")
    else:
        out.add(
            "E-TYPE-UNKNOWN",
            f'{head}Cannot validate command of type "{cmd.type}". Known types: '
            + ", ".join(COMMAND_TYPES),
            pointer(cmd.loc, "type"),
        )
    if cmd.visibility is not None and cmd.visibility not in VISIBILITIES:
        out.add(
            "E-VISIBILITY",
            f'{head}visibility "{cmd.visibility}" is not one of: ' + ", ".join(VISIBILITIES) + ".",
            pointer(cmd.loc, "visibility"),
            source="xnat-unverified",
        )
    _secret_errors(cmd, out, head)
    return out.items
