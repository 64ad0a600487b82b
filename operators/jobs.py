"""Jobs seen from Blender: create a job folder from an object, start it, follow it, apply it.

The process side is engine/jobclient.py (standard library only); this module adds what needs
bpy: reading the object's settings and strokes, finding the object a job belongs to (by the
job folder stored on it, so a rename does not lose it), the poll timer, and reattaching
after a .blend is opened. `poll_jobs()` is a plain function: Blender's timer calls it, and
so do the tests (timers do not fire without a window).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
from bpy.app.handlers import persistent

from ..engine.errors import SketchAnimatorError
from ..engine.job import client as jobclient
from ..engine.job import environment
from ..engine.job.folder import JobSpec, write_job
from ..engine.job.results import read_result
from ..engine.media.reference import FFMPEG_SUFFIXES, GIF_SUFFIXES
from ..engine.vector.sketch import DEFAULT_CANVAS
from ..grease_pencil import blender_io as gp_io
from .settings import EXTENSION_ROOT, Preferences, cache_folder, preferences

POLL_INTERVAL_S = 0.5
VIDEO_SUFFIXES = FFMPEG_SUFFIXES + GIF_SUFFIXES


class UserError(Exception):
    """Something the user can fix; the message is one line and says how."""


@dataclass
class TrackedJob:
    watcher: jobclient.JobWatcher  # the object is found by its job folder (`owner_of`), so renames do not matter
    reported: str = ""  # the final state already reported (so it is reported once)


JOBS: dict[str, TrackedJob] = {}  # by job folder (absolute path)


# --------------------------------------------------------------------------- creating
def job_folder_for(ob: Any, prefs: Preferences) -> Path:
    """Next to the .blend when it is saved (`<blend>_sketch_animator/`), else in the cache folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^\w.-]+", "_", ob.name).strip("_") or "sketch"
    if bpy.data.filepath:
        blend = Path(bpy.data.filepath)
        base = blend.parent / f"{blend.stem}_sketch_animator"
    else:
        base = cache_folder(prefs) / "jobs"
    folder = base / f"{safe}-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = base / f"{safe}-{stamp}-{suffix}"
    return folder


def job_spec(settings: Any, prefs: Preferences, method: str) -> JobSpec:
    """The job settings from the panel and the preferences."""
    video = bpy.path.abspath(settings.video) if settings.video else ""
    quality = prefs.default_quality if settings.quality == "DEFAULT" else settings.quality
    steps = {}
    if settings.custom_steps:
        steps = {"appearance": settings.appearance_steps, "motion": settings.motion_steps, "distillation": settings.distillation_steps}
    try:
        return JobSpec(
            video=video,
            subject_prompt=settings.subject_prompt.strip(),
            motion_prompt=settings.motion_prompt.strip(),
            num_frames=settings.num_frames,
            pose_rate=settings.pose_rate if settings.pose_mode == "RATE" else None,
            video_start_s=settings.video_start or None,
            video_end_s=settings.video_end or None,
            video_fit=settings.video_fit,
            model=prefs.model,
            quality=quality.lower(),
            seed=settings.seed,
            resolution=settings.resolution or None,
            device=prefs.device,
            cache_dir=str(cache_folder(prefs)),
            steps=steps,
            checkpoint_every=settings.checkpoint_every,
            distillation={"guidance": settings.guidance, "lr": settings.learning_rate, "periodic": settings.loop == "cycle"},
            init=settings.init,
            method=method,
            preview={"rigidity": settings.preview_rigidity, "keep_on_canvas": settings.preview_on_canvas},
        )
    except SketchAnimatorError as exc:
        raise UserError(str(exc)) from None


def check_inputs(settings: Any, prefs: Preferences, method: str) -> None:
    """Refuse, with a fix, what would only fail later in the engine process."""
    check_engine_setting(prefs)
    if not settings.video:
        raise UserError("no reference video: choose one in the Animate panel")
    video = Path(bpy.path.abspath(settings.video))
    if not video.exists():
        raise UserError(f"the reference video {video} does not exist: choose it again in the Animate panel")
    if video.is_file() and video.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"{video.name} is not a video this add-on reads ({', '.join(VIDEO_SUFFIXES)}, or a folder of frames)")
    if method == "diffusion" and not (settings.subject_prompt.strip() and settings.motion_prompt.strip()):
        raise UserError("the subject and motion prompts are empty: describe the sketch ('A horse.') and its motion ('A horse is galloping.')")


CHECKED_PYTHONS: set[str] = set()  # engine Pythons found complete in this session


