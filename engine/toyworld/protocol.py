"""The paper's Table I protocol, measured from control points: held-out sketches × reference clips, each
reference a *different* subject performing a known motion, through the method's own stages.

Rows (every one runs the real stages on the loaded model; only what the row names differs):
- **full**: stage 1 (appearance LoRA, subject prompt), stage 2 (motion LoRA from the reference,
  neutral prompt "a shape moving"), stage 3 with appearance 0.5 and motion 1.0 and the neutral prompt;
- **w/o A-LoRA**: the same with the appearance weight 0;
- **w/o M-LoRA**: the same with the motion weight 0 — the neutral prompt says nothing about the
  motion, so this row should follow the reference only by chance;
- **text only** (Live Sketch's setting): no reference; stage 3 with the prompt naming the motion
  ("a tree moving left") and no motion adapter;
- **preview**: the CPU motion preview tracking the reference clip (no model);
- and, for each extra parametrisation asked for (e.g. Live Sketch's global-local split), the full
  method with it.

Each case's result is appended to `cases.jsonl` in the work folder as it finishes, so a stopped run
resumes where it stopped, and the learned adapters are cached there. Measures are those of
engine/toyworld/measures.py; rows are compared with the full method by a paired sign-flip
permutation test over the same cases and seeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import SketchAnimatorError
from ..vector.sketch import Sketch
from .measures import CaseMeasures, measure, motion_vectors, paired_permutation_p
from .motions import MOTIONS, NEUTRAL_PROMPT, PHRASES, TRANSLATIONS, magnitude_range
from .world import HELD_OUT_SUBJECTS, WorldConfig, make_clip, render_clip, subject_prompt, subject_sketch, training_pairs

CASES_FILE = "cases.jsonl"
REFERENCE_FILE = "motion.json"
MODEL_ROWS = ("full", "w/o A-LoRA", "w/o M-LoRA", "text only")
ROWS = (*MODEL_ROWS, "preview")


@dataclass(frozen=True)
class ProtocolSettings:
    """Steps and rates of the three stages for the protocol (toy-sized), the seeds, and extra geometries."""

    appearance_steps: int = 150
    motion_steps: int = 150
    distillation_steps: int = 120
    lora_rank: int = 16
    lora_lr: float = 1e-3
    lr: float = 8e-3  # stage 3, canvas units: ~0.5 px per step on a 64 px canvas
    guidance: float = 35.0
    seeds: tuple[int, ...] = (0,)
    parametrisation: str = "points"  # the full method's and the ablations' geometry
    extra_parametrisations: tuple[str, ...] = ("global-local",)  # each adds a "full · <name>" row
    rows: tuple[str, ...] = ROWS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SketchCase:
    name: str
    sketch: Sketch
    prompt: str  # the subject prompt of stage 1 ("a tree")


@dataclass
class ReferenceCase:
    name: str
    video: Path
    motion: str | None = None  # its known toy motion class, when known
    vectors: np.ndarray | None = None  # (F − 1, 4) known per-frame motion (engine/toyworld/measures.py), when known
    phrase: str | None = None  # what the text-only row adds to the subject prompt ("moving left")

    @classmethod
    def read(cls, video: Path, truth: Path | None = None) -> "ReferenceCase":
        """A user's clip, with its known motion from a JSON file ({"motion": "left", "vectors": …, "phrase": …}) when given."""
        video = Path(video)
        if not video.exists():
            raise SketchAnimatorError(f"reference clip {video} does not exist: give a video file or a folder of numbered images")
        truth = truth if truth is not None else (video / REFERENCE_FILE if video.is_dir() else video.with_suffix(".motion.json"))
        known: dict[str, Any] = {}
        if truth.is_file():
            try:
                known = json.loads(truth.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise SketchAnimatorError(f"{truth} is not valid JSON ({exc}): fix or remove it") from None
        motion = known.get("motion")
        if motion is not None and motion not in MOTIONS:
            raise SketchAnimatorError(f"{truth} names motion {motion!r}: use one of {', '.join(MOTIONS)}")
        vectors = np.asarray(known["vectors"], dtype=np.float64) if "vectors" in known else None
        phrase = known.get("phrase") or (PHRASES.get(motion) if motion else None)
        return cls(video.stem if video.is_file() else video.name, video, motion, vectors, phrase)


# ----------------------------------------------------------------------------- the toy cases
def held_out_sketches(world: WorldConfig, names: tuple[str, ...] = HELD_OUT_SUBJECTS) -> list[SketchCase]:
    """The held-out subjects, centred, at the middle of the world's size range."""
    radius = sum(world.subject_radius) / 2
    half_width = sum(world.half_width) / 2
    middle = (world.canvas / 2, world.canvas / 2)
    return [SketchCase(name, subject_sketch(name, middle, radius, 0.0, half_width, world.canvas)[0], subject_prompt(name)) for name in names]


def write_reference_clips(world: WorldConfig, motions: tuple[str, ...], folder: Path, seed: int = 0, frame_size: int | None = None) -> list[ReferenceCase]:
    """One reference clip per motion, of a training subject that can do it (never a held-out one),
    written as a folder of numbered PNGs with its known motion in `motion.json`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pairs = training_pairs()
    references = []
    for motion in motions:
        names = sorted({s for s, m in pairs if m == motion})
        name = names[int(rng.integers(len(names)))]
        low, high = magnitude_range(motion, world.ranges)
        clip = make_clip(name, motion, (low + high) / 2, world, radius=sum(world.subject_radius) / 2, tilt=0.0,
                         half_width=sum(world.half_width) / 2, placement=np.array([0.5, 0.5]))  # fmt: skip
        out = folder / f"{motion}-{name.replace(' ', '-')}"
        out.mkdir(parents=True, exist_ok=True)
        for index, grey in enumerate(render_clip(clip, frame_size or world.canvas)):
            Image.fromarray(np.repeat(grey[..., None], 3, axis=-1)).save(out / f"frame_{index:04d}.png")
        vectors = motion_vectors(clip.frames)
        (out / REFERENCE_FILE).write_text(json.dumps({"motion": motion, "subject": name, "vectors": vectors.tolist(), "phrase": PHRASES[motion]}), encoding="utf-8")
        references.append(ReferenceCase(out.name, out, motion, vectors, PHRASES[motion]))
    return references


DEFAULT_MOTIONS = tuple(m for m in MOTIONS if m != "wave")  # waving moves a part, not the whole: the similarity measures cannot see it


# ----------------------------------------------------------------------------- running
@dataclass
class CaseResult:
    row: str
    sketch: str
    reference: str
    seed: int
    seconds: float
    measures: CaseMeasures
    frames: list  # (F, P, 2) the animation, canvas px

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "sketch": self.sketch, "reference": self.reference, "seed": self.seed, "seconds": self.seconds,
                "measures": self.measures.to_dict(), "frames": self.frames}  # fmt: skip


def rows_of(settings: ProtocolSettings) -> list[str]:
    return [*settings.rows, *(f"full · {name}" for name in settings.extra_parametrisations)]


def case_key(row: str, sketch: str, reference: str, seed: int) -> str:
    return f"{row}|{sketch}|{reference}|{seed}"


def read_done(work: Path) -> dict[str, dict]:
    done = {}
    path = work / CASES_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill: that case runs again
            done[case_key(record["row"], record["sketch"], record["reference"], record["seed"])] = record
    return done


Report = Callable[[str], None]


def run_protocol(
    model: str | os.PathLike, sketches: list[SketchCase], references: list[ReferenceCase], settings: ProtocolSettings, work: Path,
    report: Report | None = None,
) -> list[dict]:  # fmt: skip
    """Run every row on every sketch × reference × seed (skipping what `cases.jsonl` already has);
    returns every case's record."""
    import torch

    from ..backbones import load_backbone
    from ..backbones.adapter_cache import AdapterCache
    from ..backbones.base import BackboneOptions
    from ..media.reference import load_reference_frames
    from ..priors.diffusion import SDSPrior
    from ..settings import AppearanceSettings, DistillationSettings, MotionSettings
    from ..stages.appearance import learn_appearance
    from ..stages.distillation import distill
    from ..stages.motion import learn_motion

    report = report or (lambda line: print(line, file=sys.stderr, flush=True))
    work.mkdir(parents=True, exist_ok=True)
    done = read_done(work)
    rows = rows_of(settings)
    backbone = load_backbone(model, BackboneOptions(device="cpu", dtype="float32"))
    frame_size = backbone.frame_size
    num_frames = backbone.num_frames
    cache = AdapterCache(work / "cache")
    lora = dict(rank=settings.lora_rank, lr=settings.lora_lr, checkpoint_every=10_000)
    appearance_of: dict[str, Path] = {}
    motion_of: dict[str, Path] = {}
    clips: dict[str, Any] = {}
    records = list(done.values())

    def video_spec(reference: ReferenceCase):
        from ..media.reference import VideoSpec

        return VideoSpec(path=str(reference.video), num_frames=num_frames, size=frame_size[0], width=frame_size[1])

    def appearance(case: SketchCase) -> Path:
        if case.name not in appearance_of:
            started = time.perf_counter()
            appearance_of[case.name] = learn_appearance(backbone, case.sketch, case.prompt, AppearanceSettings(steps=settings.appearance_steps, **lora), cache, show_bar=False)
            report(f"protocol: appearance of {case.name} ({time.perf_counter() - started:.0f} s)")
        return appearance_of[case.name]

    def motion(reference: ReferenceCase) -> Path:
        if reference.name not in motion_of:
            started = time.perf_counter()
            clip = clips.setdefault(reference.name, load_reference_frames(video_spec(reference)))
            motion_of[reference.name] = learn_motion(backbone, clip, video_spec(reference), NEUTRAL_PROMPT, MotionSettings(steps=settings.motion_steps, **lora), cache, show_bar=False)
            report(f"protocol: motion of {reference.name} ({time.perf_counter() - started:.0f} s)")
        return motion_of[reference.name]

    def stage3(case: SketchCase, reference: ReferenceCase, row: str, seed: int) -> np.ndarray:
        parametrisation = row.split(" · ")[1] if " · " in row else settings.parametrisation
        weights = {"full": (0.5, 1.0), "w/o A-LoRA": (0.0, 1.0), "w/o M-LoRA": (0.5, 0.0), "text only": (0.5, 0.0)}[row.split(" · ")[0]]
        prompt = f"{case.prompt} {reference.phrase}" if row == "text only" else NEUTRAL_PROMPT
        backbone.load_adapter("appearance", appearance(case))
        if weights[1]:
            backbone.load_adapter("motion_temporal", motion(reference))
        else:
            backbone.delete_adapter("motion_temporal")
        distillation = DistillationSettings(
            steps=settings.distillation_steps, lr=settings.lr, guidance=settings.guidance, appearance_weight=weights[0], motion_weight=weights[1],
            parametrisation=parametrisation, seed=seed, checkpoint_every=10_000,
        )  # fmt: skip
        prior = SDSPrior(backbone, prompt, distillation)
        checkpoint = work / "checkpoints" / f"{hashlib.sha256(case_key(row, case.name, reference.name, seed).encode()).hexdigest()[:16]}.ckpt"
        result = distill(case.sketch, prior, distillation, num_frames, checkpoint, show_bar=False, frame_size=frame_size)
        checkpoint.unlink(missing_ok=True)
        return result.frames

    def preview(case: SketchCase, reference: ReferenceCase) -> np.ndarray:
        from ..preview import preview_motion
        from ..settings import PreviewSettings

        spec = replace(video_spec(reference), width=None)
        return preview_motion(case.sketch, spec, PreviewSettings(num_frames=num_frames, size=spec.size)).frames

    with open(work / CASES_FILE, "a", encoding="utf-8") as log:
        for row in rows:
            for case in sketches:
                for reference in references:
                    if row == "text only" and reference.phrase is None:
                        continue  # a clip of unknown motion cannot be named in a prompt
                    for seed in settings.seeds if row != "preview" else settings.seeds[:1]:
                        key = case_key(row, case.name, reference.name, seed)
                        if key in done:
                            continue
                        torch.manual_seed(seed)
                        started = time.perf_counter()
                        frames = preview(case, reference) if row == "preview" else stage3(case, reference, row, seed)
                        seconds = time.perf_counter() - started
                        still = case.sketch.still_points()
                        measures = measure(case.sketch.flat_points(), frames, reference.vectors, reference.motion, None if not still.any() else ~still)
                        record = CaseResult(row, case.name, reference.name, seed, seconds, measures, np.round(frames, 4).tolist()).to_dict()
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                        records.append(record)
                        report(f"protocol: {row:<24} {case.name:>12} × {reference.name:<26} seed {seed}: {measures.motion:<17} "
                               f"align {fmt(measures.alignment)} appearance {measures.appearance_px:.2f} px ({seconds:.0f} s)")  # fmt: skip
    return records


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- the table
METRICS = ("follows", "alignment", "gain", "appearance_px", "jerk_px")


@dataclass
class RowSummary:
    row: str
    cases: int
    values: dict[str, np.ndarray] = field(default_factory=dict)  # metric → per-case values, in case order
    keys: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def mean(self, metric: str) -> float | None:
        values = self.values.get(metric)
        if values is None or not np.isfinite(values).any():
            return None
        return float(np.nanmean(values))


def summarise(records: list[dict], rows: list[str], motions: tuple[str, ...] | None = None, references: dict[str, str | None] | None = None) -> list[RowSummary]:
    """Per row, the per-case values of each metric (cases in one order across rows, for pairing);
    `motions` keeps only references whose known motion is one of them."""
    summaries = []
    for row in rows:
        chosen = sorted((r for r in records if r["row"] == row and (motions is None or (references or {}).get(r["reference"]) in motions)),
                        key=lambda r: (r["sketch"], r["reference"], r["seed"]))  # fmt: skip
        summary = RowSummary(row, len(chosen), keys=[f"{r['sketch']}|{r['reference']}|{r['seed']}" for r in chosen], seconds=sum(r["seconds"] for r in chosen))
        for metric in METRICS:
            summary.values[metric] = np.array([np.nan if r["measures"][metric] is None else float(r["measures"][metric]) for r in chosen])
        summaries.append(summary)
    return summaries


def compare(summary: RowSummary, baseline: RowSummary, metric: str) -> float | None:
    """The paired p-value of one metric between a row and the baseline, over the cases both have."""
    common = sorted(set(summary.keys) & set(baseline.keys))
    if not common:
        return None
    a = summary.values[metric][[summary.keys.index(k) for k in common]]
    b = baseline.values[metric][[baseline.keys.index(k) for k in common]]
    keep = np.isfinite(a) & np.isfinite(b)
    return paired_permutation_p(a[keep], b[keep]) if keep.any() else None


def format_table(summaries: list[RowSummary], title: str) -> str:
    """A Markdown table like the paper's Table I, with p-values against the full method."""
    baseline = next((s for s in summaries if s.row == "full"), None)
    lines = [f"### {title}", "", "| row | cases | follows | alignment | gain | appearance px | jerk px | seconds/case | vs full: p(follows), p(appearance) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in summaries:
        follows = s.mean("follows")
        p = "" if baseline is None or s is baseline else f"{fmt(compare(s, baseline, 'follows'), 3)}, {fmt(compare(s, baseline, 'appearance_px'), 3)}"
        lines.append(
            f"| {s.row} | {s.cases} | {'–' if follows is None else f'{100 * follows:.0f}%'} | {fmt(s.mean('alignment'))} | {fmt(s.mean('gain'))} | "
            f"{fmt(s.mean('appearance_px'))} | {fmt(s.mean('jerk_px'), 3)} | {s.seconds / max(s.cases, 1):.0f} | {p} |"
        )
    return "\n".join(lines)


def protocol_tables(records: list[dict], references: list[ReferenceCase], settings: ProtocolSettings) -> str:
    """The whole table, then the same restricted to translations (the direction cases)."""
    kinds = {r.name: r.motion for r in references}
    rows = [row for row in rows_of(settings) if any(r["row"] == row for r in records)]
    parts = [format_table(summarise(records, rows), "All cases")]
    if any(m in TRANSLATIONS for m in kinds.values()):
        parts.append(format_table(summarise(records, rows, TRANSLATIONS, kinds), "Direction cases (8 translations)"))
    return "\n\n".join(parts)
