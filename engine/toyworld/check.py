"""Did the toy model learn its world? Sample clips from captions with its own DDIM sampler and measure,
from the pixels alone, which way the drawing moved.

This check is independent of the method: it uses only the backbone contract (text embeddings,
noise prediction, decoding) and the scheduler saved with the model, never a LoRA, SDS or the
rasterizer's gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .motions import DIRECTIONS, motion_class


@dataclass(frozen=True)
class PixelMotion:
    """Net motion of the ink from the first to the last frame, measured from pixels."""

    translation: np.ndarray  # (2,) px
    rotation: float  # rad, clockwise +
    log_scale: float
    hop: float  # px the path rises above the straight line between its ends
    size: float  # px, RMS radius of the ink in frame 0

    @property
    def motion(self) -> str:
        return motion_class(self.translation, self.rotation, self.log_scale, self.hop, self.size)


def ink_of(grey: np.ndarray) -> np.ndarray:
    """Ink amount per pixel, 0 … 1, with the VAE's faint background haze removed."""
    ink = 1.0 - grey.astype(np.float64) / 255.0
    return np.where(ink > 0.15, ink, 0.0)


def centroid_and_radius(ink: np.ndarray) -> tuple[np.ndarray, float]:
    height, width = ink.shape
    total = ink.sum()
    if total <= 0:
        return np.array([width / 2, height / 2]), 0.0
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    centre = np.array([(xs * ink).sum() / total, (ys * ink).sum() / total])
    radius = math.sqrt(float((((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) * ink).sum() / total))
    return centre, radius


def estimate_motion(frames: np.ndarray, angles_deg: np.ndarray | None = None, log_scales: np.ndarray | None = None) -> PixelMotion:
    """The similarity that best carries the first frame's ink onto the last frame's (centroids matched,
    turn and scale by a grid search over blurred ink), and the bounce of the centroid path."""
    import cv2

    angles_deg = np.arange(-75, 76, 3) if angles_deg is None else angles_deg
    log_scales = np.arange(-0.7, 0.71, 0.05) if log_scales is None else log_scales
    inks = [ink_of(f) for f in frames]
    centres = np.array([centroid_and_radius(ink)[0] for ink in inks])
    first_centre, size = centroid_and_radius(inks[0])
    blurred_first, blurred_last = (cv2.GaussianBlur(ink.astype(np.float32), (0, 0), 1.5) for ink in (inks[0], inks[-1]))
    last_norm = np.linalg.norm(blurred_last) or 1.0
    candidates = []
    for angle in angles_deg:
        for log_scale in log_scales:
            # cv2 turns counterclockwise on screen for a positive angle: ours is clockwise
            matrix = cv2.getRotationMatrix2D((float(first_centre[0] - 0.5), float(first_centre[1] - 0.5)), -float(angle), math.exp(log_scale))
            matrix[:, 2] += centres[-1] - first_centre
            warped = cv2.warpAffine(blurred_first, matrix, blurred_first.shape[::-1], flags=cv2.INTER_LINEAR)
            score = float((warped * blurred_last).sum()) / ((np.linalg.norm(warped) or 1.0) * last_norm)
            candidates.append((score, math.radians(angle), float(log_scale)))
    # a symmetric drawing (a circle, a star) matches itself turned: among near-ties the smallest turn wins
    top = max(score for score, _, _ in candidates)
    _, rotation, log_scale = min((c for c in candidates if c[0] >= top - 2e-3), key=lambda c: (abs(c[1]), abs(c[2])))
    line = centres[0, 1] + (centres[-1, 1] - centres[0, 1]) * np.linspace(0, 1, len(centres))
    hop = float(max(0.0, np.max(line - centres[:, 1])))
    return PixelMotion(centres[-1] - centres[0], rotation, log_scale, hop, size)


def sample_clips(backbone, prompts: list[str], steps: int = 25, guidance: float = 7.5, seed: int = 0, num_frames: int | None = None, batch: int = 16) -> np.ndarray:
    """(N, F, H, W) uint8 grey frames sampled from the model for each prompt: DDIM with
    classifier-free guidance against the empty prompt, from the model's own scheduler config."""
    import torch
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_pretrained(backbone.folder / "scheduler", local_files_only=True)
    height, width = backbone.frame_size
    num_frames = num_frames or backbone.num_frames
    with torch.no_grad():
        probe = backbone.encode_frames(torch.ones(1, 3, height, width), sample=False)
    channels, latent_h, latent_w = probe.shape[1], probe.shape[-2], probe.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    empty = backbone.encode_prompt("")
    out = []
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        text = torch.cat([empty.expand(len(chunk), -1, -1), torch.cat([backbone.encode_prompt(p) for p in chunk])])
        latents = torch.randn((len(chunk), channels, num_frames, latent_h, latent_w), generator=generator)
        scheduler.set_timesteps(steps)
        with torch.no_grad():
            for t in scheduler.timesteps:
                prediction = backbone.predict_noise(torch.cat([latents, latents]), t.expand(2 * len(chunk)), text).float()
                unconditional, conditional = prediction.chunk(2)
                latents = scheduler.step(unconditional + guidance * (conditional - unconditional), t, latents).prev_sample
            for clip in latents:
                rgb = backbone.decode_latents(clip[None])
                out.append((rgb[:, 0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy())
    return np.stack(out)


@dataclass(frozen=True)
class CheckCase:
    prompt: str
    motion: str  # the captioned motion
    group: str  # "seen pairs", "novel pairs", …


def check_cases(per_direction: int = 6, seed: int = 0) -> list[CheckCase]:
    """Captions to sample: every direction with training subjects in seen pairs; the held-out pairs
    (novel combinations); and each non-translation motion once per a few subjects."""
    from .motions import MOTIONS
    from .world import HELD_OUT_PAIRS, caption, training_pairs

    rng = np.random.default_rng(seed)
    pairs = training_pairs()
    cases = []
    for direction in DIRECTIONS:
        subjects = [s for s, m in pairs if m == direction]
        for name in rng.choice(subjects, per_direction, replace=len(subjects) < per_direction):
            cases.append(CheckCase(caption(str(name), direction), direction, "translation, seen pairs"))
    for name, motion in sorted(HELD_OUT_PAIRS):
        cases.append(CheckCase(caption(name, motion), motion, "novel pairs"))
    for motion in MOTIONS:
        if motion in DIRECTIONS or motion == "wave":
            continue
        subjects = [s for s, m in pairs if m == motion]
        for name in rng.choice(subjects, max(2, per_direction // 2), replace=False):
            cases.append(CheckCase(caption(str(name), motion), motion, "turn, scale, bounce"))
    return cases


def check_model(backbone, cases: list[CheckCase], steps: int = 25, guidance: float = 7.5, seed: int = 0) -> dict:
    """Sample each case and report, per group, the share whose measured motion is the captioned one."""
    clips = sample_clips(backbone, [c.prompt for c in cases], steps=steps, guidance=guidance, seed=seed)
    measured = [estimate_motion(clip).motion for clip in clips]
    groups: dict[str, list[bool]] = {}
    for case, found in zip(cases, measured):
        groups.setdefault(case.group, []).append(found == case.motion)
    return {
        "groups": {name: {"correct": int(sum(hits)), "cases": len(hits), "share": float(np.mean(hits))} for name, hits in groups.items()},
        "cases": [{"prompt": c.prompt, "motion": c.motion, "measured": m} for c, m in zip(cases, measured)],
        "clips": clips,
    }
