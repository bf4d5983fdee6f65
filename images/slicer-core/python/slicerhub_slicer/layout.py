"""Slicer's view layouts in the desktop window: which views, and where.

The arrangements are Slicer's own: vtkMRMLLayoutLogic's layout descriptions
(the XML that Slicer's layout manager reads), parsed into a layout tree by
trame-slicer's ``slicer_layout_to_vue``. What neither offers outside a
browser or Qt is the geometry: ``geometry()`` splits a window into the
layout's cells the way CSS flex (trame) and Qt's splitters (Slicer) do,
evenly unless the layout gives sizes. That part is plain Python (no Slicer
import) so it is unit-tested on its own.

Settings (``Desktop/Layout``, ``Desktop/Orientation``) name a layout:

==============  ==========================================================
``FourUp``      Slicer's default: Red (axial) and 3D above, Green
                (coronal) and Yellow (sagittal) below.
``Conventional``  3D above, the three slice views in a row below.
``OneUp``       One view filling the window: the ``Desktop/Orientation``
                one (Axial, Sagittal, Coronal or 3D).
==============  ==========================================================
"""

from __future__ import annotations

# Desktop/Layout value -> vtkMRMLLayoutNode constant (a name, looked up on use).
LAYOUTS = {
    "FourUp": "SlicerLayoutFourUpView",
    "Conventional": "SlicerLayoutConventionalView",
    "OneUp": None,  # by orientation, below
}
ONE_UP = {
    "Axial": "SlicerLayoutOneUpRedSliceView",
    "Sagittal": "SlicerLayoutOneUpYellowSliceView",
    "Coronal": "SlicerLayoutOneUpGreenSliceView",
    "3D": "SlicerLayoutOneUp3DView",
}
DEFAULT_LAYOUT = "FourUp"
# Pixels between two views (Slicer's splitter handle) and of the coloured
# bar above a view (Slicer's view controller, reduced to its colour and label).
GAP = 2
BAR = 14


def choose(layout: str | None, orientation: str | None) -> tuple[str, str, list[str]]:
    """(layout, orientation, complaints): the names to use for the settings' values.

    Unknown values fall back to the defaults (FourUp, Axial), with a line each
    for the log; the desktop must come up whatever the settings file says.
    """
    complaints = []
    layout = layout or DEFAULT_LAYOUT
    match = {name.lower(): name for name in LAYOUTS}.get(layout.strip().lower())
    if match is None:
        complaints.append(f"unknown layout {layout!r}; using {DEFAULT_LAYOUT}")
        match = DEFAULT_LAYOUT
    orientation = orientation or "Axial"
    known = {name.lower(): name for name in ONE_UP}.get(orientation.strip().lower())
    if known is None:
        complaints.append(f"unknown orientation {orientation!r}; using Axial")
        known = "Axial"
    return match, known, complaints


def layout_constant(layout: str, orientation: str) -> str:
    """The vtkMRMLLayoutNode constant's name for a (checked) layout and orientation."""
    return LAYOUTS[layout] or ONE_UP[orientation]


def slicer_description(constant: str) -> str:
    """Slicer's layout XML for a vtkMRMLLayoutNode constant, from vtkMRMLLayoutLogic."""
    import slicer
    from vtkmodules.vtkCommonCore import vtkObject

    # The logic makes Slicer's default view nodes in the scene it is given; a
    # scratch scene keeps them (and their complaints about orientation presets,
    # which only the application logic defines) away from the session's.
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkMRMLLayoutLogic()
    warnings = vtkObject.GetGlobalWarningDisplay()
    vtkObject.GlobalWarningDisplayOff()
    try:
        logic.SetMRMLScene(scene)
        node = logic.GetLayoutNode()
        return node.GetLayoutDescription(getattr(slicer.vtkMRMLLayoutNode, constant))
    finally:
        vtkObject.SetGlobalWarningDisplay(warnings)


def slicer_layout(layout: str, orientation: str):
    """trame-slicer's Layout tree of a Slicer layout (its views are ViewLayoutDefinitions)."""
    from trame_slicer.views import slicer_layout_to_vue

    return slicer_layout_to_vue(slicer_description(layout_constant(layout, orientation)))


# ------------------------------------------------------------- geometry ---

def _is_layout(item) -> bool:
    return hasattr(item, "items") and hasattr(item, "direction")


def _weights(layout) -> list[float]:
    sizes = getattr(layout, "flex_sizes", None) or []
    weights = []
    for index in range(len(layout.items)):
        try:
            weight = float(sizes[index])
        except (IndexError, TypeError, ValueError):
            weight = 1.0
        weights.append(weight if weight > 0 else 1.0)
    return weights


def _split(start: int, length: int, weights: list[float], gap: int) -> list[tuple[int, int]]:
    """(start, length) of each part of [start, start+length) after gaps, by weight; they tile exactly."""
    count = len(weights)
    usable = max(0, length - gap * (count - 1))
    total = sum(weights)
    parts, used, edge = [], 0.0, 0
    for index, weight in enumerate(weights):
        used += weight
        end = round(usable * used / total) if index < count - 1 else usable
        parts.append((start + edge + gap * index, max(0, end - edge)))
        edge = end
    return parts


def geometry(layout, width: int, height: int, gap: int = GAP) -> dict[str, tuple[int, int, int, int]]:
    """{singleton tag: (x, y, width, height)} of each view of LAYOUT in a WIDTH x HEIGHT window.

    X's coordinates: x to the right, y down from the top-left corner.
    A ``Horizontal`` layout puts its items side by side, a ``Vertical`` one
    stacks them; items share the room by ``flex_sizes`` (evenly without),
    with GAP pixels between neighbours.
    """
    cells: dict[str, tuple[int, int, int, int]] = {}

    def place(item, x: int, y: int, w: int, h: int) -> None:
        if not _is_layout(item):
            cells[item.singleton_tag] = (x, y, w, h)
            return
        if not item.items:
            return
        weights = _weights(item)
        if _direction(item) == "horizontal":
            for child, (cx, cw) in zip(item.items, _split(x, w, weights, gap)):
                place(child, cx, y, cw, h)
        else:
            for child, (cy, ch) in zip(item.items, _split(y, h, weights, gap)):
                place(child, x, cy, w, ch)

    place(layout, 0, 0, max(0, int(width)), max(0, int(height)))
    return cells


def _direction(layout) -> str:
    direction = layout.direction
    return str(getattr(direction, "name", direction)).lower()


def with_bar(cell: tuple[int, int, int, int], bar: int = BAR) -> tuple[tuple[int, int, int, int],
                                                                   tuple[int, int, int, int]]:
    """(bar, view) rectangles of a cell: the bar on top, the view under it.

    A cell too small for both keeps the whole of it for the view (no bar).
    """
    x, y, w, h = cell
    if h < 4 * bar:
        return (x, y, w, 0), cell
    return (x, y, w, bar), (x, y + bar, w, h - bar)
