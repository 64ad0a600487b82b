"""The whole method on a job folder: stages 1–3 (or the preview), resumable, with events for the add-on.

A job folder (engine/job/folder.py) holds `job.json` (versioned settings), `input_sketch.json`,
an append-only `events.jsonl`, the stage-3 checkpoint, a strip of the sampled reference frames
and, when finished, `result/` (engine/job/outputs.py). `python -m engine run JOBDIR` runs or
resumes it: stages 1 and 2 come from the adapter cache when they were learned before, stage 3
continues from its last checkpoint, and a finished job is not run again. SIGTERM (or a
`cancel` file in the folder) stops it cleanly at the next step, keeping what is done.

This is the only place that wires the parts: the backbone (chosen for the model), the stages,
and the prior named in the job (a prior that needs no video model skips stages 1–2).
`learn_shared_stage` runs stage 1 or 2 of a job alone, through the same code, so the batch
runner (engine/batch/) learns a stage several jobs share once and each job then finds it cached.
"""

from __future__ import annotations

import errno
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
from .folder import CANCEL_FILE, CHECKPOINT, EVENTS_FILE, LOG_FILE, PREVIEW_SIZE, REFERENCE_STRIP, RESULT_DIR, WINDOWS_DIR, JobSpec, read_job
from .outputs import ResultFiles, write_result
from .lock import JobBusyError, JobLock, read_only_error
from .results import MANIFEST, is_result_complete, result_damage
from .windows import Window, check_time_budget, estimate_minutes, plan_windows

if TYPE_CHECKING:
    import numpy as np

__all__ = ["learn_shared_stage", "previewed_motion", "run_job"]



def run_job(job_dir: str | os.PathLike, show_bar: bool | None = None, wait: bool = False) -> Path:
    """Run or resume a job; returns its result folder. Errors are also written as events.

    A finished job is reported without writing anything (a read-only folder is fine). Otherwise
    the job's lock is taken first (engine/job/lock.py: another process running the job is
    refused in one line, or waited for with `wait`), then everything, reading the job itself
    included, ends the log with an "error" event if it fails: a `SketchAnimatorError` with its
    one-line message, anything else with its class name and first line (the traceback goes to
    stderr, i.e. the job's engine.log). A result whose files no longer match its manifest is
    recomputed from the last finished stage, with a warning.
    """
    job_dir = Path(job_dir)
    events = EventLog(job_dir / EVENTS_FILE)
    result_dir = job_dir / RESULT_DIR
    if is_result_complete(result_dir):
        report_finished(events, result_dir)
        return result_dir
    try:
        with JobLock(job_dir, wait=wait):
            damage = result_damage(result_dir)
            if damage is None:  # finished by the process this one waited for, which said so
                return result_dir
            sketch, spec = read_job(job_dir)
            if (result_dir / MANIFEST).exists():
                events.warning(f"the result in {result_dir} is damaged ({damage}): computing it again from the last finished stage")
            with StopRequest(cancel_file=job_dir / CANCEL_FILE) as stop:
                if spec.method == "preview":
                    files = run_preview(job_dir, sketch, spec, events)
                else:
                    files = run_stages(job_dir, sketch, spec, events, stop, show_bar)
            events.emit("done", result=str(files.out_dir))
            return files.out_dir
    except JobBusyError:
        raise  # the job is another process's: its log is not this one's to end
    except SketchAnimatorError as exc:
        error_event(events, exc)
        raise
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            error = read_only_error(job_dir)
            error_event(events, error)
            raise error from None
        error_event(events, exc, where=LOG_FILE)
        raise
    except Exception as exc:
        error_event(events, exc, where=LOG_FILE)
        raise


def report_finished(events: EventLog, result_dir: Path) -> None:
    """Say the job is done (once more); a folder that cannot be written to still has its result."""
    try:
        events.emit("done", result=str(result_dir), resumed=True)
    except (OSError, SketchAnimatorError):
        pass


