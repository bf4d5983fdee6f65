"""Hostile input against every form and REST endpoint of the hub and both
services, with a real hub, proxy, services and slapd.

A few thousand requests (tests/support/hostile.py: LDAP filter
metacharacters, traversal, look-alike unicode, control characters, over-long
values, wrong JSON types, broken bodies and headers), anonymous and as a
student and a teacher (cookie + xsrf, and API tokens). Every answer must be
below 500; a refusal (4xx) must say why (JSON ``message`` from APIs, text on
HTML pages); no redirect leaves the hub; no login cookie is handed out for
anything but the real credentials; and afterwards nothing was written (users,
tokens, the courses folder, the sharing service's links, the audit logs) and
the hub and both services still work.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import nbformat
import pytest
import requests

from tests.support.hostile import (
    ALL, BAD_BODIES, JSON_SCALARS, REDIRECTS, SAMPLE, XSS_MARKERS, Request, Response, path_segment as seg,
    send, short,
)
from slicerhub.courses.store import NAME as APP_NAME
from tests.support.hub import xsrf

pytestmark = pytest.mark.integration

PASSWORDS = {"admin1": "admin-pw", "teacher1": "teacher-pw", "student1": "student1-pw",
             "student2": "student2-pw"}
COURSES, SHARING = "/services/courses", "/services/sharing"
TIMEOUT = 15  # seconds per request
WORKERS = 6
STATS: dict[str, tuple[int, float]] = {}
LOGIN_COOKIE = "jupyterhub-hub-login"
HUGE = "99999999999999999999999999"
# JupyterHub's REST API answers some refusals with {"status": 404, "message": null}: listed, not
# failed (test_jupyterhub_api_bare_refusals documents it).
JUPYTERHUB_BARE: list[str] = []


def _notebook(marker: str) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({marker!r})")])
    return json.loads(nbformat.writes(nb))


NOTEBOOK = _notebook("hostile")
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


# ------------------------------------------------------------------ people


@dataclass
class Who:
    """Someone sending requests: anonymous, or logged in (cookies) with an API token."""

    name: str
    session: requests.Session | None = None
    token: str | None = None

    def cookie(self, path: str) -> str | None:
        if self.session is None:
            return None
        jar = sorted((c for c in self.session.cookies if path.startswith(c.path.rstrip("/") or "/")),
                     key=lambda c: -len(c.path))
        return "; ".join(f"{c.name}={c.value}" for c in jar) or None

    def xsrf(self, prefix: str = "/hub/") -> str:
        return xsrf(self.session, prefix) or ""


ANON = Who("anonymous")


@dataclass
class Case:
    """One request, how it is authenticated, and what must not happen."""

    label: str
    who: Who
    method: str
    path: str  # already encoded: exactly what goes on the request line
    auth: str = "none"  # "none", "cookie" (with the xsrf token where needed), "token"
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    refused: bool = True  # the input is bad: anything but a 4xx is a finding
    message: str | None = None  # a 4xx must give this reason (regular expression)
    reset_ok: bool = False  # over the proxy's header limit: it may close the connection before answering
    login_ok: bool = False  # real credentials: a login cookie is expected

    def request(self) -> Request:
        headers = list(self.headers)
        if self.who.session is not None and not any(k.lower() == "user-agent" for k, _ in headers):
            # JupyterHub ties an anonymous xsrf token to the browser's User-Agent.
            headers.append(("User-Agent", self.who.session.headers["User-Agent"]))
        if self.auth in ("cookie", "cookie-no-xsrf"):
            cookie = self.who.cookie(self.path)
            if cookie:
                headers.append(("Cookie", cookie))
            if self.auth == "cookie" and self.path.startswith("/hub/api/"):
                headers.append(("X-XSRFToken", self.who.xsrf()))
        elif self.auth == "token":
            headers.append(("Authorization", f"token {self.who.token}"))
        if self.content_type:
            headers.append(("Content-Type", self.content_type))
        return Request(self.method, self.path, headers, self.body)

    def __str__(self) -> str:
        body = f" {short(self.body, 70)}" if self.body else ""
        return f"{self.label} [{self.who.name}/{self.auth}] {self.method} {short(self.path, 90)}{body}"


def form(who: Who, prefix: str, **fields) -> bytes:
    """A urlencoded form with the xsrf token of `prefix` (the hub's or a service's)."""
    return urlencode({"_xsrf": who.xsrf(prefix), **fields}).encode()


def jbody(**fields) -> bytes:
    return json.dumps(fields).encode()


def object_body(body: bytes) -> bool:
    """Whether BODY is a JSON object (to the hub's REST API: options for a real spawn or token)."""
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


def raw_field(name: str, raw_json: str, **others) -> bytes:
    """A JSON object with `name` set to the raw JSON text (NaN, 1e309, lone surrogates...)."""
    rest = json.dumps(others)[1:-1]
    return ("{" + (rest + ", " if rest else "") + json.dumps(name) + ": " + raw_json + "}").encode()


# ------------------------------------------------------------------ checks


DOT_SEGMENT = re.compile(r"/\.\.?(/|$|\?)")


def jupyterhub_bare(case: Case, resp: Response) -> bool:
    """A JupyterHub REST refusal with no message: {"status": N, "message": null}."""
    if not case.path.startswith("/hub/api/") or resp.content_type != "application/json":
        return False
    try:
        data = resp.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("status") == resp.status and data.get("message") is None


def off_site(location: str, port: int) -> bool:
    loc = re.sub(r"[\t\r\n]", "", location).strip()
    if loc.startswith(("//", "/\\", "\\")):
        return True
    parts = urlsplit(loc)
    if parts.scheme and parts.scheme not in ("http", "https"):
        return True
    return bool(parts.netloc) and parts.netloc != f"127.0.0.1:{port}"


def problems(case: Case, resp: Response | Exception, port: int) -> list[str]:
    if isinstance(resp, Exception):
        if case.reset_ok and isinstance(resp, ConnectionResetError):
            return []
        return [f"no answer: {resp!r}"]
    out = []
    status = resp.status
    if status >= 500:
        out.append(f"{status} {short(resp.body, 160)}")
    elif 400 <= status < 500:
        message = resp.message()
        if not message and jupyterhub_bare(case, resp):
            JUPYTERHUB_BARE.append(f"{case}: {status}")
        elif not message:
            out.append(f"{status} without a message ({resp.content_type or 'no type'}: {short(resp.body)})")
        elif "/api/" in case.path and not case.path.startswith("/hub/api/oauth2/authorize") \
                and resp.body and resp.content_type != "application/json":
            # (the OAuth authorize endpoint is a browser page: HTML is its answer)
            out.append(f"{status} from a JSON API as {resp.content_type}: {short(message)}")
        elif "%%" in message and not any(x in case.body for x in (b"%%", b"%25%25")) and "%25%25" not in case.path:
            out.append(f"{status} message mangles '%': {short(message, 120)}")
        elif case.message and not re.search(case.message, message):
            out.append(f"{status} for another reason than expected: {short(message, 120)}")
    elif case.refused and not DOT_SEGMENT.search(case.path):
        # (a path with /../ or /./ in it is resolved by the proxy or the hub: another page)
        out.append(f"accepted with {status} (expected a 4xx)")
    location = resp.header("Location")
    if location and off_site(location, port):
        out.append(f"redirects off the hub to {short(location)}")
    for cookie in resp.all("Set-Cookie"):
        name, _, rest = cookie.partition("=")
        value = rest.split(";")[0].strip('"')
        cleared = "max-age=0" in cookie.lower().replace(" ", "")
        if name.strip() == LOGIN_COOKIE and value and not cleared and not case.login_ok:
            out.append("hands out a login cookie")
    if resp.content_type == "text/html":
        body = resp.body.decode("utf-8", "replace")
        if any(m in body for m in XSS_MARKERS):
            out.append("echoes markup unescaped")
    return out


def run(hub, group: str, cases: list[Case]) -> list[str]:
    """Send every case (a few at a time); the findings, one line each."""
    def one(case: Case):
        try:
            return case, send(hub.port, case.request(), timeout=TIMEOUT)
        except Exception as e:  # noqa: BLE001 - every failure to answer is a finding
            return case, e

    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(one, cases))
    STATS[group] = (len(cases), time.monotonic() - start)
    return [f"{case}: {p}" for case, resp in results for p in problems(case, resp, hub.port)]


