"""A differentiable stroke rasterizer in pure PyTorch (CPU and CUDA), with diffvg's stroke semantics.

`rasterize(segments, half_widths, height, width)` returns, for each pixel, the fraction of its
area covered by the union of strokes along cubic Bézier segments: round-capped, or with flat
(butt) ends where `flat_start` / `flat_end` say, and of one width per segment or one per
control point (a pressure stroke), interpolated along each segment by its Bernstein weights.

How it works, and why it is fast and right:

1. **Flatten.** Each cubic is cut into pieces short enough that the chord is within
   `flatten_tolerance` px of the curve and no longer than `max_piece_length` px. The piece
   count is chosen per segment (no gradient flows through the choice), so a dot costs one
   piece and a canvas-spanning curve about a hundred.
2. **Sparse pairs.** Each piece is a capsule (a segment with round ends). Only pixels whose
   centre lies within `half_width + 1/√2` of a piece can be touched by it, so candidate
   (piece, pixel) pairs come from each piece's small bounding box and are pruned by
   distance without gradient. Memory and time grow with the area the strokes cover, never
   with pixels × pieces.
3. **Exact box-filtered coverage.** For a pair, let d be the distance from the pixel centre
   to the piece and n the unit direction from the nearest point to the centre. Projected on
   n, a uniformly random point of the unit pixel is the sum of two uniform variables of
   widths |n_x| and |n_y|: a trapezoid. The area of the pixel inside the band
   {|offset| ≤ w} is then `G(w − d) + G(w + d) − 1`, with G the trapezoid's CDF (piecewise
   quadratic, closed form). This is the *exact* area for a straight stroke at any angle and
   any width, sub-pixel ones included; round caps and joins use the same formula with n
   pointing radially from the end point, a close approximation (documented error below).
   A piece whose width changes along it (per-point widths) is a tapered capsule: the width is
   interpolated at the nearest point of the piece, which is exact for a straight trapezoid
   and the convex hull of the end discs up to the (second-order) slope of the taper. A flat
   end multiplies the coverage by the pixel's area on the inner side of the end line (the
   same trapezoid CDF along the stroke's direction); it applies to the pieces near that end.
4. **Union.** A pixel's coverage is the maximum over the pieces that reach it. Autograd
   gives gradients to the control points and half-widths through the winning piece, so
   joins and caps receive gradients (diffvg gives none to joins), and the gradients are
   those of the forward function itself (diffvg's edge sampling weights curved edges by
   the centreline's speed; see design.md §3).

Accuracy against 128×128-supersampled ground truth (tests/test_raster.py): exact to float
precision for straight strokes away from their ends; along curved strokes the per-pixel
error is below 0.02 (the ground truth's own noise); round ends are drawn as a band narrowed
by the circle's curvature (`cap_narrowing`), within about 0.06 per pixel in the worst case
(an end point on a pixel corner) and within 1% in total area, sub-pixel widths included.
"""

from __future__ import annotations

import math

import torch
import torch.utils.checkpoint

from ..errors import RasterError

MAX_CANVAS = 4096
MAX_SEGMENTS = 1_000_000  # per call, all batch elements together
MAX_PIECES_PER_SEGMENT = 1024
PAIR_CHUNK = 1 << 18  # pairs per recomputed chunk: ~30 MB of transient activations
PIECE_CHUNK = 1 << 13  # pieces whose candidate pixels are generated together
PIXEL_REACH = math.sqrt(0.5)  # half the pixel diagonal: how far a pixel's footprint reaches
_EPS = 1e-12


