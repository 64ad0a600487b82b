"""What stage 3 optimises against: priors, chosen by name in the job spec.

A prior turns the rendered frames of a step into `{"loss": …, diagnostics…}`; the distillation
loop backpropagates the loss to the control points and logs every diagnostic. Adding a prior:
one module in this folder with a class that has `from_context(PriorContext)` and
`__call__(frames, step)`, plus one `PRIORS.register(PriorEntry(…))` below. This file imports
no torch, so a job can be checked (and the add-on can list the priors) without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import Registry, UnknownPartError


@dataclass(frozen=True)
class PriorEntry:
    name: str
    implementation: str  # "module:Class", the module relative to this package
    uses_backbone: bool  # needs the video model with the appearance and motion adapters (stages 1–2)
    description: str
    options: tuple[str, ...] = ()  # the job's `prior_options` it reads

    def implementation_class(self) -> Any:
        return PRIORS.load(self)


PRIORS: Registry[PriorEntry] = Registry("prior", __name__)
DEFAULT_PRIOR = "diffusion"
PRIORS.register(PriorEntry(
    "diffusion", ".diffusion:SDSPrior", uses_backbone=True,
    description="score distillation through the video model carrying the appearance and motion adapters (the paper)",
))  # fmt: skip
PRIORS.register(PriorEntry(
    "target-frames", ".target_frames:TargetFramesPrior", uses_backbone=False, options=("targets",),
    description="pull the frames toward known target frames (an oracle, for tests and debugging)",
))  # fmt: skip


def prior_entry(name: str) -> PriorEntry:
    return PRIORS.find(name)


def check_prior_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options the prior does not read, by name, before a job starts."""
    entry = prior_entry(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        known = ", ".join(entry.options) or "none"
        raise UnknownPartError(f"the {name} prior has no option {unknown[0]!r} (its options: {known})")
