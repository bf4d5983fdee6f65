"""SlicerHub's access levels (images/base/python/slicerhub_access, used by the
hub and by the user image) and the guard's per-level rules (slicerhub_server
policy.py): routes, the authorizer's actions, a shared document's messages."""

from __future__ import annotations

import importlib.util
import json

import pycrdt
import pytest
import slicerhub_access as access

from tests.support.hub import ROOT

_spec = importlib.util.spec_from_file_location(
    "slicerhub_server_policy", ROOT / "images" / "base" / "python" / "slicerhub_server" / "policy.py")
policy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(policy)


def _check(held):
    return lambda wanted: set(held) & set(wanted)  # HubAuth.check_scopes, for exact scopes


def test_the_token_gives_execute_to_the_owner_and_read_to_guests():
    assert access.level_of(_check({"custom:jupyter_server:read:*!server=ann/"}), "ann", "") == "read"
    owner = {"custom:jupyter_server:execute:*!user=ann", "custom:jupyter_server:read:*!user=ann"}
    assert access.level_of(_check(owner), "ann", "") == "execute"
    assert access.level_of(_check(set()), "ann", "") is None
    # Scopes for another user's server never count here.
    assert access.level_of(_check({"custom:jupyter_server:execute:*!user=bob"}), "ann", "") is None
    assert access.level_of(_check({"custom:jupyter_server:collaborate:*!server=bob/"}), "ann", "") is None


def test_a_share_raises_a_guest_to_its_level_and_never_gives_a_level_alone():
    collab = access.share_scopes("collaborate", "ann")
    assert access.level_with_share("read", collab) == "collaborate"
    assert access.level_with_share("read", access.share_scopes("read", "ann")) == "read"
    assert access.level_with_share("read", []) == "read"
    assert access.level_with_share("execute", []) == "execute"
    assert access.level_with_share(None, collab) is None  # no level from the token: none at all


@pytest.mark.parametrize("level", ["execute", "write"])
def test_only_read_and_collaborate_can_be_shared(level):
    with pytest.raises(ValueError):
        access.share_scopes(level, "ann")


def test_share_scopes_and_their_level():
    scopes = access.share_scopes("collaborate", "ann", "gpu")
    assert scopes == ["access:servers!server=ann/gpu", "custom:jupyter_server:collaborate:*!server=ann/gpu"]
    assert access.shared_level(scopes) == "collaborate"
    assert access.shared_level(["access:servers!server=ann/"]) is None
    assert access.managed_share_scopes("ann") == {
        "access:servers!server=ann/", "custom:jupyter_server:read:*!server=ann/",
        "custom:jupyter_server:collaborate:*!server=ann/"}


def test_custom_scopes_are_a_chain_and_tokens_carry_only_role_levels():
    scopes = access.custom_scopes()
    assert list(scopes) == [f"custom:jupyter_server:{level}:*" for level in access.LEVELS]
    assert "subscopes" not in scopes["custom:jupyter_server:read:*"]
    assert scopes["custom:jupyter_server:collaborate:*"]["subscopes"] == [
        "custom:jupyter_server:write:*", "custom:jupyter_server:read:*"]
    # Shares never reach OAuth tokens, so asking for collaborate there would only be discarded.
    assert access.server_oauth_scopes() == ["custom:jupyter_server:execute:*!server",
                                            "custom:jupyter_server:read:*!server"]
    with pytest.raises(ValueError):
        access.scope("admin")


@pytest.mark.parametrize("level,action,resource,allowed", [
    ("execute", "execute", "terminals", True), ("execute", "write", "server", True),
    ("collaborate", "read", "terminals", True),            # listing them
    ("collaborate", "execute", "terminals", False),        # opening one
    ("collaborate", "write", "terminals", False),
    ("collaborate", "write", "server", False),             # api/shutdown
    ("collaborate", "write", "config", False),
    ("collaborate", "write", "contents", True), ("collaborate", "execute", "kernels", True),
    ("collaborate", "write", "kernels", True), ("collaborate", "write", "sessions", True),
    ("write", "write", "contents", True), ("write", "execute", "kernels", False),
    ("read", "read", "contents", True), ("read", "write", "contents", False),
    ("read", "execute", "kernels", False), ("read", "write", "sessions", False),
    (None, "read", "contents", False), ("admin", "read", "contents", False),
])
def test_what_each_level_may_do(level, action, resource, allowed):
    assert access.may(level, action, resource) is allowed


@pytest.mark.parametrize("method,path", [
    ("PUT", "api/contents/lab1.ipynb"), ("DELETE", "api/contents/old.ipynb"), ("POST", "api/contents"),
    ("POST", "api/sessions"), ("PATCH", "api/sessions/1a"), ("POST", "api/kernels"),
    ("GET", "api/kernels/0b1c/channels"), ("POST", "api/kernels/0b1c/interrupt"),
    ("PUT", "api/collaboration/undo_redo/x"), ("PUT", "api/collaboration/fork/x"),
    ("GET", "api/collaboration/room/json:notebook:1f2e"), ("GET", "lab/tree/lab1.ipynb"),
    ("GET", "desktop-view/desktop-websockify/"),
    # the hand-over relay (input only while handed control) and who has control
    ("GET", "desktop-shared/screen/"), ("GET", "desktop-shared/desktop-websockify/"),
    ("GET", "slicerhub/desktop/control"), ("PUT", "slicerhub/desktop/control"),
])
def test_a_collaborator_edits_and_runs(method, path):
    assert policy.route_allowed("collaborate", method, path)


