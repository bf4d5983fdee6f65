"""The application in the browser desktop: Slicer's own views in an X window.

It opens the volume named in the settings (``Desktop/Volume``, default: the
sample) in Slicer's layout named by ``Desktop/Layout`` (see layout.py):
``FourUp`` (the default, as in Slicer: Red axial and 3D above, Green coronal
and Yellow sagittal below), ``Conventional`` or ``OneUp`` (the view named by
``Desktop/Orientation``: Axial, Sagittal, Coronal or 3D). The 3D view shows
the three slice planes, as Slicer does.

Each view is Slicer's (trame-slicer's SliceView / ThreeDView) with its own X
window, a child of one top-level window that Openbox keeps maximised; the
views follow that window when the browser resizes the remote desktop. Each
view runs Slicer's interactor style, so the mouse works as in Slicer: in a
slice view the wheel goes to the next/previous slice, left drag sets
window/level, right drag zooms, middle drag pans; in the 3D view left drag
rotates, right drag zooms, middle drag pans.

A study opened from the PACS (``slicerhub/open``, see studies.py) arrives as a
request file in ``studies.DESKTOP_QUEUE``; the application looks there four
times a second and shows the newest, in every view.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import sys
import time

from . import layout as _layout
from . import session as _session
from . import settings, studies

QUEUE_POLL_MS = 250
# A request older than this was meant for an earlier session of the desktop.
STALE_REQUEST_SECONDS = 600
TITLE = "Slicer (slicer-core)"
# Between and around the views, as Slicer's dark theme.
FRAME_COLOUR = (0.16, 0.16, 0.16)
# The 3D view after a volume is shown: Slicer's anterior view, turned so the
# three slice planes are seen (from the front the axial and sagittal ones are
# edge-on): degrees about the view-up axis, then up.
THREE_D_AZIMUTH = 35
THREE_D_ELEVATION = 25
# The slice views behind a 3D-only layout (see _unseen_slice_views).
UNSEEN_SLICE_SIZE = (512, 512)
# vtkEvent's modifiers (vtkInteractionWidgets), for Slicer's widgets' event translations.
NO_MODIFIER, CONTROL_MODIFIER = 0, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slicerhub-desktop")
    parser.add_argument("--volume", help="volume file (default: setting Desktop/Volume, else the sample)")
    parser.add_argument("--layout", help="FourUp, Conventional or OneUp (default: setting Desktop/Layout)")
    parser.add_argument("--orientation",
                        help="Axial, Sagittal, Coronal or 3D: the OneUp view (default: setting Desktop/Orientation)")
    args = parser.parse_args(argv)

    layout_name, orientation, complaints = _layout.choose(
        args.layout or settings.get("Desktop/Layout", _layout.DEFAULT_LAYOUT),
        args.orientation or settings.get("Desktop/Orientation", "Axial"))
    for complaint in complaints:
        print(f"slicerhub-desktop: {complaint}", file=sys.stderr)

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

    desktop = Desktop(s, _layout.slicer_layout(layout_name, orientation),
                      f"{TITLE} - {layout_name if layout_name != 'OneUp' else orientation}")

    def on_timer(*_):
        request = _newest_request()
        if request is not None and _show_request(s, request) is not None:
            desktop.reset_3d()
            desktop.fit_and_render()
        elif s.background_volume() is None:  # only stale requests were waiting at the start
            s.show_volume(s.sample_volume())
            desktop.reset_3d()
            desktop.fit_and_render()

    desktop.interactor.AddObserver("TimerEvent", on_timer)
    # The first tick comes once the window is up (and maximised), where a
    # study that was waiting is shown.
    desktop.interactor.CreateRepeatingTimer(QUEUE_POLL_MS)
    _say(f"showing {volume.GetName() if volume else 'nothing yet'} ({layout_name}: "
         f"{', '.join(desktop.tags)}), renderer {'gpu' if s.gpu else 'cpu'}")
    desktop.interactor.Start()
    return 0


class Desktop:
    """Slicer's views of a layout, each in its X window inside one top-level window.

    The top-level window is a VTK render window too: its renderers draw the
    frame between the views and each view's coloured bar with its label (what
    Slicer's view controllers look like, without their buttons), and its
    interactor runs the one X event loop (VTK's, for every view) and sees the
    window resized.
    """

    def __init__(self, s, layout, title: str, size: tuple[int, int] | None = None):
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkRenderWindowInteractor

        self.session = s
        self.layout = layout
        self.tags = list(_layout.geometry(layout, 1024, 768))
        self.views = dict(zip(self.tags, s.views(*self.tags)))
        for view in self.views.values():
            _window_level_on_left_drag(view)
        self.unseen = _unseen_slice_views(s, self.tags)

        self.window = vtkRenderWindow()
        self.window.SetWindowName(title)
        # Openbox maximises the window to the screen: made at that size, the
        # first layout is the one that shows (no second round of renders).
        size = size or tuple(self.window.GetScreenSize())
        if min(size) <= 0:
            size = (1024, 768)
        self.window.SetSize(*size)
        self.window.SetMultiSamples(0)
        background = vtkRenderer()
        background.SetBackground(*FRAME_COLOUR)
        self.window.AddRenderer(background)
        self.interactor = vtkRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.window)
        self.interactor.SetInteractorStyle(None)  # nothing to turn or zoom between the views
        self.window.ShowWindowOff()
        self.interactor.Initialize()  # makes the X window, unmapped
        definitions = {view.singleton_tag: view for view in layout.get_views(is_recursive=True)}
        self.bars = {tag: _Bar(view, definitions.get(tag)) for tag, view in self.views.items()}
        for bar in self.bars.values():
            self.window.AddRenderer(bar.renderer)

        self.x = _Xlib()
        frame_id = _window_id(self.window)
        # One render of each view at the end, not one per step.
        with _session.one_render(*self.views.values()):
            for view in self.views.values():
                # Reparented before they are ever mapped, so the window manager
                # never sees them: it manages (maximises) the top-level window only.
                self.x.reparent(_window_id(view.render_window()), frame_id)
                view.render_window().SetParentInfo(str(frame_id))  # for VTK's sizes and positions
            self.cells = self._place(size)
            for view in self.views.values():
                view.render_window().ShowWindowOn()
            self.window.ShowWindowOn()
            self.reset_3d()
            self.fit_and_render()
        self._size = size
        self.interactor.AddObserver("ConfigureEvent", self._on_configure)

    def _place(self, size) -> dict:
        """Move and size the views' windows for a top-level window of SIZE."""
        width, height = size
        cells = {}
        # Blocked: a view renders when its size changes, and VTK's render takes
        # the X window's size of the moment, before the resize that follows.
        with _session.one_render(*self.views.values()):
            for tag, cell in _layout.geometry(self.layout, width, height).items():
                bar_rect, view_rect = _layout.with_bar(cell)
                cells[tag] = (bar_rect, view_rect)
                x, y, w, h = view_rect
                window = self.views[tag].render_window()
                window.SetPosition(x, y)
                window.SetSize(max(1, w), max(1, h))
                self.bars[tag].place(bar_rect, size)
        return cells

    def _on_configure(self, *_):
        # Openbox re-maximises the window when the browser resizes the remote
        # screen; lay the views out again and fit them, as Slicer does.
        size = tuple(self.window.GetSize())
        if size != self._size:
            self._size = size
            self.fit_and_render(size)

    def reset_3d(self) -> None:
        """Fit the 3D view to the volume at its present size and turn it to the starting view."""
        for view in self.views.values():
            _reset_3d(view)

    def fit_and_render(self, size=None) -> None:
        """Lay the views out for SIZE (if given), fit the slices to them and draw everything once."""
        from trame_slicer.views import SliceView

        if size is not None:
            self.cells = self._place(size)
        # The 3D view keeps its camera (the person may have turned it); a new
        # volume resets it (reset_3d).
        with _session.one_render(*self.views.values()):
            for view in [*self.views.values(), *self.unseen]:
                if isinstance(view, SliceView):
                    view.fit_view_to_content()
        self.window.Render()


class _Bar:
    """A view's bar above it: the view's layout colour and its label (R, Y, G, 1)."""

    def __init__(self, view, definition=None):
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor

        rgb, label = _bar_look(view, definition)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*rgb)
        self.label = vtkTextActor()
        self.label.SetInput(label)
        text = self.label.GetTextProperty()
        text.SetFontSize(11)
        text.BoldOn()
        text.SetColor(0.0, 0.0, 0.0)
        self.label.SetPosition(5, 1)
        self.renderer.AddActor2D(self.label)

    def place(self, rect, window_size) -> None:
        x, y, w, h = rect
        width, height = window_size
        self.renderer.SetDraw(h > 0)
        if h > 0:
            # VTK viewports count from the bottom left, in fractions of the window.
            self.renderer.SetViewport(x / width, 1 - (y + h) / height, (x + w) / width, 1 - y / height)


