"""The pure-numpy Grease Pencil ↔ Sketch core (grease_pencil/: mapping, fitting, strokes, keyframes), without Blender."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sketch_animator.grease_pencil import fitting, keyframes, mapping, strokes

# One namespace over the core's modules, so each test reads as before the split.
gg = SimpleNamespace(**{k: v for module in (mapping, fitting, strokes, keyframes) for k, v in vars(module).items() if not k.startswith("__")})

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers
def translation(x, y, z):
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def scaling(x, y, z):
    return np.diag([x, y, z, 1.0])


def rotation_xyz(ax, ay, az):
    """Blender's Euler 'XYZ' (degrees): R = Rz @ Ry @ Rx."""
    ax, ay, az = map(math.radians, (ax, ay, az))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rz @ ry @ rx
    return m


def parented_matrix():
    """child world = parent world @ parent inverse (at parenting time) @ child local (loc, rot, non-uniform scale)."""
    parent = translation(1.0, -2.0, 0.5) @ rotation_xyz(0, 0, 40) @ scaling(1.2, 0.7, 1.5)
    parent_at_parenting = translation(0.2, 0.1, 0.0) @ rotation_xyz(0, 0, 10)
    child = translation(0.3, 2.0, -1.0) @ rotation_xyz(15, -25, 60) @ scaling(2.0, 0.5, 3.0)
    return parent @ np.linalg.inv(parent_at_parenting) @ child


def curve_distance(points, ctrl, samples=2000):
    """Distance from each point to a (3k+1, D) cubic chain, by dense sampling (+ the sampling slack)."""
    dense = gg.bezier_points(ctrl, samples)
    slack = 0.5 * np.linalg.norm(np.diff(dense, axis=0), axis=1).max()
    d, _ = cKDTree(dense).query(points)
    return d, slack


def xz_points(xz, y=0.0):
    xz = np.asarray(xz, dtype=np.float64)
    return np.c_[xz[:, 0], np.broadcast_to(y, len(xz)), xz[:, 1]]


def sine_stroke(n=80, y=0.0, **kw):
    t = np.linspace(0, 2 * np.pi, n)
    return gg.StrokeData(positions=xz_points(np.c_[t / np.pi - 1, 0.5 * np.sin(t)], y), curve_type="POLY", **kw)


# ----------------------------------------------------------------------------- import hygiene
def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names.add(".")
            elif node.level:
                names.add("." * node.level + (node.module or ""))
            else:
                names.add((node.module or "").split(".")[0])
    return names


def test_core_imports_numpy_and_the_engine_sketch_only():
    allowed = {"__future__", "math", "dataclasses", "typing", "numpy", ".", "..engine.vector.sketch"}
    for name in ("mapping", "fitting", "strokes", "keyframes"):
        core = _imported_modules(ROOT / "grease_pencil" / f"{name}.py")
        assert core <= allowed, (name, core - allowed)
    assert "bpy" not in _imported_modules(ROOT / "grease_pencil" / "__init__.py")
    assert "bpy" not in _imported_modules(ROOT / "operators" / "__init__.py")


# ----------------------------------------------------------------------------- mapping
def test_world_canvas_are_exact_inverses():
    m = parented_matrix()
    mapping = gg.CanvasMapping(m, scale=37.5, offset=(100.0, 140.0))
    world = np.random.default_rng(0).normal(size=(50, 3)) * 3
    canvas, depth = gg.world_to_canvas(world, mapping, return_depth=True)
    assert canvas.shape == (50, 2) and depth.shape == (50,)
    np.testing.assert_allclose(gg.canvas_to_world(canvas, depth, mapping), world, atol=1e-10)
    # depth is the local Y
    np.testing.assert_allclose(depth, gg.world_to_local(world, m)[:, 1], atol=1e-12)


