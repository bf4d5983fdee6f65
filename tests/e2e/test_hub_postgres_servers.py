"""Running servers on a hub whose database is PostgreSQL survive a hub restart.

Real PostgreSQL (slicerhub.devenv.postgres), real slapd, real Docker: a few
lightweight servers (tests/e2e/light_server) started through the hub, then
`supervisorctl restart hub`; the hub resumes them from PostgreSQL and every
route still reaches its own container.
"""

from __future__ import annotations

import time

import pytest

from slicerhub.devenv.ldap import Slapd
from slicerhub.devenv.postgres import Postgres
from slicerhub.wait import wait_for
from tests.support import sessions
from tests.support.hub import Hub, free_port, write_config

pytestmark = pytest.mark.e2e

N_LIGHT = 4
NETWORK = "slicerhub-e2e"


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pg-servers")
    prefix = f"pg{int(time.time()) % 100000}"
    sessions.build_light_image(docker_client)
    with Postgres() as pg:
        ldap = Slapd(workdir / "ldap", sessions.directory(N_LIGHT))
        ldap.start()
        port = free_port()
        config = write_config(workdir / "slicerhub.yaml", ldap.port, port,
                              **sessions.deployment(prefix, NETWORK, workdir),
                              hub={"database": {"url": pg.url, "password_file": str(pg.password_file)}})
        hub = Hub(workdir, config, port)
        try:
            hub.start()
            hub.pg = pg
            yield hub
        finally:
            hub.stop()
            ldap.stop()
            sessions.remove_prefixed(docker_client, prefix)


def test_servers_start_and_survive_a_hub_restart_on_postgres(stack):
    names = sessions.light_names(N_LIGHT)
    admin = sessions.token_for(stack, *sessions.ADMIN)
    sessions.start_light(stack, names, workers=4)
    sessions.wait_all_ready(stack, admin, names)
    assert sorted(sessions.light_routes_ok(stack, names)) == names
    # The servers' state is in PostgreSQL, not in a file.
    rows = stack.pg.query("SELECT u.name FROM spawners s JOIN users u ON u.id = s.user_id "
                          "WHERE s.server_id IS NOT NULL")
    assert set(names) <= {r[0] for r in rows}

    stack.restart("hub")
    assert set(names) <= sessions.ready_servers(stack, admin)
    wait_for(lambda: sorted(sessions.light_routes_ok(stack, names)) == names, 300, interval=1,
             what="every light route back after the restart")
