"""SVG geometry as cubic Béziers: path data, elliptical arcs, the basic shapes, and the outline builder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator
from xml.etree.ElementTree import Element

import numpy as np

from ..sketch import MAX_PATHS, MAX_POINTS
from .values import _NOT_FINITE_RE, _NUMBER_RE, _SEPARATOR_RE, _SPACE_RE, Point, _BadValue, _length_attribute, _number_list

ARC_TOLERANCE_PX = 0.02  # most an arc's cubics may stray from the true arc, in canvas px
MAX_ARC_PIECES = 1024  # per arc; only absurd radii (≫ 1e12 px) would need more


# ======================================================================= arcs as cubics
@dataclass(frozen=True)
class _Arc:
    """An elliptical arc in centre form: the ellipse, the start angle and the signed sweep."""

    cx: float
    cy: float
    rx: float
    ry: float
    rotation: float  # radians, of the ellipse's x axis
    start: float  # radians, parameter angle on the unit circle
    sweep: float  # radians, positive towards +y

    def cubics(self, pieces: int) -> Iterator[tuple[Point, Point, Point]]:
        """(control 1, control 2, end) of each piece, with the k = 4/3·tan(θ/4) handles."""
        step = self.sweep / pieces
        k = 4 / 3 * math.tan(step / 4)
        for i in range(pieces):
            a, b = self.start + i * step, self.start + (i + 1) * step
            cos_a, sin_a, cos_b, sin_b = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
            yield (
                self._point(cos_a - k * sin_a, sin_a + k * cos_a),
                self._point(cos_b + k * sin_b, sin_b - k * cos_b),
                self._point(cos_b, sin_b),
            )

    def _point(self, u: float, v: float) -> Point:
        """Unit-circle coordinates → user space."""
        x, y = self.rx * u, self.ry * v
        cos_r, sin_r = math.cos(self.rotation), math.sin(self.rotation)
        return self.cx + cos_r * x - sin_r * y, self.cy + sin_r * x + cos_r * y


def _endpoint_arc_to_center(
    p1: Point, p2: Point, rx: float, ry: float, rotation: float, large_arc: bool, sweep: bool
) -> _Arc:
    """SVG's endpoint parameterisation → centre form (SVG 1.1, appendix F.6.5 and F.6.6).

    Radii too small to span the endpoints are scaled up until the arc is a half ellipse.
    """
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    half_dx, half_dy = (p1[0] - p2[0]) / 2, (p1[1] - p2[1]) / 2
    x1 = cos_r * half_dx + sin_r * half_dy
    y1 = -sin_r * half_dx + cos_r * half_dy
    too_small = (x1 / rx) ** 2 + (y1 / ry) ** 2
    if too_small > 1:
        rx, ry = rx * math.sqrt(too_small), ry * math.sqrt(too_small)
    numerator = (rx * ry) ** 2 - (rx * y1) ** 2 - (ry * x1) ** 2
    denominator = (rx * y1) ** 2 + (ry * x1) ** 2
    factor = math.sqrt(max(0.0, numerator / denominator))
    if large_arc == sweep:
        factor = -factor
    cx1, cy1 = factor * rx * y1 / ry, -factor * ry * x1 / rx
    cx = cos_r * cx1 - sin_r * cy1 + (p1[0] + p2[0]) / 2
    cy = sin_r * cx1 + cos_r * cy1 + (p1[1] + p2[1]) / 2
    ux, uy = (x1 - cx1) / rx, (y1 - cy1) / ry
    vx, vy = (-x1 - cx1) / rx, (-y1 - cy1) / ry
    delta = math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    return _Arc(cx, cy, rx, ry, rotation, math.atan2(uy, ux), delta)


def _arc_piece_error(angle: float) -> float:
    """Largest radial deviation of a k = 4/3·tan(θ/4) cubic from a unit circular arc of angle θ."""
    return 2 / 27 * math.sin(angle / 4) ** 6 / math.cos(angle / 4) ** 2


def _arc_piece_count(sweep: float, radius_px: float) -> int:
    """Pieces (each ≤ 90°) for an arc whose ellipse is at most `radius_px` across on the canvas.

    An affine map stretches the unit-circle error by at most its largest singular value, so
    radius_px · error(θ) bounds the distance to the true (transformed) arc.
    """
    pieces = max(1, math.ceil(abs(sweep) / (math.pi / 2) - 1e-9))
    while pieces < MAX_ARC_PIECES and radius_px * _arc_piece_error(abs(sweep) / pieces) > ARC_TOLERANCE_PX:
        pieces += 1
    return pieces


# ====================================================================== outline builder
def _same_point(a: Point, b: Point) -> bool:
    """Equal up to float noise (relative path data accumulates rounding)."""
    tolerance = 1e-9 * (1.0 + max(abs(a[0]), abs(a[1])))
    return abs(a[0] - b[0]) <= tolerance and abs(a[1] - b[1]) <= tolerance


class _Outline:
    """Subpaths of cubic Bézier control points in user space, built command by command.

    Keeps what S and T reflect (the last cubic or quadratic control point) and what Z and
    relative commands need (the subpath start, the current point).
    """

    def __init__(self, arc_scale: float = 1.0, max_points: int = MAX_POINTS, max_subpaths: int = MAX_PATHS) -> None:
        self.arc_scale = arc_scale  # canvas px per user unit, at most (for arc accuracy)
        self.max_points = max_points  # what is left of the sketch's limits, to fail early
        self.max_subpaths = max_subpaths
        self.subpaths: list[tuple[list[Point], bool]] = []
        self.current: Point = (0.0, 0.0)
        self.start: Point = (0.0, 0.0)
        self._points: list[Point] | None = None  # the open subpath
        self._num_points = 0
        self._cubic_control: Point | None = None
        self._quad_control: Point | None = None

    # -------------------------------------------------------------------- commands
    def move_to(self, p: Point) -> None:
        self._end_subpath()
        self.start = self.current = p
        self._points = [p]
        self._forget_controls()

    def line_to(self, p: Point) -> None:
        """A line as the exact cubic with handles at 1/3 and 2/3."""
        (x0, y0), (x1, y1) = self.current, p
        dx, dy = x1 - x0, y1 - y0
        self._append_cubic((x0 + dx / 3, y0 + dy / 3), (x0 + 2 * dx / 3, y0 + 2 * dy / 3), p)
        self._forget_controls()

    def cubic_to(self, c1: Point, c2: Point, p: Point) -> None:
        self._append_cubic(c1, c2, p)
        self._forget_controls()
        self._cubic_control = c2

    def smooth_cubic_to(self, c2: Point, p: Point) -> None:
        """S: the first control point reflects the previous C/S's second, else is the current point."""
        self.cubic_to(self._reflected(self._cubic_control), c2, p)

    def quad_to(self, q: Point, p: Point) -> None:
        """A quadratic as its exact cubic: handles 2/3 of the way to the control point."""
        (x0, y0), (x1, y1) = self.current, p
        c1 = (x0 + 2 / 3 * (q[0] - x0), y0 + 2 / 3 * (q[1] - y0))
        c2 = (x1 + 2 / 3 * (q[0] - x1), y1 + 2 / 3 * (q[1] - y1))
        self._append_cubic(c1, c2, p)
        self._forget_controls()
        self._quad_control = q

    def smooth_quad_to(self, p: Point) -> None:
        """T: the control point reflects the previous Q/T's, else is the current point."""
        self.quad_to(self._reflected(self._quad_control), p)

    def arc_to(self, rx: float, ry: float, rotation_deg: float, large_arc: bool, sweep: bool, p: Point) -> None:
        """A: identical endpoints omit the arc, a zero radius makes it a line."""
        if _same_point(self.current, p):
            self._forget_controls()
            return
        if rx == 0 or ry == 0:
            self.line_to(p)
            return
        arc = _endpoint_arc_to_center(self.current, p, abs(rx), abs(ry), math.radians(rotation_deg), large_arc, sweep)
        self.add_arc(arc, end=p)

    def add_arc(self, arc: _Arc, end: Point | None = None) -> None:
        """Append an arc in centre form, in as many pieces as the canvas scale needs."""
        pieces = _arc_piece_count(arc.sweep, self.arc_scale * max(arc.rx, arc.ry))
        for c1, c2, p in arc.cubics(pieces):
            self._append_cubic(c1, c2, p)
        if end is not None:  # land exactly on the requested end point
            self._points[-1] = self.current = end  # type: ignore[index]
        self._forget_controls()

    def close(self) -> None:
        """Z: a line back to the start unless already there; a subpath of one point is a dot."""
        if self._points is None:
            return
        if len(self._points) == 1:
            self._append_cubic(self.start, self.start, self.start)
        elif not _same_point(self.current, self.start):
            self.line_to(self.start)
        self._points[-1] = self.start
        self._store_subpath(self._points, closed=True)
        self._points = None
        self.current = self.start
        self._forget_controls()

    def finish(self) -> list[tuple[np.ndarray, bool]]:
        """The subpaths as ((3k+1, 2) arrays, closed) pairs; a lone moveto is dropped."""
        self._end_subpath()
        return [(np.asarray(points, dtype=np.float64), closed) for points, closed in self.subpaths]

    # ------------------------------------------------------------------- internals
    def _append_cubic(self, c1: Point, c2: Point, p: Point) -> None:
        if self._points is None:  # a drawing command right after Z starts at the old start
            self._points = [self.current]
        self._num_points += 3
        if self._num_points > self.max_points:
            raise _BadValue(f"more than {MAX_POINTS} control points in the drawing, the limit: simplify it")
        self._points.extend((c1, c2, p))
        self.current = p

    def _end_subpath(self) -> None:
        if self._points is not None and len(self._points) > 1:
            self._store_subpath(self._points, closed=False)
        self._points = None

    def _store_subpath(self, points: list[Point], closed: bool) -> None:
        if len(self.subpaths) >= self.max_subpaths:
            raise _BadValue(f"more than {MAX_PATHS} strokes in the drawing, the limit: simplify it")
        self.subpaths.append((points, closed))

    def _reflected(self, control: Point | None) -> Point:
        if control is None:
            return self.current
        return 2 * self.current[0] - control[0], 2 * self.current[1] - control[1]

    def _forget_controls(self) -> None:
        self._cubic_control = self._quad_control = None


