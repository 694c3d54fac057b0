"""The :class:`Store`: every layer of the data layer in one object."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .bulk import BulkLoader
from .configs import Configs
from .resources import Resources


class Store(Resources, Configs):
    """SQLite metadata + archive files. Open with ``Store(data_dir)``; ``close()`` when done."""

    @contextlib.contextmanager
    def bulk(self) -> Iterator[BulkLoader]:
        """One write transaction for seeding many objects fast; listeners are **not** called.

        ::

            with store.bulk() as b:
                sid = b.subject("P", "S001", {"gender": "female"})
                eid = b.experiment("P", sid, "S001_MR1", "xnat:mrSessionData", {"date": "2024-01-02"})
                pk = b.scan(eid, "1", "xnat:mrScanData", {"type": "T1", "quality": "usable"})
                rid = b.resource(Parent("scan", "P", sid, eid, pk), "NIFTI", format="NIFTI")
                b.file(rid, "image.nii.gz", data)

        The project must exist (use :meth:`put_project`). Labels must be new (no update path).
        """
        loader = BulkLoader(self)
        with self.write():
            yield loader
            loader.finish()
            self._pending.clear()
