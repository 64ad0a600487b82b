"""What a batch worker does, in plain functions that Ray runs as tasks (engine/batch/runner.py).

A task works **in place** when it runs on the machine that holds the job folder (the default
local Ray, or a cluster with a shared disk): it runs the job there, so the folder's events,
lock and checkpoints are exactly those of `python -m engine run`. Anywhere else the job
**travels**: the task gets the folder's files and its video as bytes (`pack_job`), unpacks them
into a scratch folder on its machine that outlives the task (a retried task resumes from its
checkpoints there), sends its new event lines back every second through the batch's board
actor (which also carries a Cancel asked on the driver's side to it), and returns the result as
bytes, which the driver writes into the local job folder (`unpack_result`). Learned adapters travel the same way, as
the files of their cache entries, installed into each machine's cache with the cache's own
atomic publish. No shared disk is needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from ..backbones.adapter_cache import AdapterCache, default_cache_dir
from ..errors import SketchAnimatorError
from ..files import atomic_write_bytes, read_files, real_directory, write_files
from ..job.events import EventLog, error_event
from ..job.folder import CANCEL_FILE, EVENTS_FILE, JOB_FILE, LOG_FILE, PROCESS_FILE, RESULT_DIR, SKETCH_FILE, WINDOWS_DIR, read_job_spec, relative_to_job
from ..job.lock import LOCK_FILE
from ..job.results import is_result_complete

LEFT_BEHIND = {EVENTS_FILE, LOG_FILE, PROCESS_FILE, LOCK_FILE, CANCEL_FILE}  # the folder's own run, not its inputs


class FanOutLog(EventLog):
    """One shared stage's events, written into the log of every job that waits for it, so each
    job's panel shows the motion (or appearance) it shares being learned."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(paths[0])
        self.others = [EventLog(path) for path in paths[1:]]

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = super().emit(kind, **fields)
        for log in self.others:
            log.emit(kind, **{**fields, "time_shared": event["time"]})
        return event


def origin() -> dict[str, str]:
    """Where the driver runs: a task on the same host with the folder there works in place."""
    return {"host": socket.gethostname()}


def works_in_place(job_folder: str, origin_host: str, ship: bool, bundle: list) -> bool:
    """Whether this task runs the job in its own folder (else from the files that travelled with it)."""
    if not ship and socket.gethostname() == origin_host and (Path(job_folder) / JOB_FILE).is_file():
        return True
    if bundle[0] is None:
        raise SketchAnimatorError(
            f"the job folder {job_folder} is not on this worker ({socket.gethostname()}), and its files were not sent: run the batch with --ship"
        )
    return False


def use_assigned_cpus() -> None:
    """torch uses as many threads as Ray gave the task CPUs, so two tasks do not fight over cores."""
    try:
        import ray
        import torch

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            torch.set_num_threads(max(1, int(cpus)))
    except Exception:  # outside Ray (the tests call the tasks directly): leave torch as it is
        pass


