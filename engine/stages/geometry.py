"""How stage 3 moves the sketch: the parameters it optimises and how they make each frame's control points.

Two geometries, chosen by name (`DistillationSettings.parametrisation`):
- `points` (the paper's): every frame's control points are free parameters.
- `global-local` (Live Sketch's split): each frame has a global affine transform (translation,
  turn, scale along x and y, shear) about the drawing's centroid, plus a small displacement of
  each point, with its own, smaller learning rate. A rigid motion is then a handful of numbers
  that the whole drawing shares, and the drawing can only change its shape through the local
  displacements.

Both work in canvas units ([0, 1] spans the canvas). Points that must not move (the frames a
window holds, pinned or invisible paths) keep their starting values exactly: their gradient is
zero, so Adam never moves them, and the frames are assembled with them in place.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ..settings import PARAMETRISATIONS


class FrameGeometry(Protocol):
    def tensors(self) -> dict[str, torch.nn.Parameter]:
        """The optimised tensors by name (what a checkpoint saves)."""

    def param_groups(self, lr: float) -> list[dict]:
        """Adam parameter groups with their learning rates."""

    def frames(self) -> torch.Tensor:
        """(F, P, 2) control points in canvas units."""


class FramePoints:
    """Every frame's control points, optimised directly (SketchAnimator, eq. 12)."""

    def __init__(self, start: torch.Tensor, frozen: torch.Tensor):
        self.points = torch.nn.Parameter(start.clone())
        if frozen.any():  # a zero gradient keeps Adam from moving those points at all (their moments stay zero)
            free = (~frozen).to(start.dtype).unsqueeze(-1)
            self.points.register_hook(lambda grad: grad * free)

    def tensors(self) -> dict[str, torch.nn.Parameter]:
        return {"points": self.points}

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.points], "lr": lr}]

    def frames(self) -> torch.Tensor:
        return self.points


class GlobalLocal:
    """A per-frame affine about the centroid plus per-point displacements (Live Sketch).

    `transform[f]` = (tx, ty, turn, log sx, log sy, shear x, shear y); all zero is the identity.
    The affine is turn · shear · scale, applied to the point (with its displacement) relative to
    the frame's starting centroid.
    """

    def __init__(self, start: torch.Tensor, frozen: torch.Tensor, local_lr_scale: float):
        self.start = start
        self.frozen = frozen.unsqueeze(-1)
        moving = (~frozen).to(start.dtype).unsqueeze(-1)
        self.centre = (start * moving).sum(dim=1, keepdim=True) / moving.sum(dim=1, keepdim=True).clamp_min(1.0)
        self.transform = torch.nn.Parameter(torch.zeros(start.shape[0], 7, dtype=start.dtype))
        self.local = torch.nn.Parameter(torch.zeros_like(start))
        self.local_lr_scale = local_lr_scale

    def tensors(self) -> dict[str, torch.nn.Parameter]:
        return {"transform": self.transform, "local": self.local}

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.transform], "lr": lr}, {"params": [self.local], "lr": lr * self.local_lr_scale}]

    def affine(self) -> torch.Tensor:
        """(F, 2, 2) turn · shear · scale of each frame."""
        tx_ty, turn, log_scale, shear = self.transform[:, :2], self.transform[:, 2], self.transform[:, 3:5], self.transform[:, 5:7]
        cos, sin = torch.cos(turn), torch.sin(turn)
        one, zero = torch.ones_like(turn), torch.zeros_like(turn)
        rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        shearing = torch.stack([torch.stack([one, shear[:, 0]], -1), torch.stack([shear[:, 1], one], -1)], -2)
        scaling = torch.diag_embed(torch.exp(log_scale))
        return rotation @ shearing @ scaling

    def frames(self) -> torch.Tensor:
        relative = self.start + self.local - self.centre
        moved = self.centre + self.transform[:, None, :2] + relative @ self.affine().transpose(1, 2)
        return torch.where(self.frozen, self.start, moved)


def make_geometry(name: str, start: torch.Tensor, frozen: torch.Tensor, local_lr_scale: float = 0.25) -> FrameGeometry:
    """The geometry called `name`, starting at `start` (F, P, 2) with `frozen` (F, P) points kept."""
    if name == "points":
        return FramePoints(start, frozen)
    if name == "global-local":
        return GlobalLocal(start, frozen, local_lr_scale)
    raise ValueError(f"unknown parametrisation {name!r}: use {' or '.join(PARAMETRISATIONS)}")