# =========================================================================== path data
_PATH_ARGUMENTS = {"M": "nn", "L": "nn", "H": "n", "V": "n", "C": "nnnnnn", "S": "nnnn", "Q": "nnnn", "T": "nn",
                   "A": "nnnffnn", "Z": ""}  # fmt: skip
_IMPLICIT_NEXT = {"M": "L", "m": "l"}  # coordinates after a moveto are linetos


class _PathDataScanner:
    """Reads path data one command letter, number or arc flag at a time, tracking the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = _SPACE_RE.match(text).end()

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def next_is_number(self) -> bool:
        return not self.at_end() and self.text[self.pos] in "0123456789+-."

    def command(self) -> str:
        letter = self.text[self.pos] if not self.at_end() else ""
        if not letter or letter not in "MmLlHhVvCcSsQqTtAaZz":
            raise self.error("expected a command letter (M, L, H, V, C, S, Q, T, A or Z)")
        self.pos = _SPACE_RE.match(self.text, self.pos + 1).end()
        return letter

    def number(self) -> float:
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is None:
            if _NOT_FINITE_RE.match(self.text, self.pos):
                raise self.error("coordinates must be finite numbers")
            raise self.error("expected a number")
        value = float(match.group())
        if not math.isfinite(value):
            raise self.error(f"the number {match.group()!r} is not finite")
        self.pos = _SEPARATOR_RE.match(self.text, match.end()).end()
        return value

    def flag(self) -> bool:
        """An arc flag: a single 0 or 1, which may touch the next number (`0110 10`)."""
        if self.at_end() or self.text[self.pos] not in "01":
            raise self.error("expected an arc flag (0 or 1)")
        value = self.text[self.pos] == "1"
        self.pos = _SEPARATOR_RE.match(self.text, self.pos + 1).end()
        return value

    def error(self, problem: str) -> _BadValue:
        found = self.text[self.pos : self.pos + 16]
        where = f"found {found!r}" if found else "found the end"
        return _BadValue(f"bad path data at character {self.pos + 1}: {problem}, {where}")


def _parse_path_data(text: str, outline: _Outline) -> None:
    """Run SVG path data (`d`) through `outline`, with implicit repeats of each command."""
    scanner = _PathDataScanner(text)
    if scanner.at_end():
        return
    if scanner.text[scanner.pos] not in "Mm":
        raise scanner.error("path data must start with M or m")
    command = scanner.command()
    while True:
        args = [scanner.flag() if kind == "f" else scanner.number() for kind in _PATH_ARGUMENTS[command.upper()]]
        _apply_path_command(command, args, outline)
        if command in "Zz" or not scanner.next_is_number():
            if scanner.at_end():
                return
            command = scanner.command()
        else:
            command = _IMPLICIT_NEXT.get(command, command)


def _apply_path_command(command: str, args: list, outline: _Outline) -> None:
    kind = command.upper()
    x0, y0 = outline.current if command != kind else (0.0, 0.0)  # relative: offset by current point

    def at(i: int) -> Point:
        return x0 + args[i], y0 + args[i + 1]

    if kind == "M":
        outline.move_to(at(0))
    elif kind == "L":
        outline.line_to(at(0))
    elif kind == "H":
        outline.line_to((x0 + args[0], outline.current[1]))
    elif kind == "V":
        outline.line_to((outline.current[0], y0 + args[0]))
    elif kind == "C":
        outline.cubic_to(at(0), at(2), at(4))
    elif kind == "S":
        outline.smooth_cubic_to(at(0), at(2))
    elif kind == "Q":
        outline.quad_to(at(0), at(2))
    elif kind == "T":
        outline.smooth_quad_to(at(0))
    elif kind == "A":
        outline.arc_to(args[0], args[1], args[2], args[3], args[4], at(5))
    else:
        outline.close()


# ============================================================================== shapes
def _path_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    _parse_path_data(element.get("d") or "", outline)


def _line_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    outline.move_to((_length_attribute(element, "x1", viewport, "x"), _length_attribute(element, "y1", viewport, "y")))
    outline.line_to((_length_attribute(element, "x2", viewport, "x"), _length_attribute(element, "y2", viewport, "y")))


def _polyline_shape(element: Element, outline: _Outline, viewport: tuple[float, float], closed: bool = False) -> None:
    try:
        numbers = _number_list(element.get("points") or "")
    except _BadValue as exc:
        raise _BadValue(f"bad points: {exc}") from None
    if len(numbers) % 2:
        raise _BadValue(f"points has an odd number of coordinates ({len(numbers)}): each point needs x and y")
    if not numbers:
        return
    outline.move_to((numbers[0], numbers[1]))
    for i in range(2, len(numbers), 2):
        outline.line_to((numbers[i], numbers[i + 1]))
    if closed:
        outline.close()


def _polygon_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    _polyline_shape(element, outline, viewport, closed=True)


def _rect_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    """The rectangle path of the SVG spec: clockwise from the end of the top-left corner."""
    x, y = _length_attribute(element, "x", viewport, "x"), _length_attribute(element, "y", viewport, "y")
    width = _length_attribute(element, "width", viewport, "x")
    height = _length_attribute(element, "height", viewport, "y")
    if width < 0 or height < 0:
        raise _BadValue(f"negative width or height ({width} × {height})")
    if width == 0 or height == 0:
        return  # not rendered
    rx, ry = _corner_radii(element, viewport, width, height)
    if rx == 0 or ry == 0:
        outline.move_to((x, y))
        for corner in ((x + width, y), (x + width, y + height), (x, y + height)):
            outline.line_to(corner)
        outline.close()
        return
    outline.move_to((x + rx, y))
    for line_end, arc_end in (
        ((x + width - rx, y), (x + width, y + ry)),
        ((x + width, y + height - ry), (x + width - rx, y + height)),
        ((x + rx, y + height), (x, y + height - ry)),
        ((x, y + ry), (x + rx, y)),
    ):
        if not _same_point(outline.current, line_end):  # straight sides vanish when rx = width/2
            outline.line_to(line_end)
        outline.arc_to(rx, ry, 0.0, False, True, arc_end)
    outline.close()


def _corner_radii(element: Element, viewport: tuple[float, float], width: float, height: float) -> tuple[float, float]:
    """rx/ry per the spec: one given → the other equals it; clamped to half the width/height."""
    rx = _length_attribute(element, "rx", viewport, "x", default=None)
    ry = _length_attribute(element, "ry", viewport, "y", default=None)
    if rx is None and ry is None:
        return 0.0, 0.0
    rx = ry if rx is None else rx
    ry = rx if ry is None else ry
    if rx < 0 or ry < 0:
        raise _BadValue(f"negative corner radius (rx={rx}, ry={ry})")
    return min(rx, width / 2), min(ry, height / 2)


def _ellipse_outline(outline: _Outline, cx: float, cy: float, rx: float, ry: float) -> None:
    """A closed ellipse starting at (cx + rx, cy) and turning towards +y, as the spec draws it."""
    outline.move_to((cx + rx, cy))
    outline.add_arc(_Arc(cx, cy, rx, ry, 0.0, 0.0, 2 * math.pi), end=(cx + rx, cy))
    outline.close()


def _circle_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    r = _length_attribute(element, "r", viewport, "xy")
    if r < 0:
        raise _BadValue(f"negative radius r={r}")
    if r > 0:
        cx, cy = _length_attribute(element, "cx", viewport, "x"), _length_attribute(element, "cy", viewport, "y")
        _ellipse_outline(outline, cx, cy, r, r)


def _ellipse_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    rx = _length_attribute(element, "rx", viewport, "x", default=None)
    ry = _length_attribute(element, "ry", viewport, "y", default=None)
    rx, ry = (ry if rx is None else rx), (rx if ry is None else ry)  # `auto`: the other radius
    if rx is None or ry is None:
        return
    if rx < 0 or ry < 0:
        raise _BadValue(f"negative radius (rx={rx}, ry={ry})")
    if rx > 0 and ry > 0:
        cx, cy = _length_attribute(element, "cx", viewport, "x"), _length_attribute(element, "cy", viewport, "y")
        _ellipse_outline(outline, cx, cy, rx, ry)


_SHAPES: dict[str, Callable[[Element, _Outline, tuple[float, float]], None]] = {
    "path": _path_shape,
    "line": _line_shape,
    "polyline": _polyline_shape,
    "polygon": _polygon_shape,
    "rect": _rect_shape,
    "circle": _circle_shape,
    "ellipse": _ellipse_shape,
}


