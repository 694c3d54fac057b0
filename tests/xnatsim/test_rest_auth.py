"""Login, sessions, Basic auth, alias tokens and project roles (xnat-rest-spec §1, §0.4)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import requests
from xnatsim.store import Store
from xnatsim.testing import Api, Server


def test_login_returns_session_id_and_cookie(xnatsim_url: str) -> None:
    s = requests.Session()
    r = s.put(xnatsim_url + "/data/services/auth", data={"username": "admin", "password": "admin"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    sid = r.text
    assert sid
    assert s.cookies["JSESSIONID"] == sid
    r = s.get(xnatsim_url + "/data/auth")
    assert r.status_code == 200
    assert r.text == "User 'admin' is logged in"
    r = s.get(xnatsim_url + "/data/JSESSION")
    assert (r.status_code, r.text) == (200, sid)
    assert s.get(xnatsim_url + "/data/projects", params={"format": "json"}).status_code == 200
    assert s.delete(xnatsim_url + "/data/JSESSION").status_code == 200
    assert s.get(xnatsim_url + "/data/projects").status_code == 401


def test_cookie_alone_authenticates(xnatsim_url: str) -> None:
    sid = requests.post(xnatsim_url + "/data/services/auth", data={"j_username": "admin", "j_password": "admin"}).text
    r = requests.get(xnatsim_url + "/data/auth", cookies={"JSESSIONID": sid})
    assert r.text == "User 'admin' is logged in"


def test_bad_password_and_missing_credentials(xnatsim_url: str) -> None:
    r = requests.put(xnatsim_url + "/data/services/auth", data={"username": "admin", "password": "nope"})
    assert r.status_code == 401
    assert "<h3>Authentication failed.</h3>" in r.text
    assert requests.get(xnatsim_url + "/data/services/auth").status_code == 405
    r = requests.get(xnatsim_url + "/data/projects")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(xnatsim_url + "/data/projects", auth=("admin", "wrong")).status_code == 401
    assert requests.get(xnatsim_url + "/data/auth").status_code == 401


def test_basic_auth_sets_a_session_cookie(xnatsim_url: str) -> None:
    s = requests.Session()
    r = s.get(xnatsim_url + "/data/JSESSION", auth=("admin", "admin"))
    assert r.status_code == 200
    assert s.cookies.get("JSESSIONID") == r.text
    assert s.get(xnatsim_url + "/data/auth").text == "User 'admin' is logged in"


def test_alias_token_issue_use_validate_revoke(xnatsim_url: str, xnatsim_server: Server) -> None:
    r = requests.get(xnatsim_url + "/data/services/tokens/issue", auth=("admin", "admin"))
    assert r.status_code == 200
    token = r.json()
    assert list(token)[:4] == ["secret", "estimatedExpirationTime", "alias", "xdatUserId"]
    assert token["xdatUserId"] == "admin"
    assert len(token["secret"]) == 64
    creds = (token["alias"], token["secret"])
    assert requests.get(xnatsim_url + "/data/auth", auth=creds).text == "User 'admin' is logged in"
    valid = requests.get(f"{xnatsim_url}/data/services/tokens/validate/{creds[0]}/{creds[1]}", auth=creds)
    assert valid.json() == {"valid": "admin"}
    inv = requests.get(f"{xnatsim_url}/data/services/tokens/invalidate/{creds[0]}/{creds[1]}", auth=("admin", "admin"))
    assert inv.status_code == 200
    assert requests.get(xnatsim_url + "/data/auth", auth=creds).status_code == 401
    # the Python API the Container Service uses
    issued = xnatsim_server.store.issue_token("admin")
    assert requests.get(xnatsim_url + "/data/auth", auth=(issued["alias"], issued["secret"])).status_code == 200
    assert xnatsim_server.store.revoke_token(issued["alias"])
    assert requests.get(xnatsim_url + "/data/auth", auth=(issued["alias"], issued["secret"])).status_code == 401


def test_roles_owner_member_collaborator_outsider(api: Api, xnatsim_server: Server) -> None:
    store = xnatsim_server.store
    project = api.new_project("ROLE")
    for login in ("own", "mem", "col", "out"):
        store.add_user(f"{login}_{project}", "pw")
    store.set_role(project, f"own_{project}", "owner")
    store.set_role(project, f"mem_{project}", "member")
    store.set_role(project, f"col_{project}", "collaborator")
    url = api.url + f"/data/projects/{project}"

    def status(login: str, method: str, path: str) -> int:
        return requests.request(method, url + path, auth=(f"{login}_{project}", "pw"), timeout=30).status_code

    assert status("col", "GET", "/subjects") == 200
    assert status("col", "PUT", "/subjects/S1") == 403
    assert status("out", "GET", "/subjects") == 403
    assert status("out", "PUT", "/subjects/S1") == 403
    assert status("mem", "PUT", "/subjects/S1") == 201
    assert status("mem", "DELETE", "/subjects/S1") == 403
    assert status("own", "DELETE", "/subjects/S1") == 200
    # listings hide private projects from outsiders
    rows = requests.get(api.url + "/data/projects", auth=(f"out_{project}", "pw")).json()["ResultSet"]["Result"]
    assert project not in {r["ID"] for r in rows}
    rows = requests.get(api.url + "/data/projects", auth=(f"col_{project}", "pw")).json()["ResultSet"]["Result"]
    assert project in {r["ID"] for r in rows}


def test_tokens_for_other_users_need_admin(api: Api, xnatsim_server: Server) -> None:
    xnatsim_server.store.add_user("plainuser", "pw")
    r = requests.get(api.url + "/data/services/tokens/issue/user/admin", auth=("plainuser", "pw"))
    assert r.status_code == 403
    assert "Only admins can work with alias tokens for other users." in r.text
    assert api.get("/data/services/tokens/issue/user/plainuser").json()["xdatUserId"] == "plainuser"


def test_users_created_and_given_roles_over_http(api: Api) -> None:
    project = api.new_project("USR")
    login = f"http_{project}".lower()
    r = api.post("/xapi/users", json={"username": login, "password": "pw", "email": "u@example.org"})
    assert r.status_code == 201
    assert r.json()["username"] == login
    assert api.post("/xapi/users", json={"username": login, "password": "pw"}).status_code == 409
    assert requests.post(api.url + "/xapi/users", json={"username": "x", "password": "y"},
                         auth=(login, "pw")).status_code == 403
    url = f"{api.url}/data/projects/{project}/subjects"
    assert requests.get(url, auth=(login, "pw")).status_code == 403
    assert api.put(f"/data/projects/{project}/users/members/{login}").status_code == 200
    assert requests.get(url, auth=(login, "pw")).status_code == 200
    roles = api.get(f"/data/projects/{project}/users").json()["ResultSet"]["Result"]
    mine = next(r for r in roles if r["login"] == login)
    assert (mine["role"], mine["displayname"], mine["GROUP_ID"]) == ("member", "Members", f"{project}_member")
    assert mine["email"] == "u@example.org"
    assert login in api.get("/xapi/users").json()


def _token_sessions(url: str, alias: str, secret: str) -> list[requests.Session]:
    """Web sessions made with an alias token in every way XNAT clients make them."""
    basic = requests.Session()  # Basic auth on any request sets JSESSIONID (pyxnat, xnatpy's token login)
    assert basic.get(url + "/", auth=(alias, secret)).status_code == 200
    login = requests.Session()  # the login form with the token as user name and password
    assert login.post(url + "/data/services/auth", data={"username": alias, "password": secret}).status_code == 200
    jsession = requests.Session()  # GET /data/JSESSION with Basic auth
    assert jsession.get(url + "/data/JSESSION", auth=(alias, secret)).status_code == 200
    for s in (basic, login, jsession):
        assert s.cookies.get("JSESSIONID")
        assert s.get(url + "/data/auth").status_code == 200
    return [basic, login, jsession]


def test_sessions_made_with_a_token_end_when_it_is_revoked(xnatsim_url: str, xnatsim_server: Server) -> None:
    token = xnatsim_server.store.issue_token("admin")
    sessions = _token_sessions(xnatsim_url, token["alias"], token["secret"])
    password_session = requests.Session()
    assert password_session.get(xnatsim_url + "/data/JSESSION", auth=("admin", "admin")).status_code == 200
    assert xnatsim_server.store.revoke_token(token["alias"])  # what the Container Service does at finalization
    for s in sessions:
        r = s.get(xnatsim_url + "/data/auth")
        assert r.status_code == 401, r.text
        assert s.get(xnatsim_url + "/data/projects").status_code == 401
    assert password_session.get(xnatsim_url + "/data/auth").status_code == 200


def test_sessions_made_with_a_token_end_when_it_expires(xnatsim_url: str, xnatsim_server: Server) -> None:
    token = xnatsim_server.store.issue_token("admin", lifetime_ms=3000)
    sessions = _token_sessions(xnatsim_url, token["alias"], token["secret"])
    time.sleep(max(0.0, token["estimatedExpirationTime"] / 1000 - time.time()) + 0.2)
    for s in sessions:
        assert s.get(xnatsim_url + "/data/auth").status_code == 401


def test_a_token_cannot_issue_a_token_that_outlives_it(xnatsim_url: str, xnatsim_server: Server) -> None:
    job = xnatsim_server.store.issue_token("admin", lifetime_ms=60_000)
    by_token = requests.get(xnatsim_url + "/data/services/tokens/issue", auth=(job["alias"], job["secret"]))
    session = requests.Session()
    assert session.get(xnatsim_url + "/", auth=(job["alias"], job["secret"])).status_code == 200
    by_session = session.get(xnatsim_url + "/data/services/tokens/issue/user/admin")
    children = [by_token.json(), by_session.json()]
    grandchild = requests.get(xnatsim_url + "/data/services/tokens/issue",
                              auth=(children[0]["alias"], children[0]["secret"])).json()
    for child in [*children, grandchild]:
        assert child["estimatedExpirationTime"] <= job["estimatedExpirationTime"]
        assert requests.get(xnatsim_url + "/data/auth", auth=(child["alias"], child["secret"])).status_code == 200
    # a token issued with the password is not bound to the job
    own = requests.get(xnatsim_url + "/data/services/tokens/issue", auth=("admin", "admin")).json()
    assert own["estimatedExpirationTime"] > job["estimatedExpirationTime"]
    assert xnatsim_server.store.revoke_token(job["alias"])
    for child in [*children, grandchild]:
        assert requests.get(xnatsim_url + "/data/auth", auth=(child["alias"], child["secret"])).status_code == 401
        valid = requests.get(f"{xnatsim_url}/data/services/tokens/validate/{child['alias']}/{child['secret']}")
        assert valid.json() == {}
    assert requests.get(xnatsim_url + "/data/auth", auth=(own["alias"], own["secret"])).status_code == 200


def test_a_data_folder_from_before_token_binding_still_opens(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "xnatsim.db")
    db.executescript(
        "CREATE TABLE sessions(id TEXT PRIMARY KEY, login TEXT NOT NULL, created REAL NOT NULL);"
        "CREATE TABLE tokens(id INTEGER PRIMARY KEY AUTOINCREMENT, alias TEXT UNIQUE NOT NULL,"
        " salt TEXT NOT NULL, secret_hash TEXT NOT NULL, login TEXT NOT NULL, created INTEGER NOT NULL,"
        " expires INTEGER NOT NULL, enabled INTEGER NOT NULL DEFAULT 1);"
        "INSERT INTO sessions VALUES('OLD', 'admin', 0);")
    db.close()
    store = Store(tmp_path)
    try:
        assert store.session_user("OLD") == "admin"
        store.add_user("admin", "admin", admin=True)
        token = store.issue_token("admin")
        sid = store.create_session("admin", token=token["alias"])
        assert store.session_login(sid) == ("admin", token["alias"])
    finally:
        store.close()
