"""The job folder: the contract between the Blender add-on and the engine process (design.md §3).

A job folder holds
    job.json            the settings (`JobSpec`, versioned), written last and atomically
    input_sketch.json   the sketch in the engine's Sketch JSON layout
    events.jsonl        the append-only event log (engine/events.py)
    engine.log          the engine process's stdout and stderr (tracebacks land here)
    process.json        which process runs the job (pid, command), written by whoever starts it
    cancel              present = please stop (read by the engine at every step)
    distillation.ckpt   stage 3's checkpoint; stages 1–2 live in the adapter cache
    result/             the result (engine/outputs.py), complete once its manifest exists

This module imports only the standard library (and the engine's stdlib-only helpers), so the
Blender add-on, whose Python has no torch, writes jobs and reads results through it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import SketchAnimatorError
from .files import atomic_write_text

JOB_SCHEMA = "sketch-animator/job"
JOB_VERSION = 1

JOB_FILE = "job.json"
SKETCH_FILE = "input_sketch.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "engine.log"
PROCESS_FILE = "process.json"
CANCEL_FILE = "cancel"
RESULT_DIR = "result"

RESULT_JSON = "result.json"
MANIFEST = "result_manifest.json"
MANIFEST_SCHEMA = "sketch-animator/result"
MANIFEST_VERSION = 1

# Steps of (appearance, motion, distillation) per quality preset.
QUALITY_PRESETS: dict[str, tuple[int, int, int]] = {
    "demo": (40, 40, 80),  # the README demo on CPU with the tiny model
    "draft": (150, 150, 250),
    "standard": (300, 300, 500),
    "paper": (500, 500, 1000),
}

# How the motion is made: the three diffusion stages, or the optical-flow preview (no model).
METHODS = ("diffusion", "preview")

# The options a job may override, by name. They mirror the fields of
# `distillation.DistillationSettings` and `preview.PreviewSettings` (a test keeps them in
# step); listed here so that checking a job needs no torch.
DISTILLATION_OPTIONS = frozenset(
    {"lr", "guidance", "t_min", "t_max", "anneal_t", "weighting", "appearance_weight", "motion_weight", "augment"}
)
PREVIEW_OPTIONS = frozenset(
    {"rigidity", "strength", "temporal_smoothing", "follow_translation", "subject_box", "flow", "seed", "max_parts", "flow_substeps"}
)


class JobError(SketchAnimatorError):
    """A job folder or its settings cannot be used."""


@dataclass(frozen=True)
class JobSpec:
    """Everything a job needs besides the sketch; saved as job.json."""

    video: str
    subject_prompt: str
    motion_prompt: str
    num_frames: int = 16
    video_start_s: float | None = None
    video_end_s: float | None = None
    video_fit: str = "crop"
    model: str | None = None  # None: ModelScope if downloaded, else the embedded tiny model
    quality: str = "standard"
    seed: int = 0
    resolution: int = 256
    device: str = "auto"
    dtype: str = "auto"
    cache_dir: str | None = None
    steps: dict[str, int] = field(default_factory=dict)  # overrides: appearance / motion / distillation
    checkpoint_every: int = 25  # steps between resumable checkpoints, in every stage
    distillation: dict[str, Any] = field(default_factory=dict)  # DistillationSettings overrides (guidance, lr, λ1, λ2, …)
    init: str = "static"  # stage 3 starts from the sketch duplicated ("static") or from the tracked motion ("preview")
    method: str = "diffusion"  # "diffusion" (stages 1–3) or "preview" (optical-flow motion transfer only)
    preview: dict[str, Any] = field(default_factory=dict)  # PreviewSettings overrides (rigidity, strength, …)

    def __post_init__(self) -> None:
        if self.quality not in QUALITY_PRESETS:
            raise JobError(f"unknown quality preset {self.quality!r}: use one of {', '.join(QUALITY_PRESETS)}")
        unknown = set(self.distillation) - DISTILLATION_OPTIONS
        if unknown:
            raise JobError(f"unknown distillation option(s) {sorted(unknown)}: see `python -m engine animate --help`")
        unknown = set(self.preview) - PREVIEW_OPTIONS
        if unknown:
            raise JobError(f"unknown preview option(s) {sorted(unknown)}: see `python -m engine preview --help`")
        if self.init not in ("static", "preview"):
            raise JobError(f"unknown init {self.init!r}: use static (the sketch duplicated) or preview (the tracked motion)")
        if self.method not in METHODS:
            raise JobError(f"unknown method {self.method!r}: use diffusion (the three stages) or preview (optical flow)")
        if not 2 <= self.num_frames <= 64:
            raise JobError(f"{self.num_frames} frames asked for: the video model handles 2 to 64 (16 is its native length)")
        unknown = set(self.steps) - {"appearance", "motion", "distillation"}
        if unknown:
            raise JobError(f"unknown stage(s) {sorted(unknown)} in steps: use appearance, motion, distillation")
        if any(not isinstance(n, int) or n < 1 for n in self.steps.values()):
            raise JobError(f"steps {self.steps} must be whole numbers of at least 1")

    def stage_steps(self) -> tuple[int, int, int]:
        preset = QUALITY_PRESETS[self.quality]
        return (
            self.steps.get("appearance", preset[0]),
            self.steps.get("motion", preset[1]),
            self.steps.get("distillation", preset[2]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"schema": JOB_SCHEMA, "version": JOB_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "JobSpec":
        if not isinstance(data, dict) or data.get("schema") != JOB_SCHEMA:
            raise JobError(f"{source} is not a Sketch Animator job file")
        if data.get("version") != JOB_VERSION:
            raise JobError(
                f"{source} was written by another version of Sketch Animator (job format {data.get('version')!r}, "
                f"this engine reads {JOB_VERSION}): start the job again from Blender or `python -m engine animate`"
            )
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise JobError(f"{source} is malformed ({exc})") from None


def write_job_files(job_dir: str | os.PathLike, sketch: Mapping[str, Any], spec: JobSpec) -> Path:
    """Create a job folder from a Sketch dict (engine JSON layout) and its settings.

    job.json is written last, so a folder with a job.json is a complete job. The sketch is
    checked by the engine when the job runs (this side has no numpy to spare).
    """
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(job_dir / SKETCH_FILE, json.dumps(sketch, allow_nan=False))
    atomic_write_text(job_dir / JOB_FILE, json.dumps(spec.to_dict(), indent=2))
    return job_dir


def read_job_spec(job_dir: str | os.PathLike) -> JobSpec:
    path = Path(job_dir) / JOB_FILE
    if not path.is_file():
        raise JobError(f"{job_dir} is not a job folder (no job.json): create one with `python -m engine animate` or from Blender")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise JobError(f"{path} cannot be read ({exc}): start the job again") from None
    return JobSpec.from_dict(data, str(path))


def is_result_complete(out_dir: str | os.PathLike) -> bool:
    """True when the manifest exists and vouches for the result.json beside it (same size)."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        listed_size = manifest["files"][RESULT_JSON]
        actual_size = (out_dir / RESULT_JSON).stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return manifest.get("schema") == MANIFEST_SCHEMA and listed_size == actual_size


def require_complete_result(out_dir: str | os.PathLike) -> Path:
    """The path of a finished result's result.json; a one-line JobError for an unfinished one."""
    out_dir = Path(out_dir)
    if not is_result_complete(out_dir):
        raise JobError(f"the result in {out_dir} is incomplete: run the job again to finish it")
    return out_dir / RESULT_JSON


def read_result_dict(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The result's Sketch JSON as a dict (frames included); refuses an unfinished result."""
    path = require_complete_result(out_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise JobError(f"{path} cannot be read ({exc}): run the job again") from None
