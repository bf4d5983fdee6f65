"""The sharing service: read-only and collaborate links to a running session,
and teachers' "join read-only", as a JupyterHub service at /services/sharing/.

Owners (their own OAuth or API token; browser forms carry JupyterHub's xsrf token):

* ``GET  /``                    their links, a form to make one, revoke buttons
* ``POST /api/links``           ``{"expires_in": seconds, "access": "read" | "collaborate"}``
                                → the link (its URL is shown once)
* ``GET  /api/links``           their links (``?all=1``: ended ones too)
* ``DELETE /api/links/<id>``    revoke: the code is deleted and viewers lose access at once

Viewers:

* the link is the hub's own ``/hub/accept-share?code=…`` page, whose ``next``
  brings them to ``accepted/<id>`` (recorded, audited) and ``view/<id>``: the
  owner's live desktop (view-only listener) and files, read-only; with a
  collaborate link, the owner's JupyterLab to edit and run notebooks together
  (what each level may do: ``slicerhub_access``, enforced by the server's guard).

Teachers: ``course/<course>`` lists the course's students with "Join
read-only" and "Offer help"; ``POST join/<course>/<student>`` grants the teacher a read-only
share on that student's running server for ``--join-expiry`` seconds; an offer
of help gives a collaborate share only once the student accepts (``help.py``).

A link is a JupyterHub share code made with the *owner's* token (the hub
checks the owner may grant read access to their own server). Shares made from
codes do not expire in the hub, so the service remembers which viewer came
through which link and, every ``--sweep-every`` seconds, withdraws the shares
of links that expired or were revoked; what a share on a server holds beyond
its holder's live links is withdrawn too. Creation, acceptance, joins, revocation and
expiry go to the audit log (JSON lines). The code in a link is never stored or
logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from urllib.parse import quote

import slicerhub_access as access
from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop, PeriodicCallback

from ..config import Sharing, default_of
from ..hubservice import (COURSE_SEGMENT, AuditLog, NotFound, ServiceHandler, SessionCheck, api_authenticated,
                          membership, serve)
from .hub import HubAPI, HubError
from .store import Link, LinkStore

log = logging.getLogger("slicerhub.sharing")
SERVER = ""  # SlicerHub runs one (default) server per user


def running(model: dict | None) -> bool:
    """Whether the hub's user model says their (default) server is ready."""
    return bool(((model or {}).get("servers") or {}).get(SERVER, {}).get("ready"))


class Settings:
    def __init__(self, store: LinkStore, hub: HubAPI, *, default_expiry: int, max_expiry: int,
                 join_expiry: int, courses: list[str], teacher_groups: list[str], audit_log: str | None):
        self.store, self.hub = store, hub
        self.default_expiry, self.max_expiry, self.join_expiry = default_expiry, max_expiry, join_expiry
        self.courses, self.teacher_groups = set(courses), set(teacher_groups)
        self.audit = AuditLog(audit_log, log)


# ------------------------------------------------------------------ withdrawing


async def withdraw(s: Settings, link: Link, reason: str) -> None:
    """End a link: delete its code, take back what its viewers got from it."""
    if link.code_id:
        await s.hub.delete_share_code(link.owner, link.server, link.code_id)
    # What a viewer still holds through other live links stays (a collaborator
    # who also has a read-only link keeps reading; one in two collaborate
    # links keeps collaborating).
    others = [other for other in s.store.active_for_server(link.owner, link.server) if other.id != link.id]
    for viewer in sorted(link.viewers):
        kept = {sc for other in others if viewer in other.viewers for sc in other.scopes}
        taken = sorted(set(link.scopes) - kept)
        if taken:
            await s.hub.revoke(link.owner, link.server, viewer, taken)
    s.store.end(link.id)
    s.audit.write("end", link.owner, link=link.id, kind=link.kind, access=link.access, reason=reason,
                  viewers=sorted(link.viewers))
    # A viewer who accepted but was not seen yet (never reached accepted/<id>)
    # loses the share now too, even when this was the server's last link.
    try:
        await reconcile(s, link.owner, link.server)
    except HubError as e:
        log.warning("cannot reconcile %s/%s after ending link %s: %s", link.owner, link.server, link.id, e.message)


