"""The demo's nifti-import step: a small BIDS batch (NIfTI written by nibabel, JSON sidecars,
events) uploaded as one zip into the demo project's ``NIFTI_UPLOAD`` resource, then the
``nifti-import-project`` wrapper launched on the project, as a site would do it."""

from __future__ import annotations

import base64
import io
import json
import urllib.request
import zipfile
from collections.abc import Callable
from typing import Any

from xnatsim import synth

WRAPPER = "nifti-import-project"
RESOURCE = "NIFTI_UPLOAD"


def batch_zip() -> bytes:
    """Two subjects, one visit: a T1w and a resting-state run with their sidecars."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n, sub in enumerate(("nifti01", "nifti02")):
            stem = f"sub-{sub}/ses-baseline"
            name = f"sub-{sub}_ses-baseline"
            archive.writestr(f"{stem}/anat/{name}_T1w.nii.gz", synth.nifti_bytes(f"{sub} T1w", seed=n))
            archive.writestr(f"{stem}/anat/{name}_T1w.json", json.dumps(
                {"RepetitionTime": 2.3, "EchoTime": 0.00293, "FlipAngle": 9, "SeriesDescription": "MPRAGE"}))
            archive.writestr(f"{stem}/func/{name}_task-rest_run-1_bold.nii.gz",
                             synth.nifti_bytes(f"{sub} bold", shape=(16, 16, 12), seed=10 + n))
            archive.writestr(f"{stem}/func/{name}_task-rest_run-1_bold.json",
                             json.dumps({"RepetitionTime": 2.0, "EchoTime": 0.03, "ProtocolName": "rest"}))
            archive.writestr(f"{stem}/func/{name}_task-rest_run-1_events.tsv", "onset\tduration\n0\t60\n")
        archive.writestr("dataset_description.json", json.dumps({"Name": "demo", "BIDSVersion": "1.9.0"}))
    return out.getvalue()


def upload(url: str, user: str, password: str, project: str) -> None:
    """PUT the batch into the project resource, extracted (what a site's ``curl`` would do)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/data/projects/{project}/resources/{RESOURCE}/files/batch.zip?extract=true&overwrite=true",
        data=batch_zip(), method="PUT",
        headers={"Authorization": "Basic " + token, "Content-Type": "application/zip"})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def run_step(client: Any, user: str, password: str, project: str, timeout: float,
             report: Callable[[dict[str, Any]], None]) -> int:
    """Upload the batch, launch the wrapper, wait and show the outcome; 0 when it completed."""
    from xnatsim.cs.cli_launch import launch, show, wait_for

    upload(client.url, user, password, project)
    print(f"uploaded a BIDS batch to {project}'s {RESOURCE} resource")
    ids = launch(client, WRAPPER, [f"/archive/projects/{project}"], project=project, root=None, params={})
    print(f"launched {WRAPPER} on {project}: container {ids[0]}")
    record: dict[str, Any] = wait_for(client, ids, timeout)[0]
    show(client, record, 15)
    report(record)
    return 0 if record["status"] == "Complete" else 1
