"""Stage 2, motion learning (paper eqs. 6–7): separate the reference video's motion from its look.

Each step trains two adapters with the motion prompt:
- `motion_spatial` (A'-LoRA) on one random frame of the clip, the temporal layers bypassed,
  so it absorbs the video's appearance;
- `motion_temporal` (M-LoRA) on the whole clip with `motion_spatial` active but frozen, so
  the temporal adapter only has the motion left to learn.
Loss = L_spatial + L_temporal. Optionally (MotionDirector's appearance-debiased temporal
loss) the temporal loss also compares each frame's noise minus an anchor frame's, which
removes what all frames share. Only `motion_temporal` is used later; both are stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones.adapter_cache import AdapterCache
from ..backbones.base import VideoBackbone
from ..job.checkpoint import StopRequest
from ..job.events import EventLog
from ..media.reference import ReferenceClip, VideoSpec, save_preview_strip
from ..settings import MotionSettings
from .lora_training import TrainingRun, check_prompt, diffusion_loss, frozen, noise_prediction, train_cached

MOTION_STAGE_VERSION = 2  # 2: keyed by the exact source frames (windows of long clips)


def clip_tensor(frames: np.ndarray, frame_size: tuple[int, int]) -> torch.Tensor:
    """(F, H, W, 3) uint8 → (F, 3, height, width) floats in [0, 1] (resized when the sizes differ)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if tuple(video.shape[-2:]) != tuple(frame_size):
        video = F.interpolate(video, size=tuple(frame_size), mode="bilinear", antialias=True, align_corners=False)
    return video


def debiased(x: torch.Tensor, anchor: int, beta: float = 1.0) -> torch.Tensor:
    """√(β²+1)·x_f − β·x_anchor for every frame f: the part of x that differs between frames."""
    return (beta**2 + 1) ** 0.5 * x - beta * x[:, :, anchor : anchor + 1]


def learn_motion(
    backbone: VideoBackbone,
    clip: ReferenceClip,
    spec: VideoSpec,
    motion_prompt: str,
    settings: MotionSettings = MotionSettings(),
    cache: AdapterCache | None = None,
    events: EventLog | None = None,
    stop: StopRequest | None = None,
    show_bar: bool | None = None,
    progress_fields: dict | None = None,
) -> Path:
    """Train (or find in the cache) the video's motion adapters; returns `motion_temporal.safetensors`.

    The cache entry also holds `frames.png`, a strip of the sampled frames the motion was learned from.
    """
    prompt = check_prompt(motion_prompt, "motion")
    num_frames = len(clip.frames)
    video = spec.frames_key(clip.source_indices)  # hashes the file once
    frame_size = backbone.frame_size_for(settings.resolution)

    def make_step():
        text = backbone.encode_prompt(prompt)
        with torch.no_grad():
            mean, std = backbone.latent_moments(clip_tensor(clip.frames, frame_size))
        spatial = list(backbone.adapter_tensors("motion_spatial").values())

        def step(index: int) -> float:
            latents = mean + std * torch.randn_like(mean)
            frame = int(torch.randint(0, num_frames, ()))
            backbone.set_adapter_weights({"motion_spatial": 1.0})
            single = latents[:, :, frame : frame + 1]
            loss_spatial = diffusion_loss(backbone, single, text, backbone.random_timesteps(), torch.randn_like(single))
            loss_spatial.backward()

            backbone.set_adapter_weights({"motion_spatial": 1.0, "motion_temporal": 1.0})
            with frozen(spatial):
                loss_temporal = temporal_loss(backbone, latents, text, settings.debiased_temporal)
                loss_temporal.backward()
            return loss_spatial.item() + loss_temporal.item()

        return step

    run = TrainingRun(
        kind="motion",
        adapters=("motion_spatial", "motion_temporal"),
        key_parts={"stage_version": MOTION_STAGE_VERSION, "video": video, "prompt": prompt, "backbone": backbone.name, "frame_size": list(frame_size)},
        make_step=make_step,
        trained_on={"video": video, "prompt": prompt, "frames": num_frames},
        write_extra=lambda folder: save_preview_strip(clip.frames, folder / "frames.png"),
    )
    entry = train_cached(backbone, run, settings, cache or AdapterCache(), events, stop, show_bar, progress_fields)
    return entry / "motion_temporal.safetensors"


def temporal_loss(backbone: VideoBackbone, latents: torch.Tensor, text: torch.Tensor, debias: bool) -> torch.Tensor:
    """The whole clip's diffusion loss, plus the appearance-debiased term when asked."""
    noise = torch.randn_like(latents)
    prediction = noise_prediction(backbone, latents, text, backbone.random_timesteps(), noise)
    loss = F.mse_loss(prediction, noise.float())
    if debias:
        anchor = int(torch.randint(0, latents.shape[2], ()))
        loss = loss + F.mse_loss(debiased(prediction, anchor), debiased(noise.float(), anchor))
    return loss
