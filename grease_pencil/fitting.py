"""Fitting hand-drawn (POLY) strokes with chains of cubic Béziers, within a tolerance in canvas pixels (Schneider's method)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_DEDUP_EPS = 1e-9  # px; consecutive points closer than this are one point
TANGENT_REACH = 4.0  # × tolerance: chord length used to estimate tangents (robust to jitter)
PROFILE_TOLERANCE = 0.05  # a knot is added where the radius between knots strays more than 5% from the drawn one


# ----------------------------------------------------------------------------- Bézier fitting
def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else np.zeros_like(v)


def _bernstein(u: np.ndarray) -> np.ndarray:
    mu = 1.0 - u
    return np.stack([mu**3, 3 * mu * mu * u, 3 * mu * u * u, u**3], axis=-1)


def _ls_cubic(p: np.ndarray, u: np.ndarray, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """Least-squares cubic with fixed ends and end tangents t1 (out of P0), t2 (out of P3 inwards)."""
    p0, p3 = p[0], p[-1]
    b = _bernstein(u)
    a1 = b[:, 1:2] * t1
    a2 = b[:, 2:3] * t2
    rhs = p - (b[:, 0:1] + b[:, 1:2]) * p0 - (b[:, 2:3] + b[:, 3:4]) * p3
    c11, c12, c22 = (a1 * a1).sum(), (a1 * a2).sum(), (a2 * a2).sum()
    x1, x2 = (rhs * a1).sum(), (rhs * a2).sum()
    det = c11 * c22 - c12 * c12
    seg = float(np.linalg.norm(p3 - p0))
    if seg <= 0:  # a loop piece: fall back on its arc length
        seg = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    alpha1 = alpha2 = -1.0
    if abs(det) > 1e-12 * max(c11 * c22, 1e-300):
        alpha1 = (x1 * c22 - x2 * c12) / det
        alpha2 = (c11 * x2 - c12 * x1) / det
    eps = 1e-6 * seg
    if not (alpha1 > eps and alpha2 > eps):  # Schneider's fallback: a third of the chord each
        alpha1 = alpha2 = seg / 3.0
    return np.array([p0, p0 + alpha1 * t1, p3 + alpha2 * t2, p3])


def _max_error(p: np.ndarray, u: np.ndarray, ctrl: np.ndarray) -> tuple[float, int]:
    d2 = ((_bernstein(u) @ ctrl - p) ** 2).sum(1)
    worst = 1 + int(np.argmax(d2[1:-1]))
    return math.sqrt(float(d2[worst])), worst


def _newton_reparametrise(p: np.ndarray, u: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
    mu = 1.0 - u
    q = _bernstein(u) @ ctrl - p
    d1 = 3 * np.stack([mu * mu, 2 * mu * u, u * u], -1) @ np.diff(ctrl, axis=0)
    d2 = 6 * np.stack([mu, u], -1) @ np.diff(ctrl, 2, axis=0)
    num = (q * d1).sum(1)
    den = (d1 * d1).sum(1) + (q * d2).sum(1)
    step = np.divide(num, den, out=np.zeros_like(num), where=np.abs(den) > 1e-12)
    out = np.clip(u - step, 0.0, 1.0)
    out[0], out[-1] = 0.0, 1.0
    return out


def _fit_piece(p: np.ndarray, t1: np.ndarray, t2: np.ndarray, tol: float, newton_steps: int = 6):
    """Fit one cubic to points p (m ≥ 2); returns (ctrl (4,2), max error, worst local index, each point's parameter)."""
    if len(p) == 2:
        seg = float(np.linalg.norm(p[1] - p[0]))
        return np.array([p[0], p[0] + t1 * seg / 3, p[1] + t2 * seg / 3, p[1]]), 0.0, -1, np.array([0.0, 1.0])
    d = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]
    u = d / d[-1]
    ctrl = _ls_cubic(p, u, t1, t2)
    err, worst = _max_error(p, u, ctrl)
    for _ in range(newton_steps):
        if err <= tol:
            break
        u2 = _newton_reparametrise(p, u, ctrl)
        ctrl2 = _ls_cubic(p, u2, t1, t2)
        err2, worst2 = _max_error(p, u2, ctrl2)
        if err2 >= err:
            break
        u, ctrl, err, worst = u2, ctrl2, err2, worst2
    return ctrl, err, worst, u


