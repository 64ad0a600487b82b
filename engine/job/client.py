"""Start, watch and stop a job from another process: the add-on's side of the job folder.

The Blender add-on never imports torch: it writes a job folder (engine/job/folder.py), starts
`python -m engine run JOBDIR` with the engine Python the user configured, and reads the
event log. This module is that client, in the standard library only, so the same code runs
inside Blender and in the tests (where Blender's timers do not fire: they call `poll()`).

* `start_job` spawns the engine with an argument list (no shell), in its own process group
  (a cancel reaches the whole tree; Ctrl-C in Blender's terminal does not reach the job),
  with the engine's folder on PYTHONPATH and stdout/stderr appended to `engine.log`. It
  records the process in `process.json` so a later Blender session can find it again.
* `JobWatcher.poll()` reads the events written since the last call and returns a
  `JobStatus`: stage, step, ETA, warnings, and the state — running, done, failed,
  cancelled, or stopped (the process is gone without a last word: killed, crashed).
* `JobWatcher.cancel()` writes the cancel file and sends SIGTERM to the process group; a
  later `poll()` sends SIGKILL once the grace period is over. What is finished stays on
  disk: starting the job again resumes it. A job run by a batch (`start_batch`, several
  jobs in one `python -m engine batch` process) is cancelled by its cancel file alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import SketchAnimatorError
from .environment import engine_environment
from .events import read_events
from ..files import atomic_write_text
from ..settings import STAGES
from .folder import CANCEL_FILE, EVENTS_FILE, JOB_FILE, LOG_FILE, PROCESS_FILE, RESULT_DIR
from .results import is_result_complete

CANCEL_GRACE_S = 10.0  # SIGTERM → SIGKILL; the engine checkpoints and stops within one step
STAGE_LABELS = {"appearance": "Appearance", "motion": "Motion", "distillation": "Distillation", "preview": "Motion preview"}
DIFFUSION_STAGES = STAGES

# The states a job can be in, as `JobStatus.state`.
NEW, STARTING, RUNNING, DONE, FAILED, CANCELLED, STOPPED = "new", "starting", "running", "done", "failed", "cancelled", "stopped"
FINAL_STATES = (DONE, FAILED, CANCELLED, STOPPED)


class JobStartError(SketchAnimatorError):
    """The engine process could not be started."""


@dataclass
class JobStatus:
    """What is known about a job from its event log and its process."""

    state: str = NEW
    stage: str | None = None
    step: int = 0
    total: int = 0
    eta_s: float | None = None
    loss: float | None = None
    stage_steps: dict[str, int] = field(default_factory=dict)  # total steps of each stage, from job_start
    stages_done: list[str] = field(default_factory=list)
    error: str | None = None  # one line, in plain words
    error_type: str | None = None
    warnings: list[str] = field(default_factory=list)
    result_dir: str | None = None
    exit_code: int | None = None
    window: int = 0  # a long clip's window k of `windows` (0: the job runs in one window)
    windows: int = 0
    in_batch: bool = False  # run by a batch (engine/batch/), where it may wait for a free worker

    @property
    def stage_step(self) -> int:
        """Steps done in the current stage over all its windows (windows before this one are complete)."""
        return (self.window - 1) * self.total + self.step if self.windows > 1 else self.step

    @property
    def is_active(self) -> bool:
        return self.state in (STARTING, RUNNING)

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1], the stages weighted by their step counts."""
        if self.state == DONE:
            return 1.0
        totals = {name: n for name, n in self.stage_steps.items() if n > 0}
        if not totals or self.stage not in totals:
            return 0.0 if self.stage is None or self.total <= 0 else min(1.0, self.step / self.total)
        done = sum(totals[name] for name in totals if name in self.stages_done and name != self.stage)
        return min(1.0, (done + min(self.stage_step, totals[self.stage])) / sum(totals.values()))

    def summary(self) -> str:
        """One line for the panel: 'Motion (2/3): step 40/150 · ETA 1 min 20 s'."""
        if self.state == DONE:
            return "Finished"
        if self.state == FAILED:
            return f"Failed: {self.error}"
        if self.state == CANCELLED:
            return "Cancelled: press Resume to continue where it stopped"
        if self.state == STOPPED:
            return self.error or "The engine stopped: press Resume to continue"
        if self.stage is None:
            if self.state in (STARTING, RUNNING):
                return "Waiting in the batch for a free worker…" if self.in_batch else "Starting the engine…"
            return "Not started"
        label = STAGE_LABELS.get(self.stage, self.stage.title())
        order = [name for name in DIFFUSION_STAGES if name in self.stage_steps]
        if self.stage in order:
            label += f" ({order.index(self.stage) + 1}/{len(order)})"
        if self.windows > 1:
            label += f" · window {self.window} of {self.windows}"
        text = f"{label}: step {self.step}/{self.total}"
        if self.eta_s is not None:
            text += f" · ETA {format_duration(self.eta_s)}"
        return text


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# --------------------------------------------------------------------------- starting
def engine_command(python: str | os.PathLike, job_dir: str | os.PathLike) -> list[str]:
    """The argument list that runs (or resumes) a job: no shell, nothing to quote."""
    return [os.fspath(python), "-m", "engine", "run", os.fspath(Path(job_dir).resolve())]


