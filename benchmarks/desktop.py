"""Desktop benchmarks on the slicer-core image, against a real hub, slapd and Docker.

* Time to first Slicer image: spawn request -> first framebuffer with Slicer's
  view (non-background pixels) read through the hub's desktop websocket, the
  same bytes noVNC gets. Cold (container created) and warm (container kept,
  server restarted), as ratios to ``docker run`` of the same image until its
  VNC socket answers with a Slicer frame (same run, same machine).
* Desktop stream: the same scripted Slicer interaction (mouse-wheel slice
  scrolling, one event per frame) through CHP + jupyter-server-proxy and
  straight to the VNC unix socket: frames/s, bytes/s, p50 input-to-frame.
* Image sizes and the idle memory of a session with the desktop running.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import docker
import requests

from slicerhub.devenv.images import DEFAULT_TAGS
from slicerhub.devenv.rfb import RFBClient

from .harness import docker_deployment

IMAGE = DEFAULT_TAGS["slicer-core"]
USER, PASSWORD = "student1", "student1-pw"
# The desktop the single-user server starts (images/base/python/slicerhub_server/desktop.py).
VNC_SOCKET_GLOB = "/tmp/slicerhub-desktop/desktop.sock"


async def _first_slicer_frame(connect, timeout: float = 120.0) -> float:
    """Seconds until CONNECT() gives an RFB session whose frame shows Slicer."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            client = await connect()
        except Exception:  # noqa: BLE001 - not up yet: the point of the loop
            await asyncio.sleep(0.1)
            continue
        try:
            fb = await client.snapshot(10)
            while fb.non_background_fraction() < 0.05:
                await client.wait_update(10)
                fb = client.fb
            return time.monotonic() - start
        finally:
            await client.close()
    raise TimeoutError("no Slicer frame")


def _docker_run_baseline(client: docker.DockerClient) -> float:
    """docker run of the image with the same desktop session until a Slicer frame."""
    start = time.monotonic()
    c = client.containers.run(
        IMAGE, ["vncserver", "-rfbunixpath", "/tmp/vnc/socket", "-rfbport", "-1", "-fg",
                "-xstartup", "/etc/slicerhub/xstartup", "-SecurityTypes", "None", "-geometry", "1280x800"],
        entrypoint=["sh", "-c", "mkdir -m 700 -p /tmp/vnc && exec \"$@\"", "--"],
        detach=True, remove=True, user="1000",
    )
    try:
        c.reload()
        pid = c.attrs["State"]["Pid"]
        path = f"/proc/{pid}/root/tmp/vnc/socket"
        asyncio.run(_first_slicer_frame(lambda: RFBClient.unix(path)))
        return time.monotonic() - start
    finally:
        c.remove(force=True)


async def _interaction(client: RFBClient, seconds: float) -> dict:
    """Scroll through slices (wheel up/down) one event per frame, for SECONDS."""
    fb = await client.snapshot(30)
    x, y = fb.width // 2, fb.height // 2
    latencies, frames = [], 0
    start_bytes = client.bytes_received
    start = time.monotonic()
    button = 8  # wheel down (button 4 is up)
    n = 0
    while time.monotonic() - start < seconds:
        n += 1
        if n % 40 == 0:
            button = 16 if button == 8 else 8
        t0 = time.monotonic()
        await client.pointer(x, y, button)
        await client.pointer(x, y, 0)
        await client.wait_update(10)
        latencies.append((time.monotonic() - t0) * 1000)
        frames += 1
    elapsed = time.monotonic() - start
    return {
        "frames_per_s": round(frames / elapsed, 2),
        "bytes_per_s": round((client.bytes_received - start_bytes) / elapsed),
        "input_to_frame_p50_ms": round(statistics.median(latencies), 2),
        "frames": frames,
    }


def _vnc_socket_path(c) -> str:
    out = c.exec_run(["sh", "-c", f"for s in {VNC_SOCKET_GLOB}; do [ -S \"$s\" ] && echo \"$s\"; done"]).output
    path = out.decode().strip().splitlines()[0]
    c.reload()
    return f"/proc/{c.attrs['State']['Pid']}/root{path}"


def _memory_mb(c) -> float:
    stats = c.stats(stream=False)
    mem = stats["memory_stats"]
    cache = mem.get("stats", {}).get("inactive_file", 0)
    return round((mem["usage"] - cache) / 2**20, 1)


