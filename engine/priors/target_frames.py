"""The target-frames prior, an oracle: pull the rendered frames toward known target frames.

Tests use it to check that the distillation loop recovers a known motion; as a job's prior
(`"prior": "target-frames"`, `"prior_options": {"targets": "targets.json"}`) it animates the
sketch toward an animated sketch JSON of the same topology, rendered like the frames.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import SketchAnimatorError
from ..vector.render import model_view_renderer
from ..vector.sketch import Sketch
from .base import PriorContext


class TargetFramesPrior:
    """Pull the frames toward target frames with a multi-scale blurred L2 loss.

    Blurring at several scales gives a gradient even where a stroke and its target do not
    overlap yet, so a translation or rotation of many pixels is still recovered.
    """

    def __init__(self, targets: torch.Tensor, blur_sigmas: tuple[float, ...] = (8.0, 4.0, 2.0, 1.0, 0.0)):
        self.sigmas = blur_sigmas
        self.targets = [blur(targets, s) for s in blur_sigmas]

    @classmethod
    def from_context(cls, context: PriorContext) -> "TargetFramesPrior":
        """Targets rendered from `prior_options["targets"]`: an animated sketch JSON with one frame per pose
        of the animation; the prior compares the poses it is shown (`PriorContext.frame_indices`)."""
        name = context.options.get("targets")
        if not name:
            raise SketchAnimatorError('the target-frames prior needs prior_options {"targets": "<animated sketch JSON>"}')
        path = Path(name)
        if not path.is_absolute() and context.job_dir is not None:
            path = context.job_dir / path
        animation = Sketch.load_json(path)
        if animation.num_frames != context.num_frames:
            raise SketchAnimatorError(f"{path} has {animation.num_frames} frames; the job makes {context.num_frames}: give one target per frame")
        shown = animation.with_frames(animation.frames[context.shown_poses()])
        return cls(render_targets(shown, context.frame_size))

    def __call__(self, frames: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        loss = sum(F.mse_loss(blur(frames, s), target, reduction="sum") for s, target in zip(self.sigmas, self.targets))
        return {"loss": loss / len(frames)}


def render_targets(animation: Sketch, frame_size: tuple[int, int]) -> torch.Tensor:
    """`(F, 3, H, W)` target frames: the animation drawn as the distillation loop draws its frames."""
    renderer = model_view_renderer(animation, frame_size)
    with torch.no_grad():
        return renderer.render(renderer.to_render_space(torch.as_tensor(animation.frames, dtype=torch.float32)))


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of `(N, C, H, W)` images (replicated borders); sigma 0 is the identity."""
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
