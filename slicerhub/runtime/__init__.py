"""How SlicerHub runs as a service: separate processes for the proxy, the hub
and each hub service, each started by `slicerhub run NAME`, supervised by
systemd in production (`slicerhub systemd`) and by supervisord for the demo
and the tests (`slicerhub.devenv.stack`).

Keeping the proxy and the services out of the hub process is what lets the
hub restart (upgrade, config change, crash) without cutting anyone's
websockets and without leaving orphans behind.
"""
