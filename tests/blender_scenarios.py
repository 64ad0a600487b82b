"""Scenarios that run inside headless Blender (the bpy wheel), driven by test_blender_extension.py.

    <bpy venv python> tests/blender_scenarios.py SCENARIO '{"user_dir": ..., ...}'

Each scenario works on the *installed* extension (the zip built by tools/build_extension.py,
installed into an isolated user folder by the `install` scenario) and prints one line
`RESULT: {json}` with what it measured; the pytest side asserts on it. Blender 4.5 hangs at
exit when an operator class or timer is left registered, so the script ends with os._exit.
"""

import importlib
import json
import os
import sys
import time
import traceback

SCENARIO, ARGS = sys.argv[1], json.loads(sys.argv[2])
os.environ["BLENDER_USER_RESOURCES"] = ARGS["user_dir"]  # before importing bpy

import bpy  # noqa: E402  (addon_utils exists once bpy is imported)

# isort: split
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402

MOD = "bl_ext.user_default.sketch_animator"


def ext(name: str):
    return importlib.import_module(f"{MOD}.{name}")


def enable() -> None:
    addon_utils.enable(MOD, default_set=True)
    assert MOD in bpy.context.preferences.addons, "the extension did not enable"


def set_preferences(**values) -> None:
    prefs = bpy.context.preferences.addons[MOD].preferences
    for key, value in values.items():
        setattr(prefs, key, value)


# --------------------------------------------------------------------------- scene building
def set_attr(drawing, name, values, data_type, domain, key):
    attr = drawing.attributes.get(name) or drawing.attributes.new(name, data_type, domain)
    attr.data.foreach_set(key, np.asarray(values).ravel())


def make_gp_object(name="Sketch", transformed=True, strokes=("bezier", "poly", "bezier"), frame=1):
    """A GP object (on a rotated, scaled, parented empty when `transformed`) with known strokes."""
    gp = ext("grease_pencil.blender_io")
    data = gp.gp_datablocks().new(name)
    ob = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(ob)
    layer = data.layers.new("Lines", set_active=True)
    material = bpy.data.materials.new(name + " ink")
    bpy.data.materials.create_gpencil_data(material)
    material.grease_pencil.color = (0.2, 0.1, 0.05, 1.0)
    data.materials.append(material)
    second = bpy.data.materials.new(name + " red")
    bpy.data.materials.create_gpencil_data(second)
    second.grease_pencil.color = (0.8, 0.0, 0.0, 1.0)
    data.materials.append(second)
    drawing = layer.frames.new(frame).drawing
    rng = np.random.default_rng(3)
    sizes, pos, hl, hr, types = [], [], [], [], []
    for i, kind in enumerate(strokes):
        if kind == "bezier":
            k = 3
            p = np.c_[np.linspace(-1, 1, k) + 0.1 * i, rng.uniform(-0.05, 0.05, k), 0.4 * i + rng.uniform(-0.2, 0.2, k)]
            sizes.append(k), pos.append(p), hl.append(p + [-0.2, 0.0, 0.15]), hr.append(p + [0.25, 0.0, -0.1]), types.append(2)
        else:
            t = np.linspace(0, np.pi, 60)
            p = np.c_[t / 2 - 0.8, np.zeros(60), 0.5 * np.sin(t) - 1.0 + 0.002 * rng.standard_normal(60)]
            sizes.append(60), pos.append(p), hl.append(p), hr.append(p), types.append(1)
    drawing.add_strokes(sizes)
    n = sum(sizes)
    for name_, values in (("position", np.concatenate(pos)), ("handle_left", np.concatenate(hl)), ("handle_right", np.concatenate(hr))):
        set_attr(drawing, name_, values.astype(np.float32), "FLOAT_VECTOR", "POINT", "vector")
    set_attr(drawing, "curve_type", np.array(types, np.int32), "INT8", "CURVE", "value")
    set_attr(drawing, "radius", np.linspace(0.01, 0.03, n).astype(np.float32), "FLOAT", "POINT", "value")
    set_attr(drawing, "opacity", np.linspace(1.0, 0.5, n).astype(np.float32), "FLOAT", "POINT", "value")
    colors = np.zeros((n, 4), np.float32)
    colors[:, 1], colors[:, 3] = 0.5, np.linspace(0, 1, n)
    set_attr(drawing, "vertex_color", colors, "FLOAT_COLOR", "POINT", "color")
    set_attr(drawing, "material_index", np.arange(len(sizes)) % 2, "INT", "CURVE", "value")
    drawing.tag_positions_changed()
    if transformed:
        parent = bpy.data.objects.new(name + " rig", None)
        bpy.context.scene.collection.objects.link(parent)
        parent.location, parent.rotation_euler, parent.scale = (1.0, -2.0, 0.5), (0.3, 0.2, 1.1), (1.5, 1.5, 1.5)
        ob.parent = parent
        ob.location, ob.rotation_euler, ob.scale = (0.5, 3.0, -1.0), (0.4, -0.7, 0.25), (1.3, 0.8, 2.1)
        layer.translation, layer.rotation, layer.scale = (0.1, 0.2, -0.3), (0.0, 0.3, 0.0), (1.0, 1.2, 0.9)
    bpy.context.view_layer.update()
    bpy.context.view_layer.objects.active = ob
    ob.select_set(True)
    ob.sketch_animator.layer = "Lines"
    return ob


def read_layer(ob, layer):
    gp = ext("grease_pencil.blender_io")
    out = {}
    for frame in layer.frames:
        arrays = gp.read_drawing_arrays(frame.drawing)
        out[frame.frame_number] = {k: (None if v is None else np.array(v)) for k, v in arrays.items()}
    return out


def world(ob, layer, points):
    gp = ext("grease_pencil.blender_io")
    m = gp.layer_matrix_world(ob, layer)
    return np.asarray(points, np.float64) @ m[:3, :3].T + m[:3, 3]


def static_result(sketch, frames=3, shift_px=0.0):
    """A Sketch 'animated' by copies of itself (the GP → Sketch → GP round trip), optionally shifted."""
    flat = sketch.flat_points()
    return sketch.with_frames(np.stack([flat + [shift_px * f, 0.0] for f in range(frames)]))


def bezier_samples(ctrl, n=64):
    ctrl = np.asarray(ctrl, np.float64)
    k = (len(ctrl) - 1) // 3
    t = np.linspace(0, 1, n)[:, None]
    pts = []
    for s in range(k):
        p0, p1, p2, p3 = ctrl[3 * s : 3 * s + 4]
        pts.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2 + t**3 * p3)
    return np.concatenate(pts)


