"""Checkpoints and resume: a killed or cancelled training run continues exactly where it stopped.

A checkpoint holds the step, the trainable tensors, the optimiser state, every global RNG
state (torch CPU, CUDA/MPS when in use, numpy's legacy global RNG, Python's `random`) and a
free-form `extra` dict. Restoring all of them makes the resumed run compute the same numbers
as an uninterrupted one, provided each step draws its randomness from those RNGs (or from
state kept in `extra`) and its data from the step index.

Files are never half-written: a checkpoint goes to a temporary file that is renamed over the
old one. Before that, the old one is kept as `<name>.prev` (a hard link, or a copy where links
are not supported), so there is always a complete checkpoint on disk, and if the newest one is
ever found damaged (copied badly, a broken disk) `load_checkpoint` falls back to `.prev` with a
warning. Only when both are unusable does it raise, naming the file to delete.

`StopRequest` turns SIGTERM/SIGINT (and, on every platform, a cancel file) into a flag that
`run_resumable` checks before each step: it saves a checkpoint and raises `JobCancelled`.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..errors import SketchAnimatorError
from .events import EventLog, Progress
from ..files import DISK_FULL, atomic_write, disk_full_detail, free_bytes

CHECKPOINT_FORMAT = "sketch-animator-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(SketchAnimatorError):
    """A checkpoint cannot be written or read."""


class JobCancelled(SketchAnimatorError):
    """The run was asked to stop (SIGTERM, Ctrl-C or the cancel file); its progress is saved."""

    exit_code = 130  # what `python -m engine` should exit with, as for Ctrl-C


# --------------------------------------------------------------------------- state


def capture_rng() -> dict[str, Any]:
    """Every global RNG state, as data that `torch.load(weights_only=True)` accepts."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # never initialise CUDA just to save it
        states["cuda"] = torch.cuda.get_rng_state_all()
    if hasattr(torch, "mps") and torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


@dataclass
class TrainingState:
    """What a checkpoint holds. `step` counts completed steps."""

    step: int
    tensors: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=capture_rng)
    extra: dict[str, Any] = field(default_factory=dict)  # plain data and tensors only (weights_only load)


def restore_rng(state: TrainingState | Mapping[str, Any]) -> None:
    """Put every global RNG back to the saved state (devices absent here are skipped)."""
    rng = state.rng if isinstance(state, TrainingState) else state
    torch.set_rng_state(rng["torch"])
    numpy_state = rng["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in rng and torch.cuda.is_available():
        for device, device_state in enumerate(rng["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)
    if "mps" in rng and hasattr(torch, "mps") and torch.backends.mps.is_available():
        torch.mps.set_rng_state(rng["mps"])


# --------------------------------------------------------------------------- save and load


def previous_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".prev")


def save_checkpoint(path: str | os.PathLike, state: TrainingState) -> Path:
    """Write a checkpoint atomically, keeping the one it replaces as `.prev`.

    On a full disk this raises CheckpointError and leaves the existing checkpoint untouched
    and no temporary file behind.
    """
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": int(state.step),
        "tensors": {name: tensor.detach().cpu().clone() for name, tensor in state.tensors.items()},
        "optimizer": state.optimizer,
        "rng": state.rng,
        "extra": state.extra,
    }
    try:
        if path.exists():
            keep_as_previous(path)
        return atomic_write(path, lambda tmp: write_payload(payload, tmp))
    except OSError as exc:
        raise checkpoint_write_error(path, exc) from None


def write_payload(payload: dict[str, Any], tmp: str) -> None:
    """Serialise through a Python file object, so a full disk surfaces as OSError(ENOSPC).

    torch's zip writer reports a failed write as a RuntimeError ("[enforce fail at
    inline_container.cc] … file write failed"), whatever the cause: with the folder's free
    space gone it is the full disk, and becomes that OSError.
    """
    try:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
    except RuntimeError as exc:
        if free_bytes(Path(tmp).parent) < payload_bytes(payload) or "write failed" in str(exc):
            raise OSError(errno.ENOSPC, "no space left on device") from None
        raise


def payload_bytes(payload: dict[str, Any]) -> int:
    """Roughly what a checkpoint takes on disk: its tensors' bytes."""
    tensors = payload.get("tensors") or {}
    return sum(t.numel() * t.element_size() for t in tensors.values() if isinstance(t, torch.Tensor))


def keep_as_previous(path: Path) -> None:
    """Make `.prev` a complete copy of the current checkpoint without ever removing `path`."""
    previous = previous_path(path)
    link = previous.with_name(f".{previous.name}.{os.getpid()}.link")
    try:
        os.link(path, link)
    except OSError:
        atomic_write(previous, lambda tmp: shutil.copyfile(path, tmp))  # file systems without hard links
        return
    try:
        os.replace(link, previous)
    finally:
        if link.exists():
            link.unlink()


def checkpoint_write_error(path: Path, exc: OSError) -> CheckpointError:
    if exc.errno in DISK_FULL:
        return CheckpointError(f"{disk_full_detail(exc, path)}: free space and run the job again (finished stages are kept)")
    return CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}; check the folder's permissions and free space")


def load_checkpoint(path: str | os.PathLike, on_warning: Callable[[str], None] | None = None) -> TrainingState | None:
    """The saved state, or None if there is no checkpoint yet.

    A damaged checkpoint falls back to `.prev` (reported through `on_warning`); if neither can
    be read, CheckpointError names the file to delete to start the stage over.
    """
    path = Path(path)
    previous = previous_path(path)
    if not path.exists() and not previous.exists():
        return None
    if path.exists():
        try:
            return read_state(path)
        except CheckpointError:
            if not previous.exists():
                raise
    state = read_state(previous)
    if on_warning is not None:
        on_warning(f"checkpoint {path} is missing or damaged; resuming from the previous one (step {state.step})")
    return state


