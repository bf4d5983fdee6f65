"""SlicerHub's single-user server package.

Kept free of imports: the desktop supervisor (``desktop.main``, started by the
container's entrypoint before the Jupyter server) imports ``desktop`` through
it and must not pay for Jupyter's imports. The Jupyter Server extension is
``extension``.
"""


def _jupyter_server_extension_points():
    return [{"module": "slicerhub_server.extension"}]
