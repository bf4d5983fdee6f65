"""The Slicer image's Jupyter Server extension: ``slicerhub/open``, where an
"Open in SlicerHub" link ends (the hub's PACS gateway sends the browser here
once the server runs).

``GET slicerhub/open?ticket=<ticket>`` (the owner only) claims the one-time
ticket the owner's click on the gateway's page made (so a link from any other
page cannot change what this desktop shows), retrieves the ticket's image
series through the gateway, asks the desktop application to show the first
one, and sends the browser to the desktop. A refusal (bad ticket or UID 400,
not allowed 403, no such ticket or study 404, PACS down 502) is an error page
with the gateway's reason, and nothing is shown.
"""

from __future__ import annotations

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from . import studies


def _jupyter_server_extension_points():
    return [{"module": "slicerhub_slicer.server"}]


class OpenStudy(JupyterHandler):
    @web.authenticated
    async def get(self):
        # The guard (slicerhub_server) sets the caller's level; viewers of a
        # shared session must not make the owner's Slicer load anything.
        if getattr(self, "_slicerhub_level", None) != "execute":
            raise web.HTTPError(403, "only the owner of this server opens studies in it")
        loop = IOLoop.current()
        try:
            # Both block (requests, files): off the server's event loop.
            study, series = await loop.run_in_executor(None, studies.claim_ticket, self.get_argument("ticket", ""))
            found = await loop.run_in_executor(None, studies.retrieve, study, series)
            studies.show_in_desktop(found[0])
        except studies.StudyError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.log.info("slicerhub/open: study %s, series %s (%d instances) to the desktop",
                      study, found[0].series, found[0].instances)
        self.redirect(url_path_join(self.base_url, "desktop/"))


def _load_jupyter_server_extension(serverapp):
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, "slicerhub/open"), OpenStudy)])
