"""The prearchive's header index: files are parsed once, when placed; the index falls back to the file.
Placing makes each scan folder once, and again when it was removed."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from xnatsim.dicomhdr import read_routing
from xnatsim.intake import DicomFile, Labels
from xnatsim.store import Store

from xnatsim import intake, prearcstore, synth

LABELS = synth.DicomLabels("P1", "S01", "S01_MR1", "1", "t1", date="2024-01-02")


def dicom_files(folder: Path, count: int, labels: synth.DicomLabels = LABELS) -> list[DicomFile]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(1, count + 1):
        path = folder / f"{labels.session}-{k}.dcm"
        path.write_bytes(synth.dicom_bytes(replace(labels, scan_id=str(1 + k % 2), instance=k)))
        headers = read_routing(path)
        assert headers is not None
        out.append(DicomFile(path, headers))
    return out


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "data")
    st.put_project("P1", {}, user="admin")
    return st


def received(store: Store, tmp_path: Path, count: int = 4) -> prearcstore.Entry:
    """A RECEIVING entry filled object by object, as the C-STORE receiver does."""
    receiving = prearcstore.Receiving(store)
    entry = None
    for item in dicom_files(tmp_path / "in", count):
        entry = receiving.add(item, Labels("P1", "S01", "S01_MR1"), user="admin", direct=False)
    assert entry is not None
    return entry


def on_disk(entry: prearcstore.Entry) -> list[tuple[str, dict[str, str] | None]]:
    return [(p.name, read_routing(p)) for p in sorted(entry.folder.rglob("*.dcm"))]


def no_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make the prearchive's reads visible: the paths it parses from disk."""
    reads: list[Path] = []

    def counting(path: Path | bytes) -> dict[str, str] | None:
        assert isinstance(path, Path)
        reads.append(path)
        return read_routing(path)

    monkeypatch.setattr(prearcstore, "read_routing", counting)
    return reads


def test_files_come_from_the_index_with_the_headers_a_read_gives(store: Store, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    entry = received(store, tmp_path)
    assert entry.index.is_file()
    assert entry.index.parent == entry.meta.parent
    expected = on_disk(entry)
    reads = no_reads(monkeypatch)
    assert [(f.path.name, f.headers) for f in entry.files()] == expected
    assert reads == []


def test_without_index_or_with_a_changed_file_the_file_is_read(store: Store, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    entry = received(store, tmp_path)
    reads = no_reads(monkeypatch)
    changed = sorted(entry.folder.rglob("*.dcm"))[0]
    other = synth.dicom_bytes(replace(LABELS, subject="S99", scan_id="7", instance=99))
    changed.write_bytes(other)  # placed by other means: the index line no longer describes it
    files = entry.files()
    assert reads == [changed]
    assert files[0].headers["PatientName"] == "S99"
    assert [(f.path.name, f.headers) for f in files] == on_disk(entry)

    lines = entry.index.read_text().splitlines()
    entry.index.write_text("\n".join([*lines[:-1], lines[-1][:40]]) + "\n")  # a crash mid-line
    reads.clear()
    assert [(f.path.name, f.headers) for f in entry.files()] == on_disk(entry)
    assert len(reads) == 2  # the changed file and the one whose line was cut

    entry.index.unlink()  # an entry from before the index existed
    reads.clear()
    assert [(f.path.name, f.headers) for f in entry.files()] == on_disk(entry)
    assert len(reads) == 4


def test_archiving_uses_the_index_and_removes_it(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = received(store, tmp_path)
    reads = no_reads(monkeypatch)
    entry.row["status"] = "READY"
    exp = prearcstore.archive(store, entry, user="admin", overwrite="none")
    assert reads == []
    assert intake.archive_uri(exp).endswith("/subjects/S01/experiments/S01_MR1")
    assert not entry.index.exists()
    assert not entry.meta.parent.exists()  # the timestamp folder went with the entry


def test_import_service_entries_are_indexed_too(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = intake.group(dicom_files(tmp_path / "in", 3))[0]
    study.apply(Labels("P1", "S01", "S01_MR1"))
    uri = prearcstore.receive(store, study, user="admin")
    entry = next(e for e in prearcstore.entries(store) if "/data" + e.row["url"] == uri)
    reads = no_reads(monkeypatch)
    assert [(f.path.name, f.headers) for f in entry.files()] == on_disk(entry)
    assert reads == []


def test_a_scan_folder_is_made_once_and_again_when_removed(store: Store, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Path] = []
    mkdir = Path.mkdir

    def counting(self: Path, *args: object, **kwargs: object) -> None:
        if kwargs.get("parents"):  # not mkdir's own second try, once it made the parents
            made.append(self)
        mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", counting)
    receiving = prearcstore.Receiving(store)
    labels = Labels("P1", "S01", "S01_MR1")
    items = dicom_files(tmp_path / "in", 7)
    made.clear()
    for item in items[:6]:
        entry = receiving.add(item, labels, user="admin", direct=False)
    assert sorted(p.relative_to(entry.folder).as_posix() for p in made if p.name == "DICOM") == [
        "SCANS/1/DICOM", "SCANS/2/DICOM"]  # two scans of three objects each

    shutil.rmtree(entry.folder / "SCANS")  # e.g. the scans deleted while the session receives
    receiving.add(items[6], labels, user="admin", direct=False)
    assert (entry.folder / "SCANS" / "2" / "DICOM").is_dir()
    assert len(on_disk(entry)) == 1

    with pytest.raises(FileNotFoundError):  # a missing object is an error, not a folder to make
        receiving.add(items[6], labels, user="admin", direct=False)
