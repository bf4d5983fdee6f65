"""Real spawner objects, no hub, no Docker engine, no cluster.

Docker: every docker-py call goes through `spawner.docker(method, ...)`; we
answer those from a small in-memory engine, while `spawner.client` is a real
docker.APIClient so `create_host_config` is docker-py's own code.

Kubernetes: KubeSpawner(_mock=True) and its real manifest builders; only the
cluster client set-up is replaced.
"""

from __future__ import annotations

import itertools

import docker
import kubespawner.spawner as kubespawner_module
import pytest
import requests
from docker.errors import NotFound
from tornado import web

from slicerhub.config import parse_config
from slicerhub.spawners.base import PROFILE_LABEL
from slicerhub.spawners.docker import IMAGE_LABEL, USER_LABEL, SlicerDockerSpawner, gpu_host_config

from .helpers import demo_data, make_hub, make_user, traitlets_config
from tests.support.kube_json import plain

GiB = 1024**3
TEACHER = ("teachers", "anat101")
STUDENT = ("students", "anat101")


# ============================================================== Docker


class FakeEngine:
    """Just enough of the Docker engine API for DockerSpawner.start()."""

    def __init__(self, network: str):
        self.network = network
        self.calls: list[tuple[str, tuple, dict]] = []
        self.images = {"slicerhub/slicer-core:dev": "sha256:base1", "slicerhub/base:next": "sha256:next1"}
        self.volumes: dict[str, dict] = {}
        self.containers: dict[str, dict] = {}
        self._ids = itertools.count(1)

    @staticmethod
    def _not_found(what):
        response = requests.Response()
        response.status_code = 404
        return NotFound(f"No such object: {what}", response=response)

    def _find(self, ref):
        for c in self.containers.values():
            if ref in (c["Id"], c["Name"]):
                return c
        raise self._not_found(ref)

    async def __call__(self, method, *args, **kwargs):
        self.calls.append((method, args, kwargs))
        return getattr(self, "do_" + method)(*args, **kwargs)

    def created(self, companions: bool = False) -> list[dict]:
        """The create_container calls: the servers', and their companions' if asked."""
        return [kw for m, _, kw in self.calls if m == "create_container"
                and (companions or "org.slicerhub.companion-of" not in kw.get("labels", {}))]

    def methods(self) -> list[str]:
        return [m for m, _, _ in self.calls]

    # --- the API ---------------------------------------------------------
    def do_inspect_image(self, image):
        if image not in self.images:
            raise self._not_found(image)
        return {"Id": self.images[image], "Config": {"Cmd": ["start-slicer.sh"]}}

    def do_pull(self, repo, tag):
        self.images[f"{repo}:{tag}"] = "sha256:pulled"

    def do_inspect_volume(self, name):
        if name not in self.volumes:
            raise self._not_found(name)
        return self.volumes[name]

    def do_create_volume(self, name, labels=None):
        self.volumes[name] = {"Name": name, "Labels": labels or {}}
        return self.volumes[name]

    def do_inspect_container(self, ref):
        return self._find(ref)

    def do_create_container(self, **kwargs):
        cid = f"{next(self._ids):064x}"
        self.containers[cid] = {
            "Id": cid,
            "Name": kwargs["name"],
            "Image": self.images[kwargs["image"]],
            "Config": {
                "Labels": kwargs.get("labels", {}),
                "Env": [f"{k}={v}" for k, v in kwargs["environment"].items()],
            },
            "State": {"Running": False},
            "NetworkSettings": {"Networks": {self.network: {"IPAddress": "10.99.0.5"}}},
        }
        return {"Id": cid, "Warnings": []}

    def do_start(self, ref):
        self._find(ref)["State"]["Running"] = True

    def do_stop(self, ref):
        self._find(ref)["State"]["Running"] = False

    def do_remove_container(self, ref, v=False, force=False):
        del self.containers[self._find(ref)["Id"]]

    def do_containers(self, all=False, filters=None):
        key, _, value = (filters or {}).get("label", "").partition("=")
        return [{"Id": c["Id"]} for c in self.containers.values()
                if not key or c["Config"]["Labels"].get(key) == value]


