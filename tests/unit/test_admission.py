"""Admission control for a class starting at once: the deployment fields, the
JupyterHub settings they become, the login queue, and the queue pages."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub.app import JupyterHub
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from slicerhub.auth import LOGINS_BUSY, LoginGate, QueuedLoginHandler, SlicerLDAPAuthenticator
from slicerhub.config import ConfigError, HubSettings, parse_config
from slicerhub.traitlets_config import TEMPLATES, to_traitlets

from .helpers import demo_config, demo_data, traitlets_config

# ------------------------------------------------------------ deployment file


def test_defaults():
    hub = HubSettings()
    assert hub.concurrent_spawn_limit >= 1
    low, high = hub.spawn_retry_seconds
    assert 1 <= low <= high
    assert hub.concurrent_login_limit >= 1  # on by default: a class must not freeze the hub
    assert hub.login_queue_seconds > 0


def _hub(**fields):
    data = demo_data()
    data["hub"].update(fields)
    return parse_config(data, "site.yaml")


def test_fields_are_read():
    cfg = _hub(concurrent_spawn_limit=7, spawn_retry_seconds=[2, 9], concurrent_login_limit=0,
               login_queue_seconds=12.5)
    assert cfg.hub.concurrent_spawn_limit == 7
    assert cfg.hub.spawn_retry_seconds == (2, 9)
    assert cfg.hub.concurrent_login_limit == 0  # 0: no login limit
    assert cfg.hub.login_queue_seconds == 12.5


@pytest.mark.parametrize(
    "fields, where",
    [
        ({"spawn_retry_seconds": [9, 2]}, "hub"),
        ({"spawn_retry_seconds": [0, 2]}, "hub.spawn_retry_seconds"),
        ({"spawn_retry_seconds": [5]}, "hub.spawn_retry_seconds"),
        ({"concurrent_login_limit": -1}, "hub.concurrent_login_limit"),
        ({"login_queue_seconds": 0}, "hub.login_queue_seconds"),
    ],
)
def test_bad_fields_are_refused(fields, where):
    with pytest.raises(ConfigError) as e:
        _hub(**fields)
    assert any(m.startswith(where) for m in e.value.messages), e.value.messages


# ------------------------------------------------------------ JupyterHub settings


def test_traitlets():
    cfg = _hub(concurrent_spawn_limit=12, spawn_retry_seconds=[3, 8], concurrent_login_limit=5,
               login_queue_seconds=20)
    traits = to_traitlets(cfg, hub_connect_ip="172.18.0.1")
    hub = traits["JupyterHub"]
    assert hub["concurrent_spawn_limit"] == 12
    # JupyterHub 6 does not make spawn_throttle_retry_range configurable; its tornado setting is read.
    assert hub["tornado_settings"]["spawn_throttle_retry_range"] == [3, 8]
    assert hub["template_paths"] == [TEMPLATES]
    assert hub["template_vars"]["slicerhub_spawn_retry_seconds"] == [3, 8]
    auth = traits["SlicerLDAPAuthenticator"]
    assert auth["concurrent_login_limit"] == 5
    assert auth["login_queue_timeout"] == 20


def test_templates_ship_with_the_package():
    names = {p.name for p in Path(TEMPLATES).glob("*.html")}
    assert {"429.html", "spawn.html", "_queue.html", "_queue_script.html"} <= names
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"templates/*.html"' in pyproject


def test_jupyterhub_and_the_authenticator_accept_them():
    c = traitlets_config(_hub(spawn_retry_seconds=[2, 4], concurrent_login_limit=3, login_queue_seconds=9))
    app = JupyterHub(config=c)
    assert app.template_paths[0] == TEMPLATES
    assert app.tornado_settings["spawn_throttle_retry_range"] == [2, 4]
    assert app.template_vars["slicerhub_spawn_retry_seconds"] == [2, 4]
    auth = SlicerLDAPAuthenticator(config=c)
    assert auth.concurrent_login_limit == 3
    assert auth.login_queue_timeout == 9
    assert auth.login_gate.limit == 3 and auth.login_page_gate.limit == 3
    assert auth.get_handlers(app) == [("/login", QueuedLoginHandler)]


def test_jupyterhub_reads_the_retry_range_from_its_settings():
    # What the 429 relies on (jupyterhub/handlers/base.py spawn_single_user):
    # the retry range from the tornado settings, a Retry-After header, and the
    # message our spawn page recognises.
    source = inspect.getsource(BaseHandler.spawn_single_user)
    assert "self.settings['spawn_throttle_retry_range']" in source
    assert "'Retry-After'" in source
    assert "Too many users trying to" in source
    assert "Active user limit exceeded" in source
    spawn_page = (Path(TEMPLATES) / "spawn.html").read_text()
    assert "Too many users trying to" in spawn_page and "Active user limit exceeded" in spawn_page


# ------------------------------------------------------------ the login queue


async def _settle():
    for _ in range(20):  # let wakeups run through asyncio.wait_for
        await asyncio.sleep(0)


def test_gate_admits_up_to_the_limit_then_first_come_first_served():
    async def scenario():
        gate = LoginGate(2)
        order: list[str] = []
        assert await gate.enter(1) and await gate.enter(1)
        assert gate.busy == 2

        async def late(name):
            ok = await gate.enter(5)
            order.append(name if ok else f"{name}: refused")

        waiting = [asyncio.ensure_future(late(n)) for n in ("c", "d")]
        await _settle()
        assert gate.waiting == 2 and order == []
        gate.leave()  # the slot goes to c, not to a newcomer
        await _settle()
        assert order == ["c"] and gate.busy == 2
        gate.leave()
        await asyncio.gather(*waiting)
        assert order == ["c", "d"]
        gate.leave()
        gate.leave()
        assert gate.busy == 0 and gate.waiting == 0

    asyncio.run(scenario())


def test_gate_times_out_and_forgets_the_waiter():
    async def scenario():
        gate = LoginGate(1)
        assert await gate.enter(1)
        assert await gate.enter(0.05) is False
        assert gate.waiting == 0
        gate.leave()
        assert gate.busy == 0
        assert await gate.enter(0.05)  # the slot is free again

    asyncio.run(scenario())


def test_gate_widens_and_narrows():
    async def scenario():
        gate = LoginGate(1)
        assert await gate.enter(1)
        waiting = [asyncio.ensure_future(gate.enter(5)) for _ in range(4)]
        await _settle()
        gate.set_limit(3)  # two more in at once
        await _settle()
        assert [w.done() for w in waiting] == [True, True, False, False] and gate.busy == 3
        gate.set_limit(1)  # those in progress finish; nobody new until below the limit
        gate.leave()
        gate.leave()
        await _settle()
        assert gate.busy == 1 and not waiting[2].done()
        gate.leave()
        await _settle()
        assert waiting[2].done() and gate.busy == 1
        gate.leave()
        await asyncio.gather(*waiting)
        gate.leave()
        assert gate.busy == 0

    asyncio.run(scenario())


def test_stalled_directory_widens_the_login_queue(monkeypatch):
    from ldap3.core.exceptions import LDAPSocketOpenError

    c = traitlets_config(_hub(concurrent_login_limit=2))
    auth = SlicerLDAPAuthenticator(config=c)
    answers = {"stalled": True}

    def blocking(data):
        if answers["stalled"]:
            raise LDAPSocketOpenError("socket connection error while opening: timed out")
        return None  # the directory answered: wrong password

    monkeypatch.setattr(auth, "_authenticate_blocking", blocking)

    async def login():
        return await auth.authenticate(None, {"username": "student1", "password": "pw"})

    with pytest.raises(web.HTTPError) as e:
        asyncio.run(login())
    assert e.value.status_code == 503
    # Logins now wait on sockets, not on the hub: as many at once as LDAP threads.
    assert auth.login_gate.limit == auth.ldap_workers == 8
    answers["stalled"] = False
    assert asyncio.run(login()) is None
    assert auth.login_gate.limit == 2


def test_gate_zero_is_no_limit():
    async def scenario():
        gate = LoginGate(0)
        assert all([await gate.enter(0.01) for _ in range(100)])
        gate.leave()
        assert gate.busy == 0

    asyncio.run(scenario())


def test_busy_message_is_clear():
    text = LOGINS_BUSY.format(seconds=10)
    assert "10 seconds" in text and "Nothing is wrong with your account" in text


# ------------------------------------------------------------ the queue pages

HUB_TEMPLATES = Path(JupyterHub().template_paths[-1])


def _env() -> Environment:
    # The loader JupyterHub builds (app.py init_tornado_settings), with ours first.
    return Environment(
        loader=ChoiceLoader([
            PrefixLoader({"templates": FileSystemLoader([str(HUB_TEMPLATES)])}, "/"),
            FileSystemLoader([TEMPLATES, str(HUB_TEMPLATES)]),
        ]),
        autoescape=True,
    )


def _ns(**extra):
    return {
        "static_url": lambda *a, **k: "/hub/static/x", "base_url": "/hub/", "prefix": "/", "user": None,
        "login_url": "/hub/login", "logout_url": "/hub/logout", "xsrf": "t", "xsrf_token": "t",
        "services": [], "parsed_scopes": {}, "expanded_scopes": set(), "version_hash": "",
        "slicerhub_spawn_retry_seconds": [3, 7], **extra,
    }


def _retry_after(html: str) -> int:
    return int(re.search(r'data-retry-after="(\d+)"', html).group(1))


def test_429_page_is_the_queue_with_retry_after():
    err = web.HTTPError(429, "Too many users trying to log in right now. Try again in 10 seconds.")
    err.headers = {"Retry-After": 4}
    html = _env().get_template("429.html").render(
        status_code=429, status_message="Too Many Requests", message=err.get_message(), message_html="",
        exception=err, extra_error_html="", **_ns())
    assert "You are in the queue" in html
    assert "your server will start soon" in html.lower()
    assert _retry_after(html) == 4
    assert "window.location.reload()" in html and "slicerhubRetry" in html
    assert "Try again in 10 seconds" not in html  # JupyterHub's rounded figure, not ours
    assert 'class="navbar' in html  # JupyterHub's page around it


def test_429_page_without_retry_after_waits_the_longest_retry():
    html = _env().get_template("429.html").render(
        status_code=429, status_message="x", message="Active user limit exceeded.", message_html="",
        exception=web.HTTPError(429), extra_error_html="", **_ns())
    assert _retry_after(html) == 7


def _spawn_page(error_message):
    user = type("U", (), {"name": "teacher1", "spawner": None})()
    return _env().get_template("spawn.html").render(
        for_user=user, spawner_options_form='<input type="radio" name="profile" value="standard">',
        error_message=error_message, html_error_message=None, url="/hub/spawn?_xsrf=t", **_ns(user=user))


def test_spawn_form_refused_for_the_limit_shows_the_queue_and_sends_itself_again():
    html = _spawn_page("Too many users trying to log in right now. Try again in 10 seconds.")
    assert "You are in the queue" in html
    assert 3 <= _retry_after(html) <= 7
    assert "requestSubmit" in html and "sessionStorage" in html
    assert ".spawn-error-msg { display: none; }" in html  # not shown as an error
    assert 'id="spawn_form"' in html


def test_spawn_form_otherwise_is_jupyterhubs():
    html = _spawn_page(None)
    assert "Server Options" in html and "You are in the queue" not in html
    other = _spawn_page("You may not use the profile 'gpu'.")
    assert "You are in the queue" not in other and "You may not use the profile" in other


def test_demo_defaults_reach_the_hub():
    traits = to_traitlets(demo_config(), hub_connect_ip="172.18.0.1")
    hub = HubSettings()
    assert traits["JupyterHub"]["concurrent_spawn_limit"] == hub.concurrent_spawn_limit
    assert traits["SlicerLDAPAuthenticator"]["concurrent_login_limit"] == hub.concurrent_login_limit
