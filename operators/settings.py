"""Per-object settings (saved in the .blend) and a typed view of the add-on preferences."""

# No `from __future__ import annotations` here: Blender reads the property annotations as objects.
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..engine.job.folder import JobSpec
from ..engine.settings import (
    DEFAULT_MODEL, DEFAULT_NUM_FRAMES, DEFAULT_POSE_RATE, DEFAULT_QUALITY, MAX_POSES, MIN_FRAMES, QUALITY_PRESETS, DistillationSettings,
    PreviewSettings,
)  # fmt: skip
from ..grease_pencil.keyframes import DEFAULT_FORM
from ..grease_pencil.strokes import DEFAULT_MARGIN, DEFAULT_TOLERANCE_PX
from ..grease_pencil.timing import MAX_SPEED, MIN_SPEED, TimingOptions

ROOT_PACKAGE = __package__.rpartition(".")[0]  # bl_ext.<repo>.sketch_animator
EXTENSION_ROOT = Path(__file__).resolve().parent.parent  # holds engine/ and pyproject.toml
STAGE3, PREVIEW, JOB, TIMING = DistillationSettings(), PreviewSettings(), JobSpec("", "", ""), TimingOptions()  # the defaults the properties show

# Enum identifiers are the preset names in capitals (what .blend files and preferences store).
QUALITY_ITEMS = [(p.name.upper(), p.label, p.description) for p in QUALITY_PRESETS.values() if p.in_panel]
DEFAULT_QUALITY_ITEM = DEFAULT_QUALITY.upper()
QUALITY_WITH_DEFAULT = [("DEFAULT", "Default", "The default quality preset of the add-on preferences"), *QUALITY_ITEMS]
DEVICE_ITEMS = [
    ("auto", "Automatic", "CUDA if there is an NVIDIA GPU, else Apple MPS, else the CPU"),
    ("cuda", "CUDA", "An NVIDIA GPU"),
    ("mps", "Apple MPS", "The GPU of an Apple silicon Mac"),
    ("cpu", "CPU", "No GPU (very slow with the real model)"),
]


