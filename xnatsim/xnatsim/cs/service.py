"""The launch pipeline (spec B.1, B.6, B.7, B.9): queue → resolve → run on a backend → finalize.

A launch returns at once with ``{"status": "success", "workflow-id": …}`` (queued); a worker
thread then resolves the wrapper, creates the output build directories, issues an alias token,
runs the container (a plain Docker container, or a Swarm service, as the compute-backend setting
says at launch), stores its logs, uploads outputs on success, revokes the token, removes the
backend object (auto-cleanup) and records every status in the container's history and workflow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatsim.cs.backend import (
    Backend,
    Bind,
    DockerBackend,
    Exit,
    LaunchError,
    RunSpec,
    StatusReport,
    build_run_spec,
)
from xnatsim.cs.db import DocumentDB
from xnatsim.cs.outputs import run_handlers
from xnatsim.cs.records import MASK, HistoryItem, InputRecord, MountRecord, now_ms
from xnatsim.cs.registry import Registry
from xnatsim.cs.resolution import INJECTED_ENV, Resolved, apply_overlay, resolve
from xnatsim.cs.settings import CSSettings, resolve_constraints
from xnatsim.cs.swarm import SwarmBackend
from xnatsim.cs.templates import ResolutionError
from xnatsim.cs.xnatobjects import StoreLoader
from xnatsim.store import Store, StoreError, now_text

__all__ = ["TERMINAL_PREFIXES", "CSSettings", "ContainerService"]

log = logging.getLogger("xnatsim.cs")

Doc = dict[str, Any]
TERMINAL_PREFIXES = ("Complete", "Failed", "Killed")
#: restarts of a service lost with its Swarm node before it fails (``restartService``)
MAX_RESTARTS = 5


class LaunchRefused(ValueError):
    """A launch request refused before queueing (unknown wrapper, bad parameters)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Job:
    container_id: int
    command: Doc
    wrapper: Doc
    params: dict[str, str]
    user: str
    project: str | None
    workflow_id: int | None
    killed: bool = False
    kill_reason: str = "Killed by request"
    #: the backend that runs it (chosen at launch) and its object there (container or service id)
    backend: str = "docker"
    ref: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class ContainerService:
    """Commands, launches and container history for one store."""

    def __init__(
        self,
        store: Store,
        db: DocumentDB,
        *,
        settings: CSSettings | None = None,
        backend: DockerBackend | None = None,
        swarm: Backend | None = None,
        server_url: Callable[[], str] | None = None,
    ) -> None:
        """``backend`` is the engine (images, plain containers); ``swarm`` runs services on it."""
        self.store = store
        self.db = db
        self.registry = Registry(db)
        self.settings = settings or CSSettings.from_env()
        saved = db.get("settings", 1)
        if saved:
            self.settings.update(saved)
        #: the Docker engine: images, and the plain-container backend
        self.backend = backend or DockerBackend()
        self.swarm: Backend = swarm or SwarmBackend(self.backend)
        self.loader = StoreLoader(store)
        self._server_url = server_url or (lambda: "")
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        #: consumer threads, started with the first launch
        self._workers: list[threading.Thread] = []
        self._jobs: dict[int, _Job] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Doc], None]] = []
        self._recover_orphans()

    def save_settings(self, doc: Mapping[str, Any]) -> None:
        """Apply and keep a posted setting (SettingsError: nothing changes)."""
        self.settings.update(doc)
        self.db.put("settings", 1, self.settings.as_json())

    def backend_for(self, name: str) -> Backend:
        """The backend that runs launches of the ``backend`` setting ``name``."""
        return self.swarm if name == "swarm" else self.backend

    def add_finish_listener(self, fn: Callable[[Doc], None]) -> None:
        """Call ``fn(container)`` whenever a container reaches a terminal status."""
        self._listeners.append(fn)

    # ---------------------------------------------------------------------------- launching
    def launch(
        self,
        wrapper_id: int,
        params: Mapping[str, Any],
        user: str,
        *,
        project: str | None = None,
        root_element: str | None = None,
    ) -> Doc:
        """Queue one launch; returns XNAT's launch response (success means queued)."""
        found = self.registry.wrapper(wrapper_id)
        if found is None:
            raise LaunchRefused(f"No wrapper with id {wrapper_id}.", 404)
        command, wrapper = found
        str_params = {str(k): "" if v is None else v if isinstance(v, str) else _json(v) for k, v in params.items()}
        workflow_id = None
        if root_element and str_params.get(root_element):
            workflow_id = self._create_workflow(wrapper, str_params[root_element], user, project)
        container = self._new_record(command, wrapper, str_params, user, project, workflow_id, root_element)
        job = _Job(container["id"], command, wrapper, str_params, user, project, workflow_id,
                   backend=container["backend"])
        with self._lock:
            self._jobs[job.container_id] = job
        self._start_workers()
        self._queue.put(job)
        return {
            "status": "success", "workflow-id": str(workflow_id) if workflow_id else "To be assigned",
            "params": str_params, "command-id": command["id"], "wrapper-id": wrapper["id"],
            "container-id": container["id"],
        }

    def bulk_launch(
        self, wrapper_id: int, params: Mapping[str, Any], user: str, *, project: str | None, root_element: str
    ) -> Doc:
        """One queued launch per element of the JSON-array value of ``root_element``."""
        import json

        raw = params.get(root_element)
        try:
            targets = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise LaunchRefused(f'"{root_element}" must be a JSON array of URIs.') from exc
        if not isinstance(targets, list):
            raise LaunchRefused(f'"{root_element}" must be a JSON array of URIs.')
        bulk_id = str(uuid.uuid4())
        successes, failures = [], []
        for target in targets:
            one = {**params, root_element: target}
            try:
                successes.append(self.launch(wrapper_id, one, user, project=project, root_element=root_element))
            except LaunchRefused as exc:
                failures.append({"status": "failure", "message": str(exc), "params": one})
        return {"bulk-launch-id": bulk_id, "successes": successes, "failures": failures}

    def wait(self, container_id: int, timeout: float = 600.0) -> Doc:
        """Block until a container is finalized (or ``timeout``); returns its record."""
        with self._lock:
            job = self._jobs.get(container_id)
        if job is not None:
            job.done.wait(timeout)
        record = self.container(container_id)
        if record is None:
            raise KeyError(container_id)
        return record

    def kill(self, container_id: int) -> Doc:
        with self._lock:
            job = self._jobs.get(container_id)
        current = self.container(container_id) or {}
        if job is None or job.done.is_set() or current.get("status") == "Finalizing":
            raise LaunchRefused(f"Container {container_id} is not running.", 400)
        job.killed = True
        if job.ref:
            try:
                self.backend_for(job.backend).kill(job.ref)
            except LaunchError as exc:  # it exited meanwhile: its exit code decides
                job.killed = False
                raise LaunchRefused(f"Container {container_id} is not running: {exc}", 400) from exc
        record = self.container(container_id)
        assert record is not None
        return record

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting launches; with ``wait`` let queued and running ones finish."""
        for _ in self._workers:
            self._queue.put(None)
        if wait:
            for worker in self._workers:
                worker.join()

    def _recover_orphans(self) -> None:
        """Containers a previous xnatsim process left unfinished (stopped while queued or running).

        Nothing can finalize them any more (their queue and resolution died with that process), so
        they end as ``Failed (Orphaned)``: their alias token is revoked, a Docker container still
        present is removed, and so are their build directories (with auto-cleanup).
        """
        for record in self.containers(nonfinalized=True):
            if _alive(record.get("xnatsim-pid")):
                continue  # another xnatsim process on the same data folder is running it
            if record.get("token-alias"):
                self.store.revoke_token(record["token-alias"])
            ref = _backend_ref(record)
            if ref:
                try:
                    self.backend_for(record.get("backend") or "docker").remove(ref)
                except Exception:  # no engine now: nothing left to clean up on it
                    log.warning("could not remove orphaned container %s", ref)
            if self.settings.auto_cleanup:
                for mount in record.get("mounts") or []:
                    folder = Path(mount.get("xnat-host-path") or "")
                    if mount.get("writable") and folder.parent == self.store.build_dir:
                        shutil.rmtree(folder, ignore_errors=True)
            self._update(record["id"], "Failed (Orphaned)",
                         f"xnatsim stopped while the container was {record['status']}")

    def _start_workers(self) -> None:
        with self._lock:
            if self._workers:
                return
            self._workers = [
                threading.Thread(target=self._work, name=f"xnatsim-cs-{i}", daemon=True)
                for i in range(max(1, self.settings.max_concurrent))
            ]
            for worker in self._workers:
                worker.start()

    def _work(self) -> None:
        """A staging/finalizing consumer (daemon: a stopping server does not wait for containers)."""
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run_safely(job)

    # ---------------------------------------------------------------------- records/history
    def container(self, container_id: int) -> Doc | None:
        return self.db.get("container", container_id)

    def find_container(self, ref: str) -> Doc | None:
        """By database id, docker id (or prefix) or container name."""
        if ref.isdigit():
            found = self.container(int(ref))
            if found:
                return found
        for doc in self.db.all("container"):
            if doc.get("container-id") and (doc["container-id"] == ref or doc["container-id"].startswith(ref)):
                return doc
            if doc.get("container-name") == ref:
                return doc
        return None

    def containers(self, *, project: str | None = None, nonfinalized: bool = False) -> list[Doc]:
        docs = self.db.all("container", key=project) if project else self.db.all("container")
        if nonfinalized:
            docs = [d for d in docs if not d["status"].startswith(TERMINAL_PREFIXES)]
        return docs

    def workflow(self, workflow_id: int) -> Doc | None:
        return self.db.get("workflow", workflow_id)

    def workflows_for(self, object_id: str) -> list[Doc]:
        return self.db.all("workflow", key=object_id)

    def _new_record(
        self, command: Doc, wrapper: Doc, params: dict[str, str], user: str, project: str | None,
        workflow_id: int | None, root_element: str | None,
    ) -> Doc:
        cid = self.db.next_id("container")
        now = now_ms()
        record: Doc = {
            "id": cid, "command-id": command["id"], "wrapper-id": wrapper["id"], "status": "Queued",
            "status-time": now, "container-id": None, "service-id": None, "workflow-id": str(workflow_id or ""),
            "user-id": user, "project": project, "backend": self.settings.backend, "subtype": "main",
            "docker-image": command["image"], "container-name": None, "command-line": None,
            "override-entrypoint": bool(command.get("override-entrypoint")),
            "parent-source-object-name": root_element, "params": params, "env": {}, "mounts": [],
            "inputs": [], "outputs": [], "log-paths": [], "exit-code": None,
            "reserve-memory": command.get("reserve-memory"), "limit-memory": command.get("limit-memory"),
            "limit-cpu": command.get("limit-cpu"), "auto-remove": bool(command.get("auto-remove")),
            "xnatsim-pid": os.getpid(),
            "history": [{"status": "Queued", "entity-type": "system", "entity-id": None,
                         "time-recorded": now, "external-timestamp": None, "message": None,
                         "exitCode": None}],
        }
        self.db.put("container", cid, record, key=project or "")
        return record

    def _update(self, cid: int, status: str | None = None, message: str | None = None,
                fields: Doc | None = None, *, history: HistoryItem | None = None,
                workflow_status: str | None = None) -> Doc:
        """Set fields and (with ``status``) the status, a history entry (by default the system's
        own) and the workflow's status (by default the same)."""
        record = self.container(cid)
        assert record is not None
        record.update(fields or {})
        if status is not None:
            now = now_ms()
            record["status"] = status
            record["status-time"] = now
            item = history or HistoryItem(status, message=message, exit_code=record.get("exit-code"))
            record["history"].append(item.as_json(now))
            if record.get("workflow-id"):
                self._set_workflow_status(int(record["workflow-id"]), workflow_status or status, message)
        self.db.put("container", cid, record, key=record.get("project") or "")
        return record

    # ------------------------------------------------------------------------------ workflow
    def _create_workflow(self, wrapper: Doc, root_value: str, user: str, project: str | None) -> int | None:
        obj = None
        try:
            if root_value.startswith("/"):
                obj = self.loader.load(root_value, children=False)
            elif root_value:
                kind = wrapper["external-inputs"][0]["type"] if wrapper["external-inputs"] else "Session"
                obj = self.loader.by_id(kind, root_value, children=False)
        except (StoreError, ValueError):
            obj = None
        if obj is None:
            return None
        wfid = self.db.next_id("workflow")
        doc = {
            "wfid": wfid, "id": obj["id"], "data_type": obj.get("xsiType"), "uri": obj.get("uri"),
            "externalid": obj.get("project-id") or project or obj.get("id"),
            "pipeline_name": wrapper["name"], "status": "Queued", "type": "Container",
            "launch_time": now_text(), "percentagecomplete": "0.0", "create_user": user,
            "details": None, "comments": None, "justification": "Container launch",
            "category": "Data", "src": "xnatsim", "jobid": None,
        }
        self.db.put("workflow", wfid, doc, key=obj["id"])
        return wfid

    def _set_workflow_status(self, wfid: int, status: str, message: str | None) -> None:
        doc = self.workflow(wfid)
        if doc is None:
            return
        doc["status"] = status
        if message:
            doc["details"] = message
        if status.startswith("Complete"):
            doc["percentagecomplete"] = "100.0"
        self.db.put("workflow", wfid, doc, key=doc["id"])

    # ------------------------------------------------------------------------------ the run
    def _run_safely(self, job: _Job) -> None:
        try:
            self._run(job)
        except Exception as exc:  # a bug here must not leave a container forever "Running"
            log.exception("container %s failed unexpectedly", job.container_id)
            self._update(job.container_id, "Failed", f"xnatsim internal error: {exc}")
        finally:
            job.done.set()
            record = self.container(job.container_id)
            for fn in list(self._listeners):
                try:
                    if record is not None:
                        fn(record)
                except Exception:
                    log.exception("container finish listener failed")

    def _run(self, job: _Job) -> None:
        cid = job.container_id
        if job.killed:
            self._update(cid, "Failed (Killed)", "Killed by request before it started")
            return
        self._update(cid, "Staging")
        config = self.registry.config(job.wrapper["id"], job.project)
        try:
            command, wrapper = apply_overlay(job.command, job.wrapper["name"], config)
            resolved = resolve(command, wrapper, job.params, self.loader)
            self._check_permissions(job.user, resolved)
        except (ResolutionError, StoreError) as exc:
            self._update(cid, "Failed (Command resolution)", str(exc))
            return
        self._update(cid, None, fields={"command-line": resolved.command_line,
                                        "inputs": [r.as_json() for r in _inputs_record(command, wrapper, resolved)]})
        token: Doc | None = None
        build_dirs: list[Path] = []
        try:
            mounts, build_dirs = self._prepare_mounts(command, resolved)
            mount_paths = {m.name: Path(m.xnat_host_path) for m in mounts}
            binds = [Bind(m.container_host_path, m.container_path, not m.writable) for m in mounts]
            token = self.store.issue_token(job.user)
            env = self._environment(resolved, token, job.workflow_id)
            secret_env = _secrets(command, resolved)
            env.update(secret_env)
            hidden = {"XNAT_PASS", *secret_env}
            user = self.settings.container_user or None
            spec = build_run_spec(
                command, command_line=resolved.command_line, environment=env, binds=binds,
                working_dir=resolved.working_directory, container_name=resolved.container_name,
                labels={**self._tracking_labels(job, resolved), **resolved.container_labels},
                ports=resolved.ports, user=user, network_mode=self.settings.network or None,
                constraints=resolve_constraints(self.settings.swarm_constraints, job.params.get("swarm-constraints"))
                if job.backend == "swarm" else None,
            )
            self._update(
                cid, "Created", fields={
                    "env": {k: (MASK if k in hidden else v) for k, v in env.items()},
                    "mounts": [m.as_json() for m in mounts],
                    "container-name": resolved.container_name, "token-alias": token["alias"],
                },
            )
            backend = self.backend_for(job.backend)
            ended = self._run_backend(job, backend, spec)
            if ended.node_error:  # lost with its node too often: XNAT gives up without finalizing
                return
            self._update(cid, "Finalizing", fields={"exit-code": ended.code})
            stdout, stderr = backend.logs(job.ref) if job.ref else ("", "")
            self._update(cid, None, fields={"log-paths": self._write_logs(cid, stdout, stderr)})
            self._finalize(job, resolved, mount_paths, ended)
            if job.ref and (self.settings.auto_cleanup or command.get("auto-remove")):
                backend.remove(job.ref)
        except (LaunchError, StoreError, ResolutionError, OSError) as exc:
            message = exc.message if isinstance(exc, StoreError) else str(exc)
            self._update(cid, "Failed (Container launch)", message)
        except Exception as exc:
            if type(exc).__module__.startswith(("docker", "requests", "urllib3")):
                self._update(cid, "Failed (Container launch)", str(exc))
            else:
                raise
        finally:
            if token is not None:
                self.store.revoke_token(token["alias"])
            for folder in build_dirs:
                if self.settings.auto_cleanup:
                    shutil.rmtree(folder, ignore_errors=True)

    def _run_backend(self, job: _Job, backend: Backend, spec: RunSpec) -> Exit:
        """Start the object and wait for its end; a Swarm service lost with its node is removed
        and started again from the same spec, at most :data:`MAX_RESTARTS` times."""
        cid = job.container_id
        restarts = 0
        while True:
            job.ref = backend.start(spec)
            id_field = "service-id" if backend.name == "swarm" else "container-id"
            self._update(cid, "Running" if backend.name == "docker" else None, fields={id_field: job.ref})
            if job.killed:
                backend.kill(job.ref)
            try:
                ended = backend.wait(job.ref, self.settings.timeout, lambda r: self._task_report(cid, r))
            except TimeoutError:
                with contextlib.suppress(LaunchError):  # it may have exited meanwhile
                    backend.kill(job.ref)
                ended = backend.wait(job.ref, 60)
                job.killed = True
                job.kill_reason = f"Killed after the time-out of {self.settings.timeout:g} s"
            if not ended.node_error or job.killed:
                return ended
            backend.remove(job.ref)
            lost, job.ref = job.ref, None
            if restarts >= MAX_RESTARTS:
                message = (f"Swarm node error: Service not found on swarm OR state='shutdown' OR apparently active "
                           f"current state with exit status of -1 or desired state='shutdown' occurred in all "
                           f"{MAX_RESTARTS + 1} attempts)")
                self._update(cid, "Failed", message, history=HistoryItem("failed", "service", message, "126"),
                             workflow_status="Failed (Swarm)")
                return Exit(126, failure="Failed", message=message, node_error=True)
            restarts += 1
            self._update(cid, "Restart", fields={"service-id": None, "task-id": None, "container-id": None,
                                                  "node-id": None},
                         message=f"Restarting serviceId {lost} due to apparent swarm node error "
                                 f"(likely node {ended.node} went down)")

    def _task_report(self, cid: int, report: StatusReport) -> None:
        """A new Swarm task state: a history entry with the raw state, the mapped container status."""
        fields = {key: value for key, value in report.ids.items() if not (self.container(cid) or {}).get(key)}
        self._update(cid, report.status, report.message, fields=fields,
                     history=HistoryItem(report.state, "service", report.message, report.exit_code))

    def _finalize(self, job: _Job, resolved: Resolved, mount_paths: dict[str, Path], ended: Exit) -> None:
        cid = job.container_id
        if job.killed:
            self._update(cid, "Failed (Killed)", job.kill_reason)
            return
        if ended.oom:
            self._update(cid, "Failed (Oom)", "The container ran out of memory")
            return
        if ended.failure is not None:  # the backend's own failure state (XNAT keeps its details)
            detail = ended.message or "Non-zero exit code and/or failure status from container"
            self._update(cid, ended.failure, detail)
            return
        if ended.code not in (None, 0):
            self._update(cid, "Failed", f"Non-zero exit code {ended.code}")
            return
        results = run_handlers(self.store, resolved.outputs, mount_paths, job.user)
        outputs = [r.as_json() for r in results]
        failed = [r for r in results if not r.ok and r.required]
        for r in results:
            if not r.ok:
                log.warning("container %s output %s failed: %s", cid, r.handler, r.message)
        if failed:
            self._update(cid, "Failed (Upload)", "; ".join(r.message for r in failed), fields={"outputs": outputs})
        else:
            self._update(cid, "Complete", None, fields={"outputs": outputs})

    def _check_permissions(self, user: str, resolved: Resolved) -> None:
        """The launching user must be able to read every object an input resolved to (B.2), and
        (plugin 3.2+) edit the parent of every output handler: XNAT fails such a launch at
        command resolution, before any container runs, rather than at upload."""
        from xnatsim.access import can

        def project_of(obj: Doc) -> Any:
            ident = obj.get("id") if obj.get("type") == "Project" else obj.get("project-id")
            return self.store.get_project(str(ident)) if ident else None

        for name, obj in resolved.objects.items():
            project = project_of(obj)
            if project is not None and not can(self.store, user, project, "read"):
                raise ResolutionError(
                    f'Input "{name}": user {user} does not have access to {obj.get("uri") or project.id}.')
        for out in resolved.outputs:
            parent = resolved.objects.get(out.parent_input)
            project = project_of(parent) if parent is not None else None
            if project is not None and not can(self.store, user, project, "edit"):
                raise ResolutionError(
                    f'Output handler "{out.handler}": user {user} cannot edit {parent.get("uri") if parent else ""} '
                    f'(as-a-child-of "{out.parent_input}").')

    def _prepare_mounts(self, command: Doc, resolved: Resolved) -> tuple[list[MountRecord], list[Path]]:
        """Create output build dirs (and writable copies); every mount with its host paths."""
        uid = self._container_uid(command)
        mounts: list[MountRecord] = []
        created: list[Path] = []
        for mount in resolved.mounts:
            if mount.source is None or mount.copy:
                folder = self.store.build_dir / str(uuid.uuid4())
                if mount.source is not None:
                    src = Path(mount.source)
                    if src.is_dir():
                        shutil.copytree(src, folder)
                    else:
                        folder.mkdir(parents=True)
                        shutil.copy2(src, folder / src.name)
                else:
                    folder.mkdir(parents=True)
                self._own(folder, uid)
                created.append(folder)
                host, read_only = folder, False
            else:
                host, read_only = Path(mount.source), mount.read_only
                if not host.exists():
                    host.mkdir(parents=True, exist_ok=True)  # XNAT creates missing mount dirs
            mounts.append(MountRecord(mount.name, not read_only, mount.container_path, str(host),
                                      self._translate(str(host)), mount.source))
        return mounts, created

    def _container_uid(self, command: Doc) -> int | None:
        user = self.settings.container_user
        if not user:
            try:
                user = self.backend.client.images.get(command["image"]).attrs["Config"].get("User") or ""
            except Exception:
                user = ""
        head = str(user).split(":", 1)[0]
        return int(head) if head.isdigit() else None

    @staticmethod
    def _own(folder: Path, uid: int | None) -> None:
        """Writable by the container's user only (XNAT: owner-only build dirs)."""
        if uid is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
            for root, dirs, files in os.walk(folder):
                for name in [*dirs, *files]:
                    os.chown(os.path.join(root, name), uid, -1)
            os.chown(folder, uid, -1)
            folder.chmod(0o700)
        else:
            folder.chmod(0o777)

    def _translate(self, path: str) -> str:
        src, dst = self.settings.path_translation_xnat_prefix, self.settings.path_translation_docker_prefix
        return path.replace(src, dst) if src and dst else path

    def _environment(self, resolved: Resolved, token: Doc, workflow_id: int | None) -> dict[str, str]:
        env = dict(resolved.environment)
        clash = [k for k in INJECTED_ENV if k in env]
        if clash:
            raise LaunchError(f"environment-variables may not define {', '.join(clash)} (injected by XNAT)")
        env["XNAT_HOST"] = self.settings.processing_url or self._server_url()
        env["XNAT_USER"] = token["alias"]
        env["XNAT_PASS"] = token["secret"]
        env["XNAT_WORKFLOW_ID"] = str(workflow_id or "")
        env["XNAT_EVENT_ID"] = str(workflow_id or "")
        return env

    def _tracking_labels(self, job: _Job, resolved: Resolved) -> dict[str, str]:
        if job.workflow_id is None:
            return {}
        wf = self.workflow(job.workflow_id) or {}
        return {"XNAT_DATATYPE": str(wf.get("data_type") or ""), "XNAT_PROJECT": str(wf.get("externalid") or ""),
                "XNAT_ID": str(wf.get("id") or ""), "XNAT_USER_ID": job.user}

    def _write_logs(self, cid: int, stdout: str, stderr: str) -> list[str]:
        folder = self.store.archive_dir / "CONTAINER_EXEC" / str(cid) / "LOGS"
        paths = []
        for name, text in (("stdout.log", stdout), ("stderr.log", stderr)):
            if text:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text, encoding="utf-8")
                paths.append(str(folder / name))
        return paths

    def log_text(self, container_id: int, stream: str) -> str | None:
        """Stored (or, while running, live) stdout/stderr; None when there is none."""
        record = self.container(container_id)
        if record is None:
            return None
        for path in record.get("log-paths") or []:
            if path.endswith(f"/{stream}.log"):
                return Path(path).read_text(encoding="utf-8")
        ref = _backend_ref(record)
        if ref and not record["status"].startswith(TERMINAL_PREFIXES):
            try:
                out, err = self.backend_for(record.get("backend") or "docker").logs(ref)
                return out if stream == "stdout" else err
            except Exception:
                return None
        return None


