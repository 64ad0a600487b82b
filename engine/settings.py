"""One source of settings: the default model, the quality presets and every stage's options.

The stages, the command line, the job checks and the Blender panel read their defaults and
option names from here, so a default is written once. Standard library only: the Blender
add-on (whose Python has no torch) imports this module to build its property items and to
check a job before it starts.

Every settings class is a frozen dataclass that checks its values on construction and
round-trips through `to_dict` / `from_dict`, as it is stored in job.json and in cache keys.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from numbers import Integral, Real
from typing import Any, Mapping

from .errors import PreviewError, SketchAnimatorError

DEFAULT_MODEL = "ali-vilab/text-to-video-ms-1.7b"
DEFAULT_BACKBONE = "modelscope"
DEFAULT_NUM_FRAMES = 16  # ModelScope's native clip length
DEFAULT_CLIP = "openai/clip-vit-base-patch32"  # evaluate: appearance alignment and temporal consistency
DEFAULT_XCLIP = "microsoft/xclip-base-patch32"  # evaluate: motion alignment
MIN_FRAMES, MAX_WINDOW_FRAMES = 2, 64  # frames one window of the video model may hold
MAX_POSES = 1024  # poses of a whole animation (long clips run as several windows)
DEFAULT_POSE_RATE = 8.0  # poses per second of reference, when the length follows the clip
DEFAULT_WINDOW_OVERLAP = 4  # poses two consecutive windows share


# ------------------------------------------------------------------------- quality presets
@dataclass(frozen=True)
class QualityPreset:
    """Training steps of the three stages, and how the preset is offered in the Blender panel."""

    name: str
    label: str
    description: str
    appearance_steps: int
    motion_steps: int
    distillation_steps: int
    in_panel: bool = True  # the demo preset is for the README's CPU demo only

    @property
    def steps(self) -> tuple[int, int, int]:
        return (self.appearance_steps, self.motion_steps, self.distillation_steps)


QUALITY_PRESETS: dict[str, QualityPreset] = {
    preset.name: preset
    for preset in (
        QualityPreset("demo", "Demo", "40 / 40 / 80 steps: the README demo on a CPU", 40, 40, 80, in_panel=False),
        QualityPreset("draft", "Draft", "150 / 150 / 250 steps: a quick look (about 5 min on a recent GPU)", 150, 150, 250),
        QualityPreset("standard", "Standard", "300 / 300 / 500 steps: the usual choice", 300, 300, 500),
        QualityPreset("paper", "Paper", "500 / 500 / 1000 steps: the paper's settings, slowest", 500, 500, 1000),
    )
}
DEFAULT_QUALITY = "standard"
STAGES = ("appearance", "motion", "distillation")


def quality_preset(name: str) -> QualityPreset:
    try:
        return QUALITY_PRESETS[name]
    except KeyError:
        raise SketchAnimatorError(f"unknown quality preset {name!r}: use one of {', '.join(QUALITY_PRESETS)}") from None


# ------------------------------------------------------------------------- value checks
def check_number(name: str, value: Any, low: float, high: float, error: type[Exception] = SketchAnimatorError) -> None:
    """A real number (not a bool) in [low, high], else a one-line error naming it."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (math.isfinite(float(value)) and low <= float(value) <= high):
        raise error(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")


def check_whole(name: str, value: Any, low: int, high: int, error: type[Exception] = SketchAnimatorError) -> None:
    """A whole number (not a bool) in [low, high], else a one-line error naming it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise error(f"{name} must be a whole number from {low} to {high}, not {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...], error: type[Exception] = SketchAnimatorError) -> None:
    if value not in choices:
        raise error(f"unknown {name} {value!r}: use {', '.join(choices)}")


class Settings:
    """`to_dict` / `from_dict` for the frozen settings dataclasses (unknown keys are refused by name)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "setting"):
        unknown = sorted(set(data) - cls.option_names())
        if unknown:
            raise SketchAnimatorError(f"unknown {what} {unknown[0]!r}; known: {', '.join(sorted(cls.option_names()))}")
        return cls(**data)

    def updated(self, **changes: Any):
        return replace(self, **changes)  # type: ignore[type-var]


