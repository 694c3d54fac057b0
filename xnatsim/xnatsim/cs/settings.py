"""The compute-backend setting (``GET/POST /xapi/docker/server``, spec C.5) as typed models.

XNAT keeps one server object (``DockerServerBase``): its ``backend`` (``docker``, ``swarm``,
``kubernetes``) chooses where launches run; the deprecated ``swarm-mode`` is derived from it and,
when a posted document has no ``backend``, chooses it (``swarm-mode: true`` → ``swarm``).
``swarm-constraints`` become placement constraints of Swarm services (B.8).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BACKENDS", "CSSettings", "SettingsError", "SwarmConstraint", "resolve_constraints"]

Doc = dict[str, Any]

#: the backends XNAT knows; xnatsim runs the first two (Kubernetes cannot run here)
BACKENDS = ("docker", "swarm", "kubernetes")
RUNNABLE_BACKENDS = ("docker", "swarm")


class SettingsError(ValueError):
    """A posted setting XNAT would refuse (answered with 400)."""


@dataclass(frozen=True)
class SwarmConstraint:
    """One ``swarm-constraints`` entry: ``node.labels.x == a`` with the values a launch may choose."""

    attribute: str
    comparator: str
    values: tuple[str, ...]
    user_settable: bool = False

    @classmethod
    def from_json(cls, doc: Any) -> SwarmConstraint:
        """Parse with XNAT's messages for a blank attribute or blank values."""
        if not isinstance(doc, Mapping):
            raise SettingsError("A swarm constraint must be a JSON object.")
        attribute = str(doc.get("attribute") or "").strip()
        if not attribute:
            raise SettingsError("Constraint node attribute cannot be blank")
        raw_values = doc.get("values")
        values = tuple(str(v) for v in raw_values) if isinstance(raw_values, list) else ()
        if not values or any(not v.strip() for v in values):
            raise SettingsError("Constraint values cannot be blank")
        comparator = str(doc.get("comparator") or "==").strip()
        if comparator not in ("==", "!="):
            raise SettingsError(f'Constraint comparator must be "==" or "!=", not "{comparator}"')
        settable = doc.get("user-settable")
        return cls(attribute, comparator, values,
                   settable is True or str(settable).lower() == "true")

    def as_json(self) -> Doc:
        return {"user-settable": self.user_settable, "attribute": self.attribute,
                "comparator": self.comparator, "values": list(self.values)}

    def as_string(self, value: str | None = None) -> str | None:
        """``attribute + comparator + value`` (the first value by default); None when ``value``
        is not one of the allowed values (``asStringConstraint``)."""
        chosen = self.values[0] if value is None else value
        return f"{self.attribute}{self.comparator}{chosen}" if chosen in self.values else None


def resolve_constraints(constraints: tuple[SwarmConstraint, ...], launch_value: str | None) -> list[str]:
    """The placement constraints of one launch (``resolveSwarmConstraints``).

    ``launch_value`` is the launch parameter ``swarm-constraints``: a JSON list of
    ``{"attribute", "value"}`` (what the launch UI's advanced options send); unreadable JSON is
    ignored as XNAT ignores it (logged there). A user-settable constraint takes the chosen value when
    it is one of its values, is skipped when the chosen value is not allowed, and takes its first
    value when nothing was chosen; the others always take their first value.
    """
    chosen: dict[str, str] = {}
    if launch_value:
        try:
            parsed = json.loads(launch_value)
        except ValueError:
            parsed = []
        for item in parsed if isinstance(parsed, list) else []:
            if isinstance(item, Mapping) and item.get("attribute") is not None:
                chosen[str(item["attribute"])] = str(item.get("value") or "")
    resolved: list[str] = []
    for constraint in constraints:
        value = chosen.get(constraint.attribute, "").strip() if constraint.user_settable else ""
        text = constraint.as_string(value or None)
        if text is not None:
            resolved.append(text)
    return resolved


