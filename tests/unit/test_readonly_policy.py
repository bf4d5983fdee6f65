"""The single-user server's read-only rules (images/base/python/slicerhub_server/policy.py).

The module has no Jupyter imports, so it is loaded from the image's source
tree here; the e2e tests run the same code inside the container.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.support.hub import ROOT

_spec = importlib.util.spec_from_file_location(
    "slicerhub_server_policy", ROOT / "images" / "base" / "python" / "slicerhub_server" / "policy.py")
policy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(policy)


@pytest.mark.parametrize("method,path", [
    ("GET", ""), ("GET", "lab"), ("GET", "lab/tree/notes.ipynb"), ("GET", "lab/api/settings"),
    ("GET", "api/contents/notes.md"), ("HEAD", "files/data/scan.nrrd"), ("GET", "api/kernels"),
    ("GET", "api/sessions"), ("GET", "api/kernelspecs"), ("GET", "static/lab/main.js"),
    ("GET", "desktop-view/"), ("GET", "desktop-view/screen/"), ("GET", "desktop-view/desktop-websockify/"),
    ("GET", "desktop/static/dist/viewer.js"), ("GET", "api/contents?type=directory"),
    # the owner's Orthanc companion, read side
    ("GET", "orthanc/app/explorer.html"), ("GET", "orthanc/studies"), ("GET", "orthanc/studies/1a2b/series"),
    ("GET", "orthanc/dicom-web/studies?PatientID=P1"), ("GET", "orthanc/instances/9f/file"),
    # real-time collaboration, read side: a document's room (its edits are dropped), history
    ("GET", "api/collaboration/room/json:notebook:1f2e"), ("GET", "api/collaboration/timeline/notes.ipynb"),
    ("PUT", "api/collaboration/session/notes.ipynb"),
])
def test_viewer_may_read(method, path):
    assert policy.viewer_may(method, path)


@pytest.mark.parametrize("method,path", [
    # every unsafe method, even on readable routes
    ("PUT", "api/contents/notes.md"), ("PATCH", "api/contents/notes.md"), ("DELETE", "api/contents/notes.md"),
    ("POST", "api/contents"), ("POST", "api/kernels"), ("POST", "api/sessions"), ("PUT", "lab/api/workspaces/x"),
    ("POST", "desktop-view/desktop-websockify/"), ("OPTIONS", "api/contents"),
    # websockets and apps that act, reached with GET
    ("GET", "api/kernels/0b1c/channels"), ("GET", "terminals/websocket/1"), ("GET", "api/events/subscribe"),
    ("GET", "desktop/"), ("GET", "desktop-websockify/"), ("GET", "slicer-web/"), ("GET", "slicer-web/ws"),
    ("GET", "voila/render/app.ipynb"), ("GET", "proxy/8080/"),
    # real-time collaboration: the write side (undo, forks, anything but the session PUT)
    ("PUT", "api/collaboration/undo_redo/x"), ("PUT", "api/collaboration/fork/x"),
    ("DELETE", "api/collaboration/fork/x"), ("POST", "api/collaboration/session/notes.ipynb"),
    # no sneaking past the allowlist with dots or prefixes
    ("GET", "desktop-view/../desktop-websockify/"), ("GET", "api/kernels/../terminals"), ("GET", "labx"),
    ("GET", "something-new/"),
    # Orthanc: writes, searches by POST, and its other routes; MONAI Label not at all
    ("POST", "orthanc/instances"), ("DELETE", "orthanc/studies/1a2b"), ("POST", "orthanc/tools/find"),
    ("POST", "orthanc/dicom-web/studies"), ("PUT", "orthanc/studies/1a2b/metadata/x"),
    ("GET", "orthanc/tools/log-level"), ("GET", "orthanc/jobs"), ("GET", "orthanc"),
    ("GET", "orthanc/studies/../tools/log-level"), ("GET", "orthanc/studies/%2e%2e/tools/reset"),
    ("GET", "orthanc/app/../../api/terminals"), ("GET", "monailabel/info/"), ("POST", "monailabel/infer/x"),
])
def test_viewer_may_not_act(method, path):
    assert not policy.viewer_may(method, path)


@pytest.mark.parametrize("path,base,expected", [
    ("/user/ann/api/contents", "/user/ann/", "api/contents"),
    ("/user/ann/", "/user/ann/", ""),
    ("/user/ann", "/user/ann/", ""),
    ("/user/bob/api", "/user/ann/", None),
    ("/api/contents", "/", "api/contents"),
])
def test_relative_path(path, base, expected):
    assert policy.relative_path(path, base) == expected


def test_a_viewer_is_kept_while_the_hub_restarts_then_closed_after_the_grace():
    grace = 180
    # The hub confirms: open, nothing remembered.
    assert policy.keep_watching(True, None, 1000.0, grace) == (True, None)
    # The hub stops answering at t=1005: kept, and the silence is remembered from then.
    assert policy.keep_watching(None, None, 1005.0, grace) == (True, 1005.0)
    assert policy.keep_watching(None, 1005.0, 1005.0 + grace, grace) == (True, 1005.0)
    # Silent for longer than the grace: closed.
    assert policy.keep_watching(None, 1005.0, 1005.0 + grace + 0.1, grace) == (False, 1005.0)
    # It answers again: the count starts afresh.
    assert policy.keep_watching(True, 1005.0, 1100.0, grace) == (True, None)
    assert policy.keep_watching(None, None, 1200.0, grace) == (True, 1200.0)


def test_the_hub_saying_no_closes_at_once_even_after_silence():
    assert policy.keep_watching(False, None, 1000.0, 180) == (False, None)
    assert policy.keep_watching(False, 990.0, 1000.0, 180) == (False, None)


@pytest.mark.parametrize("status, message, outage", [
    (500, "Failed to connect to Hub API at 'http://172.18.0.1:8081/hub/api'.  Is the Hub accessible", True),
    (502, "Failed to check authorization (upstream problem)", True),
    (500, "Failed to check authorization", False),  # the hub answered a 4xx
    (500, "Permission failure checking authorization, I may need a new token", False),
    (None, "", False),  # not an HTTP error at all (a bad reply, a bug): close
])
def test_only_an_unreachable_or_failing_hub_counts_as_an_outage(status, message, outage):
    assert policy.hub_outage(status, message) is outage


def test_the_unreachable_message_is_jupyterhubs():
    import inspect

    from jupyterhub.services.auth import HubAuth

    assert f'msg = f"{policy.HUB_UNREACHABLE} at' in inspect.getsource(HubAuth._api_request)
