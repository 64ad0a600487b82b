"""Similarity motions (turn, uniform scale, shift) fitted to point tracks, robustly; tracking and transfer both use them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROBUST_ITERATIONS = 3  # reweighting rounds of the robust similarity fit


@dataclass(frozen=True)
class Similarity:
    """x ↦ centre + shift + scale·R(angle)·(x − centre).

    Parametrised about a centre (the tracks' centroid) so that scaling the parameters scales
    the motion naturally: half the strength is half the turn about the same point.
    """

    centre: np.ndarray  # (2,)
    shift: np.ndarray  # (2,)
    angle: float = 0.0  # radians; positive turns x towards y (clockwise on screen, y down)
    log_scale: float = 0.0

    def apply(self, points: np.ndarray) -> np.ndarray:
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        rotation = math.exp(self.log_scale) * np.array([[cos, -sin], [sin, cos]])
        return self.centre + self.shift + (points - self.centre) @ rotation.T

    def scaled(self, strength: float) -> "Similarity":
        return Similarity(self.centre, strength * self.shift, strength * self.angle, strength * self.log_scale)

    def about(self, centre: np.ndarray) -> "Similarity":
        """The same map, parametrised about another centre (its shift is where that centre goes)."""
        return Similarity(centre, self.apply(centre[None])[0] - centre, self.angle, self.log_scale)


def fit_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Similarity:
    """Weighted least-squares similarity from `source` (N, 2) to `target` (N, 2), in closed form."""
    weights = np.ones(len(source)) if weights is None else weights
    weights = weights / weights.sum()
    source_centre, target_centre = weights @ source, weights @ target
    a, b = source - source_centre, target - target_centre
    dot = np.sum(weights * np.sum(a * b, axis=1))
    cross = np.sum(weights * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
    norm = np.sum(weights * np.sum(a * a, axis=1))
    if norm <= 1e-12:  # all points at one place: only the shift is known
        return Similarity(source_centre, target_centre - source_centre)
    return Similarity(source_centre, target_centre - source_centre, math.atan2(cross, dot), math.log(max(math.hypot(dot, cross) / norm, 1e-6)))


def fit_similarity_robust(source: np.ndarray, target: np.ndarray) -> Similarity:
    """A similarity that a few stray tracks (flow bleeding over the subject's edge) cannot pull."""
    similarity = fit_similarity(source, target)
    for _ in range(ROBUST_ITERATIONS):
        residual = np.linalg.norm(target - similarity.apply(source), axis=1)
        cutoff = 1.5 * np.median(residual) + 1e-3
        similarity = fit_similarity(source, target, 1.0 / (1.0 + (residual / cutoff) ** 2))  # Cauchy weights
    return similarity.about(source.mean(axis=0))  # its shift: how the tracks' centroid moves


