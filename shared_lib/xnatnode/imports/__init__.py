"""nifti-import's library: NIfTI files in a folder, a zip or an XNAT resource become subjects,
sessions and scans.

The pieces, in the order a run uses them:

* :mod:`.sources` reads a folder or a zip safely (no escaping paths, no links out, no duplicates);
* :mod:`.bids` and :mod:`.mapping` say which subject, session and scan each file belongs to
  (BIDS names, or a CSV read with pandas);
* :mod:`xnatnode.nifti` inspects every image with nibabel in one streaming pass that also hashes it;
* :mod:`.state` reads what XNAT already holds with bulk listings;
* :mod:`.plan` decides create / skip / reject / conflict per file, with deterministic scan IDs;
* :mod:`.writer` carries the plan out (one PUT per session, one per scan, one stored zip per
  resource) and verifies every file's MD5 against XNAT's digest;
* :mod:`.report` writes import-report.json/.csv/.html.
"""