def run(workdir: Path, stream_seconds: float = 10.0) -> dict:
    with docker_deployment(workdir, "bench") as (hub, client, prefix):
        s, _ = hub.login(USER, PASSWORD)
        token = hub.api_token(s)
        auth = {"Authorization": f"token {token}"}
        ws_url = hub.url.replace("http", "ws", 1) + f"/user/{USER}/desktop-websockify/"

        def start_to_first_frame() -> float:
            t0 = time.monotonic()
            r = requests.post(f"{hub.url}/hub/api/users/{USER}/server", headers=auth, timeout=120)
            r.raise_for_status()
            asyncio.run(_first_slicer_frame(lambda: RFBClient.websocket(ws_url, auth)))
            return time.monotonic() - t0

        def stop() -> None:
            requests.delete(f"{hub.url}/hub/api/users/{USER}/server", headers=auth, timeout=120)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if not requests.get(f"{hub.url}/hub/api/users/{USER}", headers=auth, timeout=30).json()["servers"]:
                    return
                time.sleep(0.3)

        baseline = _docker_run_baseline(client)
        cold = start_to_first_frame()
        c = client.containers.get(f"{prefix}-{USER}")

        # Stream: the same interaction through the hub and on the socket itself.
        proxied = asyncio.run(_with(RFBClient.websocket(ws_url, auth), stream_seconds))
        direct = asyncio.run(_with(RFBClient.unix(_vnc_socket_path(c)), stream_seconds))
        time.sleep(5)
        idle_mb = _memory_mb(c)

        stop()
        warm = start_to_first_frame()
        stop()
        return {
            "first_image": {
                "docker_run_s": round(baseline, 2), "cold_s": round(cold, 2), "warm_s": round(warm, 2),
                "cold_ratio": round(cold / baseline, 2), "warm_ratio": round(warm / baseline, 2),
                "goal_cold_s": 5.0,
            },
            "stream": {
                "proxied": proxied, "direct": direct,
                "fps_ratio": round(proxied["frames_per_s"] / direct["frames_per_s"], 3),
                "bytes_ratio": round(proxied["bytes_per_s"] / direct["bytes_per_s"], 3),
                "added_p50_ms": round(proxied["input_to_frame_p50_ms"] - direct["input_to_frame_p50_ms"], 2),
                "goal_fps_ratio": 0.8, "goal_added_p50_ms": 2.0,
            },
            "images_mb": {name: round(client.images.get(tag).attrs["Size"] / 1e6)
                          for name, tag in DEFAULT_TAGS.items() if _has_image(client, tag)},
            "idle_session_mb": idle_mb, "goal_idle_mb": 400,
        }


def _has_image(client, tag) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


async def _with(connecting, seconds):
    client = await connecting
    try:
        return await _interaction(client, seconds)
    finally:
        await client.close()


def print_desktop(res: dict) -> None:
    f, s = res["first_image"], res["stream"]
    print()
    print("Desktop (slicer-core image, first Slicer frame read through the hub's desktop websocket)")
    print(f"  docker run -> Slicer frame on the VNC socket (baseline): {f['docker_run_s']} s")
    print(f"  cold start click -> first Slicer frame: {f['cold_s']} s ({f['cold_ratio']}x baseline; goal <= {f['goal_cold_s']} s"
          f"{' ok' if f['cold_s'] <= f['goal_cold_s'] else ' MISSED'})")
    print(f"  warm (container kept):                  {f['warm_s']} s ({f['warm_ratio']}x baseline)")
    print(f"  stream via hub: {s['proxied']['frames_per_s']} frames/s, {s['proxied']['bytes_per_s']} B/s, "
          f"p50 {s['proxied']['input_to_frame_p50_ms']} ms")
    print(f"  stream direct:  {s['direct']['frames_per_s']} frames/s, {s['direct']['bytes_per_s']} B/s, "
          f"p50 {s['direct']['input_to_frame_p50_ms']} ms")
    print(f"  ratio {s['fps_ratio']} (goal >= {s['goal_fps_ratio']}), added p50 {s['added_p50_ms']} ms "
          f"(goal <= {s['goal_added_p50_ms']} ms)")
    print(f"  images: {res['images_mb']} MB; idle session with desktop: {res['idle_session_mb']} MB "
          f"(goal <= {res['goal_idle_mb']} MB)")
