"""Grease Pencil ↔ Sketch geometry in plain numpy: projection, Bézier fitting, keyframe plan.

This is the Blender-free core of the Grease Pencil import and write-back (design.md §3,
"Grease Pencil ↔ Sketch"). The bpy code around it only reads attributes with bulk
`foreach_get` into `StrokeData`, and writes the arrays of a `FramePlan` back with
`foreach_set`. It imports numpy only: no bpy, no torch, not the `engine` package (Blender's
Python has no torch). Sketches travel as plain dicts in the engine's Sketch JSON layout,
which `engine.sketch.Sketch.from_dict` reads.

Conventions
-----------
* **Spaces.** GP v3 stores `position` / `handle_left` / `handle_right` in layer-local space.
  `matrix_world` is the matrix that takes those stored positions to world space: the
  object's world matrix (parents included), times the layer's own transform when it has one
  (`ob.matrix_world @ layer.matrix_local` for an unparented layer).
* **Drawing plane.** The object's local X–Z plane (the 2D Animation convention: drawing on
  the "front" plane, local Y = 0), measured in *world* lengths in an orthonormal frame of
  that plane: `(u, v) = R @ (x, z)`, where `R` is the upper-triangular factor of the QR
  decomposition of the world images of the local X and Z axes (`u` runs along the object's
  X axis as it lies in the world, `v` perpendicular to it in the plane, towards local +Z).
  The canvas thus shows the strokes as a camera facing the plane and aligned with the
  object's X axis sees them: the object's scale, non-uniform scale and a parent's shear
  show, its rotation does not turn the canvas image. Canvas pixels are a similarity of
  that: `canvas_x = scale·u + offset_x`, `canvas_y = offset_y − scale·v` (local X → canvas
  x, local Z → canvas −y; canvas origin top-left, y down).
* **Depth.** The local Y of each point. Projection drops it; write-back restores it from the
  mapping, which stores one depth per control point of every path. Points that did not exist
  in Grease Pencil get an interpolated depth from their stroke's own points: a fitted POLY
  stroke's knots are input points (exact depth); its handles get the depth interpolated
  along the stroke's chord length at one and two thirds of their segment. Output frames keep
  each control point's depth (the topology of an animation never changes). Strokes drawn on
  the plane have depth 0 everywhere, so this is exact for them.
* **Radius ↔ half width.** A GP point's `radius` is half the visible line width, in layer
  units; Blender draws it times the object's average scale, `|M₃·(1,1,1)/√3|` (BLI's
  `mat4_to_scale` of the *object* world matrix, which the draw engine applies). diffvg's
  half width is half the visible width too, so
  `half_width_px = mean(radius) · radius_scale · mapping.scale`. Write-back restores the
  source radii, times `path.half_width / imported half_width` if the width was changed.
* **Bézier layout.** A Sketch path holds 3k+1 cubic control points [P0, C1, C2, P1, …].
  GP v3 stores one point per knot with its two handles; segment i runs
  `P[i] → handle_right[i] → handle_left[i+1] → P[i+1]`. So K = k+1 knots for an open path,
  K = k for a closed one (its last control point equals its first and is dropped; the
  closing segment uses `handle_right[K−1]` and `handle_left[0]`). An open stroke's outer
  handles (left of the first knot, right of the last) are not drawn; write-back mirrors the
  inner ones through the knot (`2·P − H`), which keeps them aligned. Handle types are FREE
  (0): GP does not recompute AUTO handles written from Python.
* **Colour.** A path's colour is the point-wise mix of the material's stroke colour with the
  vertex colour (vertex alpha = mix factor), averaged over the stroke and converted from
  linear to sRGB; its opacity is the mean point opacity times the material alpha.
  Write-back restores the source vertex colours, opacities, radii and material index,
  resampled to the knots (exact at knots that are source points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

SKETCH_SCHEMA = "sketch-animator/sketch"
SKETCH_VERSION = 1
MAPPING_KEY = "blender_mapping"
STROKES_KEY = "blender_strokes"
MAPPING_VERSION = 1

CURVE_TYPES = {"CATMULL_ROM": 0, "POLY": 1, "BEZIER": 2, "NURBS": 3}  # GP v3 `curve_type` codes
CURVE_TYPE_NAMES = {v: k for k, v in CURVE_TYPES.items()}
HANDLE_TYPE_FREE = 0  # GP v3 `handle_type_left/right` code for FREE handles

MIN_HALF_WIDTH = 0.1  # px; the engine refuses half-width 0, a radius-0 stroke becomes a hairline
_DEDUP_EPS = 1e-9  # px; consecutive points closer than this are one point
TANGENT_REACH = 4.0  # × tolerance: chord length used to estimate tangents (robust to jitter)


# ----------------------------------------------------------------------------- matrices
def _as_matrix(matrix: Any) -> np.ndarray:
    m = np.array(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix_world must be 4×4, not {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("matrix_world contains NaN or infinite values")
    lin = m[:3, :3]
    if abs(np.linalg.det(lin)) <= 1e-12 * max(np.abs(lin).max(), 1e-300) ** 3:
        raise ValueError("the object's matrix is singular (a scale of 0 on some axis): cannot map strokes to it")
    return m


def blender_object_scale(matrix_world: Any) -> float:
    """Blender's `mat4_to_scale`: the length of M₃·(1,1,1)/√3, the scale GP applies to radii."""
    m = np.asarray(matrix_world, dtype=np.float64)
    return float(np.linalg.norm(m[:3, :3] @ np.full(3, 1.0 / math.sqrt(3.0))))


def plane_matrix(matrix_world: Any) -> np.ndarray:
    """2×2 upper-triangular R with (u, v) = R @ (x, z): local X–Z → orthonormal world plane coords."""
    m = _as_matrix(matrix_world)
    _, r = np.linalg.qr(m[:3, [0, 2]])
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return signs[:, None] * r


def local_to_world(points_local: Any, matrix_world: Any) -> np.ndarray:
    m = np.asarray(matrix_world, dtype=np.float64)
    p = np.asarray(points_local, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]


