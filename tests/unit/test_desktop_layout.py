"""The Slicer desktop's layout geometry (images/slicer-core/.../layout.py): which
rectangle of the window each view gets, and the settings that pick the layout.

The module is loaded from its file: it imports Slicer and trame-slicer only
inside the functions that read Slicer's layout descriptions, which the e2e
tests exercise in the image (tests/e2e/test_slicer_desktop.py)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from enum import Enum, auto
from itertools import combinations
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYOUT_PY = ROOT / "images" / "slicer-core" / "python" / "slicerhub_slicer" / "layout.py"


def _load():
    spec = importlib.util.spec_from_file_location("slicerhub_desktop_layout", LAYOUT_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layout = _load()


# Stand-ins with the shape of trame-slicer's Layout / LayoutDirection / ViewLayoutDefinition.
class Direction(Enum):
    Vertical = auto()
    Horizontal = auto()


@dataclass
class View:
    singleton_tag: str


@dataclass
class Layout:
    direction: Direction
    items: list = field(default_factory=list)
    flex_sizes: list | None = None


def four_up() -> Layout:
    """Slicer's SlicerLayoutFourUpView, as slicer_layout_to_vue reads it."""
    return Layout(Direction.Vertical, [Layout(Direction.Horizontal, [View("Red"), View("1")]),
                                       Layout(Direction.Horizontal, [View("Green"), View("Yellow")])])


def conventional() -> Layout:
    return Layout(Direction.Vertical, [View("1"), Layout(Direction.Horizontal,
                                                         [View("Red"), View("Green"), View("Yellow")])])


def _area(rect) -> int:
    return rect[2] * rect[3]


def _overlap(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_four_up_puts_red_and_3d_above_green_and_yellow_below():
    cells = layout.geometry(four_up(), 1280, 900, gap=2)
    assert cells == {"Red": (0, 0, 639, 449), "1": (641, 0, 639, 449),
                     "Green": (0, 451, 639, 449), "Yellow": (641, 451, 639, 449)}


@pytest.mark.parametrize("size", [(1280, 900), (1281, 901), (900, 700), (641, 377), (7, 5)])
@pytest.mark.parametrize("make", [four_up, conventional])
def test_views_tile_the_window_with_gaps_between_and_no_overlap(make, size):
    width, height = size
    gap = 2
    cells = layout.geometry(make(), width, height, gap=gap)
    for rect in cells.values():
        x, y, w, h = rect
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height, rect
    for a, b in combinations(cells.values(), 2):
        assert not _overlap(a, b), (a, b)
    # Everything but the gaps: two gap lines in each direction at most.
    columns = 3 if make is conventional else 2
    rows = 2
    lost = gap * (columns - 1) * height + gap * (rows - 1) * width
    assert sum(map(_area, cells.values())) >= width * height - lost


def test_the_window_edges_are_reached_whatever_the_rounding():
    cells = layout.geometry(conventional(), 1001, 777, gap=2)
    assert max(x + w for x, y, w, h in cells.values()) == 1001
    assert max(y + h for x, y, w, h in cells.values()) == 777
    assert min(x for x, y, w, h in cells.values()) == 0
    # Three slice views in a row share the width within a pixel.
    widths = sorted(cells[tag][2] for tag in ("Red", "Green", "Yellow"))
    assert widths[-1] - widths[0] <= 1


def test_one_view_fills_the_window():
    assert layout.geometry(Layout(Direction.Horizontal, [View("Red")]), 1280, 900) == {"Red": (0, 0, 1280, 900)}


def test_flex_sizes_share_the_room_by_weight():
    two_to_one = Layout(Direction.Horizontal, [View("1"), View("Red")], flex_sizes=["2", "1"])
    cells = layout.geometry(two_to_one, 902, 600, gap=2)
    assert cells == {"1": (0, 0, 600, 600), "Red": (602, 0, 300, 600)}
    # Missing, unreadable or non-positive sizes count as 1.
    odd = Layout(Direction.Vertical, [View("a"), View("b"), View("c")], flex_sizes=["x", "0"])
    heights = [h for _, _, _, h in layout.geometry(odd, 100, 302, gap=1).values()]
    assert heights == [100, 100, 100]


def test_a_direction_given_as_text_works_too():
    cells = layout.geometry(Layout("horizontal", [View("a"), View("b")]), 10, 4, gap=0)
    assert cells == {"a": (0, 0, 5, 4), "b": (5, 0, 5, 4)}


def test_empty_layouts_and_windows_give_empty_cells_not_errors():
    assert layout.geometry(Layout(Direction.Vertical, []), 100, 100) == {}
    cells = layout.geometry(four_up(), 0, 0)
    assert set(cells) == {"Red", "1", "Green", "Yellow"} and all(_area(r) == 0 for r in cells.values())


def test_bar_on_top_of_a_view_and_none_in_a_small_cell():
    bar, view = layout.with_bar((641, 451, 639, 449), bar=14)
    assert bar == (641, 451, 639, 14) and view == (641, 465, 639, 435)
    assert layout.with_bar((0, 0, 100, 40), bar=14) == ((0, 0, 100, 0), (0, 0, 100, 40))


@pytest.mark.parametrize("given, expected", [
    ((None, None), ("FourUp", "Axial", 0)),
    (("FourUp", "Sagittal"), ("FourUp", "Sagittal", 0)),
    (("oneup", "coronal"), ("OneUp", "Coronal", 0)),
    ((" Conventional ", "3d"), ("Conventional", "3D", 0)),
    (("Tiled", "Axial"), ("FourUp", "Axial", 1)),
    (("OneUp", "Oblique"), ("OneUp", "Axial", 1)),
    (("nine", "up"), ("FourUp", "Axial", 2)),
])
def test_settings_values_are_checked_and_fall_back_to_slicers_defaults(given, expected):
    name, orientation, complaints = layout.choose(*given)
    assert (name, orientation, len(complaints)) == expected
    for complaint in complaints:
        assert "using" in complaint


def test_each_choice_names_a_slicer_layout():
    assert layout.layout_constant("FourUp", "Sagittal") == "SlicerLayoutFourUpView"
    assert layout.layout_constant("Conventional", "Axial") == "SlicerLayoutConventionalView"
    assert layout.layout_constant("OneUp", "Axial") == "SlicerLayoutOneUpRedSliceView"
    assert layout.layout_constant("OneUp", "Sagittal") == "SlicerLayoutOneUpYellowSliceView"
    assert layout.layout_constant("OneUp", "Coronal") == "SlicerLayoutOneUpGreenSliceView"
    assert layout.layout_constant("OneUp", "3D") == "SlicerLayoutOneUp3DView"