def docker_deployment(**docker_settings):
    data = demo_data()
    data["backend"]["docker"].update({"network": "labnet", **docker_settings})
    return parse_config(data)


@pytest.fixture
def docker_client(monkeypatch):
    # A real docker-py client; creating it contacts no daemon.
    client = docker.APIClient(version="1.43")
    monkeypatch.setattr(SlicerDockerSpawner, "_client", client, raising=False)
    yield client
    client.close()


@pytest.fixture
def make_docker_spawner(docker_client, tmp_path):
    def make(groups=TEACHER, admin=False, name="alice", cfg=None, extra=None):
        c = traitlets_config(cfg or docker_deployment())
        if c.SlicerSpawner.courses:  # course folders are made on start: keep them in tmp_path
            c.SlicerSpawner.courses = {**c.SlicerSpawner.courses, "root": str(tmp_path / "courses")}
        for trait, value in (extra or {}).items():
            setattr(c.SlicerDockerSpawner, trait, value)
        spawner = SlicerDockerSpawner(
            user=make_user(name, groups=groups, admin=admin), hub=make_hub(), config=c
        )
        engine = FakeEngine(c.SlicerDockerSpawner.network_name)
        spawner.docker = engine
        assert spawner.client is docker_client
        return spawner, engine

    return make


async def create_with(spawner, engine, slug):
    """What start() does before docker.create_container, then create it."""
    spawner.user_options = {"profile": slug} if slug else {}
    await spawner.prepare()
    await spawner.create_object()
    return engine.created()[-1]


def form_options(spawner, slug):
    return spawner.run_options_from_form({"profile": [slug]})


# ------------------------------------------------------------ form


async def test_docker_form_shows_only_allowed_profiles(make_docker_spawner):
    spawner, _ = make_docker_spawner(groups=TEACHER)
    html = await spawner.get_options_form()
    assert 'value="standard"' in html and 'value="teacher"' in html and 'value="gpu"' in html
    # the default one is pre-selected
    assert html.index('value="standard"') < html.index("checked") < html.index('value="teacher"')


async def test_docker_form_preselects_last_choice(make_docker_spawner):
    spawner, _ = make_docker_spawner(groups=TEACHER)
    spawner.user_options = {"profile": "gpu"}
    html = await spawner.get_options_form()
    assert html.index('value="gpu"') < html.index("checked")


async def test_docker_form_hides_profiles_of_other_groups(make_docker_spawner):
    data = demo_data()
    data["backend"]["docker"]["network"] = "labnet"
    data["profiles"][1]["groups"] = []  # "teacher" open to all; "gpu" still teachers only
    spawner, _ = make_docker_spawner(groups=STUDENT, cfg=parse_config(data))
    html = await spawner.get_options_form()
    assert 'value="standard"' in html and 'value="teacher"' in html
    assert 'value="gpu"' not in html and "Slicer (GPU)" not in html


async def test_docker_form_is_empty_with_one_profile(make_docker_spawner):
    spawner, _ = make_docker_spawner(groups=STUDENT)
    assert await spawner.get_options_form() == ""


async def test_docker_form_admin_sees_all(make_docker_spawner):
    spawner, _ = make_docker_spawner(groups=(), admin=True)
    html = await spawner.get_options_form()
    assert all(f'value="{s}"' in html for s in ("standard", "teacher", "gpu"))


@pytest.mark.parametrize("slug", ["gpu", "teacher"])
def test_docker_forged_profile_is_403(make_docker_spawner, slug):
    spawner, engine = make_docker_spawner(groups=STUDENT)
    with pytest.raises(web.HTTPError) as info:
        form_options(spawner, slug)
    assert info.value.status_code == 403
    assert slug in info.value.log_message
    assert getattr(info.value, "jupyterhub_message", info.value.log_message) == info.value.log_message
    assert engine.calls == []


def test_docker_unknown_profile_is_400(make_docker_spawner):
    spawner, _ = make_docker_spawner(groups=TEACHER)
    with pytest.raises(web.HTTPError) as info:
        form_options(spawner, "quantum")
    assert info.value.status_code == 400


