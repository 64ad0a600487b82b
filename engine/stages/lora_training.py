"""What stages 1 and 2 share: the diffusion loss, the LoRA optimiser, and the resumable, cached run.

A stage says which adapters it trains and how one step computes its loss; this module turns
that into a run that is seeded, checkpointed every K steps and on SIGTERM, resumed after a
kill, and stored in the adapter cache under a key made of everything that determines it.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F

from ..backbones.adapter_cache import AdapterCache, cache_key
from ..backbones.base import VideoBackbone, out_of_memory_explained
from ..errors import SketchAnimatorError
from ..job.checkpoint import StopRequest, run_resumable
from ..job.events import EventLog
from ..job.lock import JobLock
from ..settings import LoraTrainingSettings


def check_prompt(prompt: str, what: str) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise SketchAnimatorError(f"the {what} prompt is empty: describe it in a few words, e.g. \"A horse.\"")
    return prompt


def noise_prediction(backbone: VideoBackbone, latents: torch.Tensor, text: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """ε̂(z_t, y, t) for z_t = √ᾱ_t·z_0 + √(1−ᾱ_t)·ε (paper eq. 1), in fp32."""
    noisy = backbone.add_noise(latents, noise, timesteps)
    return backbone.predict_noise(noisy, timesteps, text).float()


def diffusion_loss(backbone: VideoBackbone, latents: torch.Tensor, text: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """‖ε − ε̂(z_t, y, t)‖² (paper eq. 2), per element, in fp32."""
    return F.mse_loss(noise_prediction(backbone, latents, text, timesteps, noise), noise.float())


@contextlib.contextmanager
def frozen(params: list[torch.nn.Parameter]) -> Iterator[None]:
    """Temporarily stop gradients to these parameters (their accumulated .grad is kept)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@dataclass
class TrainingRun:
    """One stage's training, described by the stage, executed by `train_cached`."""

    kind: str  # cache kind: "appearance" or "motion"
    adapters: tuple[str, ...]  # adapters trained (all are saved)
    key_parts: Mapping[str, Any]  # everything that determines the result, besides the model
    make_step: Callable[[], Callable[[int], float]]  # called once the adapters exist; returns step(i) → loss
    trained_on: Mapping[str, Any]  # recorded in the adapter files' metadata
    write_extra: Callable[[Path], None] | None = None  # more files for the cache entry (a preview)


def train_cached(
    backbone: VideoBackbone,
    run: TrainingRun,
    settings: LoraTrainingSettings,
    cache: AdapterCache,
    events: EventLog | None = None,
    stop: StopRequest | None = None,
    show_bar: bool | None = None,
    progress_fields: dict[str, Any] | None = None,
) -> Path:
    """The cache entry folder holding `<adapter>.safetensors` for each trained adapter.

    A cache hit returns at once without training. Otherwise the adapters are created,
    trained with AdamW under `run_resumable` (checkpoints in the cache's work folder, keyed
    like the entry, so a killed run with the same inputs resumes), saved into the cache
    atomically, and the checkpoint is removed.
    """
    key = cache_key(run.kind, {**run.key_parts, "model": backbone.model_name, "model_fingerprint": backbone.fingerprint, "settings": settings.to_dict()})
    hit = cache.lookup(key)
    if hit is None:
        cache.root.mkdir(parents=True, exist_ok=True)
        with JobLock(cache.root, wait=True, file_name=f".lock-{key}"):  # two workers on one key: one learns it, the other waits and reuses it
            hit = cache.lookup(key)
            if hit is None:
                return learn_into_cache(backbone, run, settings, cache, key, events, stop, show_bar, progress_fields)
    if events is not None:
        events.emit("cache_hit", stage=run.kind, key=key, path=str(hit), **(progress_fields or {}))
    return hit


def learn_into_cache(
    backbone: VideoBackbone, run: TrainingRun, settings: LoraTrainingSettings, cache: AdapterCache, key: str,
    events: EventLog | None, stop: StopRequest | None, show_bar: bool | None, progress_fields: dict[str, Any] | None,
) -> Path:  # fmt: skip
    """Train the run's adapters (resumably) and store them under `key`; the caller holds the key's lock."""
    torch.manual_seed(settings.seed)
    for name in run.adapters:
        backbone.delete_adapter(name)
        backbone.add_adapter(name, rank=settings.rank, alpha=settings.alpha)
    params = backbone.train_only(*run.adapters)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    step = run.make_step()

    def optimise(index: int) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = step(index)
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
        return loss

    work = cache.root / "work" / key
    tensors = backbone.adapter_tensors(*run.adapters)
    with out_of_memory_explained(f"{run.kind} learning"):
        run_resumable(
            optimise, settings.steps, work / "checkpoint.pt", tensors, optimizer,
            every=settings.checkpoint_every, stop=stop, stage=run.kind, events=events, show_bar=show_bar, progress_fields=progress_fields,
        )

    def write(folder: Path) -> None:
        for name in run.adapters:
            backbone.save_adapter(name, folder / f"{name}.safetensors", trained_on={**run.trained_on, "steps": settings.steps, "settings": settings.to_dict()})
        if run.write_extra is not None:
            run.write_extra(folder)

    entry = cache.store(key, write, manifest={"stage": run.kind, "model": backbone.model_name, "trained_on": dict(run.trained_on)})
    shutil.rmtree(work, ignore_errors=True)
    if events is not None:
        events.emit("adapter_stored", stage=run.kind, key=key, path=str(entry))
    return entry