def check_engine_setting(prefs: Preferences) -> None:
    """Refuse a missing engine Python, or one that lacks the engine's packages (checked once per
    session: a fraction of a second, no torch import), and a Ray cluster chosen without its address."""
    if prefs.run_on == "RAY" and not prefs.ray_address.strip():
        raise UserError("jobs are set to run on a Ray cluster, but its address is empty: set it in the add-on preferences (or choose This machine)")
    python = prefs.engine_python
    if not python:
        raise UserError("no engine Python is set: open Preferences → Add-ons → Sketch Animator and set or create one")
    if not Path(python).is_file():
        raise UserError(f"the engine Python {python} does not exist: fix it in the add-on preferences")
    if python in CHECKED_PYTHONS:
        return
    report = environment.check_engine_python(python, probe_torch=False)
    if not report.ok:
        raise UserError(report.summary())
    CHECKED_PYTHONS.add(python)


def start_animation(ob: Any, context: Any, method: str = "diffusion") -> TrackedJob:
    """What the Animate (and Preview motion) button does: write the job folder and start the engine.

    The object's strokes are only read. Raises UserError with a one-line message.
    """
    prefs = preferences(context)
    sketch, spec = job_inputs(ob, context, prefs, method)
    folder = write_object_job(ob, sketch, spec, prefs)
    return launch([folder], prefs)[0]


def start_batch(objects: list[Any], context: Any) -> list[TrackedJob]:
    """What Animate selected does: every object's job from its own panel settings, all checked
    before any is written, then run as one batch (engine/batch/), so a motion or an appearance
    they share is learned once. Each object's panel follows its own job."""
    if not objects:
        raise UserError("no Grease Pencil object is selected: select the sketches to animate")
    prefs = preferences(context)
    inputs = []
    for ob in objects:
        try:
            inputs.append(job_inputs(ob, context, prefs, "diffusion"))
        except UserError as exc:
            raise UserError(f"'{ob.name}': {exc}") from None
    folders = [write_object_job(ob, sketch, spec, prefs) for ob, (sketch, spec) in zip(objects, inputs)]
    return launch(folders, prefs, batch=True)


def job_inputs(ob: Any, context: Any, prefs: Preferences, method: str) -> tuple[Any, JobSpec]:
    """The object's sketch (its strokes are only read) and job settings, checked."""
    settings = ob.sketch_animator
    current = tracked(settings.job_dir)
    if current is not None and current.watcher.poll().is_active:
        raise UserError(f"'{ob.name}' is already being animated: wait for it or press Cancel")
    check_inputs(settings, prefs, method)
    frame = context.scene.frame_current
    try:
        layers = gp_io.default_layer_set(ob, frame) if settings.layer_mode == "VISIBLE" else [settings.layer or getattr(ob.data.layers.active, "name", "")]
        sketch = gp_io.sketch_from_layers(
            ob, layers, frame, canvas=settings.resolution or DEFAULT_CANVAS, margin=settings.margin, tolerance_px=settings.tolerance_px,
            pinned_layers=settings.pinned(),
        )  # fmt: skip
    except (gp_io.GreasePencilInputError, SketchAnimatorError, ValueError) as exc:
        raise UserError(str(exc)) from None
    return sketch, job_spec(settings, prefs, method)


def write_object_job(ob: Any, sketch: Any, spec: JobSpec, prefs: Preferences) -> Path:
    folder = job_folder_for(ob, prefs)
    try:
        write_job(folder, sketch, spec)
    except OSError as exc:
        raise UserError(f"cannot write the job folder {folder} ({exc.strerror or exc}): save the .blend somewhere writable or set a cache folder") from None
    ob.sketch_animator.job_dir = str(folder)
    ob.sketch_animator.last_error = ""
    return folder


def launch(folders: list[Path | str], prefs: Preferences, batch: bool = False) -> list[TrackedJob]:
    """Start (or resume) the engine on job folders and follow them: one job alone on this machine,
    several (or any, with a Ray cluster chosen in the preferences) as one batch on Ray."""
    try:
        if batch or prefs.cluster or len(folders) > 1:
            process = jobclient.start_batch(folders, prefs.engine_python, EXTENSION_ROOT, prefs.cluster)
        else:
            process = jobclient.start_job(folders[0], prefs.engine_python, EXTENSION_ROOT)
    except SketchAnimatorError as exc:
        raise UserError(str(exc)) from None
    started = []
    for folder in folders:
        key = str(Path(folder).resolve())
        job = JOBS.get(key)
        if job is None:
            job = JOBS[key] = TrackedJob(jobclient.JobWatcher(key, process))
        else:
            job.watcher.attach(process)
            job.reported = ""
        started.append(job)
    ensure_timer()
    return started


def resume(ob: Any, context: Any) -> TrackedJob:
    settings = ob.sketch_animator
    job = tracked(settings.job_dir)
    if job is None:
        raise UserError(f"'{ob.name}' has no job to resume: press Animate")
    if job.watcher.poll().is_active:
        raise UserError("the job is still running")
    prefs = preferences(context)
    check_engine_setting(prefs)
    settings.last_error = ""
    return launch([job.watcher.job_dir], prefs)[0]


