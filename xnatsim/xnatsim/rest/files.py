"""Files (xnat-rest-spec §8): listings, download (file, zip, tar.gz), upload (raw or multipart,
``extract=true``, ``overwrite=true``, the duplicates reply) and delete.

Uploads are written to a staging file (a raw body) or folder (multipart parts, extracted archives),
checked, then moved into the archive, so a refused upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import shutil
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import IO

from xnatsim import archives, multipart
from xnatsim.rest.common import EXPERIMENT_BASES, RESOURCE_PARENTS, Context, check_label, resolve
from xnatsim.rest.resources import get_resource
from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import FileEntry, Resource, StagedFile, Store, StoreError, check_relpath

FILE_COLUMNS = ("Name", "Size", "URI", "collection", "file_tags", "file_format", "file_content", "cat_ID", "digest")
_NO_DATA = ("You tried to PUT to this service, but didn't provide any data (found no multipart form data or "
            "in-body content).")
_TEXT_TYPES = {".txt": "text/plain", ".xml": "text/xml", ".json": "application/json", ".csv": "text/csv",
               ".html": "text/html", ".htm": "text/html"}
#: an experiment's scans given as ALL or a comma-separated list
SCAN_SET_BASES = (EXPERIMENT_BASES[0] + "/scans/{scans}", EXPERIMENT_BASES[2] + "/scans/{scans}")

Selection = list[tuple[Context, Resource, FileEntry]]


# --------------------------------------------------------------------------- selection


def _scan_contexts(request: Request, ctx: Context) -> list[Context]:
    """Contexts for every scan named by ``{scans}`` (``ALL`` or ``1,2``)."""
    assert ctx.experiment is not None
    wanted = request.params["scans"]
    scans = request.store.list_scans(ctx.experiment.id)
    if wanted.upper() != "ALL":
        ids = {s.strip() for s in wanted.split(",")}
        scans = [s for s in scans if s.id in ids]
        if not scans:
            raise HTTPError(404, "Unable to find the specified scan.")
    return [Context(ctx.project, ctx.subject, ctx.experiment, scan, ctx.form) for scan in scans]


def _resources(request: Request, contexts: list[Context], label: str | None) -> list[tuple[Context, Resource]]:
    return [(ctx, resource) for ctx in contexts for resource in request.store.list_resources(ctx.parent())
            if label is None or label in (resource.label, str(resource.id))]


def _select(request: Request, pairs: list[tuple[Context, Resource]], prefix: str = "") -> Selection:
    return [(ctx, resource, entry) for ctx, resource in pairs
            for entry in request.store.list_files(resource.id, prefix)]


def _uri(ctx: Context, resource: Resource, entry: FileEntry) -> str:
    return f"{ctx.base_uri()}/resources/{resource.id}/files/{entry.path}"


def _files_table(request: Request, selection: Selection) -> Response:
    store = request.store
    locator = (request.query.get("locator") or "").lower()

    def rows() -> Iterator[tuple[str, ...]]:
        for ctx, resource, entry in selection:
            uri = _uri(ctx, resource, entry)
            if locator == "absolutepath":
                uri = str(store.file_path(resource, entry))
            elif locator == "projectpath":
                uri = str(store.file_path(resource, entry).relative_to(store.archive_dir / resource.parent.project))
            yield (entry.name, str(entry.size), uri, resource.label, entry.tags, entry.format, entry.content,
                   str(resource.id), entry.md5)

    return table_response(request, FILE_COLUMNS, rows(), title="Files", count=False,
                          column_props=[{"key": "URI", "serverRoot": ""}])


def _zip_name(ctx: Context, resource: Resource, entry: FileEntry, structure: str) -> str:
    """The member path XNAT uses in a download zip (``E1/scans/1-T1/resources/NIFTI/files/x``)."""
    simplified = structure == "simplified"
    inner = f"{resource.label}/{entry.path}" if simplified else f"resources/{resource.label}/files/{entry.path}"
    if ctx.experiment is not None:
        top = ctx.experiment.label
        if ctx.scan is not None:
            scan_dir = ctx.scan.id if simplified else (
                f"{ctx.scan.id}-{re.sub(r'[^A-Za-z0-9_]', '_', ctx.scan.fields.get('type', ''))}"
                if ctx.scan.fields.get("type") else ctx.scan.id)
            return f"{top}/scans/{scan_dir}/{inner}"
        return f"{top}/{inner}"
    if ctx.subject is not None:
        return f"{ctx.subject.label}/{inner}"
    assert ctx.project is not None
    return f"{ctx.project.id}/{inner}"


def _archive_response(request: Request, selection: Selection, fmt: str, name: str) -> Response:
    if not selection:
        raise HTTPError(404, "No files found.")
    store = request.store
    structure = (request.query.get("structure") or "").lower()
    entries = [(_zip_name(ctx, res, entry, structure), store.file_path(res, entry)) for ctx, res, entry in selection]
    if fmt == "zip":
        body = archives.stream_zip(entries)
        media, suffix = "application/zip", ".zip"
    else:
        gz = fmt in ("tar.gz", "tgz")
        body = archives.stream_tar(entries, gzip=gz)
        media, suffix = ("application/x-gzip", ".tar.gz") if gz else ("application/x-tar", ".tar")
    return Response(200, body, media, {"Content-Disposition": f'attachment; filename="{name}{suffix}"'})


def _listing_or_archive(request: Request, selection: Selection, name: str) -> Response:
    fmt = request.format("json")
    if fmt in ("zip", "tar.gz", "tgz", "tar"):
        return _archive_response(request, selection, fmt, name)
    return _files_table(request, selection)


def _object_name(ctx: Context) -> str:
    if ctx.experiment is not None:
        return ctx.experiment.label
    if ctx.subject is not None:
        return ctx.subject.label
    assert ctx.project is not None
    return ctx.project.id


def _file_response(path: Path, name: str) -> Response:
    try:  # opened now: a file deleted since its lookup is a 404, and a replaced one stays whole
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise HTTPError(404, "Unable to find file.") from exc
    status = os.fstat(handle.fileno())
    suffix = Path(name).suffix.lower()
    media = _TEXT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    # XNAT serves files through Restlet's FileRepresentation, which sets the modification date
    # [inferred from Restlet; not checked on a live XNAT].
    return Response(200, _FileChunks(handle), media, {
        "Content-Length": str(status.st_size), "Content-Disposition": f'inline; filename="{name}"',
        "Last-Modified": formatdate(status.st_mtime, usegmt=True)})


class _FileChunks:
    """An open file as an iterator of chunks; ``close()`` (called by the server) closes the file."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = self._handle.read(1 << 20)
        if not chunk:
            self._handle.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        self._handle.close()