def world_to_local(points_world: Any, matrix_world: Any) -> np.ndarray:
    m = _as_matrix(matrix_world)
    p = np.asarray(points_world, dtype=np.float64)
    flat = (p.reshape(-1, 3) - m[:3, 3]).T
    return np.linalg.solve(m[:3, :3], flat).T.reshape(p.shape)


# ----------------------------------------------------------------------------- mapping
@dataclass
class CanvasMapping:
    """Where the strokes of one Grease Pencil drawing sit on the Sketch canvas, and back.

    matrix_world: stored (layer-local) positions → world, 4×4.
    scale, offset: the similarity from plane coordinates (world units) to canvas pixels.
    radius_scale: world units per GP radius unit (Blender's object scale, see module doc).
    depths: per path, the local Y of each of its control points (for exact write-back).
    """

    matrix_world: np.ndarray
    width: int = 256
    height: int = 256
    scale: float = 1.0
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))
    radius_scale: float | None = None
    depths: list[np.ndarray] = field(default_factory=list)

    # The plane is fixed by convention; kept in the JSON so a reader can check it.
    PLANE_AXES = ("X", "Z")  # local X → canvas x, local Z → canvas −y
    DEPTH_AXIS = "Y"

    def __post_init__(self) -> None:
        self.matrix_world = _as_matrix(self.matrix_world)
        self.width, self.height = int(self.width), int(self.height)
        self.scale = float(self.scale)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"canvas scale must be positive, not {self.scale}")
        self.offset = np.asarray(self.offset, dtype=np.float64).reshape(2)
        if self.radius_scale is None:
            self.radius_scale = blender_object_scale(self.matrix_world)
        self.radius_scale = float(self.radius_scale)
        self.depths = [np.asarray(d, dtype=np.float64).reshape(-1) for d in self.depths]

    @property
    def plane(self) -> np.ndarray:
        return plane_matrix(self.matrix_world)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MAPPING_VERSION,
            "plane_axes": list(self.PLANE_AXES),
            "depth_axis": self.DEPTH_AXIS,
            "matrix_world": self.matrix_world.tolist(),
            "width": self.width,
            "height": self.height,
            "scale": self.scale,
            "offset": self.offset.tolist(),
            "radius_scale": self.radius_scale,
            "depths": [d.tolist() for d in self.depths],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CanvasMapping":
        if not isinstance(data, dict):
            raise ValueError("the Blender canvas mapping is not a JSON object")
        if data.get("version", MAPPING_VERSION) != MAPPING_VERSION:
            raise ValueError(f"canvas mapping version {data.get('version')!r}; this add-on reads {MAPPING_VERSION}")
        if tuple(data.get("plane_axes", cls.PLANE_AXES)) != cls.PLANE_AXES:
            raise ValueError(f"canvas mapping on plane {data.get('plane_axes')}; only local X–Z is supported")
        try:
            return cls(
                matrix_world=data["matrix_world"],
                width=data.get("width", 256),
                height=data.get("height", 256),
                scale=data["scale"],
                offset=data["offset"],
                radius_scale=data.get("radius_scale"),
                depths=data.get("depths", []),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"the Blender canvas mapping is malformed ({type(exc).__name__}: {exc})") from None


