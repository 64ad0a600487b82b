"""The job folder: the contract between the Blender add-on and the engine process (design.md §3).

A job folder holds
    job.json            the settings (`JobSpec`, versioned), written last and atomically
    input_sketch.json   the sketch in the engine's Sketch JSON layout
    events.jsonl        the append-only event log (engine/events.py)
    engine.log          the engine process's stdout and stderr (tracebacks land here)
    process.json        which process runs the job (pid, command), written by whoever starts it
    cancel              present = please stop (read by the engine at every step)
    job.lock            the process running the job (pid, host): one at a time (engine/job/lock.py)
    distillation.ckpt   stage 3's checkpoint (a long clip: one per window, and windows/ with
                        the finished ones); stages 1–2 live in the adapter cache
    reference_frames.png  the sampled reference frames, side by side
    result/             the result (engine/outputs.py), complete once its manifest vouches for it

Relative paths in job.json are relative to the job folder. Nothing in a job folder is written
through a symbolic link.

This module needs no torch (numpy for the sketch), so the Blender add-on writes jobs through
it; results are read through engine/job/results.py.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backbones import backbone_entry
from ..errors import SketchAnimatorError
from ..files import atomic_write_text
from ..jsondata import JSONInputError, expect, read_json_file
from ..priors import DEFAULT_PRIOR, check_prior_options, prior_entry
from ..settings import (
    DEFAULT_NUM_FRAMES, DEFAULT_QUALITY, DEFAULT_WINDOW_OVERLAP, DISTILLATION_OPTIONS, MAX_POSES, MAX_WINDOW_FRAMES, MIN_FRAMES,
    PREVIEW_OPTIONS, QUALITY_PRESETS, STAGES, PreviewSettings, check_number,
)  # fmt: skip

if TYPE_CHECKING:
    from ..media.reference import VideoSpec
    from ..vector.sketch import Sketch

JOB_SCHEMA = "sketch-animator/job"
JOB_VERSION = 3  # 2: prior, prior_options, backbone, resolution None = the model's; 3: pose_rate, window, window_overlap, max_minutes
READABLE_JOB_VERSIONS = (1, 2, 3)

JOB_FILE = "job.json"
SKETCH_FILE = "input_sketch.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "engine.log"
PROCESS_FILE = "process.json"
CANCEL_FILE = "cancel"
RESULT_DIR = "result"
REFERENCE_STRIP = "reference_frames.png"
CHECKPOINT = "distillation.ckpt"  # a long clip's windows: distillation-window###.ckpt
WINDOWS_DIR = "windows"  # the finished windows of a long clip's stage 3
MAX_JOB_BYTES = 16 * 2**20  # job.json holds settings (target-frames' targets live in their own file)

# How the motion is made: the three diffusion stages, or the optical-flow preview (no model).
METHODS = ("diffusion", "preview")
INITS = ("static", "preview")
PREVIEW_SIZE = PreviewSettings().size  # px the preview tracks at when the job gives no resolution

class JobError(SketchAnimatorError):
    """A job folder or its settings cannot be used."""


@dataclass(frozen=True)
class JobSpec:
    """Everything a job needs besides the sketch; saved as job.json."""

    video: str
    subject_prompt: str
    motion_prompt: str
    num_frames: int = DEFAULT_NUM_FRAMES
    video_start_s: float | None = None
    video_end_s: float | None = None
    video_fit: str = "crop"
    model: str | None = None  # None: ModelScope if downloaded, else the embedded tiny model
    quality: str = DEFAULT_QUALITY
    seed: int = 0
    resolution: int | None = None  # longer side of the model's frames; None: the backbone's native size (the preview: 256)
    device: str = "auto"
    dtype: str = "auto"
    cache_dir: str | None = None
    steps: dict[str, int] = field(default_factory=dict)  # overrides: appearance / motion / distillation
    checkpoint_every: int = 25  # steps between resumable checkpoints, in every stage
    distillation: dict[str, Any] = field(default_factory=dict)  # DistillationSettings overrides (guidance, lr, λ1, λ2, …)
    init: str = "static"  # stage 3 starts from the sketch duplicated ("static") or from the tracked motion ("preview")
    method: str = "diffusion"  # "diffusion" (stages 1–3) or "preview" (optical-flow motion transfer only)
    preview: dict[str, Any] = field(default_factory=dict)  # PreviewSettings overrides (rigidity, strength, …)
    prior: str = DEFAULT_PRIOR  # what stage 3 optimises against, by name (engine/priors/)
    prior_options: dict[str, Any] = field(default_factory=dict)  # the prior's own options (target-frames: "targets")
    backbone: str | None = None  # None: chosen for the model (engine/backbones/)
    pose_rate: float | None = None  # poses per second of the chosen range; None: exactly `num_frames` poses
    window: int | None = None  # poses per window of the video model; None: its native clip length (ModelScope: 16)
    window_overlap: int = DEFAULT_WINDOW_OVERLAP  # poses consecutive windows share (held at the earlier window's result)
    max_minutes: float | None = None  # refuse, before anything runs, a plan expected to take longer

    def __post_init__(self) -> None:
        if self.quality not in QUALITY_PRESETS:
            raise JobError(f"unknown quality preset {self.quality!r}: use one of {', '.join(QUALITY_PRESETS)}")
        try:
            prior_entry(self.prior)
            check_prior_options(self.prior, self.prior_options)
            if self.backbone is not None:
                backbone_entry(self.backbone)
        except SketchAnimatorError as exc:
            raise JobError(str(exc)) from None
        if self.resolution is not None and (isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or not 16 <= self.resolution <= 4096):
            raise JobError(f"resolution {self.resolution!r} is out of range: use 16 to 4096 pixels, or none for the model's own size")
        unknown = set(self.distillation) - DISTILLATION_OPTIONS
        if unknown:
            raise JobError(f"unknown distillation option(s) {sorted(unknown)}: see `python -m engine animate --help`")
        unknown = set(self.preview) - PREVIEW_OPTIONS
        if unknown:
            raise JobError(f"unknown preview option(s) {sorted(unknown)}: see `python -m engine preview --help`")
        if self.init not in INITS:
            raise JobError(f"unknown init {self.init!r}: use static (the sketch duplicated) or preview (the tracked motion)")
        if self.method not in METHODS:
            raise JobError(f"unknown method {self.method!r}: use diffusion (the three stages) or preview (optical flow)")
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or not MIN_FRAMES <= self.num_frames <= MAX_POSES:
            raise JobError(f"{self.num_frames} frames asked for: use {MIN_FRAMES} to {MAX_POSES} (longer clips run as windows of the model's 16)")
        if self.window is not None and (isinstance(self.window, bool) or not isinstance(self.window, int) or not MIN_FRAMES <= self.window <= MAX_WINDOW_FRAMES):
            raise JobError(f"a window of {self.window!r} poses: the video model handles {MIN_FRAMES} to {MAX_WINDOW_FRAMES} (16 is its native length)")
        if isinstance(self.window_overlap, bool) or not isinstance(self.window_overlap, int) or self.window_overlap < 0:
            raise JobError(f"window overlap {self.window_overlap!r} must be a whole number of poses, 0 or more")
        try:
            if self.pose_rate is not None:
                check_number("pose rate", self.pose_rate, 0.1, 120.0)
            if self.max_minutes is not None:
                check_number("time limit (minutes)", self.max_minutes, 0.0, 1e6)
        except SketchAnimatorError as exc:
            raise JobError(f"{exc} (poses per second of reference; minutes)") from None
        unknown = set(self.steps) - set(STAGES)
        if unknown:
            raise JobError(f"unknown stage(s) {sorted(unknown)} in steps: use appearance, motion, distillation")
        if any(not isinstance(n, int) or n < 1 for n in self.steps.values()):
            raise JobError(f"steps {self.steps} must be whole numbers of at least 1")

    def stage_steps(self) -> tuple[int, int, int]:
        preset = QUALITY_PRESETS[self.quality].steps
        return tuple(self.steps.get(stage, default) for stage, default in zip(STAGES, preset))  # type: ignore[return-value]

    def video_spec(self, frame_size: tuple[int, int], num_frames: int | None = None) -> "VideoSpec":
        """The reference clip this job reads, `num_frames` poses (default the job's) at `frame_size` (height, width)."""
        from ..media.reference import VideoSpec

        height, width = frame_size
        return VideoSpec(
            path=self.video, num_frames=num_frames or self.num_frames, size=height, width=width,
            start_s=self.video_start_s, end_s=self.video_end_s, fit=self.video_fit,
        )  # fmt: skip

    def num_poses(self) -> int:
        """Poses of the whole animation: from the pose rate and the chosen range of the clip, else `num_frames`."""
        if self.pose_rate is None:
            return self.num_frames
        from ..media.reference import poses_for_rate

        poses = poses_for_rate(self.video_spec((PREVIEW_SIZE, PREVIEW_SIZE)), self.pose_rate)
        if poses > MAX_POSES:
            raise JobError(f"{self.pose_rate:g} poses per second give {poses} poses for this clip, more than {MAX_POSES}: lower the pose rate or choose a shorter range")
        return poses

    def to_dict(self) -> dict[str, Any]:
        return {"schema": JOB_SCHEMA, "version": JOB_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "JobSpec":
        if not isinstance(data, dict) or data.get("schema") != JOB_SCHEMA:
            raise JobError(f"{source} is not a Sketch Animator job file")
        if data.get("version") not in READABLE_JOB_VERSIONS:
            raise JobError(
                f"{source} was written by another version of Sketch Animator (job format {data.get('version')!r}, "
                f"this engine reads {', '.join(map(str, READABLE_JOB_VERSIONS))}): start the job again from Blender or `python -m engine animate`"
            )
        known = {f.name: f for f in fields(cls)}
        try:
            for name, value in data.items():
                if name in known:
                    expect(value, json_kinds(known[name].type), name)
            return cls(**{k: v for k, v in data.items() if k in known})
        except JSONInputError as exc:
            raise JobError(f"{source}: {exc}") from None
        except TypeError as exc:
            raise JobError(f"{source} is malformed ({exc})") from None


def json_kinds(annotation: Any) -> str:
    """A field's annotation ("int | None", "dict[str, Any]") as the JSON kinds `jsondata.expect` takes."""
    kinds = {"str": "str", "int": "int", "float": "number", "bool": "bool", "dict": "object", "list": "list", "None": "null", "Any": ""}
    parts = [part.strip().split("[")[0] for part in str(annotation).split("|")]
    names = [kinds.get(part, "") for part in parts]
    return "|".join(name for name in names if name) if all(names) else "bool|int|number|str|list|object|null"


def job_differences(job_dir: str | os.PathLike, sketch: "Sketch", spec: JobSpec) -> list[str]:
    """What differs between the job already in `job_dir` and this sketch and these settings,
    one short "name: old → new" each (empty when they are the same job)."""
    from ..vector.sketch import Sketch

    job_dir = Path(job_dir)
    old = relative_to_job(read_job_spec(job_dir), job_dir).to_dict()
    new = relative_to_job(spec, job_dir).to_dict()
    differences = [f"{name}: {shorten(old.get(name))} → {shorten(value)}" for name, value in new.items() if old.get(name) != value]
    if Sketch.load_json(job_dir / SKETCH_FILE).to_dict() != sketch.to_dict():
        differences.insert(0, "the sketch")
    return differences


def shorten(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clear_job(job_dir: str | os.PathLike) -> None:
    """Remove a job's state (settings, sketch, log, checkpoints, result) to start another job in its
    folder; the adapter cache, which any job reuses, is elsewhere and stays."""
    job_dir = Path(job_dir)
    for name in (JOB_FILE, SKETCH_FILE, EVENTS_FILE, CANCEL_FILE, REFERENCE_STRIP):
        (job_dir / name).unlink(missing_ok=True)
    for path in [*job_dir.glob("distillation*.ckpt"), *job_dir.glob("distillation*.ckpt.prev")]:
        path.unlink(missing_ok=True)
    for folder in (RESULT_DIR, WINDOWS_DIR):
        target = job_dir / folder
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)


def write_job(job_dir: str | os.PathLike, sketch: "Sketch", spec: JobSpec) -> Path:
    """Create a job folder: the sketch (validated first) and job.json, written last and atomically,
    so a folder with a job.json is a complete job."""
    sketch.validate()
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    sketch.save_json(job_dir / SKETCH_FILE)
    atomic_write_text(job_dir / JOB_FILE, json.dumps(spec.to_dict(), indent=2))
    return job_dir


def read_job(job_dir: str | os.PathLike) -> "tuple[Sketch, JobSpec]":
    """The job's sketch and settings."""
    from ..vector.sketch import Sketch

    spec = relative_to_job(read_job_spec(job_dir), Path(job_dir))
    return Sketch.load_json(Path(job_dir) / SKETCH_FILE), spec


def relative_to_job(spec: JobSpec, job_dir: Path) -> JobSpec:
    """Relative paths in job.json are relative to the job folder, not to wherever the engine runs
    (the video, the cache folder, and a model given as a local folder that exists there)."""
    def inside(value: str | None) -> str | None:
        return value if value is None or Path(value).is_absolute() else str(job_dir.resolve() / value)

    model = spec.model
    if model is not None and not Path(model).is_absolute() and (job_dir / model).is_dir():
        model = inside(model)
    return replace(spec, video=inside(spec.video), cache_dir=inside(spec.cache_dir), model=model)


def read_job_spec(job_dir: str | os.PathLike) -> JobSpec:
    path = Path(job_dir) / JOB_FILE
    if not path.is_file():
        raise JobError(f"{job_dir} is not a job folder (no job.json): create one with `python -m engine animate` or from Blender")
    try:
        data = read_json_file(path, str(path), max_bytes=MAX_JOB_BYTES)
    except OSError as exc:
        raise JobError(f"{path} cannot be read ({exc.strerror or exc}): start the job again") from None
    except JSONInputError as exc:
        raise JobError(f"{exc}: start the job again") from None
    return JobSpec.from_dict(data, str(path))