# --------------------------------------------------------------------------- upload


def _stage_stream(request: Request, target: Path) -> tuple[Path, int, str]:
    digest = hashlib.md5()
    size = 0
    with target.open("xb") as out:
        remaining = request.content_length
        while remaining > 0:
            chunk = request.body.read(min(1 << 20, remaining))
            if not chunk:
                raise HTTPError(400, "The request body ended early.")
            remaining -= len(chunk)
            size += len(chunk)
            digest.update(chunk)
            out.write(chunk)
    return target, size, digest.hexdigest()


def upload(request: Request, ctx: Context, label: str, path: str | None) -> Response:
    store: Store = request.store
    query = request.query
    if path is not None:
        try:
            check_relpath(path)
        except StoreError as exc:
            raise HTTPError(400, exc.message) from exc
    is_multipart = request.content_type == "multipart/form-data"
    if is_multipart and query.flag("inbody"):
        raise HTTPError(406, "Multipart bodies cannot be sent with inbody=true.")
    if request.content_length <= 0:
        raise HTTPError(400, _NO_DATA)
    folder: Path | None = None  # made only when needed: multipart parts, an archive to extract
    body_file: Path | None = None
    try:
        incoming: list[tuple[str, Path, int, str]] = []
        if is_multipart:
            folder = store.stage()
            boundary = multipart.boundary_of(request.headers.get("content-type", ""))
            parts = [p for p in multipart.read_parts(request.body, request.content_length, boundary, folder)
                     if p.filename is not None or path is not None]
            if not parts:
                raise HTTPError(400, _NO_DATA)
            for part in parts:
                name = path if (path is not None and len(parts) == 1) else (part.filename or "")
                name = name.replace("\\", "/").rsplit("/", 1)[-1] if path is None else name
                incoming.append((name, part.path, part.size, part.md5))
        else:
            if path is None:
                raise HTTPError(400, "A file name is needed: PUT to …/files/<name> or send multipart/form-data.")
            body_file = store.stage_path()
            body, size, md5 = _stage_stream(request, body_file)
            incoming.append((path, body, size, md5))
        extract = query.flag("extract")
        file_format = query.get("format") or query.get("file_format") or ""
        file_content = query.get("content") or query.get("file_content") or ""
        tags = query.get("tags") or query.get("file_tags") or ""
        staged: list[StagedFile] = []
        for name, source, size, md5 in incoming:
            try:
                check_relpath(name)
            except StoreError as exc:
                raise HTTPError(400, exc.message) from exc
            if extract and archives.is_archive(name):
                folder = folder or store.stage()
                out = folder / f"x-{len(staged)}"
                out.mkdir()
                base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
                for rel, member, member_size, member_md5 in archives.extract_hashed(
                        source, name, out, max_bytes=request.app.config.max_body * 10):
                    staged.append(StagedFile(base + rel, member, member_size, member_md5, file_format,
                                             file_content, tags))
                source.unlink(missing_ok=True)
            else:
                staged.append(StagedFile(name, source, size, md5, file_format, file_content, tags))
        for item in staged:
            try:
                check_relpath(item.path)
            except StoreError as exc:
                raise HTTPError(400, exc.message) from exc
        resource = store.get_resource(ctx.parent(), label) or store.create_resource(
            ctx.parent(), label, exist_ok=True)[0]
        conflict = store.path_conflicts(resource.id, [s.path for s in staged])
        if conflict is not None:
            raise HTTPError(409, conflict)
        overwrite = query.flag("overwrite")
        duplicates = store.add_files(resource, staged, overwrite=overwrite)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if body_file is not None:
            body_file.unlink(missing_ok=True)  # moved into the archive unless the upload was refused
    if duplicates:
        return Response(200, json.dumps({"duplicates": duplicates}).encode(), "text/html;charset=UTF-8")
    return Response.empty()