def test_plane_axes_and_object_scale_by_hand():
    line_x = xz_points([[0, 0], [1, 0]])
    line_z = xz_points([[0, 0], [0, 1]])
    for s in (1.0, 2.0):
        m = translation(5, 3, -2) @ scaling(s, s, s)
        mapping = gg.CanvasMapping(m, scale=10.0, offset=(50.0, 60.0))
        cx = gg.world_to_canvas(gg.local_to_world(line_x, m), mapping)
        cz = gg.world_to_canvas(gg.local_to_world(line_z, m), mapping)
        # local X → canvas +x, local Z → canvas −y; a scale-2 object draws twice as long
        np.testing.assert_allclose(cx[1] - cx[0], [10 * s, 0], atol=1e-12)
        np.testing.assert_allclose(cz[1] - cz[0], [0, -10 * s], atol=1e-12)
        np.testing.assert_allclose(cx[0], [50, 60], atol=1e-12)  # the object origin sits at the offset
    # non-uniform scale: lengths in world units along each axis
    mapping = gg.CanvasMapping(scaling(3, 1, 0.5), scale=10.0)
    c = gg.local_to_canvas(xz_points([[0, 0], [1, 0], [0, 1]]), mapping)
    assert np.linalg.norm(c[1] - c[0]) == pytest.approx(30) and np.linalg.norm(c[2] - c[0]) == pytest.approx(5)
    # the canvas follows the object's own axes: rotating the object does not turn the canvas image
    for rot in (rotation_xyz(0, 90, 0), rotation_xyz(30, -20, 75)):
        mapping = gg.CanvasMapping(rot @ scaling(2, 1, 2), scale=10.0)
        c = gg.local_to_canvas(xz_points([[0, 0], [1, 0], [0, 1]]), mapping)
        np.testing.assert_allclose(c[1:] - c[0], [[20, 0], [0, -20]], atol=1e-12)


def test_fitted_framing_is_independent_of_object_scale():
    strokes = [sine_stroke()]
    d1 = gg.strokes_to_sketch(strokes, np.eye(4))
    d2 = gg.strokes_to_sketch(strokes, scaling(2, 2, 2))
    m1, m2 = (gg.CanvasMapping.from_dict(d.metadata["blender_mapping"]) for d in (d1, d2))
    assert m2.scale == pytest.approx(m1.scale / 2)
    np.testing.assert_allclose(d1.paths[0].points, d2.paths[0].points, atol=1e-9)
    # the radius is drawn times the object scale: the same half-width in pixels
    assert d1.paths[0].half_width == pytest.approx(d2.paths[0].half_width)
    assert m2.radius_scale == pytest.approx(2.0)


def test_reused_framing_shows_object_scale():
    # with the framing of a scale-1 import reused, a scale-2 object's 1-unit line is twice as long
    line = gg.StrokeData(positions=xz_points([[0, 0], [1, 0]]), radius=0.01)
    d1 = gg.strokes_to_sketch([line], np.eye(4))
    framing = gg.CanvasMapping.from_dict(d1.metadata["blender_mapping"])
    d2 = gg.strokes_to_sketch([line], scaling(2, 2, 2), mapping=framing)
    p1, p2 = (d.paths[0].points for d in (d1, d2))
    assert np.linalg.norm(p1[-1] - p1[0]) == pytest.approx(204.8)
    assert np.linalg.norm(p2[-1] - p2[0]) == pytest.approx(2 * 204.8)
    np.testing.assert_allclose(p2[0], p1[0])  # same offset: the object origin stays put
    assert d2.paths[0].half_width == pytest.approx(2 * d1.paths[0].half_width)
    plan = gg.plan_keyframes(d2)[0]
    np.testing.assert_allclose(plan.positions, line.positions, atol=1e-12)


def test_canvas_keeps_aspect_and_margin():
    # a 4 × 1 rectangle: scale (256 − 2·25.6) / 4 = 51.2 px per unit
    rect = gg.StrokeData(positions=xz_points([[0, 0], [4, 0], [4, 1], [0, 1]]), cyclic=True)
    d = gg.strokes_to_sketch([rect], translation(7, 0, 3), canvas=256, margin=0.1)
    pts = d.paths[0].points
    lo, hi = pts.min(0), pts.max(0)
    np.testing.assert_allclose(lo, [25.6, 128 - 25.6], atol=1e-9)
    np.testing.assert_allclose(hi, [230.4, 128 + 25.6], atol=1e-9)
    assert gg.CanvasMapping.from_dict(d.metadata["blender_mapping"]).scale == pytest.approx(51.2)

    # a tall drawing on a wide canvas: the long side touches the margins (10% of the short side)
    tall = gg.StrokeData(positions=xz_points([[0, 0], [0.5, 3], [1, 0]]))
    d = gg.strokes_to_sketch([tall], np.eye(4), canvas=(320, 200), margin=0.1)
    mapping = gg.CanvasMapping.from_dict(d.metadata["blender_mapping"])
    raw = gg.local_to_canvas(tall.positions, mapping)
    assert raw[:, 1].min() == pytest.approx(20) and raw[:, 1].max() == pytest.approx(180)
    assert raw[:, 0].mean() == pytest.approx(160) and mapping.scale == pytest.approx(160 / 3)
    np.testing.assert_allclose(raw[0], mapping.offset)  # the plane origin is the stroke's first point
    assert (d.width, d.height) == (320, 200)


