"""The Docker Swarm backend: a launch becomes a service, as the plugin's ``DockerControlApi`` makes it.

A service is created with 0 replicas and started by scaling it to 1 (``create`` → ``start``); its
task template has restart condition ``none``, the resolved bind mounts (path translation already
applied), the environment, ``container-user``, placement constraints, memory reservation and limit
and a CPU limit; ``shm-size`` becomes a tmpfs on ``/dev/shm``; ``ulimits``, ``runtime`` and
``ipc-mode`` are ignored (logged) as on Swarm. Statuses come from the service's one task
(``ServiceTask.create``, ``ContainerEntity.mapStatus``); kill removes the service (Swarm has no kill).

One difference, on purpose: the task's image is the local image's id, not its tag. A Swarm worker
given a tag tries the registry first (``docker service create`` resolves and pins a digest);
xnatsim's single-node swarm has every image locally and must send no traffic off the machine,
and an image id is never pulled. The record keeps the tag as XNAT does.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from xnatsim.cs.backend import DockerBackend, Exit, LaunchError, Reporter, RunSpec, StatusReport

__all__ = ["EXIT_STATES", "SwarmBackend", "join_local_swarm", "leave_local_swarm", "map_task_state", "service_kwargs"]

log = logging.getLogger("xnatsim.cs.swarm")

Doc = dict[str, Any]

#: task states that end a task (``ServiceTask.exitStatusPattern``)
EXIT_STATES = ("failed", "complete", "rejected", "shutdown")
#: how often the task is polled while waiting (XNAT polls on a timer too)
POLL_S = 0.2


def map_task_state(state: str) -> str:
    """The container status of a service whose task is in ``state`` (``mapStatus`` for services).

    ``complete`` is ``Waiting`` (finished, waiting for finalization); failures of the task are
    wrapped in ``Waiting (…)`` until finalization turns them into the final status.
    """
    if state == "complete":
        return "Waiting"
    if state == "created":
        return "Created"
    if state in ("create", "start", "started", "starting", "running"):
        return "Running"
    if state in ("remove", "orphaned", "oom", "rejected", "shutdown"):
        return f"Waiting (Failed ({state.capitalize()}))"
    if state == "kill":
        return "Waiting (Failed (Killed))"
    if state == "failed":
        return "Failed"
    return state


def service_kwargs(spec: RunSpec, image_ref: str, name: str) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_service``: the service XNAT creates, 0 replicas."""
    import docker.types

    mounts = [docker.types.Mount(target=b.container_path, source=b.host_path, type="bind", read_only=b.read_only)
              for b in spec.binds]
    if spec.shm_size:
        mounts.append(docker.types.Mount(target="/dev/shm", source=None, type="tmpfs", tmpfs_size=spec.shm_size))
    ignored = {"ulimits": spec.ulimits, "runtime": spec.runtime, "ipc-mode": spec.ipc_mode}
    for key, value in ignored.items():
        if value:
            log.info("%s ignored in service mode (set it on the Swarm nodes): %s", key, value)
    # override-entrypoint: Command replaces the image's ENTRYPOINT; otherwise Args go to it
    command, args = (spec.command, None) if spec.entrypoint is not None else (None, spec.command)
    container = docker.types.ContainerSpec(
        image=image_ref, command=command, args=args, env=[f"{k}={v}" for k, v in spec.environment.items()],
        workdir=spec.working_dir, user=spec.user, labels=dict(spec.labels), mounts=mounts,
    )
    resources = docker.types.Resources(cpu_limit=spec.nano_cpus, mem_limit=spec.mem_limit,
                                       mem_reservation=spec.mem_reservation)
    template = docker.types.TaskTemplate(
        container_spec=container, resources=resources,
        restart_policy=docker.types.RestartPolicy(condition="none"),
        placement=docker.types.Placement(constraints=list(spec.constraints)) if spec.constraints else None,
        networks=[spec.network_mode] if spec.network_mode else None,
    )
    kwargs: dict[str, Any] = {
        "task_template": template, "name": name, "labels": dict(spec.labels),
        "mode": docker.types.ServiceMode("replicated", replicas=0),
    }
    if spec.ports:
        kwargs["endpoint_spec"] = docker.types.EndpointSpec(
            ports={host: int(str(target).split("/")[0]) for target, host in spec.ports.items()})
    return kwargs


def _task_exit_code(task: Doc) -> int | None:
    code = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode")
    return int(code) if code is not None else None


