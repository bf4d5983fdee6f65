"""Build SlicerHub's Docker images from ``images/<name>/``.

* ``ensure_base_image(tag)`` makes sure the base that Dockerfiles name in FROM
  exists locally: already there, else ``docker pull``, else a debootstrap'ed
  rootfs imported by ``images/make-base-rootfs.sh``.
* ``build_image(name, tag, build_args)`` builds ``images/<name>/`` with the
  legacy builder in a temporary context that also holds the host's CA bundle
  as ``build-ca.crt`` (for pip behind an HTTPS interception proxy; Dockerfiles
  must keep it out of their final stage).  The image is labelled with a hash
  of the source tree, and the build is skipped when TAG already carries it.

CLI::

    python -m slicerhub.devenv.images [--base-only] [NAME...]   # default: base

Building ``slicer-core`` builds ``base`` first when it is out of date.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO_ROOT / "images"
MAKE_BASE_ROOTFS = IMAGES_DIR / "make-base-rootfs.sh"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

BASE_IMAGE_TAG = "debian:bookworm-slim"
SOURCE_HASH_LABEL = "org.slicerhub.source-hash"
BUILD_ARGS_HASH_LABEL = "org.slicerhub.build-args-hash"
PULL_TIMEOUT_S = 60

# Tag each image is built as by default, and the image each one is built FROM
# (passed as the BASE_IMAGE build argument, with that image's ID so that a
# rebuilt parent rebuilds its children).
DEFAULT_TAGS = {
    "base": "slicerhub/base:dev",
    "slicer-core": "slicerhub/slicer-core:dev",
    "slicer": "slicerhub/slicer:dev",
}
PARENTS = {"slicer-core": "base", "slicer": "base"}


def _say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def _inspect(tag: str) -> dict | None:
    """``docker image inspect TAG`` as a dict, or None when there is no such image."""
    proc = subprocess.run(
        ["docker", "image", "inspect", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None


def image_exists(tag: str) -> bool:
    return _inspect(tag) is not None


def ensure_base_image(tag: str = BASE_IMAGE_TAG) -> None:
    """Make sure image TAG exists locally (pull it, or debootstrap one)."""
    if image_exists(tag):
        _say(f"base image {tag} is present")
        return
    _say(f"base image {tag} missing; trying docker pull (timeout {PULL_TIMEOUT_S} s)")
    try:
        proc = subprocess.run(
            ["docker", "pull", tag], timeout=PULL_TIMEOUT_S, check=False
        )
        pulled = proc.returncode == 0
    except subprocess.TimeoutExpired:
        pulled = False
    if pulled and image_exists(tag):
        _say(f"pulled {tag}")
        return
    _say(f"docker pull {tag} failed; building it with {MAKE_BASE_ROOTFS.name}")
    proc = subprocess.run(["bash", str(MAKE_BASE_ROOTFS), tag], check=False)
    if proc.returncode != 0 or not image_exists(tag):
        raise RuntimeError(
            f"could not make base image {tag}: {MAKE_BASE_ROOTFS} exited "
            f"with status {proc.returncode}"
        )


def source_hash(src: Path) -> str:
    """sha256 over the relative paths, exec bits and contents of a tree."""
    src = Path(src)
    digest = hashlib.sha256()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        if "__pycache__" in rel.split("/"):
            continue
        executable = "x" if os.access(path, os.X_OK) else "-"
        digest.update(f"{rel}\0{executable}\0".encode())
        file_digest = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{file_digest}\n".encode())
    return digest.hexdigest()


def _build_args_hash(build_args: dict | None) -> str:
    canonical = json.dumps(
        {str(k): str(v) for k, v in (build_args or {}).items()}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_image(name: str, tag: str, build_args: dict | None = None) -> str:
    """Build ``images/<name>/`` as TAG (unless already built); return the image ID."""
    src = IMAGES_DIR / name
    if not (src / "Dockerfile").is_file():
        raise ValueError(f"no Dockerfile in {src}")
    src_hash = source_hash(src)
    args_hash = _build_args_hash(build_args)

    existing = _inspect(tag)
    if existing is not None:
        labels = (existing.get("Config") or {}).get("Labels") or {}
        if (
            labels.get(SOURCE_HASH_LABEL) == src_hash
            and labels.get(BUILD_ARGS_HASH_LABEL) == args_hash
        ):
            _say(f"{tag} is up to date with images/{name}/ (skipping build)")
            return existing["Id"]

    with tempfile.TemporaryDirectory(prefix=f"slicerhub-build-{name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(
            src, context, ignore=shutil.ignore_patterns("__pycache__", "build-ca.crt")
        )
        ca_dest = context / "build-ca.crt"
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, ca_dest)
        else:
            ca_dest.write_bytes(b"")

        cmd = [
            "docker", "build",
            "--network", "host",
            "--label", f"{SOURCE_HASH_LABEL}={src_hash}",
            "--label", f"{BUILD_ARGS_HASH_LABEL}={args_hash}",
            "-t", tag,
        ]
        for key, value in (build_args or {}).items():
            cmd += ["--build-arg", f"{key}={value}"]
        cmd.append(str(context))

        _say(f"building {tag} from images/{name}/")
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        prefix = f"    [{name}] "
        with subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(prefix + line.rstrip("\n"), flush=True)
            returncode = proc.wait()
        if returncode != 0:
            raise RuntimeError(f"docker build of images/{name}/ as {tag} failed "
                               f"with exit status {returncode}")

    built = _inspect(tag)
    if built is None:
        raise RuntimeError(f"docker build said it built {tag} but it is not there")
    _say(f"built {tag} ({built['Id']})")
    return built["Id"]


def build_with_parents(name: str) -> str:
    """Build NAME after the images it is built from; return its image ID."""
    build_args = {}
    parent = PARENTS.get(name)
    if parent is not None:
        parent_id = build_with_parents(parent)
        build_args = {"BASE_IMAGE": DEFAULT_TAGS[parent], "BASE_IMAGE_ID": parent_id}
    return build_image(name, DEFAULT_TAGS.get(name, f"slicerhub/{name}:dev"), build_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slicerhub.devenv.images",
        description="Ensure the Debian base image, then build SlicerHub images.",
    )
    parser.add_argument("--base-only", action="store_true",
                        help=f"only make sure {BASE_IMAGE_TAG} exists")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="directories under images/ to build (default: base)")
    args = parser.parse_args(argv)

    from slicerhub.devenv.docker_engine import ensure_docker_engine

    try:
        ensure_docker_engine(REPO_ROOT / "var" / "log")
        ensure_base_image(BASE_IMAGE_TAG)
        if not args.base_only:
            for name in args.names or ["base"]:
                build_with_parents(name)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