def test_bezier_bounds_use_the_curve_not_its_handles():
    # P0 (0,0), handles (0,1) and (2,1), P1 (2,0): the curve peaks at z = 0.75
    s = gg.StrokeData(
        positions=xz_points([[0, 0], [2, 0]]),
        handle_left=xz_points([[-1, -1], [2, 1]]),
        handle_right=xz_points([[0, 1], [3, -1]]),
        curve_type="BEZIER",
    )
    d = gg.strokes_to_sketch([s], np.eye(4))
    dense = gg.bezier_points(d.paths[0].points, 4001)
    scale = 204.8 / 2
    np.testing.assert_allclose(dense.min(0), [25.6, 128 - 0.375 * scale], atol=1e-6)
    np.testing.assert_allclose(dense.max(0), [230.4, 128 + 0.375 * scale], atol=1e-6)


def test_mapping_json_round_trip():
    mapping = gg.CanvasMapping(parented_matrix(), 320, 200, scale=12.5, offset=(3, 4), depths=[[0.0, 1.5, -2.0, 0.25]])
    back = gg.CanvasMapping.from_dict(json.loads(json.dumps(mapping.to_dict())))
    np.testing.assert_array_equal(back.matrix_world, mapping.matrix_world)
    assert (back.width, back.height, back.scale, back.radius_scale) == (320, 200, 12.5, mapping.radius_scale)
    np.testing.assert_array_equal(back.depths[0], mapping.depths[0])
    with pytest.raises(ValueError, match="singular"):
        gg.CanvasMapping(scaling(1, 0, 1))


# ----------------------------------------------------------------------------- fitting
def _assert_fit_within(points, tol, closed=False):
    ctrl = gg.fit_cubic_beziers(points, tol, closed=closed)
    assert ctrl.shape[1] == 2 and (len(ctrl) - 1) % 3 == 0
    np.testing.assert_allclose(ctrl[0], points[0])
    np.testing.assert_allclose(ctrl[-1], points[0] if closed else points[-1])
    d, slack = curve_distance(points, ctrl)
    assert d.max() <= tol + slack, (d.max(), tol)
    return (len(ctrl) - 1) // 3


def test_fit_circle_arc_sine_and_zigzag_within_tolerance():
    th = np.linspace(0, 1.5 * np.pi, 120)
    arc = np.c_[128 + 90 * np.cos(th), 128 + 90 * np.sin(th)]
    x = np.linspace(10, 246, 150)
    sine = np.c_[x, 128 + 60 * np.sin(x / 20)]
    corners = np.array([[10, 200], [60, 40], [110, 200], [160, 40], [210, 200]], float)
    zigzag = np.concatenate([np.linspace(corners[i], corners[i + 1], 12, endpoint=False) for i in range(4)] + [corners[-1:]])
    for pts in (arc, sine, zigzag):
        for tol in (2.0, 0.5, 0.1):
            _assert_fit_within(pts, tol)
    # corners stay sharp: the zig-zag is exactly four straight segments
    ctrl = gg.fit_cubic_beziers(zigzag, 0.5)
    np.testing.assert_allclose(ctrl[0::3], corners, atol=1e-9)


def test_fit_segment_count_grows_as_tolerance_shrinks():
    x = np.linspace(0, 4 * np.pi, 300)
    sine = np.c_[x * 15, 50 * np.sin(x)]
    counts = [_assert_fit_within(sine, tol) for tol in (8.0, 2.0, 0.5, 0.1, 0.02)]
    assert counts == sorted(counts) and counts[-1] > counts[0], counts


