"""The toy world's subjects: simple line drawings built from open and closed cubic Bézier strokes.

Each subject is drawn in a unit box ([-1, 1]², y down, like the canvas) and may name an
articulated part: the strokes that wave about a joint (a fish's tail, a stick figure's arm).
The shapes are deliberately plain, like a child's doodle: what the toy world tests is whether
the method moves a drawing the way a prompt or a reference clip says and keeps its lines,
not how rich the drawings are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

KAPPA = 0.5522847498  # handle length of a quarter-circle cubic, per unit radius


@dataclass(frozen=True)
class Stroke:
    """One stroke in unit coordinates: 3k+1 control points, open or closed."""

    points: tuple[tuple[float, float], ...]
    closed: bool = False

    def array(self) -> np.ndarray:
        return np.asarray(self.points, dtype=np.float64)


@dataclass(frozen=True)
class Subject:
    """A named drawing; `part` (stroke indices) waves about `joint` when the subject has one."""

    name: str
    strokes: tuple[Stroke, ...]
    part: tuple[int, ...] = ()
    joint: tuple[float, float] | None = None

    @property
    def articulated(self) -> bool:
        return bool(self.part) and self.joint is not None


# ------------------------------------------------------------------ stroke builders
def _stroke(points: list[np.ndarray] | np.ndarray, closed: bool = False) -> Stroke:
    return Stroke(tuple((float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64)), closed)


def line_points(a, b) -> np.ndarray:
    """One straight cubic: handles at a third and two thirds."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.stack([a, a + (b - a) / 3, a + 2 * (b - a) / 3, b])


def polyline(*corners, closed: bool = False) -> Stroke:
    """Straight segments through the corners (back to the first when closed)."""
    corners = [np.asarray(c, float) for c in corners]
    if closed:
        corners = corners + [corners[0]]
    points = [corners[0]]
    for a, b in zip(corners[:-1], corners[1:]):
        points.extend(line_points(a, b)[1:])
    return _stroke(points, closed)