def start_job(
    job_dir: str | os.PathLike,
    python: str | os.PathLike,
    engine_root: str | os.PathLike,
) -> subprocess.Popen:
    """Start (or resume) the job in its own process; returns the process.

    Raises `JobStartError` with a one-line reason when the folder is not a job, the Python
    does not exist, or the process cannot be created.
    """
    job_dir = Path(job_dir).resolve()
    return spawn_engine([job_dir], python, engine_root, engine_command(python, job_dir), job_dir / LOG_FILE)


def batch_command(python: str | os.PathLike, job_dirs: Sequence[str | os.PathLike], address: str | None = None) -> list[str]:
    """The argument list that runs several job folders as one batch on Ray (engine/batch/); every
    folder is in it, so each job's watcher recognises the batch as its process."""
    command = [os.fspath(python), "-m", "engine", "batch"]
    for folder in job_dirs:
        command += ["--job", os.fspath(Path(folder).resolve())]
    return command + (["--address", address] if address else [])


def start_batch(
    job_dirs: Sequence[str | os.PathLike], python: str | os.PathLike, engine_root: str | os.PathLike, address: str | None = None,
) -> subprocess.Popen:  # fmt: skip
    """Start (or resume) several jobs as one batch process: each motion and appearance they share
    is learned once. Its output goes to `batch.log` beside the first job; each job folder records
    the batch as its process (with "batch": true, so a Cancel stops that job alone)."""
    folders = [Path(f).resolve() for f in job_dirs]
    log_path = folders[0].parent / "batch.log"
    return spawn_engine(folders, python, engine_root, batch_command(python, folders, address), log_path, {"batch": True, "log": str(log_path)})


def spawn_engine(
    folders: list[Path], python: str | os.PathLike, engine_root: str | os.PathLike, command: list[str], log_path: Path, record: dict[str, Any] | None = None,
) -> subprocess.Popen:  # fmt: skip
    """Start `command` (an engine process for the job `folders`) in its own process group, with
    its output appended to `log_path`, and record it in each folder's process.json (plus `record`)."""
    for folder in folders:
        if not (folder / JOB_FILE).is_file():
            raise JobStartError(f"{folder} is not a job folder (no {JOB_FILE}): press Animate to create one")
    python = Path(python)
    if not python.is_file():
        raise JobStartError(f"engine Python {python} does not exist: set it in the add-on preferences (or create one there)")
    for folder in folders:
        (folder / CANCEL_FILE).unlink(missing_ok=True)  # a resume must not stop at once
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                command, cwd=log_path.parent, env=engine_environment(engine_root), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, **_new_process_group(),
            )  # fmt: skip
        except OSError as exc:
            raise JobStartError(f"cannot start the engine with {python}: {exc.strerror or exc}") from None
    entry = json.dumps({"pid": process.pid, "command": command, "started": time.time(), **(record or {})})
    for folder in folders:
        atomic_write_text(folder / PROCESS_FILE, entry)
    return process


def _new_process_group() -> dict[str, Any]:
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


