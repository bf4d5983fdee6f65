"""The pieces of the images that run without the images: the GPU/CPU choice of
the desktop and the Slicer settings file in the home."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GL_ENV = ROOT / "images" / "base" / "desktop" / "slicerhub-gl-env"
SETTINGS = ROOT / "images" / "slicer-core" / "python" / "slicerhub_slicer" / "settings.py"


def gl_env(tmp_path, devices=(), vglrun=True, mode=None):
    dev = tmp_path / "dev"
    dev.mkdir(exist_ok=True)
    for d in devices:
        (dev / d).touch()
    env = {"PATH": os.environ["PATH"], "SLICERHUB_DEV_DIR": str(dev)}
    if vglrun:
        fake = tmp_path / "vglrun"
        fake.write_text("#!/bin/sh\nexec \"$@\"\n")
        fake.chmod(0o755)
        env["SLICERHUB_VGLRUN"] = str(fake)
    else:
        env["SLICERHUB_VGLRUN"] = ""
    if mode:
        env["SLICERHUB_RENDERING"] = mode
    proc = subprocess.run(["sh", str(GL_ENV)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return proc
    values = subprocess.run(["sh", "-c", f'eval "$(sh {GL_ENV})"; env'], env=env,
                            capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in values.splitlines() if "=" in line)


def test_no_gpu_renders_on_llvmpipe(tmp_path):
    env = gl_env(tmp_path)
    assert env["SLICERHUB_RENDERER"] == "cpu" and env["SLICERHUB_RENDERER_REASON"] == "no-gpu"
    assert env["GALLIUM_DRIVER"] == "llvmpipe" and env["LIBGL_ALWAYS_SOFTWARE"] == "1"
    assert env["SLICERHUB_GL_WRAPPER"] == "" and env["SLICERHUB_HAS_GPU"] == "0"


def test_nvidia_device_with_virtualgl_uses_egl(tmp_path):
    env = gl_env(tmp_path, devices=["nvidia0", "nvidiactl"])
    assert env["SLICERHUB_RENDERER"] == "gpu"
    assert env["SLICERHUB_GL_WRAPPER"].endswith("vglrun -d egl")
    assert env["SLICERHUB_HAS_GPU"] == "1"
    assert "LIBGL_ALWAYS_SOFTWARE" not in env  # never force software on a GPU


def test_gpu_without_virtualgl_falls_back_with_a_reason(tmp_path):
    env = gl_env(tmp_path, devices=["nvidia0"], vglrun=False)
    assert env["SLICERHUB_RENDERER"] == "cpu"
    assert env["SLICERHUB_RENDERER_REASON"] == "gpu-without-virtualgl"


def test_nvidiactl_alone_is_not_a_gpu(tmp_path):
    assert gl_env(tmp_path, devices=["nvidiactl"])["SLICERHUB_RENDERER"] == "cpu"


def test_forced_cpu_on_a_gpu_host(tmp_path):
    env = gl_env(tmp_path, devices=["nvidia0"], mode="cpu")
    assert env["SLICERHUB_RENDERER"] == "cpu" and env["SLICERHUB_RENDERER_REASON"] == "forced-cpu"


def test_bad_mode_is_a_clear_error(tmp_path):
    proc = gl_env(tmp_path, mode="fast")
    assert proc.returncode == 2 and "must be cpu, gpu or auto" in proc.stderr


@pytest.fixture
def settings(tmp_path, monkeypatch):
    defaults = tmp_path / "defaults.ini"
    defaults.write_text("[Desktop]\nOrientation=Axial\n[Rendering]\nMultiSamples=0\n")
    monkeypatch.setenv("SLICERHUB_SLICER_DEFAULTS", str(defaults))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    spec = importlib.util.spec_from_file_location("slicerhub_settings_under_test", SETTINGS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_default_then_user_value_in_slicer_ini(settings, tmp_path):
    assert settings.get("Desktop/Orientation") == "Axial"
    settings.set("Desktop/Orientation", "Sagittal")
    ini = tmp_path / "home" / ".config" / "slicer.org" / "Slicer.ini"
    assert ini.is_file() and "Orientation = Sagittal" in ini.read_text()
    assert settings.get("Desktop/Orientation") == "Sagittal"
    assert settings.get("Rendering/MultiSamples") == "0"  # still from the defaults
    assert settings.get("Nothing/Here", "fallback") == "fallback"


def test_settings_keep_other_keys_and_case(settings):
    settings.set("General/LastDirectory", "/home/slicer/data")
    settings.set("Desktop/Volume", "scan.nrrd")
    assert settings.get("General/LastDirectory") == "/home/slicer/data"
    assert settings.get("Desktop/Volume") == "scan.nrrd"


@pytest.mark.parametrize("key", ["NoSection", "/Name", "Section/", "a/b/c", ""])
def test_settings_refuse_malformed_keys(settings, key):
    with pytest.raises(ValueError, match="Section/Name"):
        settings.get(key)


# ------------------------------------------------- the user container's entrypoint

ENTRYPOINT = ROOT / "images" / "base" / "desktop" / "slicerhub-entrypoint"


def entrypoint(tmp_path, *command, desktop=None):
    """Run the entrypoint with a stand-in supervisor (it leaves a mark) and a command
    that prints what it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    mark = tmp_path / "supervisor-ran"
    supervisor = bin_dir / "slicerhub-desktop-supervisor"
    supervisor.write_text(f"#!/bin/sh\necho $$ > {mark}\n")
    supervisor.chmod(0o755)
    server = bin_dir / "jupyterhub-singleuser"
    server.write_text("#!/bin/sh\necho \"args=$*\"; echo \"pid=${SLICERHUB_DESKTOP_SUPERVISOR:-none}\"\n")
    server.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    if desktop:
        env["SLICERHUB_DESKTOP"] = desktop
    out = subprocess.run(["sh", str(ENTRYPOINT), *command], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for _ in range(100):  # the supervisor runs in the background
        if mark.exists() and mark.read_text().strip():
            break
        if values.get("pid", "none") == "none":
            break
        time.sleep(0.05)
    return values, mark


def test_entrypoint_starts_the_desktop_before_the_server(tmp_path):
    values, mark = entrypoint(tmp_path, "jupyterhub-singleuser", "--debug")
    assert values["args"] == "--debug"
    assert values["pid"].isdigit()
    assert mark.read_text().strip() == values["pid"]  # the server is told the supervisor's pid


def test_entrypoint_starts_no_desktop_for_other_commands_or_when_off(tmp_path):
    values, mark = entrypoint(tmp_path, "jupyterhub-singleuser", desktop="off")
    assert values["pid"] == "none" and not mark.exists()
    out = subprocess.run(["sh", str(ENTRYPOINT), "sh", "-c", "echo pid=${SLICERHUB_DESKTOP_SUPERVISOR:-none}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "pid=none"
