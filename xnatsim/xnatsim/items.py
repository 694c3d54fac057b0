"""Single-object documents: XNAT's ``items`` JSON (``ItemJSONBuilder``) and XFT-style XML.

JSON shape (xnat-rest-spec §0.3): ``{"items":[{"children":[{"field":…,"items":[…]}],"meta":{…},
"data_fields":{…}}]}``; numeric XSD fields keep JSON numbers, the rest are strings.
"""

from __future__ import annotations

import time
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from xnatsim import xsitypes as T
from xnatsim.fields import ADD_PARAM_PREFIX, CUSTOM_PREFIX
from xnatsim.store import Experiment, Parent, Project, Resource, Scan, Store, Subject

Item = dict[str, Any]

#: fields whose XSD type is numeric (emitted as JSON numbers when they parse)
NUMERIC = frozenset({
    "yob", "age", "height", "weight", "education", "gestational_age", "post_menstrual_age", "birth_weight",
    "frames", "xnat_imagescandata_id", "parameters/tr", "parameters/te", "parameters/ti", "parameters/flip",
    "parameters/voxelRes/x", "parameters/voxelRes/y", "parameters/voxelRes/z", "parameters/fov/x",
    "parameters/fov/y", "parameters/matrix/x", "parameters/matrix/y", "parameters/partitions",
    "parameters/numPlanes", "parameters/numFrames", "parameters/numGates", "file_count", "file_size",
    "xnat_abstractresource_id",
})
DEMOGRAPHICS = frozenset({"dob", "yob", "age", "gender", "handedness", "ses", "education", "educationDesc",
                          "race", "ethnicity", "weight", "height", "gestational_age", "post_menstrual_age",
                          "birth_weight", "employment"})
XMLNS = ('xmlns:xnat="http://nrg.wustl.edu/xnat" xmlns:prov="http://www.nbirn.net/prov" '
         'xmlns:xdat="http://nrg.wustl.edu/xdat" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')