# --------------------------------------------------------------------------- watching
class JobWatcher:
    """Follows one job folder: reads new events on each `poll()`, knows its process.

    Create it after `start_job` with the process it returned, or later (another Blender
    session) with none: the process is then found again through process.json.
    """

    def __init__(self, job_dir: str | os.PathLike, process: subprocess.Popen | None = None) -> None:
        self.job_dir = Path(job_dir).resolve()
        self.process = process
        self.offset = 0
        self.status = JobStatus(state=STARTING if process is not None else NEW)
        self.final_event_time = 0.0  # when the last done/error event was written
        self.cancel_requested_at: float | None = None
        self.cancel_grace_s = CANCEL_GRACE_S

    @property
    def log_path(self) -> Path:
        """The job's engine.log, or the batch's log when a batch runs it."""
        log = self.process_record().get("log")
        return Path(log) if isinstance(log, str) else self.job_dir / LOG_FILE

    @property
    def result_dir(self) -> Path:
        return self.job_dir / RESULT_DIR

    def attach(self, process: subprocess.Popen) -> None:
        """Follow a new run of the same job (a resume); the events read so far stay read."""
        self.process = process
        self.cancel_requested_at = None
        self.status.state, self.status.error, self.status.error_type, self.status.exit_code = STARTING, None, None, None

    def poll(self) -> JobStatus:
        """Read new events and check the process; returns the updated status.

        A done/error event counts only when it was written after the current process started
        (process.json): an older run's last word does not end a resumed run.
        """
        events, self.offset = read_events(self.job_dir / EVENTS_FILE, self.offset)
        for event in events:
            self._apply(event)
        self.status.in_batch = bool(self.process_record().get("batch"))
        started = self.process_started()
        final_is_current = self.status.state in (DONE, FAILED, CANCELLED) and (started is None or self.final_event_time >= started)
        if self.process_alive():
            if not final_is_current:
                self.status.state = RUNNING
            self._escalate_cancel()
        elif not final_is_current:
            self._settle_without_process()
        return self.status

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        status = self.status
        if kind == "job_start":
            steps = event.get("steps") or []
            if isinstance(event.get("stage_steps"), dict):  # {stage: steps} of the stages this job runs
                status.stage_steps = {str(k): int(v) for k, v in event["stage_steps"].items()}
            else:  # written by an earlier engine: the three diffusion stages in order
                status.stage_steps = dict(zip(DIFFUSION_STAGES, steps)) if len(steps) == 3 else {}
            status.stages_done, status.warnings = [], []
            status.state, status.error, status.error_type, status.stage = RUNNING, None, None, None
        elif kind == "stage_start":
            status.stage, status.total = event.get("stage"), int(event.get("total") or 0)
            status.step, status.eta_s = int(event.get("initial") or 0), None
            status.window, status.windows = int(event.get("window") or 0), int(event.get("windows") or 0)
            if status.stage and status.stage != "preview":
                status.stage_steps.setdefault(status.stage, status.total)
        elif kind == "progress":
            status.stage = event.get("stage", status.stage)
            status.step, status.total = int(event.get("step") or 0), int(event.get("total") or status.total)
            status.eta_s, status.loss = event.get("eta_s"), event.get("loss")
            status.window, status.windows = int(event.get("window") or 0), int(event.get("windows") or 0)
            if status.windows > 1 and status.eta_s is not None and status.step > 0:  # the windows still to come take as long
                status.eta_s += (status.windows - status.window) * status.total * (status.eta_s / max(status.total - status.step, 1))
        elif kind == "stage_end":
            if event.get("ok") and event.get("stage"):
                status.stages_done.append(event["stage"])
            status.eta_s = None
        elif kind == "cache_hit":
            stage = event.get("stage")
            if stage:
                status.stages_done.append(stage)
        elif kind == "warning":
            message = str(event.get("message", "")).strip()
            if message and message not in status.warnings:
                status.warnings.append(message)
        elif kind == "error":
            self.final_event_time = float(event.get("time") or 0.0)
            status.error_type = event.get("type")
            status.state = CANCELLED if status.error_type == "JobCancelled" else FAILED
            status.error = str(event.get("message") or status.error_type or "unknown error")
            status.eta_s = None
        elif kind == "done":
            self.final_event_time = float(event.get("time") or 0.0)
            status.state, status.error, status.eta_s = DONE, None, None
            status.result_dir = str(event.get("result") or self.result_dir)

    def _settle_without_process(self) -> None:
        """The process is gone and said nothing final in this run: crashed, killed, or never ran."""
        status = self.status
        if self.process is not None:
            status.exit_code = self.process.poll()
        if is_result_complete(self.result_dir):
            status.state, status.result_dir, status.error = DONE, str(self.result_dir), None
        elif self.cancel_requested_at is not None:
            status.state, status.error, status.error_type = CANCELLED, "cancelled", "JobCancelled"
        elif self.process is None and not (self.job_dir / PROCESS_FILE).exists():
            status.state = NEW  # written but never started
        else:
            code = "" if status.exit_code is None else f" (exit code {status.exit_code})"
            last = last_log_line(self.log_path)
            reason = f": {last}" if last else ""
            status.state = STOPPED
            status.error = f"the engine stopped without finishing{code}{reason}. Resume continues it; log: {self.log_path}"

    # ------------------------------------------------------------------ process
    def process_record(self) -> dict[str, Any]:
        try:
            record = json.loads((self.job_dir / PROCESS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def recorded_pid(self) -> int | None:
        pid = self.process_record().get("pid")
        return pid if isinstance(pid, int) else None

    def process_started(self) -> float | None:
        started = self.process_record().get("started")
        return float(started) if isinstance(started, (int, float)) else None

    def process_alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        pid = self.recorded_pid()
        return pid is not None and pid_runs_job(pid, self.job_dir)

    def cancel(self, grace_s: float = CANCEL_GRACE_S) -> bool:
        """Ask the job to stop: cancel file + SIGTERM now, SIGKILL from `poll()` after `grace_s`.

        Returns False when no process was running (the cancel file is still written, so a
        process that is just starting stops at its first step).
        """
        (self.job_dir / CANCEL_FILE).write_text("cancel\n", encoding="utf-8")
        self.cancel_grace_s = grace_s
        if not self.process_alive():
            return False
        if self.process_record().get("batch"):
            return True  # one job of a batch: it stops at its next step (or when it would start), the others go on
        self.cancel_requested_at = time.monotonic()
        _signal_group(self._pid(), signal.SIGTERM)
        return True

    def _escalate_cancel(self) -> None:
        if self.cancel_requested_at is None:
            return
        if time.monotonic() - self.cancel_requested_at >= self.cancel_grace_s:
            _signal_group(self._pid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    def wait(self, timeout_s: float, interval_s: float = 0.2) -> JobStatus:
        """Poll until the job is no longer active or `timeout_s` passes (tests, scripts)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.poll()
            if not status.is_active and status.state != NEW or time.monotonic() > deadline:
                return status
            time.sleep(interval_s)

    def _pid(self) -> int | None:
        return self.process.pid if self.process is not None else self.recorded_pid()


def _signal_group(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    try:
        if os.name == "nt":
            os.kill(pid, signal.CTRL_BREAK_EVENT if sig == signal.SIGTERM else signal.SIGTERM)
        else:
            os.killpg(pid, sig)  # the job is its own group leader (start_new_session)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def pid_runs_job(pid: int, job_dir: Path) -> bool:
    """Whether process `pid` is alive and is the engine running `job_dir` (not a reused pid)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return os.fsencode(job_dir) in args  # a zombie or another program has other arguments
    if os.name == "nt":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # macOS and other Unixes: ask ps for the command line
        out = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return True
    return os.fspath(job_dir) in out


def _windows_pid_alive(pid: int) -> bool:
    import ctypes

    still_active = 259
    handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == still_active
    finally:
        ctypes.windll.kernel32.CloseHandle(handle)


def last_log_line(path: Path, max_bytes: int = 8192) -> str | None:
    """The last non-empty line of a log (a traceback's last line names the error)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip() and not line.startswith("===")]
    return lines[-1][:300] if lines else None


class BackgroundCommand:
    """A long command that is not a job (creating the engine environment, downloading the model):
    started in its own process group with its output in a log file, polled like a job."""

    def __init__(self, command: Sequence[str], log_path: str | os.PathLike, env: dict[str, str] | None = None) -> None:
        self.command = [os.fspath(part) for part in command]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.command[0]} …\n".encode())
            log.flush()
            try:
                self.process = subprocess.Popen(
                    self.command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **_new_process_group()
                )
            except OSError as exc:
                raise JobStartError(f"cannot start {self.command[0]}: {exc.strerror or exc}") from None

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.process.poll()

    def last_line(self) -> str | None:
        return last_log_line(self.log_path)

    def cancel(self) -> None:
        _signal_group(self.process.pid, signal.SIGTERM)
