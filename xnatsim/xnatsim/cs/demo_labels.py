"""The demo's label-validation step: a naming convention stored in the demo project's config
(``xnatnode/labels``), the ``label-validation-project`` wrapper launched on the project, then the
on-archive path as a site sets it up: Event Service on, a ``SessionEvent``/``CREATED`` subscription
for ``label-validation-session``, and a session created over REST with a label that breaks the
convention; its LABEL_CHECK resource says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

PROJECT_WRAPPER = "label-validation-project"
SESSION_WRAPPER = "label-validation-session"
ACTION = "org.nrg.containers.services.CommandActionProvider:"
#: The demo project's labels: DEMO_NNN subjects, <subject>_<MOD><n> sessions (JSON is YAML too).
CONVENTION = {
    "subject": "^DEMO_[0-9]{3}$",
    "session": "{subject}_{modality}{visit}",
    "fields": {"visit": "^[0-9]$"},
    "modality": {"MR": "xnat:mrSessionData", "PET": "xnat:petSessionData", "CT": "xnat:ctSessionData"},
}
#: The session the on-archive part creates: a visit that is no digit.
BAD_LABEL = "DEMO_002_MRx"


def _await_delivery(client: Any, project: str, label: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in client.request("GET", f"/xapi/projects/{project}/events/delivered"):
            if d["trigger"].get("label") == label and d.get("container-id"):
                return int(d["container-id"])
        time.sleep(0.2)
    from xnatsim.cs.cli_common import CLIError

    raise CLIError(f"no container launched for {label} within {timeout:.0f} s", 1)


def run_step(client: Any, project: str, wrappers: dict[str, int], timeout: float,
             report: Callable[[dict[str, Any]], None]) -> int:
    """Project audit, then the on-archive path; 0 when both containers completed."""
    from xnatsim.cs.cli_launch import launch, show, wait_for

    client.request("PUT", f"/data/projects/{project}/config/xnatnode/labels", body=CONVENTION,
                   query={"inbody": "true"})
    print(f"stored a naming convention in {project}'s config xnatnode/labels")
    ids = launch(client, PROJECT_WRAPPER, [f"/archive/projects/{project}"], project=project, root=None,
                 params={})
    print(f"launched {PROJECT_WRAPPER} on {project}: container {ids[0]}")
    record: dict[str, Any] = wait_for(client, ids, timeout)[0]
    show(client, record, 8)
    report(record)
    if record["status"] != "Complete" or SESSION_WRAPPER not in wrappers:
        return 0 if record["status"] == "Complete" else 1

    client.request("PUT", "/xapi/events/prefs", body={"enabled": True})
    subscriptions = client.request("GET", f"/xapi/projects/{project}/events/subscriptions")
    if not any(s["name"] == "label-validation on archive" for s in subscriptions):
        client.request("POST", f"/xapi/projects/{project}/events/subscription", body={
            "name": "label-validation on archive", "active": True,
            "action-key": f"{ACTION}{wrappers[SESSION_WRAPPER]}",
            "event-filter": {"event-type": "org.nrg.xnat.eventservice.events.SessionEvent",
                             "status": "CREATED", "project-ids": [project]}})
    print(f"Event Service on; {SESSION_WRAPPER} subscribed to sessions created in {project}")
    client.request("PUT", f"/data/projects/{project}/subjects/DEMO_002/experiments/{BAD_LABEL}",
                   query={"xsiType": "xnat:mrSessionData"})
    print(f"created session {BAD_LABEL} over REST (empty): the archive event fires")
    container = _await_delivery(client, project, BAD_LABEL, timeout)
    record = wait_for(client, [container], timeout)[0]
    show(client, record, 8)
    report(record)
    findings = client.request(
        "GET", f"/data/projects/{project}/experiments/{BAD_LABEL}/resources/LABEL_CHECK/files/findings.json")
    if isinstance(findings, dict):
        rules = ", ".join(sorted({f["rule"] for f in findings.get("findings", [])})) or "none"
        print(f"{BAD_LABEL}: verdict {findings.get('verdict')} (rules: {rules})")
    return 0 if record["status"] == "Complete" else 1
