"""Small typed parts of a container record (``GET /xapi/containers/{id}``), each with the JSON
form XNAT answers with (kebab-case keys, as the plugin's ``Container`` serializes them)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["MASK", "HistoryItem", "InputRecord", "MountRecord", "now_ms"]

Doc = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class HistoryItem:
    """One entry of a container's history (``Container.ContainerHistory``)."""

    status: str
    #: "system" for the Container Service's own steps, "service" for a Swarm task state
    entity_type: str = "system"
    message: str | None = None
    exit_code: int | str | None = None
    external_timestamp: str | None = None

    def as_json(self, time_recorded: int | None = None) -> Doc:
        return {
            "status": self.status, "entity-type": self.entity_type, "entity-id": None,
            "time-recorded": now_ms() if time_recorded is None else time_recorded,
            "external-timestamp": self.external_timestamp, "message": self.message,
            "exitCode": None if self.exit_code is None else self.exit_code,
        }


#: what XNAT shows instead of a sensitive value or a secret
MASK = "******"


@dataclass(frozen=True)
class InputRecord:
    """One resolved input of a container (``Container.ContainerInput``); sensitive values masked."""

    #: "wrapper-external", "wrapper-derived" or "command"
    type: str
    name: str
    value: str | None
    sensitive: bool = False

    def as_json(self) -> Doc:
        return {"type": self.type, "name": self.name, "value": MASK if self.sensitive else self.value,
                "sensitive": self.sensitive}


@dataclass(frozen=True)
class MountRecord:
    """One mount of a container (``Container.ContainerMount``): XNAT's path and the path Docker binds."""

    name: str
    writable: bool
    container_path: str
    xnat_host_path: str
    container_host_path: str
    #: the archive folder an input mount was fed from (None for an output mount)
    source: str | None = None

    def as_json(self) -> Doc:
        return {"name": self.name, "writable": self.writable, "container-path": self.container_path,
                "xnat-host-path": self.xnat_host_path, "container-host-path": self.container_host_path,
                "input-files": [] if self.source is None else [{"from-uri": None, "root-directory": self.source}]}
