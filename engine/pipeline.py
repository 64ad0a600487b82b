"""The whole method on a job folder: stages 1–3, resumable, with events for the Blender add-on.

A job folder (design.md §3) holds `job.json` (versioned settings), `input_sketch.json`, an
append-only `events.jsonl`, the stage-3 checkpoint, a strip of the sampled reference frames
and, when finished, `result/` (see engine/outputs.py). `python -m engine run JOBDIR` runs or
resumes it: stages 1 and 2 come from the adapter cache when they were learned before, stage
3 continues from its last checkpoint, and a finished job is not run again. SIGTERM (or a
`cancel` file in the folder) stops it cleanly at the next step, keeping what is done.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .appearance import AppearanceSettings, learn_appearance
from .backbone import BackboneOptions, load_backbone, model_or_embedded_tiny
from .cache import AdapterCache
from .checkpoint import StopRequest
from .distillation import DistillationSettings, SDSPrior, distill
from .errors import SketchAnimatorError
from .events import EventLog, error_event
from .files import atomic_write_text
from .motion import MotionSettings, learn_motion
from .outputs import ResultFiles, is_result_complete, write_result
from .sketch import Sketch
from .video import VideoSpec, load_reference_frames, save_preview_strip

JOB_SCHEMA = "sketch-animator/job"
JOB_VERSION = 1

# Steps of (appearance, motion, distillation) per quality preset.
QUALITY_PRESETS: dict[str, tuple[int, int, int]] = {
    "demo": (40, 40, 80),  # the README demo on CPU with the tiny model
    "draft": (150, 150, 250),
    "standard": (300, 300, 500),
    "paper": (500, 500, 1000),
}


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

    def __post_init__(self) -> None:
        if self.quality not in QUALITY_PRESETS:
            raise JobError(f"unknown quality preset {self.quality!r}: use one of {', '.join(QUALITY_PRESETS)}")
        unknown = set(self.distillation) - {f.name for f in fields(DistillationSettings)}
        if unknown:
            raise JobError(f"unknown distillation option(s) {sorted(unknown)}: see `python -m engine animate --help`")
        if self.init not in ("static", "preview"):
            raise JobError(f"unknown init {self.init!r}: use static (the sketch duplicated) or preview (the tracked motion)")
        if not 2 <= self.num_frames <= 64:
            raise JobError(f"{self.num_frames} frames asked for: the video model handles 2 to 64 (16 is its native length)")

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


def write_job(job_dir: str | os.PathLike, sketch: Sketch, spec: JobSpec) -> Path:
    """Create a job folder: the sketch and job.json (written last, atomically)."""
    job_dir = Path(job_dir)
    sketch.validate()
    job_dir.mkdir(parents=True, exist_ok=True)
    sketch.save_json(job_dir / "input_sketch.json")
    atomic_write_text(job_dir / "job.json", json.dumps(spec.to_dict(), indent=2))
    return job_dir


def read_job(job_dir: Path) -> tuple[Sketch, JobSpec]:
    path = job_dir / "job.json"
    if not path.is_file():
        raise JobError(f"{job_dir} is not a job folder (no job.json): create one with `python -m engine animate` or from Blender")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(f"{path} cannot be read ({exc}): start the job again") from None
    spec = JobSpec.from_dict(data, str(path))
    return Sketch.load_json(job_dir / "input_sketch.json"), spec


def run_job(job_dir: str | os.PathLike, show_bar: bool | None = None) -> Path:
    """Run or resume a job; returns its result folder. Errors are also written as events."""
    job_dir = Path(job_dir)
    sketch, spec = read_job(job_dir)
    events = EventLog(job_dir / "events.jsonl")
    result_dir = job_dir / "result"
    if is_result_complete(result_dir):
        events.emit("done", result=str(result_dir), resumed=True)
        return result_dir
    try:
        with StopRequest(cancel_file=job_dir / "cancel") as stop:
            files = _run_stages(job_dir, sketch, spec, events, stop, show_bar)
    except SketchAnimatorError as exc:
        error_event(events, exc)
        raise
    events.emit("done", result=str(files.out_dir))
    return files.out_dir


def _run_stages(job_dir: Path, sketch: Sketch, spec: JobSpec, events: EventLog, stop: StopRequest, show_bar: bool | None) -> ResultFiles:
    appearance_steps, motion_steps, distillation_steps = spec.stage_steps()
    events.emit("job_start", frames=spec.num_frames, quality=spec.quality, steps=[appearance_steps, motion_steps, distillation_steps])

    video_spec = VideoSpec(path=spec.video, num_frames=spec.num_frames, size=spec.resolution, start_s=spec.video_start_s, end_s=spec.video_end_s, fit=spec.video_fit)
    clip = load_reference_frames(video_spec)
    for warning in clip.warnings:
        events.warning(warning)
    save_preview_strip(clip.frames, job_dir / "reference_frames.png")

    options = BackboneOptions(device=spec.device, dtype=spec.dtype)
    model, note = model_or_embedded_tiny(spec.model, options)
    if note:
        events.warning(note)
        print(f"note: {note}", file=sys.stderr)
    backbone = load_backbone(model, options)
    cache = AdapterCache(Path(spec.cache_dir) / "adapters" if spec.cache_dir else None)
    common = dict(seed=spec.seed, resolution=spec.resolution, checkpoint_every=spec.checkpoint_every)

    appearance = learn_appearance(backbone, sketch, spec.subject_prompt, AppearanceSettings(steps=appearance_steps, **common), cache, events, stop, show_bar)
    motion = learn_motion(backbone, clip, video_spec, spec.motion_prompt, MotionSettings(steps=motion_steps, **common), cache, events, stop, show_bar)
    backbone.load_adapter("appearance", appearance)
    backbone.load_adapter("motion_temporal", motion)

    settings = DistillationSettings(**{**spec.distillation, "steps": distillation_steps, **common})
    prior = SDSPrior(backbone, spec.motion_prompt, settings)
    init = previewed_motion(sketch, video_spec, events) if spec.init == "preview" else None
    result = distill(sketch, prior, settings, spec.num_frames, job_dir / "distillation.ckpt", init=init, events=events, stop=stop, show_bar=show_bar)
    if result.skipped_steps:
        events.warning(f"{result.skipped_steps} of {distillation_steps} distillation steps had non-finite gradients and were skipped")
    metadata = {
        "subject_prompt": spec.subject_prompt,
        "motion_prompt": spec.motion_prompt,
        "model": backbone.model_name,
        "seed": spec.seed,
        "quality": spec.quality,
        "adapters": {"appearance": str(appearance), "motion_temporal": str(motion)},
        "distillation": settings.to_dict(),
        "skipped_steps": result.skipped_steps,
    }
    return write_result(job_dir / "result", sketch, result.frames, clip.frames, result.losses, metadata)


def previewed_motion(sketch: Sketch, video_spec: VideoSpec, events: EventLog) -> "np.ndarray":
    """Stage 3's starting point from the tracked motion of the video (no diffusion model)."""
    from .preview import PreviewSettings, preview_motion

    preview = preview_motion(sketch, video_spec, PreviewSettings(num_frames=video_spec.num_frames, size=video_spec.size), events=events)
    for warning in preview.warnings:
        events.warning(warning)
    events.emit("preview_ready", frames=len(preview.frames))
    return preview.frames
