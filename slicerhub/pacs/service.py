"""The PACS gateway: the site's DICOMweb server, for the people allowed to see
it, as a JupyterHub service at /services/pacs/.

* ``GET /open?study=<StudyInstanceUID>[&series=<SeriesInstanceUID>]`` — the
  "Open in SlicerHub" link a PACS viewer puts in its menu. The browser signs
  in through the hub (LDAP) if needed; a UID that is not a UID is a 400, a
  person outside ``pacs.groups`` a 403, a study or series the PACS does not
  have a 404, and nothing is started or loaded then. Otherwise the page
  names the patient and the study, with one button.
* ``POST /open`` (that button; the hub's xsrf token) makes a one-time ticket
  for this person and study and sends the browser on to the hub's spawn page
  (which starts the server, or reuses the running one) and from there to the
  server's ``slicerhub/open?ticket=…``. The server claims the ticket here
  (``POST /api/tickets/<id>``, with its own token), retrieves the series
  through this gateway and shows it in the desktop. A link alone, from any
  web page, therefore never changes what is on a clinician's screen: only
  their own click on a page that named the patient does.
* ``GET /dicom-web/…`` — read-only DICOMweb (QIDO-RS searches, WADO-RS
  retrieval) for user servers, with their hub API token (never a browser
  cookie). The PACS credentials stay here; every request is checked against
  the groups and recorded in the audit log; answers are streamed at the pace
  the server reads them.
* ``GET /`` — the studies this person may open, newest first, each with its link.

Who may see what is decided per person from their hub groups (synced from
LDAP at login), looked up with the service's own token.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_escape_path, url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from ..config import Pacs, default_of
from ..hubservice import AuditLog, NotFound, ServiceHandler, api_authenticated, serve
from ..sharing.hub import HubAPI, HubError

log = logging.getLogger("slicerhub.pacs")

# A DICOM UID (PS3.5 9.1): digits in dot-separated components, no leading zeros, at most 64 characters.
_UID = r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+"
UID = re.compile(_UID)
# The DICOMweb resources the gateway passes on (GET only): QIDO searches and WADO-RS retrieval.
DICOMWEB_PATHS = re.compile(
    rf"studies(?:/{_UID}(?:/metadata|/series(?:/{_UID}(?:/metadata|/instances(?:/{_UID}"
    rf"(?:/metadata|/frames/[1-9][0-9]{{0,5}}(?:,[1-9][0-9]{{0,5}}){{0,99}})?)?)?)?)?)?"
    rf"|series|instances")
# Headers of the PACS's answer passed back to the server (the body is streamed, chunked:
# tornado's client may have decompressed it, so the PACS's Content-Length is not passed).
PASSED_HEADERS = ("Content-Type", "Content-Location")
GROUPS_CACHE_SECONDS = 10.0
MAX_QUERY = 2000
# QIDO query keys passed to the PACS: attribute matching by keyword or tag, and
# QIDO's own controls. Anything else (a `token=`, vendor extensions) stays here.
QIDO_KEY = re.compile(r"[A-Z][A-Za-z0-9]{1,63}|[0-9A-Fa-f]{8}|includefield|limit|offset|fuzzymatching")
MAX_RESULTS = 1000
# Streams to the PACS at once (each holds a connection while its server reads).
PACS_CONNECTIONS = 20
# Attributes of a search answer that name the PACS's own addresses (RetrieveURL,
# RetrieveURI): they would tell every server where the PACS is inside the hospital.
PACS_ADDRESS_TAGS = ("00081190", "0040E010")
TICKET_SECONDS = 300.0
STREAM_RETRY_SECONDS = 2


def valid_uid(text: str | None) -> bool:
    return bool(text) and len(text) <= 64 and UID.fullmatch(text) is not None


class Settings:
    def __init__(self, hub: HubAPI, *, dicomweb_url: str, username: str | None, password: str | None,
                 groups: list[str], timeout: float, audit_log: str | None,
                 streams_per_user: int = default_of(Pacs, "streams_per_user")):
        self.hub = hub
        self.dicomweb_url = dicomweb_url.rstrip("/")
        self.username, self.password = username, password
        self.groups = set(groups)
        self.timeout = timeout
        self.audit = AuditLog(audit_log, log)
        self._groups_of: dict[str, tuple[float, set[str]]] = {}
        self._tickets: dict[str, tuple[float, str, str, str | None]] = {}
        self.streams_per_user = streams_per_user
        self._streams: dict[str, int] = {}  # user -> requests to the PACS open now
        # Its own connections: slow streams never hold up the hub API calls (groups, tokens).
        self.pacs = AsyncHTTPClient(force_instance=True, max_clients=PACS_CONNECTIONS,
                                    max_body_size=1 << 40, max_buffer_size=64 << 20)

    def new_ticket(self, user: str, study: str, series: str | None) -> str:
        now = time.monotonic()
        self._tickets = {k: v for k, v in self._tickets.items() if v[0] > now}
        ticket = secrets.token_urlsafe(24)
        self._tickets[ticket] = (now + TICKET_SECONDS, user, study, series)
        return ticket

    def claim(self, ticket: str, user: str) -> tuple[str, str | None] | None:
        """The study of USER's ticket, once; None for an unknown, used, expired or someone else's ticket."""
        found = self._tickets.get(ticket)
        if found is None or found[1] != user or found[0] < time.monotonic():
            return None
        del self._tickets[ticket]
        return found[2], found[3]

    async def allowed(self, user: str) -> bool:
        """Whether USER is in one of the groups, as the hub knows now (cached a few seconds)."""
        seen = self._groups_of.get(user)
        if seen is None or time.monotonic() - seen[0] > GROUPS_CACHE_SECONDS:
            model = await self.hub.user(user)
            seen = (time.monotonic(), set((model or {}).get("groups") or []))
            self._groups_of[user] = seen
        return bool(seen[1] & self.groups)

    @contextlib.contextmanager
    def stream_slot(self, user: str):
        """One of USER's streams_per_user requests to the PACS, or a 429."""
        if self._streams.get(user, 0) >= self.streams_per_user:
            err = web.HTTPError(429, f"{self.streams_per_user} requests to the PACS are already open for "
                                f"{user}; wait for one to finish")
            err.retry_after = STREAM_RETRY_SECONDS
            raise err
        self._streams[user] = self._streams.get(user, 0) + 1
        try:
            yield
        finally:
            self._streams[user] -= 1
            if not self._streams[user]:
                del self._streams[user]

    def request(self, path: str, query: str = "", accept: str = "application/dicom+json", **kw) -> HTTPRequest:
        url = f"{self.dicomweb_url}/{path}" + (f"?{query}" if query else "")
        # No redirects: tornado would send the PACS credentials wherever one points.
        return HTTPRequest(url, headers={"Accept": accept}, auth_username=self.username,
                           auth_password=self.password, request_timeout=self.timeout,
                           connect_timeout=min(10.0, self.timeout), follow_redirects=False, **kw)

    async def search(self, path: str, **query) -> list[dict]:
        """A QIDO-RS search; an empty list where the PACS has nothing."""
        try:
            resp = await self.pacs.fetch(self.request(path, urlencode(query)))
        except HTTPClientError as e:
            raise _upstream_error(e) from None
        except OSError as e:
            raise web.HTTPError(502, f"the PACS does not answer ({e})") from None
        return json.loads(resp.body) if resp.body and resp.code == 200 else []


