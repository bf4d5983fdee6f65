"""JupyterLab's "Publish to a Course…" (issue 13): the server side of the dialog
(images/base/python/slicerhub_server/publish.py, loaded from the image's source
tree as test_readonly_policy does), the read-only guard on its routes, and the
scope that lets the server's own token reach the courses service."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pytest
from jupyterhub import orm, roles, scopes

from slicerhub.spawners.base import COURSES_ACCESS, SlicerSpawner, token_scopes
from slicerhub.traitlets_config import to_traitlets
from tests.support.hub import ROOT

from .helpers import demo_config

SERVER_PKG = ROOT / "images" / "base" / "python" / "slicerhub_server"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"slicerhub_server_{name}", SERVER_PKG / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


publish = _load("publish")
policy = _load("policy")


# ------------------------------------------------------------ the guard


@pytest.mark.parametrize("method,path", [
    ("POST", "slicerhub/publish"), ("GET", "slicerhub/publish"), ("GET", "slicerhub/courses"),
    ("HEAD", "slicerhub/courses"), ("POST", "slicerhub/courses"), ("GET", "slicerhub/publish/"),
    ("POST", "slicerhub/access/../publish"),
])
def test_viewers_of_a_shared_session_may_not_publish_or_list_courses(method, path):
    # Publishing acts as the owner (their token, their courses): a write, refused
    # to read-only callers before any handler runs; so is the course list.
    assert not policy.viewer_may(method, path)


def test_the_publish_handlers_check_the_owner_level_themselves():
    source = (SERVER_PKG / "extension.py").read_text()
    assert 'getattr(self, "_slicerhub_level", None) != "execute"' in source
    for handler in ("CoursesHandler", "PublishHandler"):
        assert f"class {handler}(_CoursesHandler)" in source
    assert '"slicerhub/courses"), CoursesHandler' in source and '"slicerhub/publish"), PublishHandler' in source


# ------------------------------------------------------------ the request


@pytest.mark.parametrize("path,name", [
    ("labs/Brain-Lab.ipynb", "brain-lab"), ("Brain Lab 2.IPYNB", "brain-lab-2"), ("a/b/__x__.ipynb", "x"),
    ("Überblick.ipynb", "berblick"), ("---.ipynb", "app"), ("x" * 50 + ".ipynb", "x" * 40),
    ("a" * 39 + "-b.ipynb", "a" * 39),
])
def test_default_app_name_follows_the_service_rule(path, name):
    assert publish.default_app_name(path) == name
    assert publish.NAME.match(publish.default_app_name(path))


def test_the_name_rule_is_the_services():
    from slicerhub.config import COURSE

    assert publish.NAME.pattern == COURSE


def test_publish_request_builds_the_service_body():
    body = {"path": "/labs/Brain-Lab.ipynb", "course": "anat101", "name": "", "title": "Brain lab",
            "description": "", "thumbnail": "iVBORw0K"}
    course, name, out = publish.publish_request(body, '{"cells": []}')
    assert (course, name) == ("anat101", "brain-lab")
    assert out == {"title": "Brain lab", "thumbnail": "iVBORw0K", "notebook": '{"cells": []}'}
    # Checked before the notebook is read: no notebook in the body then.
    assert "notebook" not in publish.publish_request(body)[2]


@pytest.mark.parametrize("body,status,words", [
    ({"course": "anat101"}, 400, "path"),
    ({"path": "notes.txt", "course": "anat101"}, 400, "not a notebook"),
    ({"path": "../etc/x.ipynb", "course": "anat101"}, 400, "not a path inside"),
    ({"path": "a//b.ipynb", "course": "anat101"}, 400, "not a path inside"),
    ({"path": "a.ipynb"}, 400, "choose a course"),
    ({"path": "a.ipynb", "course": "anat101", "name": "Bad Name"}, 400, "not allowed"),
    ({"path": "a.ipynb", "course": "anat101", "title": 3}, 400, "must be text"),
    ({"path": "a.ipynb", "course": "anat101", "notebook": "{}"}, 400, "unknown field"),
    (["a.ipynb"], 400, "JSON object"),
])
def test_publish_request_refuses_with_the_dialogs_words(body, status, words):
    with pytest.raises(publish.PublishProblem) as e:
        publish.publish_request(body)
    assert e.value.status == status and words in e.value.message


def test_app_url_quotes_the_segments():
    assert publish.app_url("http://10.0.0.1:8002/services/courses/", "anat101", "brain-lab") == \
        "http://10.0.0.1:8002/services/courses/api/courses/anat101/apps/brain-lab"
    assert publish.app_url("http://h/s", "a/b", "c?d").endswith("/api/courses/a%2Fb/apps/c%3Fd")


@pytest.mark.parametrize("status,body,shown,message", [
    (403, json.dumps({"status": 403, "message": "only teachers of 'anat101' can publish to it"}), 403,
     "only teachers of 'anat101' can publish to it"),
    (404, json.dumps({"message": "no course 'x'"}), 404, "no course 'x'"),
    (403, b"<html>", 403, "only teachers of a course publish"),
    (400, json.dumps({"message": "title too long"}), 400, "title too long"),
    (500, b"", 502, "HTTP 500"),
])
def test_service_errors_reach_the_dialog(status, body, shown, message):
    problem = publish.service_error(status, body if isinstance(body, bytes) else body.encode())
    assert problem.status == shown and message in problem.message


def test_without_a_courses_service_the_server_says_so(monkeypatch):
    monkeypatch.delenv(publish.COURSES_URL_ENV, raising=False)
    with pytest.raises(publish.PublishProblem) as e:
        publish.courses_url()
    assert e.value.status == 503 and "no courses" in e.value.message
    monkeypatch.setenv(publish.COURSES_URL_ENV, "http://10.0.0.1:8002/services/courses")
    assert publish.courses_url() == "http://10.0.0.1:8002/services/courses"


def test_the_result_names_the_version_and_the_gallery(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/hub-prefix/")
    shown = publish.published({"course": "anat101", "name": "brain-lab", "latest": 2, "title": "Brain lab",
                               "open_url": "/services/courses/open/anat101/brain-lab", "versions": []})
    assert shown == {"course": "anat101", "name": "brain-lab", "version": 2, "title": "Brain lab",
                     "open_url": "/services/courses/open/anat101/brain-lab",
                     "gallery_url": "/hub-prefix/services/courses/"}


# ------------------------------------------------------------ the server's token


def _hub_db(cfg):
    """A hub database with the deployment's roles, as JupyterHub loads them."""
    db = orm.new_session_factory("sqlite://")()
    traits = to_traitlets(cfg, hub_connect_ip="172.18.0.1")
    scopes.define_custom_scopes(traits["JupyterHub"]["custom_scopes"])  # idempotent, as at each hub start
    for role in roles.get_default_roles():
        roles.create_role(db, role)
    for role in traits["JupyterHub"]["load_roles"]:
        roles.create_role(db, {k: v for k, v in role.items() if k in ("name", "scopes", "description")})
    db.add(orm.OAuthClient(identifier="jupyterhub"))
    db.commit()
    return db, traits