# --------------------------------------------------------------------------- scenarios
def scenario_install():
    """Install the zip into the empty user folder, enable, check registration, disable, enable again."""
    result = bpy.ops.extensions.package_install_files(filepath=ARGS["zip"], repo="user_default", enable_on_install=True)
    ops_after_install = sorted(dir(bpy.ops.sketch_animator))
    registered = {
        "panel": hasattr(bpy.types, "VIEW3D_PT_sketch_animator"),
        "object_settings": hasattr(bpy.types.Object, "sketch_animator"),
        "preferences": MOD in bpy.context.preferences.addons and bpy.context.preferences.addons[MOD].preferences is not None,
        "import_menu": any(getattr(f, "__name__", "") == "import_menu" for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()),
        "load_handler": any(getattr(f, "__name__", "") == "reattach_after_load" for f in bpy.app.handlers.load_post),
    }
    imported_torch = "torch" in sys.modules
    props = bpy.types.Object.bl_rna.properties["sketch_animator"].fixed_type.properties
    engine_settings = ext("engine.settings")
    derived = {  # the panel's items and defaults come from the engine's one source of settings
        "quality_items": [item.identifier for item in props["quality"].enum_items],
        "panel_presets": ["DEFAULT"] + [p.name.upper() for p in engine_settings.QUALITY_PRESETS.values() if p.in_panel],
        "guidance": [props["guidance"].default, engine_settings.DistillationSettings().guidance],
        "learning_rate": [props["learning_rate"].default, engine_settings.DistillationSettings().lr],
        "frames": [props["num_frames"].default, engine_settings.DEFAULT_NUM_FRAMES],
    }
    addon_utils.disable(MOD, default_set=True)
    after_disable = {
        "ops": sorted(dir(bpy.ops.sketch_animator)),
        "panel": hasattr(bpy.types, "VIEW3D_PT_sketch_animator"),
        "object_settings": hasattr(bpy.types.Object, "sketch_animator"),
        "load_handler": any(getattr(f, "__name__", "") == "reattach_after_load" for f in bpy.app.handlers.load_post),
    }
    enable()
    return {
        "result": sorted(result),
        "installed_at": os.path.relpath(os.path.dirname(sys.modules[MOD].__file__), ARGS["user_dir"]),
        "ops": ops_after_install,
        "registered": registered,
        "after_disable": after_disable,
        "ops_after_reenable": sorted(dir(bpy.ops.sketch_animator)),
        "torch_imported": imported_torch,
        "derived": derived,
        "version": list(bpy.app.version),
    }


def scenario_roundtrip():
    """GP → Sketch → GP on a transformed, parented object: where do the strokes land?"""
    enable()
    gp = ext("grease_pencil.blender_io")
    gg = ext("grease_pencil.mapping")
    ob = make_gp_object()
    source = ob.data.layers["Lines"]
    before = read_layer(ob, source)[1]
    tolerance = 0.5
    sketch = gp.sketch_from_layer(ob, "Lines", 1, canvas=256, margin=0.1, tolerance_px=tolerance)
    layer = gp.apply_animation(ob, static_result(sketch, frames=3), start_frame=5, form="bezier").layer
    after = read_layer(ob, layer)
    offsets = before["offsets"]
    src_world = world(ob, source, before["position"])
    src_hl, src_hr = world(ob, source, before["handle_left"]), world(ob, source, before["handle_right"])
    mapping = gg.CanvasMapping.from_dict(sketch.metadata["blender_mapping"])
    bezier_err, poly_err_px, frames_equal = 0.0, 0.0, True
    for f in (5, 6, 7):
        a = after[f]
        frames_equal &= bool(np.array_equal(a["position"], after[5]["position"]))
        new_world = world(ob, layer, a["position"])
        new_hl, new_hr = world(ob, layer, a["handle_left"]), world(ob, layer, a["handle_right"])
        for s, ctype in enumerate(before["curve_type"]):
            sa, sb = offsets[s], offsets[s + 1]
            na, nb = a["offsets"][s], a["offsets"][s + 1]
            if ctype == 2:
                bezier_err = max(bezier_err, float(np.abs(new_world[na:nb] - src_world[sa:sb]).max()))
                # inner handles are drawn; outer ones (left of the first, right of the last knot) are not
                bezier_err = max(bezier_err, float(np.abs(new_hr[na : nb - 1] - src_hr[sa : sb - 1]).max()))
                bezier_err = max(bezier_err, float(np.abs(new_hl[na + 1 : nb] - src_hl[sa + 1 : sb]).max()))
            else:  # the canvas mapping is of the object's local space (where all layers meet)
                to_object = np.linalg.inv(np.array(ob.matrix_world, dtype=np.float64))
                local, local_l, local_r = (gg.local_to_world(w[na:nb], to_object) for w in (new_world, new_hl, new_hr))
                ctrl = ext("grease_pencil.strokes")._interleave_bezier(local, local_l, local_r, False)
                curve = bezier_samples(gg.local_to_canvas(ctrl, mapping), 400)
                pts = gg.local_to_canvas(gg.local_to_world(src_world[sa:sb], to_object), mapping)
                d = np.sqrt(((pts[:, None, :] - curve[None, :, :]) ** 2).sum(-1)).min(1)
                poly_err_px = max(poly_err_px, float(d.max()))
    unchanged = read_layer(ob, source)[1]
    same_source = all(
        (before[k] is None and unchanged[k] is None) or np.array_equal(before[k], unchanged[k]) for k in before
    )
    first = after[5]
    points_layer = gp.apply_animation(ob, static_result(sketch, frames=3), start_frame=5, form="points").layer
    as_points = read_layer(ob, points_layer)[5]  # the default form: the source's own points, where the curve puts them
    points_error = float(np.abs(world(ob, points_layer, as_points["position"]) - src_world).max())
    return {
        "points_max_error": points_error,
        "points_curve_types": as_points["curve_type"].tolist(),
        "source_curve_types": before["curve_type"].tolist(),
        "bezier_max_error": bezier_err,
        "poly_max_error_px": poly_err_px,
        "tolerance_px": tolerance,
        "keyframes": sorted(after),
        "strokes_per_frame": [len(after[f]["offsets"]) - 1 for f in sorted(after)],
        "curve_types": sorted(set(int(c) for c in first["curve_type"])),
        "material_index": first["material_index"].tolist(),
        "source_material_index": before["material_index"].tolist(),
        "bezier_radius_error": float(np.abs(first["radius"][: 3] - before["radius"][:3]).max()),
        "bezier_opacity_error": float(np.abs(first["opacity"][:3] - before["opacity"][:3]).max()),
        "bezier_color_error": float(np.abs(first["vertex_color"][:3] - before["vertex_color"][:3]).max()),
        "frames_equal": frames_equal,
        "source_hidden": bool(source.hide),
        "source_unchanged": bool(same_source),
        "layer_name": layer.name,
        "frame_range": [bpy.context.scene.frame_start, bpy.context.scene.frame_end],
    }


