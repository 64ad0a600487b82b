"""Stage 1, appearance learning (paper eq. 5): an `appearance` LoRA on the spatial layers,
trained with the single-frame diffusion loss on the rendered sketch and a subject prompt.

The sketch is rendered in black on white by the rasterizer's colour path, fitted into the
model's frames. Optional light augmentation (a small random scale and shift of the control
points each step) keeps the drawing itself intact while discouraging the adapter from
memorising one exact pixel placement.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..backbones.adapter_cache import AdapterCache
from ..backbones.base import VideoBackbone
from ..job.checkpoint import StopRequest
from ..job.events import EventLog
from ..settings import AppearanceSettings
from ..vector.render import model_view_renderer
from ..vector.sketch import Sketch
from .lora_training import TrainingRun, check_prompt, diffusion_loss, train_cached

APPEARANCE_STAGE_VERSION = 1


def sketch_content_hash(sketch: Sketch) -> str:
    """Hash of what determines the sketch's look (points, widths, colours, canvas), not its metadata."""
    document = sketch.to_dict()
    document.pop("metadata", None)
    document.pop("frames", None)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def jitter_points(points: torch.Tensor, frame_size: tuple[int, int], max_shift: float, max_scale: float) -> torch.Tensor:
    """Scale about the frame's centre and shift (a fraction of its longer side), by random amounts from the global RNG."""
    height, width = frame_size
    centre = torch.tensor([width / 2, height / 2], dtype=points.dtype)
    scale = 1.0 + (torch.rand(()) * 2 - 1) * max_scale
    shift = (torch.rand(2) * 2 - 1) * max_shift * max(height, width)
    return (points - centre) * scale + centre + shift


def learn_appearance(
    backbone: VideoBackbone,
    sketch: Sketch,
    subject_prompt: str,
    settings: AppearanceSettings = AppearanceSettings(),
    cache: AdapterCache | None = None,
    events: EventLog | None = None,
    stop: StopRequest | None = None,
    show_bar: bool | None = None,
) -> Path:
    """Train (or find in the cache) the sketch's appearance adapter; returns its .safetensors file."""
    sketch.validate()
    prompt = check_prompt(subject_prompt, "subject")
    frame_size = backbone.frame_size_for(settings.resolution)
    renderer = model_view_renderer(sketch, frame_size)

    def make_step():
        text = backbone.encode_prompt(prompt)
        backbone.set_adapter_weights({"appearance": 1.0})
        base_points = renderer.points()
        fixed = None if settings.augment else backbone.latent_moments(renderer.render(base_points)[None])

        def step(index: int) -> float:
            if settings.augment:
                points = jitter_points(base_points, frame_size, settings.max_shift, settings.max_scale)
                with torch.no_grad():
                    mean, std = backbone.latent_moments(renderer.render(points)[None])
            else:
                mean, std = fixed
            latents = mean + std * torch.randn_like(mean)
            loss = diffusion_loss(backbone, latents, text, backbone.random_timesteps(), torch.randn_like(latents))
            loss.backward()
            return loss.item()

        return step

    run = TrainingRun(
        kind="appearance",
        adapters=("appearance",),
        key_parts={"stage_version": APPEARANCE_STAGE_VERSION, "sketch": sketch_content_hash(sketch), "prompt": prompt, "backbone": backbone.name, "frame_size": list(frame_size)},
        make_step=make_step,
        trained_on={"sketch_sha256": sketch_content_hash(sketch), "prompt": prompt},
    )
    entry = train_cached(backbone, run, settings, cache or AdapterCache(), events, stop, show_bar)
    return entry / "appearance.safetensors"