def read_state(path: Path) -> TrainingState:
    damaged = CheckpointError(f"checkpoint {path} is damaged or truncated; delete it to start this stage over")
    try:
        with warnings.catch_warnings():  # torch explains a refused file at length: our one line says what to do
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise damaged from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise damaged
    if payload.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} was written by a newer Sketch Animator; update it, or delete the file to start over")
    return TrainingState(
        step=int(payload["step"]),
        tensors=dict(payload["tensors"]),
        optimizer=payload.get("optimizer"),
        rng=payload["rng"],
        extra=dict(payload.get("extra") or {}),
    )


# --------------------------------------------------------------------------- stopping


class StopRequest:
    """Turns SIGTERM, SIGINT and a cancel file into a flag that a training loop checks each step.

    The handlers are installed on `__enter__` (main thread only; elsewhere only the cancel file
    and `request()` work) and the previous handlers come back on `__exit__`. A cancel file
    that already exists on `__enter__` is removed: it cancelled an earlier run. A second Ctrl-C
    stops at once with KeyboardInterrupt, for when a step hangs. The cancel file is how the
    Blender add-on cancels on Windows, where a process cannot be sent SIGTERM.
    """

    def __init__(self, cancel_file: str | os.PathLike | None = None, signals: tuple[int, ...] | None = None) -> None:
        self.cancel_file = Path(cancel_file) if cancel_file is not None else None
        self.signals = signals if signals is not None else (signal.SIGTERM, signal.SIGINT)
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        if self.reason is None and self.cancel_file is not None and self.cancel_file.exists():
            self.reason = f"cancel file {self.cancel_file}"
        return self.reason is not None

    def request(self, reason: str = "requested") -> None:
        self.reason = self.reason or reason

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.reason == "SIGINT":
            raise KeyboardInterrupt
        self.request(signal.Signals(signum).name)

    def __enter__(self) -> "StopRequest":
        if self.cancel_file is not None:
            self.cancel_file.unlink(missing_ok=True)  # left by the run it cancelled; this run starts afresh
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


# --------------------------------------------------------------------------- the loop


def run_resumable(
    step_fn: Callable[[int], Any],
    total_steps: int,
    checkpoint_path: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
    extra_state: Mapping[str, Any] | None = None,
    every: int = 50,
    stop: StopRequest | None = None,
    stage: str = "training",
    events: EventLog | None = None,
    show_bar: bool | None = None,
    progress_fields: dict[str, Any] | None = None,
) -> int:
    """Run steps `start … total_steps − 1` of a loop, resuming from a checkpoint if there is one.

    `step_fn(step)` runs one step (0-based) and may return the loss, or a dict of the loss and
    other diagnostics, all of which go into the progress events. `tensors` are the trainable
    tensors (updated in place on resume); `extra_state` maps names to objects with
    `state_dict()`/`load_state_dict()` (LR schedulers, …). A checkpoint is written every `every`
    steps, after the last step, and when `stop` is requested (then JobCancelled is raised).
    `progress_fields` go into every event of the stage (a long clip's window k of n). Returns the
    step the run resumed from (0 for a fresh run). The last checkpoint is kept, so
    re-running a finished stage restores its result at once; delete it once the result is stored.
    """
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    extra_state = dict(extra_state or {})
    warn = events.warning if events is not None else None
    start = resume(load_checkpoint(checkpoint_path, on_warning=warn), checkpoint_path, tensors, optimizer, extra_state)

    def save(step: int) -> None:
        extra = {name: obj.state_dict() for name, obj in extra_state.items()}
        optimizer_state = optimizer.state_dict() if optimizer is not None else None
        save_checkpoint(checkpoint_path, TrainingState(step, dict(tensors), optimizer_state, capture_rng(), extra))

    last_saved = start if start > 0 else None
    with Progress(stage, total_steps, events, show_bar=show_bar, initial=min(start, total_steps), fields=progress_fields) as progress:
        for step in range(start, total_steps):
            if stop is not None and stop.requested:
                if last_saved != step:
                    save(step)
                raise JobCancelled(
                    f"{stage} cancelled at step {step} of {total_steps} ({stop.reason}); "
                    f"progress is saved in {checkpoint_path}: run the job again to resume"
                )
            out = step_fn(step)
            done = step + 1
            if isinstance(out, Mapping):  # the loss and diagnostics (a prior's grad_norm, t, …)
                progress.update(done, **out)
            else:
                progress.update(done, loss=out)
            if done % every == 0 or done == total_steps:
                save(done)
                last_saved = done
    return start


def resume(
    state: TrainingState | None,
    path: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    extra_state: Mapping[str, Any],
) -> int:
    """Load a saved state into the live objects; returns the step to continue from."""
    if state is None:
        return 0
    if set(state.tensors) != set(tensors) or any(state.tensors[n].shape != t.shape for n, t in tensors.items()):
        raise CheckpointError(f"checkpoint {path} was written for different trainable tensors; delete it to start this stage over")
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(state.tensors[name])
    if optimizer is not None and state.optimizer is not None:
        optimizer.load_state_dict(state.optimizer)
    for name, obj in extra_state.items():
        if name in state.extra:
            obj.load_state_dict(state.extra[name])
    restore_rng(state)
    return state.step
