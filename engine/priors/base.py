"""The prior contract: rendered frames in, a loss and its diagnostics out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import torch

from ..settings import DistillationSettings

if TYPE_CHECKING:
    from ..backbones.base import VideoBackbone


class Prior(Protocol):
    """Rendered frames `(F, 3, H, W)` in [0, 1] → {"loss": scalar to backpropagate, diagnostics…}.

    Diagnostics are scalars (tensors or numbers); the loop logs them in the progress events
    and keeps them per step in the result's history.
    """

    def __call__(self, frames: torch.Tensor, step: int) -> dict[str, torch.Tensor]: ...


@dataclass
class PriorContext:
    """What a prior is built from: the job's stage-3 settings and, for a prior that uses one, the
    video model carrying the learned adapters."""

    settings: DistillationSettings
    frame_size: tuple[int, int]  # (height, width) of the rendered frames
    num_frames: int  # poses of the whole animation
    motion_prompt: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # the job's `prior_options`
    job_dir: Path | None = None  # relative paths in the options are relative to it
    backbone: "VideoBackbone | None" = None
    frame_indices: Sequence[int] | None = None  # which poses the prior sees, in order (a window; a cycle's seam); None: all

    def shown_poses(self) -> list[int]:
        return list(range(self.num_frames)) if self.frame_indices is None else [int(i) for i in self.frame_indices]
