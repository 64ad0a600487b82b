"""The vector sketch: paths of cubic Bézier segments on a pixel canvas, optionally animated.

Conventions (design.md §3): pixel coordinates, origin top-left, x right, y down; pixel (i, j)
covers [j, j+1) × [i, i+1). A path is a chain of k cubic segments stored as 3k+1 control
points; consecutive segments share an end point. `half_width` has diffvg's `stroke_width`
meaning (1.5 draws a 3 px line); `half_widths`, when set, gives one half-width per control
point instead (a pressure stroke), interpolated along each segment by its Bernstein weights.
Each end is round or flat (`start_cap`, `end_cap`). A closed path's last point equals its
first. A `pinned` path keeps its points in every frame (a ground line, a signature).

An animation is the same sketch plus `frames`: per-frame control points, shape
(F, total_points, 2), in the order of `Sketch.flat_points()`; topology never changes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path as FilePath
from typing import Any, Sequence

import numpy as np

from ..errors import SketchError
from ..jsondata import JSONInputError, expect, read_json_file
from ..files import atomic_write_text

SCHEMA = "sketch-animator/sketch"
SCHEMA_VERSION = 2  # 2: per-point half_widths, start_cap / end_cap, pinned; version 1 (uniform widths, round caps) is still read
READABLE_VERSIONS = (1, 2)
CAPS = ("round", "flat")
DEFAULT_CANVAS = 256  # pixels per side of a sketch canvas unless given
MAX_CANVAS = 4096  # pixels per side; a 4096² float coverage image is already 64 MB per frame
MAX_PATHS = 20_000
MAX_POINTS = 1_000_000
MAX_FRAMES = 1024
MAX_JSON_BYTES = 256 * 1024 * 1024


@dataclass
class Path:
    """One stroke: a chain of cubic Béziers, round- or flat-ended, of one width or one per control point."""

    points: np.ndarray  # (3k+1, 2) float64, pixel coordinates
    closed: bool = False
    half_width: float = 1.5
    color: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sRGB in [0, 1]
    opacity: float = 1.0
    half_widths: np.ndarray | None = None  # (3k+1,) one per control point; None: `half_width` everywhere
    start_cap: str = "round"  # round | flat
    end_cap: str = "round"
    pinned: bool = False  # kept still in every frame: the optimiser and the preview never move it

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        self.color = tuple(float(c) for c in self.color)  # type: ignore[assignment]
        self.half_width = float(self.half_width)
        self.opacity = float(self.opacity)
        self.closed = bool(self.closed)
        self.pinned = bool(self.pinned)
        if self.half_widths is not None:
            self.half_widths = np.asarray(self.half_widths, dtype=np.float64).reshape(-1)

    @property
    def num_segments(self) -> int:
        return (len(self.points) - 1) // 3

    def segments(self) -> np.ndarray:
        """(k, 4, 2) control points of each cubic segment."""
        return self.points[self.segment_index()]

    def segment_index(self) -> np.ndarray:
        return 3 * np.arange(self.num_segments)[:, None] + np.arange(4)[None, :]

    def control_widths(self) -> np.ndarray:
        """(3k+1,) the half-width at every control point."""
        return self.half_widths if self.half_widths is not None else np.full(len(self.points), self.half_width)

    @property
    def is_invisible(self) -> bool:
        """Drawn with no ink (opacity 0 or width 0): kept, never optimised."""
        return self.opacity <= 0 or float(self.control_widths().max(initial=0.0)) <= 0


@dataclass
class Sketch:
    """A canvas and its paths; `frames` holds per-frame control points for an animation."""

    paths: list[Path]
    width: int = DEFAULT_CANVAS
    height: int = DEFAULT_CANVAS
    frames: np.ndarray | None = None  # (F, total_points, 2)
    metadata: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- topology
    @property
    def num_points(self) -> int:
        return sum(len(p.points) for p in self.paths)

    @property
    def num_segments(self) -> int:
        return sum(p.num_segments for p in self.paths)

    @property
    def num_frames(self) -> int:
        return 0 if self.frames is None else int(self.frames.shape[0])

    def flat_points(self) -> np.ndarray:
        """All control points of all paths, concatenated: (total_points, 2)."""
        return np.concatenate([p.points for p in self.paths], axis=0)

    def point_offsets(self) -> np.ndarray:
        """Start index of each path in `flat_points()`, plus the total at the end."""
        return np.concatenate([[0], np.cumsum([len(p.points) for p in self.paths])]).astype(np.int64)

    def segment_index(self) -> np.ndarray:
        """(M, 4) indices into `flat_points()` of each segment's control points.

        `flat_points()[segment_index()]` (or the same indexing on a tensor of per-frame
        points) gives the (M, 4, 2) segments the rasterizer takes.
        """
        rows = []
        for start, path in zip(self.point_offsets()[:-1], self.paths):
            rows.append(start + 3 * np.arange(path.num_segments)[:, None] + np.arange(4)[None, :])
        return np.concatenate(rows, axis=0).astype(np.int64)

    def segment_path(self) -> np.ndarray:
        """(M,) index of the path each segment belongs to."""
        return np.repeat(np.arange(len(self.paths)), [p.num_segments for p in self.paths])

    def segments(self) -> np.ndarray:
        """(M, 4, 2) segments of the static sketch."""
        return self.flat_points()[self.segment_index()]

    def segment_half_widths(self) -> np.ndarray:
        """(M,) half-width of each segment's path (its uniform width)."""
        return np.array([p.half_width for p in self.paths])[self.segment_path()]

    def segment_control_widths(self) -> np.ndarray:
        """(M, 4) half-width at each segment's control points (per-point widths, or the path's own)."""
        return np.concatenate([p.control_widths()[p.segment_index()] for p in self.paths], axis=0)

    @property
    def has_point_widths(self) -> bool:
        return any(p.half_widths is not None for p in self.paths)

    def segment_caps(self) -> tuple[np.ndarray, np.ndarray]:
        """(M,) booleans: the segment starts / ends a flat-ended path (a closed path has no ends)."""
        starts, ends = [], []
        for p in self.paths:
            k = p.num_segments
            first, last = np.zeros(k, bool), np.zeros(k, bool)
            if not p.closed:
                first[0], last[-1] = p.start_cap == "flat", p.end_cap == "flat"
            starts.append(first)
            ends.append(last)
        return np.concatenate(starts), np.concatenate(ends)

    def style_groups(self) -> list[tuple[tuple[float, float, float], float, list[int]]]:
        """Paths that share a colour and an opacity, as (colour, opacity, path indices), in the order
        their first path appears: one layer each when drawing (a crossing of two 50%-grey strokes of
        one pen is not darker), composited "over" in this order."""
        groups: dict[tuple, list[int]] = {}
        for index, path in enumerate(self.paths):
            groups.setdefault((tuple(path.color), path.opacity), []).append(index)
        return [(color, opacity, ids) for (color, opacity), ids in groups.items()]

    def still_points(self) -> np.ndarray:
        """(total_points,) booleans: the points of pinned or invisible paths, which never move."""
        return np.concatenate([np.full(len(p.points), p.pinned or p.is_invisible) for p in self.paths])

    def with_points(self, flat_points: np.ndarray) -> "Sketch":
        """A static copy of this sketch with its control points replaced (same topology)."""
        flat_points = np.asarray(flat_points, dtype=np.float64)
        if flat_points.shape != (self.num_points, 2):
            raise SketchError(
                f"points have shape {flat_points.shape}, the sketch needs ({self.num_points}, 2)"
            )
        offsets = self.point_offsets()
        paths = [replace(p, points=flat_points[a:b].copy()) for p, a, b in zip(self.paths, offsets[:-1], offsets[1:])]
        return replace(self, paths=paths, frames=None, metadata=dict(self.metadata))  # a copy: changing one never changes the other

    def with_frames(self, frames: np.ndarray) -> "Sketch":
        """This sketch animated with per-frame control points (F, total_points, 2)."""
        out = replace(self, frames=np.asarray(frames, dtype=np.float64), metadata=dict(self.metadata))
        out.validate()
        return out

    def frame(self, index: int) -> "Sketch":
        """The static sketch of one animation frame."""
        if self.frames is None:
            raise SketchError("the sketch has no animation frames")
        return self.with_points(self.frames[index])

    def curve_bounds(self, flat_points: np.ndarray | None = None, paths: np.ndarray | None = None) -> np.ndarray:
        """(..., 2, 2) low and high corners of the drawn curves (not their handles), exactly.

        `flat_points` (..., P, 2) are this topology's control points (default: the static
        sketch's); `paths` (N,) booleans limit the extent to some paths."""
        points = self.flat_points() if flat_points is None else np.asarray(flat_points, dtype=np.float64)
        index = self.segment_index()
        if paths is not None:
            index = index[np.asarray(paths, bool)[self.segment_path()]]
        return cubic_bounds(points[..., index, :])

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of all control points."""
        pts = self.flat_points() if self.frames is None else self.frames.reshape(-1, 2)
        return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))

    # --------------------------------------------------------------- validation
    def validate(self) -> "Sketch":
        """Raise `SketchError` with a one-line reason if anything is out of range."""
        check_canvas(self.width, self.height)
        if not self.paths:
            raise SketchError("the sketch has no strokes: draw or import at least one stroke")
        if len(self.paths) > MAX_PATHS:
            raise SketchError(f"the sketch has {len(self.paths)} paths; the limit is {MAX_PATHS}: simplify it")
        if self.num_points > MAX_POINTS:
            raise SketchError(f"the sketch has {self.num_points} control points; the limit is {MAX_POINTS}")
        for i, path in enumerate(self.paths):
            _validate_path(i, path, self.width, self.height)
        if self.frames is not None:
            if self.frames.ndim != 3 or self.frames.shape[1:] != (self.num_points, 2):
                raise SketchError(
                    f"frames have shape {tuple(self.frames.shape)}; expected (F, {self.num_points}, 2), "
                    "the same topology as the sketch"
                )
            if not 1 <= self.frames.shape[0] <= MAX_FRAMES:
                raise SketchError(f"an animation needs 1 to {MAX_FRAMES} frames, not {self.frames.shape[0]}")
            if not np.isfinite(self.frames).all():
                raise SketchError("animation frames contain NaN or infinite coordinates")
        return self

    # --------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "width": self.width,
            "height": self.height,
            "paths": [path_to_dict(p) for p in self.paths],
            "frames": None if self.frames is None else self.frames.tolist(),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "sketch JSON") -> "Sketch":
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise SketchError(f"{source} is not a Sketch Animator sketch (no \"schema\": \"{SCHEMA}\")")
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise SketchError(
                f"{source} has sketch format version {version!r}; this engine reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}: re-export it with a matching Sketch Animator"
            )
        try:
            paths = [path_from_dict(p, f"paths[{i}]") for i, p in enumerate(expect(data.get("paths"), "list", "paths"))]
            frames = expect(data.get("frames"), "list|null", "frames")
            sketch = cls(
                paths=paths,
                width=expect(data.get("width", DEFAULT_CANVAS), "int", "width"),
                height=expect(data.get("height", DEFAULT_CANVAS), "int", "height"),
                frames=None if frames is None else np.asarray(frames, dtype=np.float64),
                metadata=dict(expect(data.get("metadata") or {}, "object", "metadata")),
            )
        except JSONInputError as exc:
            raise SketchError(f"{source}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise SketchError(f"{source} is malformed ({type(exc).__name__}: {exc})") from None
        return sketch.validate()

    def save_json(self, path: str | os.PathLike) -> FilePath:
        """Write versioned JSON atomically."""
        self.validate()
        return atomic_write_text(path, json.dumps(self.to_dict()))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "Sketch":
        path = FilePath(path)
        try:
            data = read_json_file(path, str(path), max_bytes=MAX_JSON_BYTES)
        except OSError as exc:
            raise SketchError(f"cannot read {path}: {exc.strerror}") from None
        except JSONInputError as exc:
            raise SketchError(str(exc)) from None
        return cls.from_dict(data, source=str(path))


def check_canvas(width: Any, height: Any) -> None:
    """Refuse canvas sizes the engine cannot hold in memory."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise SketchError(f"canvas {name} must be an integer, not {value!r}")
        if not 1 <= value <= MAX_CANVAS:
            raise SketchError(f"canvas {name} {value} is out of range: use 1 to {MAX_CANVAS} pixels")


