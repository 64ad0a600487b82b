"""The "Animate" tab of the 3D viewport's sidebar, shown for Grease Pencil objects."""

from __future__ import annotations

from typing import Any

import bpy

from ..engine.job import client as jobclient
from ..grease_pencil import blender_io as gp_io
from ..operators import jobs, ops


class VIEW3D_PT_sketch_animator(bpy.types.Panel):
    bl_label = "Sketch Animator"
    bl_idname = "VIEW3D_PT_sketch_animator"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Animate"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return gp_io.is_grease_pencil(context.object)

    def draw(self, context: Any) -> None:
        ob = context.object
        settings = ob.sketch_animator
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        layout.prop(settings, "layer_mode")
        if settings.layer_mode == "ONE":
            layout.prop_search(settings, "layer", ob.data, "layers", icon="OUTLINER_DATA_GP_LAYER")
        draw_pins(layout, settings)
        layout.prop(settings, "video")
        layout.prop(settings, "subject_prompt")
        layout.prop(settings, "motion_prompt")
        col = layout.column(align=True)
        col.prop(settings, "pose_mode")
        col.prop(settings, "pose_rate" if settings.pose_mode == "RATE" else "num_frames")
        draw_timing(layout, settings)
        layout.prop(settings, "quality")
        layout.prop(settings, "seed")
        draw_advanced(layout, settings)

        status = jobs.status_of(ob)
        active = status is not None and status.is_active
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.enabled = not active
        row.operator(ops.SKETCH_ANIMATOR_OT_animate.bl_idname, icon="PLAY")
        row.operator(ops.SKETCH_ANIMATOR_OT_preview_motion.bl_idname, text="Preview", icon="HIDE_OFF")
        row = layout.row(align=True)
        if active:
            row.operator(ops.SKETCH_ANIMATOR_OT_cancel.bl_idname, icon="CANCEL")
        elif status is not None and status.state in (jobclient.CANCELLED, jobclient.STOPPED):
            row.operator(ops.SKETCH_ANIMATOR_OT_resume.bl_idname, icon="FILE_REFRESH")
        sub = row.row(align=True)
        sub.enabled = status is not None and status.state == jobclient.DONE
        sub.operator(ops.SKETCH_ANIMATOR_OT_apply.bl_idname, icon="CHECKMARK")
        row = layout.row(align=True)  # many sketches at once: one batch, a motion or sketch they share learned once
        row.operator(ops.SKETCH_ANIMATOR_OT_animate_selected.bl_idname, icon="OUTLINER_OB_GREASEPENCIL")
        row.operator(ops.SKETCH_ANIMATOR_OT_apply_all.bl_idname, icon="CHECKBOX_HLT")
        draw_status(layout, settings, status)


def draw_pins(layout: Any, settings: Any) -> None:
    """What stays still: pinned layers (by name) and pinned strokes (the buttons act on the active layer)."""
    row = layout.row(align=True)
    row.operator(ops.SKETCH_ANIMATOR_OT_pin_layer.bl_idname, text="Pin Layer", icon="PINNED")
    row.operator(ops.SKETCH_ANIMATOR_OT_pin_strokes.bl_idname, text="Pin Strokes", icon="PINNED").pinned = True
    row.operator(ops.SKETCH_ANIMATOR_OT_pin_strokes.bl_idname, text="Unpin", icon="UNPINNED").pinned = False
    if settings.pinned_layers:
        layout.label(text=f"Pinned layers: {settings.pinned_layers}", icon="PINNED")


def draw_timing(layout: Any, settings: Any) -> None:
    """When the poses play in the scene (Apply reads these; they can change after the job ran)."""
    col = layout.column(align=True)
    col.prop(settings, "start_frame")
    col.prop(settings, "key_timing")
    if settings.key_timing == "reference":
        col.prop(settings, "speed")
    elif settings.key_timing == "every_n":
        col.prop(settings, "every_n")
    elif settings.key_timing == "fit":
        col.prop(settings, "fit_frames")
    col.prop(settings, "inbetweens")
    col.prop(settings, "loop")
    col.prop(settings, "output_form")


def draw_advanced(layout: Any, settings: Any) -> None:
    """The options most users never touch, in a collapsible sub-panel (closed by default)."""
    header, body = layout.panel("sketch_animator_advanced", default_closed=True)
    header.label(text="Advanced")
    if body is None:
        return
    body.prop(settings, "custom_steps")
    col = body.column(align=True)
    col.enabled = settings.custom_steps
    col.prop(settings, "appearance_steps")
    col.prop(settings, "motion_steps")
    col.prop(settings, "distillation_steps")
    for name in ("resolution", "guidance", "learning_rate", "init", "video_fit", "video_start", "video_end",
                 "tolerance_px", "margin", "checkpoint_every", "preview_rigidity", "preview_on_canvas"):  # fmt: skip
        body.prop(settings, name)


def draw_status(layout: Any, settings: Any, status: jobclient.JobStatus | None) -> None:
    if status is not None and status.state != jobclient.NEW:
        layout.progress(factor=status.fraction, type="BAR", text=status.summary())
        for warning in status.warnings[-2:]:
            layout.label(text=warning, icon="INFO")
    if settings.last_error:
        box = layout.box()
        box.label(text=settings.last_error, icon="ERROR")
        if settings.job_dir:
            box.operator(ops.SKETCH_ANIMATOR_OT_open_log.bl_idname, icon="TEXT")


CLASSES = (VIEW3D_PT_sketch_animator,)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