def scenario_apply_twice():
    """Applying again replaces the animated layer; a moved result moves; bulk write matches the plan."""
    enable()
    gp = ext("grease_pencil.blender_io")
    ob = make_gp_object(transformed=False)
    bpy.context.scene.frame_end = 3
    sketch = gp.sketch_from_layer(ob, "Lines", 1)
    gp.apply_animation(ob, static_result(sketch, frames=4), start_frame=1)
    layer = gp.apply_animation(ob, static_result(sketch, frames=6, shift_px=10.0), start_frame=2).layer
    names = [l.name for l in ob.data.layers]
    frames = read_layer(ob, layer)
    dx = [float(np.mean(frames[f]["position"][:, 0] - frames[2]["position"][:, 0])) for f in sorted(frames)]
    scale = sketch.metadata["blender_mapping"]["scale"]
    return {
        "layers": names,
        "keyframes": sorted(frames),
        "mean_dx_units": dx,
        "expected_dx_per_frame": 10.0 / scale,
        "frame_range": [bpy.context.scene.frame_start, bpy.context.scene.frame_end],
    }


def scenario_bad_inputs():
    """Every refusal is one line, through the operators, and the strokes stay as they were."""
    enable()
    jobs = ext("operators.jobs")
    messages = {}
    ob = make_gp_object(transformed=False)
    before = read_layer(ob, ob.data.layers["Lines"])

    def run(op, key):
        with bpy.context.temp_override(object=bpy.context.view_layer.objects.active, active_object=bpy.context.view_layer.objects.active):
            try:
                op()
            except RuntimeError as exc:  # an operator that reports ERROR raises in background mode
                messages[key] = str(exc).strip().splitlines()[-1]
                return
        messages[key] = bpy.context.view_layer.objects.active.sketch_animator.last_error or "(no error)"

    settings = ob.sketch_animator
    settings.video = ARGS["video"]
    run(bpy.ops.sketch_animator.animate, "no_engine_python")
    set_preferences(engine_python=sys.executable)  # Blender's Python: no torch, no diffusers …
    run(bpy.ops.sketch_animator.animate, "engine_python_missing_packages")
    set_preferences(engine_python=ARGS["engine_python"], model=ARGS["model"], cache_dir=ARGS["cache_dir"])
    settings.video = "/nonexistent/video.mp4"
    run(bpy.ops.sketch_animator.animate, "missing_video")
    settings.video = ARGS["video"]
    settings.layer_mode, settings.layer = "ONE", "Nope"
    run(bpy.ops.sketch_animator.animate, "missing_layer")
    settings.layer = "Lines"
    empty = ob.data.layers.new("Empty")
    empty.frames.new(1)
    settings.layer = "Empty"
    run(bpy.ops.sketch_animator.animate, "empty_layer")
    settings.layer = "Lines"

    many = ob.data.layers.new("Many")
    drawing = many.frames.new(1).drawing
    drawing.add_strokes([2] * 2500)
    set_attr(drawing, "position", np.random.default_rng(0).uniform(-1, 1, (5000, 3)).astype(np.float32), "FLOAT_VECTOR", "POINT", "vector")
    settings.layer = "Many"
    run(bpy.ops.sketch_animator.animate, "thousands_of_strokes")
    settings.layer = "Lines"
    ob.data.layers.remove(many)
    settings.layer_mode, settings.pinned_layers = "VISIBLE", "Lines"  # the only layer with strokes, pinned
    run(bpy.ops.sketch_animator.animate, "everything_pinned")
    settings.pinned_layers = ""
    for layer in ob.data.layers:
        layer.hide = True
    run(bpy.ops.sketch_animator.animate, "no_visible_layer")
    for layer in ob.data.layers:
        layer.hide = False
    settings.layer_mode = "ONE"

    mesh = bpy.data.objects.new("Mesh", bpy.data.meshes.new("Mesh"))
    bpy.context.scene.collection.objects.link(mesh)
    bpy.context.view_layer.objects.active = mesh
    messages["not_grease_pencil_poll"] = bpy.ops.sketch_animator.animate.poll()
    bpy.context.view_layer.objects.active = ob

    # applying a result made from 3 strokes after a stroke was added: refused, nothing changed
    gp = ext("grease_pencil.blender_io")
    sketch = gp.sketch_from_layer(ob, "Lines", 1)
    ob.data.layers["Lines"].frames[0].drawing.add_strokes([2])
    try:
        gp.apply_animation(ob, static_result(sketch), 1)
        messages["stroke_count_changed"] = "(applied)"
    except gp.GreasePencilInputError as exc:
        messages["stroke_count_changed"] = str(exc)
    ob.data.layers["Lines"].frames[0].drawing.remove_strokes(indices=[3])

    after = read_layer(ob, ob.data.layers["Lines"])
    unchanged = all(np.array_equal(before[1][k], after[1][k]) for k in before[1] if before[1][k] is not None)
    # the engine refusing a video it cannot decode: the error event reaches the panel, the log stays
    bad_video = os.path.join(ARGS["cache_dir"], "broken.mp4")
    with open(bad_video, "wb") as handle:
        handle.write(b"\x00not a video\x00" * 100)
    settings.video = bad_video
    settings.custom_steps = True
    settings.appearance_steps = settings.motion_steps = settings.distillation_steps = 1
    run(bpy.ops.sketch_animator.animate, "broken_video_start")
    job = jobs.tracked(settings.job_dir)
    deadline = time.monotonic() + 300
    while job.watcher.poll().is_active and time.monotonic() < deadline:
        jobs.poll_jobs()
        time.sleep(0.2)
    jobs.poll_jobs()
    messages["broken_video"] = settings.last_error
    return {
        "messages": messages,
        "source_unchanged": bool(unchanged),
        "layers": [l.name for l in ob.data.layers],
        "broken_state": job.watcher.status.state,
        "log_kept": os.path.isfile(os.path.join(settings.job_dir, "engine.log")),
        "job_dir_in_cache": settings.job_dir.startswith(ARGS["cache_dir"]),
    }


def scenario_svg_import():
    enable()
    before = set(bpy.data.objects.keys())
    result = bpy.ops.sketch_animator.import_svg(filepath=ARGS["svg"])
    new = [bpy.data.objects[name] for name in set(bpy.data.objects.keys()) - before]
    ob = new[0]
    drawing = ob.data.layers["Lines"].frames[0].drawing
    broken = os.path.join(ARGS["cache_dir"], "broken.svg")
    with open(broken, "w") as handle:
        handle.write("<svg><path d='M 0 0 L")
    try:
        bpy.ops.sketch_animator.import_svg(filepath=broken)
        error = "(imported)"
    except RuntimeError as exc:
        error = str(exc).strip().splitlines()[-1]
    return {
        "result": sorted(result),
        "objects": len(new),
        "type": ob.type,
        "strokes": drawing.attributes.domain_size("CURVE"),
        "curve_types": sorted(set(s.curve_type for s in drawing.strokes)),
        "active": bpy.context.view_layer.objects.active == ob,
        "broken_error": error,
        "objects_after_broken": len(bpy.data.objects) - len(before),
    }