class SketchAnimatorSettings(bpy.types.PropertyGroup):
    """What the Animate panel edits, stored on the Grease Pencil object."""

    layer_mode: EnumProperty(
        name="Layers",
        items=[("VISIBLE", "All visible", "Every visible, unlocked layer with strokes at the current frame, as one drawing (lines and fills move together)"),
               ("ONE", "One layer", "Only the layer chosen below")],
        default="VISIBLE",
    )  # fmt: skip
    layer: StringProperty(name="Layer", description="The layer whose strokes are animated (at the current frame), with Layers: One layer")
    pinned_layers: StringProperty(name="Pinned layers", description="Layers kept still in every frame (a ground line, a signature), separated by commas")
    output_form: EnumProperty(
        name="Strokes",
        items=[("points", "Original points", "Each animated stroke keeps the drawn stroke's own points, pressure and colour: it draws exactly like yours"),
               ("bezier", "Bézier", "Editable Bézier strokes (knots added where needed to keep the line weight)")],
        default=DEFAULT_FORM,
    )  # fmt: skip
    video: StringProperty(name="Reference video", description="The video whose motion the sketch follows", subtype="FILE_PATH")
    subject_prompt: StringProperty(name="Subject", description="What the sketch shows, a short sentence", default="A horse.")
    motion_prompt: StringProperty(name="Motion", description="What moves and how, a short sentence", default="A horse is galloping.")
    pose_mode: EnumProperty(
        name="Poses",
        items=[("RATE", "Per second of video", "As many poses as the pose rate gives for the chosen range of the video (long clips run as windows)"),
               ("COUNT", "Fixed count", "Exactly this many poses, sampled evenly from the chosen range")],
        default="RATE",
    )  # fmt: skip
    pose_rate: FloatProperty(name="Pose rate", description="Poses per second of the reference video (8 is about every third frame at 24 fps)", default=DEFAULT_POSE_RATE, min=0.1, max=120.0)
    num_frames: IntProperty(
        name="Frames", description=f"Poses of the animation (the video model's native window is {DEFAULT_NUM_FRAMES}; more run as windows)",
        default=DEFAULT_NUM_FRAMES, min=MIN_FRAMES, max=MAX_POSES,
    )  # fmt: skip
    start_frame: IntProperty(name="Start frame", description="Scene frame of the first animation keyframe", default=1)
    speed: FloatProperty(
        name="Speed ×", description="Scales the reference's timing: keys at start + round(t × scene fps × speed); 2 makes the animation twice as long, 0.5 half",
        default=TIMING.speed, min=MIN_SPEED, max=MAX_SPEED,
    )  # fmt: skip
    key_timing: EnumProperty(
        name="Keys",
        items=[("reference", "Match the reference", "Each pose at its time in the video, on the scene's frame rate"),
               ("every_frame", "Every frame", "One pose per scene frame"),
               ("every_n", "Every N frames", "One pose every N frames: on twos, threes"),
               ("fit", "Fit to N frames", "The poses' timing spread over a fixed number of frames")],
        default=TIMING.keys,
    )  # fmt: skip
    every_n: IntProperty(name="Every", description="Frames between keys (2: on twos)", default=TIMING.every_n, min=1, max=1000)
    fit_frames: IntProperty(name="Fit to", description="Scene frames the animation (or one loop) spans", default=TIMING.fit_frames, min=2)
    inbetweens: EnumProperty(
        name="In-betweens",
        items=[("smooth", "Smooth", "Smooth in-betweens on every frame between keys (BREAKDOWN keyframes)"),
               ("hold", "Hold", "Each key holds until the next")],
        default=TIMING.inbetweens,
    )  # fmt: skip
    loop: EnumProperty(
        name="Loop",
        items=[("none", "Once", "Play the animation once"),
               ("cycle", "Cycle", "A cycle (walk, gallop): the last pose flows into the first, optimised to loop, repeated by a Time Offset modifier"),
               ("pingpong", "Ping-pong", "Forward then backward, repeated by a Time Offset modifier")],
        default=TIMING.loop,
    )  # fmt: skip
    quality: EnumProperty(name="Quality", items=QUALITY_WITH_DEFAULT, default="DEFAULT")
    seed: IntProperty(name="Seed", description="Random seed: the same seed and settings give the same animation", default=JOB.seed, min=0)

    custom_steps: BoolProperty(name="Custom steps", description="Set the steps of each stage instead of the preset's", default=False)
    appearance_steps: IntProperty(name="Appearance", default=QUALITY_PRESETS[DEFAULT_QUALITY].appearance_steps, min=1)
    motion_steps: IntProperty(name="Motion", default=QUALITY_PRESETS[DEFAULT_QUALITY].motion_steps, min=1)
    distillation_steps: IntProperty(name="Distillation", default=QUALITY_PRESETS[DEFAULT_QUALITY].distillation_steps, min=1)
    resolution: IntProperty(
        name="Resolution", description="Longer side of the frames the model works at, in pixels (0 = the model's own, 256 for ModelScope)",
        default=0, min=0, max=1024, step=32,
    )  # fmt: skip
    guidance: FloatProperty(name="Guidance", description="Classifier-free guidance of stage 3 (Live Sketch: 30–40)", default=STAGE3.guidance, min=0.0, max=100.0)
    learning_rate: FloatProperty(name="Learning rate", description="Adam step on the control points in stage 3", default=STAGE3.lr, min=1e-5, max=0.1, precision=4)
    init: EnumProperty(
        name="Start from",
        items=[("static", "Still sketch", "Stage 3 starts from the sketch copied to every frame (the paper)"),
               ("preview", "Motion preview", "Stage 3 starts from the optical-flow preview of the video's motion")],
        default="static",
    )  # fmt: skip
    video_fit: EnumProperty(name="Fit", items=[("crop", "Crop", "Centre-crop the video to a square"), ("pad", "Pad", "Pad it to a square with white")], default="crop")
    video_start: FloatProperty(name="Video start", description="Seconds into the video (0 = its beginning)", default=0.0, min=0.0, unit="TIME_ABSOLUTE")
    video_end: FloatProperty(name="Video end", description="Seconds into the video (0 = its end)", default=0.0, min=0.0, unit="TIME_ABSOLUTE")
    tolerance_px: FloatProperty(
        name="Fit tolerance", description="How far (canvas pixels) a fitted Bézier may stray from a hand-drawn stroke", default=DEFAULT_TOLERANCE_PX, min=0.05, max=5.0
    )  # fmt: skip
    margin: FloatProperty(name="Margin", description="Empty border around the sketch on the canvas, as a fraction of it", default=DEFAULT_MARGIN, min=0.0, max=0.4)
    checkpoint_every: IntProperty(name="Checkpoint every", description="Steps between checkpoints (what a resume continues from)", default=JOB.checkpoint_every, min=1)
    preview_rigidity: EnumProperty(
        name="Preview motion",
        items=[("deformable", "Deformable", "Smooth bending that follows the subject"),
               ("partwise", "Part-wise", "Rigid parts moving separately"),
               ("similarity", "Rigid", "One turn, scale and shift for the whole sketch")],
        default=PREVIEW.rigidity,
    )  # fmt: skip
    preview_on_canvas: BoolProperty(
        name="Keep on canvas",
        description="Scale the subject's travel so the drawing stays on its canvas (the area around it); "
        "off: the drawing travels through the scene as far as the subject does",
        default=False,
    )  # fmt: skip

    def pinned(self) -> set[str]:
        return {name.strip() for name in self.pinned_layers.split(",") if name.strip()}

    def timing(self) -> TimingOptions:
        """The Apply options as the Grease Pencil bridge takes them."""
        return TimingOptions(self.speed, self.key_timing, self.every_n, self.fit_frames, self.inbetweens, self.loop)

    job_dir: StringProperty(name="Job folder", description="The folder of this object's last job", subtype="DIR_PATH")
    last_error: StringProperty(name="Last error")


