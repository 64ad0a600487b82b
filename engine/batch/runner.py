"""The batch as a Ray graph: shared stages first, each pair's stage 3 as soon as its two inputs exist.

For the jobs still to do, the runner finds the distinct stages they share: one appearance per
sketch (same sketch, subject and settings) and one motion per reference (same video, range,
prompt and settings). Each becomes one Ray task; each job's stage 3 is a task that takes the
two results as arguments, so Ray starts it as soon as both exist, on any free worker. Tasks ask
for one GPU when the job runs on CUDA, else one CPU, and are retried when a worker is lost (the
job resumes from its checkpoints). A failed job is reported with its one-line error; the
others go on. A finished job is never submitted again, so running a killed batch again
continues it. Ray is an existing engine (docs.ray.io): by default a local one starts inside the
command; `address` joins a cluster started with `ray start`.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backbones.adapter_cache import cache_key
from ..errors import SketchAnimatorError
from ..job.events import EventLog
from ..job.folder import CANCEL_FILE, EVENTS_FILE, read_job
from ..job.results import file_sha256, is_result_complete
from .plan import PlannedJob
from .tasks import BatchBoard, origin, pack_job, pair_task, stage_task, unpack_result

BATCH_LOG = "batch.jsonl"
TASK_RETRIES = 3  # a lost worker (killed, out of memory, a machine gone) is retried this often


class BatchError(SketchAnimatorError):
    """The batch could not start, or some of its jobs failed."""


@dataclass
class BatchReport:
    """How the batch went: the jobs done (this run or before), failed (with their one-line errors), skipped as already finished."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)  # shared-stage tasks run: {"appearance": n, "motion": m}


@dataclass
class JobWork:
    job: PlannedJob
    appearance: str | None  # the shared stage-1 work it waits for (None: the prior needs no video model)
    motion: str | None
    device: str  # the job's device setting: "cuda…" asks Ray for a GPU, "auto" does where the cluster has one
    video: Path
    video_sha256: str


def job_work(job: PlannedJob, video_hashes: dict[Path, str]) -> JobWork:
    """The job with its appearance and motion identities (equal exactly when the stage's cache
    entry would be equal), its device and its video; each video is hashed once per batch
    (`video_hashes` remembers them)."""
    from ..priors import prior_entry
    from ..settings import STAGES

    sketch, spec = read_job(job.folder)
    video = Path(spec.video)
    if video not in video_hashes:
        video_hashes[video] = file_sha256(video)
    if spec.method != "diffusion" or not prior_entry(spec.prior).uses_backbone:
        return JobWork(job, None, None, spec.device, video, video_hashes[video])
    steps = dict(zip(STAGES, spec.stage_steps()))
    model = {"model": spec.model, "backbone": spec.backbone, "resolution": spec.resolution, "dtype": spec.dtype, "device": spec.device,
             "cache_dir": spec.cache_dir, "seed": spec.seed, "checkpoint_every": spec.checkpoint_every}  # fmt: skip
    appearance = cache_key("appearance", {**model, "sketch": sketch.to_dict(), "subject": spec.subject_prompt, "steps": steps["appearance"]})
    motion = cache_key("motion", {
        **model, "video": video_hashes[video], "start": spec.video_start_s, "end": spec.video_end_s, "fit": spec.video_fit,
        "frames": spec.num_frames, "pose_rate": spec.pose_rate, "window": spec.window, "overlap": spec.window_overlap,
        "prompt": spec.motion_prompt, "steps": steps["motion"],
    })  # fmt: skip
    return JobWork(job, appearance, motion, spec.device, video, video_hashes[video])


def start_ray(address: str | None, workers: int | None) -> Any:
    """Join the cluster at `address`, or start a local Ray inside this process (quietly); returns
    the `ray` module, imported here because what it reads from the environment it reads at import."""
    if address and "RAY_AUTH_MODE" not in os.environ and auth_token_available():
        os.environ["RAY_AUTH_MODE"] = "token"  # Ray 2.60's client sends no token unless told, which a `ray start` cluster wants; read at import
    import ray

    engine_root = str(Path(__file__).resolve().parent.parent)
    options: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    if address:
        options["runtime_env"] = {"py_modules": [engine_root], "env_vars": {"PYTHONWARNINGS": "ignore"}}  # the driver's engine code, on every worker
        try:
            ray.init(address=address, **options)
            return ray
        except Exception as exc:  # ConnectionError and Ray's own kinds
            raise BatchError(f"cannot reach the Ray cluster at {address} ({' '.join(str(exc).split())[:200]}): start it with `ray start --head` there, or leave out --address") from None
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
    return ray


