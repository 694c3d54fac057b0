"""Unmodified xnatpy 0.8.1 against xnatsim: its workflows work and it asks what it asks of XNAT.

The request sequences are compared with the recorded xnatpy traces in
``../shared/reference/xnat-fixtures/xnatpy-traces`` (same client, so a server that answers like
XNAT draws the same requests; IDs are normalised). Steps whose requests depend on what the
logging server answered (it is not XNAT) are checked against the spec instead.
"""

from __future__ import annotations

import gc
import hashlib
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import xnat
from xnatsim.store import Parent
from xnatsim.testing import Server, running_server

from xnatsim import synth

TRACES = "xnat-fixtures/xnatpy-traces"
_REQUEST = re.compile(r"^(GET|PUT|POST|DELETE|HEAD) (\S+)")


def normalise(path: str) -> str:
    path = path.split("?", 1)[0]
    path = re.sub(r"\b[A-Z][A-Z0-9]*_S\d{5}\b", "<SUBJECT>", path)
    path = re.sub(r"\b[A-Z][A-Z0-9]*_E\d{5}\b", "<EXPERIMENT>", path)
    return re.sub(r"/resources/\d+(/|$)", r"/resources/<RID>\1", path)


def trace_steps(path: Path) -> dict[str, list[tuple[str, str]]]:
    """``{step title: [(method, normalised path), …]}`` of a recorded trace (first step: ``connect``)."""
    steps: dict[str, list[tuple[str, str]]] = {"connect": []}
    current = "connect"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#### "):
            current = line[5:].strip()
            steps[current] = []
        elif found := _REQUEST.match(line):
            steps[current].append((found.group(1), normalise(found.group(2))))
    return steps


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("fidelity"), seed="demo") as srv:
        yield srv


def connect(server: Server) -> Any:
    return xnat.connect(server.url, user=server.user, password=server.password, loglevel="ERROR")


def settled_stats(server: Server, timeout: float = 60.0) -> dict[str, Any]:
    """Stats once no request is in flight: xnatsim counts a request when it arrives and logs it just
    before replying, so a log as long as the count has every request answered so far (after a reset
    that came mid-request the log may be longer). A bound, not a pause: it returns at once if so."""
    deadline = time.monotonic() + timeout
    while True:
        stats = server.stats(with_log=True)
        if len(stats["log"]) >= stats["requests"] or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def logged(server: Server) -> list[tuple[str, str]]:
    """The (method, normalised path) of every request since the last reset, in order."""
    return [(e["method"], normalise(e["path"])) for e in settled_stats(server)["log"]]


def test_connect_requests_match_the_trace(server: Server, reference_dir: Path) -> None:
    recorded = trace_steps(reference_dir / TRACES / "01_connect.log")["connect"]
    server.reset_stats()
    with connect(server):
        pass
    ours = logged(server)
    schemas = requests.get(server.url + "/xapi/schemas", auth=(server.user, server.password), timeout=30).json()
    elements = [p for m, p in ours if p.startswith("/data/search/elements/")]
    # The trace's logging server answered /data/version; XNAT >= 1.7 answers 404 and xnatpy then asks
    # /xapi/siteConfig/buildInfo (spec §2), so xnatsim costs exactly one request more there.
    fixed = [("GET", "/"), ("PUT", "/data/services/auth"), ("GET", "/data/auth"), ("GET", "/data/JSESSION"),
             ("GET", "/data/version")]
    assert recorded[:5] == fixed
    assert ours[:6] == [*fixed, ("GET", "/xapi/siteConfig/buildInfo")]
    assert ours[6] == ("GET", "/xapi/schemas")
    assert [p for _, p in ours[7:7 + len(schemas)]] == [f"/xapi/schemas/{name}" for name in schemas]
    assert ours[7 + len(schemas)] == ("GET", "/data/search/elements")
    assert ours[-1] == ("DELETE", "/data/JSESSION") == recorded[-1]
    # the same formula explains both: 5 fixed + version fallback + 1 + schemas + 1 + elements + 1
    recorded_schemas = sum(p.startswith("/xapi/schemas/") for _, p in recorded)
    recorded_elements = sum(p.startswith("/data/search/elements/") for _, p in recorded)
    assert len(recorded) == 5 + 0 + 1 + recorded_schemas + 1 + recorded_elements + 1 == 14
    assert len(ours) == 5 + 1 + 1 + len(schemas) + 1 + len(elements) + 1