def _canvas_size(canvas: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(canvas, (int, np.integer)):
        return int(canvas), int(canvas)
    w, h = canvas
    return int(w), int(h)


def local_to_canvas(points_local: Any, mapping: CanvasMapping, return_depth: bool = False):
    """(..., 3) local points → (..., 2) canvas pixels (and their depth, the local Y)."""
    p = np.asarray(points_local, dtype=np.float64)
    uv = p[..., [0, 2]] @ mapping.plane.T
    out = np.empty(p.shape[:-1] + (2,))
    out[..., 0] = mapping.scale * uv[..., 0] + mapping.offset[0]
    out[..., 1] = mapping.offset[1] - mapping.scale * uv[..., 1]
    return (out, p[..., 1].copy()) if return_depth else out


def canvas_to_local(points_canvas: Any, depth: Any, mapping: CanvasMapping) -> np.ndarray:
    """(..., 2) canvas pixels + depth (broadcast to (...)) → (..., 3) local points."""
    c = np.asarray(points_canvas, dtype=np.float64)
    uv = np.stack([(c[..., 0] - mapping.offset[0]) / mapping.scale, (mapping.offset[1] - c[..., 1]) / mapping.scale], -1)
    xz = np.linalg.solve(mapping.plane, uv.reshape(-1, 2).T).T.reshape(uv.shape)
    out = np.empty(c.shape[:-1] + (3,))
    out[..., 0], out[..., 2] = xz[..., 0], xz[..., 1]
    out[..., 1] = np.broadcast_to(np.asarray(depth, dtype=np.float64), c.shape[:-1])
    return out


def world_to_canvas(points_world: Any, mapping: CanvasMapping, return_depth: bool = False):
    """(N, 3) world points → (N, 2) canvas pixels (and the depth, local Y, with return_depth)."""
    return local_to_canvas(world_to_local(points_world, mapping.matrix_world), mapping, return_depth)


def canvas_to_world(points_canvas: Any, depth: Any, mapping: CanvasMapping) -> np.ndarray:
    """(N, 2) canvas pixels + (N,) depth → (N, 3) world points; the exact inverse of world_to_canvas."""
    return local_to_world(canvas_to_local(points_canvas, depth, mapping), mapping.matrix_world)


def _framing(c0: np.ndarray, width: int, height: int, margin: float) -> tuple[float, np.ndarray]:
    """Scale and offset that fit unit-canvas points (u, −v) into the canvas, aspect kept, centred."""
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin {margin} must be in [0, 0.5): a fraction of the canvas")
    if len(c0) == 0:
        raise ValueError("no points to fit the canvas to")
    lo, hi = c0.min(0), c0.max(0)
    extent = hi - lo
    m = margin * min(width, height)
    avail = np.array([width - 2 * m, height - 2 * m], dtype=np.float64)
    tiny = 1e-12 * max(1.0, float(np.abs(c0).max()))
    ratios = [avail[a] / extent[a] for a in range(2) if extent[a] > tiny]
    scale = float(min(ratios)) if ratios else float(avail.min())  # a dot: 1 unit spans the usable canvas
    return scale, np.array([width / 2, height / 2]) - scale * (lo + hi) / 2


def fit_mapping(
    matrix_world: Any,
    points_local: Any,
    canvas: int | Sequence[int] = 256,
    margin: float = 0.1,
    radius_scale: float | None = None,
) -> CanvasMapping:
    """The mapping that fits the plane bounding box of `points_local` (N, 3) into the canvas.

    The aspect is kept and the box is centred; its long side spans the canvas minus a margin
    of `margin` × the canvas's short side at each end. A drawing with no extent (one dot)
    is centred, with one world unit spanning the usable canvas.
    """
    width, height = _canvas_size(canvas)
    unit = CanvasMapping(matrix_world, width, height, scale=1.0, offset=(0.0, 0.0), radius_scale=radius_scale)
    c0 = local_to_canvas(np.asarray(points_local, dtype=np.float64).reshape(-1, 3), unit)
    scale, offset = _framing(c0, width, height, margin)
    return CanvasMapping(matrix_world, width, height, scale=scale, offset=offset, radius_scale=unit.radius_scale)


# ----------------------------------------------------------------------------- Bézier fitting
def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else np.zeros_like(v)


def _bernstein(u: np.ndarray) -> np.ndarray:
    mu = 1.0 - u
    return np.stack([mu**3, 3 * mu * mu * u, 3 * mu * u * u, u**3], axis=-1)


def _ls_cubic(p: np.ndarray, u: np.ndarray, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """Least-squares cubic with fixed ends and end tangents t1 (out of P0), t2 (out of P3 inwards)."""
    p0, p3 = p[0], p[-1]
    b = _bernstein(u)
    a1 = b[:, 1:2] * t1
    a2 = b[:, 2:3] * t2
    rhs = p - (b[:, 0:1] + b[:, 1:2]) * p0 - (b[:, 2:3] + b[:, 3:4]) * p3
    c11, c12, c22 = (a1 * a1).sum(), (a1 * a2).sum(), (a2 * a2).sum()
    x1, x2 = (rhs * a1).sum(), (rhs * a2).sum()
    det = c11 * c22 - c12 * c12
    seg = float(np.linalg.norm(p3 - p0))
    if seg <= 0:  # a loop piece: fall back on its arc length
        seg = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    alpha1 = alpha2 = -1.0
    if abs(det) > 1e-12 * max(c11 * c22, 1e-300):
        alpha1 = (x1 * c22 - x2 * c12) / det
        alpha2 = (c11 * x2 - c12 * x1) / det
    eps = 1e-6 * seg
    if not (alpha1 > eps and alpha2 > eps):  # Schneider's fallback: a third of the chord each
        alpha1 = alpha2 = seg / 3.0
    return np.array([p0, p0 + alpha1 * t1, p3 + alpha2 * t2, p3])


def _max_error(p: np.ndarray, u: np.ndarray, ctrl: np.ndarray) -> tuple[float, int]:
    d2 = ((_bernstein(u) @ ctrl - p) ** 2).sum(1)
    worst = 1 + int(np.argmax(d2[1:-1]))
    return math.sqrt(float(d2[worst])), worst


def _newton_reparametrise(p: np.ndarray, u: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
    mu = 1.0 - u
    q = _bernstein(u) @ ctrl - p
    d1 = 3 * np.stack([mu * mu, 2 * mu * u, u * u], -1) @ np.diff(ctrl, axis=0)
    d2 = 6 * np.stack([mu, u], -1) @ np.diff(ctrl, 2, axis=0)
    num = (q * d1).sum(1)
    den = (d1 * d1).sum(1) + (q * d2).sum(1)
    step = np.divide(num, den, out=np.zeros_like(num), where=np.abs(den) > 1e-12)
    out = np.clip(u - step, 0.0, 1.0)
    out[0], out[-1] = 0.0, 1.0
    return out


def _fit_piece(p: np.ndarray, t1: np.ndarray, t2: np.ndarray, tol: float, newton_steps: int = 6):
    """Fit one cubic to points p (m ≥ 2); returns (ctrl (4,2), max error, worst local index)."""
    if len(p) == 2:
        seg = float(np.linalg.norm(p[1] - p[0]))
        return np.array([p[0], p[0] + t1 * seg / 3, p[1] + t2 * seg / 3, p[1]]), 0.0, -1
    d = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]
    u = d / d[-1]
    ctrl = _ls_cubic(p, u, t1, t2)
    err, worst = _max_error(p, u, ctrl)
    for _ in range(newton_steps):
        if err <= tol:
            break
        u2 = _newton_reparametrise(p, u, ctrl)
        ctrl2 = _ls_cubic(p, u2, t1, t2)
        err2, worst2 = _max_error(p, u2, ctrl2)
        if err2 >= err:
            break
        u, ctrl, err, worst = u2, ctrl2, err2, worst2
    return ctrl, err, worst


def _turn_angle(v_in: np.ndarray, v_out: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v_in, axis=-1) * np.linalg.norm(v_out, axis=-1)
    cos = np.divide((v_in * v_out).sum(-1), n, out=np.ones(len(n)), where=n > 0)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _find_corners(pts: np.ndarray, closed: bool, min_angle: float, reach: float, limit: int) -> np.ndarray:
    """Indices of corners: turns sharper than `min_angle` between chords reaching `reach` px back
    and ahead (so sub-pixel jitter is no corner), the sharpest within `reach` of each other,
    at most `limit`. For a closed polyline (last point = first) index 0 is the join."""
    if closed:
        m = len(pts) - 1
        ext = np.vstack([pts[:-1]] * 3 + [pts[:1]])  # unwrap the loop: look across the join
        centre = np.arange(m, 2 * m)
    else:
        ext, centre = pts, np.arange(1, len(pts) - 1)
    if len(centre) == 0 or limit <= 0:
        return np.zeros(0, np.int64)
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(ext, axis=0), axis=1))]
    back = np.minimum(np.searchsorted(s, s[centre] - reach, "right") - 1, centre - 1).clip(0)
    ahead = np.maximum(np.searchsorted(s, s[centre] + reach, "left"), centre + 1).clip(None, len(ext) - 1)
    angle = _turn_angle(ext[centre] - ext[back], ext[ahead] - ext[centre])
    cand = np.flatnonzero(angle > min_angle)
    kept: list[int] = []
    for c in cand[np.argsort(-angle[cand], kind="stable")]:  # greedy non-maximum suppression
        if len(kept) == limit:
            break
        if all(abs(s[centre[c]] - s[centre[k]]) > reach for k in kept):
            kept.append(int(c))
    idx = centre[np.sort(np.array(kept, dtype=np.int64))]
    return idx - m if closed else idx


