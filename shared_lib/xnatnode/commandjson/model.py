"""Typed model of a Container Service command document (after XNAT's defaults).

:mod:`xnatnode.commandjson.reader` builds it from JSON the way XNAT's Jackson mapper would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

#: How the document reaches XNAT: POST /xapi/commands (create), the image label (create, with
#: ``image`` replaced by the pulled name), or POST /xapi/commands/{id} (update).
Route = Literal["post", "label", "update"]

_HAS_TAG = re.compile(r".+:[a-zA-Z0-9_.-]+")

#: Command input types XNAT stores as such (anything else silently becomes "string").
INPUT_TYPES = ("string", "boolean", "number", "select-one", "select-many", "file", "File")


def _replacement_key(written: str | None, name: str) -> str:
    """An input's replacement key as XNAT uses it: the one written, or ``#<name>#`` when blank."""
    return written if written is not None and written.strip() else f"#{name}#"


@dataclass
class Mount:
    name: str
    path: str | None
    writable: bool
    loc: str


@dataclass
class CommandInput:
    name: str
    loc: str
    type: str = "string"
    required: bool = False
    default_value: str | None = None
    raw_replacement_key: str | None = None
    command_line_flag: str | None = None
    command_line_separator: str | None = None
    true_value: str | None = None
    false_value: str | None = None
    select_values: list[str] = field(default_factory=list)
    multiple_delimiter: str | None = None
    matcher: str | None = None
    sensitive: bool | None = None

    @property
    def replacement_key(self) -> str:
        return _replacement_key(self.raw_replacement_key, self.name)


@dataclass
class Output:
    name: str | None
    loc: str
    mount: str | None = None
    path: str | None = None
    glob: str | None = None
    required: bool | None = None


@dataclass
class WrapperInput:
    """An external or derived wrapper input (``kind`` says which)."""

    kind: Literal["external", "derived"]
    name: str
    loc: str
    type: str = "string"
    matcher: str | None = None
    default_value: str | None = None
    raw_replacement_key: str | None = None
    required: bool = True
    load_children: bool = True
    user_settable: bool | None = None
    sensitive: bool | None = None
    provides_value_for_command_input: str | None = None
    provides_files_for_command_mount: str | None = None
    via_setup_command: str | None = None
    derived_from_wrapper_input: str | None = None
    derived_from_xnat_object_property: str | None = None
    multiple: bool = False
    parser: str | None = None

    @property
    def replacement_key(self) -> str:
        return _replacement_key(self.raw_replacement_key, self.name)


@dataclass
class OutputHandler:
    name: str | None
    loc: str
    accepts_command_output: str | None = None
    as_a_child_of: str | None = None
    legacy_parent_key: bool = False
    via_wrapup_command: str | None = None
    type: str = "Resource"
    label: str | None = None
    format: str | None = None
    description: str | None = None
    content: str | None = None
    tags: list[str] = field(default_factory=list)
    xsi_type: str | None = None


@dataclass
class Wrapper:
    name: str
    loc: str
    label: str | None = None
    description: str | None = None
    contexts: list[str] = field(default_factory=list)
    external_inputs: list[WrapperInput] = field(default_factory=list)
    derived_inputs: list[WrapperInput] = field(default_factory=list)
    output_handlers: list[OutputHandler] = field(default_factory=list)

    @property
    def inputs(self) -> list[WrapperInput]:
        return self.external_inputs + self.derived_inputs


@dataclass
class Secret:
    loc: str
    source_type: str | None = None
    source_identifier: str | None = None
    destination_type: str | None = None
    destination_identifier: str | None = None


@dataclass
class Command:
    """One command object, after XNAT's defaults (``type`` docker, empty lists, tag defaulting)."""

    loc: str
    route: Route
    name: str | None = None
    label: str | None = None
    description: str | None = None
    version: str | None = None
    schema_version: str | None = None
    info_url: str | None = None
    image: str | None = None
    #: ``image`` before tag defaulting: the document's, or the name given with it (pull, ?image=).
    image_as_written: str | None = None
    container_name: str | None = None
    type: str = "docker"
    index: str | None = None
    hash: str | None = None
    working_directory: str | None = None
    command_line: str | None = None
    override_entrypoint: bool | None = None
    mounts: list[Mount] = field(default_factory=list)
    environment_variables: dict[str, str] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)
    inputs: list[CommandInput] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    wrappers: list[Wrapper] = field(default_factory=list)
    reserve_memory: int | None = None
    limit_memory: int | None = None
    limit_cpu: float | None = None
    runtime: str | None = None
    ipc_mode: str | None = None
    auto_remove: bool | None = None
    shm_size: int | None = None
    network: str | None = None
    container_labels: dict[str, str] | None = None
    gpus: str | None = None
    generic_resources: dict[str, str] | None = None
    ulimits: dict[str, str] | None = None
    secrets: list[Secret] = field(default_factory=list)
    visibility: str | None = None
    #: Keys present in the document (for route-specific warnings such as ``ipc-mode``).
    keys: frozenset[str] = frozenset()


def or_default(value: str | None, default: str) -> str:
    """Java's ``value == null ? default : value`` (an empty string stays empty)."""
    return default if value is None else value


def has_tag(image: str) -> bool:
    """XNAT's ``HAS_TAG`` test: ``.+:[a-zA-Z0-9_.-]+`` over the whole string."""
    return _HAS_TAG.fullmatch(image) is not None


def default_tag(image: str | None) -> str | None:
    """Create-time tag defaulting: a non-empty tag-less image gets ``:latest``."""
    if not image or has_tag(image):
        return image
    return f"{image}:latest"