# --------------------------------------------------------------------------- routes


routes = Routes()

RESOURCE_FILES = tuple(p + "/resources/{resource}/files" for p in RESOURCE_PARENTS)
RESOURCE_FILE = tuple(p + "/resources/{resource}/files/{path:path}" for p in RESOURCE_PARENTS)
PARENT_FILES = tuple(p + "/files" for p in RESOURCE_PARENTS if not p.endswith("/scans/{scan}"))
SCAN_SET_FILES = tuple(b + "/files" for b in SCAN_SET_BASES)


@routes.route("GET", *RESOURCE_FILES)
def list_resource(request: Request) -> Response:
    scan = request.params.get("scan", "")
    if scan.upper() == "ALL" or "," in scan:
        request.params["scans"] = request.params.pop("scan")
        return list_scans(request)
    ctx = resolve(request)
    resource = get_resource(request, ctx)
    return _listing_or_archive(request, _select(request, [(ctx, resource)]), resource.label)


@routes.route("GET", *PARENT_FILES)
def list_parent(request: Request) -> Response:
    ctx = resolve(request)
    return _listing_or_archive(request, _select(request, _resources(request, [ctx], None)), _object_name(ctx))


@routes.route("GET", *SCAN_SET_FILES)
def list_scans(request: Request) -> Response:
    label = request.params.pop("resource", None)
    ctx = resolve(request)
    pairs = _resources(request, _scan_contexts(request, ctx), label)
    return _listing_or_archive(request, _select(request, pairs), _object_name(ctx))


@routes.route("GET", *RESOURCE_FILE)
def download(request: Request) -> Response:
    ctx = resolve(request)
    resource = get_resource(request, ctx)
    path = request.params["path"]
    entry = request.store.get_file(resource.id, path.rstrip("/"))
    if entry is None or path.endswith("/"):
        selection = _select(request, [(ctx, resource)], path.rstrip("/"))
        if selection:
            return _listing_or_archive(request, selection, resource.label)
        if request.query.flag("accept-not-found"):
            return Response.empty(204)
        raise HTTPError(404, "Unable to find file.")
    if request.format("") in ("zip", "tar.gz", "tgz", "tar"):
        return _archive_response(request, [(ctx, resource, entry)], request.format(), entry.name)
    return _file_response(request.store.file_path(resource, entry), entry.name)


@routes.route("PUT", *RESOURCE_FILE)
@routes.route("POST", *RESOURCE_FILE)
def put_file(request: Request) -> Response:
    ctx = resolve(request, "edit")
    return upload(request, ctx, _label(request, ctx), request.params["path"])


@routes.route("PUT", *RESOURCE_FILES)
@routes.route("POST", *RESOURCE_FILES)
def post_files(request: Request) -> Response:
    ctx = resolve(request, "edit")
    return upload(request, ctx, _label(request, ctx), None)


@routes.route("DELETE", *RESOURCE_FILE)
def delete(request: Request) -> Response:
    ctx = resolve(request, "edit")
    resource = get_resource(request, ctx)
    path = request.params["path"].rstrip("/")
    if not path:  # ``files/%2F``: never "every file of the resource" by accident
        raise HTTPError(400, f"Invalid file path: {request.params['path']!r}.")
    if request.store.delete_files(resource, path) == 0:
        if request.query.flag("accept-not-found"):
            return Response.empty(204)
        raise HTTPError(404, "Unable to find file.")
    return Response.empty()


register = routes.register


def _label(request: Request, ctx: Context) -> str:
    """The resource label of an upload URL (an existing resource's id maps to its label)."""
    ref = request.params["resource"]
    existing = request.store.get_resource(ctx.parent(), ref)
    if existing is not None:
        return existing.label
    check_label(request, ref, "resource")
    return ref