# ------------------------------------------------------------------------- stages 1 and 2
@dataclass(frozen=True)
class LoraTrainingSettings(Settings):
    """Hyperparameters of one LoRA training run (MotionDirector's defaults; the paper trains 500 steps)."""

    steps: int = 500
    lr: float = 5e-4
    rank: int = 32
    alpha: float | None = None  # None: equal to the rank (scale 1)
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    seed: int = 0
    resolution: int | None = None  # longer side of the frames the model sees; None: the backbone's native size
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        if self.steps < 1 or self.rank < 1 or not self.lr > 0 or (self.resolution is not None and self.resolution < 8):
            raise SketchAnimatorError(
                f"invalid training settings (steps {self.steps}, rank {self.rank}, lr {self.lr}, resolution {self.resolution}): "
                "steps and rank must be positive, lr above 0, resolution at least 8 pixels"
            )


@dataclass(frozen=True)
class AppearanceSettings(LoraTrainingSettings):
    augment: bool = True
    max_shift: float = 0.04  # of the canvas size
    max_scale: float = 0.05  # ± relative scale jitter


@dataclass(frozen=True)
class MotionSettings(LoraTrainingSettings):
    debiased_temporal: bool = False  # MotionDirector's appearance-debiased temporal loss (β = 1)


# ------------------------------------------------------------------------- stage 3
WEIGHTINGS = ("sds", "uniform")
PARAMETRISATIONS = ("points", "global-local")  # engine/stages/geometry.py


@dataclass(frozen=True)
class DistillationSettings(Settings):
    """Stage 3 options; defaults from design.md §4 (Live Sketch's and the paper's numbers)."""

    steps: int = 500
    lr: float = 2e-3  # Adam, on control points in canvas units ([0, 1] spans the canvas)
    guidance: float = 35.0  # classifier-free guidance scale (Live Sketch: 30–40)
    t_min: int = 50
    t_max: int = 950
    anneal_t: bool = False  # shrink t_max linearly towards t_min + 100 over the run
    weighting: str = "sds"  # w(t): "sds" = 1 − ᾱ_t (DreamFusion, Live Sketch) or "uniform" = 1
    appearance_weight: float = 0.5  # λ1; 0 reproduces the paper's "w/o A-LoRA" row
    motion_weight: float = 1.0  # λ2; 0 reproduces "w/o M-LoRA"
    augment: bool = True  # random crop + perspective of the frames, the same for all frames of a step
    periodic: bool = False  # a cycle: the prior also sees the first frame after the last, so the loop's seam is judged like any step
    resolution: int | None = None  # longer side of the frames the model sees; None: the backbone's native size
    parametrisation: str = "points"  # "points": every frame's control points (the paper); "global-local": Live Sketch's per-frame affine + local displacements
    local_lr_scale: float = 0.25  # global-local: the local displacements' learning rate, as a fraction of lr
    seed: int = 0
    checkpoint_every: int = 25

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise SketchAnimatorError(f"unknown weighting {self.weighting!r}: use sds (1 − ᾱ_t) or uniform")
        if not 0 <= self.t_min < self.t_max <= 999:
            raise SketchAnimatorError(f"t range [{self.t_min}, {self.t_max}] is invalid: use 0 ≤ t_min < t_max ≤ 999")
        if self.steps < 1 or not self.lr > 0:
            raise SketchAnimatorError(f"stage 3 needs at least 1 step and a positive learning rate, not {self.steps} and {self.lr}")
        check_choice("parametrisation", self.parametrisation, PARAMETRISATIONS)
        check_number("local_lr_scale", self.local_lr_scale, 0.0, 10.0)


# ------------------------------------------------------------------------- the motion preview
RIGIDITIES = ("similarity", "partwise", "deformable")
FLOW_METHODS = ("lk",)  # pyramidal Lucas–Kanade point tracks (engine/preview/alignment.py)
LEGACY_FLOW_METHODS = ("dis", "farneback")  # dense flows of earlier versions: a job that names one now tracks with LK


