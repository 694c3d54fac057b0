"""xnatsim upload throughput: a 200 MB resource as one stored zip with ``extract=true``, against raw disk.

Builds ``--files`` incompressible files totalling ``--mb`` MB, zips them with ZIP_STORED, and times:

* raw disk: writing the same bytes to one file on the filesystem of the data folder, with fsync;
* raw copy: copying the zip file on that filesystem (read + write, with fsync);
* xnatsim: ``PUT /data/projects/P/resources/BIG/files/big.zip?extract=true`` (streamed from disk,
  ``Content-Type: application/octet-stream``, as xnatpy sends it) to ``python -m xnatsim serve``
  on 127.0.0.1 in its own process, until the 200 reply (the server has then received, unpacked,
  hashed and catalogued every file), then checks the stored file count, bytes and one MD5.

    python benchmarks/xnatsim_upload.py [--mb 200] [--files 40] [--repeat 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from xnatsim.store import Parent
from xnatsim.testing import running_server

PROJECT = "UPLOAD"


def raw_write(target: Path, chunk: bytes, total: int) -> float:
    started = time.perf_counter()
    with target.open("wb") as handle:
        written = 0
        while written < total:
            handle.write(chunk[: total - written])
            written += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def raw_copy(source: Path, target: Path) -> float:
    started = time.perf_counter()
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 4 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (1 <= args.mb <= 2000 and 1 <= args.files <= 10_000 and 1 <= args.repeat <= 10):
        parser.error("mb 1..2000, files 1..10000, repeat 1..10")
    total = args.mb * 1_000_000
    per_file = total // args.files
    results: dict[str, Any] = {"mb": args.mb, "files": args.files}
    with tempfile.TemporaryDirectory(prefix="xnatsim-upload-") as tmp:
        work = Path(tmp)
        chunk = os.urandom(4 << 20)
        archive = work / "big.zip"
        digests: dict[str, str] = {}
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
            for n in range(args.files):
                data = (chunk * (per_file // len(chunk) + 1))[:per_file]
                data = n.to_bytes(4, "big") + data[4:]  # distinct content per file
                name = f"series_{n // 10:02d}/image_{n:04d}.dat"
                out.writestr(name, data)
                digests[name] = hashlib.md5(data).hexdigest()
        zip_bytes = archive.stat().st_size
        results["zip_bytes"] = zip_bytes
        data_dir = work / "data"
        data_dir.mkdir()
        writes = [raw_write(data_dir / "raw.bin", chunk, zip_bytes) for _ in range(args.repeat)]
        copies = [raw_copy(archive, data_dir / "copy.zip") for _ in range(args.repeat)]
        uploads: list[float] = []
        with running_server(data_dir, in_process=False, fetch_schemas=False) as server:
            server.store.put_project(PROJECT, {}, user="admin")
            http = server.session()
            http.get(server.url + "/data/JSESSION", timeout=60).raise_for_status()
            for n in range(args.repeat):
                label = f"BIG{n}"
                started = time.perf_counter()
                with archive.open("rb") as body:
                    response = http.put(f"{server.url}/data/projects/{PROJECT}/resources/{label}/files/big.zip",
                                        params={"extract": "true"}, data=body, timeout=1800,
                                        headers={"Content-Type": "application/octet-stream",
                                                 "Content-Length": str(zip_bytes)})
                uploads.append(time.perf_counter() - started)
                if response.status_code != 200:
                    print(f"upload failed: {response.status_code} {response.text[:300]}", file=sys.stderr)
                    return 1
                resource = server.store.get_resource(Parent("project", PROJECT), label)
                assert resource is not None
                assert (resource.file_count, resource.file_size) == (args.files, per_file * args.files), resource
                entry = server.store.get_file(resource.id, next(iter(digests)))
                assert entry is not None
                assert entry.md5 == digests[entry.path]
        mb = zip_bytes / 1e6
        results.update({
            "raw_write_fsync_s": round(statistics.median(writes), 2),
            "raw_write_fsync_MBps": round(mb / statistics.median(writes), 1),
            "raw_copy_fsync_s": round(statistics.median(copies), 2),
            "raw_copy_fsync_MBps": round(mb / statistics.median(copies), 1),
            "xnatsim_upload_extract_s": round(statistics.median(uploads), 2),
            "xnatsim_upload_extract_MBps": round(mb / statistics.median(uploads), 1),
            "xnatsim_runs_s": [round(u, 2) for u in uploads],
            "ratio_to_raw_write": round(statistics.median(writes) / statistics.median(uploads), 2),
        })
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
