"""The whole method on a job folder: stages 1–3 (or the preview), resumable, with events for the add-on.

A job folder (engine/job/folder.py) holds `job.json` (versioned settings), `input_sketch.json`,
an append-only `events.jsonl`, the stage-3 checkpoint, a strip of the sampled reference frames
and, when finished, `result/` (engine/job/outputs.py). `python -m engine run JOBDIR` runs or
resumes it: stages 1 and 2 come from the adapter cache when they were learned before, stage 3
continues from its last checkpoint, and a finished job is not run again. SIGTERM (or a
`cancel` file in the folder) stops it cleanly at the next step, keeping what is done.

This is the only place that wires the parts: the backbone (chosen for the model), the stages,
and the prior named in the job (a prior that needs no video model skips stages 1–2).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..backbones.base import BackboneOptions, VideoBackbone
from ..errors import SketchAnimatorError
from ..media.reference import VideoSpec, load_reference_frames, save_preview_strip
from ..priors import prior_entry
from ..priors.base import PriorContext
from ..settings import AppearanceSettings, DistillationSettings, MotionSettings, PreviewSettings
from ..vector.sketch import Sketch
from .checkpoint import StopRequest
from .events import EventLog, error_event
from .folder import CANCEL_FILE, EVENTS_FILE, LOG_FILE, PREVIEW_SIZE, RESULT_DIR, JobSpec, read_job
from .outputs import ResultFiles, write_result
from .results import is_result_complete

if TYPE_CHECKING:
    import numpy as np

__all__ = ["previewed_motion", "run_job"]

REFERENCE_STRIP = "reference_frames.png"
CHECKPOINT = "distillation.ckpt"


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
                files = run_preview(job_dir, sketch, spec, events)
            else:
                files = run_stages(job_dir, sketch, spec, events, stop, show_bar)
    except SketchAnimatorError as exc:
        error_event(events, exc)
        raise
    except Exception as exc:
        error_event(events, exc, where=LOG_FILE)
        raise
    events.emit("done", result=str(files.out_dir))
    return files.out_dir


def run_preview(job_dir: Path, sketch: Sketch, spec: JobSpec, events: EventLog) -> ResultFiles:
    """The optical-flow motion transfer as a job: no diffusion model, seconds on a CPU."""
    from ..preview import preview_motion

    events.emit("job_start", frames=spec.num_frames, method="preview", steps=[], stage_steps={})
    size = spec.resolution or PREVIEW_SIZE
    settings = PreviewSettings.from_dict({**spec.preview, "num_frames": spec.num_frames, "size": size})
    video_spec = spec.video_spec((size, size))
    result = preview_motion(sketch, video_spec, settings, job_dir / RESULT_DIR, events, motion_prompt=spec.motion_prompt)
    return result.files


def run_stages(job_dir: Path, sketch: Sketch, spec: JobSpec, events: EventLog, stop: StopRequest, show_bar: bool | None) -> ResultFiles:
    """Stages 1–2 (when the prior uses the video model), then stage 3 with the job's prior."""
    entry = prior_entry(spec.prior)
    appearance_steps, motion_steps, distillation_steps = spec.stage_steps()
    stage_steps = {"appearance": appearance_steps, "motion": motion_steps} if entry.uses_backbone else {}
    stage_steps["distillation"] = distillation_steps
    events.emit("job_start", frames=spec.num_frames, quality=spec.quality, prior=spec.prior, steps=list(stage_steps.values()), stage_steps=stage_steps)

    backbone = load_job_backbone(spec, events) if entry.uses_backbone else None
    frame_size = backbone.frame_size_for(spec.resolution) if backbone is not None else square(spec.resolution)
    video_spec = spec.video_spec(frame_size)
    clip = load_reference_frames(video_spec)
    for warning in clip.warnings:
        events.warning(warning)
    save_preview_strip(clip.frames, job_dir / REFERENCE_STRIP)

    common = dict(seed=spec.seed, resolution=spec.resolution, checkpoint_every=spec.checkpoint_every)
    adapters: dict[str, str] = {}
    if backbone is not None:
        adapters = learn_adapters(backbone, sketch, spec, clip, video_spec, (appearance_steps, motion_steps), common, events, stop, show_bar)

    settings = DistillationSettings.from_dict({**spec.distillation, "steps": distillation_steps, **common}, "distillation option")
    context = PriorContext(settings, frame_size, spec.num_frames, spec.motion_prompt, spec.prior_options, job_dir, backbone)
    prior = entry.implementation_class().from_context(context)
    init = previewed_motion(sketch, video_spec, events) if spec.init == "preview" else None
    from ..stages.distillation import distill

    result = distill(sketch, prior, settings, spec.num_frames, job_dir / CHECKPOINT, init=init, events=events, stop=stop, show_bar=show_bar, frame_size=frame_size)
    if result.skipped_steps:
        events.warning(f"{result.skipped_steps} of {distillation_steps} distillation steps had non-finite gradients and were skipped")
    metadata = {
        "kind": "animation",
        "subject_prompt": spec.subject_prompt,
        "motion_prompt": spec.motion_prompt,
        "model": backbone.model_name if backbone is not None else None,
        "backbone": backbone.name if backbone is not None else None,
        "prior": spec.prior,
        "frame_size": list(frame_size),
        "seed": spec.seed,
        "quality": spec.quality,
        "adapters": adapters,
        "distillation": settings.to_dict(),
        "skipped_steps": result.skipped_steps,
        "history": result.history,
    }
    return write_result(job_dir / RESULT_DIR, sketch, result.frames, clip.frames, result.losses, metadata)