def auth_token_available() -> bool:
    """Whether this machine holds a Ray token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token,
    which `ray get-auth-token` prints on the head machine)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or (Path.home() / ".ray" / "auth_token").is_file())


class ProgressLine:
    """`batch: 2/6 done · 2 running · 0 failed · 2 waiting · ETA 3 min`, on one line of a terminal
    (else a line whenever it changes)."""

    def __init__(self, total: int, parallel: int, stream: Any = None) -> None:
        self.total, self.parallel = total, max(1, parallel)
        self.stream = stream or sys.stderr
        self.last = ""
        self.durations: list[float] = []

    def text(self, done: int, running: int, failed: int) -> str:
        waiting = self.total - done - running - failed
        line = f"batch: {done}/{self.total} done · {running} running · {failed} failed · {waiting} waiting"
        if self.durations and done + failed < self.total:
            from ..job.client import format_duration

            left = (self.total - done - failed) * (sum(self.durations) / len(self.durations)) / self.parallel
            line += f" · ETA {format_duration(left)}"
        return line

    def show(self, done: int, running: int, failed: int) -> None:
        line = self.text(done, running, failed)
        if line == self.last:
            return
        self.last = line
        terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stream.write(("\r" + line + "\033[K") if terminal else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if hasattr(self.stream, "isatty") and self.stream.isatty() and self.last:
            self.stream.write("\n")


def describe_failure(exc: BaseException) -> str:
    """A task's failure as one line: our own error's message, else the exception's kind and first line."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, SketchAnimatorError):
        return " ".join(str(cause).split())
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text[:300]}"


def run_batch(
    jobs: list[PlannedJob], log_dir: Path, address: str | None = None, workers: int | None = None, ship: bool = False,
    progress: ProgressLine | None = None,
) -> BatchReport:  # fmt: skip
    """Run every job not yet finished as one graph; returns the report (failures included, never raised)."""
    report = BatchReport()
    log = EventLog(Path(log_dir) / BATCH_LOG)
    work, video_hashes = [], {}
    for job in jobs:
        if is_result_complete(job.folder / "result"):
            report.already.append(job.name)
            continue
        work.append(job_work(job, video_hashes))
    log.emit("batch_start", jobs=[j.name for j in jobs], to_do=[w.job.name for w in work], already=report.already)
    if not work:
        log.emit("batch_done", done=[], failed={}, already=report.already)
        return report

    ray = start_ray(address, workers)
    try:
        return run_graph(ray, work, log, report, ship, progress)
    finally:
        ray.shutdown()


def task_resources(device: str, cluster_gpus: float) -> dict[str, Any]:
    """What a job's task asks Ray for: one GPU (and a CPU to feed it) for a job on CUDA, or on
    "auto" where the cluster has GPUs; else one CPU (torch then uses that many threads)."""
    if device.startswith("cuda") or (device == "auto" and cluster_gpus > 0):
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": 1}


