"""Per-project and site configuration storage (xnat-rest-spec §11)."""

from __future__ import annotations

import requests
from xnatsim.testing import Api, Server


def test_project_config_roundtrip(api: Api) -> None:
    p = api.new_project("CFG")
    url = f"/data/projects/{p}/config/labels/rules.yaml"
    assert api.get(url, params={"contents": "true"}).status_code == 404
    assert api.get(url, params={"contents": "true", "accept-not-found": "true"}).status_code == 204
    assert api.put(url, data=b"subject: ^S\\d+$\n", params={"inbody": "true"}).status_code == 201
    assert api.put(url, data=b"subject: ^S\\d+$\n").status_code == 200  # unchanged: idempotent
    r = api.get(url, params={"contents": "true"})
    assert (r.status_code, r.text) == (200, "subject: ^S\\d+$\n")
    assert api.put(url, data=b"subject: ^SUB\n", params={"reason": "stricter"}).status_code == 200
    row = api.get(url, params={"format": "json"}).json()["ResultSet"]["Result"][0]
    assert (row["tool"], row["path"], row["project"], row["version"], row["status"], row["reason"]) == (
        "labels", "rules.yaml", p, "2", "enabled", "stricter")
    history = api.get(url, params={"format": "json", "action": "getHistory"}).json()["ResultSet"]["Result"]
    assert [h["version"] for h in history] == ["1", "2"]
    assert api.get(f"/data/projects/{p}/config").json()["ResultSet"]["Result"] == [{"tool": "labels"}]
    assert api.put(url, params={"status": "disabled"}).status_code == 200
    assert api.get(url, params={"contents": "true"}).status_code == 404
    assert api.put(url, params={"status": "enabled"}).status_code == 200
    assert api.get(url, params={"contents": "true"}).text == "subject: ^SUB\n"
    assert api.put(url, data=b"").status_code == 400
    nested = f"/data/projects/{p}/config/labels/deep/er/file.json"
    assert api.put(nested, json={"contents": "{\"a\": 1}"}).status_code == 201
    assert api.get(nested, params={"contents": "true"}).text == "{\"a\": 1}"
    multipart = f"/data/projects/{p}/config/labels/upload.txt"
    assert api.put(multipart, files={"f": ("x.txt", b"from a file")}).status_code == 201
    assert api.get(multipart, params={"contents": "true"}).text == "from a file"
    assert api.delete(url).status_code == 200
    assert api.get(url, params={"contents": "true"}).status_code == 404


def test_config_permissions_and_site_fallback(api: Api, xnatsim_server: Server) -> None:
    p = api.new_project("CFP")
    xnatsim_server.store.add_user(f"col_{p}", "pw")
    xnatsim_server.store.set_role(p, f"col_{p}", "collaborator")
    url = f"{api.url}/data/projects/{p}/config/tool/x"
    denied = requests.put(url, data=b"x", auth=(f"col_{p}", "pw"))
    assert denied.status_code == 403
    assert "privileges to modify config" in denied.text
    assert api.put("/data/config/tool/x", data=b"site value").status_code == 201
    assert requests.put(api.url + "/data/config/tool/x", data=b"y", auth=(f"col_{p}", "pw")).status_code == 403
    r = api.get(f"/data/projects/{p}/config/tool/x", params={"format": "json", "defaultToSiteWide": "true"})
    assert r.json()["ResultSet"]["Result"][0]["contents"] == "site value"
