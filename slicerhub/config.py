"""The one deployment file: its schema, loading, and readable validation errors.

A SlicerHub deployment is one YAML file. The same models validate it for
`jupyterhub_config.py`, for `slicerhub config check`, and (as JSON Schema) for
the Helm chart's values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SLUG = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
BYTES = r"^[0-9]+(\.[0-9]+)?[KMGT]?$"
URL = r"^https?://[^/\s]+(/[^\s]*)?$"
HOST = r"^[A-Za-z0-9.:\[\]-]+$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NO_SPACE = r"^[^\s]+$"
K8S_QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$"


# jupyterhub: section keys, a traitlets class name and a setting name.
TRAITLETS_CLASS = r"^[A-Z][A-Za-z0-9_]*$"
TRAIT_NAME = r"^[a-z_][a-z0-9_]*$"


class ConfigError(ValueError):
    """A deployment file is not valid; `messages` has one line per bad field."""

    def __init__(self, source: str, messages: list[str]):
        self.source = source
        self.messages = messages
        super().__init__(f"{source}: " + "; ".join(messages))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def group_name(dn: str) -> str:
    """The JupyterHub group an LDAP group DN is synced to: its first RDN value."""
    return parse_dn(dn)[0][1]


def _check_dn(value: str) -> str:
    try:
        parts = parse_dn(value)
    except LDAPInvalidDnError as e:
        raise ValueError(f"not a valid LDAP DN ({e})") from None
    if not parts:
        raise ValueError("not a valid LDAP DN (empty)")
    return value


DN = Annotated[str, AfterValidator(_check_dn)]

# What each pattern means, for error messages people can act on.
_PATTERN_HELP = {
    SLUG: "lowercase letters, digits and '-', at most 40, not starting or ending with '-'",
    BYTES: "a size such as 512M or 4G",
    K8S_QUANTITY: "a Kubernetes quantity such as 10Gi",
    URL: "an http:// or https:// URL",
    HOST: "a host name or IP address",
    NAME: "a name of letters, digits, '_', '.' and '-'",
    NO_SPACE: "a name without spaces",
    r"^/": "an absolute path",
    r"\{username\}": "a name containing {username}",
    TRAITLETS_CLASS: "a JupyterHub class name such as JupyterHub or Spawner",
    TRAIT_NAME: "a setting name such as start_timeout",
}


DATABASE_DRIVER = "postgresql+psycopg"


def _check_database_url(value: str) -> str:
    from sqlalchemy.engine import make_url  # JupyterHub's own dependency
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"not a database URL (expected {DATABASE_DRIVER}://USER@HOST:PORT/DATABASE)") from None
    # libpq also takes the password (or a password file) as URL parameters.
    if url.password is not None or {k.lower() for k in url.query} & {"password", "passfile"}:
        raise ValueError("must not carry a password (put it in hub.database.password_file)")
    if url.drivername != DATABASE_DRIVER:
        raise ValueError(f"must start with {DATABASE_DRIVER}:// (PostgreSQL through psycopg 3; "
                         f"got {url.drivername}://)")
    if not url.host or not url.database or not url.username:
        raise ValueError(f"needs a user, a host and a database: {DATABASE_DRIVER}://USER@HOST:PORT/DATABASE")
    return value


class Database(_Model):
    url: Annotated[str, AfterValidator(_check_database_url)] | None = Field(
        None,
        description="SQLAlchemy URL of the hub's PostgreSQL database, without the password, e.g. "
        "`postgresql+psycopg://slicerhub@db.example.org:5432/slicerhub`. Unset: SQLite in `hub.data_dir` "
        "(one hub machine; fine for a few hundred users).",
    )
    password_file: str | None = Field(
        None,
        description="File holding the database password, read when the hub starts (never put the "
        "password in this file). Unset: libpq's own `PGPASSWORD` / `~/.pgpass`, or no password.",
    )
    connect_timeout: int = Field(
        10, ge=1, le=300,
        description="Seconds to wait for the database server to answer before the hub gives up "
        "with an error (instead of hanging at start).",
    )

    @model_validator(mode="after")
    def _file_with_url(self):
        if self.password_file and not self.url:
            raise ValueError("password_file: only used with hub.database.url (SQLite has no password)")
        return self


class PublicTls(_Model):
    cert_file: str = Field(
        min_length=1,
        description="PEM certificate (with its intermediate certificates) the proxy presents on "
        "`hub.bind_url`; readable by the proxy's user.",
    )
    key_file: str = Field(
        min_length=1,
        description="PEM private key of `cert_file` (mode 0600, never in this repository or an image).",
    )


class HubSettings(_Model):
    bind_url: str = Field("http://127.0.0.1:8000", pattern=URL,
                          description="Where people reach SlicerHub: the proxy's public address. "
                          "https:// needs hub.tls, unless TLS ends in a reverse proxy in front "
                          "(then bind an http:// address on loopback).")
    tls: PublicTls | None = Field(
        None,
        description="The certificate and key the proxy serves `hub.bind_url` with (`https://` only; see "
        "[docs/operations.md, HTTPS](operations.md#https)). Unset: plain HTTP.",
    )
    data_dir: str = Field(
        "var/hub",
        description="Directory of the hub's state: its SQLite database (unless `hub.database.url` is set), "
        "cookie secret, proxy pid file and the courses and sharing audit logs. On Kubernetes it must "
        "be `/srv/jupyterhub` (the hub pod's volume).",
    )
    api_port: int = Field(
        8081, ge=1, le=65535,
        description="Port of the hub API, which user servers and the services call.",
    )
    proxy_api_port: int = Field(
        8001, ge=1, le=65535,
        description="Port of configurable-http-proxy's own API (loopback only).",
    )
    courses_port: int = Field(
        8002, ge=1, le=65535,
        description="Port of the courses service (gallery, publishing) on 127.0.0.1, reached through "
        "the proxy.",
    )
    sharing_port: int = Field(
        8003, ge=1, le=65535,
        description="Port of the sharing service (read-only links, teachers' \"join read-only\") on "
        "127.0.0.1, reached through the proxy.",
    )
    pacs_port: int = Field(
        8004, ge=1, le=65535,
        description="Port of the PACS gateway (\"Open in SlicerHub\" links, DICOMweb for user servers). "
        "On Docker it listens on the hub API's address, where user containers reach it.",
    )
    # Admission control for a class starting at once (benchmarks/README.md, "Class burst").
    concurrent_spawn_limit: int = Field(
        10, ge=1, le=10000,
        description="Servers starting at once; more starts get HTTP 429 + Retry-After and the person "
        "sees \"you are in the queue\", a page that asks again by itself. Raise it on Kubernetes, "
        "where a start mostly waits for its pod.",
    )
    spawn_retry_seconds: tuple[Annotated[int, Field(ge=1, le=600)], Annotated[int, Field(ge=1, le=600)]] = Field(
        (5, 15),
        description="`[min, max]` seconds: the Retry-After of that 429 is a random whole number of "
        "seconds in this range, about a start's duration (shorter: more refused retries cost the "
        "hub; longer: free slots stay unused).",
    )
    concurrent_login_limit: int = Field(
        2, ge=0, le=1000,
        description="Logins processed at once (LDAP and the hub's bookkeeping); the others wait their "
        "turn, costing nothing; `0`: no limit. Raise it (4-8) for a slow or remote directory, where a "
        "login mostly waits on LDAP.",
    )
    login_queue_seconds: float = Field(
        60.0, gt=0, le=300,
        description="Seconds a login may wait for its turn before the person sees \"many people are "
        "signing in, sign in again in 10 seconds\" (HTTP 503 + Retry-After).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="JupyterHub's log level: `DEBUG`, `INFO`, `WARNING` or `ERROR`.",
    )
    database: Database = Field(
        Database(),
        description="The hub's database: SQLite in `data_dir` (default) or PostgreSQL (several "
        "thousand users, Kubernetes; [docs/operations.md](operations.md) has backups and upgrades).",
    )

    @model_validator(mode="after")
    def _tls_matches_scheme(self):
        https = self.bind_url.startswith("https://")
        if https and self.tls is None:
            raise ValueError("tls: bind_url is https://, so give tls.cert_file and tls.key_file "
                             "(or bind http:// on loopback behind a TLS reverse proxy)")
        if self.tls is not None and not https:
            raise ValueError("tls: set, but bind_url is not https:// (the proxy would serve plain HTTP)")
        return self

    @model_validator(mode="after")
    def _retry_range(self):
        low, high = self.spawn_retry_seconds
        if low > high:
            raise ValueError(f"spawn_retry_seconds: {low} is more than {high} (give [min, max])")
        return self


class LdapTimeouts(_Model):
    connect: float = Field(5.0, gt=0, le=60, description="Seconds to open a connection to the directory.")
    receive: float = Field(
        10.0, gt=0, le=120,
        description="Seconds to wait for each reply from the directory (whole seconds are used).",
    )
    login: float = Field(
        20.0, gt=0, le=300,
        description="Overall seconds for one login; then the person sees \"directory not answering\". "
        "At least `connect`.",
    )

    @model_validator(mode="after")
    def _login_covers_one_round_trip(self):
        if self.login < self.connect:
            raise ValueError("login must be at least as long as connect")
        return self


class LdapLookup(_Model):
    search_base: DN = Field(description="DN under which the user's entry is searched for, e.g. "
                            "`ou=people,dc=uni,dc=edu`.")
    user_attribute: str = Field(
        "uid", pattern=r"^[A-Za-z][A-Za-z0-9-]*$",
        description="Attribute holding the login name: `uid`, or `sAMAccountName` for Active Directory.",
    )
    bind_dn: DN | None = Field(
        None,
        description="DN to bind as for the search (needs `bind_password_file`). Unset: search anonymously.",
    )
    bind_password_file: str | None = Field(
        None,
        description="File holding `bind_dn`'s password, read at login (the password never goes in this file).",
    )

    @model_validator(mode="after")
    def _password_with_dn(self):
        if self.bind_dn and not self.bind_password_file:
            raise ValueError("bind_dn needs bind_password_file (the password never goes in this file)")
        return self


class LdapGroups(_Model):
    admins: list[DN] = Field([], description="Group DNs whose members are hub admins (re-checked at every login).")
    teachers: list[DN] = Field(
        [], description="Group DNs of teachers (the `teacher` role: may list group membership; write "
        "their courses' `shared/` folder and publish apps).",
    )
    students: list[DN] = Field([], description="Group DNs of students.")
    allowed: list[DN] = Field(
        [], description="Group DNs whose members may log in at all; empty: every account in the directory.",
    )
    extra: list[DN] = Field([], description="More group DNs to sync into the hub (courses, projects).")

    @model_validator(mode="after")
    def _names_unique(self):
        by_name: dict[str, str] = {}
        for dn in self.all_dns():
            other = by_name.setdefault(group_name(dn), dn)
            if other != dn:
                raise ValueError(
                    f"groups: {other!r} and {dn!r} would both become hub group {group_name(dn)!r}"
                )
        return self

    def all_dns(self) -> list[str]:
        seen: dict[str, None] = {}
        for dn in [*self.admins, *self.teachers, *self.students, *self.allowed, *self.extra]:
            seen.setdefault(dn, None)
        return list(seen)

    def hub_group_names(self) -> set[str]:
        return {group_name(dn) for dn in self.all_dns()}


class LdapSettings(_Model):
    server: str = Field(
        min_length=1, pattern=HOST,
        description="Host name or IP address of the directory: the name its certificate was issued for.",
    )
    port: int | None = Field(
        None, ge=1, le=65535, description="Port of the directory. Unset: 389 (636 with `tls: on_connect`).",
    )
    tls: Literal["before_bind", "on_connect", "insecure"] = Field(
        "before_bind",
        description="`before_bind` (StartTLS), `on_connect` (LDAPS) or `insecure` (no TLS: loopback demos "
        "only); see [TLS to the directory](configuration.md#tls-to-the-directory).",
    )
    ca_file: str | None = Field(
        None,
        description="PEM file with the CA certificate(s) that signed the directory's certificate. "
        "Unset: the system's CAs.",
    )
    bind_dn_template: list[str] = Field(
        [],
        description="DNs to bind as, with `{username}`, e.g. `uid={username},ou=people,dc=uni,dc=edu`. "
        "Active Directory's `{username}@uni.edu` UPNs are not DNs: use `lookup`. Set this or `lookup`.",
    )
    lookup: LdapLookup | None = Field(
        None,
        description="Find the user's DN by a search instead of `bind_dn_template`. Set this or "
        "`bind_dn_template`.",
    )
    group_search_filter: str | None = Field(
        None,
        description="How group membership is tested; for nested Active Directory groups use "
        "`(member:1.2.840.113556.1.4.1941:={userdn})`. Unset: ldapauthenticator's "
        "`(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))`.",
    )
    groups: LdapGroups = Field(
        LdapGroups(),
        description="Groups synced into the hub at every login, each named after its DN's first RDN value.",
    )
    timeouts: LdapTimeouts = Field(LdapTimeouts(), description="Time limits of talking to the directory.")

    @field_validator("bind_dn_template")
    @classmethod
    def _templates(cls, values: list[str]) -> list[str]:
        for v in values:
            if "{username}" not in v:
                raise ValueError(f"{v!r} has no {{username}} placeholder")
            _check_dn(v.replace("{username}", "x"))
        return values

    @model_validator(mode="after")
    def _one_way_to_find_the_user(self):
        if bool(self.bind_dn_template) == bool(self.lookup):
            raise ValueError("set exactly one of bind_dn_template or lookup")
        return self


class DockerBackend(_Model):
    network: str = Field(
        "slicerhub", pattern=NAME,
        description="Bridge network of user containers (created if missing); the hub API listens on its gateway.",
    )
    remove: bool = Field(
        True,
        description="Remove containers on stop (homes live in volumes, so nothing is lost); false: "
        "`false`: keep and reuse them, replaced when the profile or image changed.",
    )
    home_volume: str = Field(
        "slicerhub-home-{username}", pattern=r"\{username\}",
        description="Name of the Docker volume holding each home; `{username}` is the user's name.",
    )
    container_prefix: str = Field(
        "slicerhub", pattern=NAME, description="Containers are named `<prefix>-<username>`.",
    )
    docker_host: str | None = Field(
        None, description="URL of the Docker engine, e.g. `tcp://host:2376`. Unset: the local socket.",
    )
    hub_connect_ip: str | None = Field(
        None, description="Address containers use to reach the hub API. Unset: the network's gateway.",
    )


class KubernetesBackend(_Model):
    namespace: str = Field("slicerhub", pattern=SLUG, description="Namespace of the user pods.")
    storage_class: str | None = Field(
        None, description="Storage class of the home PVCs. Unset: the cluster's default.",
    )
    home_size: str = Field(
        "10Gi", pattern=K8S_QUANTITY,
        description="Size of each home PVC (`slicerhub-home-<user>`, kept when the server is deleted).",
    )
    gpu_node_selector: dict[str, str] = Field(
        {}, description="Node labels the pods of GPU profiles must land on; `{}`: any node.",
    )
    gpu_toleration: bool = Field(
        True,
        description="Let the pods of GPU profiles tolerate the `nvidia.com/gpu` taint that GPU node pools "
        "usually carry.",
    )


class Backend(_Model):
    type: Literal["docker", "kubernetes"] = Field(
        "docker", description="Where user servers run: `docker` (one machine) or `kubernetes` (the Helm chart).",
    )
    docker: DockerBackend = Field(DockerBackend(), description="Settings of the docker backend.")
    kubernetes: KubernetesBackend = Field(KubernetesBackend(), description="Settings of the kubernetes backend.")


class Profile(_Model):
    slug: str = Field(
        pattern=SLUG, description="Short name of the profile: `a-z`, `0-9` and `-`, at most 40, unique.",
    )
    display_name: str = Field(min_length=1, max_length=80, description="Name the profile form shows.")
    description: str = Field("", description="Text the profile form shows under the name.")
    image: str = Field(
        min_length=1, pattern=NO_SPACE,
        description="User image, e.g. `registry.example.org/slicerhub/slicer-core:0.1.0`.",
    )
    cpu_limit: float | None = Field(None, gt=0, le=256, description="CPUs a server may use. Unset: no limit.")
    mem_limit: str | None = Field(
        None, pattern=BYTES, description="Memory a server may use, e.g. `4G`. Unset: no limit.",
    )
    gpus: int = Field(
        0, ge=0, le=16,
        description="NVIDIA GPUs per server (Docker `device_requests` / the `nvidia.com/gpu` limit, and "
        "`NVIDIA_DRIVER_CAPABILITIES=all`).",
    )
    groups: list[str] = Field(
        [],
        description="Hub groups (synced from LDAP) that may use the profile; empty: everyone. Admins "
        "may use all.",
    )
    default: bool = Field(False, description="Preselected in the form (at most one profile).")
    companions: list[Literal["orthanc", "monailabel"]] = Field(
        [],
        description="Services started and stopped with each server of this profile, beside it "
        "([docs/companions.md](companions.md)): `orthanc` (the user's own DICOM server), `monailabel` "
        "(MONAI Label). Their images are set under `companions`.",
    )

    @field_validator("companions")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each companion at most once")
        return value


COURSE = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"


class Storage(_Model):
    home_path: str = Field(
        "/home/slicer", pattern=r"^/",
        description="Home inside the user servers (the images' user `slicer`, UID 1000, GID 100).",
    )


class Courses(_Model):
    groups: list[str] = Field(
        [], max_length=500,
        description="Hub groups (synced from LDAP) that are courses (lower-case letters, digits, `-`): "
        "each gets a folder with `shared/` (teachers write, students read) and `apps/` (published Voilà "
        "apps). Empty: no courses, no courses service.",
    )
    root: str = Field(
        "var/courses", min_length=1,
        description="The folder with one subfolder per course. Docker: a directory on the hub's "
        "machine, bind-mounted into user containers. Kubernetes: where `claim` is mounted for the "
        "courses service.",
    )
    claim: str | None = Field(
        None, pattern=NAME,
        description="Kubernetes only: a ReadWriteMany PVC holding `root`; each course folder is a `subPath` of it.",
    )
    mount_path: str = Field(
        "/home/slicer/courses", pattern=r"^/",
        description="Where the course folders appear inside user servers; must be inside "
        "`storage.home_path`, so Voilà (serving the home) opens the apps.",
    )


class Sharing(_Model):
    enabled: bool = Field(
        True,
        description="Read-only links to a running session (JupyterHub share codes); `false`: no sharing "
        "service, and users cannot share.",
    )
    default_expiry: int = Field(
        3600, ge=60, le=31536000,
        description="Seconds a new link works unless the user picks another time (at most `max_expiry`).",
    )
    max_expiry: int = Field(
        86400, ge=60, le=31536000,
        description="The longest a link may work, in seconds (at most a year, JupyterHub's limit for codes).",
    )
    join_expiry: int = Field(
        7200, ge=60, le=86400,
        description="Seconds a teacher's access to a student's session lasts: a \"join read-only\", or the "
        "help the student accepted.",
    )
    sweep_every: float = Field(
        5.0, ge=1, le=300,
        description="Seconds between withdrawals of expired links: the bound on how long a viewer keeps "
        "access after expiry (revocation is immediate).",
    )


class Site(_Model):
    name: str = Field(
        "SlicerHub", min_length=1, max_length=60, pattern=r"^[^<>\x00-\x1f]+$",
        description="The name people see in page titles and the navigation bar (\"Radiology Teaching Hub\").",
    )
    logo: str | None = Field(
        None, min_length=1,
        description="An image file (PNG or SVG) for the navigation bar, on the hub's machine (Kubernetes: in "
        "the hub image or a mounted ConfigMap). Unset: SlicerHub's own logo.",
    )
    login_message: str | None = Field(
        None, max_length=2000,
        description="Text shown above the sign-in form (plain text; e.g. \"Sign in with your university "
        "account. Help: servicedesk@example.org\").",
    )


class Pacs(_Model):
    dicomweb_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$",
        description="The site's DICOMweb endpoint (QIDO-RS, WADO-RS), e.g. "
        "`https://pacs.example.org/dicom-web`. Unset: no PACS, no gateway.",
    )
    username: str | None = Field(
        None, min_length=1, max_length=200,
        description="HTTP basic-auth user the gateway logs in to the PACS with (users never see it).",
    )
    password_file: str | None = Field(
        None, min_length=1,
        description="File holding that user's password (read by the gateway at start; not in this file).",
    )
    groups: list[str] = Field(
        [], max_length=500,
        description="Hub groups (synced from LDAP) whose members may search and open studies; others get "
        "403. Required when `dicomweb_url` is set.",
    )
    timeout: float = Field(
        60.0, gt=0, le=600,
        description="Seconds one request to the PACS may take (a whole series is one request).",
    )
    streams_per_user: int = Field(
        4, ge=1, le=20,
        description="Requests to the PACS one person's server may have open at once (the gateway has 20 "
        "for everyone); more get 429 with Retry-After, so one notebook retrieving in parallel cannot "
        "hold the others up.",
    )

    @model_validator(mode="after")
    def _complete(self):
        if self.dicomweb_url and not self.groups:
            raise ValueError("groups: name the hub groups that may open studies (no one may otherwise)")
        if bool(self.username) != bool(self.password_file):
            raise ValueError("username and password_file go together")
        return self


class Companion(_Model):
    image: str = Field(
        min_length=1, pattern=NO_SPACE,
        description="The companion's image (built from `images/<name>/`), e.g. "
        "`registry.example.org/slicerhub/orthanc:0.1.0`.",
    )
    cpu_limit: float | None = Field(None, gt=0, le=256, description="CPUs it may use. Unset: no limit.")
    mem_limit: str | None = Field(
        None, pattern=BYTES, description="Memory it may use, e.g. `1G`. Unset: no limit.",
    )


class Companions(_Model):
    orthanc: Companion = Field(
        Companion(image="slicerhub/orthanc:dev", mem_limit="1G"),
        description="The user's own Orthanc (DICOMweb at `http://127.0.0.1:8042/dicom-web/` for their "
        "Slicer, Orthanc Explorer at `/user/<name>/orthanc/app/explorer.html`); its storage is in the home.",
    )
    monailabel: Companion = Field(
        Companion(image="slicerhub/monailabel:dev"),
        description="MONAI Label with the radiology app (`http://127.0.0.1:8000/` for Slicer, "
        "`/user/<name>/monailabel/` in the browser); its datastore is in the home. Built by "
        "`make monailabel-image`, not by `make images`.",
    )


class Culler(_Model):
    enabled: bool = Field(True, description="Run the idle culler; `false`: servers run until stopped.")
    # The minimum exceeds websocket pings (30 s) + JupyterHub.last_activity_interval (300 s).
    timeout: int = Field(
        3600, ge=360,
        description="Seconds idle before a server is stopped (at least 360: activity is reported every 300 s).",
    )
    every: int = Field(300, ge=10, description="Seconds between the culler's checks.")
    max_age: int = Field(
        0, ge=0, description="Stop servers older than this many seconds regardless of activity; `0`: never.",
    )
    concurrency: int = Field(10, ge=1, le=100, description="Hub API requests the culler makes in parallel.")


class SlicerHubConfig(_Model):
    hub: HubSettings = Field(HubSettings(), description="The hub, its proxy and its services: addresses, "
                             "ports, state, admission control.")
    site: Site = Field(Site(), description="What the pages show: the site's name, logo and sign-in message.")
    ldap: LdapSettings = Field(description="The LDAP directory people log in with and whose groups the hub syncs.")
    backend: Backend = Field(Backend(), description="Where user servers run: Docker or Kubernetes.")
    profiles: list[Profile] = Field(
        min_length=1, description="What people may start (image, resources, GPUs): at least one.",
    )
    storage: Storage = Field(Storage(), description="Where homes are inside user servers.")
    courses: Courses = Field(Courses(), description="Course folders and the courses service (published apps).")
    sharing: Sharing = Field(Sharing(), description="Read-only links to a running session and teachers' "
                             "\"join read-only\".")
    culler: Culler = Field(Culler(), description="The idle culler, which stops idle servers.")
    pacs: Pacs = Field(Pacs(), description="The site's PACS (DICOMweb) and who may open its studies in Slicer.")
    companions: Companions = Field(
        Companions(), description="Images and limits of the services a profile's `companions` start beside "
        "each server.",
    )
    jupyterhub: dict[Annotated[str, Field(pattern=TRAITLETS_CLASS)],
                     dict[Annotated[str, Field(pattern=TRAIT_NAME)], Any]] = Field(
        {},
        description="JupyterHub settings this file has no field for, as in `jupyterhub_config.py`: "
        "`{Class: {setting: value}}`, e.g. `{Spawner: {start_timeout: 300}}`. Checked against the real "
        "classes (the setting must exist and the value fit), applied after SlicerHub's own settings. "
        "A setting a field of this file controls is refused with the field's name.",
    )

    @model_validator(mode="after")
    def _profiles_consistent(self):
        slugs = [p.slug for p in self.profiles]
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        if dupes:
            raise ValueError(f"profiles: slug used twice: {', '.join(dupes)}")
        if sum(p.default for p in self.profiles) > 1:
            raise ValueError("profiles: at most one profile may be the default")
        known = self.ldap.groups.hub_group_names()
        for i, p in enumerate(self.profiles):
            for g in p.groups:
                if g not in known:
                    raise ValueError(
                        f"profiles[{i}].groups: {g!r} is not a group synced from LDAP "
                        f"(known: {', '.join(sorted(known)) or 'none'}; add its DN under ldap.groups)"
                    )
        for i, g in enumerate(self.courses.groups):
            if not re.match(COURSE, g):
                raise ValueError(f"courses.groups[{i}]: {g!r} cannot be a course name "
                                 "(1-40 lower-case letters, digits and '-')")
            if g not in known:
                raise ValueError(f"courses.groups[{i}]: {g!r} is not a group synced from LDAP "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
        if self.pacs.dicomweb_url and self.backend.type != "docker":
            raise ValueError("pacs: the PACS gateway runs on the docker backend only so far")
        for i, g in enumerate(self.pacs.groups):
            if g not in known:
                raise ValueError(f"pacs.groups[{i}]: {g!r} is not a group synced from LDAP "
                                 f"(known: {', '.join(sorted(known)) or 'none'})")
        if self.sharing.default_expiry > self.sharing.max_expiry:
            raise ValueError("sharing.default_expiry: must not exceed sharing.max_expiry")
        home = self.storage.home_path.rstrip("/") + "/"
        if self.courses.groups and not self.courses.mount_path.startswith(home):
            raise ValueError(f"courses.mount_path: must be inside storage.home_path ({home}), "
                             "where Voilà can open the apps")
        return self


def default_of(model: type[BaseModel], field: str) -> Any:
    """A field's default, for the classes and services the file configures:
    each default is written once, here, and they read it (not a copy)."""
    return model.model_fields[field].default


# --------------------------------------------------------------------- loading


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a mapping's key (not its value) being wrong
            out += " (the name)"
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the field at `loc`, for listing allowed keys."""
    model: Any = SlicerHubConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return model if isinstance(model, type) and issubclass(model, BaseModel) else None
        ann = field.annotation
        for candidate in getattr(ann, "__args__", ()) + (ann,):
            inner = getattr(candidate, "__args__", (candidate,))
            found = next(
                (c for c in (candidate, *inner) if isinstance(c, type) and issubclass(c, BaseModel)),
                None,
            )
            if found:
                model = found
                break
        else:
            return None
    return model