def _value(name: str, value: str) -> Any:
    if name in NUMERIC:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _start_date(insert_date: str) -> str:
    """``2024-01-02 10:11:12.123`` → ``Tue Jan 02 10:11:12 UTC 2024`` (Java's Date.toString)."""
    try:
        parsed = time.strptime(insert_date.split(".")[0], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        parsed = time.gmtime()
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", parsed)


def _item(xsi_type: str, data: dict[str, Any], children: list[dict[str, Any]], insert_date: str = "",
          event_id: int = 1) -> Item:
    meta = {"create_event_id": event_id, "xsi:type": xsi_type, "isHistory": False,
            "start_date": _start_date(insert_date)}
    return {"children": children, "meta": meta, "data_fields": data}


def _plain(name: str) -> bool:
    """A field served in ``data_fields`` (not a custom variable or an ``addParam`` entry)."""
    return not name.startswith((CUSTOM_PREFIX, ADD_PARAM_PREFIX))


def _fields(fields: dict[str, str], skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {k: _value(k, v) for k, v in fields.items() if k not in skip and _plain(k)}


def _custom(fields: dict[str, str], owner: str = "xnat:experimentData") -> list[dict[str, Any]]:
    """Custom variables as XNAT serves them: children ``fields/field`` of type ``<owner>_field``."""
    items = [_item(f"{owner}_field", {"name": k[len(CUSTOM_PREFIX):], "field": v}, [])
             for k, v in fields.items() if k.startswith(CUSTOM_PREFIX)]
    return [{"field": "fields/field", "items": items}] if items else []


def _add_params(fields: dict[str, str]) -> list[dict[str, Any]]:
    """Scan ``parameters/addParam`` entries: children of type ``xnat:addField`` whose text content
    is ``addField`` [inferred from XFT's naming of simple content; not checked on a live XNAT]."""
    items = [_item("xnat:addField", {"name": k[len(ADD_PARAM_PREFIX):], "addField": v}, [])
             for k, v in fields.items() if k.startswith(ADD_PARAM_PREFIX)]
    return [{"field": "parameters/addParam", "items": items}] if items else []


def resource_item(resource: Resource) -> Item:
    data: dict[str, Any] = {
        "xnat_abstractresource_id": resource.id, "label": resource.label, "format": resource.format,
        "content": resource.content, "description": resource.description, "file_count": resource.file_count,
        "file_size": resource.file_size,
    }
    return _item(resource.element_name, {k: v for k, v in data.items() if v != ""}, [])


def _resources(store: Store, parent_items: list[Resource], field: str) -> list[dict[str, Any]]:
    if not parent_items:
        return []
    return [{"field": field, "items": [resource_item(r) for r in parent_items]}]


def project_item(store: Store, project: Project) -> Item:
    data: dict[str, Any] = {"ID": project.id, "secondary_ID": project.secondary_id, "name": project.name,
                            "description": project.description, "keywords": project.keywords, "active": "true"}
    data.update(_fields(project.fields))
    children: list[dict[str, Any]] = []
    if project.pi_firstname or project.pi_lastname:
        pi = _item("xnat:investigatorData", {"firstname": project.pi_firstname, "lastname": project.pi_lastname}, [])
        children.append({"field": "PI", "items": [pi]})
    children += _resources(store, store.list_resources(Parent("project", project.id)), "resources/resource")
    children += _custom(project.fields, "xnat:projectData")
    return _item("xnat:projectData", {k: v for k, v in data.items() if v != ""}, children, project.insert_date)


def subject_item(store: Store, subject: Subject) -> Item:
    data: dict[str, Any] = {"ID": subject.id, "label": subject.label, "project": subject.project}
    data.update(_fields(subject.fields, DEMOGRAPHICS))
    children: list[dict[str, Any]] = []
    demo = {k: _value(k, v) for k, v in subject.fields.items() if k in DEMOGRAPHICS}
    if demo:
        children.append({"field": "demographics", "items": [_item("xnat:demographicData", demo, [])]})
    children += _resources(store, store.list_resources(Parent("subject", subject.project, subject.id)),
                           "resources/resource")
    children += _custom(subject.fields, "xnat:subjectData")
    return _item("xnat:subjectData", data, children, subject.insert_date)


def scan_item(store: Store, scan: Scan, experiment: Experiment) -> Item:
    data: dict[str, Any] = {"ID": scan.id, "xnat_imagescandata_id": scan.pk, "image_session_ID": experiment.id,
                            "project": experiment.project}
    data.update(_fields(scan.fields))
    parent = Parent("scan", experiment.project, experiment.subject_id, experiment.id, scan.pk)
    children = _resources(store, store.list_resources(parent), "file")
    children += _add_params(scan.fields) + _custom(scan.fields, "xnat:imageScanData")
    return _item(scan.xsi_type, data, children, experiment.insert_date)


def experiment_item(store: Store, exp: Experiment) -> Item:
    data: dict[str, Any] = {"ID": exp.id, "id": exp.id, "label": exp.label, "project": exp.project}
    if exp.session_id:
        data["imageSession_ID"] = exp.session_id
    else:
        data["subject_ID"] = exp.subject_id
    if exp.xsi_type in T.SESSION_TYPES and "modality" not in exp.fields:
        data["modality"] = T.modality_of(exp.xsi_type)
    data.update(_fields(exp.fields))
    children: list[dict[str, Any]] = []
    if not exp.session_id:
        scans = [scan_item(store, s, exp) for s in store.list_scans(exp.id)]
        if scans:
            children.append({"field": "scans/scan", "items": scans})
    children += _resources(store, store.list_resources(Parent("experiment", exp.project, exp.subject_id, exp.id)),
                           "out/file" if exp.session_id else "resources/resource")
    if not exp.session_id:
        assessors = [experiment_item(store, a) for a in store.list_experiments(session_id=exp.id)]
        if assessors:
            children.append({"field": "assessors/assessor", "items": assessors})
    children += _custom(exp.fields)
    return _item(exp.xsi_type, data, children, exp.insert_date)


def items_json(item: Item) -> dict[str, Any]:
    return {"items": [item]}


# --------------------------------------------------------------------------- XML
# Attribute names and child-element order per family, read from xnat.xsd (XNAT 1.8): XFT writes
# simple fields declared as xs:attribute as attributes and the rest as child elements in the
# schema's sequence order (base types first).

_EXPERIMENT_ATTRS = ("ID", "project", "visit_id", "visit", "version", "original", "protocol", "label")
_SESSION_ATTRS = ("session_type", "modality", "UID", "study_id")
_EXPERIMENT_ORDER = (
    "sharing", "date", "time", "duration", "delay", "note", "investigator", "validation", "resources", "fields",
    "acquisition_site", "subject_ID", "age", "regions", "scanner", "operator", "prearchivePath", "scans",
    "reconstructions", "assessors", "dcmAccessionNumber", "dcmPatientId", "dcmPatientName", "dcmPatientBirthDate",
    "dcmPatientWeight", "coil", "fieldStrength", "marker", "stabilization", "studyType", "patientID", "patientName",
    "tracer", "start_time", "start_time_scan", "start_time_injection", "blood_glucose", "blood_glucose_units",
    "blood_glucose_time", "in", "out", "imageSession_ID", "parameters")
_SCAN_ATTRS = ("ID", "type", "UID", "project")
_SCAN_ORDER = (
    "sharing", "image_session_ID", "note", "quality", "condition", "series_description", "series_class",
    "documentation", "scanner", "modality", "frames", "operator", "file", "validation", "startTime", "start_date",
    "requestedProcedureDescription", "protocolName", "bodyPartExamined", "coil", "fieldStrength", "marker",
    "stabilization", "fileNameUUID", "parameters", "dcmValidation")
_SUBJECT_ATTRS = ("ID", "project", "group", "label", "src", "initials")
_SUBJECT_ORDER = ("sharing", "resources", "investigator", "demographics", "metadata", "addID", "fields",
                  "experiments")
#: elements with simple content whose sub-fields are attributes (``<xnat:scanner manufacturer=…>``)
_ATTRIBUTE_CHILDREN = {"scanner": ("manufacturer", "model"), "validation": ("status",),
                       "voxelRes": ("x", "y", "z"), "fov": ("x", "y"), "matrix": ("x", "y")}


def _tree(fields: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in fields.items():
        node = tree
        parts = key.split("/")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {"": child} if child is not None else {}
                node[part] = child
            node = child
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]][""] = value
        else:
            node[parts[-1]] = value
    return tree


def _render(name: str, value: Any) -> str:
    tag = "xnat:" + name
    if not isinstance(value, dict):
        return f"<{tag}>{escape(str(value))}</{tag}>"
    attr_names = _ATTRIBUTE_CHILDREN.get(name, ())
    attrs = "".join(f" {k}={quoteattr(str(v))}" for k, v in value.items()
                    if k in attr_names and not isinstance(v, dict))
    text = escape(str(value.get("", ""))) if not isinstance(value.get(""), dict) else ""
    inner = "".join(_render(k, v) for k, v in value.items() if k and k not in attr_names)
    return f"<{tag}{attrs}>{text}{inner}</{tag}>"


def _document(xsi_type: str, attrs: dict[str, str], fields: dict[str, str], attr_names: tuple[str, ...],
              order: tuple[str, ...], extra: dict[str, str]) -> str:
    """Root element with attributes, then child elements in schema order (``extra``: pre-rendered).
    Custom variables become ``<xnat:fields><xnat:field name=…>``, ``addParam`` entries
    ``<xnat:addParam name=…>`` at the end of ``<xnat:parameters>``."""
    values = {k: v for k, v in fields.items() if _plain(k)}
    all_attrs = dict(attrs)
    for name in attr_names:
        if name in values and name not in all_attrs:
            all_attrs[name] = values.pop(name)
    rendered = {name: _render(name, value) for name, value in _tree(values).items()}
    rendered.update(extra)
    _special_xml(fields, rendered)
    rank = {name: i for i, name in enumerate(order)}
    names = sorted(rendered, key=lambda n: (rank.get(n, len(order)), n))
    text = "".join(f" {k}={quoteattr(v)}" for k, v in all_attrs.items() if v)
    root = T.root_element(xsi_type)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}{text} {XMLNS}>'
            + "".join(rendered[n] for n in names) + f"</{root}>")


