"""One machine: a container per user with DockerSpawner, a named volume as home."""

from __future__ import annotations

import asyncio

import docker
from docker.errors import NotFound
from dockerspawner import DockerSpawner
from traitlets import Unicode, default

from slicerhub.config import DockerBackend, default_of

from .base import PROFILE_LABEL, SlicerSpawner
from .companions import COMPANION_LABEL, KIND_LABEL, KINDS, USER, companion_env

IMAGE_LABEL = "org.slicerhub.image"
USER_LABEL = "org.slicerhub.user"


def gpu_host_config(gpus: int) -> dict:
    """Docker host-config for `gpus` NVIDIA GPUs (nothing for a CPU profile).

    Plain dicts, not docker.types.DeviceRequest: DockerSpawner re-renders the
    host config as dicts, and docker-py builds the DeviceRequest from these keys.
    """
    if not gpus:
        return {}
    return {"device_requests": [{"driver": "nvidia", "count": gpus, "capabilities": [["gpu"]]}]}


def ensure_network(name: str, client: docker.APIClient | None = None) -> str:
    """Create the bridge network for user containers if needed; return its gateway.

    The hub listens on that gateway address so containers can reach its API
    without the hub listening on every interface.
    """
    client = client or docker.APIClient(version="auto")
    found = client.networks(names=[name])
    net = next((n for n in found if n["Name"] == name), None)
    if net is None:
        client.create_network(name, driver="bridge", labels={"org.slicerhub.network": "users"})
    info = client.inspect_network(name)
    configs = info.get("IPAM", {}).get("Config") or []
    gateway = next((c["Gateway"] for c in configs if c.get("Gateway")), None)
    if not gateway:
        raise RuntimeError(f"Docker network {name!r} has no IPv4 gateway")
    return gateway