def test_fit_ignores_jitter_below_the_tolerance():
    x = np.linspace(0, 200, 500)  # 0.4 px spacing, like a densely sampled pen stroke
    clean = np.c_[x, 100 + 20 * np.sin(x / 40)]
    noisy = clean + np.random.default_rng(0).normal(scale=0.05, size=clean.shape)
    n_clean, n_noisy = _assert_fit_within(clean, 0.5), _assert_fit_within(noisy, 0.5)
    assert n_noisy <= n_clean + 1, (n_clean, n_noisy)


def test_fit_closed_circle_and_max_segments():
    th = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    circle = np.c_[128 + 80 * np.cos(th), 128 + 80 * np.sin(th)]
    ctrl = gg.fit_cubic_beziers(circle, 0.25, closed=True)
    np.testing.assert_array_equal(ctrl[-1], ctrl[0])
    d, slack = curve_distance(circle, ctrl)
    assert d.max() <= 0.25 + slack
    # the join is smooth: the handles on either side of the first point are collinear
    t_in, t_out = ctrl[0] - ctrl[-2], ctrl[1] - ctrl[0]
    assert abs(t_in[0] * t_out[1] - t_in[1] * t_out[0]) < 1e-6 * np.linalg.norm(t_in) * np.linalg.norm(t_out)
    assert (len(gg.fit_cubic_beziers(circle, 1e-6, max_segments=3, closed=True)) - 1) // 3 == 3


def test_fit_degenerate_inputs():
    dot = gg.fit_cubic_beziers([[5.0, 7.0]], 0.5)
    np.testing.assert_array_equal(dot, [[5, 7]] * 4)
    np.testing.assert_array_equal(gg.fit_cubic_beziers([[5.0, 7.0]] * 3, 0.5), [[5, 7]] * 4)
    line = gg.fit_cubic_beziers([[0.0, 0.0], [0.0, 0.0], [3.0, 6.0], [3.0, 6.0]], 0.5)
    np.testing.assert_allclose(line, [[0, 0], [1, 2], [2, 4], [3, 6]])
    with pytest.raises(ValueError):
        gg.fit_cubic_beziers(np.zeros((0, 2)), 0.5)


# ----------------------------------------------------------------------------- sketch dict
def test_sketch_dict_is_a_valid_engine_sketch():
    from engine.vector.sketch import Sketch

    strokes = [
        sine_stroke(radius=0.02, opacity=0.8, vertex_color=(1, 0, 0, 1)),
        gg.StrokeData(positions=[[0.2, 0, 0.3]], radius=0.05),  # one point: a dot
        gg.StrokeData(positions=[[0, 0, 0], [0.5, 0, -0.5]], radius=0.0),  # two points, radius 0
    ]
    d = gg.strokes_to_sketch(strokes, translation(1, 2, 3))
    sketch = Sketch.from_dict(json.loads(json.dumps(d.to_dict())))
    assert len(sketch.paths) == 3 and sketch.width == sketch.height == 256
    np.testing.assert_array_equal(sketch.paths[1].points, np.repeat(sketch.paths[1].points[:1], 4, 0))
    assert len(sketch.paths[2].points) == 4  # a straight cubic
    scale = gg.CanvasMapping.from_dict(d.metadata["blender_mapping"]).scale
    assert sketch.paths[0].half_width == pytest.approx(0.02 * scale)  # radius = half the visible width
    assert sketch.paths[2].half_width == 0.0 and sketch.paths[2].is_invisible  # radius 0: kept, invisible, never optimised
    assert sketch.still_points()[-4:].all() and not sketch.still_points()[:-4].any()
    assert sketch.paths[0].color == pytest.approx((1.0, 0.0, 0.0)) and sketch.paths[0].opacity == pytest.approx(0.8)
    assert sketch.paths[1].color == pytest.approx((0.0, 0.0, 0.0))  # vertex alpha 0: the material colour
    # the plan of a static sketch is one frame; of an animation, one per frame
    assert len(gg.plan_keyframes(sketch)) == 1
    assert len(gg.plan_keyframes(sketch.with_frames(np.stack([sketch.flat_points()] * 3)))) == 3


