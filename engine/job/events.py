"""Progress and errors as an append-only JSON-lines log, plus a terminal progress bar.

The job process writes `events.jsonl` in the job folder; the Blender add-on (another process,
without torch) polls it with `read_events(path, offset)`. Every line is one JSON object with
at least `time` (unix seconds) and `kind`:

- `stage_start`  stage, total
- `progress`     stage, step, total, loss, eta_s (+ any extra fields)
- `stage_end`    stage, step, total, elapsed_s, ok (false when the stage raised), error_type
- `message`, `warning`   message
- `error`        message (one line), type (the exception class name, e.g. "VideoError")
- `done`         whatever the job reports at the end (e.g. result paths)

Each event is written with a single `write` on a file opened for appending, then flushed and
fsync'd, so a reader in another process only ever sees whole lines at the end (it leaves a
partial last line for its next call). This module imports neither numpy nor torch.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import SketchAnimatorError
from ..jsondata import to_json_value

_monotonic = time.monotonic  # tests replace this to control rates and ETAs


class EventLog:
    """Append-only JSON-lines log; one complete line per `emit`.

    It is append-only by design (the reader tracks a byte offset), so it is not written with
    `files.atomic_write`: a single O_APPEND write per line is what keeps lines whole.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event and make it durable; returns the event as written."""
        event = {"time": time.time(), "kind": kind, **{key: to_json_value(value) for key, value in fields.items()}}
        line = (json.dumps(event, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # never written through a link to somewhere outside the job
                raise SketchAnimatorError(f"{self.path} is a symbolic link: remove it (a job writes only inside its folder)") from None
            raise
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return event

    def message(self, text: str) -> None:
        self.emit("message", message=text)

    def warning(self, text: str) -> None:
        self.emit("warning", message=text)


def read_events(path: str | os.PathLike, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete events written after byte `offset`, and the offset to pass next time.

    A partial last line (a write in progress) is left for the next call. A missing file gives
    no events. If the file is shorter than `offset` (the log was replaced), reading restarts
    at 0. A line that is not valid JSON is skipped rather than stopping the reader.
    """
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                offset = 0
            handle.seek(offset)
            data = handle.read(size - offset)
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for line in data[: end + 1].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + end + 1


def error_event(events: EventLog | None, exc: BaseException, where: str | None = None) -> dict[str, Any] | None:
    """Record an exception as an "error" event: its first line and its class name.

    `where` marks an unexpected error (not one of ours, whose message says what to do): the
    message then names the exception class and where its traceback went.
    """
    if events is None:
        return None
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if where is not None:
        message = f"{type(exc).__name__}: {message} (the traceback is in {where})"
    try:
        return events.emit("error", message=message, type=type(exc).__name__)
    except (OSError, SketchAnimatorError):  # a read-only or full folder: the error itself is still raised
        return None


class Progress:
    """One stage's progress: a tqdm bar on a terminal and rate-limited "progress" events.

    `step` counts completed steps (1…total). `initial` is the step a resumed run starts from;
    the ETA uses only the steps run since this object was created, so a resume from a
    checkpoint does not make the rate look infinitely fast.
    """

    def __init__(
        self,
        stage: str,
        total: int,
        events: EventLog | None = None,
        show_bar: bool | None = None,
        initial: int = 0,
        min_interval_s: float = 0.5,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.stage, self.total, self.events = stage, int(total), events
        self.initial = self.step = int(initial)
        self.min_interval_s = min_interval_s
        self.fields = dict(fields or {})  # added to every event of the stage (a long clip's window: window, windows)
        self.started = _monotonic()
        self.last_emit: float | None = None
        self.bar = make_bar(stage if "window" not in self.fields else f"{stage} {self.fields['window']}/{self.fields.get('windows', '?')}", self.total, self.initial, show_bar)
        if events is not None:
            events.emit("stage_start", stage=stage, total=self.total, initial=self.initial, **self.fields)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)

    def eta_s(self) -> float | None:
        """Seconds left at the rate measured since start; None before the first step."""
        done = self.step - self.initial
        elapsed = _monotonic() - self.started
        if done <= 0 or elapsed <= 0:
            return None
        return (self.total - self.step) * elapsed / done

    def update(self, step: int, loss: float | None = None, **extra: Any) -> None:
        """Report that `step` steps are complete; emits at most one event per `min_interval_s`."""
        self.step = int(step)
        now = _monotonic()
        due = self.last_emit is None or now - self.last_emit >= self.min_interval_s or self.step >= self.total
        if due:  # reading a GPU loss waits for the GPU, so only do it when reporting
            self.last_emit = now
            loss = None if loss is None else float(loss.item() if hasattr(loss, "item") else loss)
        if self.bar is not None:
            if due and loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            self.bar.update(self.step - self.bar.n)
        if self.events is not None and due:
            self.events.emit(
                "progress", stage=self.stage, step=self.step, total=self.total, loss=loss, eta_s=self.eta_s(), **self.fields, **extra
            )

    def close(self, exc: BaseException | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.events is not None:
            fields: dict[str, Any] = {"ok": exc is None}
            if exc is not None:
                fields["error_type"] = type(exc).__name__
            elapsed = _monotonic() - self.started
            self.events.emit("stage_end", stage=self.stage, step=self.step, total=self.total, elapsed_s=elapsed, **self.fields, **fields)
            self.events = None  # closing twice emits once


def make_bar(stage: str, total: int, initial: int, show_bar: bool | None) -> Any:
    """A tqdm bar on stderr when it is a terminal (or when asked), else None."""
    if show_bar is None:
        show_bar = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not show_bar:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=stage, file=sys.stderr, dynamic_ncols=True)