def _backend_ref(record: Doc) -> str | None:
    """The id of a record's object on its backend: a service id on Swarm, else the container id."""
    key = "service-id" if record.get("backend") == "swarm" else "container-id"
    ref = record.get(key)
    return str(ref) if ref else None


def _alive(pid: Any) -> bool:
    """Whether ``pid`` is another process that still runs (the one that queued a container)."""
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _secrets(command: Doc, resolved: Resolved) -> dict[str, str]:
    """Command ``secrets`` (A.8): XNAT reads a JVM system property; xnatsim reads its own environment
    variable of that name. A resolved input value containing a destination name fails the launch."""
    out: dict[str, str] = {}
    values = [v for v in [*resolved.wrapper_values.values(), *resolved.command_values.values()] if v]
    for secret in command.get("secrets") or []:
        source = (secret.get("source") or {}).get("identifier") or ""
        dest = (secret.get("destination") or {}).get("identifier") or ""
        if any(dest and dest in v for v in values):
            raise ResolutionError(f'An input value contains the secret destination name "{dest}".')
        if dest and source in os.environ:
            out[dest] = os.environ[source]
    return out


def _inputs_record(command: Doc, wrapper: Doc, resolved: Resolved) -> list[InputRecord]:
    sensitive = {i["name"] for i in [*command["inputs"], *wrapper["external-inputs"], *wrapper["derived-inputs"]]
                 if i.get("sensitive")}
    kinds = {i["name"]: "wrapper-external" for i in wrapper["external-inputs"]}
    kinds.update({i["name"]: "wrapper-derived" for i in wrapper["derived-inputs"]})
    rows = [InputRecord(kinds.get(name, "wrapper-external"), name, value, name in sensitive)
            for name, value in resolved.wrapper_values.items()]
    rows += [InputRecord("command", name, value, name in sensitive) for name, value in resolved.command_values.items()]
    return rows


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