def _replay_trace_02(session: Any, tmp: Path) -> dict[str, Callable[[], Any]]:
    """The operations behind each step of ``02_create_upload_download.log``, in order."""
    state: dict[str, Any] = {}
    image = tmp / "image.nii"
    image.write_bytes(bytes(range(100)))
    folder = tmp / "dir"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("bb")

    def create_project() -> None:
        state["project"] = session.classes.ProjectData(parent=session, id_="P1", name="P1")

    # the recorded script read each new object once (its JSON GET follows each PUT in the trace)
    def create_subject() -> None:
        state["subject"] = session.classes.SubjectData(parent=state["project"], label="S1")
        assert state["subject"].fulldata

    def set_gender() -> None:
        state["subject"].demographics.gender = "female"

    def create_experiment() -> None:
        state["exp"] = session.classes.MrSessionData(parent=state["subject"], label="E1")
        assert state["exp"].fulldata

    def create_scan() -> None:
        state["scan"] = session.classes.MrScanData(parent=state["exp"], id="1", type="T1",
                                                   series_description="t1 mprage")
        assert state["scan"].fulldata

    def create_resource() -> None:
        state["res"] = state["scan"].create_resource("NIFTI", format="NIFTI")

    return {
        "create project via classes.ProjectData(parent=session, id_=P1, name=P1)": create_project,
        "session.projects listing": lambda: len(session.projects),
        "project = session.projects['P1']": lambda: state.__setitem__("project", session.projects["P1"]),
        "project.subjects": lambda: len(state["project"].subjects),
        "create subject SubjectData(parent=project, label='S1')": create_subject,
        "subject set gender/yob via demographics": set_gender,
        "create experiment MrSessionData(parent=subj, label='E1')": create_experiment,
        "create scan MrScanData(parent=exp, id='1', type='T1', series_description='t1 mprage')": create_scan,
        "exp.scans listing": lambda: len(state["exp"].scans),
        "scan.create_resource('NIFTI', format='NIFTI')": create_resource,
        "resource.upload(file)": lambda: state["res"].upload(image, "image.nii"),
        "resource.upload_data": lambda: state["res"].upload_data("hello", "notes/readme.txt"),
        "resource.upload_dir (tgz_file default)": lambda: state["res"].upload_dir(folder),
        "resource.files listing": lambda: len(state["res"].files),
        "file download (resource.files['a.txt'].download)": lambda: state["res"].files["a.txt"].download(
            tmp / "a-downloaded.txt"),
        "resource.download_dir (zip)": lambda: state["res"].download_dir(tmp / "out"),
    }


def test_create_upload_download_matches_the_trace(server: Server, reference_dir: Path, tmp_path: Path) -> None:
    recorded = trace_steps(reference_dir / TRACES / "02_create_upload_download.log")
    with connect(server) as session:
        steps = _replay_trace_02(session, tmp_path)
        for title, action in steps.items():
            server.reset_stats()
            action()
            ours = logged(server)
            if title.startswith("file download"):
                # the URI comes from the files listing; the trace's was the logging server's invention
                assert len(ours) == len(recorded[title]) == 1
                assert re.fullmatch(r"/data/projects/P1/subjects/<SUBJECT>/experiments/<EXPERIMENT>/scans/1/"
                                    r"resources/<RID>/files/a\.txt", ours[0][1]), ours
                continue
            assert ours == recorded[title], title
    assert (tmp_path / "a-downloaded.txt").read_text() == "a"
    out = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert any(p.endswith(("NIFTI/files/sub/b.txt", "NIFTI/sub/b.txt")) for p in out), out
    assert sum(p.endswith("image.nii") for p in out) == 1


def test_naive_traversal_costs_what_the_trace_predicts(server: Server) -> None:
    store = server.store
    subjects = store.list_subjects("DEMO")
    sessions = store.list_experiments(project="DEMO")
    scans = [scan for e in sessions for scan in store.list_scans(e.id)]
    resources = sum(len(store.list_resources(Parent("scan", "DEMO", e.subject_id, e.id, s.pk)))
                    for e in sessions for s in store.list_scans(e.id))
    with connect(server) as session:
        server.reset_stats()
        files = 0
        for subject in session.projects["DEMO"].subjects.values():
            for exp in subject.experiments.values():
                for scan in exp.scans.values():
                    for res in scan.resources.values():
                        files += len(res.files)
        first = settled_stats(server)["requests"]
        server.reset_stats()
        for subject in session.projects["DEMO"].subjects.values():  # second pass: all cached
            for exp in subject.experiments.values():
                for scan in exp.scans.values():
                    for res in scan.resources.values():
                        len(res.files)
        second = settled_stats(server)["requests"]
    # xnatpy-internals §5: 2 + S + 2·E + Sc + R on a fresh connection, 0 when cached
    assert first == 2 + len(subjects) + 2 * len(sessions) + len(scans) + resources
    assert second == 0
    scan_files = server.store.query("SELECT count(*) FROM files f JOIN resources r ON r.id=f.resource_id "
                                    "WHERE r.project='DEMO' AND r.kind='scan'")[0][0]
    assert files == scan_files


