"""The video diffusion backbone: ModelScope T2V (diffusers layout) carrying named LoRA adapters.

The three stages share one model. Stage 1 trains `appearance`, stage 2 `motion_spatial` and
`motion_temporal`, stage 3 runs with `appearance` at 0.5 and `motion_temporal` at 1.0
(paper eq. 9). This module loads the model component by component (the all-in-one
text-to-video pipeline is deprecated in diffusers), adds the adapters, and offers the few
operations the stages need: encode prompts (cached), encode frames with the VAE, predict
noise, and save / load adapters with metadata.

Single-frame mode. When the UNet sees one frame, its temporal layers (`transformer_in`,
every `temp_attentions.*` and `temp_convs.*`) are bypassed, as MotionDirector does. A
single image is not a one-frame video: the temporal convolutions would mix it with their
zero padding and the temporal attention would attend over one token, shifting features in
ways the model never saw in training. Bypassing them makes a frame a plain image to the
spatial layers, so a spatial adapter trained on single frames (stages 1 and 2) learns
appearance only, and no gradient from a single-frame loss reaches a temporal adapter.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import torch
import torch.utils.checkpoint
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from diffusers.loaders.peft import PeftAdapterMixin
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModelOutput

from .devices import choose_device, choose_dtype
from .errors import SketchAnimatorError
from .quiet import quiet_transformers

DEFAULT_MODEL = "ali-vilab/text-to-video-ms-1.7b"
MODEL_RESOLUTION = 256  # frames the model sees, in pixels (latents 32×32)
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
ADAPTER_TARGETS = {"appearance": SPATIAL_TARGETS, "motion_spatial": SPATIAL_TARGETS, "motion_temporal": TEMPORAL_TARGETS}
ADAPTER_FORMAT = "sketch-animator/lora"
ADAPTER_FORMAT_VERSION = 1


class ModelError(SketchAnimatorError):
    """The model is missing, incomplete or does not fit."""


class AdapterError(SketchAnimatorError):
    """A LoRA adapter file cannot be used with this model."""


# ----------------------------------------------------------------------------- the UNet
class VideoUNet(UNet3DConditionModel, PeftAdapterMixin):
    """UNet3DConditionModel with diffusers' PEFT adapter API and single-frame bypass.

    Stock UNet3DConditionModel lacks `PeftAdapterMixin`, so it has no `add_adapter`,
    `set_adapters`, `save_lora_adapter` or `load_lora_adapter` (diffusers #6640).
    """

    def forward(self, *args, **kwargs):  # type: ignore[override]
        self.install_single_frame_bypass()
        return super().forward(*args, **kwargs)

    def install_single_frame_bypass(self) -> None:
        """Make every temporal module the identity when called with one frame (idempotent)."""
        if getattr(self, "_single_frame_bypass", False):
            return
        for module in self.temporal_modules():
            module.forward = _skipped_for_single_frames(module.forward)
        self._single_frame_bypass = True

    def enable_block_checkpointing(self) -> None:
        """Recompute `transformer_in`'s and each down, mid and up block's activations during backward.

        Stock diffusers declares gradient checkpointing unsupported for this class (its 3D
        blocks never read their `gradient_checkpointing` flag), so blocks are wrapped here.
        """
        blocks = [self.transformer_in, *self.down_blocks, self.mid_block, *self.up_blocks]
        for block in blocks:
            if block is not None and "forward" not in vars(block):
                block.forward = _checkpointed(block.forward)

    def temporal_modules(self) -> list[torch.nn.Module]:
        """`transformer_in`, every temporal attention and every temporal convolution."""
        found = [self.transformer_in]
        for name, module in self.named_modules():
            if re.search(r"\.temp_(attentions|convs)\.\d+$", name):
                found.append(module)
        return found


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


# ------------------------------------------------------------------------ options
@dataclass(frozen=True)
class BackboneOptions:
    """How to load and run the model; the defaults suit a 12 GB GPU and also run on CPU."""

    device: str = "auto"  # auto | cuda | mps | cpu
    dtype: str = "auto"  # auto (CUDA/MPS fp16, CPU fp32) | float16 | bfloat16 | float32
    revision: str | None = None
    cache_dir: str | None = None  # Hugging Face cache; None: the standard one
    gradient_checkpointing: bool = True  # recompute UNet activations in backward
    vae_chunk_frames: int = 4  # frames per VAE call (VAE slicing)
    vae_checkpointing: bool = True  # recompute VAE encoder activations in backward
    offload_text_encoder: bool = True  # move the text encoder to CPU once prompts are encoded
    attention: str = "sdpa"  # sdpa | default


# -------------------------------------------------------------------- model folder
def resolve_model_dir(model: str | os.PathLike = DEFAULT_MODEL, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """The local folder of a model given by folder or hub id, without any network access."""
    path = Path(model).expanduser()
    if path.exists():
        check_model_folder(path, str(model))
        return path
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(model)):
        raise ModelError(f"model {model!r} is neither a folder nor a Hugging Face model id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id=str(model), revision=revision, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise ModelError(f"model {model} is not downloaded: run `python -m engine download {model}`") from None
    check_model_folder(folder, str(model))
    return folder


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


# ------------------------------------------------------------------------ backbone
@dataclass
class Backbone:
    """The loaded model components and the operations the stages use."""

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
    _prompt_cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ text
    @torch.no_grad()
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """(1, tokens, dim) text embeddings, computed once per prompt and cached."""
        if prompt not in self._prompt_cache:
            self.text_encoder.to(self.device)
            tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt")
            embedding = self.text_encoder(tokens.input_ids.to(self.device))[0]
            self._prompt_cache[prompt] = embedding.to(self.dtype)
            if self.options.offload_text_encoder and self.device.type != "cpu":
                self.text_encoder.to("cpu")
        return self._prompt_cache[prompt]

    # ---------------------------------------------------------------- frames
    def encode_frames(self, frames: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """RGB frames `(F, 3, H, W)` in [0, 1] → scaled latents `(1, C, F, H/8, W/8)`.

        Differentiable w.r.t. the frames (stage 3 needs it). `sample` draws from the VAE's
        posterior (as in training), otherwise its mean is used.
        """
        mean, std = self.latent_moments(frames)
        if not sample:
            return mean
        return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)

    def latent_moments(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE posterior's scaled mean and std, each `(1, C, F, H/8, W/8)`.

        Frames go through the encoder `vae_chunk_frames` at a time (VAE slicing), each chunk
        recomputed in backward when `vae_checkpointing` and the frames need gradients.
        """
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
        """Scaled latents `(1, C, F, h, w)` → RGB frames `(F, 3, H, W)` in [0, 1] (previews)."""
        frames = latents[0].permute(1, 0, 2, 3) / self.vae.config.scaling_factor
        images = [self.vae.decode(chunk.to(self.dtype)).sample for chunk in frames.split(self.options.vae_chunk_frames)]
        return ((torch.cat(images).float() + 1.0) / 2.0).clamp(0, 1)

    def predict_noise(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """ε̂ for `(B, C, F, h, w)` latents; one frame runs with the temporal layers bypassed."""
        return self.unet(noisy_latents.to(self.dtype), timesteps.to(self.device), encoder_hidden_states=text.to(self.dtype)).sample

    # -------------------------------------------------------------- adapters
    def add_adapter(self, name: str, rank: int = 32, alpha: float | None = None, targets: str | None = None) -> None:
        """Add a LoRA adapter (B initialised to zero, so it starts as a no-op)."""
        from peft import LoraConfig

        if name in self.adapter_names():
            raise AdapterError(f"adapter {name!r} already exists on the UNet")
        targets = targets or ADAPTER_TARGETS.get(name)
        if targets is None:
            raise AdapterError(f"adapter {name!r} has no default targets: use one of {sorted(ADAPTER_TARGETS)} or pass targets")
        config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, target_modules=targets, init_lora_weights=True)
        self._add_peft_adapter(config, name)
        self.unet.to(self.device)
        lora_params = [p for n, p in self.unet.named_parameters() if f".{name}." in n]
        for p in lora_params:  # adapters are trained in fp32 even when the base is fp16
            p.data = p.data.float()

    def _add_peft_adapter(self, config, name: str) -> None:
        with warnings.catch_warnings():  # PEFT warns that a second adapter makes "multiple adapters": intended
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            self.unet.add_adapter(config, adapter_name=name)

    def adapter_names(self) -> list[str]:
        return list(getattr(self.unet, "peft_config", {}) or {})

    def set_adapter_weights(self, weights: Mapping[str, float]) -> None:
        """Activate exactly these adapters with these weights (λ in W0 + Σ λ·ΔW); others off."""
        unknown = set(weights) - set(self.adapter_names())
        if unknown:
            raise AdapterError(f"adapter(s) {sorted(unknown)} are not loaded: train or load them first")
        if not weights:
            self.unet.disable_adapters()
            return
        self.unet.enable_adapters()
        self.unet.set_adapters(list(weights), [float(w) for w in weights.values()])

    def train_only(self, *names: str) -> list[torch.nn.Parameter]:
        """Make only these adapters' parameters trainable; return them (for the optimiser)."""
        trainable = []
        for param_name, param in self.unet.named_parameters():
            param.requires_grad_(any(f".{n}." in param_name for n in names))
            if param.requires_grad:
                trainable.append(param)
        for module in (self.vae, self.text_encoder):
            module.requires_grad_(False)
        if not trainable and names:
            raise AdapterError(f"adapter(s) {list(names)} have no parameters: add them first")
        return trainable

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        """The adapter's LoRA matrices with PEFT/diffusers keys (`…to_q.lora_A.weight`)."""
        from peft.utils import get_peft_model_state_dict

        return {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(self.unet, adapter_name=name).items()}

    def save_adapter(self, name: str, path: str | os.PathLike, trained_on: Mapping | None = None) -> Path:
        """Save one adapter as .safetensors in diffusers' LoRA format, plus our metadata."""
        from safetensors.torch import save_file

        from .files import atomic_write

        config = self.unet.peft_config[name]
        lora_config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.to_dict().items()}
        ours = {
            "format": ADAPTER_FORMAT,
            "version": ADAPTER_FORMAT_VERSION,
            "adapter": name,
            "base_model": self.model_name,
            "base_fingerprint": self.fingerprint,
            "rank": config.r,
            "alpha": config.lora_alpha,
            "targets": config.target_modules if isinstance(config.target_modules, str) else sorted(config.target_modules),
            "trained_on": dict(trained_on or {}),
        }
        metadata = {"format": "pt", "lora_adapter_metadata": json.dumps(lora_config, sort_keys=True), "sketch_animator": json.dumps(ours, sort_keys=True)}
        state = self.adapter_state(name)
        return atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))

    def load_adapter(self, name: str, path: str | os.PathLike) -> dict:
        """Load an adapter saved by `save_adapter` under `name`; refuse one from another base model."""
        from peft import LoraConfig
        from peft.utils import set_peft_model_state_dict
        from safetensors import safe_open

        info = read_adapter_metadata(path)
        if info["base_fingerprint"] != self.fingerprint:
            raise AdapterError(
                f"adapter {Path(path).name} was trained on {info['base_model']} (fingerprint {info['base_fingerprint'][:8]}), "
                f"not on the loaded {self.model_name} ({self.fingerprint[:8]}): retrain it for this model"
            )
        if name in self.adapter_names():
            self.unet.delete_adapters(name)
        with safe_open(str(path), framework="pt") as handle:
            state = {k: handle.get_tensor(k) for k in handle.keys()}
        lora_config = json.loads(info["_lora_adapter_metadata"])
        config = LoraConfig(**{k: v for k, v in lora_config.items() if k in LoraConfig.__dataclass_fields__})
        self._add_peft_adapter(config, name)
        result = set_peft_model_state_dict(self.unet, state, adapter_name=name)
        if getattr(result, "unexpected_keys", None):
            raise AdapterError(f"adapter {Path(path).name} has weights for layers this model lacks ({result.unexpected_keys[0]} …)")
        self.unet.to(self.device)
        for n, p in self.unet.named_parameters():
            if f".{name}." in n:
                p.data = p.data.float()
        return info


