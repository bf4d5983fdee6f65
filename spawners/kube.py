"""A cluster: a pod per user with KubeSpawner, a PVC per user as home."""

from __future__ import annotations

from kubespawner import KubeSpawner
from traitlets import Bool, Dict, Unicode, default

from slicerhub.config import KubernetesBackend, default_of

from .base import PROFILE_LABEL, SlicerSpawner
from .companions import kube_container

GPU_RESOURCE = "nvidia.com/gpu"
# GPU node pools are usually tainted so that only GPU pods land there.
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


class SlicerKubeSpawner(SlicerSpawner, KubeSpawner):
    gpu_toleration = Bool(default_of(KubernetesBackend, "gpu_toleration"), config=True,
                          help="Tolerate the nvidia.com/gpu taint on GPU pods.")
    gpu_node_selector = Dict(
        Unicode(), config=True, help="Node labels a GPU pod must land on, e.g. a GPU node pool."
    )

    @default("pvc_name_template")
    def _pvc_name_default(self):
        return "slicerhub-home-{user_server}"

    @default("pod_name_template")
    def _pod_name_default(self):
        return "slicerhub-{user_server}"

    @default("storage_pvc_ensure")
    def _pvc_ensure_default(self):
        return True

    @default("storage_capacity")
    def _capacity_default(self):
        return default_of(KubernetesBackend, "home_size")

    @default("uid")
    def _uid_default(self):
        return 1000

    @default("fs_gid")
    def _fs_gid_default(self):
        # The volume is made group-writable for the user's group (users, 100),
        # so a fresh PVC is never owned by root only.
        return 100

    @default("delete_pvc")
    def _delete_pvc_default(self):
        # Deleting a user's server must not delete their home.
        return False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._configured = {
            name: getattr(self, name)
            for name in ("node_selector", "tolerations", "extra_resource_limits",
                         "extra_resource_guarantees", "extra_labels", "volumes", "volume_mounts",
                         "extra_containers")
        }

    async def load_user_options(self):
        # KubeSpawner reads user_options["profile"] against its own
        # profile_list; our profiles are chosen and applied in start().
        return None

    async def apply_profile(self, profile: dict) -> None:
        base = self._configured
        self.image = profile["image"]
        self.cpu_limit = profile.get("cpu_limit")
        self.mem_limit = profile.get("mem_limit")
        gpus = profile.get("gpus", 0)
        gpu = {GPU_RESOURCE: str(gpus)} if gpus else {}
        self.extra_resource_limits = {**base["extra_resource_limits"], **gpu}
        self.extra_resource_guarantees = {**base["extra_resource_guarantees"], **gpu}
        self.tolerations = list(base["tolerations"]) + (
            [GPU_TOLERATION] if gpus and self.gpu_toleration else []
        )
        self.node_selector = {**base["node_selector"], **(self.gpu_node_selector if gpus else {})}
        self.extra_labels = {**base["extra_labels"], PROFILE_LABEL: profile["slug"]}

        volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
        mounts = [{"name": "home", "mountPath": self.home_path}]
        course_mounts = self.course_mounts()
        if course_mounts and self.courses.get("claim"):
            # One ReadWriteMany claim for all courses; each folder is a subPath of it.
            volumes.append({"name": "courses", "persistentVolumeClaim": {"claimName": self.courses["claim"]}})
            mounts += [{"name": "courses", "mountPath": m["target"], "subPath": m["source"],
                        "readOnly": m["read_only"]} for m in course_mounts]
        elif course_mounts:
            self.log.warning("courses.claim is not set: no course folders mounted for %s", self.user.name)
        self.volumes = list(base["volumes"]) + volumes
        self.volume_mounts = list(base["volume_mounts"]) + mounts
        # Containers of the pod share its network: the companions' loopback is the server's.
        self.extra_containers = list(base["extra_containers"]) + [
            kube_container(kind, self.companion_specs[kind], self.home_path)
            for kind in profile.get("companions", [])]
