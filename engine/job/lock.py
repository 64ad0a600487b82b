"""One process at a time on a job folder: a lock file that says who holds it.

`job.lock` holds the holder's pid, host and start time, created with O_EXCL so two processes
cannot both create it. A second `run` refuses with who holds the job, or waits for it
(`--wait`). A lock left by a process that died (same host, and no such pid, or only its
zombie) is taken over: removed and created again, which
only one contender wins. Standard library only (the add-on reads it to show who runs a job).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import SketchAnimatorError

LOCK_FILE = "job.lock"
WAIT_POLL_S = 0.5


class JobBusyError(SketchAnimatorError):
    """Another process runs this job."""


class ReadOnlyJobError(SketchAnimatorError):
    """The job folder cannot be written, and the job needs to write."""


def read_only_error(job_dir: Path) -> ReadOnlyJobError:
    return ReadOnlyJobError(
        f"the job folder {job_dir} is read-only, and this job still needs to write its progress and result there: "
        "make it writable, or copy the folder somewhere writable and run it there"
    )


def lock_holder(job_dir: str | os.PathLike, file_name: str = LOCK_FILE) -> dict[str, Any] | None:
    """Who holds the job's lock (pid, host, started), or None."""
    try:
        data = json.loads((Path(job_dir) / file_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else {}


def process_alive(pid: int) -> bool:
    """Whether `pid` runs: a process killed but not yet reaped by its parent (a zombie, as a
    SIGKILLed Ray worker is for a moment) is dead, since it will never release the lock."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS, Windows): the signal test is all there is
    return state not in ("Z", "X")


def is_stale(holder: dict[str, Any] | None) -> bool:
    """A lock whose holder is gone: on this host, its process no longer exists (an unreadable lock
    file, half written by a process that died at that moment, counts as stale too)."""
    if not holder:
        return True
    if holder.get("host") != socket.gethostname():
        return False  # another machine's process (a shared folder): it cannot be checked, so it holds
    pid = holder.get("pid")
    return not isinstance(pid, int) or not process_alive(pid)


class JobLock:
    """`with JobLock(job_dir, wait=False):` — hold the job folder, or raise JobBusyError (one line)."""

    def __init__(self, job_dir: str | os.PathLike, wait: bool = False, timeout_s: float | None = None, file_name: str = LOCK_FILE) -> None:
        self.job_dir = Path(job_dir)
        self.path = self.job_dir / file_name  # another name: one thing in a folder (a cache key) rather than the folder
        self.wait = wait
        self.timeout_s = timeout_s
        self.held = False

    def __enter__(self) -> "JobLock":
        started = time.monotonic()
        while not self.try_acquire():
            holder = lock_holder(self.job_dir, self.path.name)
            if is_stale(holder):
                if lock_holder(self.job_dir, self.path.name) == holder:  # still the dead one's (not a contender's new lock)
                    self.path.unlink(missing_ok=True)  # taken over: of two contenders, one creates it next
                continue
            if not self.wait or (self.timeout_s is not None and time.monotonic() - started > self.timeout_s):
                raise JobBusyError(
                    f"the job in {self.job_dir} is being run by process {holder.get('pid')} on {holder.get('host')} "
                    f"(since {holder.get('started', '?')}): wait for it to finish (run with --wait), or cancel it"
                )
            time.sleep(WAIT_POLL_S)
        self.held = True
        return self

    def try_acquire(self) -> bool:
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise read_only_error(self.job_dir) from None
            raise
        try:
            os.write(fd, record.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def __exit__(self, *_: Any) -> None:
        if self.held and (lock_holder(self.job_dir, self.path.name) or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False