def assert_clean(findings: list[str]) -> None:
    assert not findings, f"{len(findings)} finding(s):\n" + "\n".join(findings[:40])


# ------------------------------------------------------------------ world


def _api(hub, token, method, path, **kw):
    return requests.request(method, hub.url + path, headers={"Authorization": f"token {token}"},
                            timeout=30, **kw)


def snapshot(hub, admin_token) -> dict:
    """What hostile input must not change."""
    users = _api(hub, admin_token, "GET", "/hub/api/users").json()
    users = users["items"] if isinstance(users, dict) else users
    tokens = {u["name"]: sorted(t["id"] for t in _api(hub, admin_token, "GET",
                                                       f"/hub/api/users/{u['name']}/tokens").json()["api_tokens"])
              for u in users}
    tree = {}
    root = hub.workdir / "courses"
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        tree[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    data = hub.workdir / "hub"
    db = sqlite3.connect(f"file:{data / 'sharing.sqlite'}?mode=ro", uri=True)
    try:
        links = db.execute("SELECT * FROM links").fetchall() + db.execute("SELECT * FROM viewers").fetchall()
    finally:
        db.close()
    logs = {name: (data / name).read_bytes() if (data / name).exists() else b""
            for name in ("courses-audit.log", "sharing-audit.log")}
    return {"users": sorted((u["name"], u["admin"], sorted(u["groups"]), sorted(u.get("servers") or {}))
                            for u in users),
            "tokens": tokens, "courses": tree, "links": links, "audit": logs}


@pytest.fixture(scope="module")
def world(hub):
    people = {}
    for name in ("admin1", "teacher1", "student1"):
        s, r = hub.login(name, PASSWORDS[name])
        assert r.status_code == 302, r.text[:300]
        for service in (COURSES, SHARING):  # OAuth with each service: its cookie and _xsrf
            assert s.get(hub.url + service + "/", timeout=30).status_code == 200
        people[name] = Who(name, s, hub.api_token(s, "hostile-tier"))
    teacher = people["teacher1"]
    r = _api(hub, teacher.token, "POST", COURSES + "/api/courses/anat101/apps/seg-lab",
             json={"notebook": NOTEBOOK, "title": "Segmentation lab", "thumbnail": base64.b64encode(PNG).decode()})
    assert r.status_code == 201, r.text
    # A session only used for the login form: its _xsrf cookie, never logged in.
    anon = requests.Session()
    anon.get(hub.url + "/hub/login", timeout=30).raise_for_status()
    people["login-form"] = Who("login-form", anon)
    return {"people": people, "before": snapshot(hub, people["admin1"].token)}


# ------------------------------------------------------------------ the hub


def test_login_form_refuses_hostile_credentials(hub, world):
    form_who = world["people"]["login-form"]

    def login(label, body, **kw):
        return Case(label, form_who, "POST", "/hub/login", "cookie", body,
                    "application/x-www-form-urlencoded", **kw)

    why = r"(?i)username|password"
    cases = [login("username", form(form_who, "/hub/", username=v, password="not-the-password"), message=why)
             for v in ALL]
    cases += [login("password", form(form_who, "/hub/", username="student1", password=v), message=why)
              for v in ALL]
    cases += [login("password/admin", form(form_who, "/hub/", username="admin1", password=v), message=why)
              for v in SAMPLE]
    cases += [login("both", form(form_who, "/hub/", username=v, password=v), message=why) for v in SAMPLE]
    xsrf_token = form_who.xsrf()
    cases += [login("fields", body) for body in [
        b"", f"_xsrf={xsrf_token}".encode(), f"_xsrf={xsrf_token}&username=student1".encode(),
        f"_xsrf={xsrf_token}&password=student1-pw".encode(),
        f"_xsrf={xsrf_token}&username=student1&username=admin1&password=x".encode(),
        f"_xsrf={xsrf_token}&username=student1&password=%ff%fe".encode(),
        f"_xsrf={xsrf_token}&username=student1&password=".encode() + b"p" * 100_000,
        f"_xsrf={xsrf_token}&username[]=student1&password[$ne]=x".encode(),
    ]]
    # The real password, but no or a forged xsrf token: no login.
    real = {"username": "student1", "password": PASSWORDS["student1"]}
    cases += [login("forged-xsrf", urlencode({**real, "_xsrf": v}).encode()) for v in SAMPLE]
    cases += [Case("no-xsrf-cookie", ANON, "POST", "/hub/login", "none", urlencode(real).encode(),
                   "application/x-www-form-urlencoded")]
    # The real credentials in bodies the login form does not read: no login either.
    cases += [Case("text/plain", form_who, "POST", "/hub/login", "cookie", form(form_who, "/hub/", **real),
                   "text/plain"),
              Case("multipart", form_who, "POST", "/hub/login", "cookie", b"--x\r\nbroken",
                   "multipart/form-data; boundary=x"),
              Case("json", form_who, "POST", "/hub/login", "cookie", json.dumps(real).encode(), "application/json")]
    assert_clean(run(hub, "login form", cases))


def test_login_redirects_stay_on_the_hub(hub, world):
    form_who = world["people"]["login-form"]
    cases = [Case("login page next", ANON, "GET", "/hub/login?" + urlencode({"next": v}), refused=False)
             for v in REDIRECTS + SAMPLE]
    cases += [Case("logout next", ANON, "GET", "/hub/logout?" + urlencode({"next": v}), refused=False)
              for v in REDIRECTS]
    # Real credentials with a hostile next=: the login works, the redirect stays here.
    cases += [Case("real login next", form_who, "POST", "/hub/login?" + urlencode({"next": v}), "cookie",
                   form(form_who, "/hub/", username="student1", password=PASSWORDS["student1"]),
                   "application/x-www-form-urlencoded", refused=False, login_ok=True) for v in REDIRECTS]
    student = world["people"]["student1"]
    cases += [Case("user-redirect", student, "GET", "/hub/user-redirect/" + seg(v), "cookie", refused=False)
              for v in SAMPLE + REDIRECTS]
    cases += [Case("home next", student, "GET", "/hub/home?" + urlencode({"next": v}), "cookie", refused=False)
              for v in REDIRECTS]
    assert_clean(run(hub, "redirects", cases))


def test_spawn_form_and_profile_refuse_hostile_choices(hub, world):
    teacher, student = world["people"]["teacher1"], world["people"]["student1"]
    bad = [v for v in ALL if v != ""]  # an empty choice means "my default": a real spawn
    ctype = "application/x-www-form-urlencoded"
    why = "(?i)profile"
    cases = [Case("spawn form", teacher, "POST", "/hub/spawn", "cookie", form(teacher, "/hub/", profile=v), ctype,
                  message=why) for v in bad]
    cases += [Case("spawn form", student, "POST", "/hub/spawn", "cookie", form(student, "/hub/", profile=v), ctype,
                   message=why) for v in SAMPLE if v]
    cases += [Case("spawn query", teacher, "GET", "/hub/spawn?" + urlencode({key: v}), "cookie", message=why)
              for key in ("profile", "opt-profile") for v in SAMPLE if v]
    cases += [Case("spawn user", teacher, "GET", "/hub/spawn/" + seg(v), "cookie") for v in SAMPLE if v]
    cases += [Case("spawn server", teacher, "GET", "/hub/spawn/teacher1/" + seg(v), "cookie")
              for v in SAMPLE if v.strip()]
    cases += [Case("spawn no xsrf", teacher, "POST", "/hub/spawn", "cookie-no-xsrf",
                   urlencode({"profile": "standard"}).encode(), ctype),
              Case("spawn forged xsrf", teacher, "POST", "/hub/spawn", "cookie",
                   urlencode({"profile": "standard", "_xsrf": "forged"}).encode(), ctype),
              Case("spawn anonymous", ANON, "POST", "/hub/spawn", "none",
                   urlencode({"profile": "standard"}).encode(), ctype),
              Case("spawn other profile", student, "POST", "/hub/spawn", "cookie",
                   form(student, "/hub/", profile="teacher"), ctype),
              Case("spawn other profile", student, "POST", "/hub/spawn", "cookie",
                   form(student, "/hub/", profile="gpu"), ctype)]
    # The REST API's spawn: bodies refused before anything starts.
    for who in (student, teacher):
        path = f"/hub/api/users/{who.name}/server"
        # (an object, empty or not, is taken as user_options, and an empty list as no body:
        # those would really spawn)
        cases += [Case("api spawn body", who, "POST", path, "token", b, "application/json")
                  for b in BAD_BODIES if b not in (b"", b"null", b"[]") and not object_body(b)]
        cases += [Case("api spawn user_options", who, "POST", path, "token", raw_field("user_options", t),
                       "application/json") for t in JSON_SCALARS if t != "null" and not t.startswith("{")]
        cases += [Case("api spawn display_name", who, "POST", path, "token", raw_field("display_name", t),
                       "application/json") for t in JSON_SCALARS if t.startswith(("[", "{", "t", "f", "0", "1", "-"))]
    assert_clean(run(hub, "spawn", cases))


def test_hub_rest_api_refuses_hostile_input(hub, world):
    p = world["people"]
    student, teacher, admin = p["student1"], p["teacher1"], p["admin1"]
    js = "application/json"
    cases = [Case("user", student, "GET", "/hub/api/users/" + seg(v), "token") for v in SAMPLE if v]
    cases += [Case("user", ANON, "GET", "/hub/api/users/" + seg(v)) for v in SAMPLE]
    cases += [Case("user cookie", student, "GET", "/hub/api/users/" + seg(v), "cookie") for v in SAMPLE if v]
    cases += [Case("user tokens", teacher, "GET", f"/hub/api/users/{seg(v)}/tokens", "token") for v in SAMPLE if v]
    cases += [Case("user server", student, "POST", f"/hub/api/users/{seg(v)}/server", "token", b"{}", js)
              for v in SAMPLE if v]
    cases += [Case("user", student, "DELETE", "/hub/api/users/" + seg(v), "token") for v in SAMPLE if v]
    cases += [Case("user", student, "PATCH", "/hub/api/users/student1", "token", raw_field(k, t), js)
              for k in ("admin", "name", "groups") for t in JSON_SCALARS[:12]]
    # Tokens: wrong types and values never make a token.
    tok = "/hub/api/users/student1/tokens"
    # (an object is a token request: only those that are not; JupyterHub reads an empty list as none)
    cases += [Case("token body", student, "POST", tok, "token", b, js) for b in BAD_BODIES
              if b not in (b"", b"null", b"[]") and not object_body(b)]
    # JupyterHub takes booleans and any int as expires_in (False, 0: never expires): not sent.
    cases += [Case("token expires_in", student, "POST", tok, "token", raw_field("expires_in", t), js)
              for t in JSON_SCALARS if t not in ("null", "true", "false", "0", "-1")
              and not t.startswith(("1" + "0" * 10, "-9"))]
    cases += [Case("token scopes", student, "POST", tok, "token", raw_field("scopes", t, expires_in=60), js)
              for t in JSON_SCALARS if t not in ("null", "[]")]
    cases += [Case("token scopes", student, "POST", tok, "token", jbody(scopes=[v], expires_in=60), js)
              for v in SAMPLE if v]
    cases += [Case("token roles", student, "POST", tok, "token", jbody(roles=[v], expires_in=60), js)
              for v in SAMPLE if v]
    cases += [Case("token scopes", student, "POST", tok, "token", jbody(scopes=[s], expires_in=60), js)
              for s in ("admin:users", "admin:servers", "tokens", "shares", "access:servers",
                        "custom:jupyter_server:execute:*", "read:users", "access:servers!user=teacher1")]
    cases += [Case("token cookie no xsrf", student, "POST", tok, "cookie-no-xsrf", jbody(expires_in=60), js),
              Case("token anonymous", ANON, "POST", tok, "none", jbody(expires_in=60), js),
              Case("token for teacher", student, "POST", "/hub/api/users/teacher1/tokens", "token",
                   jbody(expires_in=60), js),
              Case("token password", ANON, "POST", tok, "none",
                   jbody(auth={"username": "student1", "password": "wrong"}), js)]
    cases += [Case("token delete", student, "DELETE", f"{tok}/{seg(v)}", "token") for v in SAMPLE if v]
    # Lists, pagination, groups, shares.
    # (a huge offset is JupyterHub's own 500: test_jupyterhub_users_offset_too_large)
    for key in ("offset", "limit", "name_filter"):
        cases += [Case("users " + key, admin, "GET", "/hub/api/users?" + urlencode({key: v}), "token",
                       refused=False) for v in SAMPLE if not (key == "offset" and v == HUGE)]
    cases += [Case("users", student, "GET", "/hub/api/users?" + urlencode({"offset": v}), "token") for v in SAMPLE]
    cases += [Case("groups offset", teacher, "GET", "/hub/api/groups?" + urlencode({"limit": v}), "token",
                   refused=False) for v in SAMPLE]
    cases += [Case("group", teacher, "GET", "/hub/api/groups/" + seg(v), "token") for v in SAMPLE if v]
    cases += [Case("group users", student, "POST", f"/hub/api/groups/{seg(v)}/users", "token",
                   jbody(users=["student1"]), js) for v in SAMPLE if v]
    cases += [Case("shares", student, "GET", "/hub/api/shares/" + seg(v), "token") for v in SAMPLE if v]
    cases += [Case("share codes", student, "GET", "/hub/api/share-codes/student1/?" + urlencode({"id": v}),
                   "token", refused=False) for v in SAMPLE]
    cases += [Case("share codes", student, "DELETE", "/hub/api/share-codes/student1/?" + urlencode({"id": v}),
                   "token", refused=False) for v in SAMPLE]
    cases += [Case("share code", student, "POST", "/hub/api/share-codes/student1/", "token",
                   raw_field("expires_in", t), js) for t in JSON_SCALARS if t != '"3600"']  # (that one is valid)
    # (an unknown scope here is JupyterHub's own 500: test_jupyterhub_share_with_unknown_scope)
    cases += [Case("shares revoke", student, "PATCH", "/hub/api/shares/student1/", "token",
                   jbody(user=v, scopes=["access:servers!server=student1/"]), js, refused=False)
              for v in SAMPLE if v]
    cases += [Case("shares grant", student, "POST", "/hub/api/shares/student1/", "token",
                   jbody(user=v, scopes=["access:servers!server=student1/"]), js) for v in SAMPLE if v]
    cases += [Case("accept share", student, "GET", "/hub/accept-share?" + urlencode({"code": v}), "cookie")
              for v in SAMPLE]
    cases += [Case("accept share", student, "POST", "/hub/accept-share", "cookie",
                   form(student, "/hub/", code=v), "application/x-www-form-urlencoded") for v in SAMPLE]
    # OAuth with made-up clients and return addresses.
    for key in ("client_id", "redirect_uri", "state"):
        params = {"client_id": "service-courses", "redirect_uri": "/services/courses/oauth_callback",
                  "response_type": "code", "state": "s"}
        cases += [Case("oauth " + key, student, "GET", "/hub/api/oauth2/authorize?" + urlencode({**params, key: v}),
                       "cookie", refused=False) for v in SAMPLE]
    cases += [Case("oauth token", ANON, "POST", "/hub/api/oauth2/token", "none",
                   urlencode({"grant_type": "authorization_code", "code": v, "client_id": "service-courses",
                              "client_secret": v, "redirect_uri": "/services/courses/oauth_callback"}).encode(),
                   "application/x-www-form-urlencoded") for v in SAMPLE]
    # Authorization headers.
    for scheme in ("token ", "Bearer "):
        cases += [Case("authorization " + scheme.strip(), ANON, "GET", "/hub/api/user", "none",
                       headers=[("Authorization", scheme + v)]) for v in SAMPLE]
    assert_clean(run(hub, "hub api", cases))


def test_hostile_headers(hub, world):
    student = world["people"]["student1"]
    cookie = student.cookie("/hub/")
    cases = []
    for size in (5_000, 15_000, 20_000, 70_000):
        # (over 16 KiB of headers configurable-http-proxy answers 431, or just closes the
        # connection while a client is still sending)
        big = size > 16_384
        cases += [Case(f"cookie {size}", ANON, "GET", "/hub/home", headers=[("Cookie", "a=" + "x" * size)],
                       refused=False, reset_ok=big),
                  Case(f"cookie {size} + login", ANON, "GET", "/hub/api/user",
                       headers=[("Cookie", f"{cookie}; junk={'x' * size}")], refused=False, reset_ok=big),
                  Case(f"cookie {size}", ANON, "GET", COURSES + "/api/courses",
                       headers=[("Cookie", "a=" + "x" * size)], reset_ok=big)]
    for name in (LOGIN_COOKIE, "jupyterhub-session-id", "_xsrf", "jupyterhub-services-courses",
                 "jupyterhub-services-sharing"):
        cases += [Case("cookie " + name, ANON, "GET", path, headers=[("Cookie", f"{name}={v}")],
                       refused=path.startswith(("/hub/api", COURSES + "/api", SHARING + "/api")))
                  for path in (("/hub/home", "/hub/api/user") if name.startswith(("jupyterhub-hub", "_"))
                               else (COURSES + "/api/courses", SHARING + "/api/links"))
                  for v in SAMPLE[:12] if "\r" not in v and "\n" not in v]
    cases += [Case("xsrf header", student, "POST", "/hub/api/users/student1/tokens", "cookie-no-xsrf",
                   jbody(expires_in=60), "application/json", headers=[("X-XSRFToken", v)])
              for v in SAMPLE if "\r" not in v and "\n" not in v]
    for header in ("Host", "X-Forwarded-Host", "X-Forwarded-Proto", "Referer", "Origin"):
        cases += [Case("header " + header, student, "GET", "/hub/home", "cookie", headers=[(header, v)],
                       refused=False) for v in SAMPLE if v and "\r" not in v and "\n" not in v]
    cases += [Case("header Host", ANON, "GET", path, headers=[("Host", "evil.example")], refused=False)
              for path in ("/hub/login", "/hub/", "/hub/logout", COURSES + "/", SHARING + "/")]
    # Broken HTTP: the proxy refuses it.
    cases += [Case("crlf header", ANON, "GET", "/hub/login", headers=[("X-A", b"a\r\nSet-Cookie: x=1")],
                   refused=False),
              Case("nul header", ANON, "GET", "/hub/login", headers=[("X-A", b"a\x00b")]),
              Case("bad method", ANON, "FOO", "/hub/login", refused=False),
              Case("absolute target", ANON, "GET", "http://evil.example/hub/login", refused=False),
              Case("star target", ANON, "OPTIONS", "*", refused=False),
              Case("raw space", ANON, "GET", "/hub/login?x=a b", refused=False),
              Case("raw unicode path", ANON, "GET", "/hub/\u202e\u0430", refused=False),
              Case("raw control path", ANON, "GET", "/hub/\x1b\x7f"),
              Case("long path", ANON, "GET", "/hub/" + "a" * 70_000, reset_ok=True),
              Case("long query", ANON, "GET", "/hub/login?next=" + "a" * 70_000, reset_ok=True),
              Case("many headers", ANON, "GET", "/hub/login", headers=[(f"X-H{i}", "v") for i in range(500)],
                   refused=False),
              Case("bad content-length", ANON, "POST", "/hub/login", headers=[("Content-Length", "-1")]),
              Case("two content-lengths", ANON, "POST", "/hub/login", body=b"abc",
                   headers=[("Content-Length", "3"), ("Content-Length", "4")]),
              Case("bad chunked", ANON, "POST", "/hub/login", body=b"zz\r\nabc\r\n0\r\n\r\n",
                   headers=[("Transfer-Encoding", "chunked")])]
    assert_clean(run(hub, "headers", cases))


# ------------------------------------------------------------- the services


def test_courses_service_refuses_hostile_input(hub, world):
    p = world["people"]
    teacher, student = p["teacher1"], p["student1"]
    js, fm = "application/json", "application/x-www-form-urlencoded"
    api = COURSES + "/api/courses"
    good = jbody(notebook=NOTEBOOK, title="Hostile")
    # (names that are allowed, like "null" or "0", would really publish)
    cases = [Case("publish name", teacher, "POST", f"{api}/anat101/apps/{seg(v)}", "token", good, js)
             for v in ALL if v and not APP_NAME.match(v)]
    cases += [Case("publish course", teacher, "POST", f"{api}/{seg(v)}/apps/new-app", "token", good, js)
              for v in SAMPLE if v]
    cases += [Case("publish body", teacher, "POST", f"{api}/anat101/apps/new-app", "token", b, js)
              for b in BAD_BODIES]
    # Wrong types and characters no title or description may hold (a plain string is a real
    # title or description and would publish; null is "none").
    plain = {"null", '""', '"3600"', '"abc"', '"1e309"', json.dumps("a" * 100_000)}
    for key in ("notebook", "title", "description", "thumbnail"):
        others = {"notebook": NOTEBOOK, "title": "Hostile"}
        others.pop(key, None)
        cases += [Case("publish " + key, teacher, "POST", f"{api}/anat101/apps/new-app", "token",
                       raw_field(key, t, **others), js)
                  for t in JSON_SCALARS if key in ("notebook",) or t not in plain or (key, t) == ("title", '""')]
    cases += [Case("publish notebook", teacher, "POST", f"{api}/anat101/apps/new-app", "token",
                   jbody(notebook=nb, title="Hostile"), js) for nb in (
                  {"cells": "x"}, {"nbformat": 4}, {**NOTEBOOK, "nbformat": 99}, {**NOTEBOOK, "cells": [{"a": 1}]},
                  "x" * 1000, json.dumps(NOTEBOOK)[:-1], {**NOTEBOOK, "metadata": "x"})]
    cases += [Case("publish thumbnail", teacher, "POST", f"{api}/anat101/apps/new-app", "token",
                   jbody(notebook=NOTEBOOK, title="Hostile", thumbnail=t), js) for t in (
                  "not base64!", base64.b64encode(b"GIF89a").decode(), "AAAA",
                  base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 3_000_000).decode())]
    cases += [Case("publish too big", teacher, "POST", f"{api}/anat101/apps/new-app", "token",
                   jbody(notebook={**NOTEBOOK, "metadata": {"pad": "x" * 21_000_000}}, title="Big"), js)]
    # Title and description of the existing app: wrong types, not new versions.
    cases += [Case("republish " + key, teacher, "POST", f"{api}/anat101/apps/seg-lab", "token",
                   raw_field(key, t, notebook=NOTEBOOK), js)
              for key in ("title", "description") for t in ("1", "[]", "{}", "true", "1e309", "[1]", '{"a": 1}')]
    cases += [Case("patch body", teacher, "PATCH", f"{api}/anat101/apps/seg-lab", "token", b, js)
              for b in BAD_BODIES]
    cases += [Case("patch hidden", teacher, "PATCH", f"{api}/anat101/apps/seg-lab", "token",
                   raw_field("hidden", t), js) for t in JSON_SCALARS if t not in ("true", "false")]
    cases += [Case("patch name", teacher, "PATCH", f"{api}/anat101/apps/{seg(v)}", "token",
                   jbody(hidden=True), js) for v in SAMPLE if v]
    cases += [Case("patch course", teacher, "PATCH", f"{api}/{seg(v)}/apps/seg-lab", "token",
                   jbody(hidden=True), js) for v in SAMPLE if v]
    # Not allowed at all: students, cookies alone, nobody.
    for who, auth in ((student, "token"), (teacher, "cookie-no-xsrf"), (teacher, "cookie"), (ANON, "none")):
        for v in ("seg-lab", "new-app", "..", "*)(uid=*"):
            cases += [Case("publish not allowed", who, "POST", f"{api}/anat101/apps/{seg(v)}", auth, good, js),
                      Case("patch not allowed", who, "PATCH", f"{api}/anat101/apps/{seg(v)}", auth,
                           jbody(hidden=True), js)]
    # Reading: open, thumbnails, the gallery, the publish form.
    cases += [Case("open name", student, "GET", f"{COURSES}/open/anat101/{seg(v)}", "token") for v in SAMPLE if v]
    cases += [Case("open course", student, "GET", f"{COURSES}/open/{seg(v)}/seg-lab", "token") for v in SAMPLE if v]
    cases += [Case("open version", student, "GET", f"{COURSES}/open/anat101/seg-lab?" + urlencode({"version": v}),
                   "token") for v in SAMPLE]
    cases += [Case("open cookie", student, "GET", f"{COURSES}/open/anat101/{seg(v)}", "cookie") for v in SAMPLE if v]
    cases += [Case("open anonymous", ANON, "GET", f"{COURSES}/open/anat101/{seg(v)}", refused=False)
              for v in SAMPLE if v]
    cases += [Case("thumbnail number", student, "GET", f"{COURSES}/thumbnail/anat101/seg-lab/{seg(v)}", "token")
              for v in SAMPLE if v]
    cases += [Case("thumbnail name", student, "GET", f"{COURSES}/thumbnail/anat101/{seg(v)}/1", "token")
              for v in SAMPLE if v]
    cases += [Case("gallery query", student, "GET", f"{COURSES}/?" + urlencode({"x": v}), "cookie", refused=False)
              for v in SAMPLE]
    cases += [Case("courses query", student, "GET", f"{api}?" + urlencode({"course": v}), "token", refused=False)
              for v in SAMPLE]
    cases += [Case("publish page", teacher, "GET", f"{COURSES}/publish?" + urlencode({"path": v}), "cookie",
                   refused=False) for v in SAMPLE]
    cases += [Case("publish page", student, "GET", f"{COURSES}/publish?" + urlencode({"path": v}), "cookie")
              for v in SAMPLE[:5]]
    pub, cx = f"{COURSES}/publish", COURSES + "/"
    cases += [Case("publish form course", teacher, "POST", pub, "cookie",
                   form(teacher, cx, course=v, path="lab.ipynb", title="T"), fm) for v in SAMPLE]
    cases += [Case("publish form path", teacher, "POST", pub, "cookie",
                   form(teacher, cx, course="anat101", path=v, title="T"), fm) for v in SAMPLE]
    cases += [Case("publish form name", teacher, "POST", pub, "cookie",
                   form(teacher, cx, course="anat101", path="lab.ipynb", name=v, title=v), fm) for v in SAMPLE]
    cases += [Case("publish form body", teacher, "POST", pub, "cookie", form(teacher, cx) + b"&" + b, fm)
              for b in (b"course=%ff", b"path=%ff%fe.ipynb", b"course=anat101&path=" + b"a" * 100_000 + b".ipynb")]
    cases += [Case("publish form xsrf", teacher, "POST", pub, "cookie-no-xsrf",
                   urlencode({"course": "anat101", "path": "lab.ipynb", "_xsrf": v}).encode(), fm)
              for v in SAMPLE[:8]]
    cases += [Case("publish form", student, "POST", pub, "cookie",
                   form(student, cx, course="anat101", path="lab.ipynb", title="T"), fm)]
    assert_clean(run(hub, "courses", cases))