def _round_trip_strokes():
    rng = np.random.default_rng(1)
    k = np.linspace(0, 1, 5)
    bez_pos = xz_points(np.c_[k * 1.5 - 0.5, 0.3 * np.cos(3 * k)], y=0.05 * k)
    bez_open = gg.StrokeData(
        positions=bez_pos,
        handle_left=bez_pos + rng.normal(scale=0.1, size=bez_pos.shape),
        handle_right=bez_pos + rng.normal(scale=0.1, size=bez_pos.shape),
        curve_type="BEZIER",
        radius=np.linspace(0.01, 0.03, 5),
        opacity=np.linspace(1.0, 0.5, 5),
        vertex_color=rng.uniform(size=(5, 4)),
        material_index=2,
    )
    a = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    ring = xz_points(np.c_[0.4 * np.cos(a) + 0.2, 0.4 * np.sin(a) - 0.1], y=0.1 * np.sin(a))
    tangent = xz_points(np.c_[-np.sin(a), np.cos(a)]) * 0.2
    bez_cyclic = gg.StrokeData(
        positions=ring, handle_left=ring - tangent, handle_right=ring + tangent, curve_type=2, cyclic=True,
        radius=0.015, material_index=1,
    )
    th = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    poly_cyclic = gg.StrokeData(
        positions=xz_points(np.c_[0.3 * np.cos(th), 0.2 * np.sin(th) + 0.3]), cyclic=True, radius=rng.uniform(0.01, 0.02, 40)
    )
    poly_planar = sine_stroke(n=60, radius=np.linspace(0.02, 0.01, 60), opacity=0.9, vertex_color=(0, 0, 1, 0.5))
    t = np.linspace(0, 1, 30)
    poly_deep = gg.StrokeData(positions=np.c_[t - 0.5, 0.2 * np.sin(4 * t), 0.4 * t * t - 0.6], curve_type="CATMULL_ROM")
    return [poly_planar, poly_deep, bez_open, bez_cyclic, poly_cyclic]


def test_round_trip_lands_where_the_strokes_were():
    from engine.vector.sketch import Sketch

    m = parented_matrix()
    strokes = _round_trip_strokes()
    tol = 0.5
    d = gg.strokes_to_sketch(strokes, m, tolerance_px=tol)
    sketch = Sketch.from_dict(json.loads(json.dumps(d.to_dict())))
    flat = sketch.flat_points()
    animated = sketch.with_frames(np.stack([flat, flat]))  # frames = the unchanged points
    plans = gg.plan_keyframes(animated, form="bezier")
    assert [p.frame_index for p in plans] == [0, 1]
    mapping = gg.CanvasMapping.from_dict(d.metadata["blender_mapping"])
    metas = d.metadata["blender_strokes"]

    for plan in plans:
        assert plan.curve_type == "BEZIER" and (plan.curve_type_codes == 2).all() and (plan.handle_types == 0).all()
        assert plan.positions.shape == (plan.sizes.sum(), 3) and plan.vertex_color.shape == (plan.sizes.sum(), 4)
        out = plan.strokes
        assert len(out) == len(strokes)

        # BEZIER strokes: exact (knots, inner handles, per-point attributes)
        for s, o in ((strokes[2], out[2]), (strokes[3], out[3])):
            assert len(o.positions) == len(s.positions) and o.cyclic == s.cyclic
            np.testing.assert_allclose(o.positions, s.positions, atol=1e-9)
            np.testing.assert_allclose(gg.local_to_world(o.positions, m), gg.local_to_world(s.positions, m), atol=1e-9)
            np.testing.assert_allclose(o.radius, s.radius, atol=1e-12)
            np.testing.assert_allclose(o.opacity, s.opacity, atol=1e-12)
            np.testing.assert_allclose(o.vertex_color, s.vertex_color, atol=1e-12)
            assert o.material_index == s.material_index
        o, s = out[2], strokes[2]
        np.testing.assert_allclose(o.handle_right, s.handle_right, atol=1e-9)  # the outer handles too: the source's own
        np.testing.assert_allclose(o.handle_left, s.handle_left, atol=1e-9)
        o, s = out[3], strokes[3]
        np.testing.assert_allclose(o.handle_left, s.handle_left, atol=1e-9)
        np.testing.assert_allclose(o.handle_right, s.handle_right, atol=1e-9)

        # POLY strokes: knots are source points (exact, depth included); every source point
        # lies within the fitting tolerance, mapped to world units, of the written curve
        for i in (0, 1, 4):
            s, o, meta = strokes[i], out[i], metas[i]
            ks = np.asarray(meta["knot_source_index"]).astype(int)
            np.testing.assert_allclose(o.positions, s.positions[ks], atol=1e-9)
            np.testing.assert_allclose(o.radius, s.radius[ks], atol=1e-12)
            np.testing.assert_allclose(o.vertex_color, s.vertex_color[ks], atol=1e-12)
            assert o.cyclic == s.cyclic
            local = gg._interleave_bezier(o.positions, o.handle_left, o.handle_right, o.cyclic)
            if i == 1:  # off the plane: the canvas projection is within tolerance
                dist, slack = curve_distance(gg.local_to_canvas(s.positions, mapping), gg.local_to_canvas(local, mapping))
                assert dist.max() <= tol + slack
                continue
            dist, slack = curve_distance(gg.local_to_world(s.positions, m), gg.local_to_world(local, m))
            assert dist.max() <= tol / mapping.scale + slack
        assert out[4].cyclic and len(out[4].positions) == (len(sketch.paths[4].points) - 1) // 3


