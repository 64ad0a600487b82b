"""The paper's evaluation metrics (Table I): appearance, motion and temporal scores of an animation.

Three numbers, each a cosine similarity in [-1, 1] (higher is better):

- **Appearance alignment**: the mean, over the animation's frames, of the cosine between the
  CLIP image embedding of the frame and that of the input sketch. Paper: 0.955.
- **Motion alignment**: the X-CLIP score of the animation and the motion prompt: the cosine
  between X-CLIP's video embedding and its embedding of the prompt. X-CLIP's text embedding is
  video-specific (its prompt generator adds a cross-attention read of the frames' patch
  features to the projected prompt), so this is exactly `logits_per_video / logit_scale.exp()`
  of transformers' `XCLIPModel`: its logits are this cosine times the learned temperature.
  X-CLIP sees a fixed number of frames (`vision_config.num_frames`, 8 for the base model),
  sampled uniformly from the animation, first and last frame included. Paper: 0.541.
- **Temporal consistency**: the mean cosine of the CLIP image embeddings of every pair of
  consecutive frames (F − 1 pairs). It needs at least two frames; a one-frame result is
  refused rather than scored 1.0, since it has no motion to be consistent. Paper: 0.988.

Images are the sketch and its frames rendered in colour on white directly at the vision
tower's input size (224 px for the default models; a non-square canvas is padded with white
so nothing is cropped), so the processors only normalise them. Identical images get
bit-identical embeddings (each distinct image is embedded once), so an animation that does
not move scores exactly 1.0 in temporal consistency, and its frames exactly 1.0 against the
sketch.

Models load offline from a hub id already in the Hugging Face cache or from a local folder;
`python -m engine download-metrics` fetches the defaults (configs, tokenizer, processor and
one weights file each).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .backbones.devices import choose_device
from .errors import SketchAnimatorError
from .backbones.quiet import quiet_transformers
from .files import atomic_write_text
from .job.results import ResultError
from .job.results import read_result as read_finished_result
from .settings import DEFAULT_CLIP, DEFAULT_XCLIP
from .vector.sketch import Sketch

RESULT_FILE = "result.json"
JOB_FILE = "job.json"
METRICS_FILE = "metrics.json"
TABLE_FILE = "metrics.txt"
METRICS_SCHEMA = "sketch-animator/metrics"
METRICS_VERSION = 1
METRIC_NAMES = ("appearance_alignment", "motion_alignment", "temporal_consistency")
PAPER_SCORES = {"appearance_alignment": 0.955, "motion_alignment": 0.541, "temporal_consistency": 0.988}  # Table I, "Ours"
EMBEDDING_BATCH = 32  # images per CLIP call

# What `download-metrics` fetches from a model repository: everything small that the
# tokenizer and the image processor read, plus one weights file (or one sharded set).
SMALL_FILES = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
)
SINGLE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
SHARDED_WEIGHTS = (  # (index file, shard files) patterns
    (r"model\.safetensors\.index\.json", r"model-\d+-of-\d+\.safetensors"),
    (r"pytorch_model\.bin\.index\.json", r"pytorch_model-\d+-of-\d+\.bin"),
)
WEIGHT_FILES = SINGLE_WEIGHTS + ("model.safetensors.index.json", "pytorch_model.bin.index.json")


class MetricsError(SketchAnimatorError):
    """A result cannot be evaluated (missing file, no frames, no motion prompt)."""


class MetricModelError(MetricsError):
    """A CLIP or X-CLIP model is missing, incomplete or of the wrong kind."""


# ------------------------------------------------------------------- the arithmetic
def cosine_similarity(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Cosine of the last axis (broadcasting), in float64 and clamped to [-1, 1].

    Written as `a·b / sqrt((a·a)(b·b))` rather than a product of two norms: for a == b the
    numerator and both squared norms are the same float, and sqrt(s²) == s in IEEE
    arithmetic, so identical embeddings give exactly 1.0.
    """
    a, b = _float64(a), _float64(b)
    dot = (a * b).sum(-1)
    norms = ((a * a).sum(-1) * (b * b).sum(-1)).sqrt()
    if bool((norms == 0).any()):
        raise MetricsError("an embedding is all zeros, so its cosine similarity is undefined: check the model's weights")
    return (dot / norms).clamp(-1.0, 1.0)