async def reconcile(s: Settings, owner: str, server: str) -> None:
    """Attribute shares made from our codes; withdraw what no live link accounts for.

    Each share's scopes are compared with what its holder's live links give
    (``slicerhub_access.share_scopes``); the excess is either a code we have
    not seen used yet (attributed to that link) or withdrawn. Shares holding
    anything a link cannot give were made by the owner by hand: left alone.
    """
    links = s.store.active_for_server(owner, server)
    managed = access.managed_share_scopes(owner, server)
    shares = [sh for sh in await s.hub.shares(owner, server) if sh.get("user")]
    exchanges = None
    for share in shares:
        viewer, held = share["user"]["name"], set(share.get("scopes", []))
        if held - managed:
            continue
        granted = {sc for link in links if viewer in link.viewers for sc in link.scopes}
        if held <= granted:
            continue
        if exchanges is None:
            exchanges = {c["id"]: c.get("exchange_count", 0) for c in await s.hub.share_codes(owner, server)}
        # A link whose code was used more often than we saw viewers arrive, and
        # that gives what this share holds beyond the viewer's known links.
        spare = sorted((link for link in links if link.code_id and viewer not in link.viewers
                        and exchanges.get(link.code_id, 0) > len(link.viewers)
                        and set(link.scopes) <= held and not set(link.scopes) <= granted),
                       key=lambda link: link.expires)
        if spare:
            link = spare[0]
            s.store.add_viewer(link.id, viewer)
            link.viewers[viewer] = time.time()
            granted |= set(link.scopes)
            s.audit.write("accept", viewer, link=link.id, owner=owner, access=link.access, via="hub")
        excess = sorted(held - granted)
        if excess:
            await s.hub.revoke(owner, server, viewer, excess)
            s.audit.write("end", owner, viewers=[viewer], scopes=excess, reason="no live link")


async def sweep(s: Settings) -> None:
    servers = set(s.store.owners_with_links())
    for link in s.store.due():
        try:
            await withdraw(s, link, "revoked" if link.revoked else "expired")
        except HubError as e:
            log.warning("sweep: cannot withdraw link %s yet: %s", link.id, e.message)
    # Then what no link accounts for (e.g. a code used just before it expired).
    for owner, server in sorted(servers):
        try:
            await reconcile(s, owner, server)
        except HubError as e:
            log.warning("sweep: cannot reconcile %s/%s: %s", owner, server, e.message)


# ------------------------------------------------------------------- handlers


