"""A teacher who helps: the teacher offers help to a student of their course,
the student accepts or declines, and only an accepted offer gives the teacher
anything: a collaborate share on the student's server (edit and run together,
watch the desktop until the student hands over the mouse) for ``join_expiry``
seconds, which either of them can end at once. Every step is audited.

* ``POST help/offer/<course>/<student>``  the teacher offers (→ the offer's page)
* ``GET  help/<id>``                       the offer's page: the student answers,
                                           the teacher waits, opens the session, or ends it
* ``POST help/<id>/accept``, ``…/decline``  the student
* ``POST help/<id>/end``                   either: withdraw the offer, or end the help
* ``GET  api/help``                        ``{"offered": offers to me, "asked": my offers}``
"""

from __future__ import annotations

import time

import slicerhub_access as access
from jupyterhub.utils import url_path_join
from tornado import web

from ..hubservice import COURSE_SEGMENT, api_authenticated, membership
from .hub import HubError
from .service import SERVER, _Teacher, reconcile, running
from .store import HelpRequest

# How long a student has to answer before the offer lapses.
ANSWER_WITHIN = 600
# The offers api/help lists: the last day's.
LISTED_FOR = 86400


class _Help(_Teacher):
    def _request(self, request_id: str, *, as_: str | None = None) -> HelpRequest:
        """The offer, if the current user is its teacher or student (as AS_, when given)."""
        req = self.s.store.help_request(request_id)
        me = self.current_user["name"]
        if req is None or me not in (req.teacher, req.student):
            raise web.HTTPError(404, f"no offer of help {request_id!r}")
        if as_ is not None and getattr(req, as_) != me:
            raise web.HTTPError(403, f"only the {as_} answers this")
        return req

    def _audit(self, action: str, req: HelpRequest, **extra) -> None:
        self.s.audit.write(action, self.current_user["name"], request=req.id, course=req.course,
                           teacher=req.teacher, student=req.student, **extra)

    def _shown(self, req: HelpRequest) -> dict:
        """The offer as pages show it: accepted help whose link ended is "ended"."""
        model = req.to_json()
        if model["state"] == "accepted":
            link = self.s.store.get(req.link_id)
            if link is None or not link.active():
                model["state"] = "ended"
        return model

    def _back(self, req: HelpRequest) -> None:
        self.redirect(url_path_join(self.prefix, "help", req.id))


class Offer(_Help):
    @web.authenticated
    async def post(self, course: str, student: str):
        teacher = await self._student(course, student)
        # An offer still waiting is not made twice.
        for req in self.s.store.help_requests(teacher=teacher):
            if req.student == student and req.state() == "pending":
                return self._back(req)
        req = self.s.store.ask_help(course=course, teacher=teacher, student=student, answer_within=ANSWER_WITHIN)
        self._audit("help-offer", req)
        self._back(req)


class OfferPage(_Help):
    @web.authenticated
    def get(self, request_id: str):
        req = self._request(request_id)
        link = self.s.store.get(req.link_id) if req.link_id else None
        shown = self._shown(req)
        self.finish(self.render_page(
            "help.html", page_title=f"Help in {req.course}", req=shown, state=shown["state"],
            is_teacher=self.current_user["name"] == req.teacher, link=link.to_json() if link else None,
            hours=round(self.s.join_expiry / 3600, 1)))


class Answer(_Help):
    @web.authenticated
    async def post(self, request_id: str, answer: str):
        req = self._request(request_id, as_="student")
        if req.state() != "pending":
            raise web.HTTPError(409, f"this offer is {req.state()}: there is nothing to answer")
        if answer == "decline":
            if self.s.store.answer_help(req.id, "declined"):
                self._audit("help-decline", req)
            return self._back(req)
        if not running(await self.s.hub.user(req.student)):
            raise web.HTTPError(409, "your server is not running: start it, then accept")
        # Memberships change (the directory, at each login): the offer holds
        # only while the teacher still teaches the student's course.
        teacher = membership(await self.s.hub.user(req.teacher) or {"name": req.teacher},
                             self.s.courses, self.s.teacher_groups)
        if req.course not in teacher.teaches or req.student not in await self.s.hub.group_members(req.course):
            raise web.HTTPError(409, f"{req.teacher} no longer teaches you in {req.course}")
        # The link first, then the answer, then the grant: whatever happens
        # after the claim, a live link accounts for the access, and the sweep
        # ends it at the latest at its expiry.
        scopes = access.share_scopes("collaborate", req.student, SERVER)
        link = self.s.store.create(kind="help", owner=req.student, server=SERVER, scopes=scopes,
                                   created_by=req.teacher, expires_in=self.s.join_expiry)
        self.s.store.add_viewer(link.id, req.teacher)
        if not self.s.store.answer_help(req.id, "accepted", link.id):
            self.s.store.end(link.id)  # nothing was granted
            raise web.HTTPError(409, "this offer was withdrawn or lapsed meanwhile")
        try:
            # With the student's own token, as their links are made: the
            # service itself may grant teachers no more than reading.
            await self.s.hub.grant(req.student, SERVER, req.teacher, scopes,
                                   owner_token=self.hub_auth.get_token(self))
        except HubError as e:
            self.s.store.revoke(link.id)  # the sweep takes back anything the hub did grant
            self._audit("help-accept-failed", req, link=link.id, error=e.message)
            raise web.HTTPError(502, f"the hub refused: {e.message}") from None
        if not self.s.store.get(link.id).active():
            # Ended while the hub granted (the teacher withdrew): take it back.
            await reconcile(self.s, req.student, SERVER)
            raise web.HTTPError(409, "the help was ended meanwhile")
        self._audit("help-accept", req, link=link.id, expires=link.to_json()["expires"])
        self._back(req)


class End(_Help):
    @web.authenticated
    async def post(self, request_id: str):
        req = self._request(request_id)
        me = self.current_user["name"]
        if req.state() == "pending":
            answer = "withdrawn" if me == req.teacher else "declined"
            if self.s.store.answer_help(req.id, answer):
                self._audit("help-withdraw" if answer == "withdrawn" else "help-decline", req)
        elif req.link_id:
            link = self.s.store.get(req.link_id)
            if link is not None and link.ended is None:
                self._audit("help-end", req, link=link.id)
                await self._revoke(link)
        self._back(req)


class HelpAPI(_Help):
    @api_authenticated
    def get(self):
        me, since = self.current_user["name"], time.time() - LISTED_FOR
        self.write_json({
            "offered": [self._shown(r) for r in self.s.store.help_requests(student=me, since=since)],
            "asked": [self._shown(r) for r in self.s.store.help_requests(teacher=me, since=since)],
        })


def routes(prefix: str, kw: dict) -> list:
    request_id = r"([A-Za-z0-9_-]{6,32})"
    return [
        (url_path_join(prefix, "api/help"), HelpAPI, kw),
        (url_path_join(prefix, rf"help/offer/{COURSE_SEGMENT}/([^/]+)"), Offer, kw),
        (url_path_join(prefix, rf"help/{request_id}"), OfferPage, kw),
        (url_path_join(prefix, rf"help/{request_id}/(accept|decline)"), Answer, kw),
        (url_path_join(prefix, rf"help/{request_id}/end"), End, kw),
    ]
