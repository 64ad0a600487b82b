"""SVG import/export against hand-computed control points, arc accuracy, refusals and round trips.

Unless a test says otherwise, drawings use a 100×100 viewBox on a 100×100 canvas, so SVG
user units are canvas pixels and the expected numbers can be read straight off the SVG.
"""

from __future__ import annotations

import gzip
import math
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path as FilePath

import numpy as np
import pytest

from engine.errors import SketchError, SVGError
from engine.vector.sketch import MAX_PATHS, Path, Sketch
from engine.vector.svg import DEFAULT_FILL_HALF_WIDTH, MAX_SVG_BYTES, SVGImportWarning, export_svg, import_svg, save_svg, save_svg_frames

NS = "http://www.w3.org/2000/svg"
K = 4 / 3 * (math.sqrt(2) - 1)  # handle length of a quarter circle: 4/3·tan(90°/4)
R2 = math.sqrt(2) / 2  # cos 45°


def svg(body: str, size: int = 100, extra: str = "") -> str:
    return f'<svg xmlns="{NS}" width="{size}" height="{size}" viewBox="0 0 {size} {size}" {extra}>{body}</svg>'


def stroke(d: str, extra: str = "") -> str:
    return f'<path d="{d}" stroke="black" fill="none" {extra}/>'


def load(body: str, size: int = 100, **kwargs) -> Sketch:
    kwargs.setdefault("canvas_size", size)
    return import_svg(svg(body, size), **kwargs)


def points_of(d: str) -> list[np.ndarray]:
    return [p.points for p in load(stroke(d)).paths]


def only_points(d: str) -> np.ndarray:
    (points,) = points_of(d)
    return points


def assert_points(actual: np.ndarray, expected) -> None:
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=float), rtol=0, atol=1e-9)


def sample(path: Path, n: int = 400) -> np.ndarray:
    """Dense points along every cubic segment of a path."""
    t = np.linspace(0.0, 1.0, n)[None, :, None]
    seg = path.segments()[:, :, None, :]
    s = 1 - t
    curve = s**3 * seg[:, 0] + 3 * s * s * t * seg[:, 1] + 3 * s * t * t * seg[:, 2] + t**3 * seg[:, 3]
    return curve.reshape(-1, 2)


def ellipse_distance(points: np.ndarray, center, rx: float, ry: float, angle_deg: float) -> np.ndarray:
    """Distance to an ellipse to first order (|F| / |∇F|), accurate for distances ≪ the radii."""
    a = math.radians(angle_deg)
    d = points - np.asarray(center, dtype=float)
    x = math.cos(a) * d[:, 0] + math.sin(a) * d[:, 1]
    y = -math.sin(a) * d[:, 0] + math.cos(a) * d[:, 1]
    f = (x / rx) ** 2 + (y / ry) ** 2 - 1
    grad = np.hypot(2 * x / rx**2, 2 * y / ry**2)
    return np.abs(f) / grad


def single_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# ================================================================== path commands
def test_moveto_and_lineto_become_exact_cubics():
    assert_points(only_points("M 0 0 L 30 60"), [(0, 0), (10, 20), (20, 40), (30, 60)])


def test_relative_lineto_and_horizontal_vertical():
    expected = [
        (10, 10), (20, 10), (30, 10), (40, 10),  # l 30 0
        (30, 10), (20, 10), (10, 10),  # h -30
        (10, 20), (10, 30), (10, 40),  # v 30
        (20, 40), (30, 40), (40, 40),  # H 40
        (40, 30), (40, 20), (40, 10),  # V 10
    ]  # fmt: skip
    assert_points(only_points("m 10 10 l 30 0 h -30 v 30 H 40 V 10"), expected)


def test_cubic_absolute_and_relative():
    points = only_points("M 10 10 C 20 0 40 0 50 10 c 10 10 10 30 0 40")
    assert_points(points, [(10, 10), (20, 0), (40, 0), (50, 10), (60, 20), (60, 40), (50, 50)])


@pytest.mark.parametrize("d", ["M 0 0 C 10 20 30 20 40 0 S 70 -20 80 0", "M 0 0 C 10 20 30 20 40 0 s 30 -20 40 0"])
def test_smooth_cubic_reflects_previous_control_point(d):
    # reflection of (30, 20) about (40, 0) is (50, -20)
    assert_points(only_points(d)[3:], [(40, 0), (50, -20), (70, -20), (80, 0)])


def test_smooth_cubic_after_smooth_cubic_and_after_other_commands():
    # first S follows M: its first control is the current point; the second reflects (10, 10) about (20, 0)
    assert_points(
        only_points("M 0 0 S 10 10 20 0 S 30 -10 40 0"),
        [(0, 0), (0, 0), (10, 10), (20, 0), (30, -10), (30, -10), (40, 0)],
    )
    # after L or Q there is nothing to reflect
    assert_points(only_points("M 0 0 L 9 0 S 20 10 30 0")[3:], [(9, 0), (9, 0), (20, 10), (30, 0)])
    assert_points(only_points("M 0 0 Q 10 10 20 0 S 30 10 40 0")[3:], [(20, 0), (20, 0), (30, 10), (40, 0)])


def test_quadratic_becomes_exact_cubic():
    # C1 = P0 + 2/3 (Q − P0) = (20, 40); C2 = P2 + 2/3 (Q − P2) = (40, 40)
    assert_points(only_points("M 0 0 Q 30 60 60 0"), [(0, 0), (20, 40), (40, 40), (60, 0)])
    # relative: Q = (40, 70), end (70, 10): C1 = (30, 50), C2 = (50, 50)
    assert_points(only_points("M 10 10 q 30 60 60 0"), [(10, 10), (30, 50), (50, 50), (70, 10)])


@pytest.mark.parametrize("d", ["M 0 0 Q 30 60 60 0 T 120 0", "M 0 0 Q 30 60 60 0 t 60 0"])
def test_smooth_quadratic_reflects_previous_control(d):
    # control (90, −60): C1 = (60,0) + 2/3 (30, −60) = (80, −40); C2 = (120,0) + 2/3 (−30, −60) = (100, −40)
    assert_points(only_points(d)[3:], [(60, 0), (80, -40), (100, -40), (120, 0)])


def test_smooth_quadratic_without_previous_quadratic_uses_current_point():
    # control = (30, 0): C1 = (30, 0); C2 = (60, 0) + 2/3 (−30, 0) = (40, 0)
    assert_points(only_points("M 0 0 L 30 0 T 60 0")[3:], [(30, 0), (30, 0), (40, 0), (60, 0)])
    assert_points(only_points("M 0 0 C 0 10 30 10 30 0 T 60 0")[3:], [(30, 0), (30, 0), (40, 0), (60, 0)])


