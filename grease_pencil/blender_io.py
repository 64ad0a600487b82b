"""Grease Pencil v3 data ↔ the numpy core (strokes, keyframes): bulk reads and writes with bpy.

Every read is one `foreach_get` per attribute and every write one `foreach_set` per
attribute and keyframe; no per-point Python loops (../shared/reference/blender-gpv3-notes.md
§2, §4: the per-point wrapper is ~50× slower). Works on Blender 4.5 (`grease_pencils_v3`)
and 5.0 (`grease_pencils`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from ..engine.vector.sketch import Sketch
from .keyframes import DEFAULT_FORM, FramePlan, plan_keyframes, plan_new_strokes
from .strokes import CURVE_TYPES
from .timing import Schedule, TimingOptions, plan_schedule, scene_frame_rate, scheduled_frames
from .mapping import blender_object_scale, local_to_world
from .strokes import CARRIED_CURVE_ATTRIBUTES, DEFAULT_MARGIN, DEFAULT_TOLERANCE_PX, strokes_from_drawing_arrays, strokes_to_sketch

MAX_STROKES = 2000  # more is a scanned drawing, not a sketch: the video model sees 256² pixels
PINNED_ATTRIBUTE = "sketch_animator_pinned"  # per stroke (CURVE domain): kept still by the animation
ANIMATED_SUFFIX = " animated"
INK_MATERIAL = "Sketch Animator Ink"

# name: (data type, domain, foreach key, width)
GP_ATTRS = {
    "position": ("FLOAT_VECTOR", "POINT", "vector", 3),
    "handle_left": ("FLOAT_VECTOR", "POINT", "vector", 3),
    "handle_right": ("FLOAT_VECTOR", "POINT", "vector", 3),
    "handle_type_left": ("INT8", "POINT", "value", 1),
    "handle_type_right": ("INT8", "POINT", "value", 1),
    "radius": ("FLOAT", "POINT", "value", 1),
    "opacity": ("FLOAT", "POINT", "value", 1),
    "vertex_color": ("FLOAT_COLOR", "POINT", "color", 4),
    "material_index": ("INT", "CURVE", "value", 1),
    "cyclic": ("BOOLEAN", "CURVE", "value", 1),
    "curve_type": ("INT8", "CURVE", "value", 1),
    "start_cap": ("INT8", "CURVE", "value", 1),
    "end_cap": ("INT8", "CURVE", "value", 1),
    "fill_color": ("FLOAT_COLOR", "CURVE", "color", 4),
    "fill_opacity": ("FLOAT", "CURVE", "value", 1),
    "aspect_ratio": ("FLOAT", "CURVE", "value", 1),
    "hardness": ("FLOAT", "CURVE", "value", 1),
    PINNED_ATTRIBUTE: ("BOOLEAN", "CURVE", "value", 1),
}


class GreasePencilInputError(Exception):
    """The Grease Pencil data cannot be used as asked; the message says what to do."""


# --------------------------------------------------------------------------- versions
def gp_datablocks() -> Any:
    """GPv3 data-blocks: `grease_pencils_v3` on 4.5, `grease_pencils` on 5.0 (hasattr, not `or`:
    an empty collection is falsy and 4.5's `grease_pencils` holds legacy annotations)."""
    if hasattr(bpy.data, "grease_pencils_v3"):
        return bpy.data.grease_pencils_v3
    return bpy.data.grease_pencils


def is_grease_pencil(ob: Any) -> bool:
    return ob is not None and getattr(ob, "type", None) == "GREASEPENCIL"


def find_keyframe(layer: Any, frame_number: int) -> Any:
    """The keyframe exactly at `frame_number`, or None (`get_frame_at` is the one *visible*)."""
    return next((f for f in layer.frames if f.frame_number == frame_number), None)


# --------------------------------------------------------------------------- reading
def layer_matrix_world(ob: Any, layer: Any) -> np.ndarray:
    """Stored positions → world, as Blender's `Layer::to_world_space` (no layer.matrix_world in Python)."""
    local = np.array(layer.matrix_local, dtype=np.float64)
    if layer.parent is None:
        return np.array(ob.matrix_world, dtype=np.float64) @ local
    parent = np.array(layer.parent.matrix_world, dtype=np.float64)
    return parent @ np.array(layer.matrix_parent_inverse, dtype=np.float64) @ local


def _read(attrs: Any, name: str, count: int, width: int, dtype: Any) -> np.ndarray | None:
    attr = attrs.get(name)
    if attr is None:
        return None
    out = np.empty(count * width, dtype)
    attr.data.foreach_get(GP_ATTRS[name][2], out)
    return out.reshape(count, width) if width > 1 else out


def read_drawing_arrays(drawing: Any) -> dict[str, Any]:
    """A drawing's strokes as flat arrays (None where an attribute is absent: Blender's default)."""
    attrs = drawing.attributes
    n, c = attrs.domain_size("POINT"), attrs.domain_size("CURVE")
    offsets = np.zeros(c + 1, np.int32)
    if c:  # an empty drawing has one offset, but iterating it yields nothing
        drawing.curve_offsets.foreach_get("value", offsets)
    return {
        "offsets": offsets,
        "position": _read(attrs, "position", n, 3, np.float32),
        "handle_left": _read(attrs, "handle_left", n, 3, np.float32),
        "handle_right": _read(attrs, "handle_right", n, 3, np.float32),
        "radius": _read(attrs, "radius", n, 1, np.float32),
        "opacity": _read(attrs, "opacity", n, 1, np.float32),
        "vertex_color": _read(attrs, "vertex_color", n, 4, np.float32),
        "curve_type": _read(attrs, "curve_type", c, 1, np.int8),
        "cyclic": _read(attrs, "cyclic", c, 1, bool),
        "material_index": _read(attrs, "material_index", c, 1, np.int32),
        "start_cap": _read(attrs, "start_cap", c, 1, np.int8),
        "end_cap": _read(attrs, "end_cap", c, 1, np.int8),
        "pinned": _read(attrs, PINNED_ATTRIBUTE, c, 1, bool),
        "curve_attributes": {name: _read(attrs, name, c, GP_ATTRS[name][3], np.float32) for name in CARRIED_CURVE_ATTRIBUTES if attrs.get(name) is not None},
    }


def material_colors(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per material slot: the (linear RGBA) colour its strokes draw in, and whether it draws a fill
    and no line (its fill colour is used then: the stroke takes part as its outline)."""
    colors, fill_only = [], []
    for material in data.materials:
        gp = getattr(material, "grease_pencil", None) if material is not None else None
        only_fill = gp is not None and bool(gp.show_fill) and not bool(gp.show_stroke)
        colors.append(tuple(gp.fill_color if only_fill else gp.color) if gp is not None else (0.0, 0.0, 0.0, 1.0))
        fill_only.append(only_fill)
    return np.array(colors, dtype=np.float64).reshape(-1, 4), np.array(fill_only, dtype=bool)


def check_object(ob: Any) -> None:
    if not is_grease_pencil(ob):
        kind = "nothing" if ob is None else f"a {ob.type.lower()} object"
        raise GreasePencilInputError(f"the active object is {kind}: select a Grease Pencil object to animate")


def drawing_at(layer: Any, frame: int) -> Any:
    keyframe = layer.get_frame_at(frame)
    return None if keyframe is None else keyframe.drawing


def stroke_count(layer: Any, frame: int) -> int:
    drawing = drawing_at(layer, frame)
    return 0 if drawing is None else drawing.attributes.domain_size("CURVE")


def default_layer_set(ob: Any, frame: int) -> list[str]:
    """What an animator means by "the drawing": every visible, unlocked layer with strokes at the frame."""
    check_object(ob)
    return [layer.name for layer in ob.data.layers if not layer.hide and not layer.lock and stroke_count(layer, frame) > 0]


def source_layers(ob: Any, layer_names: list[str], frame: int) -> list[Any]:
    """The named layers (in the object's order, bottom to top), or a GreasePencilInputError saying why not."""
    check_object(ob)
    if not layer_names:
        raise GreasePencilInputError(f"'{ob.name}' has no visible, unlocked layer with strokes at frame {frame}: draw, unhide or unlock one")
    missing = [name for name in layer_names if ob.data.layers.get(name) is None]
    if missing:
        raise GreasePencilInputError(f"'{ob.name}' has no layer named '{missing[0]}': pick a layer in the Animate panel")
    chosen = [layer for layer in ob.data.layers if layer.name in layer_names]
    for layer in chosen:
        if drawing_at(layer, frame) is None:
            raise GreasePencilInputError(f"layer '{layer.name}' has no drawing at frame {frame}: draw on it or go to a frame with strokes")
    return chosen


def sketch_from_layer(ob: Any, layer_name: str, frame: int, **kwargs: Any) -> Sketch:
    """One layer (the active one when `layer_name` is empty) as the engine's Sketch."""
    check_object(ob)
    layer = ob.data.layers.get(layer_name) if layer_name else ob.data.layers.active
    return sketch_from_layers(ob, [layer_name if layer is None else layer.name], frame, **kwargs)


def sketch_from_layers(
    ob: Any,
    layer_names: list[str],
    frame: int,
    canvas: int = 256,
    margin: float = DEFAULT_MARGIN,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    max_strokes: int = MAX_STROKES,
    pinned_layers: set[str] | frozenset[str] = frozenset(),
) -> Sketch:
    """The strokes of a set of layers at `frame` as one Sketch (validated), with the mapping back.

    Every layer's strokes go to the object's local space, so they share one canvas on the
    object's drawing plane; a layer in `pinned_layers`, or a stroke whose `sketch_animator_pinned`
    attribute is set, is pinned (kept still). Refuses a set with no strokes, or one where every
    stroke is pinned or invisible.
    """
    layers = source_layers(ob, layer_names, frame)
    to_object = np.linalg.inv(np.array(ob.matrix_world, dtype=np.float64))
    colours, fill_only = material_colors(ob.data)
    strokes, counts = [], {}
    for layer in layers:
        arrays = read_drawing_arrays(drawing_at(layer, frame))
        counts[layer.name] = len(arrays["offsets"]) - 1
        if counts[layer.name] == 0 or arrays["position"] is None:
            continue
        to_local = to_object @ layer_matrix_world(ob, layer)  # layer-local → object-local
        for name in ("position", "handle_left", "handle_right"):
            if arrays[name] is not None:
                arrays[name] = local_to_world(arrays[name].astype(np.float64), to_local)
        if layer.name in pinned_layers:
            arrays["pinned"] = np.ones(counts[layer.name], bool)
        strokes += strokes_from_drawing_arrays(material_colors=colours, material_fill_only=fill_only, layer=layer.name, **arrays)
    total = sum(counts.values())
    several = len(layers) > 1
    names = ("layers " if several else "layer ") + ", ".join(f"'{layer.name}'" for layer in layers)
    if total == 0:
        raise GreasePencilInputError(f"{names} {'are' if several else 'is'} empty at frame {frame}: draw a sketch on {'them' if several else 'it'} first")
    if total > max_strokes:
        raise GreasePencilInputError(
            f"{names} {'have' if several else 'has'} {total} strokes; Sketch Animator animates up to {max_strokes} "
            "(the video model sees 256×256 pixels): join or simplify strokes, or move details to another layer"
        )
    sketch = strokes_to_sketch(strokes, np.array(ob.matrix_world), canvas, margin, tolerance_px, radius_scale=blender_object_scale(np.array(ob.matrix_world)))
    if sketch.still_points().all():
        raise GreasePencilInputError(f"every stroke of {names} is pinned or invisible: nothing is left to animate; unpin a layer or some strokes")
    sketch.metadata["blender_source"] = {
        "object": ob.name, "layers": [layer.name for layer in layers], "frame": int(frame), "strokes": counts,
        "layer": layers[0].name if len(layers) == 1 else None,
    }  # fmt: skip
    return sketch


def pin_selected_strokes(ob: Any, frame: int, pinned: bool = True) -> int:
    """Mark (or unmark) the selected strokes of the active layer's drawing at `frame` as pinned; returns how many."""
    check_object(ob)
    layer = ob.data.layers.active
    drawing = None if layer is None else drawing_at(layer, frame)
    if drawing is None or drawing.attributes.domain_size("CURVE") == 0:
        raise GreasePencilInputError("the active layer has no strokes at this frame: select strokes to pin on it")
    attrs = drawing.attributes
    count, points = attrs.domain_size("CURVE"), attrs.domain_size("POINT")
    selection = attrs.get(".selection")
    if selection is None:  # absent: everything is selected
        chosen = np.ones(count, bool)
    elif selection.domain == "CURVE":
        chosen = _read_bool(selection, count)
    else:
        offsets = np.zeros(count + 1, np.int32)
        drawing.curve_offsets.foreach_get("value", offsets)
        chosen = np.logical_or.reduceat(_read_bool(selection, points), offsets[:-1]) if points else np.zeros(count, bool)
    current = _read(attrs, PINNED_ATTRIBUTE, count, 1, bool)
    values = np.zeros(count, bool) if current is None else current.astype(bool)
    values[chosen] = pinned
    set_attribute(drawing, PINNED_ATTRIBUTE, values)
    return int(chosen.sum())


def _read_bool(attribute: Any, count: int) -> np.ndarray:
    out = np.zeros(count, bool)
    attribute.data.foreach_get("value", out)
    return out


# --------------------------------------------------------------------------- writing
def set_attribute(drawing: Any, name: str, values: Any) -> None:
    """Write a whole point/curve attribute at once, creating it with the right type if absent."""
    data_type, domain, key, width = GP_ATTRS[name]
    attrs = drawing.attributes
    n = attrs.domain_size(domain)
    dtype = np.float32 if data_type.startswith("FLOAT") else np.int32
    flat = np.empty((n, width) if width > 1 else n, dtype)
    flat[...] = values
    attr = attrs.get(name) or attrs.new(name, data_type, domain)
    attr.data.foreach_set(key, flat.ravel())


def write_plan(drawing: Any, plan: FramePlan, affine: np.ndarray | None = None) -> None:
    """Replace a drawing's strokes with a keyframe plan (POLY or Bézier strokes, FREE handles).

    `affine` (4×4) maps the plan's object-local points into this drawing's layer.
    """
    positions, left, right = plan.positions, plan.handle_left, plan.handle_right
    if affine is not None and not np.allclose(affine, np.eye(4), atol=1e-12):
        positions, left, right = (local_to_world(p, affine) for p in (positions, left, right))
    drawing.remove_strokes()
    drawing.add_strokes(plan.sizes.tolist())  # POLY strokes
    bezier = np.flatnonzero(plan.curve_type_codes == CURVE_TYPES["BEZIER"])
    if len(bezier):
        drawing.set_types(type="BEZIER", indices=bezier.tolist())
    columns = [("position", positions), ("radius", plan.radius), ("opacity", plan.opacity), ("vertex_color", plan.vertex_color),
               ("material_index", plan.material_index), ("cyclic", plan.cyclic)]  # fmt: skip
    if len(bezier):
        columns += [("handle_left", left), ("handle_right", right), ("handle_type_left", plan.handle_types), ("handle_type_right", plan.handle_types)]
    columns += [
        (name, values) for name, values in plan.curve_attributes.items()
        if name in GP_ATTRS and (values.any() if name in ("start_cap", "end_cap") else not np.isnan(values).any())  # NaN: this drawing had none
    ]  # fmt: skip
    for name, values in columns:
        set_attribute(drawing, name, values)
    drawing.tag_positions_changed()


def keyframe_drawing(layer: Any, frame_number: int, keyframe_type: str = "KEYFRAME") -> Any:
    """The drawing of a new keyframe of that type (an existing one at that frame is reused).

    The type is set at once: a frame reference goes stale after the next `frames.new()`.
    """
    frame = find_keyframe(layer, frame_number) or layer.frames.new(frame_number)
    frame.keyframe_type = keyframe_type
    return frame.drawing


def animated_layer_name(source_name: str) -> str:
    return source_name + ANIMATED_SUFFIX


@dataclass
class Applied:
    """What Apply wrote: the animated layers (one per source layer), the scheduled frames, notes for the user."""

    layers: list[Any]
    schedule: Schedule
    notes: list[str]

    @property
    def layer(self) -> Any:
        return self.layers[0]


def result_layers(ob: Any, result: Sketch, start_frame: int) -> tuple[list[Any], np.ndarray]:
    """The source layers a result was made from, checked against the object as it is now, and the
    space its points are stored in (object-local; one layer's local space for an older result)."""
    check_object(ob)
    source = (result.metadata or {}).get("blender_source") or {}
    names = source.get("layers") or [source.get("layer")]
    frame = int(source.get("frame", start_frame))
    missing = [name for name in names if ob.data.layers.get(name or "") is None]
    if missing:
        raise GreasePencilInputError(
            f"'{ob.name}' has no layer '{missing[0]}' any more: the result was made from it (rename it back, or Animate again; nothing was changed)"
        )
    layers = [ob.data.layers[name] for name in names]
    counts = source.get("strokes")
    expected = counts if isinstance(counts, dict) else ({names[0]: counts} if counts is not None else {})
    for layer in layers:
        now = stroke_count(layer, frame)
        if layer.name in expected and now != expected[layer.name]:
            raise GreasePencilInputError(
                f"layer '{layer.name}' now has {now} strokes, the result was made from {expected[layer.name]}: "
                "the layers no longer match the result; undo the edits or press Animate again (nothing was changed)"
            )
    stored = np.array(ob.matrix_world, dtype=np.float64) if "layers" in source else layer_matrix_world(ob, layers[0])
    return layers, stored


def apply_animation(
    ob: Any, result: Sketch, start_frame: int, timing: TimingOptions = TimingOptions(), scene: Any = None, form: str = DEFAULT_FORM
) -> Applied:
    """Write an animated Sketch (a job's result) as a new layer "<layer> animated" per source layer.

    Keys land on the scene's frame rate as `timing` says (grease_pencil/timing.py), with smooth
    in-betweens (BREAKDOWN keyframes) or holds; a cycle or ping-pong gets a Time Offset modifier
    filtered to each animated layer, so it repeats over the whole scene. `form` "points" writes
    hand-drawn strokes on their own points (they draw exactly like the source), "bezier" as
    editable Bézier curves (keyframes.py). Each animated layer lies directly above its source,
    with its transform, parent, blend mode and opacity; the source layers stay and are hidden;
    an earlier "<layer> animated" is replaced, not duplicated; the scene's frame range is
    widened to cover the animation. Checks everything before touching the object.
    """
    scene = scene or bpy.context.scene
    layers, stored = result_layers(ob, result, start_frame)
    meta = result.metadata or {}
    try:
        schedule = plan_schedule(meta.get("timing"), result.num_frames, scene_frame_rate(scene.render.fps, scene.render.fps_base), timing)
        plans = plan_keyframes(result.with_frames(scheduled_frames(result.frames, schedule, timing.loop)), form=form)
    except (ValueError, KeyError, TypeError) as exc:
        raise GreasePencilInputError(f"the result cannot be applied ({exc})") from None

    data = ob.data
    targets = []
    tagged = any(name is not None for name in plans[0].layers)  # an older result: all its strokes are the one layer's
    for source_layer in layers:
        target = replace_animated_layer(data, source_layer)
        affine = np.linalg.solve(layer_matrix_world(ob, target), stored)
        mine = [plan.of_layer(source_layer.name) for plan in plans] if tagged else plans
        for plan, offset, is_key in zip(mine, schedule.frame_offsets.tolist(), schedule.is_key.tolist()):
            write_plan(keyframe_drawing(target, start_frame + offset, "KEYFRAME" if is_key else "BREAKDOWN"), plan, affine)
        loop_range = None if schedule.loop_range is None else (start_frame + schedule.loop_range[0], start_frame + schedule.loop_range[1])
        set_loop(ob, target.name, timing.loop, loop_range)
        source_layer.hide = True
        target.hide = False
        targets.append(target)
    data.layers.active = targets[0]
    cover_frame_range(scene, start_frame, start_frame + int(schedule.frame_offsets[-1]))
    return Applied(targets, schedule, schedule.notes)


def replace_animated_layer(data: Any, source: Any) -> Any:
    """A fresh "<source> animated" layer directly above `source`, placed like it (an earlier one is removed)."""
    name = animated_layer_name(source.name)
    old = data.layers.get(name)
    if old is not None:
        data.layers.remove(old)
    target = data.layers.new(name, set_active=False)  # on top of the stack
    copy_layer_transform(source, target)
    order = [layer.name for layer in data.layers]
    for _ in range(order.index(name) - order.index(source.name) - 1):
        data.layers.move(target, "DOWN")
    return target


LOOP_MODIFIER = "Sketch Animator loop"
LOOP_MODES = {"cycle": "NORMAL", "pingpong": "PINGPONG"}


def set_loop(ob: Any, layer_name: str, loop: str, frame_range: tuple[int, int] | None) -> Any:
    """Blender's Time Offset modifier on the animated layer alone, repeating `frame_range` (Normal
    for a cycle, Ping Pong), or none for a one-shot animation (an earlier one is removed)."""
    name = f"{LOOP_MODIFIER}: {layer_name}"
    old = ob.modifiers.get(name)
    if old is not None:
        ob.modifiers.remove(old)
    if loop == "none" or frame_range is None:
        return None
    modifier = ob.modifiers.new(name, "GREASE_PENCIL_TIME")
    modifier.tree_node_filter = layer_name
    modifier.mode = LOOP_MODES[loop]
    modifier.offset = 0  # the default of 1 would show each frame's successor
    modifier.frame_scale = 1.0
    modifier.use_keep_loop = True
    modifier.use_custom_frame_range = True
    modifier.frame_start, modifier.frame_end = frame_range
    return modifier


def copy_layer_transform(source: Any, target: Any) -> None:
    """Same place and look as the source layer: its transform, parent, blend mode and opacity (any
    difference left, e.g. an older parent inverse, is corrected by the affine map in `apply_animation`)."""
    target.translation = tuple(source.translation)
    target.rotation = tuple(source.rotation)
    target.scale = tuple(source.scale)
    if source.parent is not None:
        target.parent = source.parent
    for attr in ("opacity", "blend_mode", "use_lights"):
        if hasattr(source, attr) and hasattr(target, attr):
            setattr(target, attr, getattr(source, attr))


def cover_frame_range(scene: Any, first: int, last: int) -> None:
    scene.frame_start = min(scene.frame_start, first)
    scene.frame_end = max(scene.frame_end, last)


def ensure_ink_material(data: Any) -> int:
    """A black Grease Pencil material on `data` (strokes colour themselves by vertex colour)."""
    material = bpy.data.materials.get(INK_MATERIAL) or bpy.data.materials.new(INK_MATERIAL)
    if not material.is_grease_pencil:
        bpy.data.materials.create_gpencil_data(material)
    material.grease_pencil.color = (0.0, 0.0, 0.0, 1.0)
    if data.materials.find(material.name) < 0:
        data.materials.append(material)
    return data.materials.find(material.name)


def new_object_from_sketch(sketch: Sketch, name: str, frame: int, collection: Any, height_units: float = 2.0) -> Any:
    """A new Grease Pencil object drawing a Sketch (e.g. an imported SVG) on its local X–Z plane."""
    plans, _ = plan_new_strokes(sketch, height_units)
    data = gp_datablocks().new(name)
    ob = bpy.data.objects.new(name, data)
    collection.objects.link(ob)
    layer = data.layers.new("Lines", set_active=True)
    material = ensure_ink_material(data)
    plan = plans[0]
    plan.material_index = np.full(len(plan.sizes), material, np.int32)
    write_plan(keyframe_drawing(layer, frame), plan)
    return ob