def path_to_dict(p: Path) -> dict[str, Any]:
    data: dict[str, Any] = {"points": p.points.tolist(), "closed": p.closed, "half_width": p.half_width, "color": list(p.color), "opacity": p.opacity}
    if p.half_widths is not None:
        data["half_widths"] = p.half_widths.tolist()
    if p.start_cap != "round" or p.end_cap != "round":
        data["start_cap"], data["end_cap"] = p.start_cap, p.end_cap
    if p.pinned:
        data["pinned"] = True
    return data


def path_from_dict(p: Any, where: str = "path") -> Path:
    """A path of sketch format 1 or 2 (format 1 has uniform widths and round caps, which are the
    defaults); each field's JSON type is checked and a wrong one named (`"closed": "false"` is not true)."""
    expect(p, "object", where)
    points = expect(p.get("points"), "list", f"{where}.points")
    widths = expect(p.get("half_widths"), "list|null", f"{where}.half_widths")
    color = expect(p.get("color", [0.0, 0.0, 0.0]), "list", f"{where}.color")
    for name, values in (("points", [c for point in points for c in expect(point, "list", f"{where}.points[]")]), ("color", color), ("half_widths", widths or [])):
        for value in values:
            expect(value, "number", f"{where}.{name}[]")
    return Path(
        points=np.asarray(points, dtype=np.float64),
        closed=expect(p.get("closed", False), "bool", f"{where}.closed"),
        half_width=float(expect(p.get("half_width", 1.5), "number", f"{where}.half_width")),
        color=tuple(float(c) for c in color),
        opacity=float(expect(p.get("opacity", 1.0), "number", f"{where}.opacity")),
        half_widths=None if widths is None else np.asarray(widths, dtype=np.float64),
        start_cap=expect(p.get("start_cap", "round"), "str", f"{where}.start_cap"),
        end_cap=expect(p.get("end_cap", "round"), "str", f"{where}.end_cap"),
        pinned=expect(p.get("pinned", False), "bool", f"{where}.pinned"),
    )