@pytest.mark.parametrize("d", ["M 10 0 A 10 10 0 0 1 0 10", "m 10 0 a 10 10 0 0 1 -10 10"])
def test_quarter_arc_uses_the_standard_handle_length(d):
    # centre (0, 0), from 0° to 90°: one cubic with handles 10·K along the tangents
    assert_points(only_points(d), [(10, 0), (10, 10 * K), (10 * K, 10), (0, 10)])


@pytest.mark.parametrize(
    "large, sweep, center, midpoint",
    [
        (0, 1, (50, 50), (50 + 40 * R2, 50 + 40 * R2)),  # +90° around (50, 50)
        (0, 0, (90, 90), (90 - 40 * R2, 90 - 40 * R2)),  # −90° around (90, 90)
        (1, 1, (90, 90), (90 + 40 * R2, 90 + 40 * R2)),  # +270° around (90, 90)
        (1, 0, (50, 50), (50 - 40 * R2, 50 - 40 * R2)),  # −270° around (50, 50)
    ],
)
def test_arc_flags_choose_the_centre_and_direction(large, sweep, center, midpoint):
    (path,) = load(stroke(f"M 90 50 A 40 40 0 {large} {sweep} 50 90")).paths
    assert_points(path.points[[0, -1]], [(90, 50), (50, 90)])
    curve = sample(path, n=4000)  # fine enough to come within 0.01 of any point on it
    assert np.abs(np.hypot(*(curve - center).T) - 40).max() < 0.05
    assert np.hypot(*(curve - midpoint).T).min() < 0.05


def test_arc_radii_too_small_are_scaled_up():
    # endpoints 20 apart: the radius grows to 10, centre (10, 50); sweeping + from 180° passes 270° = (10, 40)
    (path,) = load(stroke("M 0 50 A 1 1 0 0 1 20 50")).paths
    curve = sample(path)
    assert np.abs(np.hypot(curve[:, 0] - 10, curve[:, 1] - 50) - 10).max() < 0.05
    assert np.hypot(curve[:, 0] - 10, curve[:, 1] - 40).min() < 0.05
    assert_points(path.points[-1], (20, 50))


def test_arc_with_zero_radius_is_a_line_and_identical_endpoints_are_skipped():
    assert_points(only_points("M 0 0 A 0 5 0 0 1 30 60"), [(0, 0), (10, 20), (20, 40), (30, 60)])
    assert_points(only_points("M 5 5 A 5 5 0 0 1 5 5 L 35 5"), [(5, 5), (15, 5), (25, 5), (35, 5)])


@pytest.mark.parametrize("d", ["M 0 0 a5 5 0 0110 10", "M0,0a5,5,0,0,1,10,10", "M0 0a5 5 0 0 1 10 10"])
def test_arc_flags_written_without_separators(d):
    # radius grows to √50 around (5, 5); sweeping + from −135° to 45° passes −45° = (10, 0)
    (path,) = load(stroke(d)).paths
    curve = sample(path)
    assert np.abs(np.hypot(curve[:, 0] - 5, curve[:, 1] - 5) - math.sqrt(50)).max() < 0.05
    assert np.hypot(curve[:, 0] - 10, curve[:, 1]).min() < 0.05
    assert_points(path.points[-1], (10, 10))


def test_rotated_elliptic_arc():
    # ellipse centre (50, 50), radii 40 × 20 rotated 30°: from its parameter 0° to 90°
    start = (50 + 40 * math.cos(math.radians(30)), 50 + 40 * math.sin(math.radians(30)))  # (84.64…, 70)
    end = (50 - 20 * math.sin(math.radians(30)), 50 + 20 * math.cos(math.radians(30)))  # (40, 67.32…)
    (path,) = load(stroke(f"M {start[0]!r} {start[1]!r} A 40 20 30 0 1 {end[0]!r} {end[1]!r}")).paths
    curve = sample(path)
    assert ellipse_distance(curve, (50, 50), 40, 20, 30).max() < 0.05
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    local = (curve - 50) @ np.array([[c, -s], [s, c]])  # rotate back by 30°
    parameter = np.degrees(np.arctan2(local[:, 1] / 20, local[:, 0] / 40))
    assert parameter.min() > -0.1 and parameter.max() < 90.1  # the small arc, not the other three quarters


def test_implicit_repeats():
    three_points = [(0, 0), (10, 0), (20, 0), (30, 0), (30, 10), (30, 20), (30, 30)]
    assert_points(only_points("M 0 0 30 0 30 30"), three_points)
    assert_points(only_points("M 0 0 L 30 0 30 30"), three_points)
    assert_points(
        only_points("m 10 10 20 0 0 20"),  # after m the pairs are relative linetos
        [(10, 10), (10 + 20 / 3, 10), (10 + 40 / 3, 10), (30, 10), (30, 10 + 20 / 3), (30, 10 + 40 / 3), (30, 30)],
    )
    assert_points(
        only_points("M 0 0 h 10 20"), [(0, 0), (10 / 3, 0), (20 / 3, 0), (10, 0), (50 / 3, 0), (70 / 3, 0), (30, 0)]
    )
    assert_points(
        only_points("M 0 0 C 0 10 10 10 10 0 10 -10 20 -10 20 0"),
        [(0, 0), (0, 10), (10, 10), (10, 0), (10, -10), (20, -10), (20, 0)],
    )


@pytest.mark.parametrize(
    "d, start, end",
    [
        ("M1.5.5L-1-2", (1.5, 0.5), (-1, -2)),
        ("M1e-3 1E+2L.5-.5", (0.001, 100), (0.5, -0.5)),
        ("M 0,0 L 30 , 60", (0, 0), (30, 60)),
        ("M+3.e1-0 L6E1\t\n5", (30, 0), (60, 5)),
    ],
)
def test_number_formats(d, start, end):
    points = only_points(d)
    assert_points(points[[0, -1]], [start, end])


# ===================================================================== subpaths, Z, dots
def test_closepath_adds_a_line_back_only_when_needed():
    triangle = only_points("M 0 0 L 30 0 L 30 30 Z")
    assert_points(triangle[-4:], [(30, 30), (20, 20), (10, 10), (0, 0)])
    assert len(triangle) == 10
    (path,) = load(stroke("M 0 0 L 30 0 L 0 0 Z")).paths
    assert path.closed and len(path.points) == 7


def test_drawing_after_closepath_starts_at_the_subpath_start():
    first, second = points_of("M 10 10 L 40 10 Z L 10 40")
    assert_points(second, [(10, 10), (10, 20), (10, 30), (10, 40)])
    first, second = points_of("M 10 10 l 30 0 z m 5 5 l 10 0")
    assert_points(second[[0, -1]], [(15, 15), (25, 15)])


def test_each_subpath_is_its_own_path():
    sketch = load(stroke("M 0 0 L 10 0 M 20 20 L 30 20 Z M 40 40 C 50 40 50 50 40 50"))
    assert [p.closed for p in sketch.paths] == [False, True, False]
    assert [len(p.points) for p in sketch.paths] == [4, 7, 4]  # Z adds the line back


