"""Stage 1, appearance learning (paper eq. 5): an `appearance` LoRA on the spatial layers,
trained with the single-frame diffusion loss on the rendered sketch and a subject prompt.

The sketch is rendered in black on white by the rasterizer's colour path, at the model's
resolution. Optional light augmentation (a small random scale and shift of the control
points each step) keeps the drawing itself intact while discouraging the adapter from
memorising one exact pixel placement.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .backbone import Backbone
from .cache import AdapterCache
from .checkpoint import StopRequest
from .events import EventLog
from .lora_training import LoraTrainingSettings, TrainingRun, check_prompt, diffusion_loss, random_timesteps, train_cached
from .render import SketchRenderer
from .sketch import Sketch

APPEARANCE_STAGE_VERSION = 1


@dataclass(frozen=True)
class AppearanceSettings(LoraTrainingSettings):
    augment: bool = True
    max_shift: float = 0.04  # of the canvas size
    max_scale: float = 0.05  # ± relative scale jitter


def sketch_content_hash(sketch: Sketch) -> str:
    """Hash of what determines the sketch's look (points, widths, colours, canvas), not its metadata."""
    document = sketch.to_dict()
    document.pop("metadata", None)
    document.pop("frames", None)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def black_on_white(sketch: Sketch) -> Sketch:
    """The sketch with every stroke black (opacity kept): what the model is shown."""
    return replace(sketch, paths=[replace(p, color=(0.0, 0.0, 0.0)) for p in sketch.paths], frames=None)


def model_renderer(sketch: Sketch, resolution: int) -> SketchRenderer:
    """Renders the sketch's topology in black on white at the model's resolution."""
    return SketchRenderer(black_on_white(sketch), scale=resolution / max(sketch.width, sketch.height))


def jitter_points(points: torch.Tensor, size: int, max_shift: float, max_scale: float) -> torch.Tensor:
    """Scale about the canvas centre and shift, by random amounts from the global RNG."""
    centre = torch.tensor([size / 2, size / 2], dtype=points.dtype)
    scale = 1.0 + (torch.rand(()) * 2 - 1) * max_scale
    shift = (torch.rand(2) * 2 - 1) * max_shift * size
    return (points - centre) * scale + centre + shift


def learn_appearance(
    backbone: Backbone,
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
    renderer = model_renderer(sketch, settings.resolution)

    def make_step():
        text = backbone.encode_prompt(prompt)
        backbone.set_adapter_weights({"appearance": 1.0})
        base_points = renderer.points()
        fixed = None if settings.augment else backbone.latent_moments(renderer.render(base_points)[None])

        def step(index: int) -> float:
            if settings.augment:
                points = jitter_points(base_points, settings.resolution, settings.max_shift, settings.max_scale)
                with torch.no_grad():
                    mean, std = backbone.latent_moments(renderer.render(points)[None])
            else:
                mean, std = fixed
            latents = mean + std * torch.randn_like(mean)
            loss = diffusion_loss(backbone, latents, text, random_timesteps(backbone), torch.randn_like(latents))
            loss.backward()
            return loss.item()

        return step

    run = TrainingRun(
        kind="appearance",
        adapters=("appearance",),
        key_parts={"stage_version": APPEARANCE_STAGE_VERSION, "sketch": sketch_content_hash(sketch), "prompt": prompt},
        make_step=make_step,
        trained_on={"sketch_sha256": sketch_content_hash(sketch), "prompt": prompt},
    )
    entry = train_cached(backbone, run, settings, cache or AdapterCache(), events, stop, show_bar)
    return entry / "appearance.safetensors"
