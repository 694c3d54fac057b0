"""label-validation's library: labels checked against XNAT's rules, the project's naming
convention and the DICOM headers.

:mod:`~.convention` (the document and its schema), :mod:`~.rules` (codes, severities, findings),
:mod:`~.records` (what is checked), :mod:`~.source` (REST reads with a fixed request budget),
:mod:`~.headers` (first-file DICOM headers from the mount), :mod:`~.checks` (pure checks),
:mod:`~.report` (findings.json/.csv/.html).  XNAT's character rules themselves live in
:mod:`xnatnode.labels`.
"""