def arc_points(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> np.ndarray:
    """An elliptical arc from angle `start` to `end` (radians, y down), in cubics of at most 90°."""
    pieces = max(1, math.ceil(abs(end - start) / (math.pi / 2) - 1e-9))
    step = (end - start) / pieces
    handle = 4.0 / 3.0 * math.tan(step / 4.0)
    points = [np.array([cx + rx * math.cos(start), cy + ry * math.sin(start)])]
    for i in range(pieces):
        a0, a1 = start + i * step, start + (i + 1) * step
        p0 = np.array([cx + rx * math.cos(a0), cy + ry * math.sin(a0)])
        p3 = np.array([cx + rx * math.cos(a1), cy + ry * math.sin(a1)])
        d0 = np.array([-rx * math.sin(a0), ry * math.cos(a0)])
        d1 = np.array([-rx * math.sin(a1), ry * math.cos(a1)])
        points.extend([p0 + handle * d0, p3 - handle * d1, p3])
    return np.stack(points)


def arc(cx, cy, rx, ry, start_deg: float, end_deg: float) -> Stroke:
    return _stroke(arc_points(cx, cy, rx, ry, math.radians(start_deg), math.radians(end_deg)))


def ellipse(cx, cy, rx, ry=None) -> Stroke:
    return _stroke(arc_points(cx, cy, rx, rx if ry is None else ry, 0.0, 2 * math.pi), closed=True)


def curve(*points, closed: bool = False) -> Stroke:
    """A chain of cubics given by its 3k+1 control points."""
    return _stroke(np.asarray(points, float), closed)


def star_corners(cx, cy, outer, inner, count=5, turn=-90.0) -> list[tuple[float, float]]:
    corners = []
    for i in range(2 * count):
        radius = outer if i % 2 == 0 else inner
        angle = math.radians(turn + 180.0 * i / count)
        corners.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return corners


# ----------------------------------------------------------------------- the subjects
def _subjects() -> list[Subject]:
    s: list[Subject] = []
    add = lambda name, *strokes, part=(), joint=None: s.append(Subject(name, tuple(strokes), tuple(part), joint))  # noqa: E731
    add("circle", ellipse(0, 0, 0.9))
    add("square", polyline((-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8), closed=True))
    add("triangle", polyline((0, -0.9), (0.9, 0.8), (-0.9, 0.8), closed=True))
    add("star", polyline(*star_corners(0, 0.05, 0.95, 0.4), closed=True))
    add("house", polyline((-0.7, -0.1), (0.7, -0.1), (0.7, 0.9), (-0.7, 0.9), closed=True), polyline((-0.85, 0.0), (0, -0.85), (0.85, 0.0)),
        polyline((-0.2, 0.9), (-0.2, 0.4), (0.2, 0.4), (0.2, 0.9)))  # fmt: skip
    add("fish", curve((-0.5, 0), (-0.2, -0.6), (0.5, -0.5), (0.8, 0), (0.5, 0.5), (-0.2, 0.6), (-0.5, 0), closed=True),
        polyline((-0.5, 0), (-0.95, -0.45), (-0.95, 0.45), closed=True), ellipse(0.45, -0.1, 0.07), part=(1,), joint=(-0.5, 0.0))  # fmt: skip
    add("stick figure", ellipse(0, -0.7, 0.25), polyline((0, -0.45), (0, 0.3)), polyline((-0.5, 0.95), (0, 0.3), (0.5, 0.95)),
        polyline((0, -0.2), (-0.55, 0.1)), polyline((0, -0.2), (0.55, -0.55)), part=(4,), joint=(0.0, -0.2))  # fmt: skip
    add("arrow", polyline((-0.9, 0), (0.8, 0)), polyline((0.35, -0.45), (0.9, 0), (0.35, 0.45)))
    add("heart", curve((0, -0.4), (-0.3, -1.0), (-1.0, -0.6), (-0.9, -0.1), (-0.8, 0.4), (-0.3, 0.6), (0, 0.9),
                       (0.3, 0.6), (0.8, 0.4), (0.9, -0.1), (1.0, -0.6), (0.3, -1.0), (0, -0.4), closed=True))  # fmt: skip
    add("tree", polyline((-0.15, 0.95), (-0.15, 0.2)), polyline((0.15, 0.95), (0.15, 0.2)), ellipse(0, -0.3, 0.65, 0.55))
    add("car", polyline((-0.95, 0.35), (-0.95, -0.05), (-0.45, -0.1), (-0.25, -0.5), (0.4, -0.5), (0.6, -0.1), (0.95, -0.05), (0.95, 0.35), closed=True),
        ellipse(-0.5, 0.45, 0.2), ellipse(0.5, 0.45, 0.2))  # fmt: skip
    add("flower", ellipse(0, -0.35, 0.18), *[ellipse(0.38 * math.cos(a), -0.35 + 0.38 * math.sin(a), 0.2) for a in np.linspace(0, 2 * math.pi, 5, endpoint=False)],
        curve((0, -0.1), (0.1, 0.3), (-0.1, 0.6), (0, 0.95)))  # fmt: skip
    add("moon", _stroke(np.concatenate([arc_points(0, 0, 0.85, 0.85, math.radians(60), math.radians(300)),
                                        arc_points(0.35, 0, 0.6, 0.75, math.radians(248), math.radians(112))[1:]]), closed=True))  # fmt: skip
    add("cloud", _stroke(np.concatenate([arc_points(-0.45, 0.1, 0.4, 0.4, math.radians(90), math.radians(270)),
                                         arc_points(0.0, -0.2, 0.45, 0.45, math.radians(200), math.radians(340))[1:],
                                         arc_points(0.5, 0.1, 0.4, 0.4, math.radians(-90), math.radians(90))[1:],
                                         line_points((0.5, 0.5), (-0.45, 0.5))[1:]]), closed=True))  # fmt: skip
    add("boat", polyline((-0.9, 0.3), (0.9, 0.3), (0.55, 0.8), (-0.55, 0.8), closed=True), polyline((0, 0.3), (0, -0.9)),
        polyline((0, -0.8), (0.6, 0.15), (0, 0.15)))  # fmt: skip
    add("cup", polyline((-0.6, -0.6), (-0.5, 0.8), (0.4, 0.8), (0.5, -0.6)), arc(0.5, 0.05, 0.35, 0.3, -90, 90))
    add("key", ellipse(-0.55, 0, 0.35), polyline((-0.2, 0), (0.9, 0)), polyline((0.5, 0), (0.5, 0.3)), polyline((0.75, 0), (0.75, 0.3)))
    add("bell", curve((-0.8, 0.6), (-0.6, 0.3), (-0.6, -0.8), (0, -0.8), (0.6, -0.8), (0.6, 0.3), (0.8, 0.6)), polyline((-0.8, 0.6), (0.8, 0.6)),
        ellipse(0, 0.78, 0.13))  # fmt: skip
    add("umbrella", _stroke(np.concatenate([arc_points(0, 0, 0.9, 0.7, math.pi, 2 * math.pi), line_points((0.9, 0), (-0.9, 0))[1:]]), closed=True),
        _stroke(np.concatenate([line_points((0, 0), (0, 0.75)), arc_points(-0.18, 0.75, 0.18, 0.18, 0, math.pi)[1:]])))  # fmt: skip
    add("kite", polyline((0, -0.9), (0.55, -0.2), (0, 0.5), (-0.55, -0.2), closed=True), polyline((0, -0.9), (0, 0.5)),
        curve((0, 0.5), (0.3, 0.65), (-0.3, 0.8), (0.1, 0.95)))  # fmt: skip
    add("bird", curve((-0.9, -0.1), (-0.6, -0.6), (-0.2, -0.5), (0, 0.05)), curve((0, 0.05), (0.2, -0.5), (0.6, -0.6), (0.9, -0.1)), part=(1,), joint=(0.0, 0.05))
    add("sun", ellipse(0, 0, 0.45), *[polyline((0.6 * math.cos(a), 0.6 * math.sin(a)), (0.9 * math.cos(a), 0.9 * math.sin(a))) for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)])
    add("leaf", curve((-0.8, 0.6), (-0.6, -0.4), (0.2, -0.8), (0.8, -0.7), (0.6, 0.0), (0.0, 0.7), (-0.8, 0.6), closed=True), polyline((-0.8, 0.6), (0.5, -0.45)))
    add("mushroom", _stroke(np.concatenate([arc_points(0, 0, 0.9, 0.75, math.pi, 2 * math.pi), line_points((0.9, 0), (-0.9, 0))[1:]]), closed=True),
        polyline((-0.25, 0), (-0.3, 0.85), (0.3, 0.85), (0.25, 0)))  # fmt: skip
    add("rocket", curve((-0.3, 0.6), (-0.35, -0.2), (-0.2, -0.7), (0, -0.95), (0.2, -0.7), (0.35, -0.2), (0.3, 0.6)), polyline((-0.3, 0.6), (0.3, 0.6)),
        polyline((-0.3, 0.2), (-0.65, 0.8), (-0.3, 0.6)), polyline((0.3, 0.2), (0.65, 0.8), (0.3, 0.6)), ellipse(0, -0.25, 0.14))  # fmt: skip
    add("snake", curve((-0.9, 0.5), (-0.5, 0.9), (-0.3, -0.1), (0.1, 0.1), (0.5, 0.3), (0.4, -0.6), (0.8, -0.5)), ellipse(0.8, -0.5, 0.12))
    add("bottle", polyline((-0.15, -0.9), (0.15, -0.9), (0.15, -0.45), (0.45, -0.2), (0.45, 0.9), (-0.45, 0.9), (-0.45, -0.2), (-0.15, -0.45), closed=True))
    add("ladder", polyline((-0.45, -0.95), (-0.45, 0.95)), polyline((0.45, -0.95), (0.45, 0.95)), *[polyline((-0.45, y), (0.45, y)) for y in (-0.55, -0.1, 0.35, 0.8)])
    add("crown", polyline((-0.85, 0.6), (-0.85, -0.5), (-0.4, 0.0), (0, -0.7), (0.4, 0.0), (0.85, -0.5), (0.85, 0.6), closed=True))
    add("diamond", polyline((-0.8, -0.3), (-0.4, -0.75), (0.4, -0.75), (0.8, -0.3), (0, 0.9), closed=True), polyline((-0.8, -0.3), (0.8, -0.3)))
    add("flag", polyline((-0.7, 0.95), (-0.7, -0.9)), polyline((-0.7, -0.9), (0.8, -0.6), (-0.7, -0.2)), part=(1,), joint=(-0.7, -0.55))
    add("tent", polyline((-0.95, 0.75), (0, -0.8), (0.95, 0.75), closed=True), polyline((0, -0.8), (-0.25, 0.75)), polyline((0, -0.8), (0.25, 0.75)))
    add("lamp", polyline((-0.5, -0.2), (-0.25, -0.8), (0.25, -0.8), (0.5, -0.2), closed=True), polyline((0, -0.2), (0, 0.75)), polyline((-0.45, 0.85), (0.45, 0.85)))
    add("hourglass", polyline((-0.6, -0.85), (0.6, -0.85), (-0.6, 0.85), (0.6, 0.85), closed=True))
    add("spiral", _stroke(_spiral_points()))
    return s