# --------------------------------------------------------------------------- packing
def pack_job(folder: Path, video: Path, video_sha256: str) -> tuple[dict[str, bytes], str]:
    """A job folder's inputs and progress as {relative path: bytes} — job.json (its video named
    by its content, so a changed video is another job), the sketch, checkpoints, finished
    windows and any other top-level file the prior reads (target-frames' targets); not its log,
    lock or result — and the name `video` (the job's) has in the shipped folder. The video goes
    separately, so the jobs of one motion share one copy in Ray's object store."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.is_symlink() and path.name not in LEFT_BEHIND:
            files[path.name] = path.read_bytes()
    windows = folder / WINDOWS_DIR
    if windows.is_dir() and not windows.is_symlink():
        files.update({f"{WINDOWS_DIR}/{p.name}": p.read_bytes() for p in sorted(windows.iterdir()) if p.is_file()})
    shipped_video = f"reference-{video_sha256[:16]}{video.suffix.lower()}"
    job = json.loads(files[JOB_FILE])
    job.update(video=shipped_video, cache_dir=None)  # the worker's own cache, which the shared stages fill
    files[JOB_FILE] = json.dumps(job, indent=2).encode("utf-8")
    return files, shipped_video


def unpack_bundle(name: str, bundle: list) -> Path:
    """The travelled job in its scratch folder on this machine: [files, video, video's name]."""
    import ray

    files_ref, video_ref, shipped_video = bundle
    folder = unpack_job(name, ray.get(files_ref))
    if not (folder / shipped_video).is_file():  # a retry has it already
        atomic_write_bytes(folder / shipped_video, ray.get(video_ref))
    return folder


def scratch_folder(name: str, files: dict[str, bytes]) -> Path:
    """The job's folder on this machine, the same for every try of the same job (so a retry resumes)."""
    digest = hashlib.sha256(files[JOB_FILE] + files[SKETCH_FILE]).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return default_cache_dir() / "batch-jobs" / f"{safe}-{digest}"


def unpack_job(name: str, files: dict[str, bytes]) -> Path:
    """Write the shipped job into its scratch folder; progress already there (a retry's) is kept."""
    folder = scratch_folder(name, files)
    real_directory(folder)
    for relative, data in files.items():
        target = folder / relative
        if relative.startswith(WINDOWS_DIR + "/") and target.exists():
            continue
        if relative.endswith(".ckpt") and target.exists():
            continue  # this machine's checkpoint is at least as far as the one that travelled
        real_directory(target.parent)
        atomic_write_bytes(target, data)
    return folder


def install_entries(cache: AdapterCache, entries: dict[str, dict[str, bytes]]) -> None:
    """Put shipped cache entries into this machine's cache (an entry already there is kept)."""
    for key, files in entries.items():
        cache.install(key, files)


def entry_files(entries: list[Path]) -> dict[str, dict[str, bytes]]:
    """Cache entry folders as {key: {file: bytes}}, the manifest included."""
    return {entry.name: read_files(entry) for entry in {e.parent if e.is_file() else e for e in entries}}


def unpack_result(folder: Path, returned: dict[str, Any]) -> None:
    """A travelled job's result, written into the local job folder: the result folder is written
    beside and renamed into place, its manifest vouching for every file."""
    result = folder / RESULT_DIR
    staging = Path(tempfile.mkdtemp(prefix=".result-", dir=folder))
    try:
        write_files(staging, returned["result"])
        if result.is_symlink() or result.is_file():
            result.unlink()
        elif result.exists():
            shutil.rmtree(result)
        os.rename(staging, result)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- a travelled job's events and cancel
class BatchBoard:
    """A Ray actor between the driver and the tasks: who has started, the event lines of jobs
    that travelled (so their panels follow them live), and the cancels asked for them."""

    def __init__(self) -> None:
        self.started_jobs: list[str] = []
        self.lines: dict[str, list[bytes]] = {}
        self.cancels: set[str] = set()

    def started(self, name: str) -> None:
        self.started_jobs.append(name)

    def running(self) -> list[str]:
        return self.started_jobs

    def push_events(self, channel: str, data: bytes) -> None:
        self.lines.setdefault(channel, []).append(data)

    def take_events(self) -> dict[str, bytes]:
        taken = {channel: b"".join(chunks) for channel, chunks in self.lines.items()}
        self.lines = {}
        return taken

    def request_cancel(self, name: str) -> None:
        self.cancels.add(name)

    def cancel_requested(self, name: str) -> bool:
        return name in self.cancels


class EventForwarder:
    """While a travelled job runs, send its new complete event lines to the board every second,
    and turn a cancel asked on the driver's side into the job's cancel file here."""

    def __init__(self, board: Any, channel: str, log: Path, cancel_file: Path | None = None, interval_s: float = 1.0) -> None:
        import threading

        self.board, self.channel, self.log, self.cancel_file, self.interval_s = board, channel, log, cancel_file, interval_s
        self.offset = log.stat().st_size if log.exists() else 0  # a retry's log already holds the lost try's lines
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def __enter__(self) -> "EventForwarder":
        if self.board is not None:
            self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if self.board is None:
            return
        self.stopped.set()
        self.thread.join()
        import ray

        ray.get(self.board.push_events.remote(self.channel, self.new_lines()))  # the last lines, before the task returns

    def loop(self) -> None:
        import ray

        while not self.stopped.wait(self.interval_s):
            lines = self.new_lines()
            if lines:
                self.board.push_events.remote(self.channel, lines)
            if self.cancel_file is not None and ray.get(self.board.cancel_requested.remote(self.channel)):
                self.cancel_file.write_text("cancel\n", encoding="utf-8")

    def new_lines(self) -> bytes:
        try:
            with open(self.log, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return b""
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end]


# --------------------------------------------------------------------------- the tasks
def stage_task(
    kind: str, name: str, folder: str, dependents: list[str], origin_host: str, bundle: list, ship: bool = False, board: Any = None, channel: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Learn one shared stage ("appearance" or "motion") from the job `folder`, for every job in
    `dependents`; returns the cache entries (as files, for machines without this one's disk).
    Its events go into every dependent job's log (sent back through the board when it travelled)."""
    use_assigned_cpus()
    started = time.time()
    if works_in_place(folder, origin_host, ship, bundle):
        entries = learn_logged(Path(folder), kind, FanOutLog([Path(d) / EVENTS_FILE for d in dependents]))
    else:
        here = unpack_bundle(name, bundle)
        log = here / f"shared-{kind}.jsonl"
        log.unlink(missing_ok=True)
        with EventForwarder(board, channel, log):
            entries = learn_logged(here, kind, EventLog(log))
    return {"kind": kind, "entries": entry_files(entries), "seconds": time.time() - started, "host": socket.gethostname()}


def learn_logged(folder: Path, kind: str, events: EventLog) -> list[Path]:
    """The shared stage; a failure ends the log of every job waiting for it with an error event."""
    from ..job.checkpoint import StopRequest
    from ..job.pipeline import learn_shared_stage

    try:
        with StopRequest() as stop:
            return learn_shared_stage(folder, kind, events, stop)
    except Exception as exc:
        error_event(events, exc, where=None if isinstance(exc, SketchAnimatorError) else "the batch's log")
        raise


def pair_task(name: str, folder: str, origin_host: str, bundle: list, appearance: dict | None, motion: dict | None, board: Any = None, ship: bool = False) -> dict[str, Any]:
    """Run one job's stage 3 (its shared stages come from the cache); returns how it went and,
    for a job that travelled, its result and new events as bytes."""
    from ..job.pipeline import job_cache, run_job

    use_assigned_cpus()
    if board is not None:
        board.started.remote(name)
    started = time.time()
    shared = {**(appearance or {}).get("entries", {}), **(motion or {}).get("entries", {})}
    if works_in_place(folder, origin_host, ship, bundle):
        install_entries(job_cache(relative_to_job(read_job_spec(folder), Path(folder))), shared)  # already there unless learned elsewhere
        run_job(folder)
        return {"name": name, "seconds": time.time() - started, "host": socket.gethostname()}
    here = unpack_bundle(name, bundle)
    install_entries(AdapterCache(), shared)
    (here / CANCEL_FILE).unlink(missing_ok=True)  # a cancel of an earlier run is not this one's
    with EventForwarder(board, name, here / EVENTS_FILE, cancel_file=here / CANCEL_FILE):
        result = run_job(here)
    if not is_result_complete(result):
        raise RuntimeError(f"the result of {name} did not come out complete")
    return {"name": name, "seconds": time.time() - started, "host": socket.gethostname(), "result": read_files(result)}
