"""Deployment file → JupyterHub traitlets, as a pure function.

`jupyterhub_config.py` and the Helm chart's hub both call `to_traitlets`; it
reads nothing from disk or the network, so the tests check it directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import slicerhub_access as access
from jupyterhub.roles import get_default_roles

from .config import ConfigError, SlicerHubConfig, group_name
from .database import db_url
from .site import logo_file, site_vars

AUTHENTICATOR = "slicerhub.auth.SlicerLDAPAuthenticator"
# SlicerHub's pages in front of JupyterHub's own (the queue page for HTTP 429).
TEMPLATES = str(Path(__file__).resolve().with_name("templates"))
SPAWNERS = {
    "docker": "slicerhub.spawners.docker.SlicerDockerSpawner",
    "kubernetes": "slicerhub.spawners.kube.SlicerKubeSpawner",
}
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
# Teachers see who is in which group (their courses); they get no server access here.
TEACHER_SCOPES = ["read:users:name", "read:users:groups", "read:groups"]
COURSES_SERVICE_SCOPES = ["read:users:name", "read:users:groups"]
COURSES_OAUTH_SCOPES = ["access:servers!user", f"{access.scope('read')}!user"]

# Levels inside a user's server (read, collaborate, execute…), checked by the
# image's scoped authorizer and route guard: one module on both sides.
CUSTOM_SCOPES = access.custom_scopes()
# What a server's OAuth tokens may carry: each holder's own level there.
SERVER_OAUTH_SCOPES = access.server_oauth_scopes()
# The sharing service sees who is in which group and whose server runs, and
# lists and withdraws shares; it grants nothing by itself (links are made with
# the owner's token), except read-only access for a course's teachers.
SHARING_SERVICE_SCOPES = ["read:users:name", "read:users:groups", "read:groups", "read:servers",
                          "shares", "read:shares"]
# Scopes the service's OAuth token carries for the signed-in user, so a link
# is made with the owner's own permission to share their server.
# (read:users:name: cut to the teachers' names a user's role holds, to share with them.)
SHARING_OAUTH_SCOPES = ["shares!user", "read:shares!user", "access:servers!user", "read:users:name",
                        *(f"{access.scope(level)}!user" for level in access.SHAREABLE)]
# The PACS gateway reads each person's groups (who may open studies); it gets no server access.
PACS_SERVICE_SCOPES = ["read:users:name", "read:users:groups"]
# JupyterHub's own `server` role (a server's $JUPYTERHUB_API_TOKEN), as the installed JupyterHub defines it …
SERVER_TOKEN_SCOPES = next(r["scopes"] for r in get_default_roles() if r["name"] == "server")
# … plus, with a PACS, the gateway: the Slicer kernel and desktop retrieve studies as their owner.
PACS_ACCESS = "access:services!service=pacs"


def _ldap(cfg: SlicerHubConfig) -> dict[str, Any]:
    ldap = cfg.ldap
    out: dict[str, Any] = {
        "server_address": ldap.server,
        "tls_strategy": ldap.tls,
        "connect_timeout": ldap.timeouts.connect,
        "receive_timeout": ldap.timeouts.receive,
        "login_timeout": ldap.timeouts.login,
        "admin_groups": list(ldap.groups.admins),
        "login_groups": list(ldap.groups.allowed),
        "synced_groups": ldap.groups.all_dns(),
    }
    if ldap.port:
        out["server_port"] = ldap.port
    if ldap.ca_file:
        out["tls_kwargs"] = {"ca_certs_file": ldap.ca_file}
    if ldap.bind_dn_template:
        out["bind_dn_template"] = list(ldap.bind_dn_template)
    else:
        look = ldap.lookup
        out.update(
            lookup_dn=True,
            user_search_base=look.search_base,
            user_attribute=look.user_attribute,
            lookup_dn_user_dn_attribute=look.user_attribute,
        )
        if look.bind_dn:
            out["lookup_dn_search_user"] = look.bind_dn
            out["lookup_dn_search_password_file"] = look.bind_password_file
    if ldap.group_search_filter:
        out["group_search_filter"] = ldap.group_search_filter
    return out


def _teacher_groups(cfg: SlicerHubConfig) -> list[str]:
    return sorted({group_name(dn) for dn in cfg.ldap.groups.teachers})


def _spawner(cfg: SlicerHubConfig, hub_connect_ip: str | None = None) -> dict[str, Any]:
    c = cfg.courses
    return {
        "profiles": [p.model_dump() for p in cfg.profiles],
        "home_path": cfg.storage.home_path,
        "courses": {"groups": list(c.groups), "root": str(Path(c.root).resolve()),
                    "claim": c.claim, "mount_path": c.mount_path} if c.groups else {},
        "teacher_groups": _teacher_groups(cfg),
        "companion_specs": cfg.companions.model_dump(),
        "pacs_url": service_url(cfg, "pacs", hub_connect_ip) + "/services/pacs"
        if cfg.pacs.dicomweb_url else "",
        # JupyterLab's "Publish to a Course…" goes through the user's server,
        # which calls the service directly (the public proxy may listen on
        # 127.0.0.1 only, out of the containers' reach), like the PACS gateway.
        "courses_url": service_url(cfg, "courses", hub_connect_ip) + "/services/courses"
        if c.groups else "",
        "shared_access": cfg.sharing.enabled,
    }


def _service(name: str, tokens: Mapping[str, str] | None, **fields: Any) -> dict[str, Any]:
    """An external service: its process runs beside the hub (slicerhub.runtime),
    not as the hub's child, so a hub restart neither stops nor orphans it."""
    service = {"name": name, **fields}
    if tokens is not None:
        service["api_token"] = tokens[name]
    return service