def test_round_trip_is_exact_to_1e4_units_for_planar_bezier():
    m = parented_matrix()
    k = np.linspace(-1, 1, 7)
    pos = xz_points(np.c_[k, k**2])
    s = gg.StrokeData(positions=pos, handle_left=pos - [0.1, 0, 0.05], handle_right=pos + [0.1, 0, 0.05], curve_type="BEZIER")
    plan = gg.plan_keyframes(gg.strokes_to_sketch([s], m))[0]
    err = np.linalg.norm(gg.local_to_world(plan.positions, m) - gg.local_to_world(pos, m), axis=1).max()
    assert err < 1e-4 and err < 1e-10


def test_plan_handles_reproduce_the_control_points_of_every_frame():
    m = parented_matrix()
    d = gg.strokes_to_sketch(_round_trip_strokes(), m)
    flat = d.flat_points()
    offsets = d.point_offsets()
    rng = np.random.default_rng(3)
    frames = np.stack([flat + [5.0 * f, -3.0 * f] + rng.normal(scale=2.0, size=flat.shape) for f in range(4)])
    for i, p in enumerate(d.paths):  # a closed path stays closed in every frame
        if p.closed:
            frames[:, offsets[i + 1] - 1] = frames[:, offsets[i]]
    d = d.with_frames(frames)
    mapping = gg.CanvasMapping.from_dict(d.metadata["blender_mapping"])
    for f, plan in enumerate(gg.plan_keyframes(d, form="bezier")):
        for i, ctrl in enumerate(gg.plan_to_cubic_points(plan, mapping)):
            np.testing.assert_allclose(ctrl, frames[f, offsets[i] : offsets[i + 1]], atol=1e-9)
        # depth (local Y) is carried per control point from the import
        depth = np.concatenate(mapping.depths)
        knots = np.concatenate([offsets[i] + 3 * np.arange(n) for i, n in enumerate(plan.sizes)])
        np.testing.assert_allclose(plan.positions[:, 1], depth[knots], atol=1e-12)
    # a translated frame moves every knot by the same world vector in the plane
    plan0, plan1 = gg.plan_keyframes(d.with_frames(np.stack([flat, flat + [10.0, 0.0]])), form="bezier")
    shift = gg.local_to_world(plan1.positions, m) - gg.local_to_world(plan0.positions, m)
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-9)
    assert np.linalg.norm(shift[0]) == pytest.approx(10.0 / mapping.scale)


def test_depth_of_fitted_handles_is_interpolated():
    # a straight stroke rising linearly in local Y: knots keep their depth, handles lie on the line
    t = np.linspace(0, 1, 20)
    s = gg.StrokeData(positions=np.c_[t, 0.3 * t, 0.2 * np.sin(6 * t)])
    d = gg.strokes_to_sketch([s], np.eye(4), tolerance_px=0.2)
    depth = np.asarray(d.metadata["blender_mapping"]["depths"][0])
    ks = np.asarray(d.metadata["blender_strokes"][0]["knot_source_index"]).astype(int)
    np.testing.assert_allclose(depth[0::3], 0.3 * t[ks], atol=1e-12)
    assert np.all(np.diff(depth) >= -1e-12) and depth.min() >= 0 and depth.max() <= 0.3 + 1e-12


