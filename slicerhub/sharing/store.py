"""The sharing service's records: links (read-only or collaborate) and who accepted them.

JupyterHub keeps the share codes and the shares themselves; a share made from
a code does not expire, and the hub does not remember which code made it. This
store remembers that (link → code id → viewers), so the service can withdraw
exactly the access a link gave when it expires or is revoked. The code itself
(the secret in the link) is never stored.

SQLite, one file, one writer (the service process).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import time
from dataclasses import dataclass, field
from pathlib import Path

import slicerhub_access as access

# A user's share link; a teacher joining a student's session read-only; a
# teacher helping a student who accepted (collaborate).
KINDS = ("link", "join", "help")
HELP_ANSWERS = ("accepted", "declined", "withdrawn")

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    server TEXT NOT NULL,
    code_id TEXT,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    revoked REAL,
    ended REAL
);
CREATE INDEX IF NOT EXISTS links_owner ON links (owner, server);
CREATE TABLE IF NOT EXISTS viewers (
    link_id TEXT NOT NULL REFERENCES links (id),
    viewer TEXT NOT NULL,
    accepted REAL NOT NULL,
    PRIMARY KEY (link_id, viewer)
);
CREATE TABLE IF NOT EXISTS help_requests (
    id TEXT PRIMARY KEY,
    course TEXT NOT NULL,
    teacher TEXT NOT NULL,
    student TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    answer TEXT,
    answered REAL,
    link_id TEXT REFERENCES links (id)
);
CREATE INDEX IF NOT EXISTS help_student ON help_requests (student);
"""


def new_link_id() -> str:
    """12 URL-safe characters that never start with "-": people paste ids
    after `slicerhub share revoke`, and argparse reads "-x…" as an option."""
    return secrets.choice(string.ascii_letters + string.digits) + secrets.token_urlsafe(8)


