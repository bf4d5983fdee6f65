"""The full-Slicer image's install script and launcher, run against a small
stand-in release archive (the real download server is out of reach here)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "images" / "slicer" / "install-slicer.sh"
LAUNCH = ROOT / "images" / "slicer" / "slicer-launch"
DEFAULTS = ROOT / "images" / "slicer" / "SlicerDefaultSettings.ini"
REV = "33216"

FAKE_LAUNCHER = """#!/bin/sh
# Stand-in for Slicer's launcher: report what it was started with.
settings="$2"
echo "args: $*"
echo "home: $(sed -n 's/^SLICER_HOME=//p' "$settings")"
"""


def stand_in_archive(tmp_path: Path, with_launcher: bool = True) -> tuple[Path, str]:
    tree = tmp_path / "src" / "Slicer-5.8.1-linux-amd64"
    (tree / "bin").mkdir(parents=True)
    (tree / "lib" / "Slicer-5.8").mkdir(parents=True)
    (tree / "share" / "Slicer-5.8").mkdir(parents=True)
    (tree / "slicer.org" / f"Extensions-{REV}" / "SlicerJupyter").mkdir(parents=True)
    (tree / "slicer.org" / f"Slicer-{REV}.ini").write_text("[General]\nfoo=bar\n")
    if with_launcher:
        (tree / "Slicer").write_text(FAKE_LAUNCHER)
        (tree / "Slicer").chmod(0o755)
    archive = tmp_path / "Slicer-5.8.1-linux-amd64.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def install(archive, sha, prefix, defaults=DEFAULTS):
    return subprocess.run(["sh", str(INSTALL), str(archive), sha, str(prefix), str(defaults)],
                          capture_output=True, text=True)


def test_installs_a_verified_archive_with_default_settings(tmp_path):
    archive, sha = stand_in_archive(tmp_path)
    prefix = tmp_path / "opt" / "slicer"
    proc = install(archive, sha, prefix)
    assert proc.returncode == 0, proc.stderr
    assert os.access(prefix / "Slicer", os.X_OK)
    shipped = prefix / "share" / "Slicer-5.8" / "SlicerDefaultSettings.ini"
    assert "vtkMRMLCPURayCastVolumeRenderingDisplayNode" in shipped.read_text()
    assert "MSAA=Off" in shipped.read_text()
    assert not (prefix.stat().st_mode & 0o022), "install tree must not be group/world writable"


def test_checksum_mismatch_installs_nothing(tmp_path):
    archive, sha = stand_in_archive(tmp_path)
    prefix = tmp_path / "opt" / "slicer"
    proc = install(archive, "0" * 64, prefix)
    assert proc.returncode == 1 and "checksum mismatch" in proc.stderr
    assert not prefix.exists()


def test_missing_checksum_is_refused(tmp_path):
    archive, _ = stand_in_archive(tmp_path)
    proc = install(archive, "", tmp_path / "p")
    assert proc.returncode == 2 and "SHA-256 is required" in proc.stderr


def test_archive_without_launcher_is_refused(tmp_path):
    archive, sha = stand_in_archive(tmp_path, with_launcher=False)
    proc = install(archive, sha, tmp_path / "p")
    assert proc.returncode == 1 and "no Slicer launcher" in proc.stderr
    assert not (tmp_path / "p").exists()


@pytest.fixture
def installed(tmp_path):
    archive, sha = stand_in_archive(tmp_path)
    prefix = tmp_path / "opt" / "slicer"
    assert install(archive, sha, prefix).returncode == 0
    return prefix


def launch(installed, home, *args):
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SLICER_INSTALL": str(installed),
           "TMPDIR": str(home.parent)}
    return subprocess.run(["sh", str(LAUNCH), *args], env=env, capture_output=True, text=True)


def test_launcher_keeps_revision_settings_and_extensions_in_the_home(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = launch(installed, home, "--no-splash")
    assert proc.returncode == 0, proc.stderr
    shell = home / ".local" / "share" / "slicerhub" / "Slicer"
    assert f"home: {shell}" in proc.stdout
    assert "--launcher-additional-settings" in proc.stdout and "--no-splash" in proc.stdout
    assert (shell / "bin").is_symlink() and (shell / "lib").resolve() == (installed / "lib").resolve()
    revision = shell / "slicer.org" / f"Slicer-{REV}.ini"
    assert f"InstallPath={shell}/slicer.org/Extensions-{REV}" in revision.read_text()
    assert (shell / "slicer.org" / f"Extensions-{REV}" / "SlicerJupyter").is_dir()  # baked ones offered
    assert not (shell / "slicer.org").is_symlink()


def test_launcher_keeps_user_changes_on_the_next_start(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert launch(installed, home).returncode == 0
    revision = home / ".local" / "share" / "slicerhub" / "Slicer" / "slicer.org" / f"Slicer-{REV}.ini"
    revision.write_text(revision.read_text() + "[Modules]\nAdditionalPaths=/home/me/mods\n")
    (revision.parent / f"Extensions-{REV}" / "MyExtension").mkdir()
    assert launch(installed, home).returncode == 0
    assert "AdditionalPaths=/home/me/mods" in revision.read_text()
    assert revision.read_text().count("InstallPath=") == 1
    assert (revision.parent / f"Extensions-{REV}" / "MyExtension").is_dir()


def test_launcher_without_slicer_says_so(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = launch(tmp_path / "nowhere", home)
    assert proc.returncode == 1 and "no Slicer in" in proc.stderr