class SlicerDockerSpawner(SlicerSpawner, DockerSpawner):
    home_volume = Unicode(
        default_of(DockerBackend, "home_volume"), config=True, help="Named volume holding each user's home."
    )

    @default("prefix")
    def _prefix_default(self):
        return default_of(DockerBackend, "container_prefix")

    @default("network_name")
    def _network_default(self):
        return default_of(DockerBackend, "network")

    @default("use_internal_ip")
    def _internal_ip_default(self):
        return True

    @default("remove")
    def _remove_default(self):
        # Homes are volumes, so a stopped container holds nothing worth keeping;
        # removing it means every start uses the current image and profile.
        return default_of(DockerBackend, "remove")

    @default("pull_policy")
    def _pull_default(self):
        return "ifnotpresent"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # What the deployment configured; each start adds the profile to copies.
        self._configured_host_config = self.extra_host_config
        self._configured_create_kwargs = self.extra_create_kwargs
        self._events: list[dict] = []
        self._new_event = asyncio.Event()

    # --- progress shown on the spawn page -----------------------------------

    def _emit(self, progress: int, message: str) -> None:
        self._events.append({"progress": progress, "message": message})
        self._new_event.set()

    async def progress(self):
        seen = 0
        while True:
            self._new_event.clear()
            while seen < len(self._events):
                yield self._events[seen]
                seen += 1
            await self._new_event.wait()

    # --- profile → docker -----------------------------------------------------

    def home_volume_name(self) -> str:
        return self._render_templates(self.home_volume)

    async def apply_profile(self, profile: dict) -> None:
        self._events = []
        image = profile["image"]
        self.image = image
        self.cpu_limit = profile.get("cpu_limit")
        self.mem_limit = profile.get("mem_limit")
        self.volumes = {self.home_volume: self.home_path}
        self.read_only_volumes = {}
        if self.course_mounts():
            from slicerhub.courses.store import CourseStore

            store = CourseStore(self.courses["root"], self.courses["groups"])
            for m in self.course_mounts():
                store.ensure_course(m["course"])  # the folders exist before Docker binds them
                host = str(store.root / m["source"])
                self.volumes[host] = {"bind": m["target"], "mode": "ro" if m["read_only"] else "rw"}

        host_config = self._eval_if_callable(self._configured_host_config)
        if asyncio.iscoroutine(host_config):
            host_config = await host_config
        self.extra_host_config = {**host_config, **gpu_host_config(profile.get("gpus", 0))}

        create_kwargs = self._eval_if_callable(self._configured_create_kwargs)
        if asyncio.iscoroutine(create_kwargs):
            create_kwargs = await create_kwargs
        labels = {
            **create_kwargs.get("labels", {}),
            PROFILE_LABEL: profile["slug"],
            IMAGE_LABEL: image,
            USER_LABEL: self.user.name,
        }
        self.extra_create_kwargs = {**create_kwargs, "labels": labels}

    async def _image_id(self, image: str) -> str | None:
        try:
            return (await self.docker("inspect_image", image))["Id"]
        except NotFound:
            return None

    async def _remove_if_stale(self) -> None:
        """Replace a kept container made from another image or profile (#423)."""
        obj = await self.get_object()
        if obj is None:
            return
        labels = obj["Config"].get("Labels") or {}
        reasons = []
        if labels.get(PROFILE_LABEL) != self.profile["slug"]:
            reasons.append("profile changed")
        if obj.get("Image") != await self._image_id(self.image):
            reasons.append("image changed")
        if reasons:
            self.log.info("Replacing container %s: %s", self.container_name, ", ".join(reasons))
            self._emit(25, "Replacing your old container (" + ", ".join(reasons) + "); your files stay")
            if obj["State"].get("Running"):
                await self.docker("stop", obj["Id"])
            await self.remove_object()

    async def _ensure_home_volume(self) -> None:
        name = self.home_volume_name()
        try:
            await self.docker("inspect_volume", name)
            self._emit(20, "Found your home folder")
        except NotFound:
            await self.docker(
                "create_volume", name=name, labels={USER_LABEL: self.user.name, "org.slicerhub.kind": "home"}
            )
            self._emit(20, "Created your home folder")

    async def prepare_backend(self) -> None:
        await self._ensure_home_volume()
        if not self.remove:
            await self._remove_if_stale()
        self._emit(40, f"Starting your {self.profile['display_name']} container ({self.image})")

    async def start(self):
        ip_port = await super().start()
        await self._start_companions()
        self._emit(70, "Container running; waiting for JupyterLab to answer")
        return ip_port

    async def stop(self, now=False):
        # First: they live in the server's network namespace.
        await self._remove_companions()
        return await super().stop(now=now)

    # --- companions (spawners/companions.py) -----------------------------------

    def companion_name(self, kind: str) -> str:
        return f"{self.container_name}-{kind}"

    async def _remove_companions(self) -> None:
        """Remove every companion of this server, also those of an earlier
        profile or left by a crashed hub (found by label, not by profile)."""
        found = await self.docker("containers", all=True,
                                  filters={"label": f"{COMPANION_LABEL}={self.container_name}"})
        for c in found:
            try:
                await self.docker("remove_container", c["Id"], force=True)
            except NotFound:
                pass

    async def _start_companions(self) -> None:
        names = self.profile.get("companions", [])
        await self._remove_companions()  # a fresh server namespace needs fresh companions
        for kind in names:
            spec = self.companion_specs[kind]
            self._emit(60, f"Starting {KINDS[kind].title} beside your server")
            await self.pull_image(spec["image"])
            host_config = {
                "network_mode": f"container:{self.container_id}",
                "binds": {self.home_volume_name(): {"bind": self.home_path, "mode": "rw"}},
                "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5},
                "security_opt": ["no-new-privileges"],
                "cap_drop": ["ALL"],
            }
            if spec.get("mem_limit"):
                host_config["mem_limit"] = spec["mem_limit"]
            if spec.get("cpu_limit"):
                host_config["nano_cpus"] = int(spec["cpu_limit"] * 1e9)
            created = await self.docker(
                "create_container", image=spec["image"], name=self.companion_name(kind), user=USER,
                environment=companion_env(kind, self.home_path),
                labels={COMPANION_LABEL: self.container_name, KIND_LABEL: kind, USER_LABEL: self.user.name},
                host_config=self.client.create_host_config(**host_config),
            )
            await self.docker("start", created["Id"])
            self.log.info("Started companion %s for %s", self.companion_name(kind), self.user.name)