@dataclass
class CSSettings:
    """The compute-backend settings (``/xapi/docker/server``) plus xnatsim's own knobs."""

    #: where launches run: "docker" (plain containers) or "swarm" (services)
    backend: str = "docker"
    #: XNAT_HOST for containers; empty → the server's own URL (loopback)
    processing_url: str = ""
    #: Docker network mode for containers (the network a Swarm service attaches to);
    #: "host" keeps traffic on 127.0.0.1
    network: str = "host"
    #: the process user (``uid`` or ``uid:gid``); empty → the image's USER
    container_user: str = ""
    #: remove containers (services) once finalized
    auto_cleanup: bool = True
    path_translation_xnat_prefix: str = ""
    path_translation_docker_prefix: str = ""
    #: placement constraints for Swarm services
    swarm_constraints: tuple[SwarmConstraint, ...] = field(default_factory=tuple)
    #: containers run at the same time (the JMS consumers' concurrency)
    max_concurrent: int = 8
    #: seconds a container may run before it is killed
    timeout: float = 3600.0

    def as_json(self) -> Doc:
        return {
            "id": 1, "name": "Local socket", "host": "unix:///var/run/docker.sock",
            "backend": self.backend, "swarm-mode": self.backend == "swarm",
            "processing-url": self.processing_url, "network": self.network,
            "container-user": self.container_user, "auto-cleanup": self.auto_cleanup,
            "path-translation-xnat-prefix": self.path_translation_xnat_prefix,
            "path-translation-docker-prefix": self.path_translation_docker_prefix,
            "swarm-constraints": [c.as_json() for c in self.swarm_constraints],
            "max-concurrent": self.max_concurrent, "timeout": self.timeout,
        }

    def update(self, doc: Mapping[str, Any]) -> None:
        """Apply a posted (or stored) document; SettingsError leaves the settings unchanged."""
        changes: dict[str, Any] = {}
        backend = doc.get("backend")
        if backend is None and "swarm-mode" in doc:
            backend = "swarm" if _as_bool(doc["swarm-mode"]) else "docker"
        if backend is not None:
            backend = str(backend).strip().lower()
            if backend not in BACKENDS:
                raise SettingsError(f'Unknown backend "{backend}"; one of {", ".join(BACKENDS)}.')
            if backend not in RUNNABLE_BACKENDS:
                raise SettingsError(f'xnatsim cannot run the "{backend}" backend (docker and swarm only).')
            changes["backend"] = backend
        if doc.get("swarm-constraints") is not None:
            raw = doc["swarm-constraints"]
            if not isinstance(raw, list):
                raise SettingsError("swarm-constraints must be a JSON list.")
            changes["swarm_constraints"] = tuple(SwarmConstraint.from_json(c) for c in raw)
        for key, value in doc.items():
            attr = key.replace("-", "_")
            if attr in ("backend", "swarm_mode", "swarm_constraints", "host", "id", "name") or not hasattr(self, attr):
                continue
            current = getattr(self, attr)
            try:
                if isinstance(current, bool):
                    value = _as_bool(value)
                elif isinstance(current, int):
                    value = int(value)
                elif isinstance(current, float):
                    value = float(value)
                else:
                    value = "" if value is None else str(value)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f'{key}: "{value}" is not a valid value') from exc
            changes[attr] = value
        for attr, value in changes.items():
            setattr(self, attr, value)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CSSettings:
        """Defaults overridden by ``XNATSIM_PROCESSING_URL``, ``XNATSIM_CONTAINER_NETWORK``,
        ``XNATSIM_CONTAINER_USER``, ``XNATSIM_BACKEND`` (docker or swarm)."""
        env = os.environ if env is None else env
        settings = cls()
        settings.processing_url = env.get("XNATSIM_PROCESSING_URL", settings.processing_url)
        settings.network = env.get("XNATSIM_CONTAINER_NETWORK", settings.network)
        settings.container_user = env.get("XNATSIM_CONTAINER_USER", settings.container_user)
        if env.get("XNATSIM_BACKEND"):
            settings.update({"backend": env["XNATSIM_BACKEND"]})
        return settings


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"
