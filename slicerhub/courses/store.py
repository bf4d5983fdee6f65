"""The published apps of a course, on disk.

Layout under the courses root (the same folder the user servers mount)::

    <course>/shared/                     teachers write, students read
    <course>/apps/<name>/app.json        title, description, hidden, versions
    <course>/apps/<name>/v<N>/<name>.ipynb   immutable, one per publication
    <course>/apps/<name>/v<N>/thumbnail.png  optional

A version is written into a temporary folder and renamed into place, so a
reader never sees half a version and an existing version is never replaced;
its files are then made read-only.  Only this module writes under ``apps/``
(the user servers mount it read-only), so publishing is the only way in.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..config import COURSE

NAME = re.compile(COURSE)  # course and app names: the deployment file's rule for courses
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_THUMBNAIL_BYTES = 2 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
USER_UID, USER_GID = 1000, 100  # the image's user, who must be able to write shared/


class PublishError(Exception):
    """Bad input: nothing was written."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Version:
    number: int
    published_at: float
    published_by: str
    notebook: str  # path relative to the course folder
    thumbnail: str | None = None


@dataclass
class App:
    course: str
    name: str
    title: str
    description: str = ""
    hidden: bool = False
    versions: list[Version] = field(default_factory=list)

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def to_json(self) -> dict:
        return {**asdict(self), "latest": self.latest.number}


def check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise PublishError(
            f"{kind} {value!r} is not allowed: use 1-40 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit")
    return value


# Right-to-left/left-to-right overrides and isolates: they make a title read differently
# from what it is (the "look-alike" trick), so titles and descriptions may not hold them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_text(kind: str, value, *, multiline: bool = False) -> str | None:
    """A title or description: None (not given) or a string of printable text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PublishError(f"{kind} must be a string, not {type(value).__name__}")
    for c in value:
        if c in "\t\n\r" and multiline:
            continue
        if unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS:
            raise PublishError(f"{kind} may not contain control or text-direction characters ({ascii(c)})")
    return value


class CourseStore:
    def __init__(self, root: str | Path, courses: list[str]):
        self.root = Path(root).resolve()
        self.courses = [check_name("course", c) for c in courses]

    # ------------------------------------------------------------ folders ---
    def course_dir(self, course: str) -> Path:
        if course not in self.courses:
            raise PublishError(f"no course {course!r}", 404)
        return self.root / course

    def ensure_course(self, course: str) -> Path:
        """Create <course>/shared (owned by the image's user) and <course>/apps."""
        folder = self.course_dir(course)
        (folder / "apps").mkdir(parents=True, exist_ok=True)
        shared = folder / "shared"
        if not shared.exists():
            shared.mkdir()
            if os.geteuid() == 0:
                os.chown(shared, USER_UID, USER_GID)
            shared.chmod(0o775)
        return folder

    # --------------------------------------------------------------- read ---
    def _app_file(self, course: str, name: str) -> Path:
        return self.course_dir(course) / "apps" / check_name("app name", name) / "app.json"

    def get(self, course: str, name: str) -> App | None:
        path = self._app_file(course, name)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["versions"] = [Version(**v) for v in data["versions"]]
        return App(**data)

    def list(self, course: str, include_hidden: bool = False) -> list[App]:
        apps_dir = self.course_dir(course) / "apps"
        if not apps_dir.is_dir():
            return []
        found = []
        for entry in sorted(apps_dir.iterdir()):
            if NAME.match(entry.name) and (entry / "app.json").is_file():
                app = self.get(course, entry.name)
                if include_hidden or not app.hidden:
                    found.append(app)
        return found

    # -------------------------------------------------------------- write ---
    def publish(self, course: str, name: str, notebook: bytes | str, *, by: str, title: str | None = None,
                description: str | None = None, thumbnail: bytes | None = None) -> App:
        """Add a new version of app NAME (creating the app); return the app."""
        folder = self.ensure_course(course)
        check_name("app name", name)
        title = check_text("title", title)
        description = check_text("description", description, multiline=True)
        try:
            raw = notebook.encode() if isinstance(notebook, str) else notebook
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON)
            raise PublishError("not a valid Jupyter notebook: it is not valid Unicode text") from None
        if len(raw) > MAX_NOTEBOOK_BYTES:
            raise PublishError(f"notebook is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB", 413)
        try:
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
        except Exception as e:  # nbformat raises several kinds
            raise PublishError(f"not a valid Jupyter notebook: {str(e).splitlines()[0][:200]}") from None
        if thumbnail is not None:
            if len(thumbnail) > MAX_THUMBNAIL_BYTES or not thumbnail.startswith(PNG_MAGIC):
                raise PublishError("thumbnail must be a PNG image of at most 2 MB")

        app_dir = folder / "apps" / name
        app = self.get(course, name)
        if app is None:
            if not title:
                raise PublishError("a new app needs a title")
            app = App(course=course, name=name, title=title, description=description or "")
        else:
            app.title = title or app.title
            app.description = app.description if description is None else description
            app.hidden = False  # republishing shows it again
        app.title = app.title.strip()[:120]
        app.description = app.description.strip()[:2000]
        if not app.title:
            raise PublishError("title must not be empty")
        number = (app.versions[-1].number + 1) if app.versions else 1

        app_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".publishing-", dir=app_dir))
        try:
            (tmp / f"{name}.ipynb").write_bytes(raw)
            if thumbnail is not None:
                (tmp / "thumbnail.png").write_bytes(thumbnail)
            for f in tmp.iterdir():
                f.chmod(0o444)
            tmp.chmod(0o555)
            target = app_dir / f"v{number}"
            # rename() onto an existing non-empty folder fails: a version is never replaced.
            os.rename(tmp, target)
        except OSError as e:
            _remove_tree(tmp)
            raise PublishError(f"could not write version {number}: {e.strerror}", 409) from None

        rel = f"apps/{name}/v{number}"
        app.versions.append(Version(
            number=number, published_at=time.time(), published_by=by,
            notebook=f"{rel}/{name}.ipynb",
            thumbnail=f"{rel}/thumbnail.png" if thumbnail is not None else None))
        self._save(app)
        return app

    def set_hidden(self, course: str, name: str, hidden: bool) -> App:
        app = self.get(course, name)
        if app is None:
            raise PublishError(f"no app {name!r} in course {course!r}", 404)
        app.hidden = hidden
        self._save(app)
        return app

    def _save(self, app: App) -> None:
        path = self._app_file(app.course, app.name)
        data = asdict(app)
        fd, tmp = tempfile.mkstemp(prefix=".app-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    path.chmod(0o755)
    for f in path.iterdir():
        f.unlink()
    path.rmdir()