def _courses_service(cfg: SlicerHubConfig, tokens, hub_connect_ip: str | None = None) -> tuple[list[dict], list[dict]]:
    if not cfg.courses.groups:
        return [], []
    # Its OAuth token for a teacher reads (only) that teacher's own server:
    # publishing from the service's form takes the notebook from there.
    service = _service("courses", tokens, url=service_url(cfg, "courses", hub_connect_ip), oauth_no_confirm=True,
                       display=True, oauth_client_allowed_scopes=COURSES_OAUTH_SCOPES)
    # It reads who is in which group; it gets no access to anyone's server.
    role = {"name": "courses-service", "scopes": COURSES_SERVICE_SCOPES, "services": ["courses"]}
    return [service], [role]


def _sharing_service(cfg: SlicerHubConfig, tokens) -> tuple[list[dict], list[dict]]:
    if not cfg.sharing.enabled:
        return [], []
    service = _service("sharing", tokens, url=service_url(cfg, "sharing"), oauth_no_confirm=True, display=True,
                       oauth_client_allowed_scopes=SHARING_OAUTH_SCOPES)
    # Teachers join their courses' sessions read-only: the service may grant
    # exactly that, on servers of the course's members.
    course_scopes = [s for g in cfg.courses.groups
                     for s in (f"access:servers!group={g}", f"{access.scope('read')}!group={g}")]
    role = {"name": "sharing-service", "scopes": SHARING_SERVICE_SCOPES + course_scopes,
            "services": ["sharing"]}
    return [service], [role]


def _pacs_service(cfg: SlicerHubConfig, tokens, hub_connect_ip: str | None) -> tuple[list[dict], list[dict]]:
    if not cfg.pacs.dicomweb_url:
        return [], []
    service = _service("pacs", tokens, url=service_url(cfg, "pacs", hub_connect_ip), oauth_no_confirm=True,
                       display=True)
    roles = [{"name": "pacs-service", "scopes": PACS_SERVICE_SCOPES, "services": ["pacs"]},
             {"name": "server", "scopes": SERVER_TOKEN_SCOPES + [PACS_ACCESS]}]
    return [service], roles


def _user_role(cfg: SlicerHubConfig) -> dict:
    # Everyone runs everything in their own server, may reach the services
    # (the gallery shows their own courses only; sharing, their own links),
    # and may put those scopes on a token for the `slicerhub` CLI.
    # Read on every server is harmless on its own: reaching a server needs
    # access:servers, which only its owner and the people it is shared with
    # hold. It is a role scope because OAuth tokens of user servers are cut
    # to role scopes (shares only add access), so a viewer's token can carry it.
    scopes = ["self", f"{access.scope('execute')}!user", access.scope("read")]
    if cfg.courses.groups:
        scopes.append("access:services!service=courses")
    if cfg.sharing.enabled:
        # JupyterHub lets nobody share by default; owners share their own servers.
        scopes += ["access:services!service=sharing", "shares!user", "read:shares!user"]
        # A student who accepts a teacher's help shares with that teacher by
        # name: the hub asks the sharer to know the name.
        scopes += [f"read:users:name!group={g}" for g in _teacher_groups(cfg)]
    if cfg.pacs.dicomweb_url:
        # Everyone may reach the gateway; it lets pacs.groups in (a 403 with a reason for the others).
        scopes.append(PACS_ACCESS)
    return {"name": "user", "scopes": scopes}