class _Base(ServiceHandler):
    def set_default_headers(self):
        # Its buttons grant and end access (accept help, create, revoke):
        # no other site may frame them for a click.
        self.set_header("Content-Security-Policy", "frame-ancestors 'self'")

    def _owned(self, link_id: str) -> Link:
        link = self.s.store.get(link_id)
        user = self.current_user["name"]
        if link is None or user not in (link.owner, link.created_by):
            raise web.HTTPError(404, f"no link {link_id!r}")
        return link

    def _expiry(self, raw) -> int:
        if raw in (None, ""):
            return self.s.default_expiry
        try:
            if isinstance(raw, bool):
                raise TypeError(raw)
            seconds = int(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: infinity
            raise web.HTTPError(400, "expires_in must be a number of seconds") from None
        if not 60 <= seconds <= self.s.max_expiry:
            raise web.HTTPError(400, f"expires_in must be between 60 and {self.s.max_expiry} seconds")
        return seconds

    def _access(self, raw) -> str:
        if raw in (None, ""):
            return "read"
        if raw not in access.SHAREABLE:
            raise web.HTTPError(400, f"access must be one of: {', '.join(access.SHAREABLE)}")
        return raw

    async def _create(self, expires_in: int, level: str = "read") -> tuple[Link, str]:
        owner = self.current_user["name"]
        model = await self.s.hub.user(owner)
        if not running(model):
            raise web.HTTPError(409, "your server is not running: start it, then share it")
        token = self.hub_auth.get_token(self)
        scopes = access.share_scopes(level, owner, SERVER)
        try:
            code = await self.s.hub.new_share_code(token, owner, SERVER, scopes, expires_in)
        except HubError as e:
            raise web.HTTPError(e.status if e.status in (400, 403) else 502,
                                f"the hub refused the share: {e.message}") from None
        link = self.s.store.create(kind="link", owner=owner, server=SERVER, scopes=scopes,
                                   created_by=owner, expires_in=expires_in, code_id=code["id"])
        self.s.audit.write("create", owner, link=link.id, access=level, expires=link.to_json()["expires"])
        accepted = url_path_join(self.prefix, "accepted", link.id)
        # A full URL to hand over: the hub's public_url if set, else the host
        # this request came in on (the proxy keeps it).
        base = code.get("full_accept_url") or (
            f"{self.request.headers.get('X-Forwarded-Proto', self.request.protocol)}://"
            f"{self.request.host}{code['accept_url']}")
        return link, f"{base}&next={quote(accepted, safe='')}"

    async def _revoke(self, link: Link) -> None:
        user = self.current_user["name"]
        if link.ended is None:
            self.s.store.revoke(link.id)
            self.s.audit.write("revoke", user, link=link.id, owner=link.owner)
            await withdraw(self.s, self.s.store.get(link.id), "revoked")


class LinksAPI(_Base):
    @api_authenticated
    def get(self):
        links = self.s.store.for_owner(self.current_user["name"], include_ended=bool(self.get_argument("all", "")))
        self.write_json({"links": [link.to_json() for link in links]})

    @api_authenticated
    async def post(self):
        body = self.json_body()
        link, url = await self._create(self._expiry(body.get("expires_in")), self._access(body.get("access")))
        self.write_json({**link.to_json(), "url": url}, 201)


class LinkAPI(_Base):
    @api_authenticated
    async def delete(self, link_id: str):
        await self._revoke(self._owned(link_id))
        self.set_status(204)
        self.finish()


# Pages -----------------------------------------------------------------------


EXPIRY_CHOICES = [(900, "15 minutes"), (3600, "1 hour"), (8 * 3600, "8 hours"), (86400, "1 day"),
                  (7 * 86400, "1 week")]


class SharePage(_Base):
    def _render(self, created: tuple[Link, str] | None = None) -> None:
        me = self.current_user["name"]
        links = [link.to_json() for link in self.s.store.for_owner(me)]
        offers = [r.to_json() for r in self.s.store.help_requests(student=me, since=time.time() - 86400)
                  if r.state() == "pending"]
        self.finish(self.render_page(
            "share.html", page_title="Share your session", links=links, offers=offers,
            created={"url": created[1], "expires": created[0].to_json()["expires"],
                     "access": created[0].access} if created else None,
            choices=[(sec, label) for sec, label in EXPIRY_CHOICES if sec <= self.s.max_expiry],
            default_expiry=self.s.default_expiry))

    @web.authenticated
    def get(self):
        self._render()

    @web.authenticated
    async def post(self):  # the form (cookie + xsrf token)
        self._render(await self._create(self._expiry(self.get_argument("expires_in", None)),
                                        self._access(self.get_argument("access", None))))


class RevokeLinkForm(_Base):
    @web.authenticated
    async def post(self, link_id: str):
        await self._revoke(self._owned(link_id))
        self.redirect(self.prefix)


class Accepted(_Base):
    """Where the hub's accept-share page sends a viewer after accepting."""

    @web.authenticated
    async def get(self, link_id: str):
        viewer = self.current_user["name"]
        link = self.s.store.get(link_id)
        if link is None or not link.active():
            raise web.HTTPError(404, "this link has expired or was revoked")
        shares = await self.s.hub.shares(link.owner, link.server)
        if not any(sh.get("user") and sh["user"]["name"] == viewer for sh in shares):
            raise web.HTTPError(403, "accept the link first")
        if viewer not in link.viewers:
            # Only as many viewers as this link's code was exchanged: a share that came
            # through another link does not make its holder a viewer of this one.
            used = {c["id"]: c.get("exchange_count", 0)
                    for c in await self.s.hub.share_codes(link.owner, link.server)}
            if used.get(link.code_id, 0) <= len(link.viewers):
                raise web.HTTPError(403, "accept this link first")
        if self.s.store.add_viewer(link.id, viewer):
            self.s.audit.write("accept", viewer, link=link.id, owner=link.owner)
        self.redirect(url_path_join(self.prefix, "view", link.id))


class View(_Base):
    @web.authenticated
    def get(self, link_id: str):
        viewer = self.current_user["name"]
        link = self.s.store.get(link_id)
        if link is None or not link.active() or viewer not in link.viewers:
            raise web.HTTPError(404, "no such shared session (expired, revoked, or not yours to view)")
        self.finish(self.render_page("view.html", page_title=f"{link.owner}'s session", link=link,
                                     expires=link.to_json()["expires"],
                                     server=url_path_join(self.base_url, "user", quote(link.owner))))


class _Teacher(_Base):
    async def _students(self, course: str) -> tuple[str, list[str]]:
        teacher = self.current_user["name"]
        m = membership(await self.s.hub.user(teacher) or {"name": teacher}, self.s.courses, self.s.teacher_groups)
        if course not in m.courses:
            raise web.HTTPError(404, f"no course {course!r}")
        if course not in m.teaches:
            raise web.HTTPError(403, f"only teachers of {course!r} can join its students' sessions")
        members = await self.s.hub.group_members(course)
        teachers = set()
        for g in self.s.teacher_groups:
            teachers |= set(await self.s.hub.group_members(g))
        return teacher, sorted(m for m in members if m not in teachers)

    async def _student(self, course: str, student: str) -> str:
        """The teacher, if STUDENT is a student of the COURSE they teach."""
        teacher, students = await self._students(course)
        if student not in students:
            raise web.HTTPError(404, f"{student!r} is not a student of {course!r}")
        return teacher

    async def _student_states(self, course: str) -> list[dict]:
        _, students = await self._students(course)
        out = []
        for student in students:
            model = await self.s.hub.user(student) or {}
            out.append({"name": student, "running": running(model)})
        return out


class CoursePage(_Teacher):
    @web.authenticated
    async def get(self, course: str):
        students = await self._student_states(course)
        self.finish(self.render_page("students.html", page_title=f"{course}: students", course=course,
                                     students=students))


class StudentsAPI(_Teacher):
    """``GET api/courses/<course>/students``: the home page's list for a teacher,
    with the xsrf token its "Join read-only" forms post with."""

    @api_authenticated
    async def get(self, course: str):
        students = await self._student_states(course)
        token = self.xsrf_token
        self.write_json({"course": course, "students": students,
                         "join_url": url_path_join(self.prefix, "join", course) + "/",
                         "help_url": url_path_join(self.prefix, "help/offer", course) + "/",
                         "xsrf": token.decode() if isinstance(token, bytes) else token})


class Join(_Teacher):
    @web.authenticated
    async def post(self, course: str, student: str):
        teacher = await self._student(course, student)
        model = await self.s.hub.user(student)
        if not running(model):
            raise web.HTTPError(409, f"{student}'s server is not running")
        scopes = access.share_scopes("read", student, SERVER)
        try:
            await self.s.hub.grant(student, SERVER, teacher, scopes)
        except HubError as e:
            raise web.HTTPError(502, f"the hub refused: {e.message}") from None
        link = self.s.store.create(kind="join", owner=student, server=SERVER, scopes=scopes,
                                   created_by=teacher, expires_in=self.s.join_expiry)
        self.s.store.add_viewer(link.id, teacher)
        self.s.audit.write("join", teacher, link=link.id, owner=student, course=course)
        self.redirect(url_path_join(self.prefix, "view", link.id))


def make_app(settings: Settings) -> web.Application:
    from .help import routes as help_routes  # help.py builds on this module's handlers

    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/sharing/")
    kw = {"settings": settings}
    link_id = r"([A-Za-z0-9_-]{6,32})"
    return web.Application([
        (prefix + r"?", SharePage, kw),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        (url_path_join(prefix, "api/session"), SessionCheck),
        (url_path_join(prefix, r"api/links/?"), LinksAPI, kw),
        (url_path_join(prefix, rf"api/links/{link_id}"), LinkAPI, kw),
        (url_path_join(prefix, r"links"), SharePage, kw),
        (url_path_join(prefix, rf"links/{link_id}/revoke"), RevokeLinkForm, kw),
        (url_path_join(prefix, rf"accepted/{link_id}"), Accepted, kw),
        (url_path_join(prefix, rf"view/{link_id}"), View, kw),
        (url_path_join(prefix, rf"course/{COURSE_SEGMENT}"), CoursePage, kw),
        (url_path_join(prefix, rf"api/courses/{COURSE_SEGMENT}/students"), StudentsAPI, kw),
        (url_path_join(prefix, rf"join/{COURSE_SEGMENT}/([^/]+)"), Join, kw),
        *help_routes(prefix, kw),
    ], cookie_secret=os.urandom(32), default_handler_class=NotFound)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slicerhub.sharing.service")
    parser.add_argument("--db", required=True, help="the service's SQLite file")
    parser.add_argument("--audit-log", help="append one JSON line per create/accept/join/revoke/end here")
    parser.add_argument("--default-expiry", type=int, default=default_of(Sharing, "default_expiry"))
    parser.add_argument("--max-expiry", type=int, default=default_of(Sharing, "max_expiry"))
    parser.add_argument("--join-expiry", type=int, default=default_of(Sharing, "join_expiry"))
    parser.add_argument("--sweep-every", type=float, default=default_of(Sharing, "sweep_every"))
    parser.add_argument("--course", action="append", default=[], help="a course (hub group); repeat")
    parser.add_argument("--teacher-group", action="append", default=[], help="a teachers' group; repeat")
    args = parser.parse_args(argv)
    settings = Settings(LinkStore(args.db), HubAPI(os.environ["JUPYTERHUB_API_URL"],
                                                   os.environ["JUPYTERHUB_API_TOKEN"]),
                        default_expiry=args.default_expiry, max_expiry=args.max_expiry,
                        join_expiry=args.join_expiry, courses=args.course,
                        teacher_groups=args.teacher_group, audit_log=args.audit_log)
    app = make_app(settings)
    url = serve(app, "sharing")
    PeriodicCallback(lambda: sweep(settings), args.sweep_every * 1000).start()
    log.info("sharing service on %s (sweep every %.0f s)", url, args.sweep_every)
    IOLoop.current().start()


if __name__ == "__main__":
    # Run the canonical module's main: help.py imports slicerhub.sharing.service,
    # and one copy of its handler classes and settings must serve.
    from slicerhub.sharing.service import main as canonical_main

    canonical_main()