def drive(jobs, settings, timeout_s=600):
    """Call the poller like Blender's timer would, until the job is no longer active."""
    deadline = time.monotonic() + timeout_s
    job = jobs.tracked(settings.job_dir)
    while time.monotonic() < deadline:
        jobs.poll_jobs()
        if not job.watcher.status.is_active:
            break
        time.sleep(0.2)
    return job.watcher.status


def prepare_job_object(frames=4, steps=(2, 2, 3), transformed=True):
    set_preferences(engine_python=ARGS["engine_python"], model=ARGS["model"], cache_dir=ARGS["cache_dir"], device="cpu")
    ob = make_gp_object(transformed=transformed)
    settings = ob.sketch_animator
    settings.video = ARGS["video"]
    settings.subject_prompt, settings.motion_prompt = "A doodle.", "A doodle moves right."
    settings.pose_mode, settings.num_frames, settings.start_frame = "COUNT", frames, 10
    settings.key_timing, settings.inbetweens = "every_frame", "hold"  # one key per frame, as these scenarios check
    settings.custom_steps = True
    settings.appearance_steps, settings.motion_steps, settings.distillation_steps = steps
    settings.resolution = 64
    settings.checkpoint_every = 1
    return ob


def scenario_end_to_end():
    """Animate → engine subprocess → poll → Apply → save → reopen, with the tiny model."""
    enable()
    jobs = ext("operators.jobs")
    bpy.ops.wm.save_as_mainfile(filepath=ARGS["blend"])
    ob = prepare_job_object(frames=4, steps=(2, 2, 3))
    source_before = read_layer(ob, ob.data.layers["Lines"])
    t0 = time.monotonic()
    started = bpy.ops.sketch_animator.animate()
    settings = ob.sketch_animator
    status = drive(jobs, settings)
    elapsed = time.monotonic() - t0
    summary = status.summary()
    applied = bpy.ops.sketch_animator.apply()
    layer = ob.data.layers["Lines animated"]
    frames = read_layer(ob, layer)
    result = ext("engine.job.results").read_result(os.path.join(settings.job_dir, "result"))
    plans = ext("grease_pencil.keyframes").plan_keyframes(result)
    gp = ext("grease_pencil.blender_io")
    to_layer = np.linalg.solve(gp.layer_matrix_world(ob, layer), np.array(ob.matrix_world, dtype=np.float64))  # plans are object-local
    in_layer = ext("grease_pencil.mapping").local_to_world
    position_err = max(float(np.abs(frames[10 + p.frame_index]["position"] - in_layer(p.positions, to_layer)).max()) for p in plans)
    handle_err = max(float(np.abs(frames[10 + p.frame_index]["handle_right"] - in_layer(p.handle_right, to_layer)).max()) for p in plans)
    source_after = read_layer(ob, ob.data.layers["Lines"])
    source_same = all(np.array_equal(source_before[1][k], source_after[1][k]) for k in source_before[1] if source_before[1][k] is not None)
    events = [json.loads(line)["kind"] for line in open(os.path.join(settings.job_dir, "events.jsonl"))]
    source_hidden = bool(ob.data.layers["Lines"].hide)
    bpy.ops.wm.save_mainfile()
    job_dir = settings.job_dir
    bpy.ops.wm.open_mainfile(filepath=ARGS["blend"])
    ob2 = bpy.data.objects["Sketch"]
    reopened = read_layer(ob2, ob2.data.layers["Lines animated"])
    status2 = jobs.status_of(ob2)
    return {
        "started": sorted(started),
        "applied": sorted(applied),
        "state": status.state,
        "summary": summary,
        "error": status.error,
        "seconds": elapsed,
        "keyframes": sorted(frames),
        "strokes_per_frame": [len(frames[f]["offsets"]) - 1 for f in sorted(frames)],
        "source_strokes": len(source_before[1]["offsets"]) - 1,
        "result_frames": result.num_frames,
        "position_error": position_err,
        "handle_error": handle_err,
        "source_unchanged": bool(source_same),
        "source_hidden": source_hidden,
        "events": sorted(set(events)),
        "job_dir_next_to_blend": job_dir.startswith(os.path.dirname(ARGS["blend"])),
        "reopened_keyframes": sorted(reopened),
        "reopened_equal": all(np.array_equal(reopened[f]["position"], frames[f]["position"]) for f in frames),
        "reattached_state": None if status2 is None else status2.state,
        "log": os.path.isfile(os.path.join(job_dir, "engine.log")),
    }


def scenario_cancel_resume():
    """Cancel a running job, reload the .blend (a new session: nothing kept in memory), find the job
    again, resume it, and check that stage 3 continued from its checkpoint."""
    enable()
    jobs = ext("operators.jobs")
    bpy.ops.wm.save_as_mainfile(filepath=ARGS["blend"])
    ob = prepare_job_object(frames=4, steps=(2, 2, 120), transformed=False)
    settings = ob.sketch_animator
    bpy.ops.sketch_animator.animate()
    job = jobs.tracked(settings.job_dir)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # until stage 3 has made a few steps (and checkpoints)
        status = job.watcher.poll()
        if status.stage == "distillation" and status.step >= 3 or not status.is_active:
            break
        time.sleep(0.2)
    running_summary = status.summary()
    step_at_cancel = status.step
    fraction_at_cancel = status.fraction
    cancelled = bpy.ops.sketch_animator.cancel()
    status = drive(jobs, settings, timeout_s=120)
    state_after_cancel, summary_after_cancel = status.state, status.summary()
    bpy.ops.wm.save_mainfile()
    jobs.JOBS.clear()  # what a Blender restart forgets
    bpy.ops.wm.open_mainfile(filepath=ARGS["blend"])
    ob = bpy.data.objects["Sketch"]
    bpy.context.view_layer.objects.active = ob
    reattached = jobs.status_of(ob).state
    settings = ob.sketch_animator
    settings.distillation_steps = 120  # unchanged settings: the job folder keeps its own
    resumed = bpy.ops.sketch_animator.resume()
    # reattach while running: forget the process handle, as a restarted Blender would
    time.sleep(1.0)
    jobs.JOBS.clear()
    status = jobs.tracked(settings.job_dir).watcher.poll()
    state_while_running = status.state
    status = drive(jobs, settings, timeout_s=900)
    starts = [json.loads(line) for line in open(os.path.join(settings.job_dir, "events.jsonl"))]
    distillation_starts = [e.get("initial", 0) for e in starts if e["kind"] == "stage_start" and e["stage"] == "distillation"]
    return {
        "running_summary": running_summary,
        "fraction_at_cancel": fraction_at_cancel,
        "step_at_cancel": step_at_cancel,
        "cancelled": sorted(cancelled),
        "state_after_cancel": state_after_cancel,
        "summary_after_cancel": summary_after_cancel,
        "reattached_after_reload": reattached,
        "resumed": sorted(resumed),
        "state_while_running_after_forgetting": state_while_running,
        "final_state": status.state,
        "final_error": status.error,
        "distillation_stage_starts": distillation_starts,
    }


