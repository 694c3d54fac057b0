"""Query-parameter field names (XNAT's shortcuts and xpaths) ↔ the field names xnatsim stores.

Stored names are XSD paths relative to the object (``date``, ``scanner/manufacturer``,
``parameters/tr``, ``validation/method``); subject demographics are stored by bare name
(``gender``), custom variables as ``fields/<name>``. Source: XNAT's ``XMLPathShortcuts``
(xnat-rest-spec §0.5).
"""

from __future__ import annotations

import re
from typing import Literal

from xnatsim.routing import Query

Kind = Literal["project", "subject", "experiment", "scan"]

_EXPERIMENT = ("ID visit_id visit protocol date time note pi_firstname pi_lastname validation_method "
               "validation_status validation_date validation_notes project label scanner operator "
               "dcmAccessionNumber dcmPatientId dcmPatientName session_type modality UID studyInstanceUID coil "
               "fieldStrength marker stabilization studyType patientID patientName scan_start_time "
               "injection_start_time tracer_name tracer_startTime tracer_dose tracer_sa tracer_totalMass "
               "tracer_intermediate tracer_isotope tracer_isotope_half_life tracer_transmissions "
               "tracer_transmissions_start subject_ID acquisition_site")
_SCAN = ("ID type UID note quality condition series_description documentation scanner modality frames "
         "validation_method validation_status validation_date validation_notes scanTime coil fieldStrength "
         "marker stabilization orientation originalFileName systemType fileType transaxialFOV acqType facility "
         "numPlanes numFrames numGates planeSeparation binSize dataType")
_SUBJECT = ("ID project label group src pi_firstname pi_lastname dob yob age gender handedness ses education "
            "educationDesc race ethnicity weight height gestational_age post_menstrual_age birth_weight")
_PROJECT = "ID secondary_ID name description keywords alias pi_firstname pi_lastname note"

#: settable/filterable shortcut names per kind
SHORTCUTS: dict[str, frozenset[str]] = {
    "project": frozenset(_PROJECT.split()),
    "subject": frozenset(_SUBJECT.split()),
    "experiment": frozenset(_EXPERIMENT.split()),
    "scan": frozenset(_SCAN.split()),
}
#: read-only shortcuts usable as listing columns
READ_ONLY: dict[str, frozenset[str]] = {
    "project": frozenset({"insert_date", "insert_user", "last_modified"}),
    "subject": frozenset({"insert_date", "insert_user", "last_modified"}),
    "experiment": frozenset({"subject_label", "subject_project", "session_ID", "session_label",
                             "session_project", "insert_date", "insert_user", "last_modified", "xsiType"}),
    "scan": frozenset({"xnat_imagescandata_id", "insert_date", "insert_user", "last_modified", "xsiType"}),
}
#: shortcut → stored field name where they differ
_RENAMED = {
    "validation_method": "validation/method", "validation_status": "validation/status",
    "validation_date": "validation/date", "validation_notes": "validation/notes",
    "pi_firstname": "PI/firstname", "pi_lastname": "PI/lastname", "scanTime": "startTime",
    "studyInstanceUID": "UID", "tracer_name": "tracer/name", "tracer_startTime": "tracer/startTime",
    "tracer_dose": "tracer/dose", "tracer_sa": "tracer/specificActivity", "tracer_totalMass": "tracer/totalMass",
    "tracer_intermediate": "tracer/intermediate", "tracer_isotope": "tracer/isotope",
    "tracer_isotope_half_life": "tracer/isotope/half-life", "tracer_transmissions": "tracer/transmissions",
    "tracer_transmissions_start": "tracer/transmissions_start", "numPlanes": "parameters/numPlanes",
    "numFrames": "parameters/numFrames", "numGates": "parameters/numGates", "orientation": "parameters/orientation",
    "transaxialFOV": "parameters/transaxialFOV", "acqType": "parameters/acqType",
    "planeSeparation": "parameters/planeSeparation", "binSize": "parameters/binSize",
    "dataType": "parameters/dataType", "fieldStrength": "fieldStrength",
}
#: keys handled by the routes themselves, never stored as fields
CONTROL_PARAMS = frozenset(
    ["xsiType", "xsitype", "format", "req_format", "inbody", "event_id", "event_type", "event_action", "event_reason", "event_comment", "removeFiles", "allowDataDeletion", "activate", "quarantine", "triggerPipelines", "fixScanTypes", "pullDataFromHeaders", "overwrite", "extract", "content", "tags", "columns", "accessibility", "label", "ID", "id", "project", "subject_ID"])

