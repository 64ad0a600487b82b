"""Choosing the torch device and precision, shared by the model loaders (no heavy imports)."""

from __future__ import annotations

import torch

from ..errors import SketchAnimatorError


class DeviceError(SketchAnimatorError):
    """The asked-for device or precision is not available."""


def choose_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an unavailable or unknown device is a one-line error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was asked for but CUDA is not available: choose device auto or cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)


def choose_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto`: half precision on GPUs (the weights fit in 12 GB), full precision on CPUs."""
    if name == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    try:
        return {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}[name]
    except KeyError:
        raise DeviceError(f"unknown dtype {name!r}: use auto, float16, bfloat16 or float32") from None
