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
from .keyframes import FramePlan, plan_keyframes, plan_new_strokes
from .timing import Schedule, TimingOptions, plan_schedule, scene_frame_rate, scheduled_frames
from .mapping import blender_object_scale, local_to_world
from .strokes import DEFAULT_MARGIN, DEFAULT_TOLERANCE_PX, strokes_from_drawing_arrays, strokes_to_sketch

MAX_STROKES = 2000  # more is a scanned drawing, not a sketch: the video model sees 256² pixels
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
    }


def material_colors(data: Any) -> np.ndarray:
    """(num_materials, 4) linear RGBA stroke colour of each material slot (black when not GP)."""
    colors = []
    for material in data.materials:
        gp = getattr(material, "grease_pencil", None) if material is not None else None
        colors.append(tuple(gp.color) if gp is not None else (0.0, 0.0, 0.0, 1.0))
    return np.array(colors, dtype=np.float64).reshape(-1, 4)


def source_drawing(ob: Any, layer_name: str, frame: int) -> tuple[Any, Any]:
    """The layer and the drawing visible at `frame`, or a GreasePencilInputError saying why not."""
    if not is_grease_pencil(ob):
        kind = "nothing" if ob is None else f"a {ob.type.lower()} object"
        raise GreasePencilInputError(f"the active object is {kind}: select a Grease Pencil object to animate")
    layer = ob.data.layers.get(layer_name) if layer_name else ob.data.layers.active
    if layer is None:
        raise GreasePencilInputError(f"'{ob.name}' has no layer named '{layer_name}': pick a layer in the Animate panel")
    keyframe = layer.get_frame_at(frame)
    if keyframe is None or keyframe.drawing is None:
        raise GreasePencilInputError(f"layer '{layer.name}' has no drawing at frame {frame}: draw on it or go to a frame with strokes")
    return layer, keyframe.drawing


def sketch_from_layer(
    ob: Any,
    layer_name: str,
    frame: int,
    canvas: int = 256,
    margin: float = DEFAULT_MARGIN,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    max_strokes: int = MAX_STROKES,
) -> Sketch:
    """The strokes of one layer at `frame` as the engine's Sketch (validated), with the mapping back."""
    layer, drawing = source_drawing(ob, layer_name, frame)
    arrays = read_drawing_arrays(drawing)
    count = len(arrays["offsets"]) - 1
    if count == 0 or arrays["position"] is None or len(arrays["position"]) == 0:
        raise GreasePencilInputError(f"layer '{layer.name}' is empty at frame {frame}: draw a sketch on it first")
    if count > max_strokes:
        raise GreasePencilInputError(
            f"layer '{layer.name}' has {count} strokes; Sketch Animator animates up to {max_strokes} "
            "(the video model sees 256×256 pixels): join or simplify strokes, or move details to another layer"
        )
    strokes = strokes_from_drawing_arrays(material_colors=material_colors(ob.data), **arrays)
    sketch = strokes_to_sketch(
        strokes, layer_matrix_world(ob, layer), canvas, margin, tolerance_px,
        radius_scale=blender_object_scale(np.array(ob.matrix_world)),
    )  # fmt: skip
    sketch.metadata["blender_source"] = {"object": ob.name, "layer": layer.name, "frame": int(frame), "strokes": count}
    return sketch


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
    """Replace a drawing's strokes with a keyframe plan (Bézier strokes, FREE handles).

    `affine` (4×4) maps the plan's layer-local points into this drawing's layer, when the
    target layer's transform differs from the source's.
    """
    positions, left, right = plan.positions, plan.handle_left, plan.handle_right
    if affine is not None and not np.allclose(affine, np.eye(4), atol=1e-12):
        positions, left, right = (local_to_world(p, affine) for p in (positions, left, right))
    drawing.remove_strokes()
    drawing.add_strokes(plan.sizes.tolist())
    drawing.set_types(type="BEZIER")
    for name, values in (
        ("position", positions), ("handle_left", left), ("handle_right", right),
        ("handle_type_left", plan.handle_types), ("handle_type_right", plan.handle_types),
        ("radius", plan.radius), ("opacity", plan.opacity), ("vertex_color", plan.vertex_color),
        ("material_index", plan.material_index), ("cyclic", plan.cyclic),
    ):  # fmt: skip
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
    """What Apply wrote: the animated layer, the scheduled frames, and notes for the user."""

    layer: Any
    schedule: Schedule
    notes: list[str]


def apply_animation(ob: Any, result: Sketch, start_frame: int, timing: TimingOptions = TimingOptions(), scene: Any = None) -> Applied:
    """Write an animated Sketch (a job's result) as a new layer "<layer> animated" of `ob`.

    Keys land on the scene's frame rate as `timing` says (grease_pencil/timing.py), with smooth
    in-betweens (BREAKDOWN keyframes) or holds; a cycle or ping-pong gets a Time Offset modifier
    filtered to the animated layer, so it repeats over the whole scene. The source layer stays
    and is hidden; an earlier "<layer> animated" is replaced, not duplicated; the scene's frame
    range is widened to cover the animation. Checks everything before touching the object.
    """
    scene = scene or bpy.context.scene
    if not is_grease_pencil(ob):
        raise GreasePencilInputError("the result belongs to a Grease Pencil object, and this one is not: select it and Apply again")
    meta = result.metadata or {}
    source = meta.get("blender_source") or {}
    layer_name = source.get("layer")
    source_layer = ob.data.layers.get(layer_name or "")
    if source_layer is None:
        raise GreasePencilInputError(f"'{ob.name}' has no layer '{layer_name}' any more: the result was made from it (rename it back, or Animate again)")
    try:
        schedule = plan_schedule(meta.get("timing"), result.num_frames, scene_frame_rate(scene.render.fps, scene.render.fps_base), timing)
        plans = plan_keyframes(result.with_frames(scheduled_frames(result.frames, schedule, timing.loop)))
    except (ValueError, KeyError, TypeError) as exc:
        raise GreasePencilInputError(f"the result cannot be applied ({exc})") from None
    expected = source.get("strokes")
    keyframe = source_layer.get_frame_at(int(source.get("frame", start_frame)))
    now = keyframe.drawing.attributes.domain_size("CURVE") if keyframe is not None and keyframe.drawing is not None else 0
    if expected is not None and now != expected:
        raise GreasePencilInputError(
            f"layer '{source_layer.name}' now has {now} strokes, the result was made from {expected}: "
            "undo the edits or press Animate again (nothing was changed)"
        )

    data = ob.data
    name = animated_layer_name(source_layer.name)
    old = data.layers.get(name)
    if old is not None:
        data.layers.remove(old)
    target = data.layers.new(name, set_active=False)
    copy_layer_transform(source_layer, target)
    affine = np.linalg.solve(layer_matrix_world(ob, target), layer_matrix_world(ob, source_layer))
    for plan, offset, is_key in zip(plans, schedule.frame_offsets.tolist(), schedule.is_key.tolist()):
        write_plan(keyframe_drawing(target, start_frame + offset, "KEYFRAME" if is_key else "BREAKDOWN"), plan, affine)
    set_loop(ob, target.name, timing.loop, None if schedule.loop_range is None else (start_frame + schedule.loop_range[0], start_frame + schedule.loop_range[1]))
    source_layer.hide = True
    target.hide = False
    data.layers.active = target
    cover_frame_range(scene, start_frame, start_frame + int(schedule.frame_offsets[-1]))
    return Applied(target, schedule, schedule.notes)


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
    """Same place as the source layer: its transform and parent (any difference left, e.g. an
    older parent inverse, is corrected by the affine map in `apply_animation`)."""
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
