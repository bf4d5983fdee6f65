"""The Slicer options both backends share: profiles, the form, storage, GPU env."""

from __future__ import annotations

from jupyterhub import orm
from jupyterhub.spawner import Spawner
from tornado import web
from traitlets import Bool, Dict, List, Unicode, default

from slicerhub.config import Storage, default_of

from .companions import server_env
from .profiles import ProfileError, choose_profile, render_form, visible_profiles

PROFILE_LABEL = "org.slicerhub.profile"
# What a server's $JUPYTERHUB_API_TOKEN carries on top of the `server` role
# when the deployment has courses: JupyterLab's "Publish to a Course…" goes
# through the server (slicerhub_server.publish), which calls the courses
# service with this token. The hub keeps it only because the user role holds
# it (slicerhub.traitlets_config._user_role); the service then checks, as for
# any token, that its owner teaches the course.
COURSES_ACCESS = "access:services!service=courses"
# ... and, where sessions can be shared: reading its own server's shares. A
# guest's level there (read-only or collaborate) is the share's; the guard
# (slicerhub_server.guard) looks it up, because the hub does not put a
# share's scopes on the guest's OAuth token (only the guest's role scopes).
SHARES_READ = "read:shares!server"
# What a start request may choose (user_options keys).
START_OPTIONS = {"profile"}


