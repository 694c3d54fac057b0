"""``python -m xnatsim seed``: build synthetic projects (or the demo project) into a data folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

NAME = "seed"
HELP = "build synthetic projects of a given size (or a named preset such as demo) into DIR"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="data folder (database + archive)")
    parser.add_argument("--preset", default=None,
                        help="a named data set instead of the size flags: demo, empty, small, medium, bench")
    parser.add_argument("--projects", type=int, default=1, help="number of projects (default 1)")
    parser.add_argument("--project-prefix", default="SYN",
                        help="project ID, or its prefix when --projects > 1 (PREFIX01…; default SYN)")
    parser.add_argument("--subjects", type=int, default=10, help="subjects per project (default 10)")
    parser.add_argument("--sessions-per-subject", type=int, default=2, help="default 2")
    parser.add_argument("--scans-per-session", type=int, default=4, help="default 4")
    parser.add_argument("--files-per-scan", type=int, default=2, help="default 2")
    parser.add_argument("--files", choices=("dicom", "nifti", "tiny", "none"), default="tiny",
                        help="file content: real DICOM, real NIfTI, tiny placeholders, or no files (default tiny)")
    parser.add_argument("--tiny-size", type=int, default=64, help="bytes per tiny placeholder file (default 64)")
    parser.add_argument("--image-size", type=int, default=16, help="DICOM rows/columns, NIfTI edge (default 16)")
    parser.add_argument("--modalities", default="MR",
                        help="comma-separated session modalities used in turn: MR, PT, CT (default MR)")
    parser.add_argument("--inconsistent-headers", type=_fraction, default=0.0, metavar="FRACTION",
                        help="fraction of sessions whose DICOM headers disagree with their labels (needs --files dicom)")
    parser.add_argument("--random-seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--site-id", default="XNATSIM", help="prefix of generated IDs (as serve --site-id)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="where to write the JSON manifest (default DIR/seed-manifest-<name>.json; - for stdout)")


def run(args: argparse.Namespace) -> int:
    from xnatsim import seed
    from xnatsim.store import Store

    spec: str | seed.SeedSpec
    if args.preset is not None:
        spec = args.preset
        name = args.preset
    else:
        try:
            spec = seed.SeedSpec(
                projects=args.projects, subjects=args.subjects, sessions_per_subject=args.sessions_per_subject,
                scans_per_session=args.scans_per_session, files_per_scan=args.files_per_scan, files=args.files,
                tiny_size=args.tiny_size, inconsistent_headers=args.inconsistent_headers,
                random_seed=args.random_seed, project_prefix=args.project_prefix,
                modalities=tuple(m.strip().upper() for m in args.modalities.split(",") if m.strip()),
                image_size=args.image_size,
            ).check()
        except seed.SeedError as exc:
            print(f"seed: {exc}", file=sys.stderr)
            return 2
        name = args.project_prefix
    store = Store(args.data, site_id=args.site_id)
    started = time.monotonic()
    try:
        manifest = seed.apply(store, spec)
    except seed.SeedError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if manifest.get("skipped"):
        print(f"seed {name}: projects {', '.join(manifest['existing'])} exist already; nothing written",
              file=sys.stderr)
        return 0
    manifest["seconds"] = round(time.monotonic() - started, 3)
    text = json.dumps(manifest, indent=1) + "\n"
    if args.manifest is not None and str(args.manifest) == "-":
        sys.stdout.write(text)
    else:
        target = args.manifest or args.data / f"seed-manifest-{name}.json"
        seed.write_manifest(manifest, target)
        totals = manifest["totals"]
        print(f"seeded {name}: {totals['projects']} projects, {totals['subjects']} subjects, "
              f"{totals['sessions']} sessions, {totals['scans']} scans, {totals['files']} files, "
              f"{totals['bytes']} bytes in {manifest['seconds']} s; manifest {target}", file=sys.stderr)
    return 0
