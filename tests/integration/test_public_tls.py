"""SlicerHub served over HTTPS by its own proxy (hub.tls), for a site without
a TLS reverse proxy in front.

Real proxy (configurable-http-proxy with --ssl-cert/--ssl-key from the
deployment file), hub, services and slapd; a throw-away CA issues the
certificate (slicerhub.devenv.ldap.make_test_pki), and the clients here trust
only that CA. User servers are benchmarks.light_spawner's in-process stubs.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys

import pytest
import requests

from benchmarks.harness import BenchHub
from slicerhub.devenv.ldap import make_test_pki
from tests.support.browser import wait_for
from tests.support.hub import free_port, write_config, xsrf

WAIT = 120


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("public-pki"), ["127.0.0.1", "localhost"])


@pytest.fixture(scope="module")
def hub(slapd, pki, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("public-tls")
    port = free_port()
    config = write_config(
        workdir / "slicerhub.yaml", slapd.port, port,
        hub={"bind_url": f"https://127.0.0.1:{port}",
             "tls": {"cert_file": str(pki.cert_file), "key_file": str(pki.key_file)}},
        backend={"docker": {"hub_connect_ip": "127.0.0.1"}}, culler={"enabled": False},
    )
    # requests (this test and the stack's readiness check) trust the test CA only.
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(pki.ca_file)
    try:
        args = ["--JupyterHub.spawner_class=benchmarks.light_spawner.LightSpawner"]
        with BenchHub(workdir, config, port, args=args) as running:
            yield running
    finally:
        if saved is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = saved


def test_the_proxy_serves_https_with_the_configured_certificate(hub, pki):
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    with socket.create_connection(("127.0.0.1", hub.port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            names = [v for k, v in tls.getpeercert()["subjectAltName"] if k == "IP Address"]
            assert "127.0.0.1" in names


def test_plain_http_and_untrusted_clients_get_nothing(hub):
    # The system's CAs do not include the test CA: the certificate is refused.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(hub.url + "/hub/login", timeout=30, verify="/etc/ssl/certs/ca-certificates.crt")
    plain = hub.url.replace("https://", "http://")
    try:
        r = requests.get(plain + "/hub/login", timeout=30)
    except requests.exceptions.ConnectionError:
        return  # the TLS listener closes a plain-HTTP connection
    assert r.status_code >= 400 and "password" not in r.text.lower()


def test_login_server_and_service_work_over_https(hub):
    s, r = hub.login("student1", "student1-pw")
    assert r.status_code == 302, r.text[:300]
    cookie = next(c for c in s.cookies if c.name.startswith("jupyterhub-session-id") or c.name == "jupyterhub-hub-login")
    assert cookie.secure, f"{cookie.name} must be a Secure cookie over HTTPS"

    headers = {"X-XSRFToken": xsrf(s), "Referer": hub.url + "/hub/home"}
    started = s.post(f"{hub.url}/hub/api/users/student1/server", headers=headers, timeout=60)
    assert started.status_code in (201, 202), started.text[:300]
    token = {"Authorization": f"token {hub.api_token(s)}"}
    wait_for(lambda: requests.get(f"{hub.url}/hub/api/users/student1", headers=token, timeout=30)
             .json()["servers"].get("", {}).get("ready"), WAIT, what="student1's server")
    assert s.get(f"{hub.url}/user/student1/", timeout=30).text == "ok\n"

    # A service's OAuth round trip with the hub, all on https:// URLs.
    page = s.get(hub.url + "/services/sharing/", timeout=30)
    assert page.status_code == 200, page.text[:300]
    assert all(h.url.startswith("https://") for h in page.history), [h.url for h in page.history]
    s.delete(f"{hub.url}/hub/api/users/student1/server", headers=headers, timeout=60)


def test_a_missing_key_is_one_clear_line(tmp_path, pki, slapd):
    config = write_config(
        tmp_path / "slicerhub.yaml", slapd.port, free_port(),
        hub={"bind_url": "https://127.0.0.1:8443",
             "tls": {"cert_file": str(pki.cert_file), "key_file": str(tmp_path / "missing.key")}},
    )
    run = subprocess.run([sys.executable, "-m", "slicerhub.cli", "run", "proxy", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip() == f"slicerhub run: hub.tls: no such file: {tmp_path / 'missing.key'}"


def test_a_key_that_does_not_match_is_one_clear_line(tmp_path, pki, slapd):
    other = make_test_pki(tmp_path / "other", ["127.0.0.1"])
    config = write_config(
        tmp_path / "slicerhub.yaml", slapd.port, free_port(),
        hub={"bind_url": "https://127.0.0.1:8443",
             "tls": {"cert_file": str(pki.cert_file), "key_file": str(other.key_file)}},
    )
    run = subprocess.run([sys.executable, "-m", "slicerhub.cli", "run", "proxy", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "are not a PEM certificate and its key" in run.stderr and "Traceback" not in run.stderr
    assert "PRIVATE KEY" not in run.stderr