def run_preview(job_dir: Path, sketch: Sketch, spec: JobSpec, events: EventLog) -> ResultFiles:
    """The optical-flow motion transfer as a job: no diffusion model, seconds on a CPU."""
    from ..preview import preview_motion

    num_poses = spec.num_poses()  # the preview has no window limit
    events.emit("job_start", frames=num_poses, method="preview", steps=[], stage_steps={})
    size = spec.resolution or PREVIEW_SIZE
    settings = PreviewSettings.from_dict({**spec.preview, "num_frames": num_poses, "size": size})
    video_spec = spec.video_spec((size, size), num_poses)
    result = preview_motion(sketch, video_spec, settings, job_dir / RESULT_DIR, events, motion_prompt=spec.motion_prompt)
    return result.files


def run_stages(job_dir: Path, sketch: Sketch, spec: JobSpec, events: EventLog, stop: StopRequest, show_bar: bool | None) -> ResultFiles:
    """Stages 1–2 (when the prior uses the video model), then stage 3 with the job's prior; a clip
    longer than the model's window runs as overlapping windows (engine/job/windows.py)."""
    entry = prior_entry(spec.prior)
    appearance_steps, motion_steps, distillation_steps = spec.stage_steps()
    num_poses = spec.num_poses()
    windows = job_windows(spec, num_poses, entry.uses_backbone)
    minutes = estimate_minutes(windows, (appearance_steps, motion_steps, distillation_steps), square(spec.resolution), spec.device, entry.uses_backbone)
    check_time_budget(minutes, spec.max_minutes, windows)
    stage_steps = {"appearance": appearance_steps, "motion": motion_steps * len(windows)} if entry.uses_backbone else {}
    stage_steps["distillation"] = distillation_steps * len(windows)
    events.emit(
        "job_start", frames=num_poses, quality=spec.quality, prior=spec.prior, windows=len(windows),
        steps=list(stage_steps.values()), stage_steps=stage_steps, estimate_min=round(minutes, 2),
    )  # fmt: skip

    backbone = load_job_backbone(spec, events) if entry.uses_backbone else None
    frame_size = backbone.frame_size_for(spec.resolution) if backbone is not None else square(spec.resolution)
    video_spec = spec.video_spec(frame_size, num_poses)
    clip = load_reference_frames(video_spec)
    for warning in clip.warnings:
        events.warning(warning)
    save_preview_strip(clip.frames, job_dir / REFERENCE_STRIP)

    settings = DistillationSettings.from_dict({**spec.distillation, "steps": distillation_steps, **stage_common(spec)}, "distillation option")
    motions: list[Path | None] = [None] * len(windows)
    adapters: dict[str, object] = {}
    if backbone is not None:
        appearance, motions = learn_adapters(backbone, sketch, spec, clip, video_spec, windows, events, stop, show_bar)
        backbone.load_adapter("appearance", appearance)
        adapters = {"appearance": str(appearance), "motion_temporal": [str(m) for m in motions]}
    init = previewed_motion(sketch, video_spec, events) if spec.init == "preview" else None

    def prior_for(window: Window, shown: list[int]):
        if backbone is not None:
            backbone.load_adapter("motion_temporal", motions[window.index])
        context = PriorContext(settings, frame_size, num_poses, spec.motion_prompt, spec.prior_options, job_dir, backbone, frame_indices=shown)
        return entry.implementation_class().from_context(context)

    frames, history, skipped = distill_windows(job_dir, sketch, settings, windows, prior_for, init, frame_size, events, stop, show_bar)
    if skipped:
        events.warning(f"{skipped} of {distillation_steps * len(windows)} distillation steps had non-finite gradients and were skipped")
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
        "windows": [{"start": w.start, "stop": w.stop, "held": w.held} for w in windows],
        "timing": {**clip.timing(), "periodic": settings.periodic},
        "skipped_steps": skipped,
        "history": history,
    }
    return write_result(job_dir / RESULT_DIR, sketch, frames, clip.frames, history["loss"], metadata)


