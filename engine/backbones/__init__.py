"""The video model behind the stages: the backbone contract, its ModelScope implementation, tiny test
models, LoRA adapters and their cache, and the registry that picks a backbone for a model.

Adding a model: write one module with a class implementing `base.VideoBackbone` (with the
classmethods `check_folder`, `select_download_files` and `load`), then add one
`BACKBONES.register(BackboneEntry(…))` below. This file imports no torch, so the add-on can
list the backbones.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registry import Registry
from ..settings import DEFAULT_BACKBONE, DEFAULT_MODEL

if TYPE_CHECKING:
    from .base import BackboneOptions, VideoBackbone


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: which class loads it and when it is chosen."""

    name: str
    implementation: str  # "module:Class", the module relative to this package
    pipelines: tuple[str, ...] = ()  # model_index.json `_class_name`s whose folders it loads
    hub_ids: tuple[str, ...] = ()  # checkpoints it is chosen for by their hub id
    frame_size: tuple[int, int] | None = None  # (height, width) when the checkpoint was trained at another size than its config says
    num_frames: int = 16  # the clip length the checkpoint was trained on
    description: str = ""

    def implementation_class(self) -> Any:
        return BACKBONES.load(self)


BACKBONES: Registry[BackboneEntry] = Registry("backbone", __name__)
BACKBONES.register(BackboneEntry(
    "modelscope", ".modelscope:ModelScopeBackbone", pipelines=("TextToVideoSDPipeline",),
    hub_ids=("ali-vilab/text-to-video-ms-1.7b", "damo-vilab/text-to-video-ms-1.7b"), num_frames=16,
    description="ModelScope T2V 1.7B: 16 frames of 256×256",
))  # fmt: skip
BACKBONES.register(BackboneEntry(
    "zeroscope", ".modelscope:ModelScopeBackbone", hub_ids=("cerspense/zeroscope_v2_576w",), frame_size=(320, 576), num_frames=24,
    description="Zeroscope v2 576w (ModelScope layout, fine-tuned at 576×320, 24 frames)",
))  # fmt: skip


def backbone_entry(name: str) -> BackboneEntry:
    return BACKBONES.find(name)


def choose_backbone(folder: Path, model_name: str, requested: str | None = None) -> BackboneEntry:
    """The asked-for backbone; else the one registered for this hub id; else by the folder's
    `model_index.json` pipeline class; else the default (ModelScope)."""
    if requested:
        return backbone_entry(requested)
    for entry in BACKBONES.values():
        if model_name in entry.hub_ids:
            return entry
    try:
        pipeline = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError):
        pipeline = None
    for entry in BACKBONES.values():
        if pipeline in entry.pipelines:
            return entry
    return BACKBONES[DEFAULT_BACKBONE]


def load_backbone(model: str | os.PathLike = DEFAULT_MODEL, options: "BackboneOptions | None" = None, backbone: str | None = None) -> "VideoBackbone":
    """Load a model given by folder or hub id (already downloaded) with its registered backbone.

    Never downloads: a missing or half-downloaded model is a one-line `ModelError` naming
    `python -m engine download`.
    """
    from .base import BackboneOptions
    from .hub import resolve_model_dir

    options = options or BackboneOptions()
    folder = resolve_model_dir(model, options.revision, options.cache_dir)
    entry = choose_backbone(folder, str(model), backbone)
    implementation = entry.implementation_class()
    implementation.check_folder(folder, str(model))
    return implementation.load(folder, str(model), options, entry)
