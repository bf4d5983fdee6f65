"""Stand-in for jupyterhub-singleuser: answers 200 on its port, names its user.

Reads the port from $JUPYTERHUB_SERVICE_URL (what JupyterHub gives every
server) or --port=N; stdlib only.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

port = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).port or 8888
for arg in sys.argv[1:]:
    if arg.startswith("--port="):
        port = int(arg.split("=", 1)[1])
BODY = f"light server of {os.environ.get('JUPYTERHUB_USER', '?')} pid {os.getpid()}\n".encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