def test_docker_options_from_form(make_docker_spawner):
    spawner, _ = make_docker_spawner(groups=TEACHER)
    assert form_options(spawner, "gpu") == {"profile": "gpu"}
    assert spawner.run_options_from_form({}) == {"profile": "standard"}
    assert spawner.run_options_from_form({"profile": [""]}) == {"profile": "standard"}


async def test_docker_start_refuses_forged_api_options(make_docker_spawner):
    # The REST API sets user_options without the form: start() checks again.
    spawner, engine = make_docker_spawner(groups=STUDENT)
    spawner.user_options = {"profile": "gpu"}
    with pytest.raises(web.HTTPError) as info:
        await spawner.start()
    assert info.value.status_code == 403
    assert "create_container" not in engine.methods()


# ------------------------------------------------------------ create


async def test_docker_gpu_profile(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=TEACHER)
    kw = await create_with(spawner, engine, "gpu")
    hc = kw["host_config"]
    (req,) = hc["DeviceRequests"]
    assert req["Capabilities"] == [["gpu"]]
    assert req["Count"] == 1
    assert req["Driver"] == "nvidia"
    env = kw["environment"]
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "all"
    assert env["SLICERHUB_PROFILE"] == "gpu" and env["SLICERHUB_GPUS"] == "1"
    assert hc["Memory"] == 4 * GiB
    assert hc["CpuPeriod"] == 100_000 and hc["CpuQuota"] == 200_000
    assert kw["image"] == "slicerhub/slicer-core:dev"


async def test_docker_cpu_profile_has_no_gpu(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=STUDENT)
    kw = await create_with(spawner, engine, "standard")
    assert "DeviceRequests" not in kw["host_config"]
    assert not any(k.startswith("NVIDIA") for k in kw["environment"])
    assert kw["environment"]["SLICERHUB_GPUS"] == "0"
    assert kw["host_config"]["Memory"] == 2 * GiB
    assert kw["host_config"]["CpuQuota"] == 100_000


async def test_docker_switching_gpu_to_cpu_leaves_no_gpu(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=TEACHER)
    gpu = await create_with(spawner, engine, "gpu")
    cpu = await create_with(spawner, engine, "teacher")
    assert gpu["host_config"]["DeviceRequests"]
    assert "DeviceRequests" not in cpu["host_config"]
    assert not any(k.startswith("NVIDIA") for k in cpu["environment"])
    assert cpu["labels"][PROFILE_LABEL] == "teacher"
    assert spawner.extra_host_config == {}
    # and back again: exactly one device request, not two
    again = await create_with(spawner, engine, "gpu")
    assert len(again["host_config"]["DeviceRequests"]) == 1


async def test_docker_switching_keeps_configured_extras(make_docker_spawner):
    spawner, engine = make_docker_spawner(
        groups=TEACHER,
        extra={
            "extra_host_config": {"shm_size": "1g"},
            "extra_create_kwargs": {"labels": {"org.example.team": "radiology"}},
        },
    )
    for slug in ("gpu", "standard", "gpu"):
        kw = await create_with(spawner, engine, slug)
        assert kw["host_config"]["ShmSize"] == 1024**3
        assert kw["labels"]["org.example.team"] == "radiology"
        assert kw["labels"][PROFILE_LABEL] == slug
    assert spawner._configured_host_config == {"shm_size": "1g"}