class SlicerSpawner(Spawner):
    """Mixin (first in the MRO) for DockerSpawner and KubeSpawner subclasses.

    Backends implement `apply_profile(profile)` to turn the chosen profile into
    their own traits (image, limits, GPU requests).
    """

    profiles = List(
        Dict(),
        config=True,
        help="Validated profiles from the deployment file (slicerhub.config.Profile dicts).",
    )
    home_path = Unicode(default_of(Storage, "home_path"), config=True,
                        help="Home directory inside the container.")
    courses = Dict(
        config=True,
        help="Course folders: {'groups': [...], 'root': path, 'claim': PVC or None, "
        "'mount_path': path}, or {} for none.",
    )
    teacher_groups = List(Unicode(), config=True, help="Hub groups whose members teach their courses.")
    pacs_url = Unicode("", config=True,
                       help="The PACS gateway as servers reach it ('' for no PACS): $SLICERHUB_PACS_URL, "
                       "called with the server's own API token (DICOMweb under dicom-web/, tickets).")

    shared_access = Bool(False, config=True,
                         help="Whether servers may be shared (the deployment's sharing.enabled): "
                         "their API token then reads their own shares (SHARES_READ).")
    courses_url = Unicode("", config=True,
                          help="The courses service as servers reach it ('' for no courses): "
                          "$SLICERHUB_COURSES_URL, called with the server's own API token (publishing "
                          "from JupyterLab).")

    companion_specs = Dict(
        config=True,
        help="Images and limits of the companions profiles may name: {name: {'image': ..., "
        "'cpu_limit': ..., 'mem_limit': ...}} (slicerhub.config.Companions).",
    )

    profile: dict = {}

    @default("server_token_scopes")
    def _server_token_scopes_default(self):
        return token_scopes

    # --- who may use what -------------------------------------------------

    def _groups(self) -> list[str]:
        return [g.name for g in self.user.groups]

    def _admin(self) -> bool:
        return bool(getattr(self.user, "admin", False))

    def _choose(self, slug: str | None) -> dict:
        try:
            return dict(choose_profile(self.profiles, self._groups(), self._admin(), slug))
        except ProfileError as e:
            err = web.HTTPError(e.status, e.message)
            err.jupyterhub_message = e.message  # what the spawn page shows
            raise err from None

    @default("options_form")
    def _options_form_default(self):
        def form(spawner):
            mine = visible_profiles(spawner.profiles, spawner._groups(), spawner._admin())
            if len(mine) < 2:
                return ""  # nothing to choose: start straight away
            selected = spawner.user_options.get("profile") or spawner._choose(None)["slug"]
            return render_form(mine, selected)

        return form

    @default("options_from_form")
    def _options_from_form_default(self):
        def parse(formdata):
            slug = (formdata.get("profile") or [""])[0]
            # Refuse a forged choice here already, before anything starts.
            return {"profile": self._choose(slug)["slug"]}

        return parse

    # --- course folders ------------------------------------------------------

    def course_mounts(self) -> list[dict]:
        """The course folders this user gets, for the backends to mount.

        Per course the user is in: ``shared`` (writable for teachers,
        read-only for students) and ``apps`` (read-only for everyone: only the
        courses service publishes).  ``source`` is relative to the courses root.
        """
        if not self.courses:
            return []
        groups = set(self._groups())
        teacher = bool(groups & set(self.teacher_groups))
        mounts = []
        for course in sorted(groups & set(self.courses["groups"])):
            for part, writable in (("shared", teacher), ("apps", False)):
                mounts.append({
                    "course": course, "source": f"{course}/{part}",
                    "target": f"{self.courses['mount_path'].rstrip('/')}/{course}/{part}",
                    "read_only": not writable,
                })
        return mounts

    # --- start ------------------------------------------------------------

    def profile_env(self, profile: dict) -> dict[str, str]:
        env = {
            "SLICERHUB_PROFILE": profile["slug"],
            "SLICERHUB_GPUS": str(profile.get("gpus", 0)),
        }
        if profile.get("gpus"):
            # OpenGL/EGL in the container needs the graphics capability too.
            env["NVIDIA_DRIVER_CAPABILITIES"] = "all"
        return env

    def get_env(self):
        env = super().get_env()
        if self.pacs_url:
            env["SLICERHUB_PACS_URL"] = self.pacs_url
        if self.courses_url:
            env["SLICERHUB_COURSES_URL"] = self.courses_url
        if self.profile:
            env.update(self.profile_env(self.profile))
            env.update(server_env(self.profile.get("companions", [])))
        return env

    async def apply_profile(self, profile: dict) -> None:
        """Set the backend's traits from `profile`; called before every start.

        Implementations must derive every value afresh (not add to what the
        last start set), so that switching profiles leaves nothing behind.
        """
        raise NotImplementedError

    async def prepare_backend(self) -> None:
        """The backend's own work before it starts the server (volumes, old
        containers); the profile is applied by then."""

    async def prepare(self) -> None:
        """Everything a start does before the backend starts the server.

        user_options come from the form or straight from the REST API: both
        are checked here, against the groups the user has now.
        """
        try:
            unknown = sorted(set(self.user_options) - START_OPTIONS)
            if unknown:
                # The backends read some keys themselves (DockerSpawner: "image"),
                # past the profile checks: nothing but the profile gets through.
                err = web.HTTPError(400, f"Unknown start option(s): {', '.join(map(str, unknown))[:200]}; "
                                    "only 'profile' can be chosen.")
                err.jupyterhub_message = err.log_message
                raise err
            self.profile = self._choose(self.user_options.get("profile"))
        except web.HTTPError:
            self._forget_refused_options()
            raise
        await self.apply_profile(self.profile)
        await self.prepare_backend()

    def _forget_refused_options(self) -> None:
        # JupyterHub saves the options of every start request as the defaults
        # of the next start without options (the spawn page when there is no
        # form, the admin page's start): a refused choice kept there would
        # refuse every later start too. The next start uses the default profile.
        self.user_options = {}
        orm = self.orm_spawner
        if orm is not None and orm.user_options:
            orm.user_options = {}
            self.db.commit()

    # JupyterHub insists every Spawner subclass defines these; the backend
    # after us in the MRO does the work.
    async def stop(self, now=False):
        return await super().stop(now=now)

    async def poll(self):
        return await super().poll()

    async def start(self):
        await self.prepare()
        return await super().start()


def server_role_scopes(db) -> list[str]:
    """The `server` role's scopes as the hub holds them (its default, or load_roles')."""
    role = orm.Role.find(db, "server")
    return list(role.scopes) if role is not None else []


def token_scopes(spawner) -> list[str]:
    """Spawner.server_token_scopes: the `server` role, plus the courses service
    where the deployment has courses and the server can reach it, plus its own
    shares where sessions can be shared."""
    scopes = server_role_scopes(spawner.user.db)
    if spawner.courses and spawner.courses_url and COURSES_ACCESS not in scopes:
        scopes.append(COURSES_ACCESS)
    if spawner.shared_access and SHARES_READ not in scopes:
        scopes.append(SHARES_READ)
    return scopes
