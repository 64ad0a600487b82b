"""The backbone contract: what a stage may ask of a text-to-video diffusion model.

A stage never touches a model's modules. It asks its backbone for
- the sizes it works at, read from the model's configuration: `frame_size` (height, width
  in pixels), `num_frames` (its native clip length), `spatial_factor` (pixels per latent);
- the noise schedule: `num_train_timesteps`, `alphas_cumprod` (ᾱ_t), `add_noise`;
- text and frames: `encode_prompt`, `latent_moments` / `encode_frames` (RGB → latents, with
  gradients), `decode_latents`;
- noise prediction: `predict_noise(z_t, t, text)`, where a single frame is an image (the
  temporal layers bypassed), as MotionDirector trains spatial adapters;
- named LoRA adapters on its spatial or temporal layers, any subset active with any weights:
  `add_adapter`, `delete_adapter`, `set_adapter_weights`, `train_only`, `adapter_tensors`,
  `save_adapter`, `load_adapter`.

A second model is one new module with a class implementing this contract, plus one entry in
`engine/backbones/__init__.py`'s registry.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import torch

from ..errors import SketchAnimatorError

# Which layers each of the method's adapters lives on (paper §3: A-LoRA and A'-LoRA spatial, M-LoRA temporal).
ADAPTER_LAYERS = {"appearance": "spatial", "motion_spatial": "spatial", "motion_temporal": "temporal"}
LAYER_KINDS = ("spatial", "temporal")


class ModelError(SketchAnimatorError):
    """The model is missing, incomplete or does not fit."""


class AdapterError(SketchAnimatorError):
    """A LoRA adapter file cannot be used with this model."""


@dataclass(frozen=True)
class BackboneOptions:
    """How to load and run the model; the defaults suit a 12 GB GPU and also run on CPU."""

    device: str = "auto"  # auto | cuda | mps | cpu
    dtype: str = "auto"  # auto (CUDA/MPS fp16, CPU fp32) | float16 | bfloat16 | float32
    revision: str | None = None
    cache_dir: str | None = None  # Hugging Face cache; None: the standard one
    gradient_checkpointing: bool = True  # recompute activations of the denoiser in backward
    vae_chunk_frames: int = 4  # frames per VAE call (VAE slicing)
    vae_checkpointing: bool = True  # recompute VAE encoder activations in backward
    offload_text_encoder: bool = True  # move the text encoder to CPU once prompts are encoded
    attention: str = "sdpa"  # sdpa | default


class VideoBackbone(ABC):
    """A loaded text-to-video model, seen through the operations the stages use."""

    name: str  # the registry name ("modelscope", …)
    model_name: str  # what the user asked for: a hub id or a folder
    folder: Path
    fingerprint: str  # identifies the base weights an adapter was trained on
    device: torch.device
    dtype: torch.dtype
    options: BackboneOptions

    # ------------------------------------------------------------------ sizes
    @property
    @abstractmethod
    def frame_size(self) -> tuple[int, int]:
        """(height, width) in pixels of the frames the model was trained on."""

    @property
    @abstractmethod
    def num_frames(self) -> int:
        """The clip length the model was trained on (its native window)."""

    @property
    @abstractmethod
    def spatial_factor(self) -> int:
        """Pixels per latent along each side: frame sides must be multiples of it."""

    def frame_size_for(self, resolution: int | None) -> tuple[int, int]:
        """The native frame size, or scaled so its longer side is `resolution` (sides kept multiples of
        `spatial_factor`, at least one latent)."""
        height, width = self.frame_size
        if resolution is None:
            return height, width
        factor = self.spatial_factor
        scale = resolution / max(height, width)
        return tuple(max(factor, factor * round(side * scale / factor)) for side in (height, width))  # type: ignore[return-value]

    # --------------------------------------------------------------- schedule
    @property
    @abstractmethod
    def num_train_timesteps(self) -> int:
        """T: timesteps run 0 … T − 1."""

    @property
    @abstractmethod
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t for t = 0 … T − 1, on the model's device, fp32."""

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """z_t = √ᾱ_t·z_0 + √(1−ᾱ_t)·ε (paper eq. 1), one t per batch element."""
        alphas = self.alphas_cumprod.to(latents.device)[timesteps.to(latents.device)].to(latents.dtype)
        shape = (-1,) + (1,) * (latents.dim() - 1)
        return alphas.sqrt().view(shape) * latents + (1 - alphas).sqrt().view(shape) * noise

    def random_timesteps(self, count: int = 1) -> torch.Tensor:
        """t ~ U{0, …, T−1}, from the global torch RNG (checkpointed, so resume is exact)."""
        return torch.randint(0, self.num_train_timesteps, (count,))

    # ------------------------------------------------------------ text, frames
    @abstractmethod
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """(1, tokens, dim) text embeddings, cached per prompt."""

    @abstractmethod
    def latent_moments(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB frames `(F, 3, H, W)` in [0, 1] → the posterior's scaled mean and std `(1, C, F, h, w)`,
        differentiable with respect to the frames."""

    def encode_frames(self, frames: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """RGB frames → scaled latents `(1, C, F, h, w)`: a posterior sample, or its mean."""
        mean, std = self.latent_moments(frames)
        if not sample:
            return mean
        return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)

    @abstractmethod
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents `(1, C, F, h, w)` → RGB frames `(F, 3, H, W)` in [0, 1]."""

    @abstractmethod
    def predict_noise(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """ε̂ for `(B, C, F, h, w)` latents; one frame runs as an image (temporal layers bypassed)."""

    # --------------------------------------------------------------- adapters
    @abstractmethod
    def add_adapter(self, name: str, rank: int = 32, alpha: float | None = None, layers: str | None = None) -> None:
        """A new LoRA on the `layers` ("spatial" | "temporal"; default from `ADAPTER_LAYERS`), a no-op at first."""

    @abstractmethod
    def delete_adapter(self, name: str) -> None: ...

    @abstractmethod
    def adapter_names(self) -> list[str]: ...

    @abstractmethod
    def set_adapter_weights(self, weights: Mapping[str, float]) -> None:
        """Activate exactly these adapters with these weights (λ in W0 + Σ λ·ΔW); the others are off."""

    @abstractmethod
    def adapter_tensors(self, *names: str) -> dict[str, torch.nn.Parameter]:
        """The named adapters' parameters by name (what a checkpoint saves)."""

    def train_only(self, *names: str) -> list[torch.nn.Parameter]:
        """Make only these adapters' parameters trainable; return them (for the optimiser)."""
        wanted = self.adapter_tensors(*names) if names else {}
        for param in self.parameters():
            param.requires_grad_(False)
        for param in wanted.values():
            param.requires_grad_(True)
        if names and not wanted:
            raise AdapterError(f"adapter(s) {list(names)} have no parameters: add them first")
        return list(wanted.values())

    @abstractmethod
    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """Every parameter of every component (to freeze them)."""

    @abstractmethod
    def save_adapter(self, name: str, path: str | os.PathLike, trained_on: Mapping | None = None) -> Path: ...

    @abstractmethod
    def load_adapter(self, name: str, path: str | os.PathLike) -> dict:
        """Load an adapter saved by `save_adapter` under `name`; refuse one from another base model."""


@contextlib.contextmanager
def out_of_memory_explained(stage: str) -> Iterator[None]:
    """Turn a GPU out-of-memory error into one line that says which options lower memory."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise SketchAnimatorError(
            f"out of GPU memory during {stage}: choose the Draft preset or fewer frames (--frames 8), a lower LoRA rank "
            "(--rank 16), keep gradient checkpointing on, or close other programs using the GPU"
        ) from None