def test_sharing_service_refuses_hostile_input(hub, world):
    p = world["people"]
    teacher, student = p["teacher1"], p["student1"]
    js, fm = "application/json", "application/x-www-form-urlencoded"
    api = SHARING + "/api/links"
    # Nobody has a running server here: a good expiry is refused too ("not running").
    cases = [Case("create expires_in", student, "POST", api, "token", raw_field("expires_in", t), js)
             for t in JSON_SCALARS]
    cases += [Case("create expires_in", student, "POST", api, "token", jbody(expires_in=v), js) for v in SAMPLE]
    cases += [Case("create body", student, "POST", api, "token", b, js) for b in BAD_BODIES]
    cases += [Case("create access", student, "POST", api, "token", raw_field("access", t, expires_in=3600), js)
              for t in JSON_SCALARS if t != '""']  # ("" is the default: read)
    cases += [Case("create access", student, "POST", api, "token", jbody(access=v, expires_in=3600), js)
              for v in SAMPLE + ["execute", "write", "READ", "collaborate "] if v]
    cases += [Case("list all", student, "GET", api + "?" + urlencode({"all": v}), "token", refused=False)
              for v in SAMPLE]
    cases += [Case("revoke id", student, "DELETE", f"{api}/{seg(v)}", "token") for v in ALL]
    cases += [Case("revoke id", student, "DELETE", f"{api}/{v}", "token")
              for v in ("AAAAAAAAAAAA", "a" * 6, "a" * 32, "_-_-_-_-", "000000")]
    cases += [Case("form expires_in", student, "POST", SHARING + "/links", "cookie",
                   form(student, SHARING + "/", expires_in=v), fm) for v in SAMPLE if v]
    cases += [Case("form access", student, "POST", SHARING + "/links", "cookie",
                   form(student, SHARING + "/", expires_in="3600", access=v), fm) for v in SAMPLE + ["execute"] if v]
    cases += [Case("form body", student, "POST", SHARING + "/links", "cookie", form(student, SHARING + "/") + b"&" + b,
                   fm) for b in (b"expires_in=%ff", b"expires_in=" + b"9" * 100_000, b"expires_in=1&expires_in=2")]
    cases += [Case("form xsrf", student, "POST", SHARING + "/links", "cookie-no-xsrf",
                   urlencode({"expires_in": "3600", "_xsrf": v}).encode(), fm) for v in SAMPLE[:8]]
    cases += [Case("revoke form", student, "POST", f"{SHARING}/links/{seg(v)}/revoke", "cookie",
                   form(student, SHARING + "/"), fm) for v in SAMPLE if v]
    cases += [Case("revoke form", student, "POST", f"{SHARING}/links/AAAAAAAAAAAA/revoke", "cookie",
                   form(student, SHARING + "/"), fm)]
    for page in ("accepted", "view"):
        cases += [Case(page, student, "GET", f"{SHARING}/{page}/{seg(v)}", "cookie") for v in SAMPLE if v]
        cases += [Case(page, student, "GET", f"{SHARING}/{page}/AAAAAAAAAAAA", "cookie"),
                  Case(page, teacher, "GET", f"{SHARING}/{page}/AAAAAAAAAAAA", "token")]
        cases += [Case(page + " anonymous", ANON, "GET", f"{SHARING}/{page}/{seg(v)}", refused=False)
                  for v in SAMPLE[:6]]
    cases += [Case("course page", teacher, "GET", f"{SHARING}/course/{seg(v)}", "cookie") for v in SAMPLE if v]
    cases += [Case("course page", student, "GET", f"{SHARING}/course/anat101", "cookie"),
              Case("course page", teacher, "GET", f"{SHARING}/course/anat101?" + urlencode({"x": SAMPLE[0]}),
                   "cookie", refused=False)]
    cases += [Case("join student", teacher, "POST", f"{SHARING}/join/anat101/{seg(v)}", "token")
              for v in SAMPLE if v]
    cases += [Case("join course", teacher, "POST", f"{SHARING}/join/{seg(v)}/student1", "token")
              for v in SAMPLE if v]
    cases += [Case("join not running", teacher, "POST", f"{SHARING}/join/anat101/student1", "token"),
              Case("join as student", student, "POST", f"{SHARING}/join/anat101/student1", "token"),
              Case("join no xsrf", teacher, "POST", f"{SHARING}/join/anat101/student1", "cookie-no-xsrf"),
              Case("join anonymous", ANON, "POST", f"{SHARING}/join/anat101/student1")]
    cases += [Case("share page query", student, "GET", f"{SHARING}/?" + urlencode({"x": v}), "cookie",
                   refused=False) for v in SAMPLE]
    cases += [Case("anonymous api", ANON, method, api, body=b"{}") for method in ("GET", "POST")]
    assert_clean(run(hub, "sharing", cases))


