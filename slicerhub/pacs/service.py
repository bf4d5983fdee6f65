"""The PACS gateway: the site's DICOMweb server, for the people allowed to see
it, as a JupyterHub service at /services/pacs/.

* ``GET /open?study=<StudyInstanceUID>[&series=<SeriesInstanceUID>]`` — the
  "Open in SlicerHub" link a PACS viewer puts in its menu. The browser signs
  in through the hub (LDAP) if needed; a UID that is not a UID is a 400, a
  person outside ``pacs.groups`` a 403, a study or series the PACS does not
  have a 404, and nothing is started or loaded then. Otherwise the browser
  goes on to the hub's spawn page (which starts the server, or reuses the
  running one) and from there to the server's ``slicerhub/open``, which
  retrieves the series through this gateway and shows it in the desktop.
* ``GET /dicom-web/…`` — read-only DICOMweb (QIDO-RS searches, WADO-RS
  retrieval) for user servers, with their hub API token. The PACS
  credentials stay here; every request is checked against the groups and
  recorded in the audit log.
* ``GET /`` — the studies this person may open, newest first, each with its link.

Who may see what is decided per person from their hub groups (synced from
LDAP at login), looked up with the service's own token.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from ..config import Pacs, default_of
from ..hubservice import AuditLog, NotFound, ServiceHandler, api_authenticated, page, serve
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


def valid_uid(text: str | None) -> bool:
    return bool(text) and len(text) <= 64 and UID.fullmatch(text) is not None


class Settings:
    def __init__(self, hub: HubAPI, *, dicomweb_url: str, username: str | None, password: str | None,
                 groups: list[str], timeout: float, audit_log: str | None):
        self.hub = hub
        self.dicomweb_url = dicomweb_url.rstrip("/")
        self.username, self.password = username, password
        self.groups = set(groups)
        self.timeout = timeout
        self.audit = AuditLog(audit_log, log)
        self._groups_of: dict[str, tuple[float, set[str]]] = {}

    async def allowed(self, user: str) -> bool:
        """Whether USER is in one of the groups, as the hub knows now (cached a few seconds)."""
        seen = self._groups_of.get(user)
        if seen is None or time.monotonic() - seen[0] > GROUPS_CACHE_SECONDS:
            model = await self.hub.user(user)
            seen = (time.monotonic(), set((model or {}).get("groups") or []))
            self._groups_of[user] = seen
        return bool(seen[1] & self.groups)

    def request(self, path: str, query: str = "", accept: str = "application/dicom+json", **kw) -> HTTPRequest:
        url = f"{self.dicomweb_url}/{path}" + (f"?{query}" if query else "")
        return HTTPRequest(url, headers={"Accept": accept}, auth_username=self.username,
                           auth_password=self.password, request_timeout=self.timeout,
                           connect_timeout=min(10.0, self.timeout), **kw)

    async def search(self, path: str, **query) -> list[dict]:
        """A QIDO-RS search; an empty list where the PACS has nothing."""
        try:
            resp = await AsyncHTTPClient().fetch(self.request(path, urlencode(query)))
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


def _value(item: dict, tag: str, default: str = "") -> str:
    values = (item.get(tag) or {}).get("Value") or [default]
    v = values[0]
    if isinstance(v, dict):  # PersonName
        return str(v.get("Alphabetic", default))
    return str(v)


class _Base(ServiceHandler):
    @property
    def prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/pacs/")

    async def _check_allowed(self) -> str:
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


class _Page(_Base):
    """Pages for people: errors as a page (the API's are JSON)."""

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        message = (exc.get_message() if isinstance(exc, web.HTTPError) else None) or self._reason
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page("Cannot open this study", f'<p id="error">{html.escape(message)}</p>'))


class OpenStudy(_Page):
    @web.authenticated
    async def get(self):
        study, series = self.get_argument("study", ""), self.get_argument("series", "")
        if not valid_uid(study):
            raise web.HTTPError(400, "study= must be a StudyInstanceUID (digits and dots, at most 64)")
        if series and not valid_uid(series):
            raise web.HTTPError(400, "series= must be a SeriesInstanceUID (digits and dots, at most 64)")
        user = await self._check_allowed()
        if not await self.s.search("studies", StudyInstanceUID=study):
            raise web.HTTPError(404, f"the PACS has no study {study}")
        if series and not await self.s.search(f"studies/{study}/series", SeriesInstanceUID=series):
            raise web.HTTPError(404, f"study {study} has no series {series}")
        self.s.audit.write("open", user, study=study, series=series or None)
        query = urlencode({"study": study, **({"series": series} if series else {})})
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        target = url_path_join(base, "user", quote(user, safe=""), "slicerhub/open") + "?" + query
        # The hub's spawn page starts the server (or finds it running), then goes on to `next`.
        self.redirect(url_path_join(base, "hub/spawn", quote(user, safe="")) + "?" + urlencode({"next": target}))