def _named(tag: str, fields: dict[str, str], prefix: str) -> str:
    return "".join(f"<{tag} name={quoteattr(k[len(prefix):])}>{escape(v)}</{tag}>"
                   for k, v in fields.items() if k.startswith(prefix))


def _special_xml(fields: dict[str, str], rendered: dict[str, str]) -> None:
    custom = _named("xnat:field", fields, CUSTOM_PREFIX)
    if custom:
        rendered["fields"] = f"<xnat:fields>{custom}</xnat:fields>"
    params = _named("xnat:addParam", fields, ADD_PARAM_PREFIX)
    if params:
        inner = rendered.get("parameters", "<xnat:parameters></xnat:parameters>")
        closing = "</xnat:parameters>"
        rendered["parameters"] = inner[: -len(closing)] + params + closing


def _resource_xml(resource: Resource, tag: str) -> str:
    return (f"<{tag} label={quoteattr(resource.label)} format={quoteattr(resource.format)} "
            f"content={quoteattr(resource.content)} file_count=\"{resource.file_count}\" "
            f"file_size=\"{resource.file_size}\" xsi:type=\"{resource.element_name}\"/>")


def project_xml(store: Store, project: Project) -> str:
    fields = {"name": project.name, "description": project.description, "keywords": project.keywords}
    extra = {}
    if project.pi_firstname or project.pi_lastname:
        extra["PI"] = (f"<xnat:PI><xnat:firstname>{escape(project.pi_firstname)}</xnat:firstname>"
                       f"<xnat:lastname>{escape(project.pi_lastname)}</xnat:lastname></xnat:PI>")
    resources = store.list_resources(Parent("project", project.id))
    if resources:
        extra["resources"] = ("<xnat:resources>" + "".join(_resource_xml(r, "xnat:resource") for r in resources)
                              + "</xnat:resources>")
    order = ("name", "type", "description", "keywords", "aliases", "publications", "resources", "studyProtocol",
             "PI", "investigators", "fields")
    return _document("xnat:projectData", {"ID": project.id, "secondary_ID": project.secondary_id, "active": "true"},
                     {k: v for k, v in fields.items() if v}, (), order, extra)