def test_zero_length_subpaths_are_dots():
    dot_z, dot_l, tiny = load(stroke("M 5 5 Z") + stroke("M 6 6 L 6 6") + stroke("M 7 7 h.01")).paths
    assert_points(dot_z.points, [(5, 5)] * 4)
    assert dot_z.closed
    assert_points(dot_l.points, [(6, 6)] * 4)
    assert_points(tiny.points, [(7, 7), (7 + 0.01 / 3, 7), (7 + 0.02 / 3, 7), (7.01, 7)])


def test_lone_moveto_is_skipped():
    assert_points(only_points("M 5 5 M 10 10 L 40 10"), [(10, 10), (20, 10), (30, 10), (40, 10)])
    (path,) = load(stroke("M 5 5") + stroke("M 0 0 L 3 0")).paths
    assert_points(path.points[-1], (3, 0))
    with pytest.raises(SVGError, match="no drawable strokes"):
        load(stroke("M 5 5"))


# ============================================================================= elements
def test_line_polyline_polygon():
    line, polyline, polygon = load(
        '<line x1="10" y1="20" x2="40" y2="80" stroke="black"/>'
        '<polyline points="0,0 30,0 30,30" stroke="black" fill="none"/>'
        '<polygon points="0 0, 30 0, 30 30" stroke="black" fill="none"/>'
    ).paths
    assert_points(line.points, [(10, 20), (20, 40), (30, 60), (40, 80)])
    assert_points(polyline.points, [(0, 0), (10, 0), (20, 0), (30, 0), (30, 10), (30, 20), (30, 30)])
    assert not polyline.closed
    assert polygon.closed and len(polygon.points) == 10
    assert_points(polygon.points[-1], (0, 0))


def test_line_without_stroke_draws_nothing():
    sketch = load('<line x1="0" y1="0" x2="9" y2="9"/>' + stroke("M 0 0 L 1 0"))
    assert len(sketch.paths) == 1


def test_rect():
    (rect,) = load('<rect x="10" y="20" width="30" height="60" stroke="black" fill="none"/>').paths
    expected = [(10, 20), (20, 20), (30, 20), (40, 20), (40, 40), (40, 60), (40, 80), (30, 80), (20, 80), (10, 80),
                (10, 60), (10, 40), (10, 20)]  # fmt: skip
    assert_points(rect.points, expected)
    assert rect.closed


@pytest.mark.parametrize("radius", ['rx="5"', 'ry="5"', 'rx="5" ry="5"'])
def test_rounded_rect_one_radius_gives_the_other(radius):
    (rect,) = load(f'<rect x="0" y="0" width="40" height="20" {radius} stroke="black" fill="none"/>').paths
    assert rect.num_segments == 8  # 4 sides + 4 quarter arcs
    # top side (5,0)→(35,0), then the corner around (35, 5) to (40, 5)
    assert_points(rect.points[:7], [(5, 0), (15, 0), (25, 0), (35, 0), (35 + 5 * K, 0), (40, 5 - 5 * K), (40, 5)])
    assert rect.closed
    assert_points(rect.points[-1], (5, 0))


def test_rounded_rect_radii_are_clamped_to_half_the_sides():
    # rx 30 → 20 (half the width); ry = rx = 30 → 10 (half the height): an ellipse 40 × 20
    (rect,) = load('<rect x="0" y="0" width="40" height="20" rx="30" stroke="black" fill="none"/>').paths
    assert rect.num_segments == 4
    assert_points(rect.points[0], (20, 0))
    assert ellipse_distance(sample(rect), (20, 10), 20, 10, 0).max() < 0.05


def test_circle_and_ellipse_start_on_the_right_and_turn_towards_plus_y():
    circle, ellipse = load(
        '<circle cx="50" cy="50" r="20" stroke="black" fill="none"/>'
        '<ellipse cx="50" cy="50" rx="30" ry="10" stroke="black" fill="none"/>'
    ).paths
    assert circle.closed and ellipse.closed
    assert_points(circle.points[:4], [(70, 50), (70, 50 + 20 * K), (50 + 20 * K, 70), (50, 70)])
    assert_points(ellipse.points[[0, 3, 6, 9, 12]], [(80, 50), (50, 60), (20, 50), (50, 40), (80, 50)])


def test_zero_radius_shapes_draw_nothing_and_negative_ones_are_refused():
    sketch = load('<circle r="0" stroke="black"/><rect width="0" height="5" stroke="black"/>' + stroke("M 0 0 L 1 0"))
    assert len(sketch.paths) == 1
    with pytest.raises(SVGError, match=r"<circle id='c'>: negative radius"):
        load('<circle id="c" r="-1" stroke="black"/>')


def test_polyline_with_odd_coordinates_is_refused():
    with pytest.raises(SVGError, match=r"<polyline id='pl'>: points has an odd number"):
        load('<polyline id="pl" points="0 0 10" stroke="black"/>')


# =========================================================================== transforms
@pytest.mark.parametrize(
    "transform, start, end",
    [
        ("translate(10 20)", (11, 22), (14, 26)),
        ("translate(10)", (11, 2), (14, 6)),
        ("scale(2)", (2, 4), (8, 12)),
        ("scale(2 3)", (2, 6), (8, 18)),
        ("rotate(90)", (-2, 1), (-6, 4)),  # (x, y) → (−y, x)
        ("rotate(90 10 10)", (18, 1), (14, 4)),  # c + R(p − c) with c = (10, 10)
        ("skewX(45)", (3, 2), (10, 6)),  # (x + y, y)
        ("skewY(45)", (1, 3), (4, 10)),  # (x, x + y)
        ("matrix(1 2 3 4 5 6)", (12, 16), (27, 38)),  # (x + 3y + 5, 2x + 4y + 6)
        ("translate(10,0) scale(2)", (12, 4), (18, 12)),  # applied right to left
        ("scale(2) translate(10,0)", (22, 4), (28, 12)),
        ("translate(10,0),scale(2)", (12, 4), (18, 12)),
        ("  translate( 10 , 0 )\n  scale( 2 )  ", (12, 4), (18, 12)),
    ],
)
def test_transforms(transform, start, end):
    (path,) = load(stroke("M 1 2 L 4 6", f'transform="{transform}"')).paths
    assert_points(path.points[[0, -1]], [start, end])
    # a line stays the exact cubic of its transformed end points
    assert_points(path.points[1], np.add(start, np.subtract(end, start) / 3))


def test_nested_group_transforms_compose_outside_in():
    body = f'<g transform="translate(10 0)"><g transform="scale(2)">{stroke("M 1 2 L 4 6")}</g></g>'
    assert_points(load(body).paths[0].points[[0, -1]], [(12, 4), (18, 12)])