def _fit_polyline(
    points: Any,
    tolerance_px: float,
    max_segments: int = 256,
    closed: bool = False,
    corner_angle_deg: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """`fit_cubic_beziers` plus the index of each knot in the input (index N = closing copy of 0)."""
    pts_in = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts_in) == 0:
        raise ValueError("cannot fit a stroke with no points")
    if not np.isfinite(pts_in).all():
        raise ValueError("the stroke has NaN or infinite coordinates")
    if not tolerance_px > 0:
        raise ValueError(f"the fitting tolerance must be positive, not {tolerance_px}")
    max_segments = max(1, int(max_segments))
    n_in = len(pts_in)
    keep = np.r_[True, np.linalg.norm(np.diff(pts_in, axis=0), axis=1) > _DEDUP_EPS]
    idx = np.flatnonzero(keep)
    if closed and len(idx) > 1 and np.linalg.norm(pts_in[idx[-1]] - pts_in[idx[0]]) <= _DEDUP_EPS:
        idx = idx[:-1]
    pts = pts_in[idx]
    if len(pts) == 1:  # a dot: 4 equal points
        return np.repeat(pts, 4, axis=0), np.array([idx[0], idx[0]])
    if closed:
        pts = np.vstack([pts, pts[:1]])
        idx = np.r_[idx, n_in]
    n = len(pts)
    if n == 2:  # a straight cubic
        return pts[0] + np.linspace(0.0, 1.0, 4)[:, None] * (pts[1] - pts[0]), idx.copy()

    # Corners: split there first, with one-sided tangents on either side.
    corner = _find_corners(pts, closed, math.radians(corner_angle_deg), 2.0 * tolerance_px, max_segments - 1)
    join_is_corner = not closed or 0 in corner
    corner = corner[(corner > 0) & (corner < n - 1)]
    breaks = np.r_[0, corner, n - 1]

    # Tangents from chords reaching `reach` px (at least one neighbour), so jitter does not tilt them.
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    reach = TANGENT_REACH * tolerance_px

    def ahead(i: int, hi: int) -> int:
        return int(min(max(np.searchsorted(chord, chord[i] + reach, "left"), i + 1), hi))

    def back(i: int, lo: int) -> int:
        return int(max(min(np.searchsorted(chord, chord[i] - reach, "right") - 1, i - 1), lo))

    join = _unit(pts[ahead(0, n - 1)] - pts[back(n - 1, 0)]) if closed and not join_is_corner else None

    def start_tangent(a: int, b: int) -> np.ndarray:
        return join if a == 0 and join is not None else _unit(pts[ahead(a, b)] - pts[a])

    def end_tangent(a: int, b: int) -> np.ndarray:
        return -join if b == n - 1 and join is not None else _unit(pts[back(b, a)] - pts[b])

    pieces = []  # [a, b, t1, t2, ctrl, err, worst]
    for a, b in zip(breaks[:-1], breaks[1:]):
        t1, t2 = start_tangent(int(a), int(b)), end_tangent(int(a), int(b))
        ctrl, err, worst = _fit_piece(pts[a : b + 1], t1, t2, tolerance_px)
        pieces.append([int(a), int(b), t1, t2, ctrl, err, worst])

    # Greedy refinement: split the worst piece at its worst point until all fit or the budget ends.
    while len(pieces) < max_segments:
        j = max(range(len(pieces)), key=lambda i: pieces[i][5])
        a, b, t1, t2, _, err, worst = pieces[j]
        if err <= tolerance_px:
            break
        w = a + worst
        tc = _unit(pts[ahead(w, b)] - pts[back(w, a)])
        if not tc.any():
            tc = _unit(pts[w + 1] - pts[w])
        left = _fit_piece(pts[a : w + 1], t1, -tc, tolerance_px)
        right = _fit_piece(pts[w : b + 1], tc, t2, tolerance_px)
        pieces[j : j + 1] = [[a, w, t1, -tc, *left], [w, b, tc, t2, *right]]

    ctrl = np.vstack([pieces[0][4][:1]] + [pc[4][1:] for pc in pieces])
    knots = idx[np.r_[pieces[0][0], [pc[1] for pc in pieces]]]
    return ctrl, knots


def fit_cubic_beziers(
    points: Any,
    tolerance_px: float = 0.5,
    max_segments: int = 256,
    closed: bool = False,
    corner_angle_deg: float = 60.0,
) -> np.ndarray:
    """Fit a polyline (N, 2) with a chain of cubic Béziers: (3k+1, 2) control points.

    Schneider's idea: chord-length parameters, end tangents estimated from the neighbours,
    a tangent-constrained least-squares cubic, Newton reparametrisation when the error is
    above the tolerance, and a split at the worst point (centred tangent there) while the
    largest distance from a point to its parameter on the curve exceeds `tolerance_px`
    (greedy: the worst piece first, at most `max_segments` pieces; past that budget the
    error may exceed the tolerance). Turns sharper than `corner_angle_deg`, measured between
    chords reaching 2 × `tolerance_px` back and ahead (jitter below that is no corner), are
    split first with one-sided tangents, so corners stay sharp. Consecutive duplicate points are
    dropped; one point gives a dot (4 equal points), two give a straight cubic. With
    `closed`, the curve returns to its first point (which is appended when needed) with a
    smooth join unless the join is a corner.
    """
    return _fit_polyline(points, tolerance_px, max_segments, closed, corner_angle_deg)[0]


