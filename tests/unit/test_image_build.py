"""The image build helper's pure parts: build order, the wheelhouse download
commands for an offline build, and what the source hash looks at."""

from __future__ import annotations

import pytest

from slicerhub.devenv import images


def test_image_chain_puts_parents_first_once():
    assert images.image_chain(["slicer-core"]) == ["base", "slicer-core"]
    assert images.image_chain(["slicer-core", "slicer", "base"]) == ["base", "slicer-core", "slicer"]


def _flags(cmd, prefix):
    return [arg.split("=", 1)[1] for arg in cmd if arg.startswith(prefix + "=")]


def test_wheel_download_targets_the_images_python_not_the_hosts(tmp_path):
    backend, cmd = images.wheel_download_command("base", tmp_path)
    assert any(arg.startswith("setuptools") for arg in backend)  # builds slicerhub_server
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert "--only-binary=:all:" in cmd
    assert _flags(cmd, "--python-version") == ["3.11"]
    platforms = _flags(cmd, "--platform")
    # pip does not widen manylinux_2_36 to older glibc tags by itself: every one is listed.
    assert platforms[0] == "manylinux_2_36_x86_64" and "manylinux_2_5_x86_64" in platforms
    assert len([p for p in platforms if p.startswith("manylinux_2_")]) == 32
    assert cmd[-2:] == ["-r", str(images.IMAGES_DIR / "base" / "requirements.txt")]


def test_slicer_core_wheelhouse_has_its_build_backend_and_the_sample_data_wheel(tmp_path):
    backend, requirements, data = images.wheel_download_command("slicer-core", tmp_path)
    assert any(arg.startswith("setuptools") for arg in backend)
    assert requirements[-1].endswith("slicer-core/requirements.txt")
    assert "--no-deps" in data and data[-1].endswith("sample-data.txt")


def test_image_without_python_requirements_downloads_nothing(tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setattr(images, "IMAGES_DIR", tmp_path)
    assert images.wheel_download_command("plain", tmp_path / "out") == []


def test_offline_build_needs_a_wheelhouse_with_files(tmp_path):
    with pytest.raises(ValueError, match="needs a wheelhouse"):
        images.build_image("base", "x:y", offline=True)
    with pytest.raises(ValueError, match="holds no wheels"):
        images.build_image("base", "x:y", wheelhouse=tmp_path, offline=True)


def test_source_hash_ignores_build_leftovers(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    before = images.source_hash(tmp_path)
    (tmp_path / "pkg.egg-info").mkdir()
    (tmp_path / "pkg.egg-info" / "PKG-INFO").write_text("x")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m.pyc").write_bytes(b"x")
    assert images.source_hash(tmp_path) == before
    (tmp_path / "Dockerfile").write_text("FROM scratch\nUSER 1000\n")
    assert images.source_hash(tmp_path) != before