class Studies(_Page):
    @web.authenticated
    async def get(self):
        user = await self._check_allowed()
        found = await self.s.search("studies", limit="100", includefield="StudyDescription,ModalitiesInStudy")
        esc = html.escape
        rows = []
        for item in found:
            uid = _value(item, "0020000D")
            if not valid_uid(uid):
                continue
            link = url_path_join(self.prefix, "open") + "?" + urlencode({"study": uid})
            rows.append(f'<tr data-study="{esc(uid)}"><td>{esc(_value(item, "00100010"))}</td>'
                        f'<td>{esc(_value(item, "00080020"))}</td><td>{esc(_value(item, "00081030"))}</td>'
                        f'<td>{esc(" ".join((item.get("00080061") or {}).get("Value") or []))}</td>'
                        f'<td><a class="button" href="{esc(link)}">Open in Slicer</a></td></tr>')
        body = (f"<p>Signed in as {esc(user)}. A study opens in your Slicer desktop (your server starts "
                "if it is not running).</p>")
        body += ("<table><tr><th>Patient</th><th>Date</th><th>Study</th><th>Modalities</th><th></th></tr>"
                 + "".join(rows) + "</table>") if rows else "<p>The PACS has no studies.</p>"
        self.finish(page("Studies in the PACS", body))


class DicomWeb(_Base):
    """GET only, on the DICOMweb resources in DICOMWEB_PATHS, streamed through."""

    def check_xsrf_cookie(self):
        return  # token-authenticated GETs from user servers

    @api_authenticated
    async def get(self, path: str):
        if not DICOMWEB_PATHS.fullmatch(path):
            raise web.HTTPError(404, f"not a DICOMweb resource the gateway serves: {path[:200]}")
        query = self.request.query
        if len(query) > MAX_QUERY:
            raise web.HTTPError(400, f"query longer than {MAX_QUERY} characters")
        user = await self._check_allowed()
        self.s.audit.write("dicomweb", user, path=path, query=query[:200] or None)
        status: list[int] = []
        headers: dict[str, str] = {}
        error = bytearray()

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                status[:] = [int(line.split()[1])]
                headers.clear()
            elif ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().title()] = value.strip()

        def on_chunk(chunk: bytes) -> None:
            if status and status[0] >= 400:
                error.extend(chunk[: 4096 - len(error)])
                return
            if not self._headers_written:
                self.set_status(status[0] if status else 200)
                for name in PASSED_HEADERS:
                    if name in headers:
                        self.set_header(name, headers[name])
            self.write(chunk)
            self.flush()

        accept = self.request.headers.get("Accept", "application/dicom+json")[:500]
        try:
            await AsyncHTTPClient().fetch(self.s.request(path, query, accept=accept, header_callback=on_header,
                                                         streaming_callback=on_chunk))
        except HTTPClientError as e:
            if self._headers_written:  # cut off mid-way: the client sees a short body
                log.warning("PACS answer to %s for %s cut off: %s", path, user, e)
                return
            raise _upstream_error(e) from None
        except OSError as e:
            raise web.HTTPError(502, f"the PACS does not answer ({e})") from None
        if not self._headers_written:  # an empty answer (QIDO with no match: 204)
            self.set_status(status[0] if status else 204)
        self.finish()


def make_app(settings: Settings) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/pacs/")
    kw = {"settings": settings}
    return web.Application([
        (prefix + r"?", Studies, kw),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        (url_path_join(prefix, "open"), OpenStudy, kw),
        (url_path_join(prefix, r"dicom-web/(.*)"), DicomWeb, kw),
    ], cookie_secret=os.urandom(32), default_handler_class=NotFound)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slicerhub.pacs.service")
    parser.add_argument("--dicomweb-url", required=True, help="the PACS's DICOMweb endpoint")
    parser.add_argument("--username", help="HTTP basic-auth user for the PACS")
    parser.add_argument("--password-file", help="file with that user's password")
    parser.add_argument("--group", action="append", default=[], required=True,
                        help="a hub group whose members may open studies; repeat")
    parser.add_argument("--timeout", type=float, default=default_of(Pacs, "timeout"))
    parser.add_argument("--audit-log", help="append one JSON line per open, refusal and DICOMweb request here")
    args = parser.parse_args(argv)
    password = Path(args.password_file).read_text().strip() if args.password_file else None
    # Series are streamed through, never held: no body-size limit of tornado's client applies.
    AsyncHTTPClient.configure(None, max_body_size=1 << 40, max_buffer_size=64 << 20)
    settings = Settings(HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"]),
                        dicomweb_url=args.dicomweb_url, username=args.username, password=password,
                        groups=args.group, timeout=args.timeout, audit_log=args.audit_log)
    url = serve(make_app(settings), "pacs")
    log.info("PACS gateway on %s for %s (groups: %s)", url, settings.dicomweb_url, ", ".join(args.group))
    IOLoop.current().start()


if __name__ == "__main__":
    main()
