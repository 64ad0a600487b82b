"""Grease Pencil import and write-back speed in headless Blender (bpy wheel).

    .venv-blender/5.0/bin/python benchmarks/blender_io.py      (or 4.5; see tools/blender_envs.py)

Rows:
* import 500 hand-drawn (POLY, 40-point) strokes → Sketch, Bézier fitting included;
* import 500 Bézier strokes (converted exactly, no fitting);
* write-back of 24 frames × 64 strokes (4 Bézier knots each) as keyframes: our bulk path
  (`blender_io.apply_animation`: plan + one foreach_set per attribute and frame) against a naive
  per-point loop through Blender's stroke/point wrappers, measured in the same run, and the
  ratio;
* Apply with timing: 32 poses of a 4 s reference on a 24 fps scene, smooth in-betweens on the
  96 scene frames, against the same keys written as holds.
Targets: write-back under 0.1 s; 96 scene frames with in-betweens under 0.3 s.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import bpy
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3


def load_extension():
    """The repository root imported as the package `sketch_animator` (as Blender would)."""
    spec = importlib.util.spec_from_file_location("sketch_animator", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["sketch_animator"] = module
    spec.loader.exec_module(module)
    from sketch_animator.grease_pencil import blender_io, keyframes, timing

    return blender_io, keyframes, timing


def new_object(gp, name: str):
    data = gp.gp_datablocks().new(name)
    ob = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(ob)
    data.layers.new("Lines", set_active=True)
    gp.ensure_ink_material(data)
    return ob


def fill_strokes(gp, ob, count: int, points: int, bezier: bool) -> None:
    rng = np.random.default_rng(0)
    drawing = ob.data.layers["Lines"].frames.new(1).drawing
    drawing.add_strokes([points] * count)
    t = np.linspace(0, 1, points)
    start = rng.uniform(-2, 2, (count, 1, 3)) * [1, 0, 1]
    direction = rng.normal(size=(count, 1, 3)) * [1, 0, 1]
    wobble = 0.05 * np.sin(6 * t)[None, :, None] * rng.normal(size=(count, 1, 3)) * [1, 0, 1]
    pos = (start + t[None, :, None] * direction + wobble).reshape(-1, 3)
    gp.set_attribute(drawing, "position", pos)
    gp.set_attribute(drawing, "radius", 0.01)
    if bezier:
        drawing.set_types(type="BEZIER")
        gp.set_attribute(drawing, "handle_left", pos - [0.05, 0, 0])
        gp.set_attribute(drawing, "handle_right", pos + [0.05, 0, 0])


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def naive_write(gg, ob, result: dict, start: int) -> None:
    """The same keyframes through the per-point Python wrappers (what a simple add-on does)."""
    layer = ob.data.layers.get("Naive") or ob.data.layers.new("Naive")
    for plan in gg.plan_keyframes(result):
        number = start + plan.frame_index
        frame = next((f for f in layer.frames if f.frame_number == number), None)
        drawing = (frame or layer.frames.new(number)).drawing
        drawing.remove_strokes()
        drawing.add_strokes(plan.sizes.tolist())
        drawing.set_types(type="BEZIER")
        for s, stroke in enumerate(drawing.strokes):
            sp = plan.stroke(s)
            stroke.material_index = sp.material_index
            for k, point in enumerate(stroke.points):
                point.position = sp.positions[k].tolist()
                point.handle_left.position = sp.handle_left[k].tolist()
                point.handle_right.position = sp.handle_right[k].tolist()
                point.radius, point.opacity = float(sp.radius[k]), float(sp.opacity[k])
                point.vertex_color = sp.vertex_color[k].tolist()


def main() -> None:
    gp, gg, gt = load_extension()
    rows = []
    poly = new_object(gp, "Poly500")
    fill_strokes(gp, poly, 500, 40, bezier=False)
    rows.append(("import 500 POLY strokes (40 pts, fitted)", best_of(lambda: gp.sketch_from_layer(poly, "Lines", 1)), None))
    bez = new_object(gp, "Bezier500")
    fill_strokes(gp, bez, 500, 4, bezier=True)
    rows.append(("import 500 BEZIER strokes (4 knots)", best_of(lambda: gp.sketch_from_layer(bez, "Lines", 1)), None))

    source = new_object(gp, "Anim")
    fill_strokes(gp, source, 64, 4, bezier=True)
    sketch = gp.sketch_from_layer(source, "Lines", 1)
    flat = sketch.flat_points()
    result = sketch.with_frames(np.stack([flat + [f, 0] for f in range(24)]))
    plan_only = best_of(lambda: gg.plan_keyframes(result))
    bulk = best_of(lambda: gp.apply_animation(source, result, 1, gt.TimingOptions(keys="every_frame", inbetweens="hold")))
    naive = best_of(lambda: naive_write(gg, source, result, 1), repeats=1)
    rows.append(("write-back 24 frames × 64 strokes: plan only", plan_only, None))
    rows.append(("write-back 24 × 64: bulk (apply_animation)", bulk, naive / bulk))
    rows.append(("write-back 24 × 64: naive per-point loop", naive, 1.0))

    # a 4 s reference (96 frames at 24 fps) at 8 poses/s: 32 keys on a 24 fps scene, smooth in-betweens between
    times = [round(k * 95 / 31) / 24 for k in range(32)]
    timed = sketch.with_frames(np.stack([flat + [20 * np.cos(t), 20 * np.sin(t)] for t in times]))
    timed.metadata["timing"] = {"times_s": times, "period_s": 4.0}
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 24, 1.0
    applied = gp.apply_animation(source, timed, 1, gt.TimingOptions())
    frames = len(applied.schedule.frame_offsets)
    smooth = best_of(lambda: gp.apply_animation(source, timed, 1, gt.TimingOptions()))
    held = best_of(lambda: gp.apply_animation(source, timed, 1, gt.TimingOptions(inbetweens="hold")))
    rows.append((f"apply {frames} scene frames × 64 strokes, in-betweens", smooth, None))
    rows.append(("apply the same 32 keys as holds (reference)", held, held / smooth))

    print(f"Blender {bpy.app.version_string}, best of {REPEATS}")
    print(f"{'case':<48} {'seconds':>9} {'ratio':>18}")
    for name, seconds, ratio in rows:
        print(f"{name:<48} {seconds:>9.4f} {'' if ratio is None else f'{ratio:>17.1f}×'}")
    print(f"target: write-back under 0.1 s -> {'met' if bulk < 0.1 else 'NOT met'} ({bulk:.4f} s)")
    print(f"target: {frames} frames with in-betweens under 0.3 s -> {'met' if smooth < 0.3 else 'NOT met'} ({smooth:.4f} s)")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    import os

    os._exit(0)  # Blender 4.5 can hang at exit otherwise
