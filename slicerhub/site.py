"""What every SlicerHub page shows around its content: the site's name, its
sign-in message and the navigation bar's links. The hub gets it as a template
variable, the services (which render the same templates) from the environment,
so a hub page and a service page cannot drift apart."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .config import SlicerHubConfig

ENV = "SLICERHUB_SITE"
DEFAULT_LOGO = Path(__file__).resolve().with_name("static") / "slicerhub-logo.svg"


def site_vars(cfg: SlicerHubConfig) -> dict:
    nav = [{"id": "nav-home", "label": "Home", "href": "/hub/home"}]
    if cfg.courses.groups:
        nav.append({"id": "nav-courses", "label": "Courses", "href": "/services/courses/"})
    if cfg.sharing.enabled:
        nav.append({"id": "nav-sharing", "label": "Share", "href": "/services/sharing/"})
    if cfg.pacs.dicomweb_url:
        nav.append({"id": "nav-pacs", "label": "Studies", "href": "/services/pacs/"})
    nav.append({"id": "nav-token", "label": "Token", "href": "/hub/token"})
    return {"name": cfg.site.name, "login_message": cfg.site.login_message, "nav": nav,
            "courses": bool(cfg.courses.groups), "sharing": cfg.sharing.enabled}


def logo_file(cfg: SlicerHubConfig) -> str:
    return str(Path(cfg.site.logo).resolve()) if cfg.site.logo else str(DEFAULT_LOGO)


def from_env() -> dict:
    """The services' copy (set by the program that starts them); a bare
    service started by hand still gets a usable page."""
    try:
        return json.loads(os.environ[ENV])
    except (KeyError, ValueError):
        return {"name": "SlicerHub", "login_message": None, "courses": False, "sharing": False,
                "nav": [{"id": "nav-home", "label": "Home", "href": "/hub/home"}]}
