"""Small typed parts of a container record (``GET /xapi/containers/{id}``), each with the JSON
form XNAT answers with (kebab-case keys, as the plugin's ``Container`` serializes them)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["HistoryItem", "now_ms"]

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
