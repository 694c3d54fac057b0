"""The data layer: SQLite (WAL) for metadata plus an archive directory in XNAT's layout.

Layout under the data directory::

    xnatsim.db                       metadata (projects … files, users, tokens, configs)
    archive/<PROJECT>/resources/<label>/…                         project resources
    archive/<PROJECT>/subjects/<SUBJECT>/resources/<label>/…      subject resources
    archive/<PROJECT>/arc001/<SESSION>/RESOURCES/<label>/…        session resources
    archive/<PROJECT>/arc001/<SESSION>/SCANS/<scan>/<label>/…     scan resources
    archive/<PROJECT>/arc001/<SESSION>/ASSESSORS/<ASSESSOR>/<label>/…  image-assessor resources
    tmp/                             staging area: uploads land here, then move into place
    build/                           Container Service build (output) directories

Every resource folder also holds XNAT's catalog file ``<label>_catalog.xml``.

Objects are plain dataclasses. Free-form fields (``date``, ``gender``, ``series_description`` …)
live in each object's ``fields`` dict keyed by the XSD path relative to the object (``date``,
``scanner/manufacturer``, ``parameters/tr``; subject demographics by their bare name,
``gender``); values are strings. Errors are :class:`StoreError` with XNAT's status and text.

Thread safety: one SQLite connection per thread; writes are serialised by a lock.
Listeners (:meth:`Store.add_listener`) are called after each committed change with
``(event, xsi_type, object_dict)`` where ``event`` is ``"created"``, ``"updated"`` or
``"deleted"`` and ``object_dict["kind"]`` is ``project``/``subject``/``experiment``/``scan``/
``resource``. The Event Service mostly wants ``kind == "experiment"``.

The package, by concern (each layer a class the next one builds on; :class:`Store` joins them):

    models      the objects (dataclasses), :class:`StoreError`, small types
    checks      what a name or a file path inside a resource may be
    schema      the SQLite tables;  rows: column lists and row -> object mapping
    base        folders, connections, write transactions, listeners, site-wide IDs
    accounts    users, roles, web sessions, alias tokens
    configs     versioned config entries
    files       a resource's files, staging, catalog files and statistics
    hierarchy   projects, subjects, experiments, scans
    resources   resources on their parents
    bulk        :class:`BulkLoader`, fast seeding
    store       :class:`Store`

Import from here (``from xnatsim.store import Store, Parent``), not from the modules.
"""

from .bulk import BulkLoader
from .checks import CATALOG_SUFFIX, MAX_NAME_BYTES, check_name, check_relpath
from .files import md5_file
from .models import (
    ROLES,
    ConfigEntry,
    Experiment,
    FieldValues,
    FileEntry,
    Listener,
    Parent,
    ParentKind,
    Project,
    Resource,
    Role,
    Scan,
    StagedFile,
    StoreError,
    Subject,
    User,
    now_text,
    time_text,
)
from .rows import scan_order
from .store import Store

__all__ = [
    "CATALOG_SUFFIX", "MAX_NAME_BYTES", "ROLES", "BulkLoader", "ConfigEntry", "Experiment", "FieldValues",
    "FileEntry", "Listener", "Parent", "ParentKind", "Project", "Resource", "Role", "Scan", "StagedFile",
    "Store", "StoreError", "Subject", "User", "check_name", "check_relpath", "md5_file", "now_text", "scan_order",
    "time_text",
]