def rasterize(
    segments: torch.Tensor,
    half_widths: torch.Tensor | float,
    height: int,
    width: int,
    *,
    flat_start: torch.Tensor | None = None,
    flat_end: torch.Tensor | None = None,
    flatten_tolerance: float = 0.02,
    max_piece_length: float = 4.0,
) -> torch.Tensor:
    """Coverage of the union of strokes along cubic Bézier segments (round caps unless flat).

    Args:
        segments: `(..., M, 4, 2)` cubic control points in pixel coordinates (x right, y down,
            pixel (i, j) covers [j, j+1) × [i, i+1)).
        half_widths: broadcastable to `(..., M)`, one per segment; or with trailing dimensions
            `(M, 4)`, one per control point (always read so, leading dimensions broadcast),
            interpolated along the segment as w(t) = Σ Bᵢ(t)·wᵢ. diffvg's
            `stroke_width` (1.5 draws 3 px); 0 draws nothing.
        height, width: canvas size in pixels.
        flat_start, flat_end: booleans broadcastable to `(..., M)`: segment m begins (ends) a
            stroke with a flat end across its tangent, instead of a round cap.
        flatten_tolerance: largest distance, in px, between a curve and its flattened chords.
        max_piece_length: longest flattened piece, in px; smaller pieces prune better.

    Returns:
        `(..., height, width)` coverage in [0, 1], differentiable w.r.t. `segments` and
        `half_widths`, on the device and in the dtype of `segments`.
    """
    segments, half_widths, batch_shape = _check_inputs(segments, half_widths, height, width)
    batch, num_segments = segments.shape[0], segments.shape[1]
    out = segments.new_zeros(batch * height * width)
    if num_segments == 0 or batch == 0:
        return (out + 0.0 * (segments.sum() + half_widths.sum())).reshape(*batch_shape, height, width)

    flat_segments = segments.reshape(batch * num_segments, 4, 2)
    per_point = half_widths.dim() == 3
    flat_widths = half_widths.reshape(batch * num_segments, 4) if per_point else half_widths.reshape(batch * num_segments)
    with torch.no_grad():
        piece_segment, t0, t1 = _plan_pieces(flat_segments.detach(), flatten_tolerance, max_piece_length)
    start, end = _piece_endpoints(flat_segments, piece_segment, t0, t1)
    if per_point:
        control_widths = flat_widths[piece_segment]
        piece_width, piece_end_width = bezier_value(control_widths, t0), bezier_value(control_widths, t1)
        reach_width = torch.maximum(piece_width, piece_end_width)
    else:
        piece_width, piece_end_width = flat_widths[piece_segment], None
        reach_width = piece_width
    piece_batch = piece_segment // num_segments
    cuts = _flat_end_cuts(flat_start, flat_end, batch_shape, batch, num_segments, piece_segment, t0, t1, start, end, reach_width, segments.device)

    with torch.no_grad():
        pair_piece, pair_x, pair_y = _near_pixel_pairs(start.detach(), end.detach(), reach_width.detach(), height, width)
    coverage = _pair_coverage(start, end, piece_width, piece_end_width, cuts, pair_piece, pair_x, pair_y)
    pixel_index = (piece_batch[pair_piece] * height + pair_y) * width + pair_x
    out = out.scatter_reduce(0, pixel_index, coverage, reduce="amax", include_self=True)
    if torch.is_grad_enabled() and not out.requires_grad and (segments.requires_grad or half_widths.requires_grad):
        out = out + 0.0 * (segments.sum() + half_widths.sum())  # nothing on the canvas: zero gradients, not an error
    return out.reshape(*batch_shape, height, width)


