"""XNAT's schema documents, as ``/xapi/schemas`` serves them.

``xnat`` and ``xdat`` are XNAT's real XSDs, taken from the xnat 0.8.1 sdist on PyPI
(``xnat/tests/xnat.xml``, ``xdat.xml``) and cached under ``~/.cache/xnatsim/schemas`` (or
``--schema-cache``); they are never committed. For the other names a stock XNAT 1.8 lists, whose
text we do not ship, a minimal valid XSD with the right target namespace is served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger("xnatsim.schemas")

#: names listed by ``GET /xapi/schemas`` (what a stock XNAT 1.8 finds on its classpath)
SCHEMA_NAMES: tuple[str, ...] = (
    "security", "xnat", "xdat", "catalog", "project", "arc", "prov", "assessments",
    "screening/screeningAssessment", "validation/protocolValidation", "birn/birnprov",
    "pipeline/build", "pipeline/repository", "pipeline/workflow",
    "xdat/display", "xdat/instance", "xdat/PlexiViewer",
)
#: the real documents we fetch: name → (member of the sdist, md5)
REAL_SCHEMAS: dict[str, tuple[str, str]] = {
    "xnat": ("xnat-0.8.1/xnat/tests/xnat.xml", "65b06fa3a63cf35a2755b3f89d57db75"),
    "xdat": ("xnat-0.8.1/xnat/tests/xdat.xml", "3599fb3205694ae52a839cadac9a7fc7"),
}
SDIST = "xnat==0.8.1"
#: cache folders whose download already failed in this process (no second wait per test server)
_FAILED: set[Path] = set()


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xnatsim" / "schemas"


def _cached(cache: Path, name: str) -> Path:
    return cache / f"{name}.xsd"


def _valid(path: Path, md5: str) -> bool:
    return path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == md5


def fetch(cache: Path | None = None, *, timeout: float = 180) -> bool:
    """Download the xnat 0.8.1 sdist with pip and cache ``xnat``/``xdat``; True when both are there."""
    cache = cache or default_cache()
    if all(_valid(_cached(cache, n), md5) for n, (_, md5) in REAL_SCHEMAS.items()):
        return True
    if cache in _FAILED:
        return False
    cache.mkdir(parents=True, exist_ok=True)
    ok = _download(cache, timeout)
    if not ok:
        _FAILED.add(cache)
    return ok


def _download(cache: Path, timeout: float) -> bool:
    with tempfile.TemporaryDirectory(prefix="xnatsim-sdist-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               SDIST, "-d", tmp]
        try:
            subprocess.run(cmd, check=True, timeout=timeout, capture_output=True)
        except (subprocess.SubprocessError, OSError) as exc:
            log.warning("could not download %s to get XNAT's schemas (%s); serving minimal schemas — "
                        "xnatpy cannot build its classes until `python -m xnatsim fetch-schemas` works", SDIST,
                        type(exc).__name__)
            return False
        archives = list(Path(tmp).glob("*.tar.gz"))
        if not archives:
            log.warning("pip download of %s produced no sdist", SDIST)
            return False
        with tarfile.open(archives[0], "r:gz") as tar:
            for name, (member, md5) in REAL_SCHEMAS.items():
                try:
                    handle = tar.extractfile(member)
                    data = handle.read() if handle is not None else b""
                except (KeyError, tarfile.TarError) as exc:
                    log.warning("%s not readable in %s: %s", member, archives[0].name, exc)
                    return False
                if hashlib.md5(data).hexdigest() != md5:
                    log.warning("%s has an unexpected checksum; not cached", member)
                    return False
                target = _cached(cache, name)
                tmp_target = target.with_suffix(".tmp")
                tmp_target.write_bytes(data)
                shutil.move(str(tmp_target), target)
    log.info("cached XNAT schemas xnat, xdat in %s", cache)
    return True


def minimal_schema(name: str) -> str:
    """A valid, empty XSD for a schema whose text we do not have."""
    namespace = name.split("/", 1)[0]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<xs:schema targetNamespace="http://nrg.wustl.edu/{namespace}" '
        f'xmlns:{namespace}="http://nrg.wustl.edu/{namespace}" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified"/>\n'
    )


class Schemas:
    """The schema documents of one server (loaded once)."""

    def __init__(self, cache: Path | None = None, *, fetch_missing: bool = True) -> None:
        self.cache = cache or default_cache()
        if fetch_missing:
            fetch(self.cache)
        self.documents: dict[str, bytes] = {}
        self.real: set[str] = set()
        for name in SCHEMA_NAMES:
            path = _cached(self.cache, name) if name in REAL_SCHEMAS else None
            if path is not None and _valid(path, REAL_SCHEMAS[name][1]):
                self.documents[name] = path.read_bytes()
                self.real.add(name)
            else:
                if name in REAL_SCHEMAS:
                    log.warning("schema %s is not cached in %s; serving a minimal document", name, self.cache)
                self.documents[name] = minimal_schema(name).encode("utf-8")

    def get(self, name: str) -> bytes | None:
        return self.documents.get(name)