def _upstream_error(e: HTTPClientError) -> web.HTTPError:
    if e.code == 404:
        return web.HTTPError(404, "the PACS has no such study, series or instance")
    if e.code == 599:
        return web.HTTPError(504, f"the PACS did not answer in time ({e.message})")
    if e.code in (401, 403):
        log.error("the PACS refused the gateway's credentials (%s)", e.code)
        return web.HTTPError(502, "the PACS refused the gateway (its credentials are wrong)")
    return web.HTTPError(502, f"the PACS answered {e.code}")


def _values(item: dict, tag: str) -> list[str]:
    out = []
    for v in (item.get(tag) or {}).get("Value") or []:
        out.append(str(v.get("Alphabetic", "")) if isinstance(v, dict) else str(v))  # dict: a PersonName
    return out


def _value(item: dict, tag: str, default: str = "") -> str:
    return next(iter(_values(item, tag)), default)


def _is_search(path: str) -> bool:
    """QIDO-RS: `studies`, `series`, `instances` and a study's or series' `series`/`instances`."""
    return "/" not in path or path.endswith(("/series", "/instances"))


def qido_query(raw: str) -> str:
    """The request's query as the PACS gets it: only QIDO keys, results bounded; else a 400."""
    if len(raw) > MAX_QUERY:
        raise web.HTTPError(400, f"query longer than {MAX_QUERY} characters")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError:
        raise web.HTTPError(400, "the query is not key=value pairs") from None
    out = []
    for key, value in pairs:
        if not QIDO_KEY.fullmatch(key):
            raise web.HTTPError(400, f"{key[:60]!r} is not a QIDO-RS query key (a DICOM keyword or tag, "
                                "includefield, limit, offset, fuzzymatching)")
        if key == "limit":
            if not value.isdigit() or not 1 <= int(value) <= MAX_RESULTS:
                raise web.HTTPError(400, f"limit must be 1 to {MAX_RESULTS}")
        if key == "offset" and not value.isdigit():
            raise web.HTTPError(400, "offset must be a number")
        out.append((key, value))
    if not any(k == "limit" for k, _ in out):
        out.append(("limit", str(MAX_RESULTS)))
    return urlencode(out)