# ---------------------------------------------- JupyterHub's own answers
# Each case below is answered by JupyterHub 6.1.1 itself, before any SlicerHub code
# runs, and no setting avoids it; each is marked xfail with the reason while it
# fails (and passes by itself once JupyterHub answers with a clear 4xx).


def _known(hub, case: Case, reason: str) -> None:
    resp = send(hub.port, case.request(), timeout=TIMEOUT)
    found = problems(case, resp, hub.port)
    if found:
        pytest.xfail(f"{reason} ({'; '.join(found)})")


@pytest.mark.parametrize("how", ["query", "form"])
def test_jupyterhub_spawn_with_undecodable_option(hub, world, how):
    teacher = world["people"]["teacher1"]
    if how == "query":
        case = Case("spawn query", teacher, "GET", "/hub/spawn?profile=%ff", "cookie")
    else:
        case = Case("spawn form", teacher, "POST", "/hub/spawn", "cookie", form(teacher, "/hub/") + b"&profile=%ff",
                    "application/x-www-form-urlencoded")
    _known(hub, case, "JupyterHub's SpawnHandler decodes spawn options with bytes.decode('utf8') outside its "
                      "error handling (handlers/pages.py): invalid UTF-8 is a 500. Only a handler in front of "
                      "it (Authenticator.get_handlers, slicerhub/auth.py) could answer 400")