def bezier_points(ctrl: Any, samples_per_segment: int = 32) -> np.ndarray:
    """Dense points on a (3k+1, D) chain of cubics, for checks and bounds."""
    c = np.asarray(ctrl, dtype=np.float64)
    k = (len(c) - 1) // 3
    seg = c[3 * np.arange(k)[:, None] + np.arange(4)]  # (k, 4, D)
    b = _bernstein(np.linspace(0.0, 1.0, samples_per_segment))  # (S, 4)
    return np.einsum("sj,kjd->ksd", b, seg).reshape(-1, c.shape[1])


def _cubic_extrema(seg: np.ndarray) -> np.ndarray:
    """Points of each cubic (M, 4, 2) at its ends and axis extrema: the exact bounding box."""
    d = np.diff(seg, axis=1)  # (M, 3, 2): B'(t)/3 = (1-t)²d0 + 2(1-t)t d1 + t² d2
    a = d[:, 0] - 2 * d[:, 1] + d[:, 2]
    b = 2 * (d[:, 1] - d[:, 0])
    c = d[:, 0]
    ts = [np.zeros_like(a), np.ones_like(a)]
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    quad = np.abs(a) > 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(quad, (-b + sq) / (2 * a), np.where(np.abs(b) > 0, -c / b, 0.0))
        r2 = np.where(quad, (-b - sq) / (2 * a), 0.0)
    for r in (r1, r2):
        ok = (disc >= 0) & np.isfinite(r) & (r > 0) & (r < 1)
        ts.append(np.where(ok, r, 0.0))
    t = np.stack(ts, axis=1).reshape(len(seg), -1)  # (M, 8): both axes' candidates, evaluated on both
    b4 = _bernstein(t)  # (M, 6, 4)
    return np.einsum("mtj,mjd->mtd", b4, seg).reshape(-1, 2)


# ----------------------------------------------------------------------------- strokes
def _curve_type_name(curve_type: Any) -> str:
    if isinstance(curve_type, str):
        name = curve_type.upper()
        if name not in CURVE_TYPES:
            raise ValueError(f"unknown curve type {curve_type!r}; use one of {sorted(CURVE_TYPES)}")
        return name
    code = int(curve_type)
    if code not in CURVE_TYPE_NAMES:
        raise ValueError(f"unknown curve type code {code}")
    return CURVE_TYPE_NAMES[code]


@dataclass
class StrokeData:
    """One Grease Pencil stroke as bulk-read arrays (positions in layer-local space).

    Defaults are Blender's values for absent attributes (radius 0.01, opacity 1, vertex
    colour 0 = material colour only, material 0). CATMULL_ROM and NURBS strokes are treated
    as POLY: their points are fitted.
    """

    positions: np.ndarray
    radius: Any = 0.01
    opacity: Any = 1.0
    vertex_color: Any = (0.0, 0.0, 0.0, 0.0)
    curve_type: Any = "POLY"
    handle_left: Any = None
    handle_right: Any = None
    cyclic: bool = False
    material_index: int = 0
    material_color: Any = (0.0, 0.0, 0.0, 1.0)  # linear RGBA of the material's stroke colour
    source_index: int | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        n = len(self.positions)
        self.radius = np.broadcast_to(np.asarray(self.radius, dtype=np.float64), (n,)).copy()
        self.opacity = np.broadcast_to(np.asarray(self.opacity, dtype=np.float64), (n,)).copy()
        self.vertex_color = np.broadcast_to(np.asarray(self.vertex_color, dtype=np.float64), (n, 4)).copy()
        self.curve_type = _curve_type_name(self.curve_type)
        for name in ("handle_left", "handle_right"):
            h = getattr(self, name)
            setattr(self, name, self.positions.copy() if h is None else np.asarray(h, dtype=np.float64).reshape(n, 3))
        self.cyclic = bool(self.cyclic)
        self.material_index = int(self.material_index)
        self.material_color = np.asarray(self.material_color, dtype=np.float64).reshape(4)


