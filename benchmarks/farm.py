"""A stub farm: many lightweight servers in ONE process outside the hub.

`python -m benchmarks.farm --port P [--activity-interval S]` runs an asyncio
process that opens one tiny HTTP listener per server on 127.0.0.1 (answering
200 "farm server of NAME port PORT" to every request, keep-alive) and a small
control API on 127.0.0.1:P (JSON):

    POST   /servers          {"name", "user", "server_name", "token", "api_url"} -> {"port"}
                             (the same name again: the same listener, idempotent)
    GET    /servers/NAME     {"port", "user"} or 404
    DELETE /servers/NAME     204 (the listener is closed)
    GET    /stats            server count, requests served, activity posts by status
    POST   /activity         {"interval": seconds}; 0 stops the reports
    GET    /health           200

Each server reports activity to the hub as jupyterhub-singleuser does
(`POST {api_url}/users/USER/activity` with the server's own API token,
`{"servers": {NAME: {"last_activity": ...}}, "last_activity": ...}`), every
`interval` seconds, each server at its own random phase (so the reports are
spread as a real population's are, not one burst per interval).

The farm outlives the hub: `benchmarks.farm_spawner.FarmSpawner` keeps the port
in the hub's database, so a hub restart resumes these servers as it resumes
real containers (`cleanup_servers: False`, the proxy a process of its own).

`Farm` (below) starts and stops this process for the benchmarks and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HOST = "127.0.0.1"
ACTIVITY_CONCURRENCY = 16


class _Server:
    def __init__(self, name: str, user: str, server_name: str, token: str, api_url: str):
        self.name, self.user, self.server_name = name, user, server_name
        self.token, self.api_url = token, api_url.rstrip("/")
        self.listener: asyncio.base_events.Server | None = None
        self.port = 0
        self.requests = 0
        self.next_activity = 0.0

    async def open(self) -> None:
        self.listener = await asyncio.start_server(self._serve, HOST, 0, backlog=128)
        self.port = self.listener.sockets[0].getsockname()[1]
        self._body = f"farm server of {self.user} port {self.port}\n".encode()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(self._body), self._body))
                await writer.drain()
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None


class FarmApp:
    def __init__(self, activity_interval: float):
        self.servers: dict[str, _Server] = {}
        self.interval = activity_interval
        self.activity = Counter()
        self.activity_ms: list[float] = []
        self._lock = asyncio.Lock()

    # --- control API -----------------------------------------------------

    async def add(self, request):
        from aiohttp import web

        body = await request.json()
        name = body["name"]
        async with self._lock:
            server = self.servers.get(name)
            if server is None:
                server = _Server(name, body.get("user", name), body.get("server_name", ""),
                                 body.get("token", ""), body.get("api_url", ""))
                await server.open()
                server.next_activity = time.monotonic() + random.uniform(0, self.interval or 1)
                self.servers[name] = server
            else:  # a start again (after a lost stop): same listener, the newest token
                server.token = body.get("token", server.token) or server.token
        return web.json_response({"port": server.port}, status=201)

    async def get(self, request):
        from aiohttp import web

        server = self.servers.get(request.match_info["name"])
        if server is None:
            return web.json_response({"error": "no such server"}, status=404)
        return web.json_response({"port": server.port, "user": server.user, "requests": server.requests})

    async def delete(self, request):
        from aiohttp import web

        server = self.servers.pop(request.match_info["name"], None)
        if server is not None:
            server.close()
        return web.Response(status=204)

    async def stats(self, request):
        from aiohttp import web

        lat = sorted(self.activity_ms)
        return web.json_response({
            "servers": len(self.servers),
            "requests": sum(s.requests for s in self.servers.values()),
            "activity_interval": self.interval,
            "activity": {str(k): v for k, v in self.activity.items()},
            "activity_p50_ms": lat[len(lat) // 2] if lat else None,
            "pid": os.getpid(),
        })

    async def set_activity(self, request):
        from aiohttp import web

        body = await request.json()
        self.interval = float(body.get("interval", 0))
        now = time.monotonic()
        for s in self.servers.values():
            s.next_activity = now + random.uniform(0, self.interval or 1)
        self.activity.clear()
        self.activity_ms.clear()
        return web.json_response({"interval": self.interval})

    async def health(self, request):
        from aiohttp import web

        return web.Response(text="ok")

    # --- activity, as jupyterhub-singleuser reports it ----------------------

    async def activity_loop(self) -> None:
        import aiohttp

        sem = asyncio.Semaphore(ACTIVITY_CONCURRENCY)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def post(server: _Server) -> None:
                async with sem:
                    now = _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
                    body = {"servers": {server.server_name: {"last_activity": now}}, "last_activity": now}
                    t = time.monotonic()
                    try:
                        async with http.post(f"{server.api_url}/users/{server.user}/activity", json=body,
                                             headers={"Authorization": f"token {server.token}"}) as r:
                            await r.read()
                            self.activity[r.status] += 1
                            self.activity_ms.append((time.monotonic() - t) * 1000)
                            del self.activity_ms[:-5000]
                    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                        self.activity[type(e).__name__] += 1

            while True:
                await asyncio.sleep(0.25)
                if not self.interval:
                    continue
                now = time.monotonic()
                for server in list(self.servers.values()):
                    if server.token and server.api_url and now >= server.next_activity:
                        server.next_activity = now + self.interval
                        asyncio.ensure_future(post(server))


async def _main(port: int, activity_interval: float) -> None:
    from aiohttp import web

    farm = FarmApp(activity_interval)
    app = web.Application()
    app.add_routes([
        web.post("/servers", farm.add),
        web.get("/servers/{name}", farm.get),
        web.delete("/servers/{name}", farm.delete),
        web.get("/stats", farm.stats),
        web.post("/activity", farm.set_activity),
        web.get("/health", farm.health),
    ])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reporter = asyncio.ensure_future(farm.activity_loop())
    print(f"farm on {HOST}:{port}, activity every {activity_interval:g} s", flush=True)
    await stop.wait()
    reporter.cancel()
    for s in farm.servers.values():
        s.close()
    await runner.cleanup()


class Farm:
    """The farm process, for benchmarks and tests: start(), url, stats(), stop()."""

    def __init__(self, workdir: Path, activity_interval: float = 0.0):
        from tests.support.hub import free_port

        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.activity_interval = activity_interval
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Farm":
        import requests

        from slicerhub.wait import wait_for
        from tests.support.hub import ROOT

        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "farm.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.farm", "--port", str(self.port),
             "--activity-interval", str(self.activity_interval)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the farm exited ({self.proc.returncode}), see {self.workdir / 'farm.log'}")
            try:
                return requests.get(self.url + "/health", timeout=2).ok
            except requests.RequestException:
                return False

        wait_for(up, timeout, interval=0.1, what="the stub farm")
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stats(self) -> dict:
        import requests

        return requests.get(self.url + "/stats", timeout=30).json()

    def set_activity(self, interval: float) -> None:
        import requests

        requests.post(self.url + "/activity", json={"interval": interval}, timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "Farm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.farm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--activity-interval", type=float, default=0.0,
                        help="seconds between activity reports per server; 0: none (default)")
    args = parser.parse_args()
    asyncio.run(_main(args.port, args.activity_interval))
