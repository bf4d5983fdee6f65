"""Show Slicer views in a notebook: still images and an interactive viewer.

    from slicerhub_slicer.notebook import show_slice, show_3d, SliceViewer
    volume = slicer.util.loadVolume(path)      # or session.current().sample_volume()
    show_slice(volume, "Axial")                # a PNG of Slicer's red slice view
    SliceViewer(volume)                        # slider, window/level, orientation
"""

from __future__ import annotations

from . import session as _session


def _prepare(volume):
    s = _session.current()
    if volume is not None:
        s.show_volume(volume)
    elif s.background_volume() is None:
        raise ValueError("no volume to show: load one (slicer.util.loadVolume) or pass volume=")
    return s


def slice_png(volume=None, orientation: str = "Axial", offset: float | None = None,
              size: tuple[int, int] = (512, 512)) -> bytes:
    """PNG bytes of Slicer's slice view in ORIENTATION, at OFFSET mm if given."""
    s = _prepare(volume)
    view = s.slice_view(orientation)
    if offset is not None:
        view.set_slice_value(float(offset))
    return s.render_png(_session.ORIENTATION_VIEW[orientation], size)


def threed_png(volume=None, size: tuple[int, int] = (512, 512)) -> bytes:
    """PNG bytes of Slicer's 3D view (the three slice planes in 3D)."""
    s = _prepare(volume)
    for name in _session.SLICE_VIEWS:
        s.view(name)  # the slice planes shown in 3D come from the slice views
    view = s.view("ThreeD")
    if not getattr(view, "_slicerhub_oblique", False):
        # Slicer's default camera looks from the front, where only the coronal
        # plane shows; turn it so all three planes are seen.
        camera = view.first_renderer().GetActiveCamera()
        camera.Azimuth(35)
        camera.Elevation(25)
        view.first_renderer().ResetCamera()
        view._slicerhub_oblique = True
    return s.render_png("ThreeD", size)


def show_slice(volume=None, orientation: str = "Axial", offset: float | None = None,
               size: tuple[int, int] = (512, 512)):
    from IPython.display import Image

    return Image(data=slice_png(volume, orientation, offset, size), format="png")


def show_3d(volume=None, size: tuple[int, int] = (512, 512)):
    from IPython.display import Image

    return Image(data=threed_png(volume, size), format="png")


def SliceViewer(volume=None, orientation: str = "Axial", size: tuple[int, int] = (512, 512)):  # noqa: N802
    """An ipywidgets viewer: slice slider, window/level and orientation."""
    import ipywidgets as w

    s = _prepare(volume)
    volume = s.background_volume()
    display = volume.GetDisplayNode()
    image = w.Image(format="png", layout=w.Layout(width=f"{size[0]}px", height=f"{size[1]}px"))
    orient = w.Dropdown(options=list(_session.ORIENTATION_VIEW), value=orientation, description="View")
    low, high = volume.GetImageData().GetScalarRange()
    window = w.FloatSlider(value=display.GetWindow(), min=1.0, max=max(high - low, 1.0) * 2,
                           description="Window", continuous_update=False)
    level = w.FloatSlider(value=display.GetLevel(), min=low, max=high,
                          description="Level", continuous_update=False)
    offset = w.FloatSlider(description="Slice (mm)", continuous_update=True)

    def set_range(*_):
        view = s.slice_view(orient.value)
        lo, hi = view.get_slice_range()
        with offset.hold_trait_notifications():  # validate min <= max once both are set
            offset.min, offset.max = lo, hi
        offset.step = view.get_slice_step() or 1.0
        offset.value = view.get_slice_value()

    def redraw(*_):
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(window.value, level.value)
        image.value = slice_png(None, orient.value, offset.value, size)

    set_range()
    redraw()
    orient.observe(lambda change: (set_range(), redraw()), names="value")
    for control in (window, level, offset):
        control.observe(redraw, names="value")
    box = w.VBox([orient, offset, w.HBox([window, level]), image])
    box.image, box.offset, box.window, box.level, box.orientation = image, offset, window, level, orient
    return box