def scenario_preview_motion():
    """The Preview motion button: optical-flow job, then applied like a full result."""
    enable()
    jobs = ext("operators.jobs")
    ob = prepare_job_object(frames=6, transformed=True)
    ob.sketch_animator.resolution = 128
    started = bpy.ops.sketch_animator.preview_motion()
    status = drive(jobs, ob.sketch_animator, timeout_s=300)
    applied = bpy.ops.sketch_animator.apply()
    layer = ob.data.layers["Lines animated"]
    frames = read_layer(ob, layer)
    keys = sorted(frames)
    first_world = world(ob, layer, frames[keys[0]]["position"])
    last_world = world(ob, layer, frames[keys[-1]]["position"])
    result = ext("engine.job.results").read_result(os.path.join(ob.sketch_animator.job_dir, "result"))
    return {
        "started": sorted(started),
        "state": status.state,
        "error": status.error,
        "applied": sorted(applied),
        "keyframes": keys,
        "strokes_per_frame": [len(frames[f]["offsets"]) - 1 for f in keys],
        "moved_world_units": float(np.linalg.norm(last_world - first_world, axis=1).mean()),
        "result_kind": result.metadata.get("kind"),
    }


def scenario_animate_selected():
    """Animate Selected on two objects: one batch on a local Ray (a shared motion learned once), each
    panel following its own job, then Apply All applies both."""
    enable()
    jobs = ext("operators.jobs")
    bpy.ops.wm.save_as_mainfile(filepath=ARGS["blend"])
    first = prepare_job_object(frames=4, steps=(1, 1, 2))
    second = prepare_job_object(frames=4, steps=(1, 1, 2), transformed=False)
    second.sketch_animator.subject_prompt = "Another doodle."
    for ob in bpy.context.view_layer.objects:
        ob.select_set(ob in (first, second))
    bpy.context.view_layer.objects.active = first
    started = bpy.ops.sketch_animator.animate_selected()
    followed = [jobs.tracked(ob.sketch_animator.job_dir) for ob in (first, second)]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and any(job.watcher.status.is_active or job.watcher.status.state == "new" for job in followed):
        jobs.poll_jobs()
        time.sleep(0.2)
    records = [json.load(open(os.path.join(ob.sketch_animator.job_dir, "process.json"))) for ob in (first, second)]
    applied = bpy.ops.sketch_animator.apply_all()
    batch_log = os.path.join(os.path.dirname(first.sketch_animator.job_dir), "batch.jsonl")
    stage_tasks = [e["stage"] for e in map(json.loads, open(batch_log)) if e["kind"] == "stage_task"]
    return {
        "started": sorted(started),
        "states": [job.watcher.status.state for job in followed],
        "errors": [job.watcher.status.error for job in followed],
        "one_process": len({r["pid"] for r in records}) == 1 and all(r.get("batch") for r in records),
        "applied": sorted(applied),
        "keyframes": [sorted(read_layer(ob, ob.data.layers["Lines animated"])) for ob in (first, second)],
        "stage_tasks": sorted(stage_tasks),
        "subjects": [ext("engine.job.results").read_result(os.path.join(ob.sketch_animator.job_dir, "result")).metadata["subject_prompt"] for ob in (first, second)],
    }


def scenario_object_renamed_and_deleted():
    """Renaming the object while its job runs keeps the job with it; deleting it leaves the result on disk."""
    enable()
    jobs = ext("operators.jobs")
    ob = prepare_job_object(frames=4, transformed=False)
    bpy.ops.sketch_animator.preview_motion()
    ob.name = "Renamed"
    status = drive(jobs, ob.sketch_animator, timeout_s=300)
    owner = jobs.owner_of(str(jobs.tracked(ob.sketch_animator.job_dir).watcher.job_dir))
    applied = bpy.ops.sketch_animator.apply()
    # a second object, deleted while its job runs: polling carries on, nothing raises
    other = prepare_job_object(frames=4, transformed=False)
    bpy.context.view_layer.objects.active = other
    bpy.ops.sketch_animator.preview_motion()
    job_dir = other.sketch_animator.job_dir
    bpy.data.objects.remove(other)
    deadline = time.monotonic() + 300
    job = jobs.tracked(job_dir)
    while job.watcher.status.is_active and time.monotonic() < deadline:
        jobs.poll_jobs()
        time.sleep(0.2)
    return {
        "state": status.state,
        "owner": None if owner is None else owner.name,
        "applied": sorted(applied),
        "deleted_owner_state": job.watcher.status.state,
        "deleted_result_kept": os.path.isfile(os.path.join(job_dir, "result", "result.json")),
    }


def scenario_check_engine():
    """The preferences' Check button on a Python without the engine's packages, and on a working one."""
    enable()
    ops = ext("operators.ops")
    out = {}
    for key, python in (("bare", sys.executable), ("engine", ARGS["engine_python"])):
        set_preferences(engine_python=python)
        try:
            bpy.ops.sketch_animator.check_engine()
        except RuntimeError:
            pass
        out[key] = ops.ENVIRONMENT_REPORT.get("summary")
    out["online_access"] = bpy.app.online_access
    for key, op in (("download", bpy.ops.sketch_animator.download_model), ("create", bpy.ops.sketch_animator.create_engine)):
        try:
            op()
            out[key] = "(started)"
        except RuntimeError as exc:
            out[key] = str(exc).strip().splitlines()[-1]
    return out


def timed_result(sketch, times_s, period_s=None, motion=None):
    """An animated Sketch with a result's timing: pose k at times_s[k], moved by motion(t) (canvas px;
    default a circle of 20 px at 2 rad/s, a curved motion smooth in time)."""
    flat = sketch.flat_points()
    motion = motion or (lambda t: 20 * np.array([np.cos(2 * t) - 1, np.sin(2 * t)]))
    animated = sketch.with_frames(np.stack([flat + motion(t) for t in times_s]))
    times = list(times_s)
    animated.metadata["timing"] = {"times_s": times, "period_s": period_s or times[-1] + (times[-1] - times[0]) / (len(times) - 1)}
    return animated


def key_frames(layer):
    return [(f.frame_number, f.keyframe_type) for f in layer.frames]