@pytest.mark.parametrize("transform, half_width", [("scale(2)", 2.0), ("scale(2 8)", 4.0), ("rotate(33)", 1.0)])
def test_half_width_scales_with_sqrt_of_the_determinant(transform, half_width):
    (path,) = load(stroke("M 1 1 L 2 2", f'stroke-width="2" transform="{transform}"')).paths
    assert path.half_width == pytest.approx(half_width, abs=1e-12)


@pytest.mark.parametrize("transform", ["translate(10 0", "rotate(1 2)", "spin(3)", "scale()", "translate(nan)"])
def test_bad_transforms_are_refused_naming_the_element(transform):
    with pytest.raises(SVGError, match=r"<path id='moved'>: bad transform") as excinfo:
        load(stroke("M 0 0 L 1 1", f'id="moved" transform="{transform}"'))
    single_line_error(excinfo)


# ============================================================= styles and inheritance
def test_group_presentation_attributes_are_inherited_and_overridden():
    body = '<g stroke="red" stroke-width="4" fill="none"><path d="M 0 0 L 9 0"/><path d="M 0 5 L 9 5" stroke="blue"/></g>'
    inherited, overridden = load(body).paths
    assert inherited.color == (1.0, 0.0, 0.0) and inherited.half_width == 2.0
    assert overridden.color == (0.0, 0.0, 1.0) and overridden.half_width == 2.0


def test_style_attribute_overrides_presentation_attributes():
    body = '<path d="M 0 0 L 9 0" stroke="red" stroke-width="10" style="stroke: blue; /* note */ stroke-width:4px !important;fill:none"/>'
    (path,) = load(body).paths
    assert path.color == (0.0, 0.0, 1.0) and path.half_width == 2.0


def test_group_style_attribute_is_inherited():
    (path,) = load('<g style="stroke:#00ff00;stroke-width:3;fill:none"><path d="M 0 0 L 9 0"/></g>').paths
    assert path.color == (0.0, 1.0, 0.0) and path.half_width == 1.5


def test_opacity_multiplies_down_the_tree():
    body = '<g opacity="0.5"><g opacity="0.5">' + stroke("M 0 0 L 9 0", 'stroke-opacity="0.8"') + "</g></g>"
    assert load(body).paths[0].opacity == pytest.approx(0.2)


def test_display_none_and_visibility():
    body = (
        '<g display="none">' + stroke("M 0 0 L 9 0") + "</g>"
        + '<g style="display:none">' + stroke("M 0 1 L 9 1") + "</g>"
        + '<g visibility="hidden">' + stroke("M 0 2 L 9 2") + stroke("M 0 3 L 9 3", 'visibility="visible"') + "</g>"
    )  # fmt: skip
    (path,) = load(body).paths
    assert_points(path.points[0], (0, 3))


@pytest.mark.parametrize(
    "paint, rgb, opacity",
    [
        ("#f00", (1, 0, 0), 1),
        ("#FF8000", (1, 128 / 255, 0), 1),
        ("rgb(255, 128, 0)", (1, 128 / 255, 0), 1),
        ("rgb(100%,50%,0%)", (1, 0.5, 0), 1),
        ("orange", (1, 165 / 255, 0), 1),
        ("gray", (128 / 255,) * 3, 1),
        ("grey", (128 / 255,) * 3, 1),
        ("Navy", (0, 0, 128 / 255), 1),
        ("rebeccapurple", (0x66 / 255, 0x33 / 255, 0x99 / 255), 1),
        ("rgba(255,0,0,0.5)", (1, 0, 0), 0.5),
        ("#ff000080", (1, 0, 0), 128 / 255),
        ("hsl(120, 100%, 25%)", (0, 0.5, 0), 1),
        ("url(#missing) teal", (0, 128 / 255, 128 / 255), 1),
    ],
)
def test_colours(paint, rgb, opacity):
    (path,) = load(stroke("M 0 0 L 9 0").replace('stroke="black"', f'stroke="{paint}"')).paths
    np.testing.assert_allclose(path.color, rgb, atol=1e-12)
    assert path.opacity == pytest.approx(opacity)


def test_named_colours_match_pillows_css_table():
    from PIL import ImageColor

    from engine.vector.svg.values import _NAMED_COLORS

    assert len(_NAMED_COLORS) >= 147
    for name, value in ImageColor.colormap.items():
        if isinstance(value, str) and value.startswith("#") and len(value) == 7:
            assert _NAMED_COLORS[name] == int(value[1:], 16), name


def test_current_color_uses_the_color_property():
    default, inherited, own = load(
        stroke("M 0 0 L 9 0").replace('"black"', '"currentColor"')
        + '<g color="green"><path d="M 0 1 L 9 1" stroke="currentColor" fill="none"/></g>'
        + '<g stroke="currentColor" fill="none"><path d="M 0 2 L 9 2" color="red"/></g>'
    ).paths
    assert default.color == (0.0, 0.0, 0.0)
    assert inherited.color == pytest.approx((0.0, 128 / 255, 0.0))
    assert own.color == (1.0, 0.0, 0.0)


def test_gradient_paint_is_black_with_a_warning():
    body = '<defs><linearGradient id="g"><stop offset="0" stop-color="red"/></linearGradient></defs>'
    with pytest.warns(SVGImportWarning, match="gradient"):
        sketch = load(body + stroke("M 0 0 L 9 0").replace('"black"', '"url(#g)"'))
    assert sketch.paths[0].color == (0.0, 0.0, 0.0)
    assert any("gradient" in message for message in sketch.metadata["import_warnings"])


def test_invalid_colour_is_ignored_with_a_warning():
    with pytest.warns(SVGImportWarning, match="unknown colour"):
        (path,) = load('<g stroke="red" fill="none"><path d="M 0 0 L 9 0" stroke="reddish"/></g>').paths
    assert path.color == (1.0, 0.0, 0.0)  # the invalid value is dropped, the inherited one stays


def test_fill_without_stroke_becomes_an_outline_with_a_warning():
    body = '<g opacity="0.5"><rect id="box" x="10" y="10" width="20" height="20" fill="red" fill-opacity="0.4"/></g>'
    with pytest.warns(SVGImportWarning, match=r"fill but no stroke.*<rect id='box'>"):
        sketch = load(body)
    (path,) = sketch.paths
    assert path.half_width == DEFAULT_FILL_HALF_WIDTH == 1.0
    assert path.color == (1.0, 0.0, 0.0) and path.opacity == pytest.approx(0.2)
    assert path.closed
    assert len(sketch.metadata["import_warnings"]) == 1


def test_default_fill_is_black_and_fill_half_width_is_configurable():
    with pytest.warns(SVGImportWarning):
        (path,) = import_svg(svg('<path d="M 0 0 L 9 0 L 9 9 Z"/>'), canvas_size=100, fill_half_width=0.25).paths
    assert path.color == (0.0, 0.0, 0.0) and path.half_width == 0.25