def _bar_look(view, definition=None) -> tuple[tuple[float, float, float], str]:
    """(colour 0..1, label) of a view's bar: Slicer's layout gives the slice views'
    (#RRGGBB, R/Y/G); the 3D view's colour is its view node's."""
    properties = getattr(definition, "properties", None)
    node = view.get_view_node()
    colour = getattr(properties, "color", None)
    if colour:
        rgb = tuple(int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    else:
        rgb = tuple(node.GetLayoutColor()) if node is not None else (0.5, 0.5, 0.5)
    label = getattr(properties, "label", None) or (node.GetLayoutLabel() if node is not None else "")
    return rgb, label


def _unseen_slice_views(s, tags, block: bool = True) -> list:
    """The slice views a layout without any still needs: the 3D view shows their planes.

    Slicer has its slice views whatever the layout shows, and so its 3D view the
    slices in 3D; a 3D-only layout makes them here, at a fixed size (their
    slices' resolution in 3D), with rendering blocked (BLOCK) as nobody sees them.
    """
    names = [_session.VIEW_OF_TAG.get(tag, tag) for tag in tags]
    if "ThreeD" not in names or any(name in _session.SLICE_VIEWS for name in names):
        return []
    views = s.views(*_session.SLICE_VIEWS)
    for view in views:
        with _session.one_render(view):
            view.render_window().SetSize(*UNSEEN_SLICE_SIZE)
            view.fit_view_to_content()
        if block:
            view.set_render_blocked(True)
    return views


def _window_level_on_left_drag(view) -> None:
    """Left drag in a slice view sets window/level, in Slicer's default mouse mode too.

    Slicer's window/level widget takes a plain left drag only in its own mouse
    mode ("Adjust window/level"), chosen in Slicer's toolbar, which the desktop
    has not; the widget's always-on events (Slicer's script repository binds a
    gesture so) make the drag work whatever the mode.
    """
    from trame_slicer.views import SliceView
    from vtkmodules.vtkCommonCore import vtkCommand

    if not isinstance(view, SliceView):
        return
    manager = view.get_displayable_manager_by_class("vtkMRMLScalarBarDisplayableManager")
    widget = manager.GetWindowLevelWidget() if manager is not None else None
    if widget is None:
        return
    idle, press = widget.WidgetStateIdle, vtkCommand.LeftButtonPressEvent
    for modifier, dragging, start, end in (
            (NO_MODIFIER, widget.WidgetStateAdjustWindowLevel,
             widget.WidgetEventAlwaysOnAdjustWindowLevelStart, widget.WidgetEventAlwaysOnAdjustWindowLevelEnd),
            # Ctrl + left drag: window/level from the region dragged over, as in Slicer.
            (CONTROL_MODIFIER, widget.WidgetStateAdjustWindowLevelAlternative,
             widget.WidgetEventAlwaysOnAdjustWindowLevelAlternativeStart,
             widget.WidgetEventAlwaysOnAdjustWindowLevelAlternativeEnd)):
        # The mode-bound translation comes first and would win; "no event" removes it.
        widget.SetEventTranslation(idle, press, modifier, widget.WidgetEventNone)
        widget.SetEventTranslationClickAndDrag(idle, press, modifier, dragging, start, end)


def _reset_3d(view) -> None:
    """Slicer's reset of a 3D view (fit, from the front), turned to the desktop's oblique view."""
    from trame_slicer.views import ThreeDView

    camera_node = view.get_camera_node() if isinstance(view, ThreeDView) else None
    if camera_node is None:
        return
    with _session.one_render(view):  # each camera call asks for a render
        view.fit_view_to_content()
        camera = camera_node.GetCamera()
        camera.Azimuth(THREE_D_AZIMUTH)
        camera.Elevation(THREE_D_ELEVATION)
        camera.OrthogonalizeViewUp()
        camera_node.ResetClippingRange()


def render_png(s, size: tuple[int, int] = (1280, 900), layout: str | None = None,
               orientation: str | None = None) -> bytes:
    """The desktop's picture of session S's volume at SIZE, rendered offscreen (PNG bytes).

    Same layout (from the settings unless given), geometry, bars and starting
    3D view as the desktop window right after the volume is shown, without the
    bars' labels: what a Slicer kernel can compare the desktop with (the
    open-study test does), or show in a notebook.
    """
    import io

    from PIL import Image
    from trame_slicer.views import SliceView, ThreeDView

    name, orientation, _ = _layout.choose(layout or settings.get("Desktop/Layout", _layout.DEFAULT_LAYOUT),
                                          orientation or settings.get("Desktop/Orientation", "Axial"))
    tree = _layout.slicer_layout(name, orientation)
    definitions = {view.singleton_tag: view for view in tree.get_views(is_recursive=True)}
    cells = _layout.geometry(tree, *size)
    views = dict(zip(cells, s.views(*cells)))
    _unseen_slice_views(s, cells, block=False)
    picture = Image.new("RGB", tuple(size), tuple(round(255 * c) for c in FRAME_COLOUR))
    for tag, cell in cells.items():
        (bx, by, bw, bh), (x, y, w, h) = _layout.with_bar(cell)
        view = views[tag]
        rgb, _ = _bar_look(view, definitions.get(tag))
        if bw and bh:
            picture.paste(tuple(round(255 * c) for c in rgb), (bx, by, bx + bw, by + bh))
        if w <= 0 or h <= 0:
            continue
        with _session.one_render(view):
            view.render_window().SetSize(w, h)
            if isinstance(view, SliceView):
                view.fit_view_to_content()
            elif isinstance(view, ThreeDView):
                _reset_3d(view)
        shot = Image.open(io.BytesIO(_session.png_of(view))).convert("RGB")
        picture.paste(shot, (x, y))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


class _Xlib:
    """The one Xlib call VTK does not offer: reparent the views' X windows into the desktop's.

    A render window takes a parent (SetParentId) only before its X window is
    made, and trame-slicer's views make theirs when they are built. The call goes
    on a connection of our own, synced before VTK maps the windows on its own.
    """

    def __init__(self):
        lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XReparentWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_int, ctypes.c_int]
        lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.lib = lib
        # VTK focuses a view's window when the pointer enters it; Openbox
        # reparenting the top-level window can unmap it in between, and the
        # BadMatch that X answers would end the process (Xlib's default
        # handler exits). Such errors are logged and the app goes on.
        self._handler = _X_ERROR_HANDLER(_on_x_error)
        lib.XSetErrorHandler.argtypes = [_X_ERROR_HANDLER]
        lib.XSetErrorHandler(self._handler)
        self.display = lib.XOpenDisplay(None)
        if not self.display:
            raise RuntimeError("cannot open the X display")

    def reparent(self, window: int, parent: int) -> None:
        """Make WINDOW a child of PARENT, and wait until the X server has done it."""
        self.lib.XReparentWindow(self.display, window, parent, 0, 0)
        self.lib.XSync(self.display, 0)


class _XErrorEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("display", ctypes.c_void_p), ("resourceid", ctypes.c_ulong),
                ("serial", ctypes.c_ulong), ("error_code", ctypes.c_ubyte), ("request_code", ctypes.c_ubyte),
                ("minor_code", ctypes.c_ubyte)]


_X_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_XErrorEvent))
_x_errors: dict[tuple[int, int], int] = {}


def _on_x_error(_display, event) -> int:
    """Count an X error (no X calls here: Xlib is inside another request); log the first of a kind."""
    key = (event.contents.error_code, event.contents.request_code)
    _x_errors[key] = _x_errors.get(key, 0) + 1
    if _x_errors[key] == 1:
        print(f"slicerhub-desktop: X error {key[0]} on request {key[1]} (ignored)", file=sys.stderr, flush=True)
    return 0


def _window_id(window) -> int:
    """The X window of a VTK render window (VTK's Python gives it as '_<hex>_p_void')."""
    generic = window.GetGenericWindowId()
    if isinstance(generic, int):
        return generic
    return int(str(generic).strip("_").split("_")[0], 16)


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