@pytest.mark.parametrize("method,path", [
    ("GET", "terminals/websocket/1"), ("POST", "api/terminals"), ("POST", "api/shutdown"),
    ("PUT", "lab/api/settings/@jupyterlab/apputils-extension:themes"), ("PUT", "lab/api/workspaces/default"),
    ("GET", "desktop/"), ("GET", "desktop-websockify/"), ("GET", "slicer-web/"),
    ("POST", "orthanc/instances"), ("GET", "monailabel/info/"), ("POST", "api/events"),
    ("GET", "api/contents/../terminals"), ("GET", "something-new/"), ("POST", "voila/render/app.ipynb"),
    # the owner's hand-over page, and anything but watching on the relay's routes
    ("GET", "desktop-control/"), ("POST", "slicerhub/desktop/control"), ("DELETE", "slicerhub/desktop/control"),
    ("POST", "desktop-shared/desktop-websockify/"), ("GET", "desktop-shared/../desktop-websockify/"),
])
def test_a_collaborator_gets_no_terminal_shutdown_settings_or_desktop_control(method, path):
    assert not policy.route_allowed("collaborate", method, path)


@pytest.mark.parametrize("level", ["read", "write"])
@pytest.mark.parametrize("method,path", [
    ("GET", "desktop-shared/screen/"), ("GET", "desktop-shared/desktop-websockify/"),
    ("GET", "slicerhub/desktop/control"), ("PUT", "slicerhub/desktop/control"), ("GET", "desktop-control/"),
])
def test_only_collaborators_reach_the_hand_over_relay(level, method, path):
    # Viewers watch through the view-only VNC server; write-only callers get contents.
    assert not policy.route_allowed(level, method, path)


def test_levels_without_routes_get_nothing_and_the_owner_everything():
    assert policy.route_allowed("execute", "GET", "terminals/websocket/1")
    assert not policy.route_allowed(None, "GET", "lab")
    assert not policy.route_allowed("admin", "GET", "lab")


def test_opening_a_document_for_collaboration_is_a_read_for_the_authorizer():
    assert policy.authorizer_action("write", "contents", "api/collaboration/session/a.ipynb") == "read"
    assert policy.authorizer_action("write", "contents", "api/contents/a.ipynb") == "write"
    assert policy.authorizer_action("write", "kernels", "api/collaboration/session/a") == "write"
    assert policy.authorizer_action("read", "contents", "api/collaboration/session/a") == "read"
    assert policy.authorizer_action("write", "contents", None) == "write"  # outside the server


def _doc_with_text(text: str) -> pycrdt.Doc:
    doc = pycrdt.Doc()
    doc["source"] = pycrdt.Text()
    doc["source"] += text
    return doc


def test_a_readers_document_messages_ask_and_show_presence_but_never_change():
    doc = _doc_with_text("print('hello')")
    ask = pycrdt.create_sync_message(doc)                     # sync step 1: "send me the document"
    assert policy.y_message_allowed(ask)
    awareness = pycrdt.Awareness(doc)
    awareness.set_local_state({"user": {"name": "bob"}})
    presence = pycrdt.create_awareness_message(awareness.encode_awareness_update([awareness.client_id]))
    assert policy.y_message_allowed(presence)
    # Everything that carries changes: an update, a step 2 (the reply to the
    # server's step 1, which may carry the reader's own edits), "save".
    edit = pycrdt.create_update_message(doc.get_update())
    other = pycrdt.Doc()
    step2 = pycrdt.handle_sync_message(ask[1:], other)         # a step 2 built from a real step 1
    assert step2[0] == pycrdt.YMessageType.SYNC and step2[1] == pycrdt.YSyncMessageType.SYNC_STEP2
    save = bytes([2, 4]) + b"save" + bytes([1])              # jupyter-collaboration's raw "save"
    for message in (edit, step2, save, b"", "text", bytes([0]), bytes([0, 7]), bytes([9, 0])):
        assert not policy.y_message_allowed(message), message


def test_a_guests_socket_stays_open_only_at_the_level_it_was_opened_with():
    assert policy.still_at("collaborate", "collaborate")
    assert policy.still_at("collaborate", "read")      # raised: still fine for a read socket
    assert not policy.still_at("read", "collaborate")  # the collaborate link ended: reconnect as a reader
    assert not policy.still_at(None, "read")


def test_a_readers_save_request_gets_jupyter_collaborations_failed_reply():
    save = bytes([2, 4]) + b"save" + bytes([0x81, 0x01])  # save id 129: a two-byte varuint
    assert policy.save_request_id(save) == 129
    reply = policy.save_refused(129)
    assert reply[0] == 2 and json.loads(reply[2:]) == {"type": "save", "responseTo": 129, "status": "failed"}
    # Decoded the way JupyterLab's docprovider reads it (lib0: varuint type, var string).
    decoder = pycrdt.Decoder(reply)
    assert decoder.read_var_uint() == 2 and json.loads(decoder.read_var_string())["status"] == "failed"
    for other in (bytes([2, 4]) + b"load" + bytes([1]), bytes([2, 4]) + b"save", bytes([0, 0, 0]), b"", "save"):
        assert policy.save_request_id(other) is None
