"""Grease Pencil strokes (as bulk-read arrays) → the engine's `Sketch`, with the mapping and source attributes kept for write-back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..engine.vector.sketch import Path, Sketch
from .fitting import PROFILE_TOLERANCE, _cubic_extrema, _fit_polyline
from .mapping import MAPPING_KEY, CanvasMapping, _as_matrix, _canvas_size, _framing, local_to_world, world_to_canvas

STROKES_KEY = "blender_strokes"
CURVE_TYPES = {"CATMULL_ROM": 0, "POLY": 1, "BEZIER": 2, "NURBS": 3}  # GP v3 `curve_type` codes
CURVE_TYPE_NAMES = {v: k for k, v in CURVE_TYPES.items()}
DEFAULT_MARGIN = 0.1  # empty border around the strokes on the canvas, a fraction of its short side
DEFAULT_TOLERANCE_PX = 0.5  # how far a fitted Bézier may stray from a hand-drawn stroke, in canvas pixels


# ----------------------------------------------------------------------------- strokes
CAP_NAMES = {0: "round", 1: "flat"}  # GP v3 `start_cap` / `end_cap` codes
CAP_CODES = {name: code for code, name in CAP_NAMES.items()}
FILL_OUTLINE_HALF_WIDTH = 1.0  # px: a fill-only stroke takes part as its outline, this wide (like an SVG fill)
CARRIED_CURVE_ATTRIBUTES = ("fill_color", "fill_opacity", "aspect_ratio", "hardness")  # kept per stroke on write-back


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
    """One Grease Pencil stroke as bulk-read arrays (positions in the object's local space).

    Defaults are Blender's values for absent attributes (radius 0.01, opacity 1, vertex
    colour 0 = material colour only, material 0, round caps). CATMULL_ROM and NURBS strokes
    are treated as POLY: their points are fitted. A `fill_only` stroke (its material draws a
    fill and no line) takes part as its outline, in the fill's colour, so the fill follows the
    lines it belongs with.
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
    material_color: Any = (0.0, 0.0, 0.0, 1.0)  # linear RGBA of the material's stroke colour (its fill's, for a fill-only stroke)
    source_index: int | None = None
    start_cap: int = 0  # 0 round, 1 flat
    end_cap: int = 0
    fill_only: bool = False
    pinned: bool = False
    layer: str | None = None  # the Grease Pencil layer it comes from
    curve_attributes: dict[str, Any] = field(default_factory=dict)  # other per-stroke attributes, written back as read

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
        self.start_cap, self.end_cap = int(self.start_cap), int(self.end_cap)


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
    start_cap: Any = None,
    end_cap: Any = None,
    pinned: Any = None,
    material_fill_only: Any = None,
    layer: str | None = None,
    curve_attributes: dict[str, Any] | None = None,
) -> list[StrokeData]:
    """Split a drawing's flat attribute arrays (as `foreach_get` reads them) into strokes.

    `offsets` is `drawing.curve_offsets` (C+1 values); point arrays have one row per point,
    curve arrays one per stroke; None means the attribute is absent (Blender's default).
    `material_colors` (optional, (num_materials, 4) linear RGBA) gives each stroke its
    material's colour; `material_fill_only` marks materials that draw a fill and no line.
    Empty strokes are skipped.
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

    def per_curve(values: Any, dtype: Any, default: Any = 0) -> np.ndarray:
        return np.full(c, default, dtype) if values is None else np.asarray(values).reshape(c).astype(dtype)

    ctype, cyc, mat = per_curve(curve_type, np.int64), per_curve(cyclic, bool, False), per_curve(material_index, np.int64)
    caps = per_curve(start_cap, np.int64), per_curve(end_cap, np.int64)
    pins = per_curve(pinned, bool, False)
    mcol = None if material_colors is None else np.asarray(material_colors, dtype=np.float64).reshape(-1, 4)
    fill_only = np.zeros(0, bool) if material_fill_only is None else np.asarray(material_fill_only, dtype=bool).reshape(-1)
    extra = {name: np.asarray(values) for name, values in (curve_attributes or {}).items() if values is not None}
    out = []
    for i in range(c):
        a, b = int(off[i]), int(off[i + 1])
        if b <= a:
            continue
        known = 0 <= mat[i] < len(mcol) if mcol is not None else False
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
                material_color=mcol[mat[i]] if known else (0, 0, 0, 1),
                source_index=i,
                start_cap=int(caps[0][i]),
                end_cap=int(caps[1][i]),
                fill_only=bool(0 <= mat[i] < len(fill_only) and fill_only[mat[i]]),
                pinned=bool(pins[i]),
                layer=layer,
                curve_attributes={name: values[i].tolist() for name, values in extra.items()},
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


# ----------------------------------------------------------------------------- line weight along the stroke
def _source_values(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per-point values at fractional source indices (N wraps to 0 for a closed stroke's closing knot)."""
    n = len(values)
    extended = np.concatenate([values, values[:1]])
    position = np.clip(np.asarray(index, dtype=np.float64), 0, n)
    low = np.floor(position).astype(np.int64).clip(0, n - 1)
    frac = position - low
    return extended[low] * (1 - frac) + extended[low + 1] * frac