def appearance_alignment(frame_embeddings: torch.Tensor | np.ndarray, sketch_embedding: torch.Tensor | np.ndarray) -> float:
    """Mean cosine between each frame's embedding `(F, D)` and the input sketch's `(D,)`."""
    frames = _matrix(frame_embeddings, "frame embeddings")
    return float(cosine_similarity(frames, _vector(sketch_embedding, "sketch embedding")).mean())


def temporal_consistency(frame_embeddings: torch.Tensor | np.ndarray) -> float:
    """Mean cosine of consecutive frames' embeddings `(F, D)`, F ≥ 2 (a single frame is refused)."""
    frames = _matrix(frame_embeddings, "frame embeddings")
    if len(frames) < 2:
        raise MetricsError(f"temporal consistency needs at least 2 frames, got {len(frames)}: evaluate an animation")
    return float(cosine_similarity(frames[:-1], frames[1:]).mean())


def motion_alignment(video_embedding: torch.Tensor | np.ndarray, text_embedding: torch.Tensor | np.ndarray) -> float:
    """The X-CLIP score: cosine of X-CLIP's video embedding `(D,)` and its (video-specific) prompt embedding `(D,)`."""
    return float(cosine_similarity(_vector(video_embedding, "video embedding"), _vector(text_embedding, "text embedding")))