class _Base(ServiceHandler):
    @property
    def prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/pacs/")

    async def _check_allowed(self) -> str:
        if self.current_user.get("kind", "user") != "user":
            raise web.HTTPError(403, "the PACS is for people, not services")
        user = self.current_user["name"]
        try:
            ok = await self.s.allowed(user)
        except HubError as e:
            raise web.HTTPError(502, f"cannot read your groups from the hub: {e.message}") from None
        if not ok:
            self.s.audit.write("refused", user, path=self.request.path[:200])
            raise web.HTTPError(403, "you may not open studies from the PACS (ask for one of the groups: "
                                f"{', '.join(sorted(self.s.groups))})")
        return user


class OpenStudy(_Base):
    error_heading = "Cannot open this study"

    async def _checked(self) -> tuple[str, str, str | None, dict, list[dict]]:
        study, series = self.get_argument("study", ""), self.get_argument("series", "") or None
        if not valid_uid(study):
            raise web.HTTPError(400, "study= must be a StudyInstanceUID (digits and dots, at most 64)")
        if series and not valid_uid(series):
            raise web.HTTPError(400, "series= must be a SeriesInstanceUID (digits and dots, at most 64)")
        user = await self._check_allowed()
        found = await self.s.search("studies", StudyInstanceUID=study,
                                    includefield="PatientBirthDate,StudyDescription,ModalitiesInStudy")
        if not found:
            raise web.HTTPError(404, f"the PACS has no study {study}")
        listed = await self.s.search(f"studies/{study}/series", **({"SeriesInstanceUID": series} if series else {}))
        if series and not listed:
            raise web.HTTPError(404, f"study {study} has no series {series}")
        return user, study, series, found[0], listed

    @web.authenticated
    async def get(self):
        _, study, series, item, listed = await self._checked()
        shown = {"patient": _value(item, "00100010"), "patient_id": _value(item, "00100020"),
                 "born": _value(item, "00100030"), "description": _value(item, "00081030"),
                 "date": _value(item, "00080020"), "modalities": " ".join(_values(item, "00080061"))}
        rows = [{"number": _value(s_, "00200011"), "modality": _value(s_, "00080060"),
                 "description": _value(s_, "0008103E"), "images": _value(s_, "00201209")} for s_ in listed]
        self.finish(self.render_page("study_open.html", page_title="Open this study", study=shown,
                                     study_uid=study, series=series, listed=rows))

    @web.authenticated
    async def post(self):
        user, study, series, _, _ = await self._checked()
        ticket = self.s.new_ticket(user, study, series)
        self.s.audit.write("open", user, study=study, series=series)
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        target = url_path_join(base, "user", url_escape_path(user), "slicerhub/open") + "?" + urlencode(
            {"ticket": ticket})
        # The hub's spawn page starts the server (or finds it running), then goes on to `next`.
        self.redirect(url_path_join(base, "hub/spawn", url_escape_path(user)) + "?" + urlencode({"next": target}))