class SwarmBackend:
    """Services on the swarm the engine is a manager of."""

    name = "swarm"

    def __init__(self, engine: DockerBackend) -> None:
        self.engine = engine

    @property
    def client(self) -> Any:
        return self.engine.client

    def start(self, spec: RunSpec) -> str:
        """Create the service with 0 replicas, then start it by scaling to 1; returns its id."""
        import docker.errors

        try:
            image_id = str(self.client.images.get(spec.image).id)
        except docker.errors.ImageNotFound as exc:
            raise LaunchError(f"Image {spec.image} not found on the Docker server.") from exc
        name = spec.name or f"xnatsim-{uuid.uuid4().hex[:12]}"
        try:
            created = self.client.api.create_service(**service_kwargs(spec, image_id, name))
        except docker.errors.APIError as exc:
            raise LaunchError(f"Could not create service: {exc.explanation or exc}") from exc
        service_id = str(created["ID"])
        try:
            self._scale_to_one(service_id)
        except docker.errors.APIError as exc:
            self.remove(service_id)
            raise LaunchError(f"Could not update service: {exc.explanation or exc}") from exc
        return service_id

    def _scale_to_one(self, service_id: str, attempts: int = 5) -> None:
        """Update the inspected spec to 1 replica at its version (``setSwarmServiceReplicasToOne``).

        The manager may bump a new service's version meanwhile (its allocator updates it), and the
        update is then refused "out of sequence": inspect again and retry, a few times.
        """
        import docker.errors

        for attempt in range(attempts):
            try:
                self.client.services.get(service_id).scale(1)
                return
            except docker.errors.APIError as exc:
                if "out of sequence" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def task(self, service_id: str) -> Doc | None:
        """The service's one task (None before Swarm made it); LookupError when the service is gone."""
        import docker.errors

        try:
            tasks = self.client.api.tasks(filters={"service": service_id})
        except docker.errors.NotFound as exc:
            raise LookupError(service_id) from exc
        if not tasks:
            try:
                self.client.api.inspect_service(service_id)
            except docker.errors.NotFound as exc:
                raise LookupError(service_id) from exc
            return None
        if len(tasks) > 1:  # only after a restart by someone else: follow the newest
            tasks.sort(key=lambda t: str(t.get("CreatedAt", "")))
        task: Doc = tasks[-1]
        return task

    def wait(self, ref: str, timeout: float | None = None, report: Reporter | None = None) -> Exit:
        """Poll the task until it ends (or is lost with its node); every new state is reported.

        A node error (``ServiceTask.create``): the task is not in an exit state and its desired
        state is shutdown or its exit code negative, or its state is shutdown.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[str, str] | None = None
        while True:
            try:
                task = self.task(ref)
            except LookupError:
                return Exit(None, failure="Failed (Remove)", message="The service was removed")
            if task is not None:
                status = task.get("Status") or {}
                state = str(status.get("State") or "")
                code = _task_exit_code(task)
                node_error = (state not in EXIT_STATES and (
                    task.get("DesiredState") == "shutdown" or (code is not None and code < 0))) or state == "shutdown"
                message = "Swarm node error" if node_error else str(status.get("Message") or "")
                err = str(status.get("Err") or "")
                text = ": ".join(p for p in (message, err) if p) or None
                if state == "pending":
                    text = None
                if (state, text or "") != seen:
                    seen = (state, text or "")
                    if report is not None:
                        ids = {"task-id": task.get("ID"), "node-id": task.get("NodeID"),
                               "container-id": (status.get("ContainerStatus") or {}).get("ContainerID")}
                        report(StatusReport(state, map_task_state(state), text, code,
                                            {k: str(v) for k, v in ids.items() if v}))
                if node_error:
                    return Exit(code, failure="Failed (Swarm)", message=text, node_error=True,
                                node=task.get("NodeID"))
                if state in EXIT_STATES:
                    if code is None:
                        code = self._container_exit_code(status)
                    failure = None if state == "complete" else (
                        "Failed" if state == "failed" else f"Failed ({state.capitalize()})")
                    return Exit(code, failure=failure, message=err or None, node=task.get("NodeID"))
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"service {ref} still running after {timeout} s")
            time.sleep(POLL_S)

    def _container_exit_code(self, status: Doc) -> int | None:
        """The exit code from the task's container when the task lacks it (as the plugin does)."""
        import docker.errors

        container_id = (status.get("ContainerStatus") or {}).get("ContainerID")
        if not container_id:
            return None
        try:
            code = self.client.api.inspect_container(container_id)["State"].get("ExitCode")
        except docker.errors.NotFound:
            return None
        return int(code) if code is not None else None

    def logs(self, ref: str) -> tuple[str, str]:
        """(stdout, stderr) of the service (``docker service logs``); empty once it is removed."""
        import docker.errors

        texts = []
        for stream in ("stdout", "stderr"):
            try:
                chunks = self.client.api.service_logs(ref, stdout=stream == "stdout", stderr=stream == "stderr",
                                                      follow=False, is_tty=False)
                texts.append(b"".join(chunks).decode("utf-8", "replace"))
            except docker.errors.NotFound:
                texts.append("")
        return texts[0], texts[1]

    def kill(self, ref: str) -> None:
        """Swarm has no kill: the service is removed (``DockerControlApi.kill``)."""
        import docker.errors

        try:
            self.client.api.remove_service(ref)
        except docker.errors.APIError as exc:
            raise LaunchError(f"cannot remove service {ref}: {exc}") from exc

    def remove(self, ref: str) -> None:
        import docker.errors

        try:
            self.client.api.remove_service(ref)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:
            log.warning("could not remove service %s", ref)


def join_local_swarm(client: Any) -> bool:
    """Make the engine a single-node swarm (``docker swarm init --advertise-addr 127.0.0.1``) unless
    it is a swarm manager already; True when this call made it (so the caller leaves it again)."""
    info = client.info().get("Swarm") or {}
    state = info.get("LocalNodeState")
    if state == "active":
        if not info.get("ControlAvailable"):
            raise LaunchError("the engine is a Swarm worker; services are created on a manager")
        return False
    if state != "inactive":
        raise LaunchError(f"the engine's swarm is {state}; try again when it is active or inactive")
    client.swarm.init(advertise_addr="127.0.0.1")
    return True


def leave_local_swarm(client: Any) -> None:
    """``docker swarm leave --force``."""
    client.swarm.leave(force=True)