def strokes_from_drawing_arrays(
    offsets: Any,
    position: Any,
    radius: Any = None,
    opacity: Any = None,
    vertex_color: Any = None,
    handle_left: Any = None,
    handle_right: Any = None,
    curve_type: Any = None,
    cyclic: Any = None,
    material_index: Any = None,
    material_colors: Any = None,
) -> list[StrokeData]:
    """Split a drawing's flat attribute arrays (as `foreach_get` reads them) into strokes.

    `offsets` is `drawing.curve_offsets` (C+1 values); point arrays have one row per point,
    curve arrays one per stroke; None means the attribute is absent (Blender's default).
    `material_colors` (optional, (num_materials, 4) linear RGBA) gives each stroke its
    material's stroke colour. Empty strokes are skipped.
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    pos = np.asarray(position, dtype=np.float64).reshape(-1, 3)
    c = len(off) - 1
    n = len(pos)
    rad = np.full(n, 0.01) if radius is None else np.asarray(radius, dtype=np.float64).reshape(n)
    opa = np.ones(n) if opacity is None else np.asarray(opacity, dtype=np.float64).reshape(n)
    col = np.zeros((n, 4)) if vertex_color is None else np.asarray(vertex_color, dtype=np.float64).reshape(n, 4)
    hl = None if handle_left is None else np.asarray(handle_left, dtype=np.float64).reshape(n, 3)
    hr = None if handle_right is None else np.asarray(handle_right, dtype=np.float64).reshape(n, 3)
    ctype = np.zeros(c, np.int64) if curve_type is None else np.asarray(curve_type).reshape(c).astype(np.int64)
    cyc = np.zeros(c, bool) if cyclic is None else np.asarray(cyclic).reshape(c).astype(bool)
    mat = np.zeros(c, np.int64) if material_index is None else np.asarray(material_index).reshape(c).astype(np.int64)
    mcol = None if material_colors is None else np.asarray(material_colors, dtype=np.float64).reshape(-1, 4)
    out = []
    for i in range(c):
        a, b = int(off[i]), int(off[i + 1])
        if b <= a:
            continue
        out.append(
            StrokeData(
                positions=pos[a:b],
                radius=rad[a:b],
                opacity=opa[a:b],
                vertex_color=col[a:b],
                curve_type=int(ctype[i]),
                handle_left=None if hl is None else hl[a:b],
                handle_right=None if hr is None else hr[a:b],
                cyclic=bool(cyc[i]),
                material_index=int(mat[i]),
                material_color=(0, 0, 0, 1) if mcol is None or not 0 <= mat[i] < len(mcol) else mcol[mat[i]],
                source_index=i,
            )
        )
    return out


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _interleave_bezier(p: np.ndarray, hl: np.ndarray, hr: np.ndarray, closed: bool) -> np.ndarray:
    """GP knots and handles (K, D) → cubic control points (3k+1, D)."""
    k = len(p) if closed else len(p) - 1
    out = np.empty((3 * k + 1,) + p.shape[1:])
    out[0::3] = np.concatenate([p, p[:1]]) if closed else p
    out[1::3] = hr[:k]
    out[2::3] = np.roll(hl, -1, axis=0)[:k]
    return out


def strokes_to_sketch_dict(
    strokes: Iterable[StrokeData],
    matrix_world: Any,
    canvas: int | Sequence[int] = 256,
    margin: float = 0.1,
    tolerance_px: float = 0.5,
    *,
    max_segments: int = 256,
    radius_scale: float | None = None,
    mapping: CanvasMapping | None = None,
    corner_angle_deg: float = 60.0,
) -> dict[str, Any]:
    """Grease Pencil strokes → a Sketch dict (engine JSON layout) with the mapping in its metadata.

    BEZIER strokes convert exactly; other strokes are fitted in canvas pixels with
    `tolerance_px`. `radius_scale` defaults to Blender's scale of `matrix_world`; pass the
    object's own (`mat4_to_scale(ob.matrix_world)`) when `matrix_world` includes a layer
    transform. `mapping` reuses an existing framing (canvas size, scale, offset) instead of
    fitting the strokes' bounding box.
    """
    m = _as_matrix(matrix_world)
    strokes = [s if isinstance(s, StrokeData) else StrokeData(**s) for s in strokes]
    items = [(i if s.source_index is None else s.source_index, s) for i, s in enumerate(strokes) if len(s.positions)]
    if not items:
        raise ValueError("the layer has no strokes at this frame: draw or pick a layer with strokes")

    # Project each stroke's control geometry once with a unit framing (scale 1, offset 0).
    unit = CanvasMapping(m, 1, 1, scale=1.0, offset=(0.0, 0.0), radius_scale=radius_scale)
    projected = []
    bound_pts = []
    for _, s in items:
        closed = s.cyclic and len(s.positions) > 1
        if s.curve_type == "BEZIER" and len(s.positions) > 1:
            local = _interleave_bezier(s.positions, s.handle_left, s.handle_right, closed)
            c0, depth = world_to_canvas(local_to_world(local, m), unit, return_depth=True)
            bound_pts.append(_cubic_extrema(c0[3 * np.arange((len(c0) - 1) // 3)[:, None] + np.arange(4)]))
        else:
            c0, depth = world_to_canvas(local_to_world(s.positions, m), unit, return_depth=True)
            bound_pts.append(c0)
        projected.append((c0, depth, closed))

    if mapping is None:
        width, height = _canvas_size(canvas)
        scale, offset = _framing(np.concatenate(bound_pts), width, height, margin)
    else:
        width, height, scale = mapping.width, mapping.height, mapping.scale
        # unit canvas = (u, −v); the reused framing applies its own offset to that
        offset = mapping.offset
    rscale = unit.radius_scale

    paths, metas, depths = [], [], []
    for (src, s), (c0, depth, closed) in zip(items, projected):
        c = scale * c0 + offset
        n = len(s.positions)
        if s.curve_type == "BEZIER":
            if n == 1:
                ctrl, dctrl, knots, closed = np.repeat(c, 4, 0), np.repeat(depth, 4), np.array([0, 0]), False
            else:
                ctrl, dctrl = c, depth
                knots = np.arange(n)
        else:
            ctrl, kidx = _fit_polyline(c, tolerance_px, max_segments, closed, corner_angle_deg)
            closed = closed and len(ctrl) > 4 and kidx[-1] == n
            c_ext = np.vstack([c, c[:1]])
            d_ext = np.r_[depth, depth[:1]]
            chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(c_ext, axis=0), axis=1))]
            sa, sb = chord[kidx[:-1]], chord[kidx[1:]]
            dctrl = np.empty(len(ctrl))
            dctrl[0::3] = d_ext[kidx]
            dctrl[1::3] = np.interp(sa + (sb - sa) / 3, chord, d_ext)
            dctrl[2::3] = np.interp(sa + 2 * (sb - sa) / 3, chord, d_ext)
            knots = kidx[:-1] if closed else kidx
        rgb = s.material_color[None, :3] * (1 - s.vertex_color[:, 3:4]) + s.vertex_color[:, :3] * s.vertex_color[:, 3:4]
        half_width = float(np.clip(s.radius.mean() * rscale * scale, MIN_HALF_WIDTH, max(width, height)))
        paths.append(
            {
                "points": ctrl.tolist(),
                "closed": bool(closed),
                "half_width": half_width,
                "color": _linear_to_srgb(rgb.mean(0)).tolist(),
                "opacity": float(np.clip(s.opacity.mean() * s.material_color[3], 0.0, 1.0)),
            }
        )
        metas.append(
            {
                "source_index": int(src),
                "curve_type": s.curve_type,
                "cyclic": s.cyclic,
                "material_index": s.material_index,
                "half_width": half_width,
                "radius": s.radius.tolist(),
                "opacity": s.opacity.tolist(),
                "vertex_color": s.vertex_color.tolist(),
                "knot_source_index": np.asarray(knots, dtype=np.float64).tolist(),
            }
        )
        depths.append(dctrl)

    out_mapping = CanvasMapping(m, width, height, scale=scale, offset=offset, radius_scale=rscale, depths=depths)
    return {
        "schema": SKETCH_SCHEMA,
        "version": SKETCH_VERSION,
        "width": width,
        "height": height,
        "paths": paths,
        "frames": None,
        "metadata": {"source": "grease_pencil", MAPPING_KEY: out_mapping.to_dict(), STROKES_KEY: metas},
    }


# ----------------------------------------------------------------------------- write-back plan
@dataclass
class StrokePlan:
    """One Bézier stroke of an output keyframe (views into its FramePlan's arrays)."""

    positions: np.ndarray  # (K, 3) layer-local
    handle_left: np.ndarray  # (K, 3)
    handle_right: np.ndarray  # (K, 3)
    radius: np.ndarray  # (K,)
    opacity: np.ndarray  # (K,)
    vertex_color: np.ndarray  # (K, 4)
    material_index: int
    cyclic: bool
    source_index: int
    curve_type: str = "BEZIER"


@dataclass
class FramePlan:
    """All strokes of one output keyframe as flat arrays ready for `foreach_set`.

    Point arrays are concatenated over strokes (stroke i = points offsets[i]:offsets[i+1]);
    `add_strokes(sizes.tolist())`, `set_types('BEZIER')`, then write each array. The
    per-point attributes are shared between the frames of one plan (do not modify them).
    """

    frame_index: int
    sizes: np.ndarray  # (S,) points per stroke
    positions: np.ndarray  # (P, 3)
    handle_left: np.ndarray  # (P, 3)
    handle_right: np.ndarray  # (P, 3)
    radius: np.ndarray  # (P,)
    opacity: np.ndarray  # (P,)
    vertex_color: np.ndarray  # (P, 4)
    material_index: np.ndarray  # (S,)
    cyclic: np.ndarray  # (S,) bool
    source_index: np.ndarray  # (S,) index of the source stroke in its drawing
    curve_type: str = "BEZIER"

    @property
    def offsets(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.sizes)].astype(np.int64)

    @property
    def curve_type_codes(self) -> np.ndarray:
        return np.full(len(self.sizes), CURVE_TYPES[self.curve_type], np.int8)

    @property
    def handle_types(self) -> np.ndarray:
        """FREE (0) for every point, for `handle_type_left` and `handle_type_right`."""
        return np.full(len(self.positions), HANDLE_TYPE_FREE, np.int8)

    def stroke(self, i: int) -> StrokePlan:
        a, b = self.offsets[i], self.offsets[i + 1]
        return StrokePlan(
            self.positions[a:b], self.handle_left[a:b], self.handle_right[a:b], self.radius[a:b],
            self.opacity[a:b], self.vertex_color[a:b], int(self.material_index[i]), bool(self.cyclic[i]),
            int(self.source_index[i]), self.curve_type,
        )

    @property
    def strokes(self) -> list[StrokePlan]:
        return [self.stroke(i) for i in range(len(self.sizes))]