def _backend(cfg: SlicerHubConfig, hub_connect_ip: str | None) -> dict[str, dict[str, Any]]:
    if cfg.backend.type == "docker":
        d = cfg.backend.docker
        docker: dict[str, Any] = {
            "network_name": d.network,
            "remove": d.remove,
            "home_volume": d.home_volume,
            "prefix": d.container_prefix,
        }
        if d.docker_host:
            docker["client_kwargs"] = {"base_url": d.docker_host}
        hub: dict[str, Any] = {}
        connect = d.hub_connect_ip or hub_connect_ip
        if connect:
            hub = {"hub_ip": connect, "hub_connect_ip": connect}
        return {"SlicerDockerSpawner": docker, "JupyterHub": hub}
    k = cfg.backend.kubernetes
    kube: dict[str, Any] = {
        "namespace": k.namespace,
        "storage_capacity": k.home_size,
        "gpu_toleration": k.gpu_toleration,
        "gpu_node_selector": dict(k.gpu_node_selector),
    }
    if k.storage_class:
        kube["storage_class"] = k.storage_class
    # In a cluster the hub is reached through its Service, bound on all pod interfaces.
    return {"SlicerKubeSpawner": kube, "JupyterHub": {"hub_ip": "0.0.0.0"}}


def _culler(cfg: SlicerHubConfig, tokens) -> tuple[list[dict], list[dict]]:
    if not cfg.culler.enabled:
        return [], []
    role = {"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]}
    return [_service("idle-culler", tokens)], [role]


def _connect_ip(cfg: SlicerHubConfig, found: str | None) -> str | None:
    """The address user containers reach the hub on: the file's, else the one found at start-up."""
    if cfg.backend.type != "docker":
        return None
    return cfg.backend.docker.hub_connect_ip or found


def service_url(cfg: SlicerHubConfig, name: str, hub_ip: str | None = None) -> str:
    """Where a SlicerHub service listens: 127.0.0.1 (users reach it through the
    proxy), except the PACS gateway and the courses service, which user
    servers call too (DICOMweb; publishing from JupyterLab): they listen where
    the hub API does (`hub_ip`)."""
    port = {"courses": cfg.hub.courses_port, "sharing": cfg.hub.sharing_port, "pacs": cfg.hub.pacs_port}[name]
    host = hub_ip if name in ("pacs", "courses") and hub_ip else "127.0.0.1"
    return f"http://{host}:{port}"


def service_names(cfg: SlicerHubConfig) -> list[str]:
    """The hub services this deployment runs, in start order."""
    names = ["idle-culler"] if cfg.culler.enabled else []
    if cfg.courses.groups:
        names.append("courses")
    if cfg.sharing.enabled:
        names.append("sharing")
    if cfg.pacs.dicomweb_url:
        names.append("pacs")
    return names


def to_traitlets(
    cfg: SlicerHubConfig, *, hub_connect_ip: str | None = None, tokens: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Map a validated deployment to `{ConfigurableClass: {trait: value}}`.

    `hub_connect_ip` is the address user containers reach the hub API on,
    found at start-up (Docker network gateway) unless the file sets one.
    `tokens` holds the secrets shared with the separately run processes:
    "proxy" (the proxy's API) and one per service name; without it (printing,
    tests) no secret appears in the result.
    """
    data_dir = Path(cfg.hub.data_dir)
    services, roles = _culler(cfg, tokens)
    course_services, course_roles = _courses_service(cfg, tokens, _connect_ip(cfg, hub_connect_ip))
    services += course_services
    roles += course_roles
    sharing_services, sharing_roles = _sharing_service(cfg, tokens)
    services += sharing_services
    roles += sharing_roles
    pacs_services, pacs_roles = _pacs_service(cfg, tokens, _connect_ip(cfg, hub_connect_ip))
    services += pacs_services
    roles += pacs_roles
    roles.append(_user_role(cfg))
    teacher_groups = _teacher_groups(cfg)
    if teacher_groups:
        roles.append({"name": "teacher", "scopes": TEACHER_SCOPES, "groups": teacher_groups})

    hub: dict[str, Any] = {
        "bind_url": cfg.hub.bind_url,
        "authenticator_class": AUTHENTICATOR,
        "spawner_class": SPAWNERS[cfg.backend.type],
        # SQLite in data_dir, or hub.database.url (its password: slicerhub.database).
        "db_url": db_url(cfg),
        "cookie_secret_file": str(data_dir / "jupyterhub_cookie_secret"),
        "hub_port": cfg.hub.api_port,
        "concurrent_spawn_limit": cfg.hub.concurrent_spawn_limit,
        # A start refused by that limit (429) is told to come back in a few seconds
        # (JupyterHub's 30-60 s is longer than a start takes); the trait is not
        # configurable in JupyterHub 6, its tornado setting is.
        "tornado_settings": {"spawn_throttle_retry_range": list(cfg.hub.spawn_retry_seconds)},
        # The queue page (429.html) and the spawn form that retries by itself.
        # and every page's frame (page.html: site name, navigation bar), the
        # home page as a session manager, the sign-in message.
        "template_paths": [TEMPLATES],
        "template_vars": {"slicerhub_spawn_retry_seconds": list(cfg.hub.spawn_retry_seconds),
                          "slicerhub_site": site_vars(cfg)},
        "logo_file": logo_file(cfg),
        "log_level": cfg.hub.log_level,
        "services": services,
        "load_roles": roles,
        "custom_scopes": CUSTOM_SCOPES,
        # A link into a stopped server (a course app) starts it after a moment.
        "implicit_spawn_seconds": 2,
        # A hub restart (upgrade, config change, crash) costs nobody their
        # session: servers keep running and are resumed from the database, and
        # the proxy is a process of its own that keeps every route and websocket.
        "cleanup_servers": False,
        "cleanup_proxy": False,
    }
    backend = _backend(cfg, hub_connect_ip)
    hub.update(backend.pop("JupyterHub"))
    # Started by the supervisor (`slicerhub run proxy`), never by the hub.
    proxy: dict[str, Any] = {"api_url": f"http://127.0.0.1:{cfg.hub.proxy_api_port}", "should_start": False}
    if tokens is not None:
        proxy["auth_token"] = tokens["proxy"]
    traits = {
        "JupyterHub": hub,
        "Authenticator": {"manage_groups": True},
        "ConfigurableHTTPProxy": proxy,
        "SlicerLDAPAuthenticator": {**_ldap(cfg), "concurrent_login_limit": cfg.hub.concurrent_login_limit,
                                    "login_queue_timeout": cfg.hub.login_queue_seconds},
        "Spawner": {"default_url": "/lab", "start_timeout": 120, "http_timeout": 60,
                    "oauth_client_allowed_scopes": SERVER_OAUTH_SCOPES},
        "SlicerSpawner": _spawner(cfg, _connect_ip(cfg, hub_connect_ip)),
        **backend,
    }
    return _with_jupyterhub_settings(cfg, traits)


# Settings of `jupyterhub:` that a field of the deployment file decides: the
# field is named instead, so each option has one place. Matched through the
# class's MRO, so SlicerLDAPAuthenticator.admin_users hits Authenticator's entry.
FIELD_OF_SETTING = {
    ("JupyterHub", "bind_url"): "hub.bind_url",
    ("JupyterHub", "db_url"): "hub.database.url",
    ("JupyterHub", "hub_port"): "hub.api_port",
    ("JupyterHub", "proxy_api_ip"): "hub.proxy_api_port",
    ("JupyterHub", "proxy_api_port"): "hub.proxy_api_port",
    ("JupyterHub", "concurrent_spawn_limit"): "hub.concurrent_spawn_limit",
    ("JupyterHub", "log_level"): "hub.log_level",
    ("JupyterHub", "spawner_class"): "backend.type",
    ("JupyterHub", "authenticator_class"): "ldap",
    ("JupyterHub", "services"): "culler, courses and sharing",
    ("JupyterHub", "load_roles"): "ldap.groups (admins, teachers and students are roles from LDAP groups)",
    ("ConfigurableHTTPProxy", "api_url"): "hub.proxy_api_port",
    ("Authenticator", "allow_all"): "ldap.groups.allowed (empty: every account of the directory)",
    ("Authenticator", "allowed_users"): "ldap.groups.allowed",
    ("Authenticator", "admin_users"): "ldap.groups.admins",
    ("Authenticator", "manage_groups"): "ldap.groups",
    ("LDAPAuthenticator", "server_address"): "ldap.server",
    ("LDAPAuthenticator", "server_port"): "ldap.port",
    ("LDAPAuthenticator", "tls_strategy"): "ldap.tls",
    ("LDAPAuthenticator", "tls_kwargs"): "ldap.ca_file",
    ("LDAPAuthenticator", "bind_dn_template"): "ldap.bind_dn_template",
    ("LDAPAuthenticator", "lookup_dn"): "ldap.lookup",
    ("LDAPAuthenticator", "user_search_base"): "ldap.lookup.search_base",
    ("LDAPAuthenticator", "user_attribute"): "ldap.lookup.user_attribute",
    ("LDAPAuthenticator", "lookup_dn_search_user"): "ldap.lookup.bind_dn",
    ("LDAPAuthenticator", "lookup_dn_search_password"): "ldap.lookup.bind_password_file (never a password here)",
    ("LDAPAuthenticator", "allowed_groups"): "ldap.groups.allowed",
    ("LDAPAuthenticator", "group_search_filter"): "ldap.group_search_filter",
    ("SlicerLDAPAuthenticator", "admin_groups"): "ldap.groups.admins",
    ("SlicerLDAPAuthenticator", "login_groups"): "ldap.groups.allowed",
    ("SlicerLDAPAuthenticator", "synced_groups"): "ldap.groups",
    ("SlicerLDAPAuthenticator", "connect_timeout"): "ldap.timeouts.connect",
    ("SlicerLDAPAuthenticator", "receive_timeout"): "ldap.timeouts.receive",
    ("SlicerLDAPAuthenticator", "login_timeout"): "ldap.timeouts.login",
    ("SlicerLDAPAuthenticator", "concurrent_login_limit"): "hub.concurrent_login_limit",
    ("SlicerLDAPAuthenticator", "login_queue_timeout"): "hub.login_queue_seconds",
    ("SlicerSpawner", "profiles"): "profiles",
    ("SlicerSpawner", "home_path"): "storage.home_path",
    ("SlicerSpawner", "courses"): "courses",
    ("SlicerSpawner", "courses_url"): "courses",
    ("SlicerSpawner", "teacher_groups"): "ldap.groups.teachers",
    ("SlicerSpawner", "companion_specs"): "companions",
    ("DockerSpawner", "network_name"): "backend.docker.network",
    ("DockerSpawner", "prefix"): "backend.docker.container_prefix",
    ("DockerSpawner", "remove"): "backend.docker.remove",
    ("SlicerDockerSpawner", "home_volume"): "backend.docker.home_volume",
    ("KubeSpawner", "namespace"): "backend.kubernetes.namespace",
    ("KubeSpawner", "storage_class"): "backend.kubernetes.storage_class",
    ("KubeSpawner", "storage_capacity"): "backend.kubernetes.home_size",
    ("KubeSpawner", "profile_list"): "profiles",
    ("SlicerKubeSpawner", "gpu_node_selector"): "backend.kubernetes.gpu_node_selector",
    ("SlicerKubeSpawner", "gpu_toleration"): "backend.kubernetes.gpu_toleration",
}
# What the platform's promises rest on (docs/operations.md, docs/sharing.md): not settable.
_PROXY_BESIDE = "the proxy runs beside the hub (slicerhub run proxy), never as its child"
_SECRETS_IN_FILES = "secrets live in files under hub.data_dir/secrets, never in the deployment file"
_READ_ONLY = "the read-only levels of shared sessions depend on it"
FIXED_SETTINGS = {
    ("JupyterHub", "cleanup_servers"): "a hub restart must leave every server running",
    ("JupyterHub", "logo_file"): "site.logo",
    ("JupyterHub", "cleanup_proxy"): "the proxy is its own process and keeps every route",
    ("JupyterHub", "proxy_class"): _PROXY_BESIDE,
    ("JupyterHub", "proxy_cmd"): _PROXY_BESIDE,
    ("JupyterHub", "proxy_auth_token"): _SECRETS_IN_FILES,
    ("ConfigurableHTTPProxy", "should_start"): _PROXY_BESIDE,
    ("ConfigurableHTTPProxy", "command"): _PROXY_BESIDE,
    ("ConfigurableHTTPProxy", "auth_token"): _SECRETS_IN_FILES,
    ("JupyterHub", "api_tokens"): _SECRETS_IN_FILES + "; a token here could act as any user or service",
    ("JupyterHub", "service_tokens"): _SECRETS_IN_FILES + "; a token here could act as any user or service",
    ("JupyterHub", "cookie_secret"): _SECRETS_IN_FILES,
    ("JupyterHub", "reset_db"): "it would delete every user, group and token at each hub start",
    ("JupyterHub", "custom_scopes"): _READ_ONLY,
    ("Spawner", "oauth_client_allowed_scopes"): _READ_ONLY,
    ("Spawner", "server_token_scopes"): _READ_ONLY,
    ("Spawner", "oauth_roles"): _READ_ONLY,
    ("DockerSpawner", "allowed_images"): "people could start any of these images past the profiles' groups",
}


def _configurable_classes(cfg: SlicerHubConfig) -> dict[str, type]:
    """The classes a `jupyterhub:` section may name: JupyterHub's own, and
    every class in the MRO of this deployment's authenticator, spawner and proxy."""
    from jupyterhub.app import JupyterHub
    from traitlets.config import Configurable
    from traitlets.utils.importstring import import_item

    roots = [*JupyterHub().classes, import_item(AUTHENTICATOR), import_item(SPAWNERS[cfg.backend.type])]
    found: dict[str, type] = {}
    for root in roots:
        for cls in root.__mro__:
            if isinstance(cls, type) and issubclass(cls, Configurable) and cls is not Configurable:
                found.setdefault(cls.__name__, cls)
    return found


def _table_entry(cls: type, name: str, table: Mapping[tuple[str, str], str]) -> str | None:
    return next((table[c.__name__, name] for c in cls.__mro__ if (c.__name__, name) in table), None)


def check_jupyterhub_settings(cfg: SlicerHubConfig, ours: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One message per `jupyterhub:` setting that would not work as written;
    `ours` is what SlicerHub itself sets (to_traitlets without the section)."""
    if not cfg.jupyterhub:
        return []
    from traitlets import HasTraits

    classes = _configurable_classes(cfg)
    probe = HasTraits()  # container traits need an object to validate against
    problems = []
    for cls_name, settings in cfg.jupyterhub.items():
        cls = classes.get(cls_name)
        if cls is None:
            problems.append(f"jupyterhub.{cls_name}: no such JupyterHub class here (known: "
                            + ", ".join(sorted(classes)) + ")")
            continue
        traits = cls.class_traits(config=True)
        for name, value in settings.items():
            where = f"jupyterhub.{cls_name}.{name}"
            # traitlets: the most specific class's setting wins, so ours on a subclass would.
            shadow = next((c for c, section in ours.items() if name in section and c != cls_name
                           and c in classes and issubclass(classes[c], cls)), None)
            target = classes[shadow] if shadow else cls
            fixed = _table_entry(target, name, FIXED_SETTINGS)
            field = _table_entry(target, name, FIELD_OF_SETTING)
            if fixed:
                problems.append(f"{where}: cannot be changed ({fixed})")
            elif field:
                problems.append(f"{where}: set by this file's {field}; change that instead")
            elif name not in traits:
                problems.append(f"{where}: {cls_name} has no setting {name!r}")
            elif shadow:
                problems.append(f"{where}: SlicerHub sets {shadow}.{name}, which wins over {cls_name}.{name}; "
                                f"write jupyterhub.{shadow}.{name}")
            else:
                try:
                    traits[name].validate(probe, value)
                except Exception as e:  # TraitError, or a trait that cannot take this shape at all
                    problems.append(f"{where}: " + str(e).replace(" of a HasTraits instance", ""))
    return problems


def _with_jupyterhub_settings(cfg: SlicerHubConfig, traits: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    problems = check_jupyterhub_settings(cfg, traits)
    if problems:
        raise ConfigError("jupyterhub", problems)
    for cls_name, settings in cfg.jupyterhub.items():
        section = traits.setdefault(cls_name, {})
        for name, value in settings.items():
            ours = section.get(name)
            # A mapping adds to SlicerHub's (template_vars, tornado_settings); anything else replaces.
            section[name] = {**ours, **value} if isinstance(ours, dict) and isinstance(value, dict) else value
    return traits


def apply(c: Any, traits: dict[str, dict[str, Any]]) -> None:
    """Set the traits on a traitlets Config object (`c` in jupyterhub_config.py)."""
    for section, values in traits.items():
        for name, value in values.items():
            setattr(c[section], name, value)
