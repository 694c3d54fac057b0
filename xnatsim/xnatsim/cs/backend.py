"""Compute backends: the ``Backend`` protocol the launch pipeline drives, the container spec built
the way the plugin builds it (B.5, B.6, B.8), and the Docker backend that runs it as a plain
container on the real engine through the Docker SDK (the Swarm backend is in :mod:`.swarm`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from xnatsim.cs.templates import ResolutionError, shell_split

__all__ = ["Backend", "DockerBackend", "Exit", "LaunchError", "RunSpec", "StatusReport", "build_run_spec"]

log = logging.getLogger("xnatsim.cs.backend")

Doc = dict[str, Any]
_MIB = 1024 * 1024


class LaunchError(RuntimeError):
    """The backend refused to create or start the container (``Failed (Container launch)``)."""


@dataclass(frozen=True)
class Exit:
    """How a backend object ended (what finalization needs)."""

    #: the process's exit code (None when the backend never ran it or cannot tell)
    code: int | None
    oom: bool = False
    #: XNAT's failure status when the backend's own end state is a failure ("Failed (Rejected)"…)
    failure: str | None = None
    #: the backend's message for that end (a Swarm task's error)
    message: str | None = None
    #: the object was lost with its node (a Swarm node error): XNAT restarts it
    node_error: bool = False
    #: the node it ran on, when the backend knows it
    node: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """A status change the backend saw while waiting (a Swarm task state), for the history."""

    #: the backend's own state ("running", "complete"…), recorded in the history
    state: str
    #: the container status XNAT derives from it (``ContainerEntity.mapStatus``)
    status: str
    message: str | None = None
    exit_code: int | None = None
    #: backend ids learnt with it (task-id, node-id, container-id)
    ids: dict[str, str] = field(default_factory=dict)


#: where a backend sends the status changes it sees
Reporter = Callable[[StatusReport], None]


class Backend(Protocol):
    """A compute backend as the launch pipeline drives it (the plugin's ``ContainerControlApi``).

    ``start`` creates and starts the backend object and returns its id (a container id, a service
    id); the other calls take that id.
    """

    #: "docker" or "swarm", as the compute-backend setting names it
    name: str

    def start(self, spec: RunSpec) -> str: ...

    def wait(self, ref: str, timeout: float | None = None, report: Reporter | None = None) -> Exit:
        """Block until the object ends; TimeoutError when it still runs after ``timeout`` s."""
        ...

    def logs(self, ref: str) -> tuple[str, str]: ...

    def kill(self, ref: str) -> None: ...

    def remove(self, ref: str) -> None: ...


@dataclass
class Bind:
    host_path: str
    container_path: str
    read_only: bool


@dataclass
class RunSpec:
    """Everything ``docker create`` needs; ``entrypoint`` None keeps the image's ENTRYPOINT."""

    image: str
    command: list[str]
    entrypoint: list[str] | None
    environment: dict[str, str]
    binds: list[Bind]
    working_dir: str | None = None
    user: str | None = None
    network_mode: str | None = None
    mem_reservation: int | None = None
    mem_limit: int | None = None
    nano_cpus: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    shm_size: int | None = None
    runtime: str | None = None
    ipc_mode: str | None = None
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)
    #: Swarm placement constraints (``node.labels.x==a``); ignored by plain Docker
    constraints: list[str] = field(default_factory=list)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create``."""
        import docker.types

        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "environment": self.environment,
            "volumes": {
                b.host_path: {"bind": b.container_path, "mode": "ro" if b.read_only else "rw"}
                for b in self.binds
            },
            "labels": self.labels,
            "detach": True,
        }
        if self.entrypoint is not None:
            kwargs["entrypoint"] = self.entrypoint
        optional = {
            "working_dir": self.working_dir, "user": self.user, "network_mode": self.network_mode,
            "mem_reservation": self.mem_reservation, "mem_limit": self.mem_limit,
            "nano_cpus": self.nano_cpus, "name": self.name, "shm_size": self.shm_size,
            "runtime": self.runtime, "ipc_mode": self.ipc_mode,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        if self.ports:
            kwargs["ports"] = {f"{k}/tcp" if "/" not in k else k: v for k, v in self.ports.items()}
        if self.ulimits:
            kwargs["ulimits"] = [docker.types.Ulimit(name=n, soft=s, hard=h) for n, s, h in self.ulimits]
        return kwargs


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def build_run_spec(
    command: Doc,
    *,
    command_line: str,
    environment: dict[str, str],
    binds: list[Bind],
    working_dir: str | None = None,
    container_name: str | None = None,
    labels: dict[str, str] | None = None,
    ports: dict[str, str] | None = None,
    user: str | None = None,
    network_mode: str | None = None,
    constraints: list[str] | None = None,
) -> RunSpec:
    """The container spec for a resolved main command on standalone Docker.

    ``override-entrypoint: true`` clears the ENTRYPOINT and runs ``/bin/sh -c "<line>"``;
    otherwise the line is tokenized (``ShellSplitter``) and passed as arguments (exec form).
    """
    if command.get("override-entrypoint"):
        entrypoint: list[str] | None = [""]
        cmd = ["/bin/sh", "-c", command_line]
    else:
        entrypoint = None
        cmd = shell_split(command_line)
    limit_cpu = command.get("limit-cpu")
    ulimits: list[tuple[str, int, int]] = []
    for name, value in (command.get("ulimits") or {}).items():
        soft, _, hard = str(value).partition(":")
        try:
            ulimits.append((name, int(soft), int(hard or soft)))
        except ValueError as exc:
            raise LaunchError(f'ulimit "{name}" value "{value}" is not an integer') from exc
    port_map: dict[str, int] = {}
    for container_port, host_port in (ports or {}).items():
        try:
            port_map[str(int(container_port))] = int(host_port)
        except ValueError as exc:
            raise LaunchError(f"port {container_port}:{host_port} does not resolve to integers") from exc
    reserve = _int_or_none(command.get("reserve-memory"))
    limit = _int_or_none(command.get("limit-memory"))
    return RunSpec(
        image=str(command["image"]),
        command=cmd,
        entrypoint=entrypoint,
        environment=environment,
        binds=binds,
        working_dir=working_dir or None,
        user=user or None,
        network_mode=command.get("network") or network_mode,
        mem_reservation=reserve * _MIB if reserve else None,
        mem_limit=limit * _MIB if limit else None,
        nano_cpus=int(float(limit_cpu) * 1e9) if limit_cpu else None,
        labels=dict(labels or {}),
        name=container_name,
        ports=port_map,
        shm_size=_int_or_none(command.get("shm-size")),
        runtime=command.get("runtime") or None,
        ipc_mode=command.get("ipc-mode") or None,
        ulimits=ulimits,
        constraints=list(constraints or []),
    )


class DockerBackend:
    """Create, start, wait for, read logs of and remove containers on the local engine; also the
    engine's images (which XNAT reads from its Docker server whatever the backend)."""

    name = "docker"

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=120)
        return self._client

    def image_labels(self, image: str) -> tuple[str, dict[str, str]]:
        """The image id and labels of a local image (``docker image inspect``)."""
        import docker.errors

        try:
            img = self.client.images.get(image)
        except docker.errors.ImageNotFound as exc:
            raise LookupError(f"Image {image} not found on the Docker server.") from exc
        return str(img.id), dict(img.labels or {})

    def remove_image(self, ref: str, force: bool = False) -> tuple[str, list[str]]:
        """Remove a local image (by id or name:tag), or only that tag when the image has others.

        Returns the image id and the names no longer on the engine.
        """
        import docker.errors

        try:
            img = self.client.images.get(ref)
        except docker.errors.ImageNotFound as exc:
            raise LookupError(f"Image {ref} not found on the Docker server.") from exc
        image_id, tags = str(img.id), list(img.tags)
        try:
            self.client.images.remove(ref, force=force)
        except docker.errors.APIError as exc:
            raise LaunchError(f"Docker refused to remove {ref}: {exc.explanation or exc}") from exc
        try:
            left = list(self.client.images.get(image_id).tags)
        except docker.errors.ImageNotFound:
            left = []
        return image_id, [t for t in tags if t not in left]

    def has_image(self, ref: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    def list_images(self) -> list[Doc]:
        return [
            {"image-id": img.id, "tags": list(img.tags), "size": img.attrs.get("Size"),
             "labels": dict(img.labels or {})}
            for img in self.client.images.list()
        ]

    def start(self, spec: RunSpec) -> str:
        """Create and start the container; returns its id."""
        import docker.errors

        try:
            container = self.client.containers.create(**spec.create_kwargs())
        except docker.errors.ImageNotFound as exc:
            raise LaunchError(f"Image {spec.image} not found on the Docker server.") from exc
        except docker.errors.APIError as exc:
            raise LaunchError(f"Docker refused to create the container: {exc.explanation or exc}") from exc
        try:
            container.start()
        except docker.errors.APIError as exc:
            self.remove(container.id)
            raise LaunchError(f"Failed to start: {exc.explanation or exc}") from exc
        return str(container.id)

    def wait(self, container_id: str, timeout: float | None = None, report: Reporter | None = None) -> Exit:
        """Block until the container exits (``docker wait``); Docker events need no report.

        Raises :class:`TimeoutError` when it is still running after ``timeout`` seconds.
        """
        import requests.exceptions

        container = self.client.containers.get(container_id)
        try:
            result = container.wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            container.reload()
            if container.status in ("running", "created", "restarting", "paused"):
                raise TimeoutError(f"container {container_id} still running after {timeout} s") from exc
            raise
        container.reload()
        oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        code = result.get("StatusCode")
        return Exit(int(code) if code is not None else None, oom=oom)

    def logs(self, container_id: str) -> tuple[str, str]:
        """(stdout, stderr) of a container."""
        container = self.client.containers.get(container_id)
        out = container.logs(stdout=True, stderr=False)
        err = container.logs(stdout=False, stderr=True)
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def kill(self, container_id: str) -> None:
        import docker.errors

        try:
            self.client.containers.get(container_id).kill()
        except docker.errors.APIError as exc:
            raise LaunchError(f"cannot kill {container_id}: {exc}") from exc

    def remove(self, container_id: str) -> None:
        import docker.errors

        try:
            self.client.containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:
            log.warning("could not remove container %s", container_id)


def tokenize_for_display(line: str) -> list[str]:
    """The argv a command line becomes in exec form (for the CLI's dry run)."""
    try:
        return shell_split(line)
    except ResolutionError:
        return []
