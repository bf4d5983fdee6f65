"""SlicerHub's page templates render in JupyterHub's frame with autoescaping:
names and titles from users are text, never markup, and the row actions post
where they should with the xsrf token."""

from __future__ import annotations

import types

import pytest

from slicerhub.hubservice import templates

EVIL = '<img src=x onerror="alert(1)">'
FRAME = {"base_url": "/hub/", "prefix": "/", "version_hash": "", "static_url": lambda p, **_: "/hub/static/" + p,
         "user": types.SimpleNamespace(name=EVIL, json_escaped_name="x"), "parsed_scopes": set(),
         "xsrf_token": "TOKEN", "slicerhub_site": {"name": EVIL, "nav": []}, "no_spawner_check": True,
         "services": [], "admin_access": False, "logout_url": "/hub/logout", "login_url": "/hub/login"}


def render(name, **ns):
    return templates().get_template(name).render(**FRAME, **ns)


def test_share_page_revoke_forms():
    link = types.SimpleNamespace(id="abc123", kind="join", created_by=EVIL, expires="2026-12-02 10:00",
                                 viewers=[{"name": EVIL}])
    page = render("share.html", service_prefix="/services/sharing/", links=[link], page_title=EVIL)
    assert EVIL not in page and "&lt;img src=x" in page
    assert '<form method="post" action="/services/sharing/links/abc123/revoke">' in page
    assert '<input type="hidden" name="_xsrf" value="TOKEN">' in page


def test_students_page_join_forms_only_for_running_servers():
    students = [{"name": "sam one", "running": True}, {"name": "kim", "running": False}]
    page = render("students.html", service_prefix="/services/sharing/", course="anat101", students=students)
    assert 'action="/services/sharing/join/anat101/sam%20one"' in page
    assert "join/anat101/kim" not in page
    assert page.count(">Join read-only</button>") == 1


@pytest.mark.parametrize("name", ["gallery.html", "publish.html", "share.html", "students.html", "studies.html",
                                  "view.html", "error.html"])
def test_every_page_is_in_the_frame_and_escapes(name):
    page = render(name, page_title=EVIL, message=EVIL, status_code=400, status_message=EVIL,
                  link=types.SimpleNamespace(owner=EVIL), courses=[], students=[], studies=[], links=[],
                  teaches=[EVIL], values={"title": EVIL, "course": EVIL}, error=EVIL, course=EVIL,
                  service_prefix="/services/x/")
    assert EVIL not in page
    assert 'class="navbar-brand slicerhub-brand' in page and "<main" in page