@dataclass(frozen=True)
class PreviewSettings(Settings):
    """How the preview reads the video and how closely the sketch follows the subject."""

    rigidity: str = "deformable"  # "similarity" (one turn/scale/shift), "partwise" or "deformable"
    strength: float = 1.0  # 0 = still, 1 = the subject's motion, 2 = exaggerated
    temporal_smoothing: float = 0.5  # Gaussian sigma over time in mean frame spacings, on each frame's real time (0 = none)
    follow_translation: bool = True  # False keeps the sketch in place (turns and deformation only)
    subject_box: tuple[float, float, float, float] | None = None  # x0 y0 x1 y1 in `size` px frames (pixel edges)
    flow: str = "lk"  # point tracker: pyramidal Lucas–Kanade ("dis" and "farneback" of earlier versions read as it)
    keep_on_canvas: bool = True  # scale the followed translation so the drawing stays on its canvas
    num_frames: int = DEFAULT_NUM_FRAMES
    size: int = 256  # frames are analysed at size × size
    seed: int = 0  # RANSAC's random samples
    max_parts: int = 4  # most rigid parts "partwise" splits the subject into
    flow_substeps: int = 2  # video frames read per output frame step: shorter flow steps follow faster motion

    def __post_init__(self) -> None:
        check_choice("rigidity", self.rigidity, RIGIDITIES, PreviewError)
        if self.flow in LEGACY_FLOW_METHODS:
            object.__setattr__(self, "flow", FLOW_METHODS[0])
        check_choice("flow method", self.flow, FLOW_METHODS, PreviewError)
        check_number("strength", self.strength, 0.0, 10.0, PreviewError)
        check_number("temporal smoothing", self.temporal_smoothing, 0.0, 100.0, PreviewError)
        check_whole("num_frames", self.num_frames, 1, 1024, PreviewError)
        check_whole("size", self.size, 16, 4096, PreviewError)
        check_whole("seed", self.seed, 0, 2**31 - 1, PreviewError)
        check_whole("max_parts", self.max_parts, 1, 16, PreviewError)
        check_whole("flow_substeps", self.flow_substeps, 1, 8, PreviewError)
        object.__setattr__(self, "follow_translation", bool(self.follow_translation))
        object.__setattr__(self, "keep_on_canvas", bool(self.keep_on_canvas))
        if self.subject_box is not None:
            object.__setattr__(self, "subject_box", checked_box(self.subject_box))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["subject_box"] = None if self.subject_box is None else list(self.subject_box)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "preview setting") -> "PreviewSettings":
        unknown = sorted(set(data) - cls.option_names())
        if unknown:
            raise PreviewError(f"unknown {what} {unknown[0]!r}; known settings: {', '.join(sorted(cls.option_names()))}")
        return cls(**data)

    def video_spec(self, path: Any, start_s: float | None = None, end_s: float | None = None, fit: str = "crop"):
        """The clip to read: `num_frames` frames of `size` px from `path`."""
        from .media.reference import VideoSpec

        return VideoSpec(path=str(path), num_frames=self.num_frames, size=self.size, start_s=start_s, end_s=end_s, fit=fit)

    def matching(self, spec: Any) -> "PreviewSettings":
        """These settings for the frames `spec` reads (its frame count and size; the box rescaled)."""
        box = self.subject_box
        if box is not None and spec.size != self.size:
            box = tuple(value * spec.size / self.size for value in box)
        return replace(self, num_frames=spec.num_frames, size=spec.size, subject_box=box)


def checked_box(box: Any) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(value) for value in box)
    except (TypeError, ValueError):
        raise PreviewError(f"the subject box must be four numbers x0 y0 x1 y1, not {box!r}") from None
    if not all(math.isfinite(value) for value in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise PreviewError(f"the subject box {box!r} is empty or not finite; give x0 y0 x1 y1 with x0 < x1 and y0 < y1")
    return (x0, y0, x1, y1)


# ------------------------------------------------------------------------- what a job may override
# Set by the job itself (steps from the preset, seed, resolution, checkpoint interval), not per option.
JOB_LEVEL = frozenset({"steps", "seed", "resolution", "checkpoint_every"})
DISTILLATION_OPTIONS = DistillationSettings.option_names() - JOB_LEVEL
PREVIEW_OPTIONS = PreviewSettings.option_names() - {"num_frames", "size"}