def job_windows(spec: JobSpec, num_poses: int, uses_backbone: bool = True) -> list[Window]:
    """The stretches of the clip that the video model sees at once (all of it without a video model)."""
    size = spec.window or (native_window(spec) if uses_backbone else num_poses)
    return plan_windows(num_poses, size, min(spec.window_overlap, size - 1))


def native_window(spec: JobSpec) -> int:
    """The clip length of the job's video model, from its registry entry (no weights are loaded)."""
    from ..backbones import choose_backbone
    from ..backbones.hub import model_or_embedded_tiny, resolve_model_dir

    options = BackboneOptions(device=spec.device, dtype=spec.dtype)
    model, _ = model_or_embedded_tiny(spec.model, options)
    return choose_backbone(resolve_model_dir(model, options.revision, options.cache_dir), spec.model or model, spec.backbone).num_frames


def distill_windows(
    job_dir: Path, sketch: Sketch, settings: DistillationSettings, windows: list[Window], prior_for, init, frame_size: tuple[int, int],
    events: EventLog, stop: StopRequest, show_bar: bool | None,
) -> tuple["np.ndarray", dict[str, list], int]:  # fmt: skip
    """Stage 3 window by window: each window's first `held` poses stay at the previous window's
    result; a cycle's last window also sees the clip's first pose after its last. A finished
    window is kept in `windows/`, so a resumed job continues with the window it stopped in."""
    from ..stages.distillation import distill, initial_frames

    num_poses = windows[-1].stop
    start = initial_frames(sketch, num_poses, init)
    frames = start.copy()
    history: dict[str, list] = {}
    skipped = 0
    several = len(windows) > 1
    for window in windows:
        fields = {"window": window.index + 1, "windows": len(windows)} if several else None
        stored = job_dir / WINDOWS_DIR / f"window_{window.index:03d}.json"
        done = read_window(stored, window, sketch.num_points)
        if done is None:
            window_init = start[window.start : window.stop].copy()
            if window.held:  # continue from the shared poses: held at the previous result, the rest starting from the last of them
                window_init[: window.held] = frames[window.start : window.start + window.held]
                if init is None:
                    window_init[window.held :] = frames[window.start + window.held - 1]
            last = window.index == len(windows) - 1
            periodic = settings.periodic and last
            shown = list(range(window.start, window.stop)) + ([0] if periodic else [])
            next_frame = frames[0] if periodic and several else None
            checkpoint = job_dir / (CHECKPOINT if not several else f"distillation-window{window.index:03d}.ckpt")
            window_settings = replace(settings, periodic=periodic, seed=settings.seed + window.index)
            result = distill(
                sketch, prior_for(window, shown), window_settings, window.size, checkpoint, init=window_init, events=events, stop=stop,
                show_bar=show_bar, frame_size=frame_size, held=window.held, next_frame=next_frame, progress_fields=fields,
            )  # fmt: skip
            done = {"frames": result.frames, "history": result.history, "skipped": result.skipped_steps}
            write_window(stored, done)
        free = slice(window.start + window.held, window.stop)
        frames[free] = done["frames"][window.held :]
        for name, values in done["history"].items():
            history.setdefault(name, []).extend(values)
        if several:
            history.setdefault("window", []).extend([window.index] * len(done["history"]["loss"]))
        skipped += done["skipped"]
    return frames, history, skipped


