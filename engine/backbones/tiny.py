"""A tiny, randomly initialised text-to-video model in exactly the hub's folder layout.

No weights can be downloaded where the tests run, so tests (and the demo, when no real model
is present) use this: every component of ModelScope T2V, with the real classes and module
names (`transformer_in`, `temp_attentions`, four down blocks, a CLIP text tower, a KL VAE
with an 8× downsampling, DDIM with scaled-linear betas) but a few channels wide, saved with
`save_pretrained` beside a `model_index.json`, and loaded back through
`engine.backbones.load_backbone` like the real model. Built deterministically from a seed.
Its predictions are noise: motion learned with it is meaningless, only the mechanics are real.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .modelscope import SCHEDULER_CONFIG, TEXT_CONFIG, UNET_CONFIG, VAE_CONFIG

TINY_SEED = 0
TOKENIZER_MAX_LENGTH = 77


# What shrinks, keeping every module name and block type of the real model (diffusers' make_tiny_model does the same).
TINY_UNET = dict(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4, cross_attention_dim=16, attention_head_dim=8)
TINY_VAE = dict(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4)
TINY_TEXT = dict(num_hidden_layers=2, num_attention_heads=2)


def tiny_unet_config(cross_attention_dim: int = 16) -> dict:
    """The real UNet3DConditionModel configuration (3 cross-attention down blocks + 1 plain), tiny widths."""
    return {**UNET_CONFIG, **TINY_UNET, "cross_attention_dim": cross_attention_dim}


def tiny_vae_config() -> dict:
    """The real AutoencoderKL configuration (four blocks, 8× downsampling), tiny widths."""
    return {**VAE_CONFIG, **TINY_VAE}


def tiny_scheduler_config() -> dict:
    """ModelScope's own scheduler configuration, unchanged."""
    return dict(SCHEDULER_CONFIG)


def tiny_text_config(vocab: dict[str, int], hidden_size: int = 16) -> dict:
    """The real CLIP text tower's configuration, tiny, with the locally built tokenizer's vocabulary."""
    return {
        **TEXT_CONFIG, **TINY_TEXT, "vocab_size": len(vocab), "hidden_size": hidden_size, "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": TOKENIZER_MAX_LENGTH, "projection_dim": hidden_size, "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"],
    }  # fmt: skip


def byte_to_unicode() -> dict[int, str]:
    """The reversible byte → printable character map of byte-level BPE (GPT-2, CLIP).

    Printable Latin-1 bytes map to themselves; the rest are moved to code points from 256 up.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


def write_tiny_tokenizer(folder: Path, words: tuple[str, ...] = (), max_length: int = TOKENIZER_MAX_LENGTH) -> None:
    """A CLIP tokenizer built locally rather than fetched: byte-level characters, plus whole-word
    tokens for `words` (BPE merges learned on them by the `tokenizers` library, so "moving" is one
    token). Without words it is character-level (the tiny random model); the toy world passes its
    vocabulary, so its text tower learns one embedding per word instead of spelling."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(byte_to_unicode().values())
    merges = learned_merges(words)
    tokens = chars + [c + "</w>" for c in chars] + ["".join(merge.split(" ")) for merge in merges]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens + ["<|startoftext|>", "<|endoftext|>"]))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": max_length,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "do_lower_case": True,
            }
        )
    )


def learned_merges(words: tuple[str, ...]) -> list[str]:
    """BPE merges (CLIP's "a b" lines, "</w>" ending a word) after which each of `words` is one token."""
    if not words:
        return []
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(sorted(set(words)), trainers.BpeTrainer(vocab_size=1 << 16, min_frequency=0, end_of_word_suffix="</w>", show_progress=False))
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.model.save(scratch)
        lines = (Path(scratch) / "merges.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def build_tiny_model(folder: str | os.PathLike, seed: int = TINY_SEED, cross_attention_dim: int = 16) -> Path:
    """Create every component with random weights and save them in the hub layout under `folder`."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from .quiet import quiet_library_progress_bars

    quiet_library_progress_bars()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_tokenizer(folder / "tokenizer")
    vocab = json.loads((folder / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet3DConditionModel(**tiny_unet_config(cross_attention_dim))
        torch.manual_seed(seed + 1)
        vae = AutoencoderKL(**tiny_vae_config())
        torch.manual_seed(seed + 2)
        text_config = CLIPTextConfig(**tiny_text_config(vocab, cross_attention_dim))
        text_encoder = CLIPTextModel(text_config)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    DDIMScheduler(**tiny_scheduler_config()).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "TextToVideoSDPipeline",
                "_diffusers_version": _diffusers_version(),
                "scheduler": ["diffusers", "DDIMScheduler"],
                "text_encoder": ["transformers", "CLIPTextModel"],
                "tokenizer": ["transformers", "CLIPTokenizer"],
                "unet": ["diffusers", "UNet3DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
            },
            indent=2,
        )
    )
    return folder


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


def default_tiny_model_dir() -> Path:
    from .adapter_cache import default_cache_dir

    return Path(default_cache_dir()) / "models" / f"tiny-text-to-video-seed{TINY_SEED}"


def ensure_tiny_model(folder: str | os.PathLike | None = None) -> Path:
    """The embedded tiny model, built on first use (into a temporary folder, then renamed)."""
    folder = Path(folder) if folder is not None else default_tiny_model_dir()
    if (folder / "model_index.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
    try:
        build_tiny_model(staging)
        os.replace(staging, folder)
    except OSError:
        if (folder / "model_index.json").is_file():  # another process finished first
            return folder
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