def test_changed_half_width_scales_the_radius():
    s = sine_stroke(radius=np.linspace(0.01, 0.03, 80))
    d = gg.strokes_to_sketch([s], scaling(2, 2, 2))
    mapping = gg.CanvasMapping.from_dict(d.metadata["blender_mapping"])
    assert mapping.radius_scale == pytest.approx(2.0)
    assert d.paths[0].half_width == pytest.approx(0.02 * 2.0 * mapping.scale)
    ks = np.asarray(d.metadata["blender_strokes"][0]["knot_source_index"]).astype(int)
    d.paths[0].half_width *= 2
    np.testing.assert_allclose(gg.plan_keyframes(d, form="bezier")[0].radius, 2 * s.radius[ks], rtol=1e-12)


def test_strokes_from_drawing_arrays_splits_and_defaults():
    pos = np.arange(21, dtype=np.float32).reshape(7, 3)
    strokes = gg.strokes_from_drawing_arrays(
        offsets=[0, 3, 3, 7], position=pos, curve_type=np.array([1, 2, 2], np.int8),
        cyclic=[False, False, True], material_index=[0, 1, 1], material_colors=[[1, 1, 1, 1], [0, 1, 0, 0.5]],
    )
    assert [len(s.positions) for s in strokes] == [3, 4] and [s.source_index for s in strokes] == [0, 2]
    assert strokes[0].curve_type == "POLY" and strokes[1].curve_type == "BEZIER" and strokes[1].cyclic
    np.testing.assert_array_equal(strokes[1].handle_left, pos[3:])  # absent handles: at the knots
    assert (strokes[0].radius == 0.01).all() and (strokes[0].opacity == 1).all() and (strokes[0].vertex_color == 0).all()
    np.testing.assert_array_equal(strokes[1].material_color, [0, 1, 0, 0.5])
    d = gg.strokes_to_sketch(strokes, np.eye(4))
    assert d.paths[1].opacity == pytest.approx(0.5) and d.paths[1].color == pytest.approx((0, 1, 0))
    assert [m["source_index"] for m in d.metadata["blender_strokes"]] == [0, 2]
    assert list(gg.plan_keyframes(d)[0].source_index) == [0, 2]


def test_errors_are_clear():
    with pytest.raises(ValueError, match="no strokes"):
        gg.strokes_to_sketch([gg.StrokeData(positions=np.zeros((0, 3)))], np.eye(4))
    d = gg.strokes_to_sketch([sine_stroke()], np.eye(4))
    with pytest.raises(ValueError, match="not imported from Grease Pencil"):
        gg.plan_keyframes(replace(d, metadata={}))
    with pytest.raises(ValueError, match="re-import"):
        gg.plan_keyframes(replace(d, paths=d.paths + d.paths[:1]))
    with pytest.raises(ValueError, match="frames have shape"):
        gg.plan_keyframes(replace(d, frames=np.zeros((1, 1, 2))))


# ----------------------------------------------------------------------------- the drawing's own line (issue 14)
def pressure_stroke(n: int = 60, **kw) -> "gg.StrokeData":
    """A hand-drawn wave whose radius swells from 0.005 to 0.03 and back along it, with opacity and colour varying."""
    t = np.linspace(0, 1, n)
    return gg.StrokeData(
        positions=xz_points(np.c_[2 * t - 1, 0.4 * np.sin(5 * t)]), curve_type="POLY",
        radius=0.005 + 0.025 * np.sin(np.pi * t) ** 2, opacity=0.4 + 0.6 * t,
        vertex_color=np.c_[t, 1 - t, 0.5 * np.ones(n), 0.8 * np.ones(n)], **kw,
    )  # fmt: skip


