"""Add-on preferences: the engine Python, the model, the device, the cache folder, the default preset."""

from typing import Any

import bpy
from bpy.props import EnumProperty, StringProperty

from ..operators import ops
from ..engine.settings import DEFAULT_MODEL
from ..operators.settings import DEFAULT_QUALITY_ITEM, DEVICE_ITEMS, QUALITY_ITEMS, ROOT_PACKAGE


class SketchAnimatorPreferences(bpy.types.AddonPreferences):
    bl_idname = ROOT_PACKAGE

    engine_python: StringProperty(
        name="Engine Python",
        description="A Python (3.10 or newer) with the engine's requirements: torch, diffusers, peft, transformers, …",
        subtype="FILE_PATH",
    )
    model: StringProperty(
        name="Model",
        description="Hugging Face model id (downloaded with the button) or a local folder in the same layout",
        default=DEFAULT_MODEL,
    )
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")
    cache_dir: StringProperty(
        name="Cache folder",
        description="Learned appearance/motion weights (reused across sketches) and the jobs of unsaved files; "
        "empty = the extension's user folder",
        subtype="DIR_PATH",
    )
    default_quality: EnumProperty(name="Default quality", items=QUALITY_ITEMS, default=DEFAULT_QUALITY_ITEM)
    run_on: EnumProperty(
        name="Run jobs on",
        items=[("LOCAL", "This machine", "The engine runs here; Animate selected runs its jobs as one batch on a local Ray"),
               ("RAY", "Ray cluster", "Jobs run on the Ray cluster at the address below (e.g. GPU machines started with `ray start`)")],
        default="LOCAL",
    )  # fmt: skip
    ray_address: StringProperty(
        name="Ray address",
        description="The cluster's address, as `ray start --head` printed it (e.g. 192.168.1.20:6379, or ray://host:10001 through Ray Client)",
    )

    def draw(self, context: Any) -> None:
        layout = self.layout
        box = layout.box()
        row = box.row(align=True)
        row.prop(self, "engine_python")
        row.operator(ops.SKETCH_ANIMATOR_OT_check_engine.bl_idname, text="Check")
        box.operator(ops.SKETCH_ANIMATOR_OT_create_engine.bl_idname, icon="CONSOLE")
        for line in (ops.ENVIRONMENT_REPORT.get("summary"), _task_line("environment", "Environment")):
            if line:
                box.label(text=line, icon="INFO")
        box = layout.box()
        row = box.row(align=True)
        row.prop(self, "model")
        row.operator(ops.SKETCH_ANIMATOR_OT_download_model.bl_idname, text="Download", icon="IMPORT")
        line = _task_line("download", "Download")
        if line:
            box.label(text=line, icon="INFO")
        box.prop(self, "device")
        layout.prop(self, "cache_dir")
        layout.prop(self, "default_quality")
        box = layout.box()
        box.prop(self, "run_on")
        if self.run_on == "RAY":
            box.prop(self, "ray_address")


def _task_line(name: str, label: str) -> str | None:
    state = ops.background_state(name)
    return None if state is None else f"{label}: {state}"


CLASSES = (SketchAnimatorPreferences,)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
