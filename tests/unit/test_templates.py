"""SlicerHub's page templates render in JupyterHub's frame with autoescaping:
names and titles from users are text, never markup, and the row actions post
where they should with the xsrf token."""

from __future__ import annotations

import re
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
    assert 'action="/services/sharing/help/offer/anat101/sam%20one"' in page
    assert "help/offer/anat101/kim" not in page


def _offer(state_teacher=EVIL, student=EVIL):
    return {"id": "off123", "course": EVIL, "teacher": state_teacher, "student": student,
            "expires": "2026-12-02T10:00:00Z"}


@pytest.mark.parametrize("is_teacher, state, actions", [
    (False, "pending", ["help/off123/accept", "help/off123/decline"]),
    (True, "pending", ["help/off123/end"]),
    (True, "accepted", ["help/off123/end"]),
    (False, "accepted", ["help/off123/end"]),
    (True, "declined", []), (False, "ended", []), (True, "withdrawn", []), (False, "expired", []),
])
def test_help_page_offers_each_side_only_its_own_actions(is_teacher, state, actions):
    link = {"id": "lnk123", "expires": "2026-12-02T12:00:00Z"}
    page = render("help.html", service_prefix="/services/sharing/", req=_offer(), state=state,
                  is_teacher=is_teacher, link=link, hours=2.0, page_title=EVIL)
    assert EVIL not in page and f'data-state="{state}"' in page
    posted = sorted(a.removeprefix("/services/sharing/") for a in
                    re.findall(r'<form method="post" action="([^"]+)"', page))
    assert posted == sorted(actions)
    assert ('id="open-session" href="/services/sharing/view/lnk123"' in page) == (is_teacher and state == "accepted")
    # Only a page that waits for the other side follows it.
    assert ("window.location.reload()" in page) == (state in ("pending", "accepted"))


@pytest.mark.parametrize("name", ["gallery.html", "publish.html", "share.html", "students.html", "studies.html",
                                  "view.html", "error.html", "help.html"])
def test_every_page_is_in_the_frame_and_escapes(name):
    page = render(name, page_title=EVIL, message=EVIL, status_code=400, status_message=EVIL,
                  link=types.SimpleNamespace(owner=EVIL), courses=[], students=[], studies=[], links=[],
                  teaches=[EVIL], values={"title": EVIL, "course": EVIL}, error=EVIL, course=EVIL,
                  service_prefix="/services/x/", req=_offer(), state="pending", offers=[_offer()])
    assert EVIL not in page
    assert 'class="navbar-brand slicerhub-brand' in page and "<main" in page