async def test_docker_volumes_labels_and_network(make_docker_spawner, tmp_path):
    spawner, engine = make_docker_spawner(groups=STUDENT)
    kw = await create_with(spawner, engine, "standard")
    hc = kw["host_config"]
    course = tmp_path / "courses" / "anat101"
    # A student reads the course's shared folder and its apps; writes neither.
    assert sorted(hc["Binds"]) == sorted(
        [
            "slicerhub-home-alice:/home/slicer:rw",
            f"{course}/shared:/home/slicer/courses/anat101/shared:ro",
            f"{course}/apps:/home/slicer/courses/anat101/apps:ro",
        ]
    )
    assert (course / "shared").is_dir() and (course / "apps").is_dir()
    assert hc["NetworkMode"] == "labnet"
    assert kw["labels"] == {
        PROFILE_LABEL: "standard",
        IMAGE_LABEL: "slicerhub/slicer-core:dev",
        USER_LABEL: "alice",
    }
    assert kw["name"] == "slicerhub-alice"
    assert kw["environment"]["JUPYTERHUB_USER"] == "alice"
    assert kw["environment"]["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert kw["ports"] == {"8888/tcp": None}
    assert hc["AutoRemove"] is True
    assert spawner.home_volume_name() == "slicerhub-home-alice"


async def test_docker_teacher_writes_the_course_shared_folder_not_its_apps(make_docker_spawner, tmp_path):
    spawner, engine = make_docker_spawner(groups=TEACHER)
    binds = (await create_with(spawner, engine, "standard"))["host_config"]["Binds"]
    course = tmp_path / "courses" / "anat101"
    assert f"{course}/shared:/home/slicer/courses/anat101/shared:rw" in binds
    assert f"{course}/apps:/home/slicer/courses/anat101/apps:ro" in binds


async def test_docker_user_outside_every_course_binds_only_home(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=("students",))
    kw = await create_with(spawner, engine, "standard")
    assert kw["host_config"]["Binds"] == ["slicerhub-home-alice:/home/slicer:rw"]


async def test_docker_without_courses_binds_only_home(make_docker_spawner):
    data = demo_data()
    data["backend"]["docker"]["network"] = "labnet"
    del data["courses"]
    spawner, engine = make_docker_spawner(groups=STUDENT, cfg=parse_config(data))
    kw = await create_with(spawner, engine, "standard")
    assert kw["host_config"]["Binds"] == ["slicerhub-home-alice:/home/slicer:rw"]


async def test_docker_home_volume_template_and_prefix_from_file(make_docker_spawner):
    cfg = docker_deployment(home_volume="homes-{username}", container_prefix="lab")
    spawner, engine = make_docker_spawner(groups=STUDENT, name="bob", cfg=cfg)
    kw = await create_with(spawner, engine, "standard")
    assert "homes-bob:/home/slicer:rw" in kw["host_config"]["Binds"]
    assert kw["name"] == "lab-bob"


def test_gpu_host_config():
    assert gpu_host_config(0) == {}
    assert gpu_host_config(2) == {
        "device_requests": [{"driver": "nvidia", "count": 2, "capabilities": [["gpu"]]}]
    }


# ------------------------------------------------------------- start


async def test_docker_full_start_creates_home_and_container(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=TEACHER)
    spawner.user_options = form_options(spawner, "gpu")
    ip, port = await spawner.start()
    assert (ip, port) == ("10.99.0.5", 8888)
    assert engine.volumes["slicerhub-home-alice"]["Labels"][USER_LABEL] == "alice"
    (kw,) = engine.created()
    assert kw["host_config"]["DeviceRequests"][0]["Count"] == 1
    assert engine.methods().index("create_volume") < engine.methods().index("create_container")
    assert "start" in engine.methods()
    messages = [e["message"] for e in spawner._events]
    assert messages[0] == "Created your home folder"
    assert any("Slicer (GPU)" in m for m in messages)


async def test_docker_second_start_reuses_home_and_switches_profile(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=TEACHER)
    spawner.user_options = {"profile": "gpu"}
    await spawner.start()
    await spawner.stop()
    assert engine.containers == {}  # remove=True
    spawner.user_options = {"profile": "standard"}
    await spawner.start()
    assert engine.methods().count("create_volume") == 1
    first, second = engine.created()
    assert "DeviceRequests" in first["host_config"]
    assert "DeviceRequests" not in second["host_config"]
    assert "NVIDIA_DRIVER_CAPABILITIES" not in second["environment"]
    assert spawner._events[0]["message"] == "Found your home folder"


async def test_docker_kept_container_is_replaced_when_profile_changes(make_docker_spawner):
    cfg = docker_deployment(remove=False)
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=cfg)
    spawner.user_options = {"profile": "gpu"}
    await spawner.start()
    await spawner.stop()
    assert len(engine.containers) == 1  # kept
    spawner.user_options = {"profile": "teacher"}
    await spawner.start()
    assert len(engine.created()) == 2
    (kept,) = [c for c in engine.containers.values() if c["Name"] == "slicerhub-alice"]
    assert kept["Config"]["Labels"][PROFILE_LABEL] == "teacher"
    assert any("profile changed" in e["message"] for e in spawner._events)