def test_elements_with_neither_fill_nor_stroke_are_skipped():
    body = '<rect width="24" height="24" fill="none"/><path d="M0 0 L 5 5" fill="none" stroke="none"/>'
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sketch = load(body + stroke("M 1 1 L 9 1"))
    assert len(sketch.paths) == 1


def test_stroke_width_units_and_percent():
    with pytest.warns(SVGImportWarning, match="fill but no stroke"):
        mm, percent, zero = load(
            stroke("M 0 0 L 9 0", 'stroke-width="1mm"')
            + stroke("M 0 1 L 9 1", 'stroke-width="10%"')  # of √((100² + 100²)/2) = 100
            + stroke("M 0 2 L 9 2", 'stroke-width="0"').replace('fill="none"', 'fill="red"')
        ).paths
    assert mm.half_width == pytest.approx(96 / 25.4 / 2)
    assert percent.half_width == pytest.approx(5.0)
    assert zero.half_width == DEFAULT_FILL_HALF_WIDTH and zero.color == (1.0, 0.0, 0.0)  # width 0: no stroke


def test_coordinates_may_carry_units_and_percentages():
    (line,) = load('<line x1="0" y1="50%" x2="1in" y2="50%" stroke="black"/>').paths
    assert_points(line.points[[0, -1]], [(0, 50), (96, 50)])


# ====================================================================== viewport mapping
@pytest.mark.parametrize(
    "aspect, matrix",
    [
        (None, [[1.28, 0, 64], [0, 1.28, 64]]),
        ("xMidYMid meet", [[1.28, 0, 64], [0, 1.28, 64]]),
        ("xMinYMin meet", [[1.28, 0, 0], [0, 1.28, 64]]),
        ("xMaxYMax", [[1.28, 0, 128], [0, 1.28, 64]]),
        ("xMidYMid slice", [[2.56, 0, 0], [0, 2.56, 0]]),
        ("xMinYMin slice", [[2.56, 0, 0], [0, 2.56, 64]]),
        ("none", [[2.56, 0, 0], [0, 1.28, 64]]),
    ],
)
def test_view_box_and_preserve_aspect_ratio(aspect, matrix):
    # viewport 200×100 px holds a 100×100 viewBox; the viewport is fitted into 256² with k = 1.28
    extra = f'preserveAspectRatio="{aspect}"' if aspect else ""
    text = f'<svg xmlns="{NS}" width="200" height="100" viewBox="0 0 100 100" {extra}>{stroke("M 0 0 L 100 100")}</svg>'
    sketch = import_svg(text, canvas_size=256)
    np.testing.assert_allclose(sketch.metadata["svg_to_canvas"], matrix, atol=1e-12)
    a, b = np.asarray(matrix)[:, :2], np.asarray(matrix)[:, 2]
    assert_points(sketch.paths[0].points[[0, -1]], [b, a @ (100, 100) + b])


def test_view_box_origin_and_non_square_canvas():
    text = f'<svg xmlns="{NS}" width="100" height="100" viewBox="-50 -50 100 100">{stroke("M -50 -50 L 50 50")}</svg>'
    assert_points(import_svg(text, canvas_size=200).paths[0].points[[0, -1]], [(0, 0), (200, 200)])
    # a 100×100 viewport on a 200×100 canvas: scale 1, centred horizontally
    sketch = import_svg(text, canvas_size=(200, 100))
    assert (sketch.width, sketch.height) == (200, 100)
    assert_points(sketch.paths[0].points[[0, -1]], [(50, 0), (150, 100)])


@pytest.mark.parametrize(
    "size_attributes, canvas",
    [
        ('width="2in" height="1in" viewBox="0 0 2 1"', (192, 96)),
        ('width="25.4mm" height="12.7mm" viewBox="0 0 2 1"', (96, 48)),
        ('width="2.54cm" height="72pt" viewBox="0 0 2 1"', (96, 96)),
        ('width="6pc" height="3em" viewBox="0 0 2 1"', (96, 48)),
        ('width="50%" viewBox="0 0 200 100"', (100, 50)),
        ('viewBox="0 0 40 20"', (40, 20)),
        ('width="80" viewBox="0 0 40 20"', (80, 40)),
        ('height="80" viewBox="0 0 40 20"', (160, 80)),
        ("", (300, 150)),
        ('width="33.5px" height="10"', (34, 10)),
    ],
)
def test_canvas_from_the_svg_size(size_attributes, canvas):
    text = f'<svg xmlns="{NS}" {size_attributes}>{stroke("M 0 0 L 1 1")}</svg>'
    sketch = import_svg(text, canvas_size=None)
    assert (sketch.width, sketch.height) == canvas


def test_canvas_none_keeps_units_as_pixels():
    line = stroke("M 0 0 L 1 0.5", 'stroke-width="0.01"')
    text = f'<svg xmlns="{NS}" width="2in" height="1in" viewBox="0 0 2 1">{line}</svg>'
    (path,) = import_svg(text, canvas_size=None).paths
    assert_points(path.points[[0, -1]], [(0, 0), (96, 48)])
    assert path.half_width == pytest.approx(0.48)


def test_nested_svg_is_a_new_viewport():
    body = f'<svg x="10" y="10" width="20" height="20" viewBox="0 0 10 10">{stroke("M 0 0 L 10 10")}</svg>'
    assert_points(load(body).paths[0].points[[0, -1]], [(10, 10), (30, 30)])


# ======================================================================= arc accuracy
def test_big_circle_is_within_tolerance_on_the_canvas():
    (circle,) = load('<circle cx="128" cy="128" r="120" stroke="black" fill="none"/>', size=256).paths
    curve = sample(circle)
    assert np.abs(np.hypot(curve[:, 0] - 128, curve[:, 1] - 128) - 120).max() < 0.05
    assert_points(circle.points[[0, -1]], [(248, 128), (248, 128)])


def test_arc_pieces_follow_the_canvas_scale_not_user_units():
    # r = 4.7 user units becomes 120.32 px on the canvas
    text = f'<svg xmlns="{NS}" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4.7" stroke="black" fill="none"/></svg>'
    (circle,) = import_svg(text, canvas_size=256).paths
    curve = sample(circle)
    assert np.abs(np.hypot(curve[:, 0] - 128, curve[:, 1] - 128) - 4.7 * 25.6).max() < 0.05


def test_rotated_and_stretched_ellipses_are_within_tolerance():
    rotated, stretched = load(
        '<ellipse cx="128" cy="128" rx="120" ry="40" transform="rotate(30 128 128)" stroke="black" fill="none"/>'
        '<circle cx="10" cy="30" r="10" transform="scale(12 4)" stroke="black" fill="none"/>',
        size=256,
    ).paths
    assert ellipse_distance(sample(rotated), (128, 128), 120, 40, 30).max() < 0.05
    assert ellipse_distance(sample(stretched), (120, 120), 120, 40, 0).max() < 0.05