def square(resolution: int | None) -> tuple[int, int]:
    """The frame size of a job without a video model: a square of the resolution (default 256)."""
    side = resolution or PREVIEW_SIZE
    return (side, side)


def load_job_backbone(spec: JobSpec, events: EventLog) -> VideoBackbone:
    """The job's model (the embedded tiny one, with a warning, when none is downloaded) and its backbone."""
    from ..backbones import load_backbone
    from ..backbones.hub import model_or_embedded_tiny

    options = BackboneOptions(device=spec.device, dtype=spec.dtype)
    model, note = model_or_embedded_tiny(spec.model, options)
    if note:
        events.warning(note)
        print(f"note: {note}", file=sys.stderr)
    return load_backbone(model, options, spec.backbone)


def learn_adapters(
    backbone: VideoBackbone, sketch: Sketch, spec: JobSpec, clip, video_spec: VideoSpec, steps: tuple[int, int], common: dict,
    events: EventLog, stop: StopRequest, show_bar: bool | None,
) -> dict[str, str]:  # fmt: skip
    """Stages 1 and 2 (from the cache when learned before), loaded onto the backbone for stage 3."""
    from ..backbones.adapter_cache import AdapterCache
    from ..stages.appearance import learn_appearance
    from ..stages.motion import learn_motion

    cache = AdapterCache(Path(spec.cache_dir) / "adapters" if spec.cache_dir else None)
    appearance = learn_appearance(backbone, sketch, spec.subject_prompt, AppearanceSettings(steps=steps[0], **common), cache, events, stop, show_bar)
    motion = learn_motion(backbone, clip, video_spec, spec.motion_prompt, MotionSettings(steps=steps[1], **common), cache, events, stop, show_bar)
    backbone.load_adapter("appearance", appearance)
    backbone.load_adapter("motion_temporal", motion)
    return {"appearance": str(appearance), "motion_temporal": str(motion)}


def previewed_motion(sketch: Sketch, video_spec: VideoSpec, events: EventLog) -> "np.ndarray":
    """Stage 3's starting point from the tracked motion of the video (no diffusion model)."""
    from ..preview import preview_motion

    preview_spec = replace(video_spec, width=None)  # the preview tracks square frames of the same height
    preview = preview_motion(sketch, preview_spec, PreviewSettings(num_frames=video_spec.num_frames, size=video_spec.size), events=events)
    for warning in preview.warnings:
        events.warning(warning)
    events.emit("preview_ready", frames=len(preview.frames))
    return preview.frames