def read_adapter_metadata(path: str | os.PathLike) -> dict:
    """Our metadata from an adapter file, or a one-line error naming what is wrong."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"adapter file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise AdapterError(f"adapter file {path} is not a valid safetensors file ({exc}): delete it and retrain") from None
    if "sketch_animator" not in metadata or "lora_adapter_metadata" not in metadata:
        raise AdapterError(f"adapter file {path} has no Sketch Animator metadata: it was not saved by this engine")
    info = json.loads(metadata["sketch_animator"])
    if info.get("version") != ADAPTER_FORMAT_VERSION:
        raise AdapterError(f"adapter file {path} has format version {info.get('version')}; this engine reads {ADAPTER_FORMAT_VERSION}: retrain it")
    info["_lora_adapter_metadata"] = metadata["lora_adapter_metadata"]
    return info


def load_backbone(model: str | os.PathLike = DEFAULT_MODEL, options: BackboneOptions | None = None) -> Backbone:
    """Load the five components from a hub id (already downloaded) or a local folder.

    Never downloads: a missing model is a one-line `ModelError` naming `python -m engine download`.
    """
    from transformers import CLIPTextModel, CLIPTokenizer

    options = options or BackboneOptions()
    folder = resolve_model_dir(model, options.revision, options.cache_dir)
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
        raise ModelError(f"model {model} at {folder} could not be loaded ({str(exc).splitlines()[0]}): run `python -m engine download {model}` again") from None

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
    return Backbone(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        device=device,
        dtype=dtype,
        model_name=str(model),
        folder=folder,
        fingerprint=model_fingerprint(folder),
        options=options,
    )


def model_or_embedded_tiny(model: str | None = None, options: BackboneOptions | None = None) -> tuple[str, str | None]:
    """The model to use and, when it is the embedded tiny one, a sentence that says so.

    An explicitly given model must exist (a `ModelError` otherwise); with none given, the
    default ModelScope model is used when downloaded, else the tiny random model.
    """
    options = options or BackboneOptions()
    if model is not None:
        return str(resolve_model_dir(model, options.revision, options.cache_dir)), None
    try:
        return str(resolve_model_dir(DEFAULT_MODEL, options.revision, options.cache_dir)), None
    except ModelError:
        from .tiny import ensure_tiny_model

        note = (
            f"{DEFAULT_MODEL} is not downloaded, so the embedded tiny model with random weights is used: "
            f"the motion it produces is meaningless. For real results run `python -m engine download` (about 3.5 GB)."
        )
        return str(ensure_tiny_model()), note


def quiet_library_progress_bars() -> None:
    """Loading a local model is quick: the libraries' per-file bars would only clutter the log."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


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


def download_model(model: str = DEFAULT_MODEL, revision: str | None = None, cache_dir: str | None = None, local_dir: str | None = None) -> Path:
    """Fetch only the files the engine uses, with a progress bar, into the HF cache or `local_dir`."""
    from huggingface_hub import HfApi, snapshot_download

    try:
        files = HfApi().list_repo_files(model, revision=revision)
    except Exception as exc:  # network errors, unknown repos: one line, not a traceback
        raise ModelError(f"cannot list the files of {model} on the Hugging Face Hub ({type(exc).__name__}): check the model id and your connection") from None
    wanted = select_download_files(files)
    try:
        folder = snapshot_download(repo_id=model, revision=revision, cache_dir=cache_dir, local_dir=local_dir, allow_patterns=wanted)
    except Exception as exc:
        raise ModelError(f"download of {model} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): run the command again to resume") from None
    check_model_folder(Path(folder), model)
    return Path(folder)