def format_errors(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = _path(loc)
        if e["type"] == "extra_forbidden":
            owner = _model_at(loc[:-1])
            allowed = ", ".join(owner.model_fields) if owner else "see docs/configuration.md"
            lines.append(f"{where}: unknown field (allowed here: {allowed})")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "string_pattern_mismatch":
            pattern = e["ctx"]["pattern"]
            msg = f"must be {_PATTERN_HELP[pattern]}" if pattern in _PATTERN_HELP else f"must match {pattern}"
        if e["type"] == "missing":
            lines.append(f"{where}: required field is missing")
            continue
        got = e.get("input")
        suffix = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        if "password" in msg:  # the rejected value may be one; never echo it
            suffix = ""
        # Whole-model checks name their own field in the message.
        if e["type"] == "value_error" and re.match(r"^[a-z_]+(\[\d+\])?[.:]", msg):
            lines.append(msg if where == "(top level)" else f"{where}: {msg}")
        else:
            lines.append(f"{where}: {msg}{suffix}")
    return lines


def parse_config(data: Any, source: str = "<config>") -> SlicerHubConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must be a YAML mapping (key: value) at the top level"])
    try:
        return SlicerHubConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, format_errors(e)) from None


def load_config(path: str | Path) -> SlicerHubConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read the file: {e.strerror}"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [f"not UTF-8 text (bad byte at offset {e.start})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(str(path), [f"{where}not valid YAML ({problem})"]) from None
    return parse_config(data, str(path))


def json_schema() -> dict[str, Any]:
    return SlicerHubConfig.model_json_schema()