def test_path_arc_on_a_big_circle_is_within_tolerance():
    (path,) = load(stroke("M 8 128 A 120 120 0 1 1 128 248"), size=256).paths
    curve = sample(path)
    assert np.abs(np.hypot(curve[:, 0] - 128, curve[:, 1] - 128) - 120).max() < 0.05


# ================================================================================ <use>
def test_use_translates_and_inherits():
    body = '<defs><path id="p" d="M 0 0 L 30 0"/></defs><use href="#p" x="10" y="20" stroke="red" fill="none"/>'
    (path,) = load(body).paths
    assert_points(path.points[[0, -1]], [(10, 20), (40, 20)])
    assert path.color == (1.0, 0.0, 0.0)


def test_use_transform_applies_before_its_x_y():
    body = (
        '<defs><path id="p" d="M 0 0 L 30 0" stroke="black"/></defs>'
        '<use xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="#p" x="10" transform="rotate(90)"/>'
    )
    # rotate(90) · translate(10, 0): (0, 0) → (10, 0) → (0, 10)
    assert_points(load(body).paths[0].points[[0, -1]], [(0, 10), (0, 40)])


def test_use_may_refer_forward_and_keeps_drawing_order():
    body = '<use href="#later"/>' + stroke("M 0 50 L 9 50") + '<defs><path id="later" d="M 0 0 L 9 0" stroke="black"/></defs>'
    first, second = load(body).paths
    assert_points(first.points[0], (0, 0))
    assert_points(second.points[0], (0, 50))


def test_use_of_a_symbol_maps_its_view_box():
    body = (
        '<symbol id="s" viewBox="0 0 10 10"><path d="M 0 0 L 10 10" stroke="black"/></symbol>'
        '<use href="#s" x="20" y="20" width="50" height="50"/>'
    )
    assert_points(load(body).paths[0].points[[0, -1]], [(20, 20), (70, 70)])


@pytest.mark.parametrize(
    "body",
    [
        '<g id="a"><use href="#a"/></g>',
        '<g id="a"><use href="#b"/></g><g id="b"><use href="#a"/></g>',
        '<use href="#b"/><g id="b"><use href="#c"/></g><g id="c"><use href="#b"/></g>',
    ],
)
def test_use_cycles_are_refused(body):
    with pytest.raises(SVGError, match="cycle") as excinfo:
        load(body + stroke("M 0 0 L 1 1"))
    single_line_error(excinfo)


def test_use_of_a_missing_element_is_skipped_with_a_warning_and_other_files_are_refused():
    with pytest.warns(SVGImportWarning, match="missing"):
        assert len(load('<use href="#nothing"/>' + stroke("M 0 0 L 1 1")).paths) == 1
    with pytest.raises(SVGError, match="another file"):
        load('<use href="other.svg#p"/>' + stroke("M 0 0 L 1 1"))


def test_exponential_use_expansion_is_refused_quickly():
    levels = ['<g id="g0"><rect width="1" height="1" fill="none"/></g>']
    levels += [f'<g id="g{i}"><use href="#g{i - 1}"/><use href="#g{i - 1}"/></g>' for i in range(1, 40)]
    start = time.perf_counter()
    with pytest.raises(SVGError, match="elements"):
        load("<defs>" + "".join(levels) + '</defs><use href="#g39"/>' + stroke("M 0 0 L 1 1"))
    assert time.perf_counter() - start < 10