def _resample(values: np.ndarray, src_off: np.ndarray, src_len: np.ndarray, stroke_of_knot: np.ndarray, pos: np.ndarray):
    """Linear interpolation of concatenated per-point values at fractional in-stroke positions."""
    pos = np.clip(pos, 0.0, src_len[stroke_of_knot] - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, src_len[stroke_of_knot] - 1)
    f = pos - i0
    g0, g1 = src_off[stroke_of_knot] + i0, src_off[stroke_of_knot] + i1
    if values.ndim == 2:
        f = f[:, None]
    return values[g0] * (1 - f) + values[g1] * f


def plan_keyframes(sketch: Any, mapping: CanvasMapping | None = None) -> list[FramePlan]:
    """A Sketch dict (with `frames`, or its static points as one frame) → one FramePlan per frame.

    `mapping` defaults to `metadata["blender_mapping"]`; the per-stroke source attributes
    come from `metadata["blender_strokes"]` (both written by `strokes_to_sketch_dict`).
    """
    data = sketch.to_dict() if hasattr(sketch, "to_dict") else sketch
    meta = data.get("metadata") or {}
    if mapping is None:
        if MAPPING_KEY not in meta:
            raise ValueError("the sketch has no Blender canvas mapping: it was not imported from Grease Pencil")
        mapping = CanvasMapping.from_dict(meta[MAPPING_KEY])
    smeta = meta.get(STROKES_KEY)
    paths = data["paths"]
    if smeta is None or len(smeta) != len(paths):
        raise ValueError("the sketch's Blender stroke data do not match its paths: re-import the layer")
    if len(mapping.depths) != len(paths):
        raise ValueError(f"the canvas mapping has depths for {len(mapping.depths)} paths, the sketch has {len(paths)}")

    points = [np.asarray(p["points"], dtype=np.float64).reshape(-1, 2) for p in paths]
    counts = np.array([len(p) for p in points], dtype=np.int64)
    if ((counts < 4) | ((counts - 1) % 3 != 0)).any():
        raise ValueError("every path needs 3k+1 control points (k ≥ 1)")
    for i, (d, c) in enumerate(zip(mapping.depths, counts)):
        if len(d) != c:
            raise ValueError(f"path {i} has {c} control points but the mapping has {len(d)} depths")
    offsets = np.r_[0, np.cumsum(counts)]
    total = int(offsets[-1])
    frames = data.get("frames")
    frames = np.concatenate(points)[None] if frames is None else np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[1:] != (total, 2):
        raise ValueError(f"frames have shape {frames.shape}; expected (F, {total}, 2)")

    # Index arrays (over the flat control points) of each knot and its two handles.
    closed = np.array([bool(p.get("closed", False)) for p in paths])
    nseg = (counts - 1) // 3
    nknots = np.where(closed, nseg, nseg + 1)
    stroke_of_knot = np.repeat(np.arange(len(paths)), nknots)
    kstart = np.r_[0, np.cumsum(nknots)][:-1]
    j = np.arange(int(nknots.sum())) - kstart[stroke_of_knot]  # knot index within its stroke
    base = offsets[:-1][stroke_of_knot]
    last = j == nknots[stroke_of_knot] - 1
    first = j == 0
    open_k = ~closed[stroke_of_knot]
    knot_idx = base + 3 * j
    hr_idx = np.where(last & open_k, knot_idx - 1, knot_idx + 1)  # open end: mirror the left handle
    hl_idx = np.where(first, np.where(open_k, knot_idx + 1, base + 3 * nseg[stroke_of_knot] - 1), knot_idx - 1)
    mirror_l = first & open_k
    mirror_r = last & open_k

    depth = np.concatenate(mapping.depths)
    local = canvas_to_local(frames, depth[None, :], mapping)  # (F, T, 3)
    pos = local[:, knot_idx]
    hr = np.where(mirror_r[None, :, None], 2 * pos - local[:, hr_idx], local[:, hr_idx])
    hl = np.where(mirror_l[None, :, None], 2 * pos - local[:, hl_idx], local[:, hl_idx])

    # Per-knot source attributes, resampled at each knot's position in its source stroke.
    src_len = np.array([len(m["radius"]) for m in smeta], dtype=np.int64)
    if (src_len < 1).any():
        raise ValueError("a Blender source stroke has no points")
    src_off = np.r_[0, np.cumsum(src_len)][:-1]
    ksi = [np.asarray(m["knot_source_index"], dtype=np.float64) for m in smeta]
    if any(len(k) != n for k, n in zip(ksi, nknots)):
        raise ValueError("the sketch's Blender stroke data do not match its paths: re-import the layer")
    kpos = np.concatenate(ksi)
    radius_src = np.concatenate([np.asarray(m["radius"], dtype=np.float64) for m in smeta])
    opacity_src = np.concatenate([np.asarray(m["opacity"], dtype=np.float64) for m in smeta])
    color_src = np.concatenate([np.asarray(m["vertex_color"], dtype=np.float64).reshape(-1, 4) for m in smeta])
    width_ratio = np.array([float(p.get("half_width", m["half_width"])) / float(m["half_width"]) for p, m in zip(paths, smeta)])
    radius = _resample(radius_src, src_off, src_len, stroke_of_knot, kpos) * width_ratio[stroke_of_knot]
    opacity = _resample(opacity_src, src_off, src_len, stroke_of_knot, kpos)
    vcol = _resample(color_src, src_off, src_len, stroke_of_knot, kpos)
    material = np.array([int(m["material_index"]) for m in smeta], dtype=np.int32)
    source = np.array([int(m.get("source_index", i)) for i, m in enumerate(smeta)], dtype=np.int64)
    sizes = nknots.astype(np.int32)

    return [
        FramePlan(
            frame_index=f,
            sizes=sizes,
            positions=pos[f],
            handle_left=hl[f],
            handle_right=hr[f],
            radius=radius,
            opacity=opacity,
            vertex_color=vcol,
            material_index=material,
            cyclic=closed.copy(),
            source_index=source,
        )
        for f in range(frames.shape[0])
    ]


