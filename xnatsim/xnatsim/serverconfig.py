"""What ``python -m xnatsim serve`` can set, in a module of its own: the server builds its
:class:`~xnatsim.server.App` from it and :mod:`xnatsim.routing` names it in the app's view handlers
get, without importing the server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY = 4 * 1024**3
#: worker processes per DICOM receiver: one per core, at most 4 (XNAT's receiver uses every core)
DEFAULT_DICOM_PROCESSES = max(1, min(4, os.cpu_count() or 1))


@dataclass
class ServerConfig:
    """Everything ``python -m xnatsim serve`` can set."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    fail_every: int = 0
    drop_every: int = 0
    fail_status: int = 503
    #: request bodies above this many bytes are refused with 413
    max_body: int = DEFAULT_MAX_BODY
    #: where the XNAT schemas are cached (default ``~/.cache/xnatsim/schemas``)
    schema_cache: Path | None = None
    #: fetch missing schemas from PyPI at start-up
    fetch_schemas: bool = True
    site_id: str = "XNATSIM"
    #: refuse subject/experiment labels outside ``[A-Za-z0-9_-]`` with 417
    strict_labels: bool = False
    #: log every request at INFO
    log_requests: bool = False
    #: seconds a connection may sit idle (or stall mid-request) before it is closed, like Tomcat's
    #: connectionTimeout; keeps clients that never finish a request from holding threads forever
    idle_timeout: float = 120.0
    #: the version the site reports (``/xapi/siteConfig/buildInfo``)
    xnat_version: str = "1.8.10"
    #: port of the DICOM C-STORE receiver (None = no receiver; 0 = a free port)
    dicom_port: int | None = None
    #: AE title of that receiver
    dicom_ae: str = "XNAT"
    #: worker processes serving each DICOM receiver's associations (:mod:`xnatsim.scpworker`)
    dicom_processes: int = DEFAULT_DICOM_PROCESSES
    #: seconds a receiving session stays idle before it is built (XNAT's default 5 minutes)
    session_idle_seconds: float = 300.0
