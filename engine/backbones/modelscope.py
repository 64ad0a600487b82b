"""ModelScope T2V (diffusers layout: a 3D UNet, the Stable Diffusion VAE, a CLIP text tower, DDIM),
implementing the backbone contract (engine/backbones/base.py). Zeroscope checkpoints share it.

This module loads the model component by component (the all-in-one text-to-video pipeline
is deprecated in diffusers), names the UNet's spatial and temporal LoRA targets, and adds
what stock diffusers lacks for this UNet: the PEFT adapter mixin, block-wise gradient
checkpointing and the single-frame bypass. Sizes come from the configs: the frame size is
the UNet's `sample_size` times the VAE's downsampling.

Single-frame mode. When the UNet sees one frame, its temporal layers (`transformer_in`,
every `temp_attentions.*` and `temp_convs.*`) are bypassed, as MotionDirector does. A
single image is not a one-frame video: the temporal convolutions would mix it with their
zero padding and the temporal attention would attend over one token, shifting features in
ways the model never saw in training. Bypassing them makes a frame a plain image to the
spatial layers, so a spatial adapter trained on single frames (stages 1 and 2) learns
appearance only, and no gradient from a single-frame loss reaches a temporal adapter.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
import torch.utils.checkpoint
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from diffusers.loaders.peft import PeftAdapterMixin
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModelOutput

from . import BackboneEntry
from .base import BackboneOptions, ModelError, VideoBackbone
from .devices import choose_device, choose_dtype
from .lora import PeftAdapters
from .quiet import quiet_library_progress_bars, quiet_transformers

# The ModelScope T2V 1.7B configuration as we know it (design.md §5): what the benchmarks build with
# random weights, and what the tiny test model (engine/backbones/tiny.py) is derived from.
UNET_CONFIG = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    norm_num_groups=32,
    cross_attention_dim=1024,
    attention_head_dim=64,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=256,
    scaling_factor=0.18215,
)
TEXT_CONFIG = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
)  # fmt: skip
SCHEDULER_CONFIG = dict(  # DDIM, scaled-linear betas 0.00085–0.012, ε-prediction
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHT_STEMS = {"unet": ("diffusion_pytorch_model",), "vae": ("diffusion_pytorch_model",), "text_encoder": ("model", "pytorch_model")}
WEIGHT_SUFFIXES = (".safetensors", ".bin")
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")

# LoRA targets, as PEFT regular expressions over module names (full match). Spatial: the
# attention and feed-forward linears of the spatial transformers, `…attentions.N.…`, which
# the leading dot keeps apart from `…temp_attentions.N.…`. Temporal: the same linears in
# `temp_attentions.*` and in `transformer_in`.
_ATTENTION_LINEARS = r"transformer_blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)|attn2\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2))"
SPATIAL_TARGETS = rf".*\.attentions\.\d+\.{_ATTENTION_LINEARS}"
TEMPORAL_TARGETS = rf"(.*\.temp_attentions\.\d+|transformer_in)\.{_ATTENTION_LINEARS}"
LAYER_TARGETS = {"spatial": SPATIAL_TARGETS, "temporal": TEMPORAL_TARGETS}


# ----------------------------------------------------------------------------- the UNet
class VideoUNet(UNet3DConditionModel, PeftAdapterMixin):
    """UNet3DConditionModel with diffusers' PEFT adapter API and single-frame bypass.

    Stock UNet3DConditionModel lacks `PeftAdapterMixin`, so it has no `add_adapter`,
    `set_adapters`, `save_lora_adapter` or `load_lora_adapter` (diffusers #6640).
    """

    def forward(self, *args, **kwargs):  # type: ignore[override]
        install_single_frame_bypass(self)
        return super().forward(*args, **kwargs)

    def enable_block_checkpointing(self) -> None:
        """Recompute `transformer_in`'s and each down, mid and up block's activations during backward.

        Stock diffusers declares gradient checkpointing unsupported for this class (its 3D
        blocks never read their `gradient_checkpointing` flag), so blocks are wrapped here.
        """
        blocks = [self.transformer_in, *self.down_blocks, self.mid_block, *self.up_blocks]
        for block in blocks:
            if block is not None and "forward" not in vars(block):
                block.forward = _checkpointed(block.forward)


def temporal_modules(unet: UNet3DConditionModel) -> list[torch.nn.Module]:
    """`transformer_in`, every temporal attention and every temporal convolution."""
    found = [unet.transformer_in]
    for name, module in unet.named_modules():
        if re.search(r"\.temp_(attentions|convs)\.\d+$", name):
            found.append(module)
    return found


def install_single_frame_bypass(unet: UNet3DConditionModel) -> None:
    """Make every temporal module of a 3D UNet the identity when called with one frame (idempotent).

    Also used on a plain UNet3DConditionModel while the toy model is trained, so that its image
    mode is the one stages 1 and 2 use."""
    if getattr(unet, "_single_frame_bypass", False):
        return
    for module in temporal_modules(unet):
        module.forward = _skipped_for_single_frames(module.forward)
    unet._single_frame_bypass = True


def _checkpointed(forward):
    @functools.wraps(forward)  # keeps the signature, which the single-frame bypass reads
    def run(*args, **kwargs):
        if torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)

    return run


def _skipped_for_single_frames(forward):
    """Wrap a temporal module's forward: the identity when it is called with num_frames == 1.

    The decision depends only on the call's arguments, so activation checkpointing, which
    re-runs the forward during backward, recomputes exactly what was computed.
    """

    signature = inspect.signature(forward)

    def run(*args, **kwargs):
        call = signature.bind(*args, **kwargs)
        if call.arguments.get("num_frames", 1) != 1:
            return forward(*args, **kwargs)
        hidden_states = call.arguments["hidden_states"]
        if "return_dict" not in signature.parameters:  # TemporalConvLayer
            return hidden_states
        if call.arguments.get("return_dict", True):  # TransformerTemporalModel
            return TransformerTemporalModelOutput(sample=hidden_states)
        return (hidden_states,)

    return run


# -------------------------------------------------------------------- model folder
def check_model_folder(folder: Path, name: str) -> None:
    """Refuse a folder that lacks any file the engine needs (a half-finished download)."""
    missing = [str(Path(c) / "config.json") for c in ("unet", "vae", "text_encoder") if not (folder / c / "config.json").is_file()]
    missing += [f"{c}/{WEIGHT_STEMS[c][0]}.safetensors" for c in WEIGHT_STEMS if (folder / c / "config.json").is_file() and not _weight_files(folder / c, c)]
    missing += [f"tokenizer/{f}" for f in TOKENIZER_FILES if not (folder / "tokenizer" / f).is_file()]
    if not (folder / "scheduler" / "scheduler_config.json").is_file():
        missing.append("scheduler/scheduler_config.json")
    if not (folder / "model_index.json").is_file():
        missing.append("model_index.json")
    if missing:
        raise ModelError(
            f"model {name} at {folder} is incomplete (missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}): "
            f"run `python -m engine download {name}` again"
        )


def _weight_files(folder: Path, component: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(WEIGHT_STEMS[component]) and p.suffix in WEIGHT_SUFFIXES]


def _variant_for(folder: Path, component: str, dtype: torch.dtype) -> str | None:
    """Use the fp16 weight files when loading in half precision and they exist."""
    names = [p.name for p in _weight_files(folder, component)]
    has_fp16 = any(".fp16." in n for n in names)
    has_full = any(".fp16." not in n for n in names)
    return "fp16" if has_fp16 and (dtype == torch.float16 or not has_full) else None


def model_fingerprint(folder: Path) -> str:
    """Identifies the base weights an adapter was trained on: UNet config + weights' head and size."""
    digest = hashlib.sha256()
    digest.update((folder / "unet" / "config.json").read_bytes())
    for weights in sorted(_weight_files(folder / "unet", "unet")):
        digest.update(str(weights.stat().st_size).encode())
        with open(weights, "rb") as handle:
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:32]