def _validate_path(i: int, path: Path, width: int, height: int) -> None:
    n = len(path.points)
    if n < 4 or (n - 1) % 3:
        raise SketchError(f"path {i} has {n} control points; a chain of cubic segments needs 3k+1 (k ≥ 1)")
    if not np.isfinite(path.points).all():
        raise SketchError(f"path {i} has NaN or infinite coordinates")
    if not (math.isfinite(path.half_width) and 0 <= path.half_width <= max(width, height)):
        raise SketchError(f"path {i} has half-width {path.half_width}; use a width from 0 (invisible) to the canvas size")
    if path.half_widths is not None:
        widths = path.half_widths
        if widths.shape != (n,) or not np.isfinite(widths).all() or widths.min() < 0 or widths.max() > max(width, height):
            raise SketchError(f"path {i} has {widths.size} half-widths for {n} control points, or one out of 0 … {max(width, height)}: give one per control point")
    for name in ("start_cap", "end_cap"):
        if getattr(path, name) not in CAPS:
            raise SketchError(f"path {i} has {name} {getattr(path, name)!r}; use {' or '.join(CAPS)}")
    if not (math.isfinite(path.opacity) and 0 <= path.opacity <= 1):
        raise SketchError(f"path {i} has opacity {path.opacity}; use 0 to 1")
    if len(path.color) != 3 or not all(math.isfinite(c) and 0 <= c <= 1 for c in path.color):
        raise SketchError(f"path {i} has colour {path.color}; use three values from 0 to 1")