def test_original_points_form_gives_back_every_drawn_point_exactly():
    strokes = [pressure_stroke(start_cap=1, end_cap=0), pressure_stroke(45, cyclic=False)]
    sketch = gg.strokes_to_sketch(strokes, translation(0.3, 0, -0.2))
    identity = sketch.with_frames(np.stack([sketch.flat_points()] * 2))
    for plan in gg.plan_keyframes(identity, form="points"):
        assert plan.curve_type == "POLY" and plan.sizes.tolist() == [60, 45]
        for source, out in zip(strokes, plan.strokes):
            np.testing.assert_array_equal(out.positions, source.positions)  # unmoved: bit for bit
            np.testing.assert_array_equal(out.radius, source.radius)
            np.testing.assert_array_equal(out.opacity, source.opacity)
            np.testing.assert_array_equal(out.vertex_color, source.vertex_color)
        assert plan.curve_attributes["start_cap"].tolist() == [1, 0]
    # a moved curve moves every point by the curve's displacement at its parameter
    moved = sketch.with_frames(np.stack([sketch.flat_points() + [10.0, 0.0]]))
    shift = gg.plan_keyframes(moved, form="points")[0].positions - np.concatenate([s.positions for s in strokes])
    mapping = gg.CanvasMapping.from_dict(sketch.metadata["blender_mapping"])
    np.testing.assert_allclose(shift, np.broadcast_to([10.0 / mapping.scale, 0.0, 0.0], shift.shape), atol=1e-12)


def test_bezier_form_keeps_the_pressure_profile_within_ten_percent():
    stroke = pressure_stroke(80)
    sketch = gg.strokes_to_sketch([stroke], np.eye(4))
    meta = sketch.metadata["blender_strokes"][0]
    plan = gg.plan_keyframes(sketch, form="bezier")[0]
    assert plan.curve_type == "BEZIER"
    params = np.asarray(meta["params"])
    knot = np.clip(np.floor(params).astype(int), 0, len(plan.radius) - 2)
    u = params - knot
    blender_profile = plan.radius[knot] * (1 - u) + plan.radius[knot + 1] * u  # Grease Pencil: linear between knots
    assert (np.abs(blender_profile - stroke.radius) <= 0.10 * stroke.radius).all()
    # the engine draws the same profile: per-control-point widths, interpolated by Bernstein weights
    path = sketch.paths[0]
    assert path.half_widths is not None and len(path.half_widths) == len(path.points)
    segment = np.clip(np.floor(params).astype(int), 0, path.num_segments - 1)
    w = path.half_widths[path.segment_index()][segment]
    t = (params - segment)[:, None]
    engine_profile = (w * np.hstack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3])).sum(1)
    mapping = gg.CanvasMapping.from_dict(sketch.metadata["blender_mapping"])
    drawn = stroke.radius * mapping.radius_scale * mapping.scale
    assert (np.abs(engine_profile - drawn) <= 0.10 * drawn).all()
    # without the profile knots, the linear radius would not do
    plain = gg.strokes_to_sketch([stroke], np.eye(4), profile_tolerance=10.0)
    assert len(plain.paths[0].points) < len(path.points)


def test_caps_fills_pins_and_layers_reach_the_sketch_and_come_back():
    line = pressure_stroke(start_cap=1, end_cap=1, layer="Lines")
    ground = sine_stroke(layer="Lines", pinned=True)
    th = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    fill = gg.StrokeData(positions=xz_points(np.c_[0.3 * np.cos(th), 0.3 * np.sin(th)]), cyclic=True, fill_only=True,
                         material_index=1, material_color=(0.9, 0.5, 0.1, 1.0), layer="Fills", curve_attributes={"fill_opacity": 0.7})  # fmt: skip
    sketch = gg.strokes_to_sketch([line, ground, fill], np.eye(4))
    a, b, c = sketch.paths
    assert (a.start_cap, a.end_cap, a.pinned) == ("flat", "flat", False) and b.pinned and not c.pinned
    assert c.closed and c.half_width == gg.FILL_OUTLINE_HALF_WIDTH and c.half_widths is None
    assert c.color == pytest.approx(tuple(gg._linear_to_srgb(np.array([0.9, 0.5, 0.1]))))
    assert sketch.still_points().tolist() == [False] * len(a.points) + [True] * len(b.points) + [False] * len(c.points)
    plan = gg.plan_keyframes(sketch.with_frames(np.stack([sketch.flat_points()])), form="points")[0]
    lines, fills = plan.of_layer("Lines"), plan.of_layer("Fills")
    assert lines.sizes.tolist() == [60, 80] and fills.sizes.tolist() == [30]
    assert fills.material_index.tolist() == [1] and fills.cyclic.tolist() == [True]
    assert lines.curve_attributes["end_cap"].tolist() == [1, 0]
    assert np.isnan(lines.curve_attributes["fill_opacity"]).all() and fills.curve_attributes["fill_opacity"].tolist() == [0.7]  # kept per layer
