"""BIDS file names: ``sub-<s>[/ses-<v>]/<datatype>/sub-<s>[_ses-<v>]_<key>-<value>..._<suffix>.<ext>``.

Only what the import needs: the entities, the datatype folder, the suffix, the modality
(``mr``/``pet``/``ct``) and the scan type. Anything above ``sub-<s>/`` (a dataset folder inside
a zip) is allowed. BIDS inheritance (sidecars at the dataset root applying to many images) is
not applied: such files are reported as ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from xnatnode.imports.sources import stem_of, suffix_of

IMAGE_SUFFIXES = (".nii", ".nii.gz")
#: Files that travel with an image into the sidecar resource.
SIDECAR_SUFFIXES = (".json", ".bval", ".bvec", ".tsv", ".tsv.gz")

_LABEL = r"[A-Za-z0-9]+"
_NAME = re.compile(
    rf"^sub-(?P<sub>{_LABEL})(?:_ses-(?P<ses>{_LABEL}))?(?P<entities>(?:_[a-z]+-{_LABEL})*)"
    rf"_(?P<suffix>[A-Za-z0-9]+)$"
)
_ENTITY = re.compile(rf"_([a-z]+)-({_LABEL})")

#: BIDS datatype folder -> modality token of the session label.
DATATYPE_MODALITY = {"anat": "mr", "func": "mr", "dwi": "mr", "fmap": "mr", "perf": "mr",
                     "pet": "pet", "ct": "ct"}
#: Suffixes that decide the modality wherever they are (a CT in an ``anat`` folder).
SUFFIX_MODALITY = {"pet": "pet", "ct": "ct"}


@dataclass(frozen=True, slots=True)
class BidsName:
    """The parts of one BIDS file path."""

    sub: str
    ses: str | None
    datatype: str
    entities: tuple[tuple[str, str], ...]  #: everything between sub/ses and the suffix, in order
    suffix: str
    extension: str  #: ``.nii.gz``, ``.json`` ...
    folder: str  #: the folder holding the file (POSIX, relative to the source)

    @property
    def modality(self) -> str | None:
        """``mr``, ``pet`` or ``ct``; None for datatypes this importer does not take."""
        return SUFFIX_MODALITY.get(self.suffix.lower()) or DATATYPE_MODALITY.get(self.datatype)

    @property
    def scan_type(self) -> str:
        """The scan type: the entities after sub/ses, then the suffix (``task-rest_run-1_bold``);
        every entity is kept, so two runs never share a type."""
        return "_".join([f"{k}-{v}" for k, v in self.entities] + [self.suffix])

    @property
    def key(self) -> tuple[str, str, str | None, tuple[tuple[str, str], ...]]:
        """Files sharing this key belong to the same acquisition (image and sidecars)."""
        return (self.folder, self.sub, self.ses, self.entities)


def parse(path: str) -> BidsName | None:
    """The BIDS parts of ``path``, or None when it is not a BIDS data file."""
    pure = PurePosixPath(path)
    match = _NAME.match(stem_of(path))
    if match is None or len(pure.parts) < 3:
        return None
    datatype = pure.parts[-2]
    sub, ses = match["sub"], match["ses"]
    # The folders above the datatype: sub-<s>[/ses-<v>] must agree with the file name.
    upper = pure.parts[:-2]
    if ses is not None:
        if len(upper) < 2 or upper[-1] != f"ses-{ses}" or upper[-2] != f"sub-{sub}":
            return None
    elif not upper or upper[-1] != f"sub-{sub}":
        return None
    entities = tuple((k, v) for k, v in _ENTITY.findall(match["entities"]))
    return BidsName(sub, ses, datatype, entities, match["suffix"], suffix_of(path), str(pure.parent))


def is_image(path: str) -> bool:
    return suffix_of(path) in IMAGE_SUFFIXES


def is_sidecar(path: str) -> bool:
    return suffix_of(path) in SIDECAR_SUFFIXES


def sidecar_matches(sidecar: BidsName, image: BidsName) -> bool:
    """Whether ``sidecar`` belongs to ``image``: same folder and entities, and the same suffix
    or a suffix that names a companion file (``events``, ``physio``, ``stim``, ``sbref``...)."""
    return sidecar.key == image.key and (sidecar.suffix == image.suffix or sidecar.extension.startswith(".tsv"))