def evaluated_positions(ob, layer_name, frame):
    bpy.context.scene.frame_set(frame)
    evaluated = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
    current = evaluated.data.layers[layer_name].current_frame()
    arrays = ext("grease_pencil.blender_io").read_drawing_arrays(current.drawing)
    return arrays["position"].astype(np.float64)


def scenario_timing():
    """Apply with timing: keys on the scene's frame rate, in-betweens, holds, cycles, old results, bad input."""
    enable()
    gp = ext("grease_pencil.blender_io")
    timing = ext("grease_pencil.timing")
    scene = bpy.context.scene
    ob = make_gp_object(transformed=False)
    sketch = gp.sketch_from_layer(ob, "Lines", 1)
    times = [round(k * 23 / 15 + 1e-9) / 12 for k in range(16)]  # 16 poses of a 2 s reference at 12 fps
    result = timed_result(sketch, times)
    out = {"keys": {}, "expected": {}}
    for label, fps, fps_base, speed in (("24", 24, 1.0, 1.0), ("29.97", 30, 1.001, 1.0), ("half", 24, 1.0, 0.5), ("double", 24, 1.0, 2.0)):
        scene.render.fps, scene.render.fps_base = fps, fps_base
        applied = gp.apply_animation(ob, result, 10, timing.TimingOptions(speed=speed, inbetweens="hold"), scene)
        out["keys"][label] = [n for n, _ in key_frames(applied.layer)]
        scene_fps = fps / fps_base
        out["expected"][label] = sorted({10 + round(t * scene_fps * speed) for t in times})
    scene.render.fps, scene.render.fps_base = 24, 1.0

    # smooth in-betweens: keys exact, BREAKDOWN between, a point's path C1
    applied = gp.apply_animation(ob, result, 10, timing.TimingOptions(), scene)
    layer = applied.layer
    frames = read_layer(ob, layer)
    types = dict(key_frames(layer))
    key_numbers = [10 + int(o) for o in applied.schedule.key_offsets]
    plans = ext("grease_pencil.keyframes").plan_keyframes(result)
    key_error = max(float(np.abs(frames[n]["position"] - plans[i].positions).max()) for i, n in enumerate(key_numbers))
    path = np.stack([frames[n]["position"][0] for n in sorted(frames)])  # the first knot, every frame
    jumps = np.linalg.norm(np.diff(path, 2, axis=0), axis=1)  # velocity change around each frame (frames 11 … last − 1)
    around_key = np.isin(np.arange(11, 11 + len(jumps)), key_numbers)
    out["smooth"] = {
        "frames": sorted(frames), "key_numbers": key_numbers, "key_error": key_error,
        "types_at_keys": sorted({types[n] for n in key_numbers}), "types_between": sorted({t for n, t in types.items() if n not in key_numbers}),
        "jump_at_keys": float(jumps[around_key].max()), "jump_between": float(jumps[~around_key].max()),
        "max_velocity": float(np.linalg.norm(np.diff(path, axis=0), axis=1).max()),
    }
    # holds: only keys; a frame between two keys shows the earlier key
    applied = gp.apply_animation(ob, result, 10, timing.TimingOptions(inbetweens="hold"), scene)
    held_frame = key_numbers[1] + 1
    out["hold"] = {
        "frames": [n for n, _ in key_frames(applied.layer)],
        "shown_between": applied.layer.get_frame_at(held_frame).frame_number,
        "types": sorted({t for _, t in key_frames(applied.layer)}),
    }
    # a cycle: in-betweens back into the first key, a Time Offset modifier on the animated layer only
    cycle_times = [k / 12 for k in range(12)]
    circle = lambda t: 20 * np.array([np.cos(2 * np.pi * t) - 1, np.sin(2 * np.pi * t)])  # noqa: E731  one turn per second
    applied = gp.apply_animation(ob, timed_result(sketch, cycle_times, 1.0, circle), 10, timing.TimingOptions(loop="cycle"), scene)
    layer_name = applied.layer.name
    modifier = next(m for m in ob.modifiers if m.type == "GREASE_PENCIL_TIME")
    period = applied.schedule.period
    inside = np.stack([evaluated_positions(ob, layer_name, 10 + f)[0] for f in range(period + 2)])
    later = [evaluated_positions(ob, layer_name, 10 + 3 * period + f) for f in (0, 5)]
    steps = np.linalg.norm(np.diff(inside, axis=0), axis=1)
    out["cycle"] = {
        "period": period, "modifier_mode": modifier.mode, "filter": modifier.tree_node_filter, "layer": layer_name,
        "range": [modifier.frame_start, modifier.frame_end], "keep_loop": modifier.use_keep_loop, "offset": modifier.offset,
        "looped_equal": [float(np.abs(later[0] - evaluated_positions(ob, layer_name, 10)).max()), float(np.abs(later[1] - evaluated_positions(ob, layer_name, 15)).max())],
        "seam_step": float(steps[period - 1]), "mean_step": float(steps[: period - 1].mean()),
        "other_layer_frames": [f.frame_number for f in ob.data.layers["Lines"].frames],
    }
    applied = gp.apply_animation(ob, timed_result(sketch, cycle_times, 1.0, circle), 10, timing.TimingOptions(loop="pingpong"), scene)
    modifiers = [m for m in ob.modifiers if m.type == "GREASE_PENCIL_TIME"]
    out["pingpong"] = {"count": len(modifiers), "mode": modifiers[0].mode, "range": [modifiers[0].frame_start, modifiers[0].frame_end]}
    applied = gp.apply_animation(ob, result, 10, timing.TimingOptions(), scene)
    out["once_modifiers"] = len([m for m in ob.modifiers if m.type == "GREASE_PENCIL_TIME"])

    # an older result without timing: consecutive keys, with a note
    old = static_result(sketch, frames=5, shift_px=2.0)
    applied = gp.apply_animation(ob, old, 3, timing.TimingOptions(), scene)
    out["old"] = {"frames": [n for n, _ in key_frames(applied.layer)], "notes": applied.notes}
    # bad timing: one line, nothing changed
    before = [n for n, _ in key_frames(applied.layer)]
    messages = {}
    for label, options in (("speed", timing.TimingOptions(speed=0.0)), ("fit", timing.TimingOptions(keys="fit", fit_frames=0))):
        try:
            gp.apply_animation(ob, result, 10, options, scene)
            messages[label] = "(applied)"
        except gp.GreasePencilInputError as exc:
            messages[label] = str(exc)
    out["bad"] = {"messages": messages, "unchanged": [n for n, _ in key_frames(ob.data.layers["Lines animated"])] == before}
    return out