async def test_docker_kept_container_is_reused_for_same_profile_and_image(make_docker_spawner):
    cfg = docker_deployment(remove=False)
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=cfg)
    spawner.user_options = {"profile": "standard"}
    await spawner.start()
    await spawner.stop()
    await spawner.start()
    assert len(engine.created()) == 1
    assert "remove_container" not in engine.methods()


async def test_docker_kept_container_is_replaced_when_image_changes(make_docker_spawner):
    cfg = docker_deployment(remove=False)
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=cfg)
    spawner.user_options = {"profile": "teacher"}
    await spawner.start()
    await spawner.stop()
    engine.images["slicerhub/slicer-core:dev"] = "sha256:rebuilt"
    await spawner.start()
    assert len(engine.created()) == 2
    assert any("image changed" in e["message"] for e in spawner._events)


# ------------------------------------------------------------- companions


def with_companions(cfg_data=None, **profile_changes):
    data = cfg_data or demo_data()
    data["backend"]["docker"]["network"] = "labnet"
    teacher = next(p for p in data["profiles"] if p["slug"] == "teacher")
    teacher.update({"companions": ["orthanc"], **profile_changes})
    return parse_config(data)


async def test_docker_companion_runs_in_the_server_namespace_with_the_home(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=with_companions())
    spawner.user_options = {"profile": "teacher"}
    await spawner.start()
    server, orthanc = engine.created(companions=True)
    assert server["name"] == "slicerhub-alice"
    assert server["environment"]["SLICERHUB_COMPANIONS"] == "orthanc=8042"
    assert server["environment"]["SLICERHUB_ORTHANC_URL"] == "http://127.0.0.1:8042"
    assert orthanc["name"] == "slicerhub-alice-orthanc"
    assert orthanc["image"] == "slicerhub/orthanc:dev"
    assert orthanc["user"] == "1000:100"
    hc = orthanc["host_config"]
    assert hc["NetworkMode"] == f"container:{spawner.container_id}"
    assert hc["Binds"] == ["slicerhub-home-alice:/home/slicer:rw"]  # the home only: no course folders
    assert hc["CapDrop"] == ["ALL"] and hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["Memory"] == 1024**3  # companions.orthanc.mem_limit's default
    assert orthanc["environment"] == {
        "SLICERHUB_COMPANION_PORT": "8042",
        "SLICERHUB_COMPANION_DATA": "/home/slicer/.local/share/slicerhub/orthanc",
        "HOME": "/home/slicer",
    }
    assert orthanc["labels"]["org.slicerhub.companion-of"] == "slicerhub-alice"
    # Created after the server started (it needs the server's namespace), then started.
    methods = engine.methods()
    assert methods.index("start") < len(methods) - 1 and methods[-1] == "start"
    assert all(c["State"]["Running"] for c in engine.containers.values())
    assert any("Starting Orthanc beside your server" == e["message"] for e in spawner._events)


async def test_docker_stop_removes_the_companions_first(make_docker_spawner):
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=with_companions())
    spawner.user_options = {"profile": "teacher"}
    await spawner.start()
    server_id, companion_id = engine.containers
    await spawner.stop()
    assert engine.containers == {}
    removed = [args[0] for m, args, _ in engine.calls if m == "remove_container"]
    assert removed == [companion_id, server_id]
    assert engine.methods().index("remove_container") < engine.methods().index("stop")