def _profile_error(radius: np.ndarray, u: np.ndarray, floor: float) -> tuple[float, int]:
    """Largest relative error, and where, of the radius Grease Pencil draws along one segment:
    linear in the Bézier parameter between the two knots' radii (relative to the drawn radius,
    not below `floor`, so near-zero tips are not split forever)."""
    if len(radius) <= 2:
        return 0.0, -1
    modelled = radius[0] * (1.0 - u) + radius[-1] * u
    error = np.abs(modelled - radius) / np.maximum(radius, floor)
    worst = 1 + int(np.argmax(error[1:-1]))
    return float(error[worst]), worst


def _turn_angle(v_in: np.ndarray, v_out: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v_in, axis=-1) * np.linalg.norm(v_out, axis=-1)
    cos = np.divide((v_in * v_out).sum(-1), n, out=np.ones(len(n)), where=n > 0)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _find_corners(pts: np.ndarray, closed: bool, min_angle: float, reach: float, limit: int) -> np.ndarray:
    """Indices of corners: turns sharper than `min_angle` between chords reaching `reach` px back
    and ahead (so sub-pixel jitter is no corner), the sharpest within `reach` of each other,
    at most `limit`. For a closed polyline (last point = first) index 0 is the join."""
    if closed:
        m = len(pts) - 1
        ext = np.vstack([pts[:-1]] * 3 + [pts[:1]])  # unwrap the loop: look across the join
        centre = np.arange(m, 2 * m)
    else:
        ext, centre = pts, np.arange(1, len(pts) - 1)
    if len(centre) == 0 or limit <= 0:
        return np.zeros(0, np.int64)
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(ext, axis=0), axis=1))]
    back = np.minimum(np.searchsorted(s, s[centre] - reach, "right") - 1, centre - 1).clip(0)
    ahead = np.maximum(np.searchsorted(s, s[centre] + reach, "left"), centre + 1).clip(None, len(ext) - 1)
    angle = _turn_angle(ext[centre] - ext[back], ext[ahead] - ext[centre])
    cand = np.flatnonzero(angle > min_angle)
    kept: list[int] = []
    for c in cand[np.argsort(-angle[cand], kind="stable")]:  # greedy non-maximum suppression
        if len(kept) == limit:
            break
        if all(abs(s[centre[c]] - s[centre[k]]) > reach for k in kept):
            kept.append(int(c))
    idx = centre[np.sort(np.array(kept, dtype=np.int64))]
    return idx - m if closed else idx