def cancel(ob: Any) -> bool:
    job = tracked(ob.sketch_animator.job_dir)
    return job is not None and job.watcher.cancel()


# --------------------------------------------------------------------------- following
def tracked(job_dir: str) -> TrackedJob | None:
    """The job of a folder, followed from now on (also one started by an earlier Blender session)."""
    if not job_dir:
        return None
    key = str(Path(bpy.path.abspath(job_dir)).resolve())
    job = JOBS.get(key)
    if job is None and Path(key, "job.json").is_file():
        job = JOBS[key] = TrackedJob(jobclient.JobWatcher(key))
    return job


def owner_of(job_dir: str) -> Any:
    """The object whose settings point at this job folder (found again after a rename), or None."""
    for ob in bpy.data.objects:
        settings = getattr(ob, "sketch_animator", None)
        if settings is not None and settings.job_dir and str(Path(bpy.path.abspath(settings.job_dir)).resolve()) == job_dir:
            return ob
    return None


def status_of(ob: Any) -> jobclient.JobStatus | None:
    job = tracked(ob.sketch_animator.job_dir)
    return None if job is None else job.watcher.status


def poll_jobs() -> float | None:
    """Read every followed job's new events; record errors on their objects; redraw the panel.

    Returns the seconds until the next call while a job runs, else None (the timer stops).
    """
    active = False
    for key, job in list(JOBS.items()):
        status = job.watcher.poll()
        active = active or status.is_active
        if status.is_active or job.reported == status.state:
            continue
        job.reported = status.state
        ob = owner_of(key)
        if ob is None:
            print(f"Sketch Animator: the object of job {key} was deleted; its result stays in that folder")
            continue
        if status.state in (jobclient.FAILED, jobclient.STOPPED):
            ob.sketch_animator.last_error = status.error or "the job failed"
    redraw_panels()
    return POLL_INTERVAL_S if active else None


def redraw_panels() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(poll_jobs):
        bpy.app.timers.register(poll_jobs, first_interval=POLL_INTERVAL_S, persistent=True)


@persistent
def reattach_after_load(*_args: Any) -> None:
    """After a .blend is opened: follow again the jobs its objects point at (running or not)."""
    referenced = set()
    for ob in bpy.data.objects:
        settings = getattr(ob, "sketch_animator", None)
        if settings is not None and settings.job_dir:
            job = tracked(settings.job_dir)
            if job is not None:
                job.watcher.poll()
                referenced.add(str(job.watcher.job_dir))
    for key in list(JOBS):  # the old file's jobs: keep following the running ones (to reap them)
        if key not in referenced and not JOBS[key].watcher.status.is_active:
            del JOBS[key]
    if any(job.watcher.status.is_active for job in JOBS.values()):
        ensure_timer()


# --------------------------------------------------------------------------- applying
def apply_all(context: Any) -> tuple[list[str], dict[str, str]]:
    """Apply every finished job of the scene's Grease Pencil objects; returns the objects applied
    and, for those that could not be, why (one line each). Unfinished jobs are left alone."""
    applied, refused = [], {}
    for ob in context.scene.objects:
        settings = getattr(ob, "sketch_animator", None)
        job = tracked(settings.job_dir) if settings is not None and gp_io.is_grease_pencil(ob) else None
        if job is None or job.watcher.poll().state != jobclient.DONE:
            continue
        try:
            apply_result(ob, context)
            applied.append(ob.name)
        except UserError as exc:
            refused[ob.name] = str(exc)
    return applied, refused


def apply_result(ob: Any, context: Any) -> Any:
    """Write the finished result of the object's job as the layer "<layer> animated", timed as the panel says."""
    settings = ob.sketch_animator
    job = tracked(settings.job_dir)
    if job is None:
        raise UserError(f"'{ob.name}' has no finished job: press Animate first")
    status = job.watcher.poll()
    if status.state != jobclient.DONE:
        raise UserError(f"the job is not finished ({status.summary()})")
    try:
        result = read_result(job.watcher.result_dir)
        applied = gp_io.apply_animation(ob, result, settings.start_frame, settings.timing(), context.scene, settings.output_form)
    except (SketchAnimatorError, gp_io.GreasePencilInputError) as exc:
        raise UserError(str(exc)) from None
    settings.last_error = ""
    return applied


def register() -> None:
    if reattach_after_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(reattach_after_load)


def unregister() -> None:
    if reattach_after_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(reattach_after_load)
    if bpy.app.timers.is_registered(poll_jobs):  # a leftover timer hangs Blender 4.5 at exit
        bpy.app.timers.unregister(poll_jobs)