@dataclass
class Preferences:
    """The add-on preferences as plain values (with defaults when the add-on is not enabled)."""

    engine_python: str = ""
    model: str = DEFAULT_MODEL
    device: str = "auto"
    cache_dir: str = ""
    default_quality: str = DEFAULT_QUALITY_ITEM
    run_on: str = "LOCAL"  # "LOCAL": this machine; "RAY": the Ray cluster at ray_address
    ray_address: str = ""

    @property
    def cluster(self) -> str | None:
        """The Ray cluster jobs go to, or None for this machine."""
        return self.ray_address.strip() or None if self.run_on == "RAY" else None


def preferences(context: Any = None) -> Preferences:
    context = context or bpy.context
    addon = context.preferences.addons.get(ROOT_PACKAGE)
    prefs = getattr(addon, "preferences", None)
    if prefs is None:
        return Preferences()
    return Preferences(
        engine_python=bpy.path.abspath(prefs.engine_python) if prefs.engine_python else "",
        model=prefs.model.strip() or DEFAULT_MODEL,
        device=prefs.device,
        cache_dir=bpy.path.abspath(prefs.cache_dir) if prefs.cache_dir else "",
        default_quality=prefs.default_quality,
        run_on=prefs.run_on,
        ray_address=prefs.ray_address,
    )


def user_folder(name: str) -> Path:
    """A folder in the extension's user directory (kept across updates of the extension)."""
    return Path(bpy.utils.extension_path_user(ROOT_PACKAGE, path=name, create=True))


def cache_folder(prefs: Preferences) -> Path:
    path = Path(prefs.cache_dir) if prefs.cache_dir else user_folder("cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


CLASSES = (SketchAnimatorSettings,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Object.sketch_animator = bpy.props.PointerProperty(type=SketchAnimatorSettings)


def unregister() -> None:
    del bpy.types.Object.sketch_animator
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
