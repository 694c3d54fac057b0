"""Site information and what ``xnat.connect`` needs (xnat-rest-spec §2, xnatpy-internals §1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from xnatsim.rest.site import SEARCH_ELEMENTS
from xnatsim.schemas import SCHEMA_NAMES
from xnatsim.testing import Api, Server, running_server


def test_version_is_absent_and_build_info_answers(api: Api) -> None:
    assert api.get("/data/version").status_code == 404
    info = api.get("/xapi/siteConfig/buildInfo").json()
    assert info["version"].startswith("1.8")
    assert all(isinstance(v, str) for v in info.values())


def test_schemas_listed_and_each_served(api: Api) -> None:
    names = api.get("/xapi/schemas", params={"format": "json"}).json()
    assert names == list(SCHEMA_NAMES)
    for name in names:
        r = api.get(f"/xapi/schemas/{name}")
        assert r.status_code == 200, name
        root = ET.fromstring(r.content)
        assert root.tag == "{http://www.w3.org/2001/XMLSchema}schema"
    assert api.get("/xapi/schemas/nosuch").status_code == 404


def test_search_elements_table(api: Api) -> None:
    body = api.get("/data/search/elements", params={"format": "json"}).json()["ResultSet"]
    names = [row["ELEMENT_NAME"] for row in body["Result"]]
    assert names == [name for name, _, _ in SEARCH_ELEMENTS]
    assert body["totalRecords"] == str(len(names))
    fields = api.get("/data/search/elements/xnat:mrSessionData", params={"format": "json"}).json()
    assert fields["ResultSet"]["Result"][0]["FIELD_ID"]


def test_xnatpy_connect_costs_what_it_costs_against_xnat(xnatsim_server: Server) -> None:
    xnat = pytest.importorskip("xnat")
    schemas = xnatsim_server.app.state["schemas"] if xnatsim_server.app else None
    if schemas is None or not {"xnat", "xdat"} <= schemas.real:
        pytest.skip("XNAT's schemas are not cached (offline); run python -m xnatsim fetch-schemas")
    xnatsim_server.reset_stats()
    with xnat.connect(xnatsim_server.url, user="admin", password="admin", loglevel="ERROR") as session:
        assert session.logged_in_user == "admin"
        assert "MrSessionData" in dir(session.classes)
    stats = xnatsim_server.stats()
    routes = stats["routes"]
    assert routes["GET /data/version"] == 1
    assert routes["GET /xapi/siteConfig/buildInfo"] == 1
    assert routes["GET /xapi/schemas/{name}"] + routes.get("GET /xapi/schemas/{namespace}/{name}", 0) == len(
        SCHEMA_NAMES)
    assert routes["DELETE /data/JSESSION"] == 1
    # 1 GET / + auth + /data/auth + JSESSION + version + buildInfo + schema list + schemas
    # + search elements + one request per element with a generated class + DELETE JSESSION
    fixed = 7 + len(SCHEMA_NAMES) + 1 + 1
    assert stats["requests"] == fixed + routes["GET /data/search/elements/{element}"]
    assert routes["GET /data/search/elements/{element}"] >= 10


def test_without_cached_schemas_minimal_documents_are_served(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", schema_cache=tmp_path / "empty-cache", fetch_schemas=False) as server:
        api = Api(server)
        for name in ("xnat", "xdat"):
            root = ET.fromstring(api.get(f"/xapi/schemas/{name}").content)
            assert root.get("targetNamespace") == f"http://nrg.wustl.edu/{name}"
            assert len(root) == 0


def test_site_config(api: Api) -> None:
    prefs = api.get("/xapi/siteConfig").json()
    assert prefs["siteId"] == "XNATSIM"
    assert api.get("/xapi/siteConfig/siteUrl").text == api.url
    assert api.get("/xapi/siteConfig/checksums").text == "true"
    assert api.get("/xapi/siteConfig/noSuchThing").status_code == 404