def _float64(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _matrix(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    x = _float64(x)
    if x.ndim != 2 or len(x) == 0:
        raise MetricsError(f"{name} must have shape (frames, dim) with at least one frame, not {tuple(x.shape)}")
    return x


def _vector(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    x = _float64(x)
    if x.ndim != 1:
        raise MetricsError(f"{name} must be one vector (dim,), not shape {tuple(x.shape)}")
    return x


def uniform_frame_indices(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over `num_frames`, first and last included.

    X-CLIP's frame count is fixed by its positional embeddings; an animation shorter than
    that repeats frames (nearest index), a longer one is subsampled.
    """
    if num_frames < 1 or count < 1:
        raise MetricsError(f"cannot sample {count} of {num_frames} frames")
    return [int(i) for i in np.linspace(0, num_frames - 1, count).round()]


# ------------------------------------------------------------------- model folders
def resolve_metric_model_dir(model: str | os.PathLike, kind: str, cache_dir: str | None = None) -> Path:
    """The local folder of a CLIP or X-CLIP model given by folder or hub id, never downloading."""
    path = Path(model).expanduser()
    if path.is_dir():
        check_metric_model_folder(path, str(model), kind, cache_dir)
        return path
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(model)):
        raise MetricModelError(f"{_label(kind)} model {model!r} is neither a folder nor a Hugging Face model id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id=str(model), cache_dir=cache_dir, local_files_only=True))
    except (OSError, ValueError):  # LocalEntryNotFoundError is an OSError
        raise MetricModelError(f"{_label(kind)} model {model} is not downloaded: run `{download_command(kind, str(model), cache_dir)}`") from None
    check_metric_model_folder(folder, str(model), kind, cache_dir)
    return folder


def check_metric_model_folder(folder: Path, name: str, kind: str, cache_dir: str | None = None) -> None:
    """Refuse a folder without a config, weights, tokenizer or image processor (a half download)."""
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append("model.safetensors")
    if not any((folder / f).is_file() for f in ("preprocessor_config.json", "processor_config.json")):
        missing.append("preprocessor_config.json")
    if not (folder / "tokenizer.json").is_file() and not all((folder / f).is_file() for f in ("vocab.json", "merges.txt")):
        missing.append("tokenizer.json")
    if missing:
        raise MetricModelError(
            f"{_label(kind)} model {name} at {folder} is incomplete (missing {', '.join(missing)}): "
            f"run `{download_command(kind, name, cache_dir)}`"
        )
    model_type = _read_model_type(folder)
    if model_type != kind:
        raise MetricModelError(f"{name} is a {model_type!r} model, not {_label(kind)}: pass a {_label(kind)} model with --{kind}")


def _read_model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def download_command(kind: str, model: str, cache_dir: str | None = None) -> str:
    """The exact command that fetches this model (options only where they differ from the defaults)."""
    default = {"clip": DEFAULT_CLIP, "xclip": DEFAULT_XCLIP}[kind]
    command = "python -m engine download-metrics"
    if model != default:
        command += f" --{kind} {model}"
    if cache_dir is not None:
        command += f" --cache-dir {cache_dir}"
    return command


def _label(kind: str) -> str:
    return {"clip": "CLIP", "xclip": "X-CLIP"}[kind]


# ----------------------------------------------------------------------- download
def select_metric_files(repo_files: Sequence[str]) -> list[str]:
    """Configs, tokenizer and processor files plus one weights file (safetensors first) of a repo.

    Model repositories also carry TensorFlow, Flax and duplicate PyTorch weights; only one set is fetched.
    """
    chosen = [f for f in SMALL_FILES if f in repo_files]
    single = [f for f in SINGLE_WEIGHTS if f in repo_files]
    if single:
        return chosen + single[:1]
    for index, shard in SHARDED_WEIGHTS:
        if any(re.fullmatch(index, f) for f in repo_files):
            return chosen + [f for f in repo_files if re.fullmatch(index, f) or re.fullmatch(shard, f)]
    return chosen


def download_metric_models(clip: str = DEFAULT_CLIP, xclip: str = DEFAULT_XCLIP, cache_dir: str | None = None) -> tuple[Path, Path]:
    """Fetch the CLIP and X-CLIP models the metrics use into the Hugging Face cache (a local folder is only checked)."""
    return _download_one(clip, "clip", cache_dir), _download_one(xclip, "xclip", cache_dir)


def _download_one(model: str, kind: str, cache_dir: str | None) -> Path:
    if Path(model).expanduser().is_dir():
        return resolve_metric_model_dir(model, kind, cache_dir)
    from huggingface_hub import HfApi, snapshot_download

    try:
        files = HfApi().list_repo_files(model)
    except Exception as exc:  # network errors, unknown repos: one line, not a traceback
        raise MetricModelError(
            f"cannot list the files of {model} on the Hugging Face Hub ({type(exc).__name__}): check the model id and your connection"
        ) from None
    try:
        snapshot_download(repo_id=model, cache_dir=cache_dir, allow_patterns=select_metric_files(files))
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise MetricModelError(f"download of {model} failed ({type(exc).__name__}: {first_line}): run the command again to resume") from None
    return resolve_metric_model_dir(model, kind, cache_dir)


# ------------------------------------------------------------------------- models
@dataclass
class MetricModels:
    """CLIP (image embeddings) and X-CLIP (video–text score) with their preprocessing, in eval mode."""

    clip: torch.nn.Module
    clip_image_processor: Any
    xclip: torch.nn.Module
    xclip_image_processor: Any
    xclip_tokenizer: Any
    device: torch.device
    clip_name: str
    xclip_name: str

    @property
    def clip_image_size(self) -> int:
        return _square_side(self.clip.config.vision_config.image_size)

    @property
    def xclip_image_size(self) -> int:
        return _square_side(self.xclip.config.vision_config.image_size)

    @property
    def xclip_num_frames(self) -> int:
        return int(self.xclip.config.vision_config.num_frames)


def load_metric_models(
    clip: str | os.PathLike = DEFAULT_CLIP, xclip: str | os.PathLike = DEFAULT_XCLIP, device: str = "auto", cache_dir: str | None = None
) -> MetricModels:
    """Load CLIP and X-CLIP from hub ids (already downloaded) or folders; never downloads."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, XCLIPModel

    clip_dir = resolve_metric_model_dir(clip, "clip", cache_dir)
    xclip_dir = resolve_metric_model_dir(xclip, "xclip", cache_dir)
    target = choose_device(device)
    with quiet_transformers():
        clip_model = _load(lambda: CLIPModel.from_pretrained(clip_dir, local_files_only=True), clip, "clip", cache_dir)
        clip_images = _load(lambda: AutoImageProcessor.from_pretrained(clip_dir, local_files_only=True), clip, "clip", cache_dir)
        xclip_model = _load(lambda: XCLIPModel.from_pretrained(xclip_dir, local_files_only=True), xclip, "xclip", cache_dir)
        xclip_images = _load(lambda: AutoImageProcessor.from_pretrained(xclip_dir, local_files_only=True), xclip, "xclip", cache_dir)
        xclip_tokenizer = _load(lambda: AutoTokenizer.from_pretrained(xclip_dir, local_files_only=True), xclip, "xclip", cache_dir)
    for model in (clip_model, xclip_model):
        model.requires_grad_(False).eval().to(device=target, dtype=torch.float32)
    return MetricModels(clip_model, clip_images, xclip_model, xclip_images, xclip_tokenizer, target, str(clip), str(xclip))


def _load(load, model: str | os.PathLike, kind: str, cache_dir: str | None):
    try:
        return load()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        command = download_command(kind, str(model), cache_dir)
        raise MetricModelError(f"{_label(kind)} model {model} could not be loaded ({first_line}): run `{command}`") from None


def _square_side(image_size: int | Sequence[int]) -> int:
    return int(image_size) if isinstance(image_size, int) else int(max(image_size))


# --------------------------------------------------------------------- embeddings
def clip_image_embeddings(models: MetricModels, images: np.ndarray) -> torch.Tensor:
    """`(N, H, W, 3)` uint8 images → `(N, D)` CLIP image embeddings (float32, CPU).

    Each distinct image is embedded once, so identical images get bit-identical embeddings
    whatever their position in a batch.
    """
    distinct, inverse = np.unique(images.reshape(len(images), -1), axis=0, return_inverse=True)
    distinct = distinct.reshape(-1, *images.shape[1:])
    chunks = []
    with torch.no_grad():
        for start in range(0, len(distinct), EMBEDDING_BATCH):
            pixels = _pixel_values(models.clip_image_processor, distinct[start : start + EMBEDDING_BATCH])
            features = models.clip.get_image_features(pixel_values=pixels.to(models.device))
            chunks.append(_pooled(features).float().cpu())
    return torch.cat(chunks)[torch.as_tensor(inverse.reshape(-1))]


def xclip_embeddings(models: MetricModels, frames: np.ndarray, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """X-CLIP's normalised video embedding `(D,)` of `num_frames` frames and its video-specific prompt embedding `(D,)`."""
    pixels = _pixel_values(models.xclip_image_processor, frames)
    pixels = pixels.reshape(1, len(frames), *pixels.shape[-3:])  # CLIP-style processors give (T, …), VideoMAE-style (1, T, …)
    max_length = models.xclip.config.text_config.max_position_embeddings
    text = models.xclip_tokenizer([prompt], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        output = models.xclip(
            input_ids=text["input_ids"].to(models.device),
            attention_mask=text["attention_mask"].to(models.device),
            pixel_values=pixels.to(models.device),
        )
    return output.video_embeds[0].float().cpu(), output.text_embeds[0, 0].float().cpu()


def _pixel_values(image_processor: Any, images: np.ndarray) -> torch.Tensor:
    return image_processor(images=list(images), return_tensors="pt")["pixel_values"]


def _pooled(features: Any) -> torch.Tensor:
    """transformers 5 returns a model output whose `pooler_output` is the projected embedding; 4.x the tensor itself."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


# ---------------------------------------------------------------------- rendering
def render_square(sketch: Sketch, side: int) -> np.ndarray:
    """All frames of `sketch` as `(F, side, side, 3)` uint8: the longer side fits, the rest is white."""
    from .vector.draw import render_sketch_frames

    frames = render_sketch_frames(sketch, size=side)
    height, width = frames.shape[1:3]
    if (height, width) == (side, side):
        return frames
    top, left = (side - height) // 2, (side - width) // 2
    square = np.full((len(frames), side, side, 3), 255, dtype=np.uint8)
    square[:, top : top + height, left : left + width] = frames[:, :side, :side]
    return square


def input_sketch(animation: Sketch) -> Sketch:
    """The static sketch an animation was made from: its paths' own control points."""
    return animation.with_points(animation.flat_points())


# ------------------------------------------------------------------------ scoring
def score_animation(models: MetricModels, animation: Sketch, motion_prompt: str) -> dict[str, Any]:
    """The three metrics of an animated sketch and what they were computed from."""
    if animation.num_frames < 2:
        raise MetricsError(f"the result has {animation.num_frames} frame(s); the metrics need an animation of at least 2 frames")
    prompt = _check_prompt(motion_prompt)

    clip_side = models.clip_image_size
    frames = render_square(animation, clip_side)
    sketch_image = render_square(input_sketch(animation), clip_side)
    embeddings = clip_image_embeddings(models, np.concatenate([sketch_image, frames]))
    sketch_embedding, frame_embeddings = embeddings[0], embeddings[1:]

    indices = uniform_frame_indices(animation.num_frames, models.xclip_num_frames)
    xclip_side = models.xclip_image_size
    video = frames[indices] if xclip_side == clip_side else render_square(animation.with_frames(animation.frames[indices]), xclip_side)
    video_embedding, text_embedding = xclip_embeddings(models, video, prompt)

    return {
        "schema": METRICS_SCHEMA,
        "version": METRICS_VERSION,
        "metrics": {
            "appearance_alignment": appearance_alignment(frame_embeddings, sketch_embedding),
            "motion_alignment": motion_alignment(video_embedding, text_embedding),
            "temporal_consistency": temporal_consistency(frame_embeddings),
        },
        "motion_prompt": prompt,
        "num_frames": animation.num_frames,
        "xclip_frame_indices": indices,
        "clip_model": models.clip_name,
        "xclip_model": models.xclip_name,
        "image_size": {"clip": clip_side, "xclip": xclip_side},
    }


def evaluate_result(
    result_dir: str | os.PathLike,
    motion_prompt: str | None = None,
    clip: str | os.PathLike = DEFAULT_CLIP,
    xclip: str | os.PathLike = DEFAULT_XCLIP,
    device: str = "auto",
    cache_dir: str | None = None,
    models: MetricModels | None = None,
) -> dict[str, Any]:
    """Score `result_dir/result.json` and write `metrics.json` and `metrics.txt` beside it.

    The motion prompt is `motion_prompt`, else the result's `metadata["motion_prompt"]`, else
    `job.json`'s `motion_prompt`. Pass already loaded `models` to score many results with one
    load (then `clip`, `xclip`, `device` and `cache_dir` are not used).
    """
    folder = Path(result_dir)
    animation = read_result(folder)
    prompt = motion_prompt if motion_prompt is not None else find_motion_prompt(folder, animation)
    if models is None:
        models = load_metric_models(clip, xclip, device, cache_dir)
    report = score_animation(models, animation, prompt)
    atomic_write_text(folder / METRICS_FILE, json.dumps(report, indent=2) + "\n")
    atomic_write_text(folder / TABLE_FILE, format_metrics_table(report) + "\n")
    return report


def read_result(folder: Path) -> Sketch:
    """The animated sketch of a finished result folder (the one result reader, with its completeness check)."""
    try:
        return read_finished_result(folder)
    except ResultError as exc:
        raise MetricsError(str(exc)) from None


def find_motion_prompt(folder: Path, animation: Sketch) -> str:
    """The motion prompt recorded with the result: its metadata, else the job.json of the job folder around it."""
    prompt = animation.metadata.get("motion_prompt")
    job_file = folder.parent / JOB_FILE
    if not prompt and job_file.is_file():
        try:
            job = json.loads(job_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            job = {}
        prompt = job.get("motion_prompt") if isinstance(job, dict) else None
    if not prompt:
        raise MetricsError(f"no motion prompt recorded in {folder / RESULT_FILE}: pass one, e.g. --motion \"A horse is galloping.\"")
    return str(prompt)


def _check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise MetricsError("the motion prompt is empty: pass one, e.g. --motion \"A horse is galloping.\"")
    return prompt.strip()


def format_metrics_table(report: dict[str, Any]) -> str:
    """A small aligned table of the three metrics beside the paper's Table I values."""
    rows = [("metric", "value", "paper")]
    for name in METRIC_NAMES:
        rows.append((name.replace("_", " ") + " ↑", f"{report['metrics'][name]:.3f}", f"{PAPER_SCORES[name]:.3f}"))
    width = max(len(row[0]) for row in rows)
    lines = [f"{label:<{width}}  {value:>6}  {paper:>6}" for label, value, paper in rows]
    lines.append(f"motion prompt: {report['motion_prompt']!r}; {report['num_frames']} frames; X-CLIP frames {report['xclip_frame_indices']}")
    return "\n".join(lines)