@dataclass
class ModelScopeBackbone(PeftAdapters, VideoBackbone):
    """The loaded components of a ModelScope-layout model and the contract's operations on them."""

    unet: VideoUNet
    vae: AutoencoderKL
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler: DDIMScheduler
    device: torch.device
    dtype: torch.dtype
    model_name: str
    folder: Path
    fingerprint: str
    options: BackboneOptions
    name: str = "modelscope"
    native_frame_size: tuple[int, int] | None = None  # when the checkpoint was trained at another size than its config says
    native_num_frames: int = 16
    layer_targets: dict[str, str] = field(default_factory=lambda: dict(LAYER_TARGETS))
    _prompt_cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    # ------------------------------------------------------------------ sizes
    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def frame_size(self) -> tuple[int, int]:
        if self.native_frame_size is not None:
            return tuple(self.native_frame_size)  # type: ignore[return-value]
        sample = self.unet.config.sample_size
        height, width = (sample, sample) if isinstance(sample, int) else tuple(sample)
        return height * self.spatial_factor, width * self.spatial_factor

    @property
    def num_frames(self) -> int:
        return self.native_num_frames

    # --------------------------------------------------------------- schedule
    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.scheduler.alphas_cumprod.to(self.device).float()

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(latents, noise, timesteps)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        for module in (self.unet, self.vae, self.text_encoder):
            yield from module.parameters()

    # ------------------------------------------------------------------ text
    @torch.no_grad()
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        if prompt not in self._prompt_cache:
            self.text_encoder.to(self.device)
            tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt")
            embedding = self.text_encoder(tokens.input_ids.to(self.device))[0]
            self._prompt_cache[prompt] = embedding.to(self.dtype)
            if self.options.offload_text_encoder and self.device.type != "cpu":
                self.text_encoder.to("cpu")
        return self._prompt_cache[prompt]

    # ---------------------------------------------------------------- frames
    def latent_moments(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames go through the encoder `vae_chunk_frames` at a time (VAE slicing), each chunk
        recomputed in backward when `vae_checkpointing` and the frames need gradients."""
        means, stds = [], []
        for chunk in frames.split(self.options.vae_chunk_frames):
            pixels = chunk.to(self.device, self.dtype) * 2.0 - 1.0
            if self.options.vae_checkpointing and torch.is_grad_enabled() and pixels.requires_grad:
                moments = torch.utils.checkpoint.checkpoint(self._vae_moments, pixels, use_reentrant=False)
            else:
                moments = self._vae_moments(pixels)
            mean, logvar = moments.chunk(2, dim=1)
            means.append(mean)
            stds.append(torch.exp(0.5 * logvar.clamp(-30.0, 20.0)))
        scale = self.vae.config.scaling_factor
        as_video = lambda x: (torch.cat(x) * scale).permute(1, 0, 2, 3).unsqueeze(0)  # noqa: E731
        return as_video(means), as_video(stds)

    def _vae_moments(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.quant_conv(self.vae.encoder(pixels)) if self.vae.quant_conv is not None else self.vae.encoder(pixels)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        frames = latents[0].permute(1, 0, 2, 3) / self.vae.config.scaling_factor
        images = [self.vae.decode(chunk.to(self.dtype)).sample for chunk in frames.split(self.options.vae_chunk_frames)]
        return ((torch.cat(images).float() + 1.0) / 2.0).clamp(0, 1)

    def predict_noise(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.unet(noisy_latents.to(self.dtype), timesteps.to(self.device), encoder_hidden_states=text.to(self.dtype)).sample

    # ------------------------------------------------------------- loading
    @classmethod
    def check_folder(cls, folder: Path, name: str) -> None:
        check_model_folder(folder, name)

    @classmethod
    def select_download_files(cls, repo_files: list[str]) -> list[str]:
        return select_download_files(repo_files)

    @classmethod
    def load(cls, folder: Path, model_name: str, options: BackboneOptions, entry: BackboneEntry) -> "ModelScopeBackbone":
        """Load the five components from a checked model folder (never downloads)."""
        from transformers import CLIPTextModel, CLIPTokenizer

        device = choose_device(options.device)
        dtype = choose_dtype(options.dtype, device)
        quiet_library_progress_bars()
        try:
            with quiet_transformers():
                unet = VideoUNet.from_pretrained(folder / "unet", torch_dtype=dtype, variant=_variant_for(folder / "unet", "unet", dtype), local_files_only=True)
                vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=dtype, variant=_variant_for(folder / "vae", "vae", dtype), local_files_only=True)
                text_encoder = CLIPTextModel.from_pretrained(
                    folder / "text_encoder", torch_dtype=dtype, variant=_variant_for(folder / "text_encoder", "text_encoder", dtype), local_files_only=True
                )
                tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
                scheduler = DDIMScheduler.from_pretrained(folder / "scheduler", local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"model {model_name} at {folder} could not be loaded ({str(exc).splitlines()[0]}): run `python -m engine download {model_name}` again") from None

        for module in (unet, vae, text_encoder):
            module.requires_grad_(False)
            module.eval()
        if options.attention == "sdpa":
            from diffusers.models.attention_processor import AttnProcessor2_0

            unet.set_attn_processor(AttnProcessor2_0())
        if options.gradient_checkpointing:
            unet.enable_block_checkpointing()
        unet.to(device)
        vae.to(device)
        text_encoder.to(device if not options.offload_text_encoder or device.type == "cpu" else "cpu")
        return cls(
            unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler, device=device, dtype=dtype,
            model_name=model_name, folder=folder, fingerprint=model_fingerprint(folder), options=options,
            name=entry.name, native_frame_size=entry.frame_size, native_num_frames=entry.num_frames,
        )  # fmt: skip


# ------------------------------------------------------------------------ download
def select_download_files(repo_files: list[str]) -> list[str]:
    """The files the engine uses from a model repo: configs, tokenizer, one weight file per component.

    Weights: fp16 safetensors where the repo has them, else safetensors, else .bin.
    """
    chosen = ["model_index.json", "scheduler/scheduler_config.json"] + [f"tokenizer/{f}" for f in TOKENIZER_FILES]
    chosen += [f for f in repo_files if f in ("tokenizer/special_tokens_map.json",)]
    for component, stems in WEIGHT_STEMS.items():
        chosen.append(f"{component}/config.json")
        candidates = [f"{component}/{stem}{kind}" for kind in (".fp16.safetensors", ".safetensors", ".fp16.bin", ".bin") for stem in stems]
        found = [c for c in candidates if c in repo_files]
        if found:
            chosen.append(found[0])
        else:
            chosen.extend(f for f in repo_files if f.startswith(f"{component}/") and "-of-" in f or f.startswith(f"{component}/") and f.endswith("index.json"))
    return [f for f in chosen if f in repo_files]
