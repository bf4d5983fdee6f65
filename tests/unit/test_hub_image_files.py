"""images/hub without building it: what goes into its build context, its base,
its final stage, and that every package it asks for is pinned."""

from __future__ import annotations

import re
from pathlib import Path

from slicerhub.devenv import images

HUB = images.IMAGES_DIR / "hub"
SECRET_NAMES = re.compile(r"(cookie_secret|password|\.key$|\.pem$|\.sqlite|token|secrets?$|\.env$)", re.I)


def _pins() -> dict[str, str]:
    text = (images.REPO_ROOT / "constraints.txt").read_text()
    return {n.lower().replace("_", "-"): v for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M)}


def test_hub_is_built_from_the_local_debian_base_not_the_desktop_image():
    assert images.DEFAULT_TAGS["hub"] == "slicerhub/hub:dev"
    assert "hub" not in images.PARENTS
    assert images.image_chain(["hub"]) == ["hub"]
    dockerfile = (HUB / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={images.BASE_IMAGE_TAG}" in dockerfile


def test_final_stage_copies_only_the_venv_and_runs_as_jovyan():
    final = (HUB / "Dockerfile").read_text().split("# ------------------------------------------------------------------ final ---")[1]
    assert re.findall(r"^COPY .*$", final, re.M) == ["COPY --from=builder /opt/venv /opt/venv"]
    assert "USER 1000" in final and "useradd --uid 1000" in final and "jovyan" in final
    assert "WORKDIR /srv/jupyterhub" in final
    assert 'CMD ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]' in final
    assert "configurable-http-proxy" not in re.sub(r"^#.*$", "", final, flags=re.M)


def test_build_context_has_no_secret_and_no_hub_state(tmp_path):
    images._copy_repo_files(images.REPO_FILES["hub"], tmp_path)
    files = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert "pyproject.toml" in files and "constraints.txt" in files and "slicerhub/auth.py" in files
    assert not [f for f in files if f.startswith(("var/", "hub_config/", "artifacts/")) or "__pycache__" in f]
    # Names that would hold a secret or a database (source files about them are fine).
    assert not [f for f in files if SECRET_NAMES.search(Path(f).name) and not f.endswith(".py")]


def test_every_requirement_and_the_z2jh_essentials_are_pinned():
    pins = _pins()
    wanted = [line.split("#")[0].strip() for line in (HUB / "requirements.txt").read_text().splitlines()]
    for name in filter(None, wanted):
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", name), f"{name}: versions belong in constraints.txt"
        assert name.lower() in pins, f"{name} is not pinned in constraints.txt"
    for name in ("jupyterhub", "jupyterhub-kubespawner", "jupyterhub-ldapauthenticator", "psycopg",
                 "psycopg-binary", "pycurl", "kubernetes-asyncio"):
        assert name in pins, name
    assert "-c /tmp/build/python/constraints.txt" in (HUB / "Dockerfile").read_text()


def test_source_hash_of_the_hub_image_follows_the_package(tmp_path, monkeypatch):
    """A change to slicerhub/ must rebuild the hub image (its hash covers REPO_FILES)."""
    pkg = tmp_path / "repo"
    (pkg / "slicerhub").mkdir(parents=True)
    (pkg / "slicerhub" / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(images, "REPO_ROOT", pkg)
    first = tmp_path / "one"
    images._copy_repo_files(("slicerhub",), first)
    (pkg / "slicerhub" / "a.py").write_text("x = 2\n")
    second = tmp_path / "two"
    images._copy_repo_files(("slicerhub",), second)
    assert images.source_hash(first) != images.source_hash(second)