_DEMOGRAPHICS = re.compile(r"^demographics\[@xsi:type=[\w:]+\]/(.+)$", re.IGNORECASE)
_CUSTOM = re.compile(r"^fields/field\[name=([^\]]+)\]/field$", re.IGNORECASE)
_ADD_PARAM = re.compile(r"^parameters/addParam\[name=([^\]]+)\]/addField$", re.IGNORECASE)
#: stored-name prefixes of custom variables (``fields/field[name=x]``) and of scan parameters
#: without an XSD field (``parameters/addParam[name=x]``, XSD type ``xnat:addField``)
CUSTOM_PREFIX = "fields/"
ADD_PARAM_PREFIX = "parameters/addParam/"


def shortcut_field(kind: Kind, name: str) -> str:
    """The stored field for a shortcut (``validation_method`` → ``validation/method``)."""
    if kind == "project" and name in ("pi_firstname", "pi_lastname"):
        return name
    if kind == "subject" and name in ("pi_firstname", "pi_lastname"):
        return name
    return _RENAMED.get(name, name)


def xpath_field(xpath: str) -> str:
    """The stored field for the part of an xpath after the element (``demographics[…]/gender`` → ``gender``)."""
    found = _DEMOGRAPHICS.match(xpath)
    if found:
        return found.group(1)
    found = _CUSTOM.match(xpath)
    if found:
        return CUSTOM_PREFIX + found.group(1).lower()
    found = _ADD_PARAM.match(xpath)
    if found:  # XNAT keeps the name as given
        return ADD_PARAM_PREFIX + found.group(1)
    return xpath


def split_xpath(key: str) -> tuple[str, str] | None:
    """``xnat:mrSessionData/date`` → (``xnat:mrSessionData``, ``date``); None when not an xpath."""
    if "/" not in key:
        return None
    element, _, rest = key.partition("/")
    if ":" not in element:
        return None
    return element, rest


def put_fields(query: Query, kind: Kind) -> tuple[dict[str, str | None], dict[str, str]]:
    """Fields set by a PUT's query parameters, and the identity values named by xpaths.

    Returns ``(fields, identity)``: ``fields`` maps stored field names to values (``NULL`` clears);
    ``identity`` holds ``label``/``ID``/``type``/``project`` given as xpaths (``xnat:mrScanData/id``).
    """
    fields: dict[str, str | None] = {}
    identity: dict[str, str] = {}
    for key, value in query.items:
        xpath = split_xpath(key)
        if xpath is not None:
            name = xpath_field(xpath[1])
            if name.lower() in ("id", "label", "project", "subject_id"):
                identity[{"id": "ID", "label": "label", "project": "project",
                          "subject_id": "subject_ID"}[name.lower()]] = value
                continue
            fields[name] = None if value == "NULL" else value
        elif key in SHORTCUTS[kind] and key not in CONTROL_PARAMS:
            fields[shortcut_field(kind, key)] = None if value == "NULL" else value
    return fields, identity


def xpath_type(query: Query) -> str | None:
    """The data type named by an xpath query parameter (``xnat:mrSessionData/date=…``)."""
    for key, _ in query.items:
        xpath = split_xpath(key)
        if xpath is not None:
            return xpath[0]
    return None
