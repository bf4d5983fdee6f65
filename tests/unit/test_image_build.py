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


def _labextension(root):
    for rel, text in (("package.json", "{}"), ("package-lock.json", "{}"), ("tsconfig.json", "{}"),
                      ("src/index.ts", "export default 1;\n"), ("style/index.css", ""), ("core/package.json", "{}")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_labextension_hash_covers_its_sources_not_an_in_place_build(tmp_path):
    _labextension(tmp_path)
    before = images.labextension_hash(tmp_path)
    for leftover in ("node_modules/x/index.js", "lib/index.js", "dist/package.json", "README.md"):
        (tmp_path / leftover).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / leftover).write_text("x")
    assert images.labextension_hash(tmp_path) == before
    (tmp_path / "src" / "index.ts").write_text("export default 2;\n")
    assert images.labextension_hash(tmp_path) != before


def test_a_built_labextension_comes_from_the_cache(tmp_path, monkeypatch):
    src = tmp_path / "ext"
    _labextension(src)
    cached = tmp_path / "cache" / images.labextension_hash(src)[:20]
    cached.mkdir(parents=True)
    (cached / "package.json").write_text("{}")
    monkeypatch.setattr(images.shutil, "which", lambda name: None)  # npm is never asked
    assert images.build_labextension(src, tmp_path / "cache") == cached
    (src / "src" / "index.ts").write_text("changed")
    with pytest.raises(RuntimeError, match="needs npm"):
        images.build_labextension(src, tmp_path / "cache")


def test_the_base_image_hash_follows_the_extension_sources_only(tmp_path, monkeypatch):
    base = tmp_path / "base"
    (base / "labextension").mkdir(parents=True)
    (base / "Dockerfile").write_text("FROM scratch\n")
    _labextension(base / "labextension")
    digest = images.source_hash(base, ("labextension",))
    (base / "labextension" / "node_modules").mkdir()
    (base / "labextension" / "node_modules" / "big.js").write_text("x")
    (base / "labextension" / "lib").mkdir()
    (base / "labextension" / "lib" / "index.js").write_text("x")
    assert images.source_hash(base, ("labextension",)) == digest
    assert images.LABEXTENSIONS["base"] == "labextension"
    assert (images.IMAGES_DIR / "base" / "labextension" / "package.json").is_file()