def bezier_value(control: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A cubic's scalar value (a width) from its 4 control values `(..., 4)` at `t` `(...)`."""
    s = 1.0 - t
    return s * s * s * control[..., 0] + 3 * s * s * t * control[..., 1] + 3 * s * t * t * control[..., 2] + t * t * t * control[..., 3]


FLAT_CUT_REACH = 1.5  # × the half-width: pieces whose start lies this near a flat end are cut by its end line


def _flat_end_cuts(flat_start, flat_end, batch_shape, batch, num_segments, piece_segment, t0, t1, start, end, reach_width, device):
    """For pieces near a flat end: (piece index, end point, unit direction into the stroke), as tensors, or None.

    The end line is the stroke's own: through the segment's first (last) point, across the
    direction of its first (last) piece, so a join further along is never cut.
    """
    if flat_start is None and flat_end is None:
        return None
    pieces, origins, directions = [], [], []
    for flags, at_start in ((flat_start, True), (flat_end, False)):
        if flags is None:
            continue
        flags = torch.broadcast_to(torch.as_tensor(flags, dtype=torch.bool, device=device), (*batch_shape, num_segments)).reshape(batch * num_segments)
        if not flags.any():
            continue
        with torch.no_grad():
            boundary = (t0 == 0) if at_start else (t1 == 1)  # the piece that touches the segment's end point
            first = torch.full((batch * num_segments,), -1, dtype=torch.long, device=device)
            ids = torch.nonzero(boundary, as_tuple=True)[0]
            first[piece_segment[ids]] = ids
            owner = first[piece_segment]
            point = start.detach()[owner] if at_start else end.detach()[owner]
            near = flags[piece_segment] & ((start.detach() if at_start else end.detach()) - point).norm(dim=-1).le(FLAT_CUT_REACH * reach_width.detach() + 1.0)
            chosen = torch.nonzero(near, as_tuple=True)[0]
        owner = owner[chosen]
        if at_start:
            origin, inward = start[owner], end[owner] - start[owner]
        else:
            origin, inward = end[owner], start[owner] - end[owner]
        pieces.append(chosen)
        origins.append(origin)
        directions.append(inward)
    if not pieces:
        return None
    return torch.cat(pieces), torch.cat(origins), torch.cat(directions)


def _pair_coverage(start, end, piece_width, piece_end_width, cuts, pair_piece, pair_x, pair_y) -> torch.Tensor:
    """Coverage of each (piece, pixel) pair, computed in chunks.

    Plain autograd would keep about thirty intermediate values per pair (close to 1 GB
    for 16 frames × 64 strokes); `_RecomputedCoverage` keeps only the pair indices and
    recomputes a chunk at a time during backward. Per-point widths and flat ends ride along
    as optional per-piece tensors; the uniform, round-capped case pays nothing for them.
    """
    end_width = piece_end_width if piece_end_width is not None else piece_width
    tapered = piece_end_width is not None
    cut_piece = cut_origin = cut_direction = None
    if cuts is not None:  # per piece: which cut (−1: none); several cuts of one piece are its start and its end
        cut_pieces, cut_origin, cut_direction = cuts
        cut_piece = cut_pieces
    chunks = []
    for i in range(0, len(pair_piece), PAIR_CHUNK):
        piece, x, y = pair_piece[i : i + PAIR_CHUNK], pair_x[i : i + PAIR_CHUNK], pair_y[i : i + PAIR_CHUNK]
        coverage = _RecomputedCoverage.apply(start, end, piece_width, end_width, tapered, piece, x, y)
        if cut_piece is not None:
            coverage = coverage * _flat_cut_factor(cut_piece, cut_origin, cut_direction, piece, x, y)
        chunks.append(coverage)
    return torch.cat(chunks) if chunks else start.new_zeros(0)


def _flat_cut_factor(cut_piece, cut_origin, cut_direction, piece, x, y) -> torch.Tensor:
    """Per pair: the fraction of the pixel on the inner side of its piece's flat end lines (1 for other pairs)."""
    factor = torch.ones(len(piece), dtype=cut_origin.dtype, device=cut_origin.device)
    order = torch.argsort(cut_piece)
    sorted_pieces = cut_piece[order]
    for _ in range(2):  # a piece can be cut by the start and by the end of its stroke
        position = torch.searchsorted(sorted_pieces, piece).clamp(max=len(sorted_pieces) - 1)
        hit = sorted_pieces[position] == piece
        if not hit.any():
            break
        pairs = torch.nonzero(hit, as_tuple=True)[0]
        cut = order[position[pairs]]
        centre = torch.stack([x[pairs], y[pairs]], dim=-1).to(cut_origin.dtype) + 0.5
        factor = factor.index_put((pairs,), factor[pairs] * half_plane_coverage(cut_origin[cut], cut_direction[cut], centre))
        keep = torch.ones(len(sorted_pieces), dtype=torch.bool, device=sorted_pieces.device)
        keep[position[pairs]] = False  # the second pass finds a piece's other cut, if it has one
        order, sorted_pieces = order[keep], sorted_pieces[keep]
        if not len(sorted_pieces):
            break
    return factor


def half_plane_coverage(origin: torch.Tensor, inward: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Area of the unit pixel at `centre` on the side of the line through `origin`, across `inward`,
    that `inward` points to: the trapezoid CDF of the pixel projected on the direction."""
    length = torch.sqrt((inward * inward).sum(-1) + _EPS)
    direction = inward / length.unsqueeze(-1)
    signed = ((centre - origin) * direction).sum(-1)
    a, b = direction[..., 0].abs(), direction[..., 1].abs()
    hi, lo = torch.maximum(a, b), torch.minimum(a, b).clamp_min(1e-4)
    inside = _trapezoid_cdf(signed, hi, lo)
    return torch.where(length > 1e-5, inside, torch.zeros_like(inside))  # a flat end of a zero-length stroke draws nothing


class _RecomputedCoverage(torch.autograd.Function):
    """`_gathered_coverage` whose backward recomputes the forward instead of storing it."""

    @staticmethod
    def forward(ctx, start, end, piece_width, end_width, tapered, piece, x, y):  # type: ignore[override]
        ctx.save_for_backward(start, end, piece_width, end_width, piece, x, y)
        ctx.tapered = tapered
        return _gathered_coverage(start, end, piece_width, end_width if tapered else None, piece, x, y)

    @staticmethod
    def backward(ctx, grad_coverage):  # type: ignore[override]
        start, end, piece_width, end_width, piece, x, y = ctx.saved_tensors
        inputs = [t.detach().requires_grad_(True) for t in (start, end, piece_width, end_width)]
        with torch.enable_grad():
            coverage = _gathered_coverage(inputs[0], inputs[1], inputs[2], inputs[3] if ctx.tapered else None, piece, x, y)
            grads = torch.autograd.grad(coverage, inputs, grad_coverage, allow_unused=True)
        grads = [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, inputs)]
        if not ctx.tapered:  # the same tensor was passed twice: its gradient arrives once
            grads[3] = None
        return (*grads, None, None, None, None)


def _gathered_coverage(start, end, piece_width, end_width, piece, x, y) -> torch.Tensor:
    centre = torch.stack([x, y], dim=-1).to(start.dtype) + 0.5
    return capsule_coverage(start[piece], end[piece], piece_width[piece], centre, None if end_width is None else end_width[piece])


def capsule_coverage(
    start: torch.Tensor, end: torch.Tensor, half_width: torch.Tensor, centre: torch.Tensor, end_width: torch.Tensor | None = None
) -> torch.Tensor:
    """Area of the unit pixel at `centre` covered by the capsule around segment start→end.

    All arguments are batched over a leading dimension (points are `(K, 2)`, widths `(K,)`).
    With `end_width` the capsule tapers from `half_width` at the start to `end_width` at the end
    (the width at the pixel's nearest point is used). Exact for the straight part of the
    capsule; the round ends use the radial band (see the module docstring).
    """
    axis = end - start
    length_sq = (axis * axis).sum(-1)
    along = ((centre - start) * axis).sum(-1) / length_sq.clamp_min(_EPS)
    t = along.clamp(0.0, 1.0)
    if end_width is not None:
        half_width = half_width + (end_width - half_width) * t
    offset = centre - (start + t.unsqueeze(-1) * axis)
    distance = torch.sqrt((offset * offset).sum(-1) + _EPS)

    # Band direction: the segment's normal along its straight part (well defined even when
    # the pixel centre lies on the centreline); radial beyond the ends.
    axis_len = torch.sqrt(length_sq + _EPS).unsqueeze(-1)
    normal = torch.stack([-axis[..., 1], axis[..., 0]], dim=-1) / axis_len
    radial = offset / distance.unsqueeze(-1)
    on_centre = distance <= 1e-4
    degenerate = length_sq <= 1e-10
    direction = torch.where(on_centre.unsqueeze(-1), normal, radial)
    if degenerate.any():  # a dot: radial everywhere, any direction at its very centre
        dot_direction = torch.where(on_centre.unsqueeze(-1), torch.tensor([1.0, 0.0], dtype=centre.dtype, device=centre.device), radial)
        direction = torch.where(degenerate.unsqueeze(-1), dot_direction, direction)

    # Round ends curve inside the pixel: a circle of radius w bounds the footprint at radial
    # offset w − u²/2w for a tangential offset u, and the unit pixel's projection on any
    # direction has variance 1/12, so the band narrows by 1/(24w) straight ahead of the end,
    # fading as cos² of the angle to the axis (zero along the straight part, so the
    # coverage stays continuous across the end line).
    cos_to_axis = ((direction * axis).sum(-1) / axis_len.squeeze(-1)).clamp(-1.0, 1.0)
    along_axis = torch.where(degenerate, torch.ones_like(cos_to_axis), cos_to_axis * cos_to_axis)
    along_axis = torch.where(on_centre & ~degenerate, torch.zeros_like(along_axis), along_axis)
    effective_width = half_width - along_axis * cap_narrowing(half_width)
    return band_coverage(distance, effective_width, direction)


def cap_narrowing(half_width: torch.Tensor) -> torch.Tensor:
    """How much narrower than w a round end's band is, straight ahead of the end.

    1/(24w) is the curvature correction for w ≥ 0.5 px. Smaller discs fit inside one pixel,
    where the band must cover πw² rather than 2w; `w − πw²/2` gives that limit, and the
    smaller of the two joins the regimes continuously.
    """
    curvature = 1.0 / (24.0 * half_width.clamp_min(1e-3))
    tiny_disc = half_width - 0.5 * math.pi * half_width * half_width
    return torch.where(half_width >= 0.5, curvature, torch.minimum(curvature, tiny_disc))


def band_coverage(distance: torch.Tensor, half_width: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Area of a unit pixel inside the band {|offset| ≤ w} whose centre line is `distance` away.

    `direction` is the band's unit normal. Along it, a uniform point of the pixel is spread
    as a trapezoid; the covered area is `G(w − d) + G(w + d) − 1`.
    """
    a = direction[..., 0].abs()
    b = direction[..., 1].abs()
    hi = torch.maximum(a, b)
    lo = torch.minimum(a, b).clamp_min(1e-4)
    return (_trapezoid_cdf(half_width - distance, hi, lo) + _trapezoid_cdf(half_width + distance, hi, lo) - 1.0).clamp(0.0, 1.0)


def _trapezoid_cdf(z: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """CDF at z of U(−hi/2, hi/2) + U(−lo/2, lo/2) with hi ≥ lo > 0.

    Flat density 1/hi on |z| ≤ (hi − lo)/2, linear ramps to zero at |z| = (hi + lo)/2.
    """
    y = z.abs()
    flat_end = 0.5 * (hi - lo)
    ramp_end = 0.5 * (hi + lo)
    flat_part = torch.minimum(y, flat_end) / hi
    remaining = (ramp_end - y.clamp(flat_end, ramp_end))  # in [0, lo]
    ramp_part = (lo - remaining) * (lo + remaining) / (2.0 * hi * lo)
    half = flat_part + ramp_part
    return 0.5 + torch.sign(z) * half


def _check_inputs(segments: torch.Tensor, half_widths: torch.Tensor | float, height: int, width: int):
    """Validate and flatten the batch dimensions: returns (B, M, 4, 2), (B, M) or (B, M, 4), batch shape."""
    if not isinstance(segments, torch.Tensor):
        raise RasterError("segments must be a torch tensor of shape (..., M, 4, 2)")
    if segments.dim() < 3 or segments.shape[-2:] != (4, 2):
        raise RasterError(f"segments have shape {tuple(segments.shape)}; expected (..., M, 4, 2) cubic control points")
    if not segments.is_floating_point():
        raise RasterError(f"segments must be floating point, not {segments.dtype}")
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or not 1 <= value <= MAX_CANVAS:
            raise RasterError(f"canvas {name} {value!r} is out of range: use 1 to {MAX_CANVAS} pixels")
    batch_shape = segments.shape[:-3]
    num_segments = segments.shape[-3]
    half_widths = torch.as_tensor(half_widths, dtype=segments.dtype, device=segments.device)
    # trailing (M, 4) is always one width per control point (leading batch dimensions broadcast)
    per_point = half_widths.dim() >= 2 and half_widths.shape[-2:] == (num_segments, 4)
    target = (*batch_shape, num_segments, 4) if per_point else (*batch_shape, num_segments)
    try:
        half_widths = torch.broadcast_to(half_widths, target)
    except RuntimeError:
        raise RasterError(f"half_widths of shape {tuple(half_widths.shape)} do not broadcast to {target}") from None
    batch = math.prod(batch_shape)
    if batch * num_segments > MAX_SEGMENTS:
        raise RasterError(f"{batch * num_segments} segments in one call; the limit is {MAX_SEGMENTS}: render fewer frames at once")
    if not torch.isfinite(segments).all():
        raise RasterError("segments contain NaN or infinite coordinates")
    if not torch.isfinite(half_widths).all() or (half_widths < 0).any():
        raise RasterError("half_widths must be finite and non-negative")
    return segments.reshape(batch, num_segments, 4, 2), half_widths.reshape(batch, num_segments, *target[len(batch_shape) + 1 :]), batch_shape


def _plan_pieces(segments: torch.Tensor, tolerance: float, max_length: float):
    """Choose how many chords each cubic is cut into; return (segment id, t0, t1) per piece.

    A cubic's second derivative is bounded by 6·max(|P0−2P1+P2|, |P1−2P2+P3|), and a chord
    over a parameter interval h deviates from the curve by at most h²·max|B''|/8.
    """
    p = segments
    second = torch.maximum((p[:, 0] - 2 * p[:, 1] + p[:, 2]).norm(dim=-1), (p[:, 1] - 2 * p[:, 2] + p[:, 3]).norm(dim=-1))
    by_curvature = torch.sqrt(6.0 * second / (8.0 * tolerance))
    polygon_length = (p[:, 1:] - p[:, :-1]).norm(dim=-1).sum(-1)
    by_length = polygon_length / max_length
    count = torch.ceil(torch.maximum(by_curvature, by_length)).clamp(1, MAX_PIECES_PER_SEGMENT).long()
    piece_segment = torch.repeat_interleave(torch.arange(len(p), device=p.device), count)
    first_piece = torch.cumsum(count, 0) - count
    k = torch.arange(len(piece_segment), device=p.device) - first_piece[piece_segment]
    n = count[piece_segment].to(p.dtype)
    return piece_segment, k.to(p.dtype) / n, (k + 1).to(p.dtype) / n


def _piece_endpoints(segments: torch.Tensor, piece_segment: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor):
    """Points of each piece's cubic at t0 and t1 (differentiable in the control points)."""
    control = segments[piece_segment]  # (P, 4, 2)
    return bezier_point(control, t0), bezier_point(control, t1)


def bezier_point(control: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Evaluate cubics `(..., 4, 2)` at parameters `t` `(...)` by their Bernstein form."""
    s = 1.0 - t
    weights = torch.stack([s * s * s, 3 * s * s * t, 3 * s * t * t, t * t * t], dim=-1)
    return (weights.unsqueeze(-1) * control).sum(-2)


def _near_pixel_pairs(start: torch.Tensor, end: torch.Tensor, half_width: torch.Tensor, height: int, width: int):
    """(piece, x, y) for every pixel whose footprint a piece's capsule can touch.

    Candidates come from each piece's bounding box, expanded by the half-width and the
    pixel's reach, and are pruned by the exact centre-to-piece distance. Pieces are
    handled a chunk at a time so that the candidates never all exist at once.
    """
    kept = [
        _near_pixel_pairs_of(start, end, half_width, first, min(first + PIECE_CHUNK, len(start)), height, width)
        for first in range(0, len(start), PIECE_CHUNK)
    ]
    if not kept:
        empty = torch.zeros(0, dtype=torch.long, device=start.device)
        return empty, empty, empty
    return tuple(torch.cat(parts) for parts in zip(*kept))


def _near_pixel_pairs_of(start, end, half_width, first: int, last: int, height: int, width: int):
    start, end, half_width = start[first:last], end[first:last], half_width[first:last]
    reach = half_width + PIXEL_REACH
    lo = torch.minimum(start, end) - reach.unsqueeze(-1) - 0.5
    hi = torch.maximum(start, end) + reach.unsqueeze(-1) - 0.5
    x0 = torch.ceil(lo[:, 0]).clamp(0, width).long()
    x1 = torch.floor(hi[:, 0]).clamp(-1, width - 1).long()
    y0 = torch.ceil(lo[:, 1]).clamp(0, height).long()
    y1 = torch.floor(hi[:, 1]).clamp(-1, height - 1).long()
    nx = (x1 - x0 + 1).clamp_min(0)
    ny = (y1 - y0 + 1).clamp_min(0)
    count = nx * ny
    piece = torch.repeat_interleave(torch.arange(len(start), device=start.device), count)
    local = torch.arange(len(piece), device=start.device) - (torch.cumsum(count, 0) - count)[piece]
    row_len = nx[piece]
    x = x0[piece] + local % row_len
    y = y0[piece] + local // row_len

    a, b = start[piece], end[piece]
    axis = b - a
    centre = torch.stack([x, y], dim=-1).to(start.dtype) + 0.5
    t = (((centre - a) * axis).sum(-1) / (axis * axis).sum(-1).clamp_min(_EPS)).clamp(0.0, 1.0)
    offset = centre - (a + t.unsqueeze(-1) * axis)
    near = (offset * offset).sum(-1) < reach[piece] ** 2
    return piece[near] + first, x[near], y[near]


def rasterize_dense(segments: torch.Tensor, half_widths: torch.Tensor | float, height: int, width: int, *, flatten_tolerance: float = 0.02, max_piece_length: float = 4.0, rows_per_block: int = 8) -> torch.Tensor:
    """Reference implementation: every pixel against every flattened piece.

    Same coverage formula as `rasterize`, without pruning, so time grows with
    pixels × pieces. Blocks of rows are recomputed during backward (activation
    checkpointing) so that it fits in memory at all. Kept for tests (the sparse path must
    agree with it) and as the benchmark's baseline.
    """
    segments, half_widths, batch_shape = _check_inputs(segments, half_widths, height, width)
    batch, num_segments = segments.shape[0], segments.shape[1]
    flat_segments = segments.reshape(batch * num_segments, 4, 2)
    with torch.no_grad():
        piece_segment, t0, t1 = _plan_pieces(flat_segments.detach(), flatten_tolerance, max_piece_length)
    start, end = _piece_endpoints(flat_segments, piece_segment, t0, t1)
    piece_width = half_widths.reshape(-1)[piece_segment]
    piece_batch = piece_segment // num_segments
    frames = []
    for b in range(batch):
        mine = piece_batch == b
        blocks = [
            torch.utils.checkpoint.checkpoint(_dense_rows, start[mine], end[mine], piece_width[mine], row, min(row + rows_per_block, height), width, use_reentrant=False)
            for row in range(0, height, rows_per_block)
        ]
        frames.append(torch.cat(blocks))
    return torch.stack(frames).reshape(*batch_shape, height, width)


def _dense_rows(start: torch.Tensor, end: torch.Tensor, piece_width: torch.Tensor, first_row: int, last_row: int, width: int) -> torch.Tensor:
    """Coverage of rows [first_row, last_row) against all the given pieces."""
    if len(start) == 0:
        return start.new_zeros(last_row - first_row, width) + 0.0 * (start.sum() + end.sum() + piece_width.sum())
    ys, xs = torch.meshgrid(torch.arange(first_row, last_row, device=start.device), torch.arange(width, device=start.device), indexing="ij")
    centres = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2).to(start.dtype) + 0.5
    pixels, pieces = len(centres), len(start)
    coverage = capsule_coverage(
        start.expand(pixels, pieces, 2), end.expand(pixels, pieces, 2), piece_width.expand(pixels, pieces), centres.expand(pixels, pieces, 2)
    )
    return coverage.amax(dim=1).reshape(last_row - first_row, width)