# ======================================================== ignored and refused elements
def test_non_rendered_elements_are_ignored_silently():
    body = f"""
    <title>t</title><desc>d</desc><metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></metadata>
    <sodipodi:namedview xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"/>
    <inkscape:grid xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"/>
    <style></style><style>  /* only a comment */  </style>
    <defs><path d="M 0 0 L 50 50" stroke="black"/><text>not drawn</text></defs>
    <clipPath><rect width="5" height="5"/></clipPath><mask><rect width="5" height="5"/></mask>
    <symbol id="unused"><path d="M 0 0 L 5 5" stroke="black"/></symbol>
    <linearGradient/><radialGradient/><pattern><rect width="5" height="5"/></pattern><marker><path d="M0 0"/></marker>
    <text display="none">hidden text is not drawn</text>
    {stroke("M 1 1 L 9 9")}
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sketch = load(body)
    assert len(sketch.paths) == 1
    assert sketch.metadata["import_warnings"] == []


@pytest.mark.parametrize(
    "element, named, fix",
    [
        ('<text id="t1" x="0" y="10">Hi</text>', "<text id='t1'>", "Object to Path"),
        ("\n\n<text>Hi</text>", "<text> at line 3", "Object to Path"),
        ('<image id="photo" href="cat.png" width="5" height="5"/>', "<image id='photo'>", "Trace Bitmap"),
        ('<foreignObject id="html" width="5" height="5"/>', "<foreignObject id='html'>", "delete it"),
        ('<blob id="b"/>', "<blob id='b'>", "Object to Path"),
        ('<g><style id="css">.a { stroke: red }</style></g>', "<style id='css'>", "presentation attributes"),
        ('<defs><style id="css">path { stroke: red }</style></defs>', "<style id='css'>", "presentation attributes"),
    ],
)
def test_undrawable_elements_are_refused_naming_the_element_and_fix(element, named, fix):
    with pytest.raises(SVGError) as excinfo:
        load(element + stroke("M 0 0 L 1 1"))
    message = single_line_error(excinfo)
    assert message.startswith(named) and fix in message


def test_switch_draws_its_first_usable_child():
    body = (
        '<switch><foreignObject requiredExtensions="http://ns.adobe.com/AdobeIllustrator/10.0/"/>'
        + stroke("M 0 0 L 9 0") + stroke("M 0 5 L 9 5") + "</switch>"
    )  # fmt: skip
    (path,) = load(body).paths
    assert_points(path.points[0], (0, 0))


def test_deep_nesting_is_refused():
    with pytest.raises(SVGError, match="nested more than"):
        load("<g>" * 300 + stroke("M 0 0 L 1 1") + "</g>" * 300)


# ============================================================================ bad input
def test_malformed_xml_names_line_and_column():
    with pytest.raises(SVGError, match=r"not well-formed XML.*line 2, column \d+") as excinfo:
        import_svg(f'<svg xmlns="{NS}">\n<path d="M 0 0"</svg>')
    single_line_error(excinfo)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("<html><body/></html>", "root element is <html>"),
        ('<svg xmlns="http://example.com/not-svg"/>', "not in the SVG namespace"),
        (svg('<rect width="10" height="10" fill="none"/>'), "has no drawable strokes"),
        ("", "not well-formed XML"),
    ],
)
def test_not_an_svg_or_nothing_to_draw(text, problem):
    with pytest.raises(SVGError, match=problem) as excinfo:
        import_svg(text or b"")
    single_line_error(excinfo)


@pytest.mark.parametrize(
    "element",
    [
        '<path id="bad" d="M nan 0 L 1 1" stroke="black"/>',
        '<path id="bad" d="M 1e999 0 L 1 1" stroke="black"/>',
        '<path id="bad" d="M 0 0 L -inf 1" stroke="black"/>',
        '<circle id="bad" r="inf" stroke="black"/>',
        '<polyline id="bad" points="0 0 1 NaN" stroke="black"/>',
        '<line id="bad" x2="1e400" stroke="black"/>',
    ],
)
def test_non_finite_coordinates_are_refused_naming_the_element(element):
    with pytest.raises(SVGError, match=r"^<\w+ id='bad'>: .*finite") as excinfo:
        load(element)
    single_line_error(excinfo)


def test_huge_coordinates_that_overflow_after_transforms_are_refused():
    with pytest.raises(SVGError, match=r"<path id='far'>: coordinates become infinite"):
        load(stroke("M 1.5e308 0 L 1 1", 'id="far" transform="translate(1.5e308 0)"'))
    with pytest.raises(SVGError, match=r"<path id='huge'>: its transforms scale by more than"):
        load(stroke("M 1 0 L 1 1", 'id="huge" transform="scale(1e200)"'))


def test_path_data_errors_name_the_element_and_the_position():
    with pytest.raises(SVGError) as excinfo:
        load(stroke("M 0 0 L 10 10 X 5", 'id="p3"'))
    assert single_line_error(excinfo).startswith("<path id='p3'>: bad path data at character 15: ")
    with pytest.raises(SVGError, match=r"<path id='p4'>: bad path data at character 1: path data must start with M"):
        load(stroke("L 10 10", 'id="p4"'))
    with pytest.raises(SVGError, match=r"bad path data at character 5: expected a number, found the end"):
        load(stroke("M 10", 'id="p5"'))
    with pytest.raises(SVGError, match=r"character 15: expected an arc flag"):
        load(stroke("M 0 0 A 5 5 0 2 1 10 10", 'id="p6"'))


def test_file_too_large_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.svg"
    with open(big, "wb") as handle:
        handle.truncate(2**30)  # sparse: 1 GiB of nothing
    start = time.perf_counter()
    with pytest.raises(SVGError, match=r"1024 MiB.*at most 64 MiB") as excinfo:
        import_svg(big)
    assert time.perf_counter() - start < 1
    single_line_error(excinfo)
    with pytest.raises(SVGError, match="larger than 64 MiB"):
        import_svg(b" " * (MAX_SVG_BYTES + 1))


def test_too_many_paths_fail_fast():
    text = f'<svg xmlns="{NS}">' + '<path d="M0 0L1 1"/>' * 10**6 + "</svg>"  # default fill: each one draws
    start = time.perf_counter()
    with pytest.raises(SVGError, match=f"more than {MAX_PATHS} strokes") as excinfo:
        import_svg(text)
    assert time.perf_counter() - start < 8
    single_line_error(excinfo)


def test_one_path_with_too_many_subpaths_or_points_fails_fast(monkeypatch):
    start = time.perf_counter()
    with pytest.raises(SVGError, match=f"<path id='many'>: more than {MAX_PATHS} strokes"):
        load(stroke("M0 0L1 1" * 10**6, 'id="many"'))
    assert time.perf_counter() - start < 5
    import engine.vector.svg.importer
    import engine.vector.svg.outline

    for module in (engine.vector.svg.importer, engine.vector.svg.outline):  # the walker's budget and the outline's message
        monkeypatch.setattr(module, "MAX_POINTS", 1000)
    with pytest.raises(SVGError, match="<path id='long'>: more than 1000 control points"):
        load(stroke("M0 0" + "L1 1" * 400, 'id="long"'))


def test_absurd_canvas_is_refused():
    with pytest.raises(SketchError, match="out of range"):
        import_svg(svg(stroke("M 0 0 L 1 1")), canvas_size=100000)
    with pytest.raises(SVGError, match=r"100000 × 100000 px.*canvas_size"):
        import_svg(f'<svg xmlns="{NS}" width="100000" height="100000">{stroke("M 0 0 L 1 1")}</svg>', canvas_size=None)


def test_billion_laughs_is_refused_without_expansion():
    entities = ['<!ENTITY lol0 "lol">']
    for i in range(1, 10):  # each entity is ten of the previous one: 10⁹ "lol"s in &lol9;
        entities.append(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">')
    doctype = f"<!DOCTYPE svg [{''.join(entities)}]>"
    text = f'<?xml version="1.0"?>{doctype}<svg xmlns="{NS}"><title>&lol9;</title>{stroke("M 0 0 L 1 1")}</svg>'
    start = time.perf_counter()
    with pytest.raises(SVGError, match="declares XML entities, which are refused for safety") as excinfo:
        import_svg(text)
    assert time.perf_counter() - start < 1
    single_line_error(excinfo)


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_external_entities_are_never_read(tmp_path, scheme):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-3141592653")
    url = secret.as_uri() if scheme == "file" else "http://127.0.0.1:9/secret.txt"
    text = (
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "{url}">]>'
        f'<svg xmlns="{NS}"><title>&x;</title><path id="&x;" d="M 0 0 L 1 1" stroke="black"/></svg>'
    )
    with pytest.raises(SVGError, match="declares XML entities") as excinfo:
        import_svg(text)
    assert "TOP-SECRET" not in single_line_error(excinfo)
    assert "TOP-SECRET" not in repr(excinfo.value.__context__) + repr(excinfo.value.__cause__)


def test_plain_doctype_is_accepted():
    doctype = '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
    assert len(import_svg(doctype + svg(stroke("M 0 0 L 1 1"))).paths) == 1


def test_sources_file_path_str_bytes_and_svgz(tmp_path):
    text = svg(stroke("M 0 0 L 30 0"))
    plain = tmp_path / "drawing.svg"
    plain.write_text(text)
    packed = tmp_path / "drawing.svgz"
    packed.write_bytes(gzip.compress(text.encode()))
    for source in (plain, str(plain), packed, text, text.encode()):
        assert_points(import_svg(source, canvas_size=100).paths[0].points[-1], (30, 0))
    with pytest.raises(SVGError, match="cannot read"):
        import_svg(tmp_path / "missing.svg")
    with pytest.raises(SVGError, match="is a folder"):
        import_svg(tmp_path)


# ======================================================================== export, round trip
def example_sketch() -> Sketch:
    rng = np.random.default_rng(7)
    open_path = Path(rng.uniform(0, 200, size=(7, 2)), half_width=0.75, color=(0.1, 0.2, 0.3), opacity=0.35)
    ring = rng.uniform(20, 180, size=(10, 2))
    ring[-1] = ring[0]
    closed = Path(ring, closed=True, half_width=2.5, color=(1.0, 0.0, 0.0), opacity=1.0)
    dot = Path(np.full((4, 2), 123.456789), half_width=1 / 3, color=(1 / 3, 0.5, 2 / 3), opacity=0.999999)
    return Sketch(paths=[open_path, closed, dot], width=320, height=200).validate()


def assert_same_paths(actual: list[Path], expected: list[Path]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a.points, e.points, rtol=0, atol=1e-6)
        assert a.closed == e.closed
        assert a.half_width == pytest.approx(e.half_width, abs=1e-6)
        np.testing.assert_allclose(a.color, e.color, atol=1e-6)
        assert a.opacity == pytest.approx(e.opacity, abs=1e-6)


def test_export_import_round_trip():
    sketch = example_sketch()
    text = export_svg(sketch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = import_svg(text, canvas_size=(sketch.width, sketch.height))
    assert_same_paths(again.paths, sketch.paths)
    np.testing.assert_array_equal(again.flat_points(), sketch.flat_points())  # repr precision: exact
    assert (again.width, again.height) == (320, 200)
    assert import_svg(text, canvas_size=None).width == 320


def test_exported_svg_is_standard():
    text = export_svg(example_sketch())
    root = ET.fromstring(text)
    assert root.tag == f"{{{NS}}}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("320", "200", "0 0 320 200")
    paths = root.findall(f"{{{NS}}}path")
    assert len(paths) == 3
    for element in paths:
        assert set(element.get("d").split()) & set("MLHVSQTAmlhvcsqta") == {"M"}
        assert element.get("fill") == "none"
        assert element.get("stroke-linecap") == element.get("stroke-linejoin") == "round"
    assert paths[0].get("stroke").startswith("rgb(")
    assert paths[1].get("stroke") == "#ff0000"
    assert paths[1].get("d").endswith(" Z") and paths[1].get("stroke-width") == "5.0"
    assert paths[0].get("stroke-opacity") == "0.35"


def test_export_of_an_animation_frame_and_frame_files(tmp_path):
    sketch = example_sketch()
    frames = np.stack([sketch.flat_points() + i for i in range(3)])
    animated = sketch.with_frames(frames)
    again = import_svg(export_svg(animated, frame=1), canvas_size=(320, 200))
    np.testing.assert_allclose(again.flat_points(), frames[1], atol=1e-9)
    written = save_svg_frames(animated, tmp_path / "frames")
    assert [p.name for p in written] == ["frame_0000.svg", "frame_0001.svg", "frame_0002.svg"]
    np.testing.assert_allclose(import_svg(written[2], canvas_size=None).flat_points(), frames[2], atol=1e-9)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [p.name for p in written]  # no temp files left
    with pytest.raises(SketchError, match="no animation frames"):
        save_svg_frames(sketch, tmp_path / "none")
    with pytest.raises(SketchError, match="out of range"):
        export_svg(animated, frame=3)


def test_save_svg_is_atomic(tmp_path):
    target = tmp_path / "out.svg"
    save_svg(example_sketch(), target)
    before = target.read_text()
    broken = example_sketch()
    broken.paths[0].points[0, 0] = np.nan
    with pytest.raises(SketchError):
        save_svg(broken, target)
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.svg"]


def test_metadata_records_the_mapping():
    sketch = load(stroke("M 0 0 L 1 1"))
    assert sketch.metadata["svg_to_canvas"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert sketch.metadata["import_warnings"] == []


def test_example_sketch_imports_cleanly():
    example = FilePath(__file__).resolve().parent.parent / "examples" / "cat.svg"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sketch = import_svg(example)
    assert len(sketch.paths) == 15  # circle, 2 ears, 2 eye dots, 2 mouth, 4 whiskers, body, tail, 2 paws
    head, left_eye = sketch.paths[0], sketch.paths[3]
    assert_points(head.points[0], (178, 90))  # (cx + r, cy) moved up by the layer's translate(0,-10)
    assert_points(left_eye.points, [(110, 85)] * 4)
    assert left_eye.half_width == 4.0 and head.half_width == 1.5


# ===================================================================== caps against an independent renderer
@pytest.mark.parametrize("linecap", ["butt", "square", "round"])
def test_linecaps_render_like_resvg(linecap):
    """SVG stroke-linecap: butt and square become flat ends (square half a width further out), round
    stays round; the coverage matches resvg, a renderer written independently of ours."""
    resvg = pytest.importorskip("resvg_py")
    import io

    from PIL import Image

    import torch

    from engine.vector.draw import render_sketch_frames
    from engine.vector.render import SketchRenderer

    def rendered(sketch) -> np.ndarray:
        """What the video model sees: the differentiable renderer's coverage."""
        renderer = SketchRenderer(sketch)
        with torch.no_grad():
            return 1.0 - renderer.render(renderer.points())[0].numpy()

    size = 96
    strokes = (
        f'<path d="M 12 20 L 84 28" stroke="black" stroke-width="9" stroke-linecap="{linecap}" fill="none"/>'
        f'<path d="M 14 70 C 30 40, 60 95, 80 60" stroke="black" stroke-width="7" stroke-linecap="{linecap}" fill="none"/>'
        f'<path d="M 48 48 L 48 48" stroke="black" stroke-width="8" stroke-linecap="{linecap}" fill="none"/>'
    )
    document = f'<svg xmlns="{NS}" width="{size}" height="{size}" viewBox="0 0 {size} {size}">{strokes}</svg>'
    theirs = np.asarray(Image.open(io.BytesIO(bytes(resvg.svg_to_bytes(svg_string=document)))).convert("RGBA"))[..., 3] / 255.0
    sketch = import_svg(document, canvas_size=size)
    ours = rendered(sketch)
    assert {(p.start_cap, p.end_cap) for p in sketch.paths} == {("round", "round") if linecap == "round" else ("flat", "flat")}

    def iou(image: np.ndarray) -> float:
        inked = (image > 0.5) | (theirs > 0.5)
        return ((image > 0.5) & (theirs > 0.5)).sum() / inked.sum()

    difference = np.abs(ours - theirs)
    assert difference.mean() < 0.01 and iou(ours) > 0.97, (difference.mean(), iou(ours))
    assert abs(ours.sum() - theirs.sum()) < 0.02 * theirs.sum()
    picture = 1.0 - render_sketch_frames(sketch)[0, ..., 0] / 255.0  # the preview images: the same picture, drawn without torch
    assert np.abs(picture - theirs).mean() < 0.012 and iou(picture) > 0.95 and abs(picture.sum() - theirs.sum()) < 0.02 * theirs.sum()
    if linecap != "round":  # the same drawing with round ends would not match
        rounded = import_svg(document.replace(f'stroke-linecap="{linecap}"', 'stroke-linecap="round"'), canvas_size=size)
        assert np.abs(rendered(rounded) - theirs).mean() > 2 * difference.mean()
