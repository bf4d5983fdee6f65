"""Bad input to the courses and sharing services is a 4xx with a message, never
a 500 (each case was a 500 in the hostile-input tier,
tests/integration/test_hostile_input.py), and nothing is written."""

from __future__ import annotations

import json
import logging
import socket
from types import SimpleNamespace

import nbformat
import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer

from slicerhub.courses.store import CourseStore, PublishError
from slicerhub.hubservice import NotFound, ServiceHandler
from slicerhub.sharing import service as sharing


def _notebook() -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))


def _body(raw: bytes) -> dict:
    return ServiceHandler.json_body(SimpleNamespace(request=SimpleNamespace(body=raw)))


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
                         ids=["list", "object"])
def test_json_nested_too_deep_is_a_400(raw):
    with pytest.raises(web.HTTPError) as e:
        _body(raw)
    assert e.value.status_code == 400 and e.value.log_message == "body must be JSON"


def test_json_body_must_be_an_object():
    assert _body(b"") == {} and _body(b'{"a": 1}') == {"a": 1}
    for raw in (b"[]", b"null", b"1", b"{", b"\xff"):
        with pytest.raises(web.HTTPError) as e:
            _body(raw)
        assert e.value.status_code == 400


@pytest.mark.parametrize("raw", [float("inf"), float("-inf"), float("nan"), True, False, [], {}, "1e309", "x"])
def test_sharing_expiry_refuses_what_is_not_seconds(raw):
    handler = SimpleNamespace(s=SimpleNamespace(default_expiry=3600, max_expiry=86400))
    with pytest.raises(web.HTTPError) as e:
        sharing._Base._expiry(handler, raw)
    assert e.value.status_code == 400 and "expires_in" in e.value.log_message
    assert sharing._Base._expiry(handler, 600) == 600 and sharing._Base._expiry(handler, None) == 3600


@pytest.mark.parametrize("raw", ["execute", "write", "READ", " read", [], {}, 1, True, "collaborate\x00"])
def test_sharing_access_is_read_or_collaborate(raw):
    with pytest.raises(web.HTTPError) as e:
        sharing._Base._access(None, raw)
    assert e.value.status_code == 400 and "access must be one of" in e.value.log_message
    assert sharing._Base._access(None, None) == sharing._Base._access(None, "") == "read"
    assert sharing._Base._access(None, "collaborate") == "collaborate"


@pytest.fixture
def store(tmp_path):
    s = CourseStore(tmp_path / "courses", ["anat101"])
    s.publish("anat101", "seg-lab", _notebook(), by="t", title="Segmentation lab")
    return s


def _tree(store):
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*"))


@pytest.mark.parametrize(("field", "value"), [
    ("title", 123), ("title", []), ("title", {"a": 1}), ("title", True), ("title", "evil\u202eexe.txt"),
    ("title", "a\x00b"), ("title", "\ud800"), ("description", 1), ("description", []), ("description", "\x1b[2J"),
])
def test_titles_and_descriptions_of_the_wrong_kind_are_refused(store, field, value):
    before = _tree(store)
    for name in ("seg-lab", "new-app"):  # republishing and publishing
        with pytest.raises(PublishError) as e:
            store.publish("anat101", name, _notebook(), by="t", **{"title": "T", field: value})
        assert e.value.status == 400 and field in str(e.value)
    assert _tree(store) == before and store.get("anat101", "seg-lab").latest.number == 1


def test_a_description_may_have_lines(store):
    app = store.publish("anat101", "seg-lab", _notebook(), by="t", description="one\ntwo\tthree")
    assert app.description == "one\ntwo\tthree"


def test_a_notebook_that_is_not_unicode_is_refused(store):
    before = _tree(store)
    with pytest.raises(PublishError) as e:
        store.publish("anat101", "new-app", "\ud800", by="t", title="T")
    assert e.value.status == 400 and "not a valid Jupyter notebook" in str(e.value)
    assert _tree(store) == before


async def test_unknown_paths_are_a_404_json_under_api_else_a_page_and_logged_as_data(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = HTTPServer(web.Application([], default_handler_class=NotFound))
    server.listen(port, "127.0.0.1")
    try:
        for method, body in (("GET", None), ("POST", b"{}"), ("DELETE", None)):
            with pytest.raises(HTTPClientError) as e:
                await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/api/%25s%25s%25n", method=method,
                                              body=body, allow_nonstandard_methods=True)
            assert e.value.code == 404
            data = json.loads(e.value.response.body)
            assert data == {"status": 404, "message": "no such page or API: /api/%25s%25s%25n"}
        # A person's page: the same message in the hub's frame, escaped.
        with pytest.raises(HTTPClientError) as e:
            await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/x/%3Cb%3E%25s%25n")
        assert e.value.code == 404 and e.value.response.headers["Content-Type"].startswith("text/html")
        page = e.value.response.body.decode()
        assert "no such page or API: /x/%3Cb%3E%25s%25n" in page and 'id="jupyterhub-logo"' not in page
        assert "/hub/static/css/style.min.css" in page and "slicerhub-brand" in page
    finally:
        server.stop()
    # The path is logged as it is, not used as a format string ("--- Logging error ---").
    assert any("no such page or API: /api/%25s%25s%25n" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
