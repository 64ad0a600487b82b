"""Stage 3, video prior distillation (paper eqs. 8–12): optimise per-frame Bézier control points.

Three parts, apart as in threestudio: the geometry (per-frame control points, duplicated from
the sketch), the renderer (the differentiable rasterizer, black strokes on white on the
model's frames, engine/vector/render.py) and a *prior* (engine/priors/) that turns rendered
frames into a loss whose gradient says how the frames should change. The loop only wires
them and does not know which prior it has; every diagnostic the prior returns (SDS: its
`grad_norm` and `t`) goes into the progress events and the run's history.

Coordinates: the optimiser works on control points divided by the canvas size (so [0, 1]
spans the canvas); the paper's learning rate 2e-3 therefore moves a point by about half a
pixel per step on a 256 px canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones.base import out_of_memory_explained
from ..errors import SketchAnimatorError
from ..job.checkpoint import StopRequest, run_resumable
from ..job.events import EventLog
from ..priors.base import Prior
from ..settings import DistillationSettings
from ..vector.render import model_view_renderer
from ..vector.sketch import DEFAULT_CANVAS, Sketch
from .geometry import make_geometry


# ----------------------------------------------------------------------- augmentation
def random_view(frames: torch.Tensor, max_crop: float = 0.15, max_perspective: float = 0.1) -> torch.Tensor:
    """The same random crop + mild perspective for every frame of a step (Live Sketch's augmentation).

    White fills what comes in from outside the canvas. Differentiable w.r.t. the frames.
    """
    scale = 1.0 - torch.rand(()) * max_crop
    shift = (torch.rand(2) * 2 - 1) * (1 - scale)
    tilt = (torch.rand(2) * 2 - 1) * max_perspective
    size = frames.shape[-1]
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    denominator = 1.0 + tilt[0] * xs + tilt[1] * ys
    grid = torch.stack([(xs * scale + shift[0]) / denominator, (ys * scale + shift[1]) / denominator], dim=-1)
    grid = grid.to(frames).expand(len(frames), size, size, 2)
    warped = F.grid_sample(frames - 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped + 1.0


# --------------------------------------------------------------------------- the loop
@dataclass
class DistillationResult:
    frames: np.ndarray  # (F, P, 2) control points in the sketch's own pixel coordinates
    losses: list[float]
    skipped_steps: int
    history: dict[str, list[float | None]] = field(default_factory=dict)  # every diagnostic per applied step ("loss" too)


def initial_frames(sketch: Sketch, num_frames: int, init: np.ndarray | None = None) -> np.ndarray:
    """S ∈ R^{F·N×4×2}: the sketch duplicated F times (paper), or a given start (a preview's motion)."""
    if init is not None:
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (num_frames, sketch.num_points, 2):
            raise SketchAnimatorError(f"initial frames have shape {init.shape}; expected ({num_frames}, {sketch.num_points}, 2)")
        return init
    return np.repeat(sketch.flat_points()[None], num_frames, axis=0)


def distill(
    sketch: Sketch,
    prior: Prior,
    settings: DistillationSettings,
    num_frames: int,
    checkpoint_path: str | Path,
    init: np.ndarray | None = None,
    events: EventLog | None = None,
    stop: StopRequest | None = None,
    show_bar: bool | None = None,
    frame_size: tuple[int, int] | None = None,
    held: int = 0,
    next_frame: np.ndarray | None = None,
    progress_fields: dict[str, Any] | None = None,
) -> DistillationResult:
    """Optimise per-frame control points with Adam so that the prior's loss falls.

    Frames are rendered onto `frame_size` (height, width; default a square of
    `settings.resolution` or the default canvas size). The first `held` frames keep their
    `init` points (a window's poses shared with the previous window), and pinned or invisible
    paths keep theirs in every frame (bit for bit). With
    `settings.periodic` the prior sees one frame more, the frame after the last: `next_frame`
    (fixed points, e.g. the clip's first pose for the last window of a cycle) or, without it,
    this run's own first frame. A step whose loss or gradient is not finite is skipped
    (reported, never applied), so the points never become NaN. Checkpointed every
    `checkpoint_every` steps and on stop.
    """
    sketch.validate()
    if frame_size is None:
        side = settings.resolution or DEFAULT_CANVAS
        frame_size = (side, side)
    if not 0 <= held < num_frames:
        raise SketchAnimatorError(f"{held} held frames leave nothing to optimise among {num_frames}")
    renderer = model_view_renderer(sketch, frame_size)
    canvas = float(max(sketch.width, sketch.height))
    start = initial_frames(sketch, num_frames, init)
    still = sketch.still_points()  # pinned and invisible paths
    if still.all():
        raise SketchAnimatorError("every stroke is pinned (or invisible): nothing is left to animate; unpin some strokes")
    frozen = torch.zeros(num_frames, len(still), dtype=torch.bool)
    frozen[:held] = True
    frozen[:, torch.as_tensor(still)] = True
    geometry = make_geometry(settings.parametrisation, torch.as_tensor(start / canvas, dtype=torch.float32), frozen, settings.local_lr_scale)
    after_last = None if next_frame is None else torch.as_tensor(np.asarray(next_frame, dtype=np.float64)[None] / canvas, dtype=torch.float32)
    optimizer = torch.optim.Adam(geometry.param_groups(settings.lr))
    history: dict[str, list[float | None]] = {"loss": []}
    skipped = [0]

    def shown_frames() -> torch.Tensor:
        """The frames the prior sees: the optimised ones, then the frame after the last for a cycle."""
        points = geometry.frames()
        if not settings.periodic:
            return points
        return torch.cat([points, after_last if after_last is not None else points[:1]])

    def step(index: int) -> dict[str, float]:
        optimizer.zero_grad(set_to_none=True)
        frames = renderer.render(renderer.to_render_space(shown_frames() * canvas))
        if settings.augment:
            frames = random_view(frames)
        out = prior(frames, index)
        out["loss"].backward()
        diagnostics = {name: _scalar(value) for name, value in out.items()}
        if not math.isfinite(diagnostics["loss"]) or not all(torch.isfinite(t.grad).all() for t in geometry.tensors().values() if t.grad is not None):
            skipped[0] += 1
            if events is not None:
                events.warning(f"step {index}: the prior gave a non-finite loss or gradient; the step was skipped")
            optimizer.zero_grad(set_to_none=True)
            return {**diagnostics, "loss": float("nan")}
        optimizer.step()
        record(history, diagnostics)
        return diagnostics

    torch.manual_seed(settings.seed)
    with out_of_memory_explained("distillation (stage 3)"):
        run_resumable(
            step, settings.steps, checkpoint_path, geometry.tensors(), optimizer,
            extra_state={"history": _History(history, skipped)}, every=settings.checkpoint_every, stop=stop,
            stage="distillation", events=events, show_bar=show_bar, progress_fields=progress_fields,
        )  # fmt: skip
    with torch.no_grad():
        frames = geometry.frames().double().numpy() * canvas
    frames[:held] = start[:held]  # what was held comes back bit for bit, not through float32
    frames[:, still] = start[:, still]
    return DistillationResult(
        frames=frames, losses=[float(v) for v in history["loss"]], skipped_steps=skipped[0], history={name: list(values) for name, values in history.items()},
    )  # fmt: skip


def _scalar(value: Any) -> float:
    """A diagnostic as a Python float (a one-element tensor or a number)."""
    return float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)


def record(history: dict[str, list[float | None]], diagnostics: dict[str, float]) -> None:
    """Append one applied step's diagnostics; a diagnostic that appears late is padded with None before."""
    steps = len(history["loss"])
    for name, value in diagnostics.items():
        series = history.setdefault(name, [None] * steps)
        series.append(value)
    for name, series in history.items():
        if len(series) == steps:  # a diagnostic this step did not report
            series.append(None)


class _History:
    """Every diagnostic per step and the skipped-step count, saved in checkpoints so a resumed run
    reports the whole curve."""

    def __init__(self, history: dict[str, list[float | None]], skipped: list[int]):
        self.history, self.skipped = history, skipped

    def state_dict(self) -> dict[str, Any]:
        return {"history": {name: list(values) for name, values in self.history.items()}, "skipped": self.skipped[0]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history.clear()
        self.history.update({name: list(values) for name, values in state.get("history", {"loss": state.get("losses", [])}).items()})
        self.skipped[0] = state["skipped"]