def plan_to_cubic_points(plan: FramePlan, mapping: CanvasMapping) -> list[np.ndarray]:
    """The inverse of the plan's layout: per stroke, (3k+1, 2) canvas control points."""
    out = []
    for s in plan.strokes:
        local = _interleave_bezier(s.positions, s.handle_left, s.handle_right, s.cyclic)
        out.append(local_to_canvas(local, mapping))
    return out


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, np.power((c + 0.055) / 1.055, 2.4))


def plan_new_strokes(sketch: Any, height_units: float = 2.0) -> tuple[list[FramePlan], CanvasMapping]:
    """A Sketch dict not made from Grease Pencil (an imported SVG) → keyframe plans for a new object.

    The canvas is centred on the object's origin in its local X–Z plane, `height_units`
    Blender units tall; each path becomes a Bézier stroke with its width as radius, its
    colour as vertex colour (alpha 1: the colour is the path's own) and its opacity.
    """
    data = sketch.to_dict() if hasattr(sketch, "to_dict") else sketch
    width, height = int(data["width"]), int(data["height"])
    if not height_units > 0:
        raise ValueError(f"height_units must be positive, not {height_units}")
    scale = height / float(height_units)  # px per unit
    paths = data["paths"]
    depths, metas = [], []
    for i, p in enumerate(paths):
        n = len(p["points"])
        nknots = (n - 1) // 3 + (0 if p.get("closed") else 1)
        rgb = _srgb_to_linear(np.asarray(p.get("color", (0, 0, 0)), dtype=np.float64)[:3])
        depths.append(np.zeros(n))
        metas.append(
            {
                "source_index": i,
                "curve_type": "BEZIER",
                "cyclic": bool(p.get("closed", False)),
                "material_index": 0,
                "half_width": float(p["half_width"]),
                "radius": [float(p["half_width"]) / scale] * nknots,
                "opacity": [float(p.get("opacity", 1.0))] * nknots,
                "vertex_color": [[*rgb.tolist(), 1.0]] * nknots,
                "knot_source_index": list(map(float, range(nknots))),
            }
        )
    mapping = CanvasMapping(np.eye(4), width, height, scale=scale, offset=(width / 2, height / 2), radius_scale=1.0, depths=depths)
    with_meta = {**data, "metadata": {**(data.get("metadata") or {}), STROKES_KEY: metas}}
    return plan_keyframes(with_meta, mapping), mapping
