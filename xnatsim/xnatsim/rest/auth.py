"""Login, sessions and alias tokens (xnat-rest-spec §1).

``PUT``/``POST /data/services/auth`` (form body) → session id; ``/data/JSESSION`` (GET, POST, DELETE);
``GET /data/auth``; alias tokens under ``/data/services/tokens``; ``/data/users``, ``/xapi/users``.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from xnatsim.resultset import table_response
from xnatsim.routing import HTTPError, Request, Response, Routes
from xnatsim.store import StoreError

_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def _session_cookie(sid: str) -> str:
    return f"JSESSIONID={sid}; Path=/; HttpOnly"


def _token_owner(request: Request) -> str:
    """The ``{login}`` whose alias tokens the request works with: the caller, or anyone for admins."""
    user = request.require_user()
    login = request.params["login"]
    if login != user and not request.store.is_admin(user):
        raise HTTPError(403, "Only admins can work with alias tokens for other users.")
    return login


routes = Routes()


@routes.route("PUT", "/data/services/auth", auth="public")
@routes.route("POST", "/data/services/auth", auth="public")
def login(request: Request) -> Response:
    body = request.read_body(1 << 16).decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True)) if body else {}
    for key, value in request.query.items:
        form.setdefault(key, value)
    provider = form.get("provider") or form.get("login_method")
    if provider and provider not in ("localdb", "local"):
        raise HTTPError(400, f"Unknown authentication provider: {provider}")
    username = form.get("username") or form.get("j_username") or ""
    password = form.get("password") or form.get("j_password") or ""
    credentials = request.app.check_credentials(username, password) if username else None
    if credentials is None:
        raise HTTPError(401, "Authentication failed.")
    sid = request.store.create_session(credentials.user, token=credentials.token)
    response = Response.text(sid)
    response.headers["Set-Cookie"] = _session_cookie(sid)
    return response


@routes.route("GET", "/data/services/auth", auth="public")
def login_get(request: Request) -> Response:
    raise HTTPError(405, "Method Not Allowed")


@routes.route("GET", "/data/JSESSION", auth="public")
@routes.route("POST", "/data/JSESSION", auth="public")
def jsession(request: Request) -> Response:
    sid = request.cookies.get("JSESSIONID", "")
    if request.user is None or not sid or request.store.session_user(sid) != request.user:
        if request.user is None:
            # an anonymous session, as XNAT's servlet container would hand out (guest)
            sid = sid or "GUEST"
            return Response.text(sid)
        sid = request.store.create_session(request.user, token=request.token)
    response = Response.text(sid + (";XNAT_CSRF=" + sid[:16] if request.query.flag("CSRF") else ""))
    if request.cookies.get("JSESSIONID") != sid:
        response.headers["Set-Cookie"] = _session_cookie(sid)
    return response


@routes.route("DELETE", "/data/JSESSION", auth="public")
def logout(request: Request) -> Response:
    sid = request.cookies.get("JSESSIONID")
    if sid:
        request.store.delete_session(sid)
    return Response.empty()


@routes.route("GET", "/data/auth", auth="public")
def whoami(request: Request) -> Response:
    if request.user is None:
        raise HTTPError(401, "Login attempt failed. Please try again.", {"WWW-Authenticate": 'Basic realm="XNAT"'})
    text = f"User '{request.user}' is logged in"
    if request.query.flag("CSRF"):
        text += "; XNAT_CSRF=" + request.cookies.get("JSESSIONID", "")[:16]
    return Response.text(text)


@routes.route("GET", "/", auth="public")
def root(request: Request) -> Response:
    # xnatpy's alias-token login sends Basic auth here and keeps the JSESSIONID cookie set.
    return Response.text("<html><head><title>XNAT</title></head><body>xnatsim</body></html>",
                         content_type="text/html;charset=UTF-8")


@routes.route("GET", "/data/services/tokens/issue")
def issue(request: Request) -> Response:
    return Response.json(request.store.issue_token(request.require_user(), parent=request.token))


@routes.route("GET", "/data/services/tokens/issue/user/{login}")
def issue_for(request: Request) -> Response:
    login = _token_owner(request)
    if not request.store.user_exists(login):
        raise HTTPError(404, f"User {login} not found.")
    return Response.json(request.store.issue_token(login, parent=request.token))


@routes.route("GET", "/data/services/tokens/validate/{alias}/{secret}", auth="public")
def validate(request: Request) -> Response:
    login = request.store.validate_token(request.params["alias"], request.params["secret"])
    return Response.json({"valid": login} if login else {})


@routes.route("GET", "/data/services/tokens/invalidate/{alias}/{secret}", auth="public")
def invalidate(request: Request) -> Response:
    alias, secret = request.params["alias"], request.params["secret"]
    if not _UUID.match(alias) or request.store.validate_token(alias, secret) is None:
        raise HTTPError(404, "Token not found.")
    request.store.revoke_token(alias)
    return Response.empty()


@routes.route("GET", "/data/services/tokens/show")
def show(request: Request) -> Response:
    return Response.json(request.store.list_tokens(request.require_user()))


@routes.route("GET", "/data/services/tokens/show/user/{login}")
def show_for(request: Request) -> Response:
    login = _token_owner(request)
    return Response.json(request.store.list_tokens(login))


@routes.route("GET", "/data/users")
def users(request: Request) -> Response:
    rows = [(str(u.id), u.login, u.first_name, u.last_name, u.email, "1" if u.enabled else "0")
            for u in request.store.list_users()]
    return table_response(request, ("xdat_user_id", "login", "firstname", "lastname", "email", "enabled"), rows,
                          title="Users")


@routes.route("GET", "/xapi/users")
def xapi_users(request: Request) -> Response:
    return Response.json([u.login for u in request.store.list_users()])


@routes.route("POST", "/xapi/users", auth="admin")
def create_user(request: Request) -> Response:
    try:
        body = json.loads(request.read_body(1 << 16) or b"{}")
    except ValueError as exc:
        raise HTTPError(400, f"Body must be JSON: {exc}") from exc
    if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
        raise HTTPError(400, "username and password are required.")
    login = str(body["username"])
    if request.store.user_exists(login):
        raise HTTPError(409, f"User {login} already exists.")
    try:
        request.store.add_user(login, str(body["password"]), admin=bool(body.get("admin", False)),
                               first_name=str(body.get("firstName", "")), last_name=str(body.get("lastName", "")),
                               email=str(body.get("email", "")))
    except StoreError as exc:
        raise HTTPError(400, exc.message) from exc
    return _profile(request, login, 201)


@routes.route("GET", "/xapi/users/current")
def current(request: Request) -> Response:
    return _profile(request, request.require_user())


@routes.route("GET", "/xapi/users/{login}")
def profile(request: Request) -> Response:
    return _profile(request, request.params["login"])


register = routes.register


def _profile(request: Request, login: str, status: int = 200) -> Response:
    u = request.store.get_user(login)
    if u is None:
        raise HTTPError(404, f"User {login} not found.")
    return Response.json({"id": u.id, "username": login, "firstName": u.first_name, "lastName": u.last_name,
                          "email": u.email, "enabled": u.enabled, "verified": True, "admin": u.admin}, status)
