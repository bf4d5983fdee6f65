"""One Slicer application (scene, logic, views) in a Python process.

trame-slicer's ``SlicerApp`` builds the scene, application logic and module
logics the way Slicer's core application does; views render offscreen (kernel)
or into X windows (desktop). ``install()`` publishes the session as
``slicer.mrmlScene`` / ``slicer.app`` so ``slicer.util`` helpers work.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import data, rendering

SLICE_VIEWS = {"Red": "axial_view", "Yellow": "sagittal_view", "Green": "coronal_view"}
ORIENTATION_VIEW = {"Axial": "Red", "Sagittal": "Yellow", "Coronal": "Green"}
# Slicer's layouts call the first 3D view "1"; the session calls it ThreeD.
VIEW_OF_TAG = {"1": "ThreeD"}


def _definition(name: str):
    """trame-slicer's description of view NAME (its colours and labels are Slicer's)."""
    from trame_slicer.views import ViewLayoutDefinition

    if name in SLICE_VIEWS:
        return getattr(ViewLayoutDefinition, SLICE_VIEWS[name])()
    if name == "ThreeD":
        return ViewLayoutDefinition.threed_view()
    raise ValueError(f"no view {name!r}: use Red, Yellow, Green or ThreeD")


def _three_d_last(view) -> bool:
    from trame_slicer.views import ThreeDView

    return isinstance(view, ThreeDView)


@contextmanager
def one_render(*views):
    """Render VIEWS once, at the end, instead of at every MRML change inside.

    trame-slicer's DirectRendering renders a view as soon as a displayable
    manager asks, and showing a volume in a slice view (background layer, 3D
    visibility, fit) asks over sixty times; with the view's own set-up that was
    7.8 s of llvmpipe frames before the desktop's first picture. Blocked, the
    requests are dropped; unblocking schedules the one render that shows the
    end state. (The view manager's set_current_view_ids unblocks the views it
    maps: call it outside.)
    """
    with ExitStack() as stack:
        for view in views:
            was = view.set_render_blocked(True)
            stack.callback(view.set_render_blocked, was)
        yield


def _view_factory(offscreen: bool):
    """trame-slicer's DirectViewFactory, but its views do not render on request yet.

    They are built with NoScheduleRendering; SlicerSession.view() gives each
    DirectRendering once it is set up and mapped in the layout. Building and
    mapping a view otherwise renders a frame per MRML change, over thirty.
    """
    from trame_slicer.views import IViewFactory, NoScheduleRendering, SliceView, ThreeDView, ViewType

    class QuietSetupViewFactory(IViewFactory):
        def can_create_view(self, view) -> bool:
            return view.view_type in (ViewType.SLICE_VIEW, ViewType.THREE_D_VIEW)

        def _create_view(self, view, scene, app_logic):
            cls = SliceView if view.view_type == ViewType.SLICE_VIEW else ThreeDView
            made = cls(scene, app_logic, view.singleton_tag, scheduled_render_strategy=NoScheduleRendering())
            if not offscreen:
                # Drawn in its X window, which stays unmapped: SetOffScreenRendering(False)
                # would also map it (ShowWindow), as a top-level window the window
                # manager takes; the desktop maps it where it belongs (desktop.py).
                made.render_window().SetUseOffScreenBuffers(False)
            made.set_view_properties(view.properties)
            return made

        def _get_slicer_view(self, view):
            return view

    return QuietSetupViewFactory()


class SlicerSession:
    def __init__(self, *, offscreen: bool = True):
        from trame_slicer.core import SlicerApp

        self.app = SlicerApp()
        self.scene = self.app.scene
        self.offscreen = offscreen
        self.gpu = rendering.has_gpu()
        self.app.view_manager.register_factory(_view_factory(offscreen))
        self._views: dict = {}
        self._background = None  # the volume shown in every view

    # ------------------------------------------------------------- views ---
    def view(self, name: str):
        """The view called NAME ('Red', 'Yellow', 'Green' or 'ThreeD'), made on first use."""
        return self.views(name)[0]

    def views(self, *names: str) -> list:
        """The views called NAMES (Slicer's singleton tags; '1' is 'ThreeD'), made together.

        Views made in one call join the layout at once and render once each:
        made one by one, every new view would re-render the ones before it
        (the view manager unblocks what it maps, see one_render()).
        """
        from trame_slicer.views import DirectRendering

        names = [VIEW_OF_TAG.get(name, name) for name in names]
        missing = {name: _definition(name) for name in names if name not in self._views}
        for name, definition in missing.items():
            self._views[name] = self.app.view_manager.create_view(definition)
        if missing:
            # Before one_render(): the view manager unblocks the views it maps
            # in the layout (and blocks the others). The new views still
            # ignore render requests (see _view_factory).
            self.app.view_manager.set_current_view_ids(list(self._views))
            made = [self._views[name] for name in missing]
            with one_render(*made):
                volume = self.background_volume()
                # Slice views first: the 3D view fits to their planes.
                for view in sorted(made, key=_three_d_last):
                    view.set_scheduled_render(DirectRendering())
                    view.render_window().SetMultiSamples(rendering.multisamples())
                    if volume is not None:
                        self._show_in(view, volume)
        return [self._views[name] for name in names]

    def slice_view(self, orientation: str = "Axial"):
        try:
            return self.view(ORIENTATION_VIEW[orientation])
        except KeyError:
            raise ValueError(f"orientation must be one of {', '.join(ORIENTATION_VIEW)}, not {orientation!r}") from None

    # -------------------------------------------------------------- data ---
    def load_volume(self, path, name: str | None = None, labelmap: bool = False):
        """Load a volume file (NRRD, NIfTI, MetaImage, ...) with Slicer's volumes logic."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such volume file: {path}")
        options = 1 if labelmap else 0
        with one_render(*self._views.values()):
            node = self.app.volumes_logic.AddArchetypeVolume(str(path), name or _node_name(path), options)
        if node is None:
            raise RuntimeError(f"Slicer could not read {path} as a volume")
        if not labelmap:
            self.show_volume(node)
        return node

    def sample_volume(self, name: str = "MNI152-T1"):
        existing = self.scene.GetFirstNodeByName(name)
        return existing if existing is not None else self.load_volume(data.sample_path(name), name=name)

    def background_volume(self):
        return self._background

    def show_volume(self, volume) -> None:
        """Show VOLUME in every slice view (and as slice planes in 3D)."""
        self._background = volume
        with one_render(*self._views.values()):
            for view in sorted(self._views.values(), key=_three_d_last):
                self._show_in(view, volume)

    def _show_in(self, view, volume) -> None:
        from trame_slicer.views import SliceView

        if isinstance(view, SliceView):
            view.set_background_volume_id(volume.GetID())
            view.set_visible_in_3d(True)
        view.reset_view()

    # --------------------------------------------------------- rendering ---
    def render_png(self, name: str, size: tuple[int, int] = (512, 512)) -> bytes:
        """Render view NAME at SIZE and return it as PNG bytes."""
        view = self.view(name)
        window = view.render_window()
        if tuple(window.GetSize()) != tuple(size):
            window.SetSize(*size)
            view.fit_view_to_content()
        return png_of(view)


def png_of(view) -> bytes:
    """Render VIEW as it is and return its picture as PNG bytes."""
    from vtkmodules.vtkIOImage import vtkPNGWriter
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    view.render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(view.render_window())
    grab.ReadFrontBufferOff()
    grab.Update()
    writer = vtkPNGWriter()
    writer.WriteToMemoryOn()
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    return bytes(memoryview(writer.GetResult()))


def _node_name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".mha", ".mhd", ".nhdr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


_current: SlicerSession | None = None


def current() -> SlicerSession:
    """The process's session (made on first use)."""
    global _current
    if _current is None:
        _current = SlicerSession(offscreen=True)
    return _current


def install(session: SlicerSession | None = None) -> SlicerSession:
    """Make SESSION the one ``import slicer`` sees: slicer.mrmlScene, slicer.app."""
    global _current
    import slicer

    from .appshim import CoreApplication

    _current = session or current()
    slicer.mrmlScene = _current.scene
    slicer.app = CoreApplication(_current)
    return _current
