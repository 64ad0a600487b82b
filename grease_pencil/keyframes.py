"""An animated `Sketch` (a job's result) → Grease Pencil keyframe plans: flat arrays ready for `foreach_set`."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..engine.vector.sketch import Sketch
from .mapping import MAPPING_KEY, CanvasMapping, canvas_to_local, local_to_canvas
from .strokes import CAP_CODES, CURVE_TYPE_NAMES, CURVE_TYPES, STROKES_KEY, _interleave_bezier

HANDLE_TYPE_FREE = 0  # GP v3 `handle_type_left/right` code for FREE handles


# ----------------------------------------------------------------------------- write-back plan
FORMS = ("points", "bezier")  # on the source's own points (a drawn stroke stays as drawn), or as editable Béziers
DEFAULT_FORM = "points"


@dataclass
class StrokePlan:
    """One stroke of an output keyframe (views into its FramePlan's arrays)."""

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
    `add_strokes(sizes.tolist())`, `set_types('BEZIER', indices=…)` for the Bézier strokes,
    then write each array. The per-point attributes are shared between the frames of one plan
    (do not modify them).
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
    curve_type_codes: np.ndarray  # (S,) GP `curve_type`: 1 POLY (source points), 2 BEZIER
    curve_attributes: dict[str, np.ndarray]  # (S, …) per stroke: start_cap, end_cap, and what the source carried
    layers: list[str | None]  # (S,) the source layer of each stroke

    @property
    def offsets(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.sizes)].astype(np.int64)

    @property
    def curve_type(self) -> str:
        """BEZIER or POLY when every stroke has that type, else MIXED."""
        codes = set(self.curve_type_codes.tolist())
        return CURVE_TYPE_NAMES[codes.pop()] if len(codes) == 1 else "MIXED"

    @property
    def handle_types(self) -> np.ndarray:
        """FREE (0) for every point, for `handle_type_left` and `handle_type_right`."""
        return np.full(len(self.positions), HANDLE_TYPE_FREE, np.int8)

    def stroke(self, i: int) -> StrokePlan:
        a, b = self.offsets[i], self.offsets[i + 1]
        return StrokePlan(
            self.positions[a:b], self.handle_left[a:b], self.handle_right[a:b], self.radius[a:b],
            self.opacity[a:b], self.vertex_color[a:b], int(self.material_index[i]), bool(self.cyclic[i]),
            int(self.source_index[i]), CURVE_TYPE_NAMES[int(self.curve_type_codes[i])],
        )  # fmt: skip

    @property
    def strokes(self) -> list[StrokePlan]:
        return [self.stroke(i) for i in range(len(self.sizes))]

    def of_layer(self, layer: str | None) -> "FramePlan":
        """The strokes that came from one source layer."""
        keep = np.array([name == layer for name in self.layers], dtype=bool)
        points = np.repeat(keep, self.sizes)
        return FramePlan(
            self.frame_index, self.sizes[keep], self.positions[points], self.handle_left[points], self.handle_right[points],
            self.radius[points], self.opacity[points], self.vertex_color[points], self.material_index[keep], self.cyclic[keep],
            self.source_index[keep], self.curve_type_codes[keep], {k: v[keep] for k, v in self.curve_attributes.items()},
            [name for name, k in zip(self.layers, keep) if k],
        )  # fmt: skip


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