def stack_frames(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Stack per-frame flat point arrays into (F, total_points, 2)."""
    return np.stack([np.asarray(f, dtype=np.float64) for f in frames], axis=0)


def cubic_bounds(segments: np.ndarray) -> np.ndarray:
    """(..., 2, 2) low and high corners of cubic Bézier segments (..., M, 4, 2): their end points and
    every interior extremum (the roots of the derivative, a quadratic per coordinate)."""
    p0, p1, p2, p3 = (segments[..., i, :] for i in range(4))
    a = -p0 + 3 * p1 - 3 * p2 + p3  # B'(t)/3 = a t² + 2 b t + c
    b = p0 - 2 * p1 + p2
    c = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(b * b - a * c, 0.0))
        quadratic = np.abs(a) > 1e-12
        t1 = np.where(quadratic, (-b + root) / a, np.where(np.abs(b) > 1e-12, -c / (2 * b), 0.0))
        t2 = np.where(quadratic, (-b - root) / a, t1)
    candidates = [p0, p3]
    for t in (t1, t2):
        t = np.where(np.isfinite(t), np.clip(t, 0.0, 1.0), 0.0)
        u = 1.0 - t
        candidates.append(u**3 * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t**3 * p3)
    stacked = np.stack(candidates, axis=-2)  # (..., M, 4, 2), one coordinate's extremum per column
    low = stacked.min(axis=-2).min(axis=-2)
    high = stacked.max(axis=-2).max(axis=-2)
    return np.stack([low, high], axis=-2)
