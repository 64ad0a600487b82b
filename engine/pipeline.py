"""The whole method on a job folder: stages 1–3, resumable, with events for the Blender add-on.

A job folder (design.md §3) holds `job.json` (versioned settings), `input_sketch.json`, an
append-only `events.jsonl`, the stage-3 checkpoint, a strip of the sampled reference frames
and, when finished, `result/` (see engine/outputs.py). `python -m engine run JOBDIR` runs or
resumes it: stages 1 and 2 come from the adapter cache when they were learned before, stage
3 continues from its last checkpoint, and a finished job is not run again. SIGTERM (or a
`cancel` file in the folder) stops it cleanly at the next step, keeping what is done.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .appearance import AppearanceSettings, learn_appearance
from .backbone import BackboneOptions, load_backbone, model_or_embedded_tiny
from .cache import AdapterCache
from .checkpoint import StopRequest
from .distillation import DistillationSettings, SDSPrior, distill
from .errors import SketchAnimatorError
from .events import EventLog, error_event
from .jobfolder import CANCEL_FILE, EVENTS_FILE, LOG_FILE, QUALITY_PRESETS, RESULT_DIR, SKETCH_FILE, JobError, JobSpec, is_result_complete, read_job_spec, write_job_files
from .motion import MotionSettings, learn_motion
from .outputs import ResultFiles, write_result
from .sketch import Sketch
from .video import VideoSpec, load_reference_frames, save_preview_strip

if TYPE_CHECKING:
    import numpy as np

__all__ = ["QUALITY_PRESETS", "JobError", "JobSpec", "previewed_motion", "read_job", "run_job", "write_job"]


def write_job(job_dir: str | os.PathLike, sketch: Sketch, spec: JobSpec) -> Path:
    """Create a job folder: the sketch and job.json (written last, atomically)."""
    return write_job_files(job_dir, sketch.validate().to_dict(), spec)


def read_job(job_dir: Path) -> tuple[Sketch, JobSpec]:
    spec = read_job_spec(job_dir)
    return Sketch.load_json(Path(job_dir) / SKETCH_FILE), spec


def run_job(job_dir: str | os.PathLike, show_bar: bool | None = None) -> Path:
    """Run or resume a job; returns its result folder. Errors are also written as events.

    Every failure ends the log with an "error" event, so a watcher (the Blender add-on) never
    has to guess: a `SketchAnimatorError` with its one-line message, anything else with its
    class name and first line (the traceback goes to stderr, i.e. the job's engine.log).
    """
    job_dir = Path(job_dir)
    sketch, spec = read_job(job_dir)
    events = EventLog(job_dir / EVENTS_FILE)
    result_dir = job_dir / RESULT_DIR
    if is_result_complete(result_dir):
        events.emit("done", result=str(result_dir), resumed=True)
        return result_dir
    try:
        with StopRequest(cancel_file=job_dir / CANCEL_FILE) as stop:
            if spec.method == "preview":
                files = _run_preview(job_dir, sketch, spec, events)
            else:
                files = _run_stages(job_dir, sketch, spec, events, stop, show_bar)
    except SketchAnimatorError as exc:
        error_event(events, exc)
        raise
    except Exception as exc:
        error_event(events, exc, where=LOG_FILE)
        raise
    events.emit("done", result=str(files.out_dir))
    return files.out_dir


def _run_preview(job_dir: Path, sketch: Sketch, spec: JobSpec, events: EventLog) -> ResultFiles:
    """The optical-flow motion transfer as a job: no diffusion model, seconds on a CPU."""
    from .preview import PreviewSettings, preview_motion

    events.emit("job_start", frames=spec.num_frames, method="preview", steps=[])
    settings = PreviewSettings(**{**spec.preview, "num_frames": spec.num_frames, "size": spec.resolution})
    video_spec = settings.video_spec(spec.video, spec.video_start_s, spec.video_end_s, spec.video_fit)
    result = preview_motion(sketch, video_spec, settings, job_dir / RESULT_DIR, events)
    return result.files


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
    return write_result(job_dir / RESULT_DIR, sketch, result.frames, clip.frames, result.losses, metadata)


def previewed_motion(sketch: Sketch, video_spec: VideoSpec, events: EventLog) -> "np.ndarray":
    """Stage 3's starting point from the tracked motion of the video (no diffusion model)."""
    from .preview import PreviewSettings, preview_motion

    preview = preview_motion(sketch, video_spec, PreviewSettings(num_frames=video_spec.num_frames, size=video_spec.size), events=events)
    for warning in preview.warnings:
        events.warning(warning)
    events.emit("preview_ready", frames=len(preview.frames))
    return preview.frames