def _server_token(db, traits, courses: bool, shared: bool = False):
    user = orm.User(name="teacher1")
    db.add(user)
    db.commit()
    roles.grant_role(db, user, "user")
    spawner = SlicerSpawner(courses=traits["SlicerSpawner"]["courses"] if courses else {},
                            courses_url=traits["SlicerSpawner"]["courses_url"] if courses else "")
    requested = set(spawner.server_token_scopes(SimpleNamespace(
        user=SimpleNamespace(db=db), courses=spawner.courses, courses_url=spawner.courses_url,
        shared_access=shared and traits["SlicerSpawner"]["shared_access"])))
    # As JupyterHub's User.spawn does before resolving them: !server names this server.
    requested = {sc + "=teacher1/" if sc.endswith("!server") else sc for sc in requested}
    have = roles.roles_to_scopes(roles.get_roles_for(user)) | {"inherit"}
    client = db.query(orm.OAuthClient).filter_by(identifier="jupyterhub").one()
    granted, _ = scopes._resolve_requested_scopes(requested, have, user, client, db)
    return requested, granted


def test_the_server_token_reaches_the_courses_service_and_keeps_the_server_role():
    cfg = demo_config()
    db, traits = _hub_db(cfg)
    assert traits["SlicerSpawner"]["courses_url"] == "http://172.18.0.1:%d/services/courses" % cfg.hub.courses_port
    server_role = set(orm.Role.find(db, "server").scopes)
    requested, granted = _server_token(db, traits, courses=True)
    assert requested == {sc + "=teacher1/" if sc.endswith("!server") else sc for sc in server_role} | {COURSES_ACCESS}
    # The hub keeps it: the user role holds access to the courses service.
    assert COURSES_ACCESS in granted
    assert "users:activity!user" in granted


def test_where_sessions_are_shared_the_server_token_reads_its_own_shares():
    """The guard learns a guest's level (read-only or collaborate) from the
    share, which only the server's own token can read."""
    from slicerhub.spawners.base import SHARES_READ

    db, traits = _hub_db(demo_config())
    assert traits["SlicerSpawner"]["shared_access"] is True
    requested, granted = _server_token(db, traits, courses=False, shared=True)
    assert SHARES_READ + "=teacher1/" in requested
    # Kept by the hub's own scope resolution: the user role lets owners read their shares.
    assert SHARES_READ + "=teacher1/" in granted
    db, traits = _hub_db(demo_config())
    _, off = _server_token(db, traits, courses=False, shared=False)
    assert SHARES_READ + "=teacher1/" not in off


def test_without_courses_the_server_token_is_the_server_role():
    db, traits = _hub_db(demo_config())
    requested, _ = _server_token(db, traits, courses=False)
    assert requested == {sc + "=teacher1/" if sc.endswith("!server") else sc
                         for sc in orm.Role.find(db, "server").scopes}
    assert token_scopes  # the callable the spawner's default is


def test_the_courses_service_listens_where_servers_reach_it():
    cfg = demo_config()
    traits = to_traitlets(cfg, hub_connect_ip="172.18.0.1")
    service = next(s for s in traits["JupyterHub"]["services"] if s["name"] == "courses")
    assert service["url"] == f"http://172.18.0.1:{cfg.hub.courses_port}"
    # Sharing stays on the loopback (servers never call it).
    sharing = next(s for s in traits["JupyterHub"]["services"] if s["name"] == "sharing")
    assert sharing["url"].startswith("http://127.0.0.1:")