def _spiral_points(turns: float = 2.25, pieces_per_turn: int = 4) -> np.ndarray:
    """An Archimedean spiral, approximated piecewise by cubic arcs of slowly growing radius."""
    count = int(turns * pieces_per_turn)
    points = [np.zeros(2)]
    for i in range(count):
        a0, a1 = 2 * math.pi * i / pieces_per_turn, 2 * math.pi * (i + 1) / pieces_per_turn
        r0, r1 = 0.9 * a0 / (2 * math.pi * turns), 0.9 * a1 / (2 * math.pi * turns)
        p0, p3 = points[-1], np.array([r1 * math.cos(a1), r1 * math.sin(a1)])
        handle = 4.0 / 3.0 * math.tan((a1 - a0) / 4.0)
        d0 = np.array([-r0 * math.sin(a0), r0 * math.cos(a0)])
        d1 = np.array([-r1 * math.sin(a1), r1 * math.cos(a1)])
        points.extend([p0 + handle * d0, p3 - handle * d1, p3])
    return np.stack(points)


SUBJECTS: dict[str, Subject] = {subject.name: subject for subject in _subjects()}


def subject(name: str) -> Subject:
    try:
        return SUBJECTS[name]
    except KeyError:
        raise KeyError(f"unknown toy-world subject {name!r}: use one of {', '.join(SUBJECTS)}") from None

