"""Slicer settings in the persistent home.

Slicer keeps user settings in ``~/.config/slicer.org/Slicer.ini`` (QSettings'
INI format). The image ships defaults in ``/etc/slicerhub/slicer-defaults.ini``
(MSAA and volume rendering depend on whether there is a GPU); what the user
changes is written to the file in the home, which survives the container.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

DEFAULTS_FILE = Path(os.environ.get("SLICERHUB_SLICER_DEFAULTS", "/etc/slicerhub/slicer-defaults.ini"))


def user_settings_file() -> Path:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "slicer.org" / "Slicer.ini"


def _parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # Qt keys are case-sensitive
    return parser


def _split(key: str) -> tuple[str, str]:
    section, sep, name = key.partition("/")
    if not sep or not section or not name or "/" in name:
        raise ValueError(f"setting key must look like 'Section/Name', not {key!r}")
    return section, name


def _read(*files: Path) -> configparser.ConfigParser:
    parser = _parser()
    parser.read([str(f) for f in files if f.is_file()], encoding="utf-8")
    return parser


def get(key: str, default: str | None = None) -> str | None:
    """The user's value of 'Section/Name', else the image default, else DEFAULT."""
    section, name = _split(key)
    parser = _read(DEFAULTS_FILE, user_settings_file())
    return parser.get(section, name, fallback=default)


def set(key: str, value) -> None:  # noqa: A001 - mirrors QSettings.setValue
    """Write 'Section/Name' = VALUE to the user's Slicer.ini (atomically)."""
    section, name = _split(key)
    path = user_settings_file()
    parser = _read(path)
    if not parser.has_section(section):
        parser.add_section(section)
    parser.set(section, name, str(value))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".ini.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        parser.write(fh)
    os.replace(tmp, path)