def make_drawing_object():
    """A hand-drawn scene: on "Lines", POLY strokes whose radius swells from 0.005 to 0.03 along them,
    with opacity and vertex colour varying (one with a flat start), and a ground line; on "Fills",
    a closed stroke whose material draws only a fill. An orthographic camera looks at the X–Z plane."""
    gp = ext("grease_pencil.blender_io")
    scene = bpy.context.scene
    for name in ("Cube", "Light"):
        if name in bpy.data.objects:
            bpy.data.objects.remove(bpy.data.objects[name])
    camera = scene.camera
    camera.location, camera.rotation_euler = (0, -10, 0), (np.radians(90), 0, 0)
    camera.data.type, camera.data.ortho_scale = "ORTHO", 4.0
    data = gp.gp_datablocks().new("Drawing")
    ob = bpy.data.objects.new("Drawing", data)
    scene.collection.objects.link(ob)
    ink = bpy.data.materials.new("Drawing ink")
    bpy.data.materials.create_gpencil_data(ink)
    ink.grease_pencil.color = (0.05, 0.05, 0.05, 1.0)
    fill = bpy.data.materials.new("Drawing fill")
    bpy.data.materials.create_gpencil_data(fill)
    fill.grease_pencil.show_stroke, fill.grease_pencil.show_fill = False, True
    fill.grease_pencil.fill_color = (0.9, 0.4, 0.1, 1.0)
    data.materials.append(ink)
    data.materials.append(fill)
    lines = data.layers.new("Lines", set_active=True)
    fills = data.layers.new("Fills", set_active=False)
    fills.opacity = 0.8
    drawing = lines.frames.new(1).drawing
    sizes, positions, radius, opacity, colour = [], [], [], [], []
    for i, count in enumerate((60, 45, 70)):
        t = np.linspace(0, 1, count)
        positions.append(np.c_[2.4 * t - 1.2, np.zeros(count), 0.5 * np.sin(4 * t + i) + 0.5 * i - 0.4])
        radius.append(0.005 + 0.025 * np.sin(np.pi * t) ** 2)
        opacity.append(0.5 + 0.5 * t)
        colour.append(np.c_[t, 1 - t, np.full(count, 0.3), np.full(count, 0.6)])
        sizes.append(count)
    ground = np.linspace(-1.5, 1.5, 20)
    positions.append(np.c_[ground, np.zeros(20), np.full(20, -1.3)])
    radius.append(np.full(20, 0.02)), opacity.append(np.ones(20)), colour.append(np.zeros((20, 4))), sizes.append(20)
    drawing.add_strokes(sizes)
    set_attr(drawing, "position", np.concatenate(positions).astype(np.float32), "FLOAT_VECTOR", "POINT", "vector")
    set_attr(drawing, "radius", np.concatenate(radius).astype(np.float32), "FLOAT", "POINT", "value")
    set_attr(drawing, "opacity", np.concatenate(opacity).astype(np.float32), "FLOAT", "POINT", "value")
    set_attr(drawing, "vertex_color", np.concatenate(colour).astype(np.float32), "FLOAT_COLOR", "POINT", "color")
    set_attr(drawing, "start_cap", np.array([1, 0, 0, 0], np.int8), "INT8", "CURVE", "value")
    filled = fills.frames.new(1).drawing
    angle = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    filled.add_strokes([36])
    set_attr(filled, "position", np.c_[0.6 * np.cos(angle), np.zeros(36), 0.45 * np.sin(angle)].astype(np.float32), "FLOAT_VECTOR", "POINT", "vector")
    set_attr(filled, "radius", np.full(36, 0.01, np.float32), "FLOAT", "POINT", "value")
    set_attr(filled, "opacity", np.ones(36, np.float32), "FLOAT", "POINT", "value")
    set_attr(filled, "cyclic", np.array([True]), "BOOLEAN", "CURVE", "value")
    set_attr(filled, "material_index", np.array([1], np.int32), "INT", "CURVE", "value")
    bpy.context.view_layer.objects.active = ob
    data.layers.active = lines
    return ob


def ink_mask(path_png):
    pixels = np.array(bpy.data.images.load(path_png).pixels[:]).reshape(256, 256, 4)
    return np.abs(pixels[..., :3] - pixels[0, 0, :3]).max(-1) > 0.15


def render_layers(ob, visible, frame, path):
    """A Workbench render of the object with only `visible` layers shown, at `frame`."""
    scene = bpy.context.scene
    hidden = {layer.name: layer.hide for layer in ob.data.layers}
    for layer in ob.data.layers:
        layer.hide = layer.name not in visible
    scene.frame_set(frame)
    render = scene.render
    render.engine, render.resolution_x, render.resolution_y, render.resolution_percentage = "BLENDER_WORKBENCH", 256, 256, 100
    render.filepath = path
    bpy.ops.render.render(write_still=True)
    for layer in ob.data.layers:
        layer.hide = hidden[layer.name]
    return ink_mask(path)


def iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def scenario_drawing():
    """The artist's own line: per-point radius, opacity and colour, caps, both layers together, pins, renders."""
    enable()
    gp = ext("grease_pencil.blender_io")
    timing = ext("grease_pencil.timing")
    ob = make_drawing_object()
    with bpy.context.temp_override(object=ob, active_object=ob):  # pin the ground line: select it alone
        selection = ob.data.layers["Lines"].frames[0].drawing.attributes.new(".selection", "BOOLEAN", "CURVE")
        selection.data.foreach_set("value", np.array([False, False, False, True]))
        pinned_result = bpy.ops.sketch_animator.pin_strokes(pinned=True)
    source = {name: read_layer(ob, ob.data.layers[name])[1] for name in ("Lines", "Fills")}
    layer_set = gp.default_layer_set(ob, 1)
    sketch = gp.sketch_from_layers(ob, layer_set, 1)
    out = {"pin": sorted(pinned_result), "layer_set": layer_set, "paths": len(sketch.paths), "pinned_paths": [p.pinned for p in sketch.paths]}
    frames_once = timing.TimingOptions(keys="every_frame", inbetweens="hold")

    # an identity result, on the drawn points: every attribute exactly the source's
    applied = gp.apply_animation(ob, static_result(sketch, frames=2), 1, frames_once, form="points")
    order = [layer.name for layer in ob.data.layers]
    written = {name: read_layer(ob, ob.data.layers[f"{name} animated"])[1] for name in ("Lines", "Fills")}
    exact = {}
    for name in ("Lines", "Fills"):
        points, curves = len(source[name]["position"]), len(source[name]["offsets"]) - 1
        defaults = {"radius": np.full(points, 0.01), "opacity": np.ones(points), "vertex_color": np.zeros((points, 4)),
                    "material_index": np.zeros(curves), "cyclic": np.zeros(curves, bool)}  # an absent attribute: Blender's default  # fmt: skip
        for key in ("radius", "opacity", "vertex_color", "offsets", "material_index", "cyclic"):
            a, b = (source[name][key] if source[name][key] is not None else defaults[key]), (written[name][key] if written[name][key] is not None else defaults[key])
            exact[f"{name}.{key}"] = bool(np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32)))
        exact[f"{name}.position_error"] = float(np.abs(source[name]["position"] - written[name]["position"]).max())
    out["points"] = {
        "layers": [layer.name for layer in applied.layers], "order": order, "exact": exact,
        "start_cap": written["Lines"]["start_cap"].tolist() if written["Lines"]["start_cap"] is not None else None,
        "curve_types": sorted(set(written["Lines"]["curve_type"].tolist())),
        "fills_opacity": ob.data.layers["Fills animated"].opacity,
    }
    source_ink = render_layers(ob, {"Lines", "Fills"}, 1, os.path.join(ARGS["cache_dir"], "source.png"))
    animated_ink = render_layers(ob, {"Lines animated", "Fills animated"}, 1, os.path.join(ARGS["cache_dir"], "points.png"))
    out["points"]["render_iou"] = iou(source_ink, animated_ink)
    out["points"]["ink_pixels"] = int(source_ink.sum())

    # the same as editable Béziers: the line weight kept within 10% at every drawn point
    gp.apply_animation(ob, static_result(sketch, frames=2), 1, frames_once, form="bezier")
    bezier = read_layer(ob, ob.data.layers["Lines animated"])[1]
    metas = [m for m in sketch.metadata["blender_strokes"] if m["layer"] == "Lines"]
    worst = 0.0
    for i, meta in enumerate(metas):
        knots = bezier["radius"][bezier["offsets"][i] : bezier["offsets"][i + 1]].astype(np.float64)
        params = np.asarray(meta["params"])
        k = np.clip(np.floor(params).astype(int), 0, len(knots) - 2)
        u = params - k
        profile = knots[k] * (1 - u) + knots[k + 1] * u  # Grease Pencil interpolates radius linearly between knots
        drawn = np.asarray(meta["radius"])
        worst = max(worst, float((np.abs(profile - drawn) / drawn).max()))
    bezier_ink = render_layers(ob, {"Lines animated", "Fills animated"}, 1, os.path.join(ARGS["cache_dir"], "bezier.png"))
    out["bezier"] = {"worst_profile_error": worst, "curve_types": sorted(set(bezier["curve_type"].tolist())), "render_iou": iou(source_ink, bezier_ink)}

    # a known motion: everything but the pinned line moves 12 px to the right
    flat, still = sketch.flat_points(), sketch.still_points()
    moving = np.stack([np.where(still[:, None], flat, flat + [12.0 * f, 0.0]) for f in range(3)])
    gp.apply_animation(ob, sketch.with_frames(moving), 1, frames_once, form="points")
    frame_3 = {name: read_layer(ob, ob.data.layers[f"{name} animated"])[3] for name in ("Lines", "Fills")}
    lines_world = world(ob, ob.data.layers["Lines animated"], frame_3["Lines"]["position"]) - world(ob, ob.data.layers["Lines"], source["Lines"]["position"])
    fills_world = world(ob, ob.data.layers["Fills animated"], frame_3["Fills"]["position"]) - world(ob, ob.data.layers["Fills"], source["Fills"]["position"])
    ground = slice(int(source["Lines"]["offsets"][3]), int(source["Lines"]["offsets"][4]))
    others = slice(0, int(source["Lines"]["offsets"][3]))
    out["motion"] = {
        "lines_shift": lines_world[others].mean(axis=0).tolist(), "fills_shift": fills_world.mean(axis=0).tolist(),
        "shift_spread": float(np.ptp(np.concatenate([lines_world[others], fills_world])[:, 0])),
        "pinned_identical": bool(np.array_equal(frame_3["Lines"]["position"][ground], source["Lines"]["position"][ground])),
    }

    # bad input: a changed layer set, a renamed layer; nothing of the user's strokes touched
    messages = {}
    before = {name: read_layer(ob, ob.data.layers[name])[1]["position"].copy() for name in ("Lines", "Fills")}
    extra = ob.data.layers["Fills"].frames[0].drawing
    extra.add_strokes([2])
    try:
        gp.apply_animation(ob, sketch.with_frames(moving), 1, frames_once)
        messages["changed_set"] = "(applied)"
    except gp.GreasePencilInputError as exc:
        messages["changed_set"] = str(exc)
    extra.remove_strokes(indices=[1])
    ob.data.layers["Fills"].name = "Colour"
    try:
        gp.apply_animation(ob, sketch.with_frames(moving), 1, frames_once)
        messages["renamed"] = "(applied)"
    except gp.GreasePencilInputError as exc:
        messages["renamed"] = str(exc)
    ob.data.layers["Colour"].name = "Fills"
    empty = ob.data.layers.new("Empty")
    empty.frames.new(1)
    try:
        gp.sketch_from_layers(ob, ["Empty"], 1)
        messages["empty_set"] = "(made)"
    except gp.GreasePencilInputError as exc:
        messages["empty_set"] = str(exc)
    after = {name: read_layer(ob, ob.data.layers[name])[1]["position"] for name in ("Lines", "Fills")}
    out["bad"] = {"messages": messages, "unchanged": all(np.array_equal(before[n], after[n]) for n in before)}
    out["format_1"] = apply_format_1_result(gp)
    return out


def apply_format_1_result(gp):
    """A result.json written by the previous release (sketch format 1: one layer, its points in that
    layer's space, uniform widths, round caps) applies as that release applied it."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    result = ext("engine.vector.sketch").Sketch.load_json(os.path.join(data, "result_format_1.json"))
    with open(os.path.join(data, "result_format_1.applied.json")) as handle:
        expected = json.load(handle)
    ob = make_gp_object(name="Sketch")  # the object and layer the old result was made from
    layer = gp.apply_animation(ob, result, expected["start_frame"]).layer
    frames = read_layer(ob, layer)
    then = expected["frames"]
    return {
        "uniform_widths": not result.has_point_widths,
        "round_caps": not any(flags.any() for flags in result.segment_caps()),
        "keys": sorted(frames) == sorted(int(f) for f in then),
        "offsets_equal": all(frames[int(f)]["offsets"].tolist() == then[f]["offsets"] for f in then),
        "curve_types_equal": all(frames[int(f)]["curve_type"].tolist() == then[f]["curve_type"] for f in then),
        "world_error": max(float(np.abs(world(ob, layer, frames[int(f)]["position"]) - then[f]["world"]).max()) for f in then),
        "radius_error": max(float(np.abs(frames[int(f)]["radius"] - then[f]["radius"]).max()) for f in then),
        "written_caps": sorted(set((frames[5]["start_cap"] if frames[5]["start_cap"] is not None else np.zeros(1, int)).tolist())),
    }


def main() -> None:
    try:
        result = globals()[f"scenario_{SCENARIO}"]()
        print("RESULT: " + json.dumps(result), flush=True)
        code = 0
    except BaseException:  # noqa: BLE001 - report everything to the pytest side
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


main()