async def test_docker_companion_left_by_a_crash_is_replaced(make_docker_spawner):
    cfg = with_companions()
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=cfg)
    spawner.user_options = {"profile": "teacher"}
    await spawner.start()
    # The hub dies; the server container goes away, its companion stays behind.
    server = next(c for c in engine.containers.values() if c["Name"] == "slicerhub-alice")
    del engine.containers[server["Id"]]
    again, _ = make_docker_spawner(groups=TEACHER, cfg=cfg)
    again.docker = engine
    again.user_options = {"profile": "teacher"}
    await again.start()
    names = sorted(c["Name"] for c in engine.containers.values())
    assert names == ["slicerhub-alice", "slicerhub-alice-orthanc"]
    new_server = next(c for c in engine.containers.values() if c["Name"] == "slicerhub-alice")
    assert engine.created(companions=True)[-1]["host_config"]["NetworkMode"] == f"container:{new_server['Id']}"


async def test_docker_profile_without_companions_starts_none(make_docker_spawner):
    cfg = with_companions()
    spawner, engine = make_docker_spawner(groups=TEACHER, cfg=cfg)
    spawner.user_options = {"profile": "standard"}
    await spawner.start()
    (server,) = engine.created()
    assert "SLICERHUB_COMPANIONS" not in server["environment"]


def test_companion_images_and_limits_come_from_the_file():
    data = demo_data()
    data["companions"] = {"orthanc": {"image": "registry.example.org/orthanc:1", "cpu_limit": 0.5}}
    cfg = with_companions(data)
    c = traitlets_config(cfg)
    assert c.SlicerSpawner.companion_specs["orthanc"] == {
        "image": "registry.example.org/orthanc:1", "cpu_limit": 0.5, "mem_limit": None}


@pytest.mark.parametrize("companions, message", [
    (["orthanc", "orthanc"], "each companion at most once"),
    (["pgadmin"], "orthanc"),
])
def test_bad_companions_are_refused(companions, message):
    from slicerhub.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        with_companions(companions=companions)


# ========================================================== Kubernetes


@pytest.fixture
def no_cluster(monkeypatch):
    # KubeSpawner.__init__ loads kubeconfig and makes an API client even with
    # _mock=True; there is no cluster here, and the manifests need neither.
    monkeypatch.setattr(kubespawner_module, "load_config", lambda **kwargs: None)
    monkeypatch.setattr(kubespawner_module, "shared_client", lambda *args, **kwargs: object())


def kube_deployment(**kubernetes):
    data = demo_data()
    data["backend"] = {
        "type": "kubernetes",
        "kubernetes": {
            "namespace": "slicer-lab",
            "storage_class": "fast-ssd",
            "home_size": "25Gi",
            "gpu_node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            **kubernetes,
        },
    }
    data["courses"]["claim"] = "slicerhub-courses"
    return parse_config(data)


@pytest.fixture
def make_kube_spawner(no_cluster):
    from slicerhub.spawners.kube import SlicerKubeSpawner

    def make(groups=TEACHER, admin=False, name="alice", cfg=None, extra=None):
        c = traitlets_config(cfg or kube_deployment())
        for trait, value in (extra or {}).items():
            setattr(c.SlicerKubeSpawner, trait, value)
        return SlicerKubeSpawner(
            _mock=True, user=make_user(name, groups=groups, admin=admin), hub=make_hub(), config=c
        )

    return make


async def pod_for(spawner, slug):
    """What start() does before the pod is created; the pod as JSON."""
    spawner.user_options = {"profile": slug} if slug else {}
    await spawner.prepare()
    return plain(await spawner.get_pod_manifest())


def container_of(pod) -> dict:
    """The server's container (KubeSpawner's "notebook"), not a companion's."""
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return container


def env_of(pod) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container_of(pod)["env"]}


def gpu_free(pod) -> None:
    resources = container_of(pod)["resources"]
    assert "nvidia.com/gpu" not in resources.get("limits", {})
    assert "nvidia.com/gpu" not in resources.get("requests", {})
    assert not pod["spec"].get("tolerations")
    assert not pod["spec"].get("nodeSelector")
    assert not any(k.startswith("NVIDIA") for k in env_of(pod))


