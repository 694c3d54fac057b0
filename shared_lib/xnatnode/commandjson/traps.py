"""Warnings: documents XNAT accepts but that break, or behave surprisingly, at launch.

Taken from the spec's list after A.14, B.3-B.6 and the issues notes (sections 4, 5, 7, 8). Every
warning has a stable ``W-...`` code; ``--strict`` turns them into failures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from xnatnode.commandjson.findings import Finding, pointer, warning
from xnatnode.commandjson.model import (
    INPUT_TYPES,
    Command,
    CommandInput,
    Wrapper,
    WrapperInput,
    has_tag,
)
from xnatnode.commandjson.substrings import KeyIndex

#: Variables the Container Service injects into every container (B.6).
INJECTED_ENV = ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_WORKFLOW_ID", "XNAT_EVENT_ID")
#: Substrings that make XNAT refuse a launch when an input value contains them (B.2, issues 5).
ILLEGAL_SUBSTRINGS = (";", "&&", "||", "`", "(")
#: Wrapper input types whose object can be mounted (A.7).
FILE_PROVIDERS = frozenset(
    {
        "Project",
        "ProjectAsset",
        "SubjectAssessor",
        "Session",
        "Scan",
        "Assessor",
        "Resource",
        "File",
    }
)
_XNAT_OBJECTS = frozenset(
    {"Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor",
     "Resource", "File"}
)  # fmt: skip
#: A.7.1: derived type -> parent types it can be derived from (empty: never resolves).
DERIVABLE_FROM: dict[str, frozenset[str]] = {
    "string": _XNAT_OBJECTS,
    "file": _XNAT_OBJECTS,  # lowercase "file" is stored as string
    "boolean": frozenset(),
    "number": frozenset(),
    "Config": frozenset(),
    "Directory": frozenset({"Resource"}),
    "File": frozenset({"Resource"}),
    "File[]": frozenset({"Resource"}),
    "Project": frozenset(
        {"ProjectAsset", "Subject", "Session", "SubjectAssessor", "Scan", "Assessor"}
    ),
    "ProjectAsset": frozenset({"Project"}),
    "Subject": frozenset({"Project", "Session", "SubjectAssessor"}),
    "SubjectAssessor": frozenset({"Subject"}),
    "Session": frozenset({"Subject", "Scan", "Assessor"}),
    "Scan": frozenset({"Session", "Resource"}),
    "Assessor": frozenset({"Session"}),
    "Resource": frozenset(
        {"Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor"}
    ),
}

#: (derived type, parent type) pairs that pick one child among several (A.7.1 "children").
_DOWNWARD = frozenset(
    {("ProjectAsset", "Project"), ("Subject", "Project"), ("SubjectAssessor", "Subject"),
     ("Session", "Subject"), ("Scan", "Session"), ("Assessor", "Session"), ("File", "Resource")}
    | {("Resource", parent) for parent in DERIVABLE_FROM["Resource"]}
)  # fmt: skip

_WORD_BEFORE = re.compile(r"[A-Za-z0-9_./-]")
_WORD_AFTER = re.compile(r"[A-Za-z0-9_]")
_HASH_TOKEN = re.compile(r"#[^#\s]+#")
_SHELL_VAR = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*")
_REGISTRY_PORT = re.compile(r"^[^/]+:\d+/")


def _templates(cmd: Command, wrapper: Wrapper | None) -> Iterator[tuple[str, str]]:
    """(location, text) of every field XNAT resolves with the raw (all inputs) map (B.3)."""
    loc = cmd.loc
    for key, value in cmd.environment_variables.items():
        yield pointer(loc, "environment-variables", key), key
        yield pointer(loc, "environment-variables", key), value
    for key, value in cmd.ports.items():
        yield pointer(loc, "ports", key), f"{key} {value}"
    for key, value in (cmd.container_labels or {}).items():
        yield pointer(loc, "container-labels", key), value
    for field_name, text in (("working-directory", cmd.working_directory),
                             ("container-name", cmd.container_name)):  # fmt: skip
        if text:
            yield pointer(loc, field_name), text
    for mount in cmd.mounts:
        if mount.path:
            yield pointer(mount.loc, "path"), mount.path
    for output in cmd.outputs:
        if output.path:
            yield pointer(output.loc, "path"), output.path
    if wrapper is None:
        return
    for item in wrapper.inputs:
        for field_name, text in (("matcher", item.matcher), ("parser", item.parser)):
            if text:
                yield pointer(item.loc, field_name), text
    for handler in wrapper.output_handlers:
        for field_name, text in (("label", handler.label), ("format", handler.format),
                                 ("description", handler.description),
                                 ("content", handler.content)):  # fmt: skip
            if text:
                yield pointer(handler.loc, field_name), text
        for index, tag in enumerate(handler.tags):
            yield pointer(handler.loc, "tags", index), tag


def _glued(key: str, start: int, text: str) -> bool:
    """True when the occurrence of ``key`` at ``start`` is glued to word or path characters."""
    if not (_WORD_AFTER.fullmatch(key[0]) and _WORD_AFTER.fullmatch(key[-1])):
        return False
    end = start + len(key)
    return bool(
        (start > 0 and _WORD_BEFORE.fullmatch(text[start - 1]))
        or (end < len(text) and _WORD_AFTER.fullmatch(text[end]))
    )


def _embedded(index: KeyIndex, text: str) -> set[str]:
    """The keys that occur in ``text`` glued to word or path characters (e.g. ``/input``)."""
    return {key for key, start in index.occurrences(text) if _glued(key, start, text)}


class _Warnings:
    def __init__(self) -> None:
        self.items: list[Finding] = []
        self._seen: set[tuple[str, str, str]] = set()

    def add(self, code: str, message: str, location: str) -> None:
        if (code, message, location) not in self._seen:
            self._seen.add((code, message, location))
            self.items.append(warning(code, message, location))


def _command_line_warnings(cmd: Command, out: _Warnings) -> None:
    line, loc = cmd.command_line, pointer(cmd.loc, "command-line")
    if line is None:
        out.add(
            "W-NO-COMMAND-LINE",
            'no "command-line": XNAT passes null to its tokenizer at launch; use "" to run the '
            "image's default command.",
            cmd.loc,
        )
        return
    if "XNAT_PASS" in line:
        out.add(
            "W-XNAT-PASS-ON-COMMAND-LINE",
            "XNAT_PASS appears on the command line: the token's secret would show in the "
            "process list and container inspect output; read it from the environment instead.",
            loc,
        )
    if cmd.override_entrypoint and cmd.type == "docker":
        out.add(
            "W-SHELL-FORM",
            '"override-entrypoint": true (shell form): the image ENTRYPOINT is bypassed and the '
            "line runs under /bin/sh -c, where input values can inject shell syntax (| & > $VAR).",
            pointer(cmd.loc, "override-entrypoint"),
        )
    elif cmd.override_entrypoint:
        out.add(
            "W-OVERRIDE-ENTRYPOINT-IGNORED",
            '"override-entrypoint" is not applied to setup/wrapup commands: their line is always '
            "tokenized and passed to the image ENTRYPOINT.",
            pointer(cmd.loc, "override-entrypoint"),
        )
    if (not cmd.override_entrypoint or cmd.type != "docker") and _SHELL_VAR.search(line):
        out.add(
            "W-SHELL-VAR-NOT-EXPANDED",
            "the command line uses $VARIABLES but runs without a shell (exec form): they are "
            "passed literally; read environment variables inside the program.",
            loc,
        )
    if cmd.type != "docker":
        return
    keys = {item.replacement_key for item in cmd.inputs}
    wrapper_keys = {item.replacement_key for w in cmd.wrappers for item in w.inputs}
    tokens = list(dict.fromkeys(_HASH_TOKEN.findall(line)))
    # A token inside a longer key (e.g. #A# in #A#B#) is that key's text, not a stray token.
    token_index = KeyIndex(tokens)
    inside_keys = {token for key in keys for token in token_index.found_in(key)}
    for token in tokens:
        if token in inside_keys:
            continue
        if token in wrapper_keys:
            message = (
                f"{token} is a wrapper-input key: XNAT never substitutes those in the command "
                "line, so it stays literally; route the value through a command input."
            )
        else:
            message = f"{token} matches no command input's replacement key: it stays literally."
        out.add("W-UNRESOLVED-KEY-ON-COMMAND-LINE", message, loc)


#: Shell syntax that means nothing without a shell (issue 8 item 1; ``$(``, backtick, ``;`` and
#: ``&&`` are also what XNAT's illegal-string guard refuses in launch values).
_SHELL_SYNTAX = (";", "$(", "`", "&&", "||")


def _quoted(line: str) -> list[bool]:
    """Per character of ``line``: inside quotes as XNAT's tokenizer (ShellSplitter) reads them
    (single and double quotes; a backslash escapes the next character outside single quotes)."""
    inside: list[bool] = []
    quote = ""
    escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote and char == quote:
            quote = ""
            inside.append(False)
            continue
        elif not quote and char in "'\"":
            quote = char
            inside.append(False)
            continue
        inside.append(bool(quote))
    return inside


def user_settable_inputs(cmd: Command) -> list[CommandInput]:
    """Command inputs a launching user can set to any text: not booleans (XNAT renders those
    from the JSON's true/false values), and in some wrapper (or with no wrapper) not filled by a
    wrapper input marked ``"user-settable": false`` (XNAT treats a missing flag as true)."""
    locked_per_wrapper = [
        {item.provides_value_for_command_input for item in wrapper.inputs
         if item.user_settable is False and item.provides_value_for_command_input}
        for wrapper in cmd.wrappers
    ] or [set()]
    return [
        item for item in cmd.inputs
        if item.type != "boolean" and any(item.name not in locked for locked in locked_per_wrapper)
    ]


def _outside(text: str, line: str, in_key: bytearray) -> bool:
    """Whether ``text`` occurs in ``line`` somewhere not wholly inside a replacement key."""
    start = line.find(text)
    while start >= 0:
        if not all(in_key[start : start + len(text)]):
            return True
        start = line.find(text, start + 1)
    return False


def _launch_value_warnings(cmd: Command, out: _Warnings) -> None:
    """Launch values reach an exec-form command line unquoted; shell syntax that stays literal."""
    line = cmd.command_line
    if not line or cmd.type != "docker" or cmd.override_entrypoint:
        return
    loc = pointer(cmd.loc, "command-line")
    keys = {item.replacement_key: item for item in user_settable_inputs(cmd)}
    found_keys = list(KeyIndex(item.replacement_key for item in cmd.inputs).occurrences(line))
    inside = _quoted(line)
    unquoted = {
        key for key, start in found_keys
        if key in keys and not (inside[start] and inside[start + len(key) - 1])
    }
    for key, item in keys.items():
        if key in unquoted:
            out.add(
                "W-UNQUOTED-LAUNCH-VALUE",
                f'user-settable input "{item.name}" reaches the command line unquoted: XNAT inserts '
                "launch values as they are and splits the line on spaces, so a value such as "
                '"8 --xnat-host http://elsewhere" becomes extra arguments. Quote the key '
                f"('{key}', with \"command-line-separator\": \"=\" when the input has a flag) "
                "and check the value in the program (a quote inside the value still breaks out).",
                pointer(item.loc, "replacement-key"),
            )
    # Shell syntax written in the template itself, not inside a replacement key.
    in_key = bytearray(len(line))
    for key, start in found_keys:
        in_key[start : start + len(key)] = b"\x01" * len(key)
    found = [syntax for syntax in _SHELL_SYNTAX if _outside(syntax, line, in_key)]
    if found:
        out.add(
            "W-SHELL-SYNTAX-IN-EXEC-FORM",
            f"the command line holds shell syntax ({', '.join(found)}) but runs without a shell "
            '("override-entrypoint": false): XNAT splits it into arguments, so the program '
            "receives these characters literally and nothing is chained or substituted.",
            loc,
        )


def _replacement_key_warnings(cmd: Command, out: _Warnings) -> None:
    scoped: list[Wrapper | None] = [*cmd.wrappers] or [None]
    for wrapper in scoped:
        scopes: list[tuple[str, str]] = [(item.replacement_key, item.loc) for item in cmd.inputs]
        if wrapper is not None:
            scopes += [(item.replacement_key, item.loc) for item in wrapper.inputs]
        index = KeyIndex(key for key, _ in scopes)
        # key -> the longer keys it occurs in, in document order
        containers: dict[str, dict[str, None]] = {}
        for other in dict.fromkeys(key for key, _ in scopes):
            for key in index.found_in(other) - {other}:
                containers.setdefault(key, {})[other] = None
        texts = list(_templates(cmd, wrapper))
        # key -> the locations of the texts it is embedded in, in document order
        embedded_in: dict[str, list[str]] = {}
        for text_loc, text in texts:
            for key in _embedded(index, text):
                embedded_in.setdefault(key, []).append(text_loc)
        for key, loc in scopes:
            for other in containers.get(key, {}):
                out.add(
                    "W-REPLACEMENT-KEY-SUBSTRING",
                    f'replacement key "{key}" is a substring of key "{other}": substitution '
                    "order is unspecified, so one can corrupt the other; use bracketed keys "
                    "like #NAME#.",
                    pointer(loc, "replacement-key"),
                )
        for key, loc in scopes:
            for text_loc in embedded_in.get(key, []):
                out.add(
                    "W-REPLACEMENT-KEY-IN-TEXT",
                    f'replacement key "{key}" also occurs inside literal text at {text_loc} '
                    "and would be replaced there; use a bracketed key like #NAME#.",
                    pointer(loc, "replacement-key"),
                )
    in_line = _embedded(KeyIndex(item.replacement_key for item in cmd.inputs), cmd.command_line or "")
    for item in cmd.inputs:
        if item.replacement_key in in_line:
            out.add(
                "W-REPLACEMENT-KEY-IN-TEXT",
                f'replacement key "{item.replacement_key}" also occurs inside literal text of the '
                "command line and would be replaced there; use a bracketed key like #NAME#.",
                pointer(item.loc, "replacement-key"),
            )


def _input_warnings(cmd: Command, out: _Warnings) -> None:
    used_text = (cmd.command_line or "") + "\n".join(t for _, t in _templates(cmd, None))
    used_keys = KeyIndex(item.replacement_key for item in cmd.inputs).found_in(used_text)
    for item in cmd.inputs:
        if item.type not in INPUT_TYPES:
            out.add(
                "W-INPUT-TYPE-UNKNOWN",
                f'command input "{item.name}" has unknown type "{item.type}": XNAT stores it as '
                '"string".',
                pointer(item.loc, "type"),
            )
        if item.replacement_key not in used_keys and cmd.type == "docker":
            out.add(
                "W-INPUT-UNUSED",
                f'command input "{item.name}": its replacement key "{item.replacement_key}" is '
                "not used in the command line or any template, so its value goes nowhere.",
                item.loc,
            )
        if item.type == "select-many" and item.default_value is None:
            out.add(
                "W-SELECT-MANY-NO-DEFAULT",
                f'select-many input "{item.name}" has no default-value: XNAT parses that default '
                "as JSON during validation and may fail with an internal error [inferred from "
                "the plugin source, not run].",
                item.loc,
            )
        _default_warnings(item.default_value, pointer(item.loc, "default-value"), out)


def _default_warnings(value: str | None, loc: str, out: _Warnings) -> None:
    if value is None:
        return
    bad = [s for s in ILLEGAL_SUBSTRINGS if s in value]
    if bad:
        out.add(
            "W-ILLEGAL-STRING-IN-DEFAULT",
            f"default value contains {' '.join(bad)}: XNAT refuses to launch with an input value "
            "containing ; && || ` or (.",
            loc,
        )
    _caret_warning(value, loc, out)


def _caret_warning(text: str, loc: str, out: _Warnings) -> None:
    if any(line.count("^") >= 2 for line in text.splitlines()):
        out.add(
            "W-CARET-PAIR",
            "two ^ on one line: XNAT evaluates ^...^ as a JSONPath expression against the "
            "command and fails the launch if it is invalid.",
            loc,
        )


def _wrapper_warnings(cmd: Command, wrapper: Wrapper, out: _Warnings) -> None:
    loc = wrapper.loc
    if not wrapper.contexts:
        out.add(
            "W-EMPTY-CONTEXTS",
            f'wrapper "{wrapper.name}" has no contexts: it will not appear in Run menus, '
            "commands/available or Event Service actions.",
            pointer(loc, "contexts"),
        )
    if not wrapper.description:
        out.add(
            "W-WRAPPER-NO-DESCRIPTION",
            f'wrapper "{wrapper.name}" has no description (older plugins hide such wrappers).',
            loc,
        )
    if len(wrapper.external_inputs) > 1:
        out.add(
            "W-EXTRA-EXTERNAL-INPUTS",
            f'wrapper "{wrapper.name}" has {len(wrapper.external_inputs)} external inputs: the UI '
            "and the Event Service only supply the first one.",
            pointer(loc, "external-inputs"),
        )
    inputs = {item.name for item in cmd.inputs}
    mounts = {mount.name for mount in cmd.mounts}
    types: dict[str, str] = {}
    value_targets: dict[str, str] = {}
    mount_targets: dict[str, str] = {}
    for item in wrapper.inputs:
        types.setdefault(item.name, item.type)
        _wrapper_input_warnings(item, inputs, mounts, types, out)
        _default_warnings(item.default_value, pointer(item.loc, "default-value"), out)
        target = item.provides_value_for_command_input
        if target and target in value_targets:
            out.add(
                "W-SAME-COMMAND-INPUT-TWICE",
                f'"{value_targets[target]}" and "{item.name}" both provide command input '
                f'"{target}": only the last one declared wins.',
                pointer(item.loc, "provides-value-for-command-input"),
            )
        if target:
            value_targets[target] = item.name
        mount = item.provides_files_for_command_mount
        if mount and mount in mount_targets:
            out.add(
                "W-SAME-MOUNT-TWICE",
                f'"{mount_targets[mount]}" and "{item.name}" both provide mount "{mount}": only '
                "the last one found wins.",
                pointer(item.loc, "provides-files-for-command-mount"),
            )
        if mount:
            mount_targets[mount] = item.name
        for ref in (item.via_setup_command,):
            if ref and _REGISTRY_PORT.match(ref):
                out.add(
                    "W-SPECIAL-REF-REGISTRY-PORT",
                    f'"{ref}": XNAT splits setup/wrapup references on ":", so an image with a '
                    "registry port is mis-parsed.",
                    pointer(item.loc, "via-setup-command"),
                )
    handler_types = {h.name: h.type for h in wrapper.output_handlers}
    for handler in wrapper.output_handlers:
        if handler.legacy_parent_key:
            out.add(
                "W-LEGACY-PARENT-KEY",
                '"as-a-child-of-wrapper-input" is the legacy key: accepted on create only, an '
                'update rejects it ("as-a-child-of" cannot be blank); write "as-a-child-of".',
                pointer(handler.loc, "as-a-child-of-wrapper-input"),
            )
        target = handler.as_a_child_of
        if (
            target in handler_types
            and target not in types
            and (handler.type != "Resource" or handler_types[target] not in ("Assessor", "Scan"))
        ):
            out.add(
                "W-HANDLER-CHAIN",
                f'output handler "{handler.name}" ({handler.type}) is a child of handler '
                f'"{target}" ({handler_types[target]}): only a Resource may target another '
                "handler, and only an Assessor or Scan one; the upload fails at launch.",
                pointer(handler.loc, "as-a-child-of"),
            )
        ref = handler.via_wrapup_command
        if ref and _REGISTRY_PORT.match(ref):
            out.add(
                "W-SPECIAL-REF-REGISTRY-PORT",
                f'"{ref}": XNAT splits setup/wrapup references on ":", so an image with a '
                "registry port is mis-parsed.",
                pointer(handler.loc, "via-wrapup-command"),
            )


def _wrapper_input_warnings(
    item: WrapperInput, inputs: set[str], mounts: set[str], types: dict[str, str], out: _Warnings
) -> None:
    loc = item.loc
    target = item.provides_value_for_command_input
    if target and target not in inputs:
        out.add(
            "W-PROVIDES-VALUE-UNKNOWN",
            f'"{item.name}" provides a value for command input "{target}", which does not '
            "exist: the value goes nowhere.",
            pointer(loc, "provides-value-for-command-input"),
        )
    mount = item.provides_files_for_command_mount
    if mount and mount not in mounts:
        out.add(
            "W-PROVIDES-FILES-UNKNOWN",
            f'"{item.name}" provides files for mount "{mount}", which does not exist.',
            pointer(loc, "provides-files-for-command-mount"),
        )
    if mount and item.type not in FILE_PROVIDERS:
        out.add(
            "W-FILES-FROM-NON-FILE-TYPE",
            f'"{item.name}" is a {item.type}, which has no files to mount: the launch fails.',
            pointer(loc, "provides-files-for-command-mount"),
        )
    if item.kind != "derived":
        return
    allowed = DERIVABLE_FROM.get(item.type)
    if allowed is not None and not allowed:
        out.add(
            "W-DERIVED-NEVER-RESOLVES",
            f'derived input "{item.name}" of type {item.type} never resolves in XNAT 3.7 (use '
            "string).",
            pointer(loc, "type"),
        )
        return
    if item.type in ("string", "file") and not item.derived_from_xnat_object_property:
        out.add(
            "W-DERIVED-STRING-NO-PROPERTY",
            f'derived string input "{item.name}" has no "derived-from-xnat-object-property": '
            "it resolves to nothing.",
            loc,
        )
    parent_type = types.get(item.derived_from_wrapper_input or "")
    if (
        (item.type, parent_type) in _DOWNWARD
        and not item.matcher
        and not item.multiple
        and item.default_value is None
    ):
        out.add(
            "W-DERIVED-NO-MATCHER",
            f'derived input "{item.name}" picks a {item.type} among the {parent_type}\'s children '
            "without a matcher: launches without a user choice (Event Service, bulk) fail as soon "
            "as there are several.",
            loc,
        )
    if allowed and parent_type and parent_type not in allowed:
        out.add(
            "W-DERIVATION-IMPOSSIBLE",
            f'derived input "{item.name}" ({item.type}) cannot be derived from a {parent_type}: '
            "it resolves to nothing at launch.",
            pointer(loc, "derived-from-wrapper-input"),
        )


def _output_warnings(cmd: Command, out: _Warnings) -> None:
    fed = {
        item.provides_files_for_command_mount
        for wrapper in cmd.wrappers
        for item in wrapper.inputs
        if item.provides_files_for_command_mount
    }
    writable = {mount.name: mount.writable for mount in cmd.mounts}
    for output in cmd.outputs:
        path = output.path or ""
        if path.startswith("/") or ".." in path.split("/"):
            out.add(
                "W-OUTPUT-PATH",
                f'output "{output.name}" path "{path}" must be relative to its mount, without "..".',
                pointer(output.loc, "path"),
            )
        if output.glob:
            out.add(
                "W-OUTPUT-GLOB-IGNORED",
                f'output "{output.name}" sets "glob", which XNAT ignores: the whole directory is '
                "uploaded.",
                pointer(output.loc, "glob"),
            )
        if output.mount in fed and not writable.get(output.mount or "", False):
            out.add(
                "W-OUTPUT-ON-READ-ONLY-MOUNT",
                f'output "{output.name}" uses mount "{output.mount}", which a wrapper input fills '
                "and which is not writable: it is mounted read-only, so nothing can be written.",
                pointer(output.loc, "mount"),
            )
        elif output.mount in fed:
            out.add(
                "W-OUTPUT-ON-INPUT-MOUNT",
                f'output "{output.name}" uses mount "{output.mount}", which a wrapper input fills: '
                "the input files are copied in and uploaded again with the output.",
                pointer(output.loc, "mount"),
            )
        if not output.required and cmd.type == "docker":
            out.add(
                "W-OUTPUT-OPTIONAL",
                f'output "{output.name}" is not "required": if its upload fails, XNAT says nothing '
                "and the container still counts as complete.",
                output.loc,
            )
    if cmd.outputs and not cmd.wrappers and cmd.type == "docker":
        out.add(
            "W-OUTPUT-NO-HANDLER",
            "outputs are declared but there is no wrapper, so no output handler uploads them.",
            pointer(cmd.loc, "outputs"),
        )


def _settings_warnings(cmd: Command, out: _Warnings) -> None:
    loc = cmd.loc
    written = cmd.image_as_written
    if cmd.route != "update" and written and not has_tag(written):
        out.add(
            "W-IMAGE-NO-TAG",
            f'image "{written}" has no tag: XNAT registers it as "{written}:latest"; pin an '
            "explicit version tag.",
            pointer(loc, "image"),
        )
    elif cmd.image and cmd.image.endswith(":latest"):
        out.add(
            "W-IMAGE-LATEST",
            f'image "{cmd.image}" uses the moving tag "latest"; pin an explicit version tag.',
            pointer(loc, "image"),
        )
    if cmd.route == "label" and not written and not cmd.image:
        out.add(
            "W-IMAGE-MISSING",
            'no "image": the image label route fills it in, but POSTing this JSON (Kubernetes) '
            "is rejected.",
            loc,
        )
    for name in INJECTED_ENV:
        if name in cmd.environment_variables:
            out.add(
                "W-ENV-INJECTED-NAME",
                f"environment variable {name} is injected by the Container Service: defining it "
                "too makes the launch fail.",
                pointer(loc, "environment-variables", name),
            )
    if cmd.type == "docker":
        for key, code in (
            ("reserve_memory", "W-NO-RESERVE-MEMORY"),
            ("limit_memory", "W-NO-LIMIT-MEMORY"),
        ):
            if getattr(cmd, key) is None:
                out.add(
                    code,
                    f'"{key.replace("_", "-")}" is not set: the container gets no memory '
                    f"{'reservation' if key == 'reserve_memory' else 'limit'} on Docker, Swarm or "
                    "Kubernetes.",
                    loc,
                )
        if not cmd.wrappers:
            out.add(
                "W-NO-WRAPPER",
                'no wrapper ("xnat" is empty): XNAT 3.7 cannot launch a command without one.',
                pointer(loc, "xnat"),
            )
    if (
        cmd.reserve_memory is not None
        and cmd.limit_memory is not None
        and cmd.reserve_memory > cmd.limit_memory
    ):
        out.add(
            "W-MEMORY-RESERVE-ABOVE-LIMIT",
            f"reserve-memory ({cmd.reserve_memory} MiB) is above limit-memory "
            f"({cmd.limit_memory} MiB).",
            pointer(loc, "reserve-memory"),
        )
    keys = [item.replacement_key for item in cmd.inputs]
    keys += [item.replacement_key for wrapper in cmd.wrappers for item in wrapper.inputs]
    if cmd.container_name is not None and not any(key in cmd.container_name for key in keys):
        out.add(
            "W-CONSTANT-CONTAINER-NAME",
            f'constant container-name "{cmd.container_name}": a second concurrent launch fails '
            "with a name clash; omit it.",
            pointer(loc, "container-name"),
        )
    if cmd.gpus is not None:
        out.add(
            "W-GPUS-IGNORED",
            '"gpus" is stored but no backend applies it in XNAT 3.7; use "runtime" (Docker) or '
            '"generic-resources" (Swarm, Kubernetes).',
            pointer(loc, "gpus"),
        )
    if cmd.route != "update" and "ipc-mode" in cmd.keys:
        out.add(
            "W-IPC-MODE-IGNORED",
            '"ipc-mode" is dropped on create and from image labels (XNAT reads "ipcMode" there).',
            pointer(loc, "ipc-mode"),
        )
    docker_only = [
        key
        for key, value in (
            ("runtime", cmd.runtime),
            ("ulimits", cmd.ulimits),
            ("ipc-mode", cmd.ipc_mode),
            ("auto-remove", cmd.auto_remove),
        )
        if value is not None
    ]
    if docker_only:
        out.add(
            "W-DOCKER-ONLY-SETTING",
            f"{', '.join(docker_only)}: applied on standalone Docker only, ignored on Swarm and "
            "Kubernetes.",
            pointer(loc, docker_only[0]),
        )
    if cmd.generic_resources:
        out.add(
            "W-GENERIC-RESOURCES-NOT-DOCKER",
            '"generic-resources" applies on Swarm and Kubernetes only, not on standalone Docker.',
            pointer(loc, "generic-resources"),
        )


def trap_warnings(cmd: Command) -> list[Finding]:
    """The warnings for one command that XNAT accepted (or would, but for the errors)."""
    out = _Warnings()
    _settings_warnings(cmd, out)
    _command_line_warnings(cmd, out)
    if cmd.command_line:
        _caret_warning(cmd.command_line, pointer(cmd.loc, "command-line"), out)
    _input_warnings(cmd, out)
    _replacement_key_warnings(cmd, out)
    _launch_value_warnings(cmd, out)
    _output_warnings(cmd, out)
    for wrapper in cmd.wrappers:
        _wrapper_warnings(cmd, wrapper, out)
    scopes: list[Wrapper | None] = [*cmd.wrappers] or [None]
    for scope in scopes:
        for loc, text in _templates(cmd, scope):
            _caret_warning(text, loc, out)
    return out.items


def duplicate_warnings(commands: list[Command]) -> list[Finding]:
    """Label arrays: commands with the same (name, image, version) are skipped by XNAT."""
    out = _Warnings()
    seen: dict[tuple[str | None, str | None, str | None], str] = {}
    for cmd in commands:
        key = (cmd.name, cmd.image, cmd.version)
        if key in seen:
            out.add(
                "W-DUPLICATE-COMMAND",
                f'command "{cmd.name}" (image {cmd.image}, version {cmd.version}) duplicates the '
                f"one at {seen[key] or '/'}: XNAT skips it.",
                cmd.loc,
            )
        else:
            seen[key] = cmd.loc
    return out.items
