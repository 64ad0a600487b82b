"""Stage 3, video prior distillation (paper eqs. 8–12): optimise per-frame Bézier control points.

Three parts, apart as in threestudio: the geometry (per-frame control points, duplicated from
the sketch), the renderer (the differentiable rasterizer, black strokes on white at the
model's resolution) and a *prior* that turns rendered frames into a loss whose gradient says
how the frames should change. The loop only wires them, and does not know which prior it has:

- `SDSPrior`: score distillation through the text-to-video model carrying `appearance`
  (λ1 = 0.5) and `motion_temporal` (λ2 = 1.0): z0 = VAE(R(S)), t ~ U[t_min, t_max],
  ε̂ with classifier-free guidance, gradient w(t)(ε̂ − ε) with w(t) = 1 − ᾱ_t.
- `TargetFramesPrior`: pulls the frames toward known target frames (a blurred pixel loss);
  used by tests to check that the loop recovers a known motion, and for debugging.

Coordinates: the optimiser works on control points divided by the canvas size (so [0, 1]
spans the canvas); the paper's learning rate 2e-3 therefore moves a point by about half a
pixel per step on a 256 px canvas.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .appearance import model_renderer
from .backbone import Backbone, out_of_memory_explained
from .checkpoint import StopRequest, run_resumable
from .errors import SketchAnimatorError
from .events import EventLog
from .sketch import Sketch


@dataclass(frozen=True)
class DistillationSettings:
    """Stage 3 options; defaults from design.md §4 (Live Sketch's and the paper's numbers)."""

    steps: int = 500
    lr: float = 2e-3  # Adam, on control points in canvas units ([0, 1] spans the canvas)
    guidance: float = 35.0  # classifier-free guidance scale (Live Sketch: 30–40)
    t_min: int = 50
    t_max: int = 950
    anneal_t: bool = False  # shrink t_max linearly towards t_min + 100 over the run
    weighting: str = "sds"  # w(t): "sds" = 1 − ᾱ_t (DreamFusion, Live Sketch) or "uniform" = 1
    appearance_weight: float = 0.5  # λ1; 0 reproduces the paper's "w/o A-LoRA" row
    motion_weight: float = 1.0  # λ2; 0 reproduces "w/o M-LoRA"
    augment: bool = True  # random crop + perspective of the frames, the same for all frames of a step
    resolution: int = 256
    seed: int = 0
    checkpoint_every: int = 25

    def __post_init__(self) -> None:
        if self.weighting not in ("sds", "uniform"):
            raise SketchAnimatorError(f"unknown weighting {self.weighting!r}: use sds (1 − ᾱ_t) or uniform")
        if not 0 <= self.t_min < self.t_max <= 999:
            raise SketchAnimatorError(f"t range [{self.t_min}, {self.t_max}] is invalid: use 0 ≤ t_min < t_max ≤ 999")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Prior(Protocol):
    """Rendered frames `(F, 3, H, W)` in [0, 1] → {"loss": scalar to backpropagate, diagnostics…}."""

    def __call__(self, frames: torch.Tensor, step: int) -> dict[str, torch.Tensor]: ...


# ---------------------------------------------------------------------------- priors
class SDSPrior:
    """Score distillation sampling through the adapted video diffusion model."""

    def __init__(self, backbone: Backbone, motion_prompt: str, settings: DistillationSettings):
        self.backbone = backbone
        self.settings = settings
        weights = {}
        if settings.appearance_weight:
            weights["appearance"] = settings.appearance_weight
        if settings.motion_weight:
            weights["motion_temporal"] = settings.motion_weight
        backbone.set_adapter_weights(weights)
        backbone.train_only()  # nothing in the model trains: only the control points
        self.text = torch.cat([backbone.encode_prompt(""), backbone.encode_prompt(motion_prompt)])
        self.alphas_cumprod = backbone.scheduler.alphas_cumprod.to(backbone.device)

    def timestep(self, step: int) -> torch.Tensor:
        high = self.settings.t_max
        if self.settings.anneal_t:
            high = round(self.settings.t_max - (self.settings.t_max - self.settings.t_min - 100) * step / max(self.settings.steps - 1, 1))
        return torch.randint(self.settings.t_min, max(high, self.settings.t_min + 1), (1,))

    def __call__(self, frames: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        latents = self.backbone.encode_frames(frames, sample=False).float()
        t = self.timestep(step)
        noise = torch.randn_like(latents)
        with torch.no_grad():
            noisy = self.backbone.scheduler.add_noise(latents.detach(), noise, t)
            prediction = self.backbone.predict_noise(torch.cat([noisy, noisy]), t.expand(2), self.text).float()
            unconditional, conditional = prediction.chunk(2)
            guided = unconditional + self.settings.guidance * (conditional - unconditional)
            weight = 1.0 - self.alphas_cumprod[t.to(self.alphas_cumprod.device)].float() if self.settings.weighting == "sds" else 1.0
            grad = torch.nan_to_num(weight * (guided - noise))
        target = (latents - grad).detach()
        loss = 0.5 * F.mse_loss(latents, target, reduction="sum")  # d loss / d latents = grad
        return {"loss": loss, "grad_norm": grad.norm(), "t": t.float()}


class TargetFramesPrior:
    """Pull the frames toward target frames with a multi-scale blurred L2 loss.

    Blurring at several scales gives a gradient even where a stroke and its target do not
    overlap yet, so a translation or rotation of many pixels is still recovered.
    """

    def __init__(self, targets: torch.Tensor, blur_sigmas: tuple[float, ...] = (8.0, 4.0, 2.0, 1.0, 0.0)):
        self.sigmas = blur_sigmas
        self.targets = [_blur(targets, s) for s in blur_sigmas]

    def __call__(self, frames: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        loss = sum(F.mse_loss(_blur(frames, s), target, reduction="sum") for s, target in zip(self.sigmas, self.targets))
        return {"loss": loss / len(frames)}


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return images
    radius = int(math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


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
) -> DistillationResult:
    """Optimise per-frame control points with Adam so that the prior's loss falls.

    A step whose loss or gradient is not finite is skipped (reported, never applied), so
    the points never become NaN. Checkpointed every `checkpoint_every` steps and on stop.
    """
    sketch.validate()
    renderer = model_renderer(sketch, settings.resolution)
    canvas = float(max(sketch.width, sketch.height))
    points = torch.nn.Parameter(torch.as_tensor(initial_frames(sketch, num_frames, init) / canvas, dtype=torch.float32))
    optimizer = torch.optim.Adam([points], lr=settings.lr)
    losses: list[float] = []
    skipped = [0]
    model_scale = settings.resolution  # canvas units → model pixels

    def step(index: int) -> float:
        optimizer.zero_grad(set_to_none=True)
        frames = renderer.render(points * model_scale)
        if settings.augment:
            frames = random_view(frames)
        out = prior(frames, index)
        out["loss"].backward()
        loss = float(out["loss"].detach())
        if not math.isfinite(loss) or not torch.isfinite(points.grad).all():
            skipped[0] += 1
            if events is not None:
                events.warning(f"step {index}: the prior gave a non-finite loss or gradient; the step was skipped")
            optimizer.zero_grad(set_to_none=True)
            return float("nan")
        optimizer.step()
        losses.append(loss)
        return loss

    torch.manual_seed(settings.seed)
    with out_of_memory_explained("distillation (stage 3)"):
        run_resumable(
            step, settings.steps, checkpoint_path, {"points": points}, optimizer,
            extra_state={"history": _History(losses, skipped)},
            every=settings.checkpoint_every, stop=stop, stage="distillation", events=events, show_bar=show_bar,
        )
    return DistillationResult(frames=points.detach().double().numpy() * canvas, losses=list(losses), skipped_steps=skipped[0])


class _History:
    """Losses and skipped-step count, saved in checkpoints so a resumed run reports the whole curve."""

    def __init__(self, losses: list[float], skipped: list[int]):
        self.losses, self.skipped = losses, skipped

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "skipped": self.skipped[0]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses[:] = state["losses"]
        self.skipped[0] = state["skipped"]
