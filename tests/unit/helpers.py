"""Helpers shared by the unit tests: the demo deployment, and stand-ins for
the few JupyterHub objects (user, hub) a spawner reads."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import yaml
from traitlets.config import Config

from slicerhub.config import SlicerHubConfig, parse_config
from slicerhub.traitlets_config import apply, to_traitlets

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "hub_config" / "demo.yaml"
DEMO_DATA = yaml.safe_load(DEMO.read_text(encoding="utf-8"))

SUFFIX = "dc=slicerhub,dc=test"
ADMINS_DN = f"cn=slicerhub-admins,ou=groups,{SUFFIX}"
TEACHERS_DN = f"cn=teachers,ou=groups,{SUFFIX}"
STUDENTS_DN = f"cn=students,ou=groups,{SUFFIX}"
ANAT_DN = f"cn=anat101,ou=groups,{SUFFIX}"


def demo_data() -> dict:
    """A fresh, mutable copy of hub_config/demo.yaml as plain data."""
    return copy.deepcopy(DEMO_DATA)


def demo_config(**changes) -> SlicerHubConfig:
    """The demo deployment with top-level sections replaced by `changes`."""
    data = demo_data()
    data.update(changes)
    return parse_config(data, "demo")


def traitlets_config(cfg: SlicerHubConfig, *, hub_connect_ip: str | None = "172.18.0.1") -> Config:
    """A real traitlets Config, filled the way jupyterhub_config.py fills `c`."""
    c = Config()
    apply(c, to_traitlets(cfg, hub_connect_ip=hub_connect_ip))
    return c


def make_user(name: str = "alice", groups: tuple[str, ...] = (), admin: bool = False, uid: int = 7):
    """What a spawner reads from jupyterhub.user.User (name, id, url, groups...)."""
    return SimpleNamespace(
        name=name,
        id=uid,
        url=f"/user/{name}/",
        escaped_name=name,
        json_escaped_name=name,
        admin=admin,
        groups=[SimpleNamespace(name=g) for g in groups],
        progress_url=lambda server_name="": f"/hub/api/users/{name}/server/progress",
    )


def make_hub():
    """What a spawner reads from jupyterhub.objects.Hub."""
    return SimpleNamespace(
        public_host="",
        url="http://172.18.0.1:8081/hub/",
        base_url="/hub/",
        api_url="http://172.18.0.1:8081/hub/api",
    )