async def test_kube_settings_from_the_deployment(make_kube_spawner):
    spawner = make_kube_spawner()
    assert spawner.namespace == "slicer-lab"
    assert spawner.storage_capacity == "25Gi"
    assert spawner.storage_class == "fast-ssd"
    assert spawner.pvc_name == "slicerhub-home-alice"
    assert spawner.pod_name == "slicerhub-alice"


async def test_kube_gpu_profile(make_kube_spawner):
    spawner = make_kube_spawner(groups=TEACHER)
    pod = await pod_for(spawner, "gpu")
    container = container_of(pod)
    assert container["image"] == "slicerhub/slicer-core:dev"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["limits"]["memory"] == 4 * GiB
    assert container["resources"]["limits"]["cpu"] == 2
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    env = env_of(pod)
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "all"
    assert env["SLICERHUB_PROFILE"] == "gpu" and env["SLICERHUB_GPUS"] == "1"
    assert pod["metadata"]["labels"][PROFILE_LABEL] == "gpu"


async def test_kube_gpu_without_toleration(make_kube_spawner):
    spawner = make_kube_spawner(cfg=kube_deployment(gpu_toleration=False, gpu_node_selector={}))
    pod = await pod_for(spawner, "gpu")
    assert not pod["spec"].get("tolerations")
    assert not pod["spec"].get("nodeSelector")
    assert container_of(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"


async def test_kube_cpu_profile_has_no_gpu(make_kube_spawner):
    spawner = make_kube_spawner(groups=STUDENT)
    pod = await pod_for(spawner, "standard")
    gpu_free(pod)
    assert container_of(pod)["resources"]["limits"]["memory"] == 2 * GiB
    assert env_of(pod)["SLICERHUB_GPUS"] == "0"
    assert pod["metadata"]["labels"][PROFILE_LABEL] == "standard"


async def test_kube_switching_gpu_to_cpu_leaves_no_gpu(make_kube_spawner):
    spawner = make_kube_spawner(groups=TEACHER)
    await pod_for(spawner, "gpu")
    pod = await pod_for(spawner, "teacher")
    gpu_free(pod)
    assert pod["metadata"]["labels"][PROFILE_LABEL] == "teacher"
    # back to GPU twice: one toleration, not two
    await pod_for(spawner, "gpu")
    pod = await pod_for(spawner, "gpu")
    assert len(pod["spec"]["tolerations"]) == 1


async def test_kube_switching_keeps_configured_extras(make_kube_spawner):
    base_toleration = {"key": "dedicated", "operator": "Equal", "value": "slicer", "effect": "NoSchedule"}
    spawner = make_kube_spawner(
        groups=TEACHER,
        extra={
            "tolerations": [base_toleration],
            "node_selector": {"pool": "users"},
            "extra_labels": {"team": "radiology"},
            "extra_resource_limits": {"example.com/dongle": "1"},
        },
    )
    for slug in ("gpu", "standard", "gpu", "standard"):
        pod = await pod_for(spawner, slug)
        keys = [t["key"] for t in pod["spec"]["tolerations"]]
        assert keys == (["dedicated", "nvidia.com/gpu"] if slug == "gpu" else ["dedicated"])
        assert pod["spec"]["nodeSelector"]["pool"] == "users"
        assert pod["metadata"]["labels"]["team"] == "radiology"
        assert container_of(pod)["resources"]["limits"]["example.com/dongle"] == "1"
    assert pod["spec"]["nodeSelector"] == {"pool": "users"}


async def test_kube_home_pvc_and_course_folders(make_kube_spawner):
    spawner = make_kube_spawner(groups=STUDENT)
    pod = await pod_for(spawner, "standard")
    pvc = plain(spawner.get_pvc_manifest())
    assert pvc["metadata"]["name"] == "slicerhub-home-alice"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "25Gi"
    assert pvc["spec"]["storageClassName"] == "fast-ssd"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "slicerhub-home-alice"
    assert volumes["courses"]["persistentVolumeClaim"] == {"claimName": "slicerhub-courses"}
    mounts = container_of(pod)["volumeMounts"]
    home = next(m for m in mounts if m["name"] == "home")
    assert home["mountPath"] == "/home/slicer" and not home.get("readOnly")
    assert [m for m in mounts if m["name"] == "courses"] == [
        {"name": "courses", "mountPath": "/home/slicer/courses/anat101/shared",
         "subPath": "anat101/shared", "readOnly": True},
        {"name": "courses", "mountPath": "/home/slicer/courses/anat101/apps",
         "subPath": "anat101/apps", "readOnly": True},
    ]


async def test_kube_teacher_course_shared_folder_is_writable(make_kube_spawner):
    pod = await pod_for(make_kube_spawner(groups=TEACHER), "standard")
    writable = {m["subPath"]: not m["readOnly"] for m in container_of(pod)["volumeMounts"]
                if m["name"] == "courses"}
    assert writable == {"anat101/shared": True, "anat101/apps": False}


async def test_kube_without_courses_mounts_only_home(make_kube_spawner):
    cfg = kube_deployment()
    data = cfg.model_dump()
    data["courses"]["groups"] = []
    spawner = make_kube_spawner(groups=STUDENT, cfg=parse_config(data))
    pod = await pod_for(spawner, "standard")
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["home"]
    assert [m["name"] for m in container_of(pod)["volumeMounts"]] == ["home"]


async def test_kube_security_context(make_kube_spawner):
    spawner = make_kube_spawner(groups=STUDENT)
    pod = await pod_for(spawner, "standard")
    assert container_of(pod)["securityContext"]["runAsUser"] == 1000
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    assert spawner.delete_pvc is False


async def test_kube_companion_is_a_container_of_the_pod_with_the_home(make_kube_spawner):
    import kubernetes_validate

    data = demo_data()
    next(p for p in data["profiles"] if p["slug"] == "teacher")["companions"] = ["orthanc"]
    data["backend"] = {"type": "kubernetes"}
    data["companions"] = {"orthanc": {"image": "registry.example.org/orthanc:1", "mem_limit": "512M"}}
    spawner = make_kube_spawner(groups=TEACHER, cfg=parse_config(data))
    pod = await pod_for(spawner, "teacher")
    server, orthanc = pod["spec"]["containers"]
    assert orthanc["name"] == "companion-orthanc" and orthanc["image"] == "registry.example.org/orthanc:1"
    assert orthanc["volumeMounts"] == [{"name": "home", "mountPath": "/home/slicer"}]
    assert orthanc["securityContext"]["runAsUser"] == 1000
    assert orthanc["securityContext"]["allowPrivilegeEscalation"] is False
    assert orthanc["resources"] == {"limits": {"memory": "512M"}}
    assert {e["name"]: e["value"] for e in server["env"]}["SLICERHUB_COMPANIONS"] == "orthanc=8042"
    kubernetes_validate.validate(pod, "1.30", strict=True)
    # Another profile: the companion is gone, not carried over.
    pod = await pod_for(spawner, "standard")
    assert [c["name"] for c in pod["spec"]["containers"]] == [server["name"]]


async def test_kube_form_shows_only_allowed_profiles(make_kube_spawner):
    teacher = make_kube_spawner(groups=TEACHER)
    html = await teacher.get_options_form()
    assert all(f'value="{s}"' in html for s in ("standard", "teacher", "gpu"))
    student = make_kube_spawner(groups=STUDENT)
    assert await student.get_options_form() == ""


def test_kube_forged_profile_is_403(make_kube_spawner):
    spawner = make_kube_spawner(groups=STUDENT)
    with pytest.raises(web.HTTPError) as info:
        spawner.run_options_from_form({"profile": ["gpu"]})
    assert info.value.status_code == 403


async def test_kube_accepts_the_options_our_form_produces(make_kube_spawner):
    # KubeSpawner._start() first runs load_user_options() on the options the
    # form produced ({"profile": slug}); it must not reject our profile choice.
    spawner = make_kube_spawner(groups=TEACHER)
    spawner.user_options = spawner.run_options_from_form({"profile": ["gpu"]})
    await spawner.load_user_options()
    pod = await pod_for(spawner, spawner.user_options["profile"])
    assert container_of(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