def run_graph(ray: Any, work: list[JobWork], log: EventLog, report: BatchReport, ship: bool, progress: ProgressLine | None) -> BatchReport:
    """Submit the shared stages and the pairs, then follow them until every job has ended."""
    host = origin()["host"]
    remote_stage = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(stage_task)
    remote_pair = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(pair_task)
    board = ray.remote(num_cpus=0)(BatchBoard).remote()
    gpus = float(ray.cluster_resources().get("GPU", 0))
    bundles = travel_bundles(ray, work) if needs_bundle(ray, ship) else {w.job.name: [None] for w in work}

    stage_refs: dict[str, Any] = {}
    channels: dict[str, list[Path]] = {w.job.name: [w.job.folder] for w in work}  # whose logs a travelled task's lines go to
    for kind in ("appearance", "motion"):
        for identity in dict.fromkeys(getattr(w, kind) for w in work if getattr(w, kind)):
            users = [w for w in work if getattr(w, kind) == identity]
            first = users[0]
            stage_refs[identity] = remote_stage.options(**task_resources(first.device, gpus)).remote(
                kind, first.job.name, str(first.job.folder), [str(u.job.folder) for u in users], host, bundles[first.job.name], ship, board, identity,
            )  # fmt: skip
            channels[identity] = [u.job.folder for u in users]
            report.stages[kind] = report.stages.get(kind, 0) + 1
            log.emit("stage_task", stage=kind, identity=identity, jobs=[u.job.name for u in users])
    pending = {}
    for w in work:
        appearance = stage_refs.get(w.appearance) if w.appearance else None
        motion = stage_refs.get(w.motion) if w.motion else None
        ref = remote_pair.options(**task_resources(w.device, gpus)).remote(w.job.name, str(w.job.folder), host, bundles[w.job.name], appearance, motion, board, ship)
        pending[ref] = w
    if progress is None:  # jobs at once: the cluster's GPUs when the jobs take one each, else its CPUs
        on_gpus = all("num_gpus" in task_resources(w.device, gpus) for w in work)
        progress = ProgressLine(len(work), int(gpus if on_gpus else ray.cluster_resources().get("CPU", 1)))
    cancels_sent: set[str] = set()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        copy_travelled_events(ray.get(board.take_events.remote()), channels)
        for w in pending.values():  # a Cancel on this side reaches a job that travelled
            if w.job.name not in cancels_sent and (w.job.folder / CANCEL_FILE).exists():
                cancels_sent.add(w.job.name)
                board.request_cancel.remote(w.job.name)
        for ref in ready:
            w = pending.pop(ref)
            try:
                returned = ray.get(ref)
                if "result" in returned:
                    unpack_result(w.job.folder, returned)
                report.done.append(w.job.name)
                progress.durations.append(float(returned.get("seconds", 0.0)))
                log.emit("job_done", job=w.job.name, seconds=returned.get("seconds"), host=returned.get("host"))
            except Exception as exc:  # the task's own error, or Ray's when it gave up on the task
                report.failed[w.job.name] = describe_failure(exc)
                end_log_with_error(w.job.folder, report.failed[w.job.name], exc)
                log.emit("job_failed", job=w.job.name, message=report.failed[w.job.name])
        running = len(set(ray.get(board.running.remote())) & {w.job.name for w in pending.values()})
        progress.show(len(report.done), running, len(report.failed))
    progress.close()
    log.emit("batch_done", done=report.done, failed=report.failed, already=report.already)
    return report


def end_log_with_error(folder: Path, message: str, exc: BaseException) -> None:
    """A failed job's log ends with an error event, also when the job never ran here (a shared
    stage failed, the job travelled, or Ray gave up on a lost worker)."""
    from ..job.events import read_events

    events = read_events(folder / EVENTS_FILE)[0]
    if events and events[-1].get("kind") == "error":
        return
    cause = getattr(exc, "cause", None) or exc
    EventLog(folder / EVENTS_FILE).emit("error", message=message, type=type(cause).__name__)


def travel_bundles(ray: Any, work: list[JobWork]) -> dict[str, list]:
    """Each job's files for a worker without its folder, in Ray's object store: [files, video,
    the video's name there], each video once however many jobs use it. The references are
    nested in a list, so a task fetches them only when it needs them (not when it works in place)."""
    videos: dict[Path, Any] = {}
    bundles = {}
    for w in work:
        if w.video not in videos:
            videos[w.video] = ray.put(w.video.read_bytes())
        files, shipped_name = pack_job(w.job.folder, w.video, w.video_sha256)
        bundles[w.job.name] = [ray.put(files), videos[w.video], shipped_name]
    return bundles


def needs_bundle(ray: Any, ship: bool) -> bool:
    """Whether jobs must travel: asked for, or a cluster with a machine other than this one."""
    if ship:
        return True
    hosts = {node.get("NodeManagerHostname") for node in ray.nodes() if node.get("Alive")}
    return bool(hosts - {origin()["host"]})


def copy_travelled_events(lines: dict[str, bytes], channels: dict[str, list[Path]]) -> None:
    """Event lines of tasks that ran elsewhere, appended to the local logs they belong to (a shared
    stage's to every job waiting for it), as whole lines."""
    for channel, data in lines.items():
        for folder in channels.get(channel, []) if data else []:
            with open(folder / EVENTS_FILE, "ab") as handle:
                handle.write(data)