class Ticket(_Base):
    """A user server claims the ticket its owner's click made: the study to open, once."""

    @api_authenticated
    async def post(self, ticket: str):
        if not getattr(self, "_token_authenticated", False):
            raise web.HTTPError(403, "tickets are claimed by a user server, with its token")
        user = await self._check_allowed()
        claimed = self.s.claim(ticket, user)
        if claimed is None:
            raise web.HTTPError(404, "no such ticket (used, expired after "
                                f"{TICKET_SECONDS:.0f} s, or not yours): open the study from its link again")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"study": claimed[0], "series": claimed[1]}))


class Studies(_Base):
    @web.authenticated
    async def get(self):
        await self._check_allowed()
        found = await self.s.search("studies", limit="100", includefield="StudyDescription,ModalitiesInStudy")
        studies = [{"uid": uid, "patient": _value(item, "00100010"), "date": _value(item, "00080020"),
                    "description": _value(item, "00081030"), "modalities": " ".join(_values(item, "00080061")),
                    "open_url": url_path_join(self.prefix, "open") + "?" + urlencode({"study": uid})}
                   for item in found if valid_uid(uid := _value(item, "0020000D"))]
        self.finish(self.render_page("studies.html", page_title="Studies", studies=studies))


class DicomWeb(_Base):
    """GET only, on the DICOMweb resources in DICOMWEB_PATHS, streamed through."""

    def wants_json(self) -> bool:  # DICOMweb clients parse the error body
        return True

    @api_authenticated
    async def get(self, path: str):
        # A token only: a browser's cookie here would let any page on the hub's
        # origin (a user's own server) read the PACS as whoever visits it.
        if not getattr(self, "_token_authenticated", False):
            raise web.HTTPError(403, "DICOMweb here needs a token (a user server's), not a browser login")
        if not DICOMWEB_PATHS.fullmatch(path):
            raise web.HTTPError(404, f"not a DICOMweb resource the gateway serves: {path[:200]}")
        # WADO-RS takes no query; a QIDO search gets its keys checked.
        query = qido_query(self.request.query) if _is_search(path) else ""
        user = await self._check_allowed()
        self.s.audit.write("dicomweb", user, path=path, query=query or None)
        with self.s.stream_slot(user):
            if _is_search(path):
                return await self._search(path, query)
            return await self._retrieve(path, user)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if getattr(exc, "retry_after", None):
            self.set_header("Retry-After", str(exc.retry_after))
        super().write_error(status_code, **kwargs)

    async def _retrieve(self, path: str, user: str) -> None:
        """WADO-RS, streamed through at the pace the server reads."""
        status: list[int] = []
        headers: dict[str, str] = {}

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                status[:] = [int(line.split()[1])]
                headers.clear()
            elif ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().title()] = value.strip()

        def on_chunk(chunk: bytes):
            if status and status[0] >= 400:
                return None  # tornado raises with the status; the body is not passed on
            if not self._headers_written:
                self.set_status(status[0] if status else 200)
                for name in PASSED_HEADERS:
                    if name in headers:
                        self.set_header(name, headers[name])
                self._safe_headers()
            self.write(chunk)
            # Returned, so tornado reads the next chunk from the PACS only once
            # this one went to the server: memory stays bounded for slow readers.
            return self.flush()

        accept = self.request.headers.get("Accept", "application/dicom+json")[:500]
        try:
            await self.s.pacs.fetch(self.s.request(path, "", accept=accept, header_callback=on_header,
                                                   streaming_callback=on_chunk))
        except HTTPClientError as e:
            if self._headers_written:  # cut off mid-way: the client sees a short body
                log.warning("PACS answer to %s for %s cut off: %s", path, user, e)
                return
            raise _upstream_error(e) from None
        except OSError as e:
            if self._headers_written:  # the server went away mid-stream
                return
            raise web.HTTPError(502, f"the PACS does not answer ({e})") from None
        if not self._headers_written:  # an empty answer
            self.set_status(status[0] if status else 204)
        self.finish()

    def _safe_headers(self) -> None:
        # The PACS's content types on the hub's origin: never sniffed, never a live page.
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")

    async def _search(self, path: str, query: str) -> None:
        """A QIDO-RS search, answered as JSON without the PACS's own addresses.

        Bounded (at most MAX_RESULTS matches), so read whole, unlike retrievals."""
        try:
            resp = await self.s.pacs.fetch(self.s.request(path, query))
        except HTTPClientError as e:
            raise _upstream_error(e) from None
        except OSError as e:
            raise web.HTTPError(502, f"the PACS does not answer ({e})") from None
        self._safe_headers()
        if resp.code == 204 or not resp.body.strip():
            self.set_status(204)
            return self.finish()
        try:
            found = json.loads(resp.body)
        except ValueError:
            raise web.HTTPError(502, "the PACS's search answer is not JSON") from None
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise web.HTTPError(502, "the PACS's search answer is not a list of DICOM JSON datasets")
        for item in found:
            for tag in PACS_ADDRESS_TAGS:
                item.pop(tag, None)
        self.set_header("Content-Type", "application/dicom+json")
        self.finish(json.dumps(found))


