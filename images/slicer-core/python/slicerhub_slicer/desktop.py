"""The application in the browser desktop: Slicer's own views in an X window.

It opens the volume named in the settings (``Desktop/Volume``, default: the
sample) in Slicer's slice view for ``Desktop/Orientation`` and runs VTK's
interactor, so the mouse works as in Slicer (wheel: next slice, left drag:
window/level, right drag: zoom). Openbox keeps the window maximised, and the
view follows the window when the browser resizes the remote desktop.
"""

from __future__ import annotations

import argparse
import sys

from . import session as _session
from . import settings


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
    volume_file = args.volume or settings.get("Desktop/Volume")
    try:
        volume = s.load_volume(volume_file) if volume_file else s.sample_volume()
    except (OSError, RuntimeError) as exc:
        print(f"slicerhub-desktop: {exc}; showing the sample instead", file=sys.stderr)
        volume = s.sample_volume()

    view = s.slice_view(orientation)
    window = view.render_window()
    window.SetWindowName(f"Slicer (slicer-core) - {volume.GetName()} - {orientation}")
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
    print(f"slicerhub-desktop: showing {volume.GetName()} ({orientation}), "
          f"renderer {'gpu' if s.gpu else 'cpu'}", flush=True)
    view.start_interactor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
