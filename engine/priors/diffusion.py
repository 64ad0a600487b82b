"""The diffusion prior (paper eqs. 10–12): score distillation sampling through the adapted video model.

The model carries `appearance` (λ1 = 0.5) and `motion_temporal` (λ2 = 1.0). Per step:
z0 = VAE(R(S)) with gradients, t ~ U[t_min, t_max], ε̂ with classifier-free guidance, and the
gradient w(t)(ε̂ − ε) with w(t) = 1 − ᾱ_t, delivered through a detached target as threestudio
does (the "loss" is ½‖grad‖², not a progress measure; `grad_norm` and `t` are reported).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..backbones.base import VideoBackbone
from ..errors import SketchAnimatorError
from ..settings import DistillationSettings
from .base import PriorContext


class SDSPrior:
    """Score distillation sampling through the adapted video diffusion model."""

    def __init__(self, backbone: VideoBackbone, motion_prompt: str, settings: DistillationSettings):
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
        self.alphas_cumprod = backbone.alphas_cumprod

    @classmethod
    def from_context(cls, context: PriorContext) -> "SDSPrior":
        if context.backbone is None:
            raise SketchAnimatorError("the diffusion prior needs the video model: load it before building the prior")
        return cls(context.backbone, context.motion_prompt, context.settings)

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
            noisy = self.backbone.add_noise(latents.detach(), noise, t)
            prediction = self.backbone.predict_noise(torch.cat([noisy, noisy]), t.expand(2), self.text).float()
            unconditional, conditional = prediction.chunk(2)
            guided = unconditional + self.settings.guidance * (conditional - unconditional)
            weight = 1.0 - self.alphas_cumprod[t.to(self.alphas_cumprod.device)].float() if self.settings.weighting == "sds" else 1.0
            grad = torch.nan_to_num(weight * (guided - noise))
        target = (latents - grad).detach()
        loss = 0.5 * F.mse_loss(latents, target, reduction="sum")  # d loss / d latents = grad
        return {"loss": loss, "grad_norm": grad.norm(), "t": t.float()}
