"""Similarity (turn, uniform scale, shift) and affine motions fitted to point tracks, robustly, with a strength that scales them naturally."""

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


@dataclass(frozen=True)
class Affine:
    """x ↦ centre + shift + linear·(x − centre): a similarity that may also stretch and shear.

    `scaled(strength)` scales it the way `Similarity.scaled` does: the linear part, written as a
    turn times a stretch (polar decomposition, R·P), becomes R(strength·angle)·P^strength, so half
    the strength is half the turn and half the stretch, in log terms, about the same point.
    """

    centre: np.ndarray  # (2,)
    shift: np.ndarray  # (2,)
    linear: np.ndarray  # (2, 2)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.centre + self.shift + (points - self.centre) @ self.linear.T

    def scaled(self, strength: float) -> "Affine":
        if strength == 1.0:
            return self
        u, sigma, vt = np.linalg.svd(self.linear)
        if np.linalg.det(u @ vt) < 0 or sigma.min() <= 1e-9:  # a mirror or a collapse: scale the matrix itself
            return Affine(self.centre, strength * self.shift, np.eye(2) + strength * (self.linear - np.eye(2)))
        rotation = u @ vt  # linear = rotation · stretch, the stretch being vtᵀ·diag(sigma)·vt
        angle = math.atan2(rotation[1, 0], rotation[0, 0]) * strength
        turned = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        return Affine(self.centre, strength * self.shift, turned @ (vt.T @ np.diag(sigma**strength) @ vt))


def fit_affine(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Affine:
    """Weighted least-squares affine map from `source` (N, 2) to `target` (N, 2), about the centroid."""
    weights = np.ones(len(source)) if weights is None else weights
    weights = weights / weights.sum()
    source_centre, target_centre = weights @ source, weights @ target
    a, b = source - source_centre, target - target_centre
    gram = (weights[:, None] * a).T @ a
    if np.linalg.cond(gram) > 1e8:  # collinear points: only a similarity is known
        similarity = fit_similarity(source, target, weights)
        cos, sin = math.cos(similarity.angle), math.sin(similarity.angle)
        linear = math.exp(similarity.log_scale) * np.array([[cos, -sin], [sin, cos]])
        return Affine(similarity.centre, similarity.shift, linear)
    linear = np.linalg.solve(gram, (weights[:, None] * a).T @ b).T
    return Affine(source_centre, target_centre - source_centre, linear)


def fit_affine_robust(source: np.ndarray, target: np.ndarray) -> Affine:
    """An affine map that a few stray tracks cannot pull (Cauchy reweighting, as `fit_similarity_robust`)."""
    affine = fit_affine(source, target)
    for _ in range(ROBUST_ITERATIONS):
        residual = np.linalg.norm(target - affine.apply(source), axis=1)
        cutoff = 1.5 * np.median(residual) + 1e-3
        affine = fit_affine(source, target, 1.0 / (1.0 + (residual / cutoff) ** 2))
    centre = source.mean(axis=0)
    return Affine(centre, affine.apply(centre[None])[0] - centre, affine.linear)