def make_app(settings: Settings) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/pacs/")
    kw = {"settings": settings}
    return web.Application([
        (prefix + r"?", Studies, kw),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        (url_path_join(prefix, "open"), OpenStudy, kw),
        (url_path_join(prefix, r"dicom-web/(.*)"), DicomWeb, kw),
        (url_path_join(prefix, r"api/tickets/([A-Za-z0-9_-]{20,64})"), Ticket, kw),
    ], cookie_secret=os.urandom(32), default_handler_class=NotFound)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slicerhub.pacs.service")
    parser.add_argument("--dicomweb-url", required=True, help="the PACS's DICOMweb endpoint")
    parser.add_argument("--username", help="HTTP basic-auth user for the PACS")
    parser.add_argument("--password-file", help="file with that user's password")
    parser.add_argument("--group", action="append", default=[], required=True,
                        help="a hub group whose members may open studies; repeat")
    parser.add_argument("--timeout", type=float, default=default_of(Pacs, "timeout"))
    parser.add_argument("--streams-per-user", type=int, default=default_of(Pacs, "streams_per_user"))
    parser.add_argument("--audit-log", help="append one JSON line per open, refusal and DICOMweb request here")
    args = parser.parse_args(argv)
    password = Path(args.password_file).read_text().strip() if args.password_file else None
    settings = Settings(HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"]),
                        dicomweb_url=args.dicomweb_url, username=args.username, password=password,
                        groups=args.group, timeout=args.timeout, audit_log=args.audit_log,
                        streams_per_user=args.streams_per_user)
    url = serve(make_app(settings), "pacs")
    log.info("PACS gateway on %s for %s (groups: %s)", url, settings.dicomweb_url, ", ".join(args.group))
    IOLoop.current().start()


if __name__ == "__main__":
    main()