def control_point_widths(knot_widths: np.ndarray, params: np.ndarray, widths: np.ndarray, segments: int) -> np.ndarray:
    """(3k+1,) half-widths: the knots' own, and each segment's two handle widths fitted (least squares)
    to the drawn widths at its points, so the Bernstein-interpolated profile follows the drawing."""
    out = np.empty(3 * segments + 1)
    out[0::3] = knot_widths
    for j in range(segments):
        w0, w3 = knot_widths[j], knot_widths[j + 1]
        mine = (params >= j) & (params <= j + 1)
        u = np.clip(params[mine] - j, 0.0, 1.0)
        b = np.stack([(1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u**2, u**3], axis=-1)
        w1, w2 = (2 * w0 + w3) / 3, (w0 + 2 * w3) / 3  # a linear profile, when the points say too little
        if mine.sum() >= 3:
            rhs = widths[mine] - b[:, 0] * w0 - b[:, 3] * w3
            solution, *_ = np.linalg.lstsq(b[:, 1:3], rhs, rcond=None)
            w1, w2 = (float(v) for v in np.clip(solution, 0.0, None))
        out[3 * j + 1], out[3 * j + 2] = w1, w2
    return out


# ----------------------------------------------------------------------------- strokes → Sketch
def strokes_to_sketch(
    strokes: Iterable[StrokeData],
    matrix_world: Any,
    canvas: int | Sequence[int] = 256,
    margin: float = DEFAULT_MARGIN,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    *,
    max_segments: int = 256,
    radius_scale: float | None = None,
    mapping: CanvasMapping | None = None,
    corner_angle_deg: float = 60.0,
    profile_tolerance: float = PROFILE_TOLERANCE,
) -> Sketch:
    """Grease Pencil strokes → a validated `Sketch` with the mapping and source attributes in its metadata.

    BEZIER strokes convert exactly; other strokes are fitted in canvas pixels with
    `tolerance_px`, then get extra knots (on the curve) wherever Grease Pencil's linear radius
    between knots would stray from the drawn radius by more than `profile_tolerance`. Every
    path has one half-width per control point (the drawn radius at the knots, the handles'
    fitted to the profile between them), its caps, and `pinned`; a fill-only stroke is its
    outline. The metadata keeps, per stroke, every source point's attributes, its position
    and its parameter on the curve, so the result can be written back either as Bézier
    strokes or on the source's own points (`keyframes.plan_keyframes`). `radius_scale`
    defaults to Blender's scale of `matrix_world` (the object's: positions are object-local);
    `mapping` reuses an existing framing.
    """
    m = _as_matrix(matrix_world)
    strokes = [s if isinstance(s, StrokeData) else StrokeData(**s) for s in strokes]
    items = [(i if s.source_index is None else s.source_index, s) for i, s in enumerate(strokes) if len(s.positions)]
    if not items:
        raise ValueError("the layers have no strokes at this frame: draw or pick a layer with strokes")

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
        offset = mapping.offset  # unit canvas = (u, −v); the reused framing applies its own offset to that
    rscale = unit.radius_scale

    paths, metas, depths = [], [], []
    for (src, s), (c0, depth, closed) in zip(items, projected):
        c = scale * c0 + offset
        n = len(s.positions)
        pixel_radius = s.radius * rscale * scale
        if s.curve_type == "BEZIER":
            if n == 1:
                ctrl, dctrl, knots, closed = np.repeat(c, 4, 0), np.repeat(depth, 4), np.array([0.0, 0.0]), False
            else:
                ctrl, dctrl, knots = c, depth, np.arange(n + (1 if closed else 0), dtype=np.float64)
            params = np.arange(n, dtype=np.float64) if n > 1 else np.zeros(1)
        else:
            profile = None if s.fill_only else pixel_radius  # a fill's outline has no line weight to keep
            ctrl, kidx, params = _fit_polyline(c, tolerance_px, max_segments, closed, corner_angle_deg, profile, profile_tolerance)
            closed = closed and len(ctrl) > 4 and kidx[-1] == n
            dctrl = _control_depths(c, depth, np.asarray(kidx, dtype=np.float64), len(ctrl))
            knots = np.asarray(kidx, dtype=np.float64)
        segments = (len(ctrl) - 1) // 3
        knot_widths = _source_values(pixel_radius, knots)
        widths = control_point_widths(knot_widths, params, pixel_radius, segments) if s.curve_type != "BEZIER" else _linear_widths(knot_widths, segments)
        widths = np.clip(widths, 0.0, max(width, height))
        rgb = s.material_color[None, :3] * (1 - s.vertex_color[:, 3:4]) + s.vertex_color[:, :3] * s.vertex_color[:, 3:4]
        uniform = s.fill_only or np.allclose(widths, widths[0])
        half_width = FILL_OUTLINE_HALF_WIDTH if s.fill_only else float(np.clip(pixel_radius.mean(), 0.0, max(width, height)))
        paths.append(
            Path(
                points=ctrl,
                closed=bool(closed),
                half_width=half_width if s.fill_only or not uniform else float(widths[0]),
                color=tuple(_linear_to_srgb(rgb.mean(0)).tolist()),
                opacity=float(np.clip(s.opacity.mean() * s.material_color[3], 0.0, 1.0)),
                half_widths=None if uniform else widths,
                start_cap=CAP_NAMES.get(s.start_cap, "round"),
                end_cap=CAP_NAMES.get(s.end_cap, "round"),
                pinned=s.pinned,
            )
        )
        knot_index = knots[:-1] if closed else knots
        meta = {
            "source_index": int(src),
            "layer": s.layer,
            "curve_type": s.curve_type,
            "cyclic": s.cyclic,
            "material_index": s.material_index,
            "half_width": paths[-1].half_width,
            "radius": s.radius.tolist(),
            "opacity": s.opacity.tolist(),
            "vertex_color": s.vertex_color.tolist(),
            "knot_source_index": np.asarray(knot_index, dtype=np.float64).tolist(),
            "params": np.asarray(params, dtype=np.float64).tolist(),  # each source point's place on the curve
            "positions": s.positions.tolist(),  # object-local: where "original points" write-back starts from
            "start_cap": s.start_cap,
            "end_cap": s.end_cap,
            "fill_only": s.fill_only,
            "pinned": s.pinned,
            "curve_attributes": s.curve_attributes,
        }
        if s.curve_type == "BEZIER":
            meta["handle_left"], meta["handle_right"] = s.handle_left.tolist(), s.handle_right.tolist()
        metas.append(meta)
        depths.append(dctrl)

    out_mapping = CanvasMapping(m, width, height, scale=scale, offset=offset, radius_scale=rscale, depths=depths)
    metadata = {"source": "grease_pencil", MAPPING_KEY: out_mapping.to_dict(), STROKES_KEY: metas}
    return Sketch(paths=paths, width=width, height=height, metadata=metadata).validate()


def _linear_widths(knot_widths: np.ndarray, segments: int) -> np.ndarray:
    """Handle widths on the straight line between their knots: Grease Pencil's own linear radius."""
    out = np.empty(3 * segments + 1)
    out[0::3] = knot_widths
    out[1::3] = (2 * knot_widths[:-1] + knot_widths[1:]) / 3
    out[2::3] = (knot_widths[:-1] + 2 * knot_widths[1:]) / 3
    return out


def _control_depths(canvas_points: np.ndarray, depth: np.ndarray, knots: np.ndarray, count: int) -> np.ndarray:
    """Each control point's depth: the knots' from their source points, the handles' along the chord."""
    c_ext = np.vstack([canvas_points, canvas_points[:1]])
    d_ext = np.r_[depth, depth[:1]]
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(c_ext, axis=0), axis=1))]
    at = np.interp(knots, np.arange(len(chord)), chord)
    sa, sb = at[:-1], at[1:]
    out = np.empty(count)
    out[0::3] = np.interp(at, chord, d_ext)
    out[1::3] = np.interp(sa + (sb - sa) / 3, chord, d_ext)
    out[2::3] = np.interp(sa + 2 * (sb - sa) / 3, chord, d_ext)
    return out
