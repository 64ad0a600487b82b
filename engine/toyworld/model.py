"""The toy text-to-video model: trained here, on the toy world, in exactly ModelScope's hub layout.

Real weights cannot be downloaded where the engine is tested, so this is the learned prior the
method is measured on. Its classes, module names and folder are the real ones
(UNet3DConditionModel with `transformer_in` and `temp_attentions`, AutoencoderKL, a CLIP text
tower with a locally built tokenizer, DDIM's scheduler config, `model_index.json`), so it loads
through `engine.backbones.load_backbone` exactly like ModelScope; only the widths, the block
count and the frame size are its own: 64 px frames, 8 frames, a VAE that downsamples 4× (16×16
latents).

The recipe (`ToyRecipe`) fixes everything that determines the weights: the world, the widths,
the steps, the seed and the CPU thread count (a summation order depends on it). A model is built
once per recipe into the cache, by one command (`python -m engine toy-model`), in three parts
that share one clip set drawn by the engine's rasterizer:
1. the VAE on single frames (L1, heavier on ink, a small KL);
2. the clips encoded once to posterior means and standard deviations; the latent scale
   (`scaling_factor`) is set so the latents have unit standard deviation, as Stable Diffusion's;
3. the UNet and the text tower together, with ModelScope's DDPM loss (ε-prediction, scaled-linear
   betas), on video batches and single-frame image batches (temporal layers bypassed, the image
   mode stages 1 and 2 train in). Captions: the full one ("a star moving left"), the neutral one
   ("a shape moving"), the subject alone, or empty (for classifier-free guidance).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .motions import NEUTRAL_PROMPT
from .world import WorldConfig, caption, random_clip, render_clip, subject_prompt, training_pairs, vocabulary

TOY_RECIPE_VERSION = 1
RECIPE_FILE = "toy_recipe.json"
TRAINING_LOG = "toy_training.json"


@dataclass(frozen=True)
class ToyRecipe:
    """Everything that determines the toy model's weights (its hash names the cached model)."""

    seed: int = 0
    world: WorldConfig = field(default_factory=WorldConfig)
    clips: int = 3000  # distinct clips drawn once and reused
    vae_channels: tuple[int, ...] = (16, 32, 64, 64)  # four blocks: 8× downsampling, as ModelScope's VAE
    vae_steps: int = 350
    vae_batch: int = 32  # frames
    vae_lr: float = 2e-3
    unet_channels: tuple[int, ...] = (32, 64, 64)
    unet_heads: int = 4
    text_width: int = 64
    text_layers: int = 2
    text_steps: int = 300  # the text tower first learns to tell captions apart
    noise_shift: float = 4.0  # SNR divided by its square: the schedule shifted for small latents
    steps: int = 1700
    batch: int = 16  # clips per step
    image_batch: int = 4  # single frames per step (image mode)
    lr: float = 2e-3
    caption_mix: tuple[float, float, float, float] = (0.7, 0.1, 0.1, 0.1)  # full, neutral, subject only, empty
    threads: int = 2  # torch CPU threads: results depend on the summation order, so the count is part of the recipe

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["world"] = self.world.to_dict()
        return {"version": TOY_RECIPE_VERSION, **data}

    def key(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- configs
def unet_config(recipe: ToyRecipe) -> dict:
    """ModelScope's UNet configuration at the toy's sizes: spatial cross-attention below full resolution,
    where the motion words only need coarse positions, and no attention at 16×16 (the costliest)."""
    from ..backbones.modelscope import UNET_CONFIG

    count = len(recipe.unet_channels)
    return {
        **UNET_CONFIG,
        "sample_size": recipe.world.canvas // 2 ** (len(recipe.vae_channels) - 1),
        "block_out_channels": tuple(recipe.unet_channels),
        "down_block_types": ("DownBlock3D",) + ("CrossAttnDownBlock3D",) * (count - 1),
        "up_block_types": ("CrossAttnUpBlock3D",) * (count - 1) + ("UpBlock3D",),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "cross_attention_dim": recipe.text_width,
        "attention_head_dim": recipe.unet_heads,  # UNet3DConditionModel reads it as the number of heads
    }


def vae_config(recipe: ToyRecipe) -> dict:
    from ..backbones.modelscope import VAE_CONFIG

    count = len(recipe.vae_channels)
    return {
        **VAE_CONFIG,
        "down_block_types": ("DownEncoderBlock2D",) * count,
        "up_block_types": ("UpDecoderBlock2D",) * count,
        "block_out_channels": tuple(recipe.vae_channels),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": recipe.world.canvas,
        "mid_block_add_attention": False,
    }


def text_config(recipe: ToyRecipe, vocab: dict[str, int], max_length: int) -> dict:
    from ..backbones.tiny import tiny_text_config

    width = recipe.text_width
    return {
        **tiny_text_config(vocab, width), "num_hidden_layers": recipe.text_layers, "num_attention_heads": 4,
        "intermediate_size": 2 * width, "max_position_embeddings": max_length,
    }  # fmt: skip


def caption_length() -> int:
    """Tokens a caption needs: the longest caption's words, start and end."""
    return 2 + max(len(caption("stick figure", "up-right").split()), len(NEUTRAL_PROMPT.split()))


# ----------------------------------------------------------------------------- training
@dataclass
class ClipSet:
    """The clips the model learns from: grey frames, captions and the subjects' names."""

    frames: np.ndarray  # (N, F, H, W) uint8
    captions: list[str]
    subjects: list[str]


def draw_clips(recipe: ToyRecipe, rng: np.random.Generator) -> ClipSet:
    pairs = training_pairs()
    clips = [random_clip(rng, recipe.world, pairs) for _ in range(recipe.clips)]
    frames = np.stack([render_clip(clip, recipe.world.canvas) for clip in clips])
    return ClipSet(frames, [clip.caption for clip in clips], [clip.subject for clip in clips])


def to_pixels(grey):
    """uint8 grey frames (..., H, W) → RGB in [-1, 1] (..., 3, H, W), the VAE's input."""
    import torch

    values = torch.as_tensor(grey).float() / 127.5 - 1.0
    return values.unsqueeze(-3).expand(*values.shape[:-2], 3, *values.shape[-2:])


Report = Callable[[str, int, int, float], None]


def train_vae(recipe: ToyRecipe, clips: ClipSet, report: Report, log: dict):
    """An AutoencoderKL on single frames: L1 weighted 5× on ink (lines are a few % of the pixels), KL 1e-6.

    After training its posterior's variance is fixed tiny (the log-variance rows of `quant_conv` set to
    a constant): a latent is then a function of the frame, as with Stable Diffusion's VAE, whose
    posterior spread is negligible. With the few hundred steps a toy VAE gets, its learned spread
    is still about a third of the latents' own, and a denoiser would have to model that noise too."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(recipe.seed + 1)
    vae = AutoencoderKL(**vae_config(recipe))
    optimizer = torch.optim.AdamW(vae.parameters(), lr=recipe.vae_lr, weight_decay=0.0)
    frames = torch.from_numpy(clips.frames.reshape(-1, *clips.frames.shape[-2:]))
    generator = torch.Generator().manual_seed(recipe.seed + 2)
    losses = []
    for step in range(recipe.vae_steps):
        pixels = to_pixels(frames[torch.randint(0, len(frames), (recipe.vae_batch,), generator=generator)])
        posterior = vae.encode(pixels).latent_dist
        decoded = vae.decode(posterior.sample(generator=generator)).sample
        ink_weight = 1.0 + 4.0 * (pixels < 0.5).float()
        loss = ((decoded - pixels).abs() * ink_weight).mean() + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        report("vae", step + 1, recipe.vae_steps, losses[-1])
    log["vae_loss"] = losses
    with torch.no_grad():
        channels = vae.config.latent_channels
        vae.quant_conv.weight[channels:] = 0.0
        vae.quant_conv.bias[channels:] = DETERMINISTIC_LOG_VARIANCE
    return vae.eval().requires_grad_(False)


DETERMINISTIC_LOG_VARIANCE = -12.0  # posterior std e^-6 ≈ 0.0025, against latents of std ≈ 1.5


def encode_clips(vae, clips: ClipSet, batch: int = 64):
    """Every clip's posterior mean `(N, C, F, h, w)`, unscaled, and the scale that gives unit std."""
    import torch

    grey = torch.from_numpy(clips.frames)
    count, frames_per_clip = grey.shape[:2]
    means = []
    with torch.no_grad():
        for chunk in grey.reshape(-1, *grey.shape[-2:]).split(batch):
            means.append(vae.encode(to_pixels(chunk)).latent_dist.mean)
    mean = torch.cat(means).reshape(count, frames_per_clip, *means[0].shape[1:]).permute(0, 2, 1, 3, 4).contiguous()
    return mean, float(1.0 / mean.std())


def shifted_scheduler(shift: float):
    """ModelScope's DDIM scheduler with its signal-to-noise ratio divided by shift² at every step
    (the log-SNR shift of "simple diffusion", Hoogeboom et al. 2023), stored as `trained_betas`.

    A small latent keeps its coarse content visible through noise that hides a large one: with
    ModelScope's own schedule an 8×8 latent clip's motion can still be read at t = 950, so a
    denoiser never needs the caption to know which way the drawing goes and does not learn it."""
    import torch
    from diffusers import DDIMScheduler

    from ..backbones.modelscope import SCHEDULER_CONFIG

    alphas = DDIMScheduler(**SCHEDULER_CONFIG).alphas_cumprod.double()
    shifted = torch.sigmoid(torch.logit(alphas) - 2 * math.log(shift))
    betas = 1 - shifted / torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return DDIMScheduler(**{**SCHEDULER_CONFIG, "trained_betas": betas.tolist()})


def caption_classes() -> tuple[list[str], list[str]]:
    from .motions import MOTIONS
    from .subjects import SUBJECTS

    return list(SUBJECTS), list(MOTIONS)


def pretrain_text_tower(recipe: ToyRecipe, text_encoder, tokenizer, log: dict) -> None:
    """Teach the text tower to tell captions apart before the denoiser reads it: a linear probe on its
    mean token predicts the caption's subject and motion (every subject, held-out ones included, so
    their names are words too). A CLIP tower arrives pretrained; without this, the denoiser would first
    have to wait for the motion words to mean anything."""
    import torch
    import torch.nn.functional as F

    subjects, motions = caption_classes()
    pairs = [(s, m) for s in subjects for m in motions]
    head = torch.nn.Linear(text_encoder.config.hidden_size, len(subjects) + len(motions))
    optimizer = torch.optim.AdamW([*text_encoder.parameters(), *head.parameters()], lr=3e-3)
    generator = torch.Generator().manual_seed(recipe.seed + 5)
    losses = []
    for _ in range(recipe.text_steps):
        chosen = [pairs[int(i)] for i in torch.randint(0, len(pairs), (64,), generator=generator)]
        ids = tokenizer([caption(s, m) for s, m in chosen], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
        logits = head(text_encoder(ids)[0].mean(dim=1))
        loss = F.cross_entropy(logits[:, : len(subjects)], torch.tensor([subjects.index(s) for s, _ in chosen])) + F.cross_entropy(
            logits[:, len(subjects) :], torch.tensor([motions.index(m) for _, m in chosen])
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    log["text_loss"] = losses


def prepare_unet_for_training(unet) -> None:
    """From scratch, not from an image model: temporal convolutions start random rather than as the
    identity (diffusers zero-initialises their last layer for fine-tuning an image UNet), and no
    dropout (a few thousand steps do not overfit)."""
    import torch
    from diffusers.models.resnet import TemporalConvLayer

    from ..backbones.modelscope import install_single_frame_bypass

    for module in unet.modules():
        if isinstance(module, TemporalConvLayer):
            module.conv4[-1].reset_parameters()
        elif isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    install_single_frame_bypass(unet)


def choose_captions(recipe: ToyRecipe, clips: ClipSet, index, generator) -> list[str]:
    import torch

    mix = torch.tensor(recipe.caption_mix)
    kinds = torch.multinomial(mix / mix.sum(), len(index), replacement=True, generator=generator)
    options = lambda i: (clips.captions[i], NEUTRAL_PROMPT, subject_prompt(clips.subjects[i]), "")  # noqa: E731
    return [options(int(i))[int(k)] for i, k in zip(index, kinds)]


def train_denoiser(recipe: ToyRecipe, clips: ClipSet, latents, report: Report, log: dict, folder: Path):
    """UNet3DConditionModel + CLIP text tower with the DDPM loss (ε-prediction) on videos and single frames."""
    import torch
    import torch.nn.functional as F
    from diffusers import UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    mean, scale = latents
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
    torch.manual_seed(recipe.seed + 3)
    unet = UNet3DConditionModel(**unet_config(recipe))
    prepare_unet_for_training(unet)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config(recipe, tokenizer.get_vocab(), tokenizer.model_max_length)))
    pretrain_text_tower(recipe, text_encoder, tokenizer, log)
    scheduler = shifted_scheduler(recipe.noise_shift)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=1e-2)
    warmup = max(1, recipe.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(i, recipe.steps) / recipe.steps))))
    generator = torch.Generator().manual_seed(recipe.seed + 4)
    unet.train()
    text_encoder.train()

    def embed(prompts: list[str]):
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        return text_encoder(ids)[0]

    def denoising_loss(clean, prompts):
        noise = torch.randn(clean.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(clean),), generator=generator)
        prediction = unet(scheduler.add_noise(clean, noise, t), t, encoder_hidden_states=embed(prompts)).sample
        return F.mse_loss(prediction, noise)

    losses, image_losses = [], []
    count, num_frames = mean.shape[0], mean.shape[2]
    for step in range(recipe.steps):
        index = torch.randint(0, count, (recipe.batch,), generator=generator)
        loss_video = denoising_loss(mean[index] * scale, choose_captions(recipe, clips, index, generator))
        picks = torch.randint(0, count, (recipe.image_batch,), generator=generator)
        frame = torch.randint(0, num_frames, (recipe.image_batch,), generator=generator)
        image_prompts = [subject_prompt(clips.subjects[int(i)]) if float(torch.rand((), generator=generator)) > 0.2 else "" for i in picks]
        loss_image = denoising_loss(mean[picks, :, frame].unsqueeze(2) * scale, image_prompts)
        optimizer.zero_grad(set_to_none=True)
        (loss_video + loss_image).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss_video.item())
        image_losses.append(loss_image.item())
        report("denoiser", step + 1, recipe.steps, losses[-1])
    log["denoiser_loss"] = losses
    log["image_loss"] = image_losses
    return unet.eval(), text_encoder.eval(), scheduler


