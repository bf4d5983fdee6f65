"""Build SlicerHub's Docker images from ``images/<name>/``.

* ``ensure_base_image(tag)`` makes sure the base that Dockerfiles name in FROM
  exists locally: already there, else ``docker pull``, else a debootstrap'ed
  rootfs imported by ``images/make-base-rootfs.sh``.
* ``build_image(name, tag, build_args)`` builds ``images/<name>/`` with the
  legacy builder in a temporary context that also holds the host's CA bundle
  as ``build-ca.crt`` (for pip behind an HTTPS interception proxy; Dockerfiles
  must keep it out of their final stage).  The image is labelled with a hash
  of the source tree, and the build is skipped when TAG already carries it.

* An image with a JupyterLab extension (``LABEXTENSIONS``: images/base's
  ``labextension/``, "Publish to a Course…") gets it prebuilt: the JS build
  (``npm ci`` + ``@jupyterlab/builder``) runs on the host, with the npm
  registry, before ``docker build``, and is cached under
  ``build/labextension/<hash of its sources>/``, so it runs once per change
  of the extension (about a minute) and the image build needs no Node.  The
  context gets the built extension as ``labextension-built/``; the image's
  source hash covers the extension's sources, not its build leftovers.

* ``download_wheels(names, dest)`` fills a wheelhouse for an offline build:
  every Python package the images install, as wheels for the images' Python
  (CPython 3.11 on Debian bookworm, glibc 2.36, x86_64), from any connected
  machine.  ``build_image(..., wheelhouse=DIR)`` then puts DIR into the build
  context, where the Dockerfiles install from it with no package index.

CLI::

    python -m slicerhub.devenv.images [--base-only] [NAME...]   # default: base
    python -m slicerhub.devenv.images --download-wheels DIR NAME...
    python -m slicerhub.devenv.images --wheelhouse DIR [--offline] NAME...

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
    "hub": "slicerhub/hub:dev",
    # Companions (docs/companions.md): services beside a user's server,
    # built FROM the locally made Debian base like the hub image.
    "orthanc": "slicerhub/orthanc:dev",
    "monailabel": "slicerhub/monailabel:dev",
}
# The hub image (z2jh's hub pod) is not a user image: it is built FROM the
# locally made Debian base (BASE_IMAGE_TAG), not from images/base's desktop.
PARENTS = {"slicer-core": "base", "slicer": "base"}
# Files of this repository an image installs, copied into its build context
# under python/ (and hashed with it): the hub image installs SlicerHub itself.
REPO_FILES = {"hub": ("pyproject.toml", "README.md", "constraints.txt", "slicerhub", "spawners",
                     "images/base/python/slicerhub_access")}

# The images' Python, for `pip download` of a wheelhouse on another machine.
# pip does not widen a manylinux_2_N platform to older glibc versions, so
# every one the image's glibc (2.36, bookworm) can load is listed.
IMAGE_PYTHON_VERSION = "3.11"
IMAGE_GLIBC_MINOR = 36
IGNORED_IN_CONTEXT = ("__pycache__", "*.egg-info", "build-ca.crt", "wheelhouse", "node_modules")

# JupyterLab extensions built on the host into an image's context: the folder
# of images/<name>/ that holds the extension's sources (its own package.json
# and lock), and the files of it that decide the build (hashed; nothing else
# of the folder, e.g. an in-place build's node_modules/, lib/, dist/, counts).
LABEXTENSIONS = {"base": "labextension"}
LABEXTENSION_SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "src", "style", "core")
LABEXTENSION_CACHE = REPO_ROOT / "build" / "labextension"
LABEXTENSION_CONTEXT = "labextension-built"
LABEXTENSION_CACHE_KEEP = 3


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


def source_hash(src: Path, skip: tuple[str, ...] = ()) -> str:
    """sha256 over the relative paths, exec bits and contents of a tree
    (without the top-level entries named in SKIP)."""
    src = Path(src)
    digest = hashlib.sha256()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        parts = rel.split("/")
        if ("__pycache__" in parts or "node_modules" in parts or parts[0] in skip
                or any(part.endswith(".egg-info") for part in parts)):
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


def _wheelhouse_files(wheelhouse: Path) -> list[Path]:
    files = sorted(p for p in Path(wheelhouse).iterdir()
                   if p.is_file() and p.name.endswith((".whl", ".tar.gz", ".zip")))
    if not files:
        raise ValueError(f"wheelhouse {wheelhouse} holds no wheels or sdists")
    return files


def _copy_repo_files(paths: tuple[str, ...], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for rel in paths:
        path = REPO_ROOT / rel
        if path.is_dir():
            shutil.copytree(path, dest / rel, ignore=shutil.ignore_patterns(*IGNORED_IN_CONTEXT))
        else:
            shutil.copyfile(path, dest / rel)


def labextension_hash(src: Path) -> str:
    """The hash of a labextension's sources (LABEXTENSION_SOURCES under SRC)."""
    digest = hashlib.sha256()
    for rel in LABEXTENSION_SOURCES:
        path = Path(src) / rel
        if path.is_dir():
            digest.update(f"{rel}/\0{source_hash(path)}\n".encode())
        elif path.is_file():
            digest.update(f"{rel}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def build_labextension(src: Path, cache: Path | None = None) -> Path:
    """The built extension of SRC (its ``dist/``: package.json, static/), from
    the cache, else built now with npm on the host; returns that folder."""
    src = Path(src)
    cache = Path(cache or LABEXTENSION_CACHE)
    key = labextension_hash(src)[:20]
    out = cache / key
    if (out / "package.json").is_file():
        _say(f"labextension {src.name}/ is built ({out})")
        return out
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"building the JupyterLab extension in {src} needs npm (make deps installs it)")
    cache.mkdir(parents=True, exist_ok=True)
    _say(f"building the JupyterLab extension {src.relative_to(REPO_ROOT) if src.is_relative_to(REPO_ROOT) else src}"
         " (npm ci, jupyterlab builder)")
    with tempfile.TemporaryDirectory(prefix=f"{key}-", dir=cache) as tmp:
        work = Path(tmp) / "src"
        work.mkdir()
        for rel in LABEXTENSION_SOURCES:
            path = src / rel
            if path.is_dir():
                shutil.copytree(path, work / rel)
            elif path.is_file():
                shutil.copyfile(path, work / rel)
        for cmd in ([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], [npm, "run", "build:prod"]):
            proc = subprocess.run(cmd, cwd=work, check=False, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace")
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[1:])} for the JupyterLab extension in {src} failed "
                                   f"(exit {proc.returncode}):\n{proc.stdout[-4000:]}")
        dist = work / "dist"
        if not (dist / "package.json").is_file():
            raise RuntimeError(f"the JupyterLab extension in {src} built no dist/package.json")
        dist.rename(out)  # whole or not at all: a half build is never found
    # Keep the newest few (other branches' builds), drop older ones.
    built = sorted((p for p in cache.iterdir() if (p / "package.json").is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[LABEXTENSION_CACHE_KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    _say(f"built the JupyterLab extension into {out}")
    return out


def build_image(name: str, tag: str, build_args: dict | None = None, *,
                wheelhouse: Path | None = None, offline: bool = False) -> str:
    """Build ``images/<name>/`` as TAG (unless already built); return the image ID.

    With WHEELHOUSE, pip in the Dockerfiles installs from that folder only;
    OFFLINE also builds with no network at all (``--network none``), so a
    package missing from the wheelhouse fails the build instead of being
    fetched.  Debian packages then come from the layer cache or not at all.
    """
    src = IMAGES_DIR / name
    if not (src / "Dockerfile").is_file():
        raise ValueError(f"no Dockerfile in {src}")
    if offline and wheelhouse is None:
        raise ValueError("an offline build needs a wheelhouse (--wheelhouse DIR)")
    wheels = _wheelhouse_files(wheelhouse) if wheelhouse is not None else []
    ext_dir = LABEXTENSIONS.get(name)
    skip = (ext_dir,) if ext_dir else ()
    src_hash = source_hash(src, skip)
    if ext_dir:
        ext_hash = labextension_hash(src / ext_dir)
        src_hash = hashlib.sha256(f"{src_hash}\0{ext_dir}\0{ext_hash}".encode()).hexdigest()
    repo_files = REPO_FILES.get(name, ())
    if repo_files:
        with tempfile.TemporaryDirectory(prefix=f"slicerhub-hash-{name}-") as tmp:
            _copy_repo_files(repo_files, Path(tmp))
            src_hash = hashlib.sha256(f"{src_hash}\0{source_hash(Path(tmp))}".encode()).hexdigest()
    hashed_args = dict(build_args or {})
    if wheels:  # a wheelhouse build is a different build: never "up to date" with an online one
        hashed_args["wheelhouse"] = ",".join(p.name for p in wheels)
    args_hash = _build_args_hash(hashed_args)

    existing = _inspect(tag)
    if existing is not None:
        labels = (existing.get("Config") or {}).get("Labels") or {}
        if (
            labels.get(SOURCE_HASH_LABEL) == src_hash
            and labels.get(BUILD_ARGS_HASH_LABEL) == args_hash
        ):
            _say(f"{tag} is up to date with images/{name}/ (skipping build)")
            return existing["Id"]

    built_ext = build_labextension(src / ext_dir) if ext_dir else None
    with tempfile.TemporaryDirectory(prefix=f"slicerhub-build-{name}-") as tmp:
        context = Path(tmp) / "context"
        ignored = shutil.ignore_patterns(*IGNORED_IN_CONTEXT)

        def ignore(folder, names):
            # The extension's sources stay out of the context; its build goes in.
            top = {ext_dir} if ext_dir and Path(folder) == src else set()
            return set(ignored(folder, names)) | (top & set(names))

        shutil.copytree(src, context, ignore=ignore)
        if built_ext is not None:
            shutil.copytree(built_ext, context / LABEXTENSION_CONTEXT)
        if repo_files:
            _copy_repo_files(repo_files, context / "python")
        # Always present (maybe empty): the Dockerfiles COPY it unconditionally.
        (context / "wheelhouse").mkdir()
        for wheel in wheels:
            shutil.copyfile(wheel, context / "wheelhouse" / wheel.name)
        ca_dest = context / "build-ca.crt"
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, ca_dest)
        else:
            ca_dest.write_bytes(b"")

        cmd = [
            "docker", "build",
            "--network", "none" if offline else "host",
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


def build_with_parents(name: str, *, tags: dict | None = None, **build_options) -> str:
    """Build NAME after the images it is built from; return its image ID.

    TAGS overrides DEFAULT_TAGS; BUILD_OPTIONS go to build_image for each image."""
    tags = {**DEFAULT_TAGS, **(tags or {})}
    build_args = {}
    parent = PARENTS.get(name)
    if parent is not None:
        parent_id = build_with_parents(parent, tags=tags, **build_options)
        build_args = {"BASE_IMAGE": tags[parent], "BASE_IMAGE_ID": parent_id}
    return build_image(name, tags.get(name, f"slicerhub/{name}:dev"), build_args, **build_options)


def image_chain(names: list[str]) -> list[str]:
    """NAMES with the images they are built from, parents first, each once."""
    chain: list[str] = []
    for name in names:
        lineage = [name]
        while lineage[-1] in PARENTS:
            lineage.append(PARENTS[lineage[-1]])
        chain += [n for n in reversed(lineage) if n not in chain]
    return chain


def wheel_download_command(name: str, dest: Path) -> list[list[str]]:
    """The `pip download` commands that put what images/<name>/ installs into DEST."""
    src = IMAGES_DIR / name
    platforms = [f"--platform=manylinux_2_{minor}_x86_64" for minor in range(IMAGE_GLIBC_MINOR, 4, -1)]
    base = [sys.executable, "-m", "pip", "download", "--dest", str(dest),
            "--only-binary=:all:", "--implementation=cp",
            f"--python-version={IMAGE_PYTHON_VERSION}", *platforms,
            "--platform=linux_x86_64"]
    commands = []
    requirements = [src / "requirements.txt"]
    project = src / "python" / "pyproject.toml"
    if project.is_file():  # the image's own package is built in the image: its build backend
        import tomllib

        build_requires = tomllib.loads(project.read_text())["build-system"]["requires"]
        commands.append(base + build_requires)
    if any(r.is_file() for r in requirements):
        commands.append(base + [arg for r in requirements if r.is_file() for arg in ("-r", str(r))])
    data = src / "sample-data.txt"  # wheels used only as data carriers: no dependencies
    if data.is_file():
        commands.append(base + ["--no-deps", "-r", str(data)])
    return commands


def download_wheels(names: list[str], dest: Path) -> None:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in image_chain(names):
        if not (IMAGES_DIR / name / "Dockerfile").is_file():
            raise ValueError(f"no image called {name!r} under {IMAGES_DIR}")
        _say(f"downloading the wheels of images/{name}/ into {dest}")
        for cmd in wheel_download_command(name, dest):
            proc = subprocess.run(cmd, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"pip download for images/{name}/ failed (exit {proc.returncode})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slicerhub.devenv.images",
        description="Ensure the Debian base image, then build SlicerHub images.",
    )
    parser.add_argument("--base-only", action="store_true",
                        help=f"only make sure {BASE_IMAGE_TAG} exists")
    parser.add_argument("--download-wheels", metavar="DIR", type=Path,
                        help="only fill DIR with the wheels the images need (for an offline build)")
    parser.add_argument("--wheelhouse", metavar="DIR", type=Path,
                        help="install Python packages from DIR only, not from a package index")
    parser.add_argument("--offline", action="store_true",
                        help="build with no network at all (needs --wheelhouse; Debian "
                             "packages must already be in Docker's layer cache)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="directories under images/ to build (default: base)")
    args = parser.parse_args(argv)
    names = args.names or ["base"]

    if args.download_wheels is not None:
        try:
            download_wheels(names, args.download_wheels)
        except (RuntimeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        return 0

    from slicerhub.devenv.docker_engine import ensure_docker_engine

    try:
        ensure_docker_engine(REPO_ROOT / "var" / "log")
        ensure_base_image(BASE_IMAGE_TAG)
        if not args.base_only:
            for name in names:
                build_with_parents(name, wheelhouse=args.wheelhouse, offline=args.offline)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