def _fit_polyline(
    points: Any,
    tolerance_px: float,
    max_segments: int = 256,
    closed: bool = False,
    corner_angle_deg: float = 60.0,
    radius: np.ndarray | None = None,
    profile_tolerance: float = PROFILE_TOLERANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`fit_cubic_beziers` plus the index of each knot in the input (index N = closing copy of 0) and
    each input point's curve parameter (segment index + its parameter in the segment: the fit's own).

    With `radius` (one per input point), pieces are also split, at drawn points, until the radius
    interpolated linearly between each piece's knots is within `profile_tolerance` (relative) of
    every drawn radius: the same greedy refinement, so the geometric tolerance still holds and
    every knot is still a drawn point."""
    pts_in = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts_in) == 0:
        raise ValueError("cannot fit a stroke with no points")
    if not np.isfinite(pts_in).all():
        raise ValueError("the stroke has NaN or infinite coordinates")
    if not tolerance_px > 0:
        raise ValueError(f"the fitting tolerance must be positive, not {tolerance_px}")
    max_segments = max(1, int(max_segments))
    n_in = len(pts_in)
    keep = np.r_[True, np.linalg.norm(np.diff(pts_in, axis=0), axis=1) > _DEDUP_EPS]
    idx = np.flatnonzero(keep)
    if closed and len(idx) > 1 and np.linalg.norm(pts_in[idx[-1]] - pts_in[idx[0]]) <= _DEDUP_EPS:
        idx = idx[:-1]
    pts = pts_in[idx]
    if radius is not None:
        radius_in = np.asarray(radius, dtype=np.float64).reshape(-1)
        if len(radius_in) != n_in:
            raise ValueError(f"{len(radius_in)} radii for {n_in} points")
    if len(pts) == 1:  # a dot: 4 equal points
        return np.repeat(pts, 4, axis=0), np.array([idx[0], idx[0]]), np.zeros(n_in)
    if closed:
        pts = np.vstack([pts, pts[:1]])
        idx = np.r_[idx, n_in]
    n = len(pts)
    if n == 2:  # a straight cubic
        return pts[0] + np.linspace(0.0, 1.0, 4)[:, None] * (pts[1] - pts[0]), idx.copy(), _input_params(np.array([0.0, 1.0]), idx, n_in)

    # Corners: split there first, with one-sided tangents on either side.
    corner = _find_corners(pts, closed, math.radians(corner_angle_deg), 2.0 * tolerance_px, max_segments - 1)
    join_is_corner = not closed or 0 in corner
    corner = corner[(corner > 0) & (corner < n - 1)]
    breaks = np.r_[0, corner, n - 1]

    # Tangents from chords reaching `reach` px (at least one neighbour), so jitter does not tilt them.
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    reach = TANGENT_REACH * tolerance_px

    def ahead(i: int, hi: int) -> int:
        return int(min(max(np.searchsorted(chord, chord[i] + reach, "left"), i + 1), hi))

    def back(i: int, lo: int) -> int:
        return int(max(min(np.searchsorted(chord, chord[i] - reach, "right") - 1, i - 1), lo))

    join = _unit(pts[ahead(0, n - 1)] - pts[back(n - 1, 0)]) if closed and not join_is_corner else None

    def start_tangent(a: int, b: int) -> np.ndarray:
        return join if a == 0 and join is not None else _unit(pts[ahead(a, b)] - pts[a])

    def end_tangent(a: int, b: int) -> np.ndarray:
        return -join if b == n - 1 and join is not None else _unit(pts[back(b, a)] - pts[b])

    point_radius = None if radius is None else radius_in[np.where(idx < n_in, idx, 0)]
    floor = 0.0 if radius is None else max(0.1 * float(point_radius.max(initial=0.0)), 1e-12)

    def fitted_piece(a: int, b: int, t1: np.ndarray, t2: np.ndarray) -> list:
        """[a, b, t1, t2, ctrl, err, worst, u, profile error, its worst local index]"""
        fit = _fit_piece(pts[a : b + 1], t1, t2, tolerance_px)
        profile = (0.0, -1) if point_radius is None else _profile_error(point_radius[a : b + 1], fit[3], floor)
        return [a, b, t1, t2, *fit, *profile]

    pieces = [fitted_piece(int(a), int(b), start_tangent(int(a), int(b)), end_tangent(int(a), int(b))) for a, b in zip(breaks[:-1], breaks[1:])]

    # Greedy refinement: split the worst piece at its worst point until all fit or the budget ends;
    # the shape first, then the line-weight profile.
    while len(pieces) < max_segments:
        j = max(range(len(pieces)), key=lambda i: pieces[i][5])
        if pieces[j][5] > tolerance_px:
            w = pieces[j][0] + pieces[j][6]
        else:
            j = max(range(len(pieces)), key=lambda i: pieces[i][8])
            if pieces[j][8] <= profile_tolerance:
                break
            w = pieces[j][0] + pieces[j][9]
        a, b, t1, t2 = pieces[j][:4]
        tc = _unit(pts[ahead(w, b)] - pts[back(w, a)])
        if not tc.any():
            tc = _unit(pts[w + 1] - pts[w])
        pieces[j : j + 1] = [fitted_piece(a, w, t1, -tc), fitted_piece(w, b, tc, t2)]

    ctrl = np.vstack([pieces[0][4][:1]] + [pc[4][1:] for pc in pieces])
    knots = idx[np.r_[pieces[0][0], [pc[1] for pc in pieces]]]
    params = np.empty(n)
    for j, piece in enumerate(pieces):  # a point's curve parameter: its segment's index plus its position in it
        params[piece[0] : piece[1] + 1] = j + np.asarray(piece[7], dtype=np.float64)
    return ctrl, knots, _input_params(params, idx, n_in)


def _input_params(params: np.ndarray, idx: np.ndarray, n_in: int) -> np.ndarray:
    """Parameters of the de-duplicated points, for every input point (a duplicate takes its original's)."""
    kept = idx[idx < n_in]
    owner = np.searchsorted(kept, np.arange(n_in), side="right") - 1
    return params[np.clip(owner, 0, len(kept) - 1)]


def fit_cubic_beziers(
    points: Any,
    tolerance_px: float = 0.5,
    max_segments: int = 256,
    closed: bool = False,
    corner_angle_deg: float = 60.0,
) -> np.ndarray:
    """Fit a polyline (N, 2) with a chain of cubic Béziers: (3k+1, 2) control points.

    Schneider's idea: chord-length parameters, end tangents estimated from the neighbours,
    a tangent-constrained least-squares cubic, Newton reparametrisation when the error is
    above the tolerance, and a split at the worst point (centred tangent there) while the
    largest distance from a point to its parameter on the curve exceeds `tolerance_px`
    (greedy: the worst piece first, at most `max_segments` pieces; past that budget the
    error may exceed the tolerance). Turns sharper than `corner_angle_deg`, measured between
    chords reaching 2 × `tolerance_px` back and ahead (jitter below that is no corner), are
    split first with one-sided tangents, so corners stay sharp. Consecutive duplicate points are
    dropped; one point gives a dot (4 equal points), two give a straight cubic. With
    `closed`, the curve returns to its first point (which is appended when needed) with a
    smooth join unless the join is a corner.
    """
    return _fit_polyline(points, tolerance_px, max_segments, closed, corner_angle_deg)[0]


def bezier_points(ctrl: Any, samples_per_segment: int = 32) -> np.ndarray:
    """Dense points on a (3k+1, D) chain of cubics, for checks and bounds."""
    c = np.asarray(ctrl, dtype=np.float64)
    k = (len(c) - 1) // 3
    seg = c[3 * np.arange(k)[:, None] + np.arange(4)]  # (k, 4, D)
    b = _bernstein(np.linspace(0.0, 1.0, samples_per_segment))  # (S, 4)
    return np.einsum("sj,kjd->ksd", b, seg).reshape(-1, c.shape[1])


def _cubic_extrema(seg: np.ndarray) -> np.ndarray:
    """Points of each cubic (M, 4, 2) at its ends and axis extrema: the exact bounding box."""
    d = np.diff(seg, axis=1)  # (M, 3, 2): B'(t)/3 = (1-t)²d0 + 2(1-t)t d1 + t² d2
    a = d[:, 0] - 2 * d[:, 1] + d[:, 2]
    b = 2 * (d[:, 1] - d[:, 0])
    c = d[:, 0]
    ts = [np.zeros_like(a), np.ones_like(a)]
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    quad = np.abs(a) > 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(quad, (-b + sq) / (2 * a), np.where(np.abs(b) > 0, -c / b, 0.0))
        r2 = np.where(quad, (-b - sq) / (2 * a), 0.0)
    for r in (r1, r2):
        ok = (disc >= 0) & np.isfinite(r) & (r > 0) & (r < 1)
        ts.append(np.where(ok, r, 0.0))
    t = np.stack(ts, axis=1).reshape(len(seg), -1)  # (M, 8): both axes' candidates, evaluated on both
    b4 = _bernstein(t)  # (M, 6, 4)
    return np.einsum("mtj,mjd->mtd", b4, seg).reshape(-1, 2)