def test_read_fields_and_download_with_digest(server: Server, tmp_path: Path) -> None:
    with connect(server) as session:
        exp = session.projects["DEMO"].experiments["DEMO_001_MR1"]
        assert str(exp.date) == "2023-02-14"
        scan = exp.scans["2"]
        assert scan.series_description == "T1w_MPRAGE_sag_1mm"
        assert scan.type == "T1w"
        dicom = scan.resources["DICOM"]
        assert sorted(dicom.files.keys()) == ["2-1.dcm", "2-2.dcm", "2-3.dcm"]
        target = tmp_path / "one.dcm"
        dicom.files["2-1.dcm"].download(target)  # xnatpy checks the md5 against the listing's digest
        resource = server.store.get_resource(Parent("scan", "DEMO", exp.subject.id, exp.id,
                                                    server.store.get_scan(exp.id, "2").pk), "DICOM")  # type: ignore[union-attr]
        assert resource is not None
        entry = server.store.get_file(resource.id, "2-1.dcm")
        assert entry is not None
        assert hashlib.md5(target.read_bytes()).hexdigest() == entry.md5
        dicom.download_dir(tmp_path / "dir")
        assert len(list((tmp_path / "dir").rglob("*.dcm"))) == 3
        exp.download_dir(tmp_path / "session")
        assert len(list((tmp_path / "session").rglob("*.dcm"))) == 3 * 5
        zipped = tmp_path / "res.zip"
        dicom.download(zipped)
        assert len([n for n in zipfile.ZipFile(zipped).namelist() if n.endswith(".dcm")]) == 3


def test_services_import_and_dicom_dump(server: Server) -> None:
    if server.store.get_project("FIDIMP") is None:
        server.store.put_project("FIDIMP", {"prearchive_code": "0"}, user="admin")
    labels = synth.DicomLabels("FIDIMP", "FS1", "FS1_MR1", "1", "T1w", "MR", "2024-01-02")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for scan_id in ("1", "2"):
            for k in (1, 2):
                archive.writestr(f"{scan_id}/{k}.dcm", synth.dicom_bytes(replace(labels, scan_id=scan_id, instance=k)))
    data = buffer.getvalue()
    with connect(server) as session:
        exp = session.services.import_(data=data, content_type="application/zip", destination="/archive",
                                       project="FIDIMP", import_handler="DICOM-zip")
        assert exp.label == "FS1_MR1"
        assert sorted(exp.scans.keys()) == ["1", "2"]
        assert exp.subject.label == "FS1"
        rows = session.services.dicom_dump(src="/archive/projects/FIDIMP/experiments/FS1_MR1/scans/2")
        found = {r["tag1"]: r["value"] for r in rows}
        assert found["(0010,0010)"] == "FS1"
        assert found["(0020,0011)"] == "2"
        only = session.services.dicom_dump(src="/archive/projects/FIDIMP/experiments/FS1_MR1",
                                           fields=["PatientID"])
        assert only == [{"tag1": "(0010,0020)", "tag2": "", "vr": "LO", "value": "FS1_MR1",
                         "desc": "Patient ID"}]
        # to the prearchive, then archive it through xnatpy's PrearchiveSession
        labels2 = synth.DicomLabels("FIDIMP", "FS2", "FS2_MR1", "1", "T1w", "MR", "2024-01-03")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("x.dcm", synth.dicom_bytes(labels2))
        pre = session.services.import_(data=buffer.getvalue(), content_type="application/zip", project="FIDIMP")
        assert pre.status == "READY"
        assert pre.subject == "FS2"
        assert pre.name == "FS2_MR1"
        assert pre.scan_date is not None
        assert str(pre.scan_date) == "2024-01-03"
        assert [s.name for s in session.prearchive.sessions("FIDIMP")] == ["FS2_MR1"]
        archived = pre.archive()
        assert archived.label == "FS2_MR1"
        assert session.prearchive.sessions("FIDIMP") == []


def test_delete_and_listing_refetch(server: Server) -> None:
    """Trace 05: a delete is followed by re-fetches of every live listing; all must answer 200."""
    store = server.store
    store.put_project("FIDDEL", {}, user="admin")
    exp, _ = store.put_experiment("FIDDEL", "D1", "D1_MR1", "xnat:mrSessionData", {"date": "2024-01-01"})
    store.put_scan(exp.id, "1", "xnat:mrScanData", {"type": "T1"})
    gc.collect()  # xnatpy re-fetches every live listing after a delete, even those of closed sessions
    with connect(server) as session:
        subject = session.projects["FIDDEL"].subjects["D1"]
        target = subject.experiments["D1_MR1"]
        server.reset_stats()
        target.delete()
        log = settled_stats(server)["log"]
        calls = [(e["method"], normalise(e["path"])) for e in log]
        assert ("DELETE", "/data/archive/projects/FIDDEL/subjects/<SUBJECT>/experiments/<EXPERIMENT>") in calls
        assert [e["status"] for e in log] == [200] * len(log)
        refetched = {normalise(e["path"]) for e in log[1:]}
        assert "/data/archive/projects/FIDDEL/subjects/<SUBJECT>/experiments" in refetched
        assert "D1_MR1" not in subject.experiments
    assert store.get_experiment(exp.id) is None
    assert not store.session_dir(exp).exists()


def test_class_query_search(server: Server) -> None:
    with connect(server) as session:
        found = session.classes.MrSessionData.query().filter(
            session.classes.MrSessionData.label == "DEMO_001_MR1").all()
        assert len(found) == 1