def test_jupyterhub_server_patch_with_unknown_field(hub, world):
    case = Case("api server patch", world["people"]["student1"], "PATCH", "/hub/api/users/student1/server",
                "token", jbody(bogus=1), "application/json")
    _known(hub, case, "JupyterHub's PATCH /users/<name>/server builds its 400 message with set.join "
                      "(apihandlers/users.py): an unknown field is an AttributeError, a 500")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/hub/api/shares/student1/", {"user": "student2", "scopes": ["bogus"]}),
    ("PATCH", "/hub/api/shares/student1/", {"user": "student2", "scopes": ["bogus"]}),
    ("POST", "/hub/api/share-codes/student1/", {"scopes": ["bogus"]}),
], ids=["grant", "revoke", "code"])
def test_jupyterhub_share_with_unknown_scope(hub, world, method, path, body):
    case = Case("api share scopes", world["people"]["student1"], method, path, "token", json.dumps(body).encode(),
                "application/json")
    _known(hub, case, "JupyterHub's share request models raise ScopeNotFound (a KeyError) inside a pydantic "
                      "validator, which pydantic does not turn into a ValidationError (apihandlers/shares.py): "
                      "an unknown scope is a 500")


def test_jupyterhub_users_offset_too_large(hub, world):
    case = Case("users offset", world["people"]["admin1"], "GET", "/hub/api/users?offset=" + HUGE, "token")
    _known(hub, case, "JupyterHub passes ?offset= to SQLite unbounded: a number over 2**63 is an "
                      "OverflowError, a 500 (admins only: list:users)")


