"""Named LoRA adapters through PEFT, and their file format: `.safetensors` in diffusers' LoRA layout
plus our metadata (base model and fingerprint, rank, alpha, targets, what the adapter was trained on).

`PeftAdapters` implements the adapter half of the backbone contract for any backbone whose
denoiser is a diffusers model with `PeftAdapterMixin` (`add_adapter`, `set_adapters`, …): the
backbone only says which modules its spatial and temporal layers are (`layer_targets`).
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path
from typing import Mapping

import torch

from ..files import atomic_write, free_bytes
from .base import ADAPTER_LAYERS, LAYER_KINDS, AdapterError

ADAPTER_FORMAT = "sketch-animator/lora"
ADAPTER_FORMAT_VERSION = 1


class PeftAdapters:
    """LoRA adapters on `self.denoiser`, by name; needs `layer_targets`, `model_name`, `fingerprint`, `device`."""

    denoiser: torch.nn.Module
    layer_targets: Mapping[str, str]  # "spatial" / "temporal" → PEFT regex over module names (full match)

    def _targets(self, name: str, layers: str | None) -> str:
        kind = layers or ADAPTER_LAYERS.get(name)
        if kind is None:
            raise AdapterError(f"adapter {name!r} has no default layers: pass layers='spatial' or 'temporal' (known adapters: {sorted(ADAPTER_LAYERS)})")
        if kind not in LAYER_KINDS:
            raise AdapterError(f"unknown layers {kind!r} for adapter {name!r}: use {' or '.join(LAYER_KINDS)}")
        return self.layer_targets[kind]

    def add_adapter(self, name: str, rank: int = 32, alpha: float | None = None, layers: str | None = None) -> None:
        from peft import LoraConfig

        if name in self.adapter_names():
            raise AdapterError(f"adapter {name!r} already exists on the model")
        config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, target_modules=self._targets(name, layers), init_lora_weights=True)
        self._add_peft_adapter(config, name)

    def _add_peft_adapter(self, config, name: str) -> None:
        with warnings.catch_warnings():  # PEFT warns that a second adapter makes "multiple adapters": intended
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            self.denoiser.add_adapter(config, adapter_name=name)
        self.denoiser.to(self.device)
        for param in self.adapter_tensors(name).values():  # adapters are trained in fp32 even when the base is fp16
            param.data = param.data.float()

    def delete_adapter(self, name: str) -> None:
        if name in self.adapter_names():
            self.denoiser.delete_adapters(name)

    def adapter_names(self) -> list[str]:
        return list(getattr(self.denoiser, "peft_config", {}) or {})

    def set_adapter_weights(self, weights: Mapping[str, float]) -> None:
        unknown = set(weights) - set(self.adapter_names())
        if unknown:
            raise AdapterError(f"adapter(s) {sorted(unknown)} are not loaded: train or load them first")
        if not weights:
            self.denoiser.disable_adapters()
            return
        self.denoiser.enable_adapters()
        self.denoiser.set_adapters(list(weights), [float(w) for w in weights.values()])

    def adapter_tensors(self, *names: str) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.denoiser.named_parameters() if any(f".{name}." in n for name in names)}

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        """The adapter's LoRA matrices with PEFT/diffusers keys (`…to_q.lora_A.weight`)."""
        from peft.utils import get_peft_model_state_dict

        return {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(self.denoiser, adapter_name=name).items()}

    def save_adapter(self, name: str, path: str | os.PathLike, trained_on: Mapping | None = None) -> Path:
        """Save one adapter as .safetensors in diffusers' LoRA format, plus our metadata."""
        from safetensors.torch import save_file

        config = self.denoiser.peft_config[name]
        lora_config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.to_dict().items()}
        ours = {
            "format": ADAPTER_FORMAT,
            "version": ADAPTER_FORMAT_VERSION,
            "adapter": name,
            "backbone": getattr(self, "name", None),
            "base_model": self.model_name,
            "base_fingerprint": self.fingerprint,
            "rank": config.r,
            "alpha": config.lora_alpha,
            "targets": config.target_modules if isinstance(config.target_modules, str) else sorted(config.target_modules),
            "trained_on": dict(trained_on or {}),
        }
        metadata = {"format": "pt", "lora_adapter_metadata": json.dumps(lora_config, sort_keys=True), "sketch_animator": json.dumps(ours, sort_keys=True)}
        state = self.adapter_state(name)

        def write(tmp: str) -> None:
            """safetensors reports a failed write as its own error: a full disk becomes OSError(ENOSPC)."""
            try:
                save_file(state, tmp, metadata=metadata)
            except Exception as exc:
                if isinstance(exc, OSError):
                    raise
                needed = sum(t.numel() * t.element_size() for t in state.values())
                raise OSError(errno.ENOSPC if free_bytes(Path(tmp).parent) < needed else errno.EIO, f"cannot save the adapter ({exc})") from None

        return atomic_write(path, write)

    def load_adapter(self, name: str, path: str | os.PathLike) -> dict:
        from peft import LoraConfig
        from peft.utils import set_peft_model_state_dict
        from safetensors import safe_open

        info = read_adapter_metadata(path)
        if info["base_fingerprint"] != self.fingerprint:
            raise AdapterError(
                f"adapter {Path(path).name} was trained on {info['base_model']} (fingerprint {info['base_fingerprint'][:8]}), "
                f"not on the loaded {self.model_name} ({self.fingerprint[:8]}): retrain it for this model"
            )
        self.delete_adapter(name)
        with safe_open(str(path), framework="pt") as handle:
            state = {k: handle.get_tensor(k) for k in handle.keys()}
        lora_config = json.loads(info["_lora_adapter_metadata"])
        config = LoraConfig(**{k: v for k, v in lora_config.items() if k in LoraConfig.__dataclass_fields__})
        self._add_peft_adapter(config, name)
        result = set_peft_model_state_dict(self.denoiser, state, adapter_name=name)
        if getattr(result, "unexpected_keys", None):
            raise AdapterError(f"adapter {Path(path).name} has weights for layers this model lacks ({result.unexpected_keys[0]} …)")
        self.denoiser.to(self.device)
        for param in self.adapter_tensors(name).values():
            param.data = param.data.float()
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