def subject_xml(store: Store, subject: Subject) -> str:
    demo = {k: v for k, v in subject.fields.items() if k in DEMOGRAPHICS}
    extra = {}
    if demo:
        extra["demographics"] = ('<xnat:demographics xsi:type="xnat:demographicData">'
                                 + "".join(_render(k, v) for k, v in demo.items()) + "</xnat:demographics>")
    fields = {k: v for k, v in subject.fields.items() if k not in DEMOGRAPHICS}
    return _document("xnat:subjectData", {"ID": subject.id, "project": subject.project, "label": subject.label},
                     fields, _SUBJECT_ATTRS, _SUBJECT_ORDER, extra)


def _scan_parts(store: Store, scan: Scan, exp: Experiment) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    parent = Parent("scan", exp.project, exp.subject_id, exp.id, scan.pk)
    extra = {"file": "".join(_resource_xml(r, "xnat:file") for r in store.list_resources(parent))}
    if not extra["file"]:
        del extra["file"]
    return {"ID": scan.id}, dict(scan.fields), extra


def scan_xml_fragment(store: Store, scan: Scan, exp: Experiment) -> str:
    attrs, fields, extra = _scan_parts(store, scan, exp)
    document = _document(scan.xsi_type, attrs, fields, _SCAN_ATTRS, _SCAN_ORDER, extra)
    root = T.root_element(scan.xsi_type)
    body = document.split("\n", 1)[1]
    opening, rest = body.split(">", 1)
    opening = opening.replace(f"<{root}", "<xnat:scan", 1).replace(" " + XMLNS, "")
    return f'{opening} xsi:type="{scan.xsi_type}">{rest[: -len(f"</{root}>")]}</xnat:scan>'


def scan_xml(store: Store, scan: Scan, exp: Experiment) -> str:
    attrs, fields, extra = _scan_parts(store, scan, exp)
    extra["image_session_ID"] = f"<xnat:image_session_ID>{escape(exp.id)}</xnat:image_session_ID>"
    return _document(scan.xsi_type, attrs, fields, _SCAN_ATTRS, _SCAN_ORDER, extra)


def experiment_xml(store: Store, exp: Experiment) -> str:
    fields = dict(exp.fields)
    if exp.xsi_type in T.SESSION_TYPES:
        fields.setdefault("modality", T.modality_of(exp.xsi_type))
    attr_names = _EXPERIMENT_ATTRS + (_SESSION_ATTRS if exp.xsi_type in T.SESSION_TYPES else ())
    extra: dict[str, str] = {}
    resources = store.list_resources(Parent("experiment", exp.project, exp.subject_id, exp.id))
    if exp.session_id:
        extra["imageSession_ID"] = f"<xnat:imageSession_ID>{escape(exp.session_id)}</xnat:imageSession_ID>"
        if resources:
            extra["out"] = "<xnat:out>" + "".join(_resource_xml(r, "xnat:file") for r in resources) + "</xnat:out>"
    else:
        extra["subject_ID"] = f"<xnat:subject_ID>{escape(exp.subject_id)}</xnat:subject_ID>"
        scans = store.list_scans(exp.id)
        if scans:
            extra["scans"] = "<xnat:scans>" + "".join(scan_xml_fragment(store, s, exp) for s in scans) + "</xnat:scans>"
        if resources:
            extra["resources"] = ("<xnat:resources>" + "".join(_resource_xml(r, "xnat:resource") for r in resources)
                                  + "</xnat:resources>")
        assessors = store.list_experiments(session_id=exp.id)
        if assessors:
            extra["assessors"] = "<xnat:assessors>" + "".join(
                f'<xnat:assessor ID={quoteattr(a.id)} label={quoteattr(a.label)} xsi:type="{a.xsi_type}"/>'
                for a in assessors) + "</xnat:assessors>"
    return _document(exp.xsi_type, {"ID": exp.id, "project": exp.project, "label": exp.label}, fields,
                     attr_names, _EXPERIMENT_ORDER, extra)