def curve_points(control: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(F, N, 2) points of chains of cubics `control` (F, 3k+1, 2) at curve parameters (segment + u) `params` (N,)."""
    segments = (control.shape[1] - 1) // 3
    segment = np.clip(np.floor(params).astype(np.int64), 0, segments - 1)
    u = (params - segment)[None, :, None]
    p = [control[:, 3 * segment + i] for i in range(4)]
    s = 1.0 - u
    return s * s * s * p[0] + 3 * s * s * u * p[1] + 3 * s * u * u * p[2] + u * u * u * p[3]


def plan_keyframes(sketch: Sketch, mapping: CanvasMapping | None = None, form: str = DEFAULT_FORM) -> list[FramePlan]:
    """A `Sketch` (with `frames`, or its static points as one frame) → one FramePlan per frame.

    `form` "bezier" writes every stroke as a Bézier curve (fitted strokes with their fitted
    knots, their radius, opacity and colour at the knots); "points" writes a fitted (hand-drawn)
    stroke on its own source points, each moved by the animated curve's displacement at the
    point's parameter, with its own radius, opacity and colour: exactly the drawn stroke. A
    Bézier source stroke keeps its own knots and handles in both forms. Caps, materials and the
    source's other per-stroke attributes are kept. `mapping` defaults to
    `metadata["blender_mapping"]`; the per-stroke source data come from `metadata["blender_strokes"]`.
    """
    if form not in FORMS:
        raise ValueError(f"unknown output form {form!r}: use {' or '.join(FORMS)}")
    meta = sketch.metadata or {}
    if mapping is None:
        if MAPPING_KEY not in meta:
            raise ValueError("the sketch has no Blender canvas mapping: it was not imported from Grease Pencil")
        mapping = CanvasMapping.from_dict(meta[MAPPING_KEY])
    smeta = meta.get(STROKES_KEY)
    paths = sketch.paths
    if smeta is None or len(smeta) != len(paths):
        raise ValueError("the sketch's Blender stroke data do not match its paths: re-import the layer")
    if len(mapping.depths) != len(paths):
        raise ValueError(f"the canvas mapping has depths for {len(mapping.depths)} paths, the sketch has {len(paths)}")

    points = [p.points for p in paths]
    counts = np.array([len(p) for p in points], dtype=np.int64)
    if ((counts < 4) | ((counts - 1) % 3 != 0)).any():
        raise ValueError("every path needs 3k+1 control points (k ≥ 1)")
    for i, (d, c) in enumerate(zip(mapping.depths, counts)):
        if len(d) != c:
            raise ValueError(f"path {i} has {c} control points but the mapping has {len(d)} depths")
    offsets = np.r_[0, np.cumsum(counts)]
    total = int(offsets[-1])
    rest = np.concatenate(points)
    frames = rest[None] if sketch.frames is None else np.asarray(sketch.frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[1:] != (total, 2):
        raise ValueError(f"frames have shape {frames.shape}; expected (F, {total}, 2)")

    bezier = _bezier_form(paths, smeta, mapping, frames, counts, offsets)
    num_frames = frames.shape[0]
    blocks = []  # per stroke: (F, n, 3) positions and handles, per-point attributes, curve type
    for i, (path, m) in enumerate(zip(paths, smeta)):
        control = slice(offsets[i], offsets[i + 1])
        if m.get("curve_type") == "BEZIER" and "handle_left" in m and "positions" in m:
            blocks.append(_bezier_source_block(path, m, mapping, frames[:, control], rest[control], bezier[i]))
        elif form == "points" and "params" in m and "positions" in m:
            blocks.append(_source_points_block(path, m, mapping, frames[:, control], rest[control]))
        else:
            blocks.append(bezier[i])
    sizes = np.array([b["positions"].shape[1] for b in blocks], dtype=np.int32)
    stack = {name: np.concatenate([b[name] for b in blocks], axis=1) for name in ("positions", "handle_left", "handle_right")}
    point_attrs = {name: np.concatenate([b[name] for b in blocks]) for name in ("radius", "opacity", "vertex_color")}
    codes = np.array([b["curve_type"] for b in blocks], dtype=np.int8)
    closed = np.array([p.closed for p in paths])
    material = np.array([int(m["material_index"]) for m in smeta], dtype=np.int32)
    source = np.array([int(m.get("source_index", i)) for i, m in enumerate(smeta)], dtype=np.int64)
    attributes = curve_attribute_arrays(smeta)
    layers = [m.get("layer") for m in smeta]
    return [
        FramePlan(
            f, sizes, stack["positions"][f], stack["handle_left"][f], stack["handle_right"][f], point_attrs["radius"], point_attrs["opacity"],
            point_attrs["vertex_color"], material, closed.copy(), source, codes, attributes, layers,
        )  # fmt: skip
        for f in range(num_frames)
    ]


def curve_attribute_arrays(smeta: list[dict]) -> dict[str, np.ndarray]:
    """Per-stroke attributes to write back: the caps, and what the sources carried (NaN where a
    stroke's drawing had no such attribute: Grease Pencil keeps attributes per drawing, i.e. per layer)."""
    out = {
        "start_cap": np.array([int(m.get("start_cap", 0)) for m in smeta], dtype=np.int8),
        "end_cap": np.array([int(m.get("end_cap", 0)) for m in smeta], dtype=np.int8),
    }
    carried = [m.get("curve_attributes") or {} for m in smeta]
    for name in sorted(set().union(*carried)):
        width = max(np.size(c[name]) for c in carried if name in c)
        out[name] = np.array([np.broadcast_to(c.get(name, np.nan), (width,)) for c in carried], dtype=np.float64).reshape(len(smeta), *(() if width == 1 else (width,)))
    return out


def _local_delta(animated: np.ndarray, rest: np.ndarray, mapping: CanvasMapping) -> np.ndarray:
    """Layer-local displacement (F, N, 3) of canvas points moved from `rest` (N, 2) to `animated` (F, N, 2);
    depth does not change. An unmoved point moves by exactly 0."""
    return canvas_to_local(animated, 0.0, mapping) - canvas_to_local(rest[None], 0.0, mapping)


def _source_points_block(path, m: dict, mapping: CanvasMapping, control: np.ndarray, rest: np.ndarray) -> dict:
    """A fitted stroke on its own source points: each point + the curve's displacement at its parameter."""
    params = np.asarray(m["params"], dtype=np.float64)
    source = np.asarray(m["positions"], dtype=np.float64).reshape(-1, 3)
    moved = source[None] + _local_delta(curve_points(control, params), curve_points(rest[None], params)[0], mapping)
    width_ratio = path.half_width / float(m["half_width"]) if float(m["half_width"]) > 0 else 1.0
    return {
        "positions": moved, "handle_left": moved, "handle_right": moved,
        "radius": np.asarray(m["radius"], dtype=np.float64) * width_ratio,
        "opacity": np.asarray(m["opacity"], dtype=np.float64),
        "vertex_color": np.asarray(m["vertex_color"], dtype=np.float64).reshape(-1, 4),
        "curve_type": CURVE_TYPES["POLY"],
    }  # fmt: skip


def _bezier_source_block(path, m: dict, mapping: CanvasMapping, control: np.ndarray, rest: np.ndarray, fallback: dict) -> dict:
    """A Bézier source stroke: its own knots and handles, each moved with its control point (outer
    handles of an open stroke with their knot)."""
    knots = len(m["positions"])
    if knots == 1 or len(np.asarray(m["handle_left"])) != knots:
        return fallback
    closed = path.closed
    knot_idx = 3 * np.arange(knots)
    knot_idx[knot_idx >= len(rest)] = len(rest) - 1
    after = knot_idx + 1
    before = knot_idx - 1
    if closed:
        before[0] = len(rest) - 2
    delta = _local_delta(control, rest, mapping)
    source = {name: np.asarray(m[name], dtype=np.float64).reshape(-1, 3) for name in ("positions", "handle_left", "handle_right")}
    right_idx = after.copy() if closed else np.where(np.arange(knots) == knots - 1, knot_idx, after)
    left_idx = before.copy() if closed else np.where(np.arange(knots) == 0, knot_idx, before)
    return {
        **fallback,
        "positions": source["positions"][None] + delta[:, knot_idx],
        "handle_right": source["handle_right"][None] + delta[:, right_idx],
        "handle_left": source["handle_left"][None] + delta[:, left_idx],
    }


def _bezier_form(paths, smeta, mapping: CanvasMapping, frames: np.ndarray, counts: np.ndarray, offsets: np.ndarray) -> list[dict]:
    """Every stroke as a Bézier curve from the animated control points (vectorised over strokes)."""
    closed = np.array([p.closed for p in paths])
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
    width_ratio = np.array([p.half_width / float(m["half_width"]) if float(m["half_width"]) > 0 else 1.0 for p, m in zip(paths, smeta)])
    radius = _resample(radius_src, src_off, src_len, stroke_of_knot, kpos) * width_ratio[stroke_of_knot]
    opacity = _resample(opacity_src, src_off, src_len, stroke_of_knot, kpos)
    vcol = _resample(color_src, src_off, src_len, stroke_of_knot, kpos)
    bounds = np.r_[0, np.cumsum(nknots)]
    return [
        {
            "positions": pos[:, a:b], "handle_left": hl[:, a:b], "handle_right": hr[:, a:b], "radius": radius[a:b],
            "opacity": opacity[a:b], "vertex_color": vcol[a:b], "curve_type": CURVE_TYPES["BEZIER"],
        }  # fmt: skip
        for a, b in zip(bounds[:-1], bounds[1:])
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


def plan_new_strokes(sketch: Sketch, height_units: float = 2.0) -> tuple[list[FramePlan], CanvasMapping]:
    """A `Sketch` not made from Grease Pencil (an imported SVG) → keyframe plans for a new object.

    The canvas is centred on the object's origin in its local X–Z plane, `height_units`
    Blender units tall; each path becomes a Bézier stroke with its width as radius, its
    colour as vertex colour (alpha 1: the colour is the path's own) and its opacity.
    """
    width, height = sketch.width, sketch.height
    if not height_units > 0:
        raise ValueError(f"height_units must be positive, not {height_units}")
    scale = height / float(height_units)  # px per unit
    depths, metas = [], []
    for i, p in enumerate(sketch.paths):
        nknots = p.num_segments + (0 if p.closed else 1)
        rgb = _srgb_to_linear(np.asarray(p.color, dtype=np.float64)[:3])
        depths.append(np.zeros(len(p.points)))
        metas.append(
            {
                "source_index": i,
                "curve_type": "BEZIER",
                "cyclic": p.closed,
                "material_index": 0,
                "half_width": p.half_width,
                "radius": [p.half_width / scale] * nknots,
                "opacity": [p.opacity] * nknots,
                "vertex_color": [[*rgb.tolist(), 1.0]] * nknots,
                "knot_source_index": list(map(float, range(nknots))),
                "start_cap": CAP_CODES[p.start_cap],
                "end_cap": CAP_CODES[p.end_cap],
            }
        )
    mapping = CanvasMapping(np.eye(4), width, height, scale=scale, offset=(width / 2, height / 2), radius_scale=1.0, depths=depths)
    with_meta = replace(sketch, frames=None, metadata={**sketch.metadata, STROKES_KEY: metas})
    return plan_keyframes(with_meta, mapping), mapping