def test_login_error_page_with_undecodable_username(hub, world):
    form_who = world["people"]["login-form"]
    case = Case("login", form_who, "POST", "/hub/login", "cookie", form(form_who, "/hub/") + b"&username=%ff&password=x",
                "application/x-www-form-urlencoded")
    _known(hub, case, "JupyterHub's LoginHandler.render_template reads the undecodable username again while "
                      "rendering the error page, so the refusal goes out with an empty body "
                      "(handlers/login.py); the login handler in slicerhub/auth.py could catch it")


def test_jupyterhub_api_bare_refusals(hub, world):
    """Runs after the REST tests above: what they saw refused without a word."""
    case = Case("api", world["people"]["student1"], "GET", "/hub/api/users/", "token")
    resp = send(hub.port, case.request(), timeout=TIMEOUT)
    assert 400 <= resp.status < 500
    if jupyterhub_bare(case, resp) or JUPYTERHUB_BARE:
        pytest.xfail("JupyterHub's REST API answers a bare HTTPError (404, 405, some 403s) with "
                     f'{{"message": null}}: {len(JUPYTERHUB_BARE)} such answers in this tier, e.g. '
                     + "; ".join(JUPYTERHUB_BARE[:3]))


# ------------------------------------------------------------- afterwards


def test_nothing_written_and_everything_healthy(hub, world):
    p = world["people"]
    after = snapshot(hub, p["admin1"].token)
    before = world["before"]
    for key in before:
        assert after[key] == before[key], f"hostile input changed {key}"
    assert requests.get(hub.url + "/hub/health", timeout=10).status_code == 200
    s, r = hub.login("student2", PASSWORDS["student2"])
    assert r.status_code == 302 and r.headers["Location"].endswith("/hub/spawn"), r.text[:300]
    token = hub.api_token(s, "after")
    assert _api(hub, token, "GET", "/hub/api/user").json()["name"] == "student2"
    courses = _api(hub, p["student1"].token, "GET", COURSES + "/api/courses").json()["courses"]
    assert [a["name"] for a in courses[0]["apps"]] == ["seg-lab"]
    assert _api(hub, token, "GET", SHARING + "/api/links").json() == {"links": []}
    assert s.get(hub.url + SHARING + "/", timeout=30).status_code == 200
    total = sum(n for n, _ in STATS.values())
    seconds = sum(t for _, t in STATS.values())
    print(f"\nhostile tier: {total} requests in {seconds:.1f} s: "
          + ", ".join(f"{g} {n} ({t:.1f} s)" for g, (n, t) in STATS.items()))
