"""Real NIfTI batches for nifti-import's tests, written with nibabel (BIDS trees, zips, bad files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np


def write_image(path: Path, shape: tuple[int, ...] = (8, 8, 4), *, version: int = 1,
                zooms: tuple[float, ...] = (1.0, 1.0, 2.0), seed: int = 0) -> Path:
    """A small image with real data (``.nii`` or ``.nii.gz`` by the name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 1000, size=shape, dtype=np.int16)
    cls = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    image = cls(data, np.diag([*zooms[:3], 1.0]))
    padded = (*zooms, *([2.0] * len(shape)))
    image.header.set_zooms(padded[: len(shape)])
    nib.save(image, str(path))
    return path


def write_sidecar(path: Path, **values: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values), encoding="utf-8")
    return path


def bids_batch(root: Path, subjects: tuple[str, ...] = ("01", "02"), sessions: tuple[str | None, ...] = ("v1",),
               *, gz: bool = True) -> list[Path]:
    """A BIDS tree: per subject and session a T1w (with sidecar), two BOLD runs (sidecars, events)
    and a DWI (bval/bvec). Returns the image paths."""
    ext = ".nii.gz" if gz else ".nii"
    images: list[Path] = []
    for n, sub in enumerate(subjects):
        for ses in sessions:
            folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "")
            stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
            t1 = write_image(folder / "anat" / f"{stem}_T1w{ext}", seed=n)
            write_sidecar(t1.with_name(f"{stem}_T1w.json"), RepetitionTime=2.3, EchoTime=0.00293,
                          InversionTime=0.9, FlipAngle=9, SeriesDescription="MPRAGE 1mm")
            images.append(t1)
            for run in (1, 2):
                bold = write_image(folder / "func" / f"{stem}_task-rest_run-{run}_bold{ext}", (6, 6, 4, 5),
                                   zooms=(3.0, 3.0, 3.0, 2.0), seed=10 * n + run)
                write_sidecar(bold.with_name(f"{stem}_task-rest_run-{run}_bold.json"), RepetitionTime=2.0,
                              EchoTime=0.03, ProtocolName=f"rest run {run}")
                (bold.parent / f"{stem}_task-rest_run-{run}_events.tsv").write_text(
                    "onset\tduration\ttrial_type\n0\t10\trest\n", encoding="utf-8")
                images.append(bold)
            dwi = write_image(folder / "dwi" / f"{stem}_dwi{ext}", (6, 6, 4, 3), seed=100 + n)
            (dwi.parent / f"{stem}_dwi.bval").write_text("0 1000 1000\n", encoding="utf-8")
            (dwi.parent / f"{stem}_dwi.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n", encoding="utf-8")
            images.append(dwi)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "test", "BIDSVersion": "1.9.0"}),
                                                   encoding="utf-8")
    return images


def run_import(out: Path, project: str, *args: str) -> tuple[int, dict[str, Any]]:
    """``xnatnode nifti-import --project PROJECT --output OUT ARGS``: exit status and the report."""
    from xnatnode.cli import main

    status = main(["nifti-import", "--project", project, "--output", str(out), *args])
    path = out / "import-report.json"
    return status, json.loads(path.read_text()) if path.exists() else {}