def build_toy_model(folder: str | os.PathLike, recipe: ToyRecipe = ToyRecipe(), report: Report | None = None) -> Path:
    """Train the toy model from its recipe and save it in the hub layout under `folder` (with its
    recipe and training curves beside the components)."""
    import torch

    from ..backbones.quiet import quiet_library_progress_bars
    from ..backbones.tiny import write_tiny_tokenizer

    quiet_library_progress_bars()
    report = report or (lambda *_: None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    log: dict[str, Any] = {"recipe": recipe.to_dict(), "seconds": {}}
    try:
        started = time.perf_counter()
        clips = draw_clips(recipe, np.random.default_rng(recipe.seed))
        log["seconds"]["clips"] = time.perf_counter() - started
        write_tiny_tokenizer(folder / "tokenizer", tuple(vocabulary()), caption_length())

        started = time.perf_counter()
        vae = train_vae(recipe, clips, report, log)
        log["seconds"]["vae"] = time.perf_counter() - started

        started = time.perf_counter()
        mean, scale = encode_clips(vae, clips)
        vae.register_to_config(scaling_factor=scale)
        log["seconds"]["encode"] = time.perf_counter() - started

        started = time.perf_counter()
        unet, text_encoder, scheduler = train_denoiser(recipe, clips, (mean, scale), report, log, folder)
        log["seconds"]["denoiser"] = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    scheduler.save_pretrained(folder / "scheduler")
    write_model_index(folder)
    (folder / RECIPE_FILE).write_text(json.dumps(recipe.to_dict(), indent=2), encoding="utf-8")
    (folder / TRAINING_LOG).write_text(json.dumps(log), encoding="utf-8")
    return folder


def write_model_index(folder: Path) -> None:
    """ModelScope's `model_index.json`: the pipeline class and each component's library and class."""
    import diffusers

    index = {
        "_class_name": "TextToVideoSDPipeline", "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet3DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    }  # fmt: skip
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")


def toy_model_dir(recipe: ToyRecipe, cache_dir: str | os.PathLike | None = None) -> Path:
    from ..backbones.adapter_cache import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else Path(default_cache_dir()) / "models"
    return root / f"toy-world-{recipe.key()}"


def ensure_toy_model(recipe: ToyRecipe = ToyRecipe(), cache_dir: str | os.PathLike | None = None, report: Report | None = None) -> Path:
    """The cached toy model of this recipe, trained first when it is not there (into a temporary
    folder, renamed when complete, so a killed build leaves nothing that looks finished)."""
    folder = toy_model_dir(recipe, cache_dir)
    if (folder / TRAINING_LOG).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".toy-", dir=folder.parent))
    try:
        build_toy_model(staging, recipe, report)
        os.replace(staging, folder)
    except OSError:
        if (folder / TRAINING_LOG).is_file():  # another process finished first
            return folder
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def print_progress(every: int = 50) -> Report:
    """A report that prints one line per `every` steps (and the last) with the running loss and ETA."""
    started: dict[str, float] = {}

    def report(part: str, step: int, total: int, loss: float) -> None:
        started.setdefault(part, time.perf_counter())
        if step % every and step != total:
            return
        elapsed = time.perf_counter() - started[part]
        eta = elapsed / step * (total - step)
        print(f"toy model: {part} {step}/{total} loss {loss:.4f} ({elapsed:.0f} s, about {eta:.0f} s left)", file=sys.stderr, flush=True)

    return report