def read_window(path: Path, window: Window, num_points: int) -> dict | None:
    """A finished window's poses, or None when it has not finished (or its file does not fit)."""
    import json

    import numpy as np

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        frames = np.asarray(data["frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if frames.shape != (window.size, num_points, 2):
        return None
    return {"frames": frames, "history": data.get("history", {"loss": []}), "skipped": int(data.get("skipped", 0))}


def write_window(path: Path, done: dict) -> None:
    import json

    from ..files import atomic_write_text
    from ..jsondata import to_json_value

    atomic_write_text(path, json.dumps({"frames": done["frames"].tolist(), "history": to_json_value(done["history"]), "skipped": done["skipped"]}))


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
    backbone: VideoBackbone, sketch: Sketch, spec: JobSpec, clip, video_spec: VideoSpec, windows: list[Window], events: EventLog,
    stop: StopRequest, show_bar: bool | None,
) -> tuple[Path, list[Path]]:  # fmt: skip
    """Stage 1 once and stage 2 per window, from the cache when learned before."""
    appearance = learn_job_appearance(backbone, sketch, spec, events, stop, show_bar)
    return appearance, learn_job_motions(backbone, spec, clip, video_spec, windows, events, stop, show_bar)


def job_cache(spec: JobSpec):
    from ..backbones.adapter_cache import AdapterCache

    return AdapterCache(Path(spec.cache_dir) / "adapters" if spec.cache_dir else None)


def stage_common(spec: JobSpec) -> dict:
    """What every stage's settings take from the job: seed, resolution, checkpoint interval."""
    return dict(seed=spec.seed, resolution=spec.resolution, checkpoint_every=spec.checkpoint_every)


def learn_job_appearance(backbone: VideoBackbone, sketch: Sketch, spec: JobSpec, events: EventLog | None, stop: StopRequest | None, show_bar: bool | None) -> Path:
    from ..stages.appearance import learn_appearance

    settings = AppearanceSettings(steps=spec.stage_steps()[0], **stage_common(spec))
    return learn_appearance(backbone, sketch, spec.subject_prompt, settings, job_cache(spec), events, stop, show_bar)


def learn_job_motions(
    backbone: VideoBackbone, spec: JobSpec, clip, video_spec: VideoSpec, windows: list[Window], events: EventLog | None, stop: StopRequest | None,
    show_bar: bool | None,
) -> list[Path]:  # fmt: skip
    """The motion of each window of the clip (one window for a clip within the model's length)."""
    from ..stages.motion import learn_motion

    settings = MotionSettings(steps=spec.stage_steps()[1], **stage_common(spec))
    cache = job_cache(spec)
    several = len(windows) > 1
    return [
        learn_motion(
            backbone, clip.window(w.start, w.stop), video_spec, spec.motion_prompt, settings, cache, events, stop, show_bar,
            progress_fields={"window": w.index + 1, "windows": len(windows)} if several else None,
        )  # fmt: skip
        for w in windows
    ]


def learn_shared_stage(job_dir: Path, kind: str, events: EventLog, stop: StopRequest | None = None) -> list[Path]:
    """Only stage 1 ("appearance") or stage 2 ("motion") of a job, into its cache, exactly as
    `run_job` would learn it (the same keys, so the job finds it there); returns the adapter
    files. The batch runner learns a stage that several jobs share once this way."""
    sketch, spec = read_job(job_dir)
    if spec.method != "diffusion" or not prior_entry(spec.prior).uses_backbone:
        return []
    backbone = load_job_backbone(spec, events)
    if kind == "appearance":
        return [learn_job_appearance(backbone, sketch, spec, events, stop, False)]
    num_poses = spec.num_poses()
    video_spec = spec.video_spec(backbone.frame_size_for(spec.resolution), num_poses)
    return learn_job_motions(backbone, spec, load_reference_frames(video_spec), video_spec, job_windows(spec, num_poses), events, stop, False)


def previewed_motion(sketch: Sketch, video_spec: VideoSpec, events: EventLog) -> "np.ndarray":
    """Stage 3's starting point from the tracked motion of the video (no diffusion model)."""
    from ..preview import preview_motion

    preview_spec = replace(video_spec, width=None)  # the preview tracks square frames of the same height
    preview = preview_motion(sketch, preview_spec, PreviewSettings(num_frames=video_spec.num_frames, size=video_spec.size), events=events)
    for warning in preview.warnings:
        events.warning(warning)
    events.emit("preview_ready", frames=len(preview.frames))
    return preview.frames