@dataclass
class Link:
    id: str
    kind: str
    owner: str
    server: str
    code_id: str | None
    scopes: list[str]
    created_by: str
    created: float
    expires: float
    revoked: float | None = None
    ended: float | None = None
    viewers: dict[str, float] = field(default_factory=dict)

    @property
    def access(self) -> str:
        """What the link gives: "read" or "collaborate" (from its scopes)."""
        return access.shared_level(self.scopes) or "read"

    def active(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.revoked is None and self.ended is None and now < self.expires

    def state(self, now: float | None = None) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.ended is not None or not self.active(now):
            return "expired"
        return "active"

    def to_json(self, now: float | None = None) -> dict:
        return {
            "id": self.id, "kind": self.kind, "access": self.access, "owner": self.owner, "server": self.server,
            "state": self.state(now), "created_by": self.created_by,
            "created": _iso(self.created), "expires": _iso(self.expires),
            "revoked": _iso(self.revoked) if self.revoked else None,
            "viewers": [{"name": v, "accepted": _iso(t)} for v, t in sorted(self.viewers.items())],
        }


@dataclass
class HelpRequest:
    """A teacher's offer to help a student; the student accepts or declines it."""

    id: str
    course: str
    teacher: str
    student: str
    created: float
    expires: float  # the offer's, not the help's: the link has its own expiry
    answer: str | None = None
    answered: float | None = None
    link_id: str | None = None

    def state(self, now: float | None = None) -> str:
        """pending, accepted, declined, withdrawn, or expired (never answered)."""
        if self.answer:
            return self.answer
        return "pending" if (time.time() if now is None else now) < self.expires else "expired"

    def to_json(self, now: float | None = None) -> dict:
        return {"id": self.id, "course": self.course, "teacher": self.teacher, "student": self.student,
                "state": self.state(now), "created": _iso(self.created), "expires": _iso(self.expires),
                "answered": _iso(self.answered) if self.answered else None, "link": self.link_id}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class LinkStore:
    def __init__(self, path: str | Path):
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def _link(self, row: sqlite3.Row) -> Link:
        viewers = {r["viewer"]: r["accepted"] for r in
                   self.db.execute("SELECT viewer, accepted FROM viewers WHERE link_id = ?", (row["id"],))}
        return Link(id=row["id"], kind=row["kind"], owner=row["owner"], server=row["server"],
                    code_id=row["code_id"], scopes=json.loads(row["scopes"]), created_by=row["created_by"],
                    created=row["created"], expires=row["expires"], revoked=row["revoked"],
                    ended=row["ended"], viewers=viewers)

    def create(self, *, kind: str, owner: str, server: str, scopes: list[str], created_by: str,
               expires_in: float, code_id: str | None = None, now: float | None = None) -> Link:
        if kind not in KINDS:
            raise ValueError(f"unknown link kind {kind!r}")
        now = time.time() if now is None else now
        link_id = new_link_id()
        self.db.execute(
            "INSERT INTO links (id, kind, owner, server, code_id, scopes, created_by, created, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (link_id, kind, owner, server, code_id, json.dumps(scopes), created_by, now, now + expires_in))
        return self.get(link_id)

    def get(self, link_id: str) -> Link | None:
        row = self.db.execute("SELECT * FROM links WHERE id = ?", (link_id,)).fetchone()
        return self._link(row) if row else None

    def for_owner(self, owner: str, *, include_ended: bool = False, now: float | None = None) -> list[Link]:
        rows = self.db.execute("SELECT * FROM links WHERE owner = ? ORDER BY created DESC", (owner,))
        links = [self._link(r) for r in rows]
        return links if include_ended else [link for link in links if link.active(now)]

    def active_for_server(self, owner: str, server: str, now: float | None = None) -> list[Link]:
        rows = self.db.execute("SELECT * FROM links WHERE owner = ? AND server = ? AND ended IS NULL",
                               (owner, server))
        return [link for link in map(self._link, rows) if link.active(now)]

    def add_viewer(self, link_id: str, viewer: str, now: float | None = None) -> bool:
        """Record that ``viewer`` accepted the link; False if already recorded."""
        now = time.time() if now is None else now
        cur = self.db.execute("INSERT OR IGNORE INTO viewers (link_id, viewer, accepted) VALUES (?, ?, ?)",
                              (link_id, viewer, now))
        return cur.rowcount == 1

    def revoke(self, link_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.db.execute("UPDATE links SET revoked = ? WHERE id = ? AND revoked IS NULL", (now, link_id))

    def due(self, now: float | None = None) -> list[Link]:
        """Links whose access must be withdrawn now: revoked or expired, not yet ended."""
        now = time.time() if now is None else now
        rows = self.db.execute("SELECT * FROM links WHERE ended IS NULL AND (revoked IS NOT NULL OR expires <= ?)",
                               (now,))
        return [self._link(r) for r in rows]

    def owners_with_links(self) -> list[tuple[str, str]]:
        rows = self.db.execute("SELECT DISTINCT owner, server FROM links WHERE ended IS NULL")
        return [(r["owner"], r["server"]) for r in rows]

    def end(self, link_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.db.execute("UPDATE links SET ended = ? WHERE id = ?", (now, link_id))

    # Help requests -----------------------------------------------------------

    def ask_help(self, *, course: str, teacher: str, student: str, answer_within: float,
                 now: float | None = None) -> HelpRequest:
        now = time.time() if now is None else now
        request_id = new_link_id()
        self.db.execute("INSERT INTO help_requests (id, course, teacher, student, created, expires)"
                        " VALUES (?, ?, ?, ?, ?, ?)", (request_id, course, teacher, student, now, now + answer_within))
        return self.help_request(request_id)

    def help_request(self, request_id: str) -> HelpRequest | None:
        row = self.db.execute("SELECT * FROM help_requests WHERE id = ?", (request_id,)).fetchone()
        return HelpRequest(**dict(row)) if row else None

    def help_requests(self, *, teacher: str | None = None, student: str | None = None,
                      since: float = 0) -> list[HelpRequest]:
        """A teacher's or a student's requests made after SINCE, newest first."""
        column, name = ("teacher", teacher) if teacher is not None else ("student", student)
        rows = self.db.execute(f"SELECT * FROM help_requests WHERE {column} = ? AND created >= ?"
                               " ORDER BY created DESC", (name, since))
        return [HelpRequest(**dict(r)) for r in rows]

    def answer_help(self, request_id: str, answer: str, link_id: str | None = None,
                    now: float | None = None) -> bool:
        """Record the answer to a pending request; False if it was no longer pending."""
        if answer not in HELP_ANSWERS:
            raise ValueError(f"unknown answer {answer!r}")
        now = time.time() if now is None else now
        cur = self.db.execute("UPDATE help_requests SET answer = ?, answered = ?, link_id = ?"
                              " WHERE id = ? AND answer IS NULL AND expires > ?",
                              (answer, now, link_id, request_id, now))
        return cur.rowcount == 1
