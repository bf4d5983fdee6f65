"""The application in the browser desktop: Slicer's own views in an X window.

It opens the volume named in the settings (``Desktop/Volume``, default: the
sample) in Slicer's slice view for ``Desktop/Orientation`` and runs VTK's
interactor, so the mouse works as in Slicer (wheel: next slice, left drag:
window/level, right drag: zoom). Openbox keeps the window maximised, and the
view follows the window when the browser resizes the remote desktop.

A study opened from the PACS (``slicerhub/open``, see studies.py) arrives as a
request file in ``studies.DESKTOP_QUEUE``; the application looks there four
times a second and shows the newest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import session as _session
from . import settings, studies

QUEUE_POLL_MS = 250
# A request older than this was meant for an earlier session of the desktop.
STALE_REQUEST_SECONDS = 600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slicerhub-desktop")
    parser.add_argument("--volume", help="volume file (default: setting Desktop/Volume, else the sample)")
    parser.add_argument("--orientation", help="Axial, Sagittal or Coronal (default: setting Desktop/Orientation)")
    args = parser.parse_args(argv)

    orientation = args.orientation or settings.get("Desktop/Orientation", "Axial")
    if orientation not in _session.ORIENTATION_VIEW:
        print(f"slicerhub-desktop: unknown orientation {orientation!r}; using Axial", file=sys.stderr)
        orientation = "Axial"

    s = _session.SlicerSession(offscreen=False)
    _session.install(s)
    # A study opened while the desktop was starting is what the person waits
    # for: the sample is not loaded then, and the study is shown (below, as
    # any request is) as soon as the window is up.
    volume = None
    if not _requests():
        volume_file = args.volume or settings.get("Desktop/Volume")
        try:
            volume = s.load_volume(volume_file) if volume_file else s.sample_volume()
        except (OSError, RuntimeError) as exc:
            _say(f"{exc}; showing the sample instead")
            volume = s.sample_volume()

    view = s.slice_view(orientation)
    window = view.render_window()
    window.SetWindowName(f"Slicer (slicer-core) - {orientation}")
    window.SetSize(1024, 768)
    window.ShowWindowOn()
    view.render()
    view.fit_view_to_content()
    view.render()

    # Openbox re-maximises the window when the browser resizes the remote
    # screen; fit the slice to the new window then, as Slicer does.
    size = [tuple(window.GetSize())]

    def on_configure(*_):
        if tuple(window.GetSize()) != size[0]:
            size[0] = tuple(window.GetSize())
            view.fit_view_to_content()
            view.render()

    view.interactor().AddObserver("ConfigureEvent", on_configure)

    def on_timer(*_):
        request = _newest_request()
        if request is not None and _show_request(s, request) is not None:
            view.fit_view_to_content()
            view.render()
        elif s.background_volume() is None:  # only stale requests were waiting at the start
            s.show_volume(s.sample_volume())
            view.fit_view_to_content()
            view.render()

    view.interactor().AddObserver("TimerEvent", on_timer)
    # The first tick comes once the window is up (and maximised), where a
    # study that was waiting is shown.
    view.interactor().CreateRepeatingTimer(QUEUE_POLL_MS)
    _say(f"showing {volume.GetName() if volume else 'nothing yet'} ({orientation}), "
         f"renderer {'gpu' if s.gpu else 'cpu'}")
    view.start_interactor()
    return 0


def _say(message: str) -> None:
    """One line in the desktop's log, with the time (the open-study benchmark reads it)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}"
    print(f"slicerhub-desktop {stamp}: {message}", flush=True)


def _show_request(s, request: dict):
    """Load the requested series and show it; None (and a log line) if it cannot be read."""
    try:
        shown = s.load_volume(request["file"], name=request.get("name"))
    except (OSError, RuntimeError, KeyError) as exc:
        _say(f"cannot show {request.get('file')}: {exc}")
        return None
    s.show_volume(shown)
    _say(f"showing {shown.GetName()} (study {request.get('study')})")
    return shown


def _requests() -> list:
    try:
        return sorted(studies.DESKTOP_QUEUE.glob("[0-9]*.json"))
    except OSError:
        return []


def _newest_request() -> dict | None:
    """Take every request out of the queue; return the newest still meant for now."""
    files = _requests()
    newest = None
    for path in files:
        try:
            request = json.loads(path.read_text())
            fresh = time.time() - float(request["time"]) < STALE_REQUEST_SECONDS
        except (OSError, ValueError, TypeError, KeyError):
            request, fresh = None, False
        path.unlink(missing_ok=True)  # taken before loading: a bad file cannot crash-loop the app
        if fresh:
            newest = request
    return newest


if __name__ == "__main__":
    sys.exit(main())
