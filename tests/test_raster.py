"""The rasterizer against analytic areas, supersampled ground truth and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from engine.errors import RasterError
from engine.vector.raster import bezier_point, rasterize, rasterize_dense

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def line_segment(x0: float, y0: float, x1: float, y1: float, dtype=torch.float64) -> torch.Tensor:
    """A straight line as an exact cubic (control points at thirds)."""
    a = torch.tensor([x0, y0], dtype=dtype)
    b = torch.tensor([x1, y1], dtype=dtype)
    return torch.stack([a, a + (b - a) / 3, a + 2 * (b - a) / 3, b])


ARCH = torch.tensor([[12.0, 40.0], [20.0, 6.0], [44.0, 6.0], [52.0, 40.0]], dtype=torch.float64)


def supersampled_coverage(control: np.ndarray, half_width: float, height: int, width: int, samples: int = 64) -> np.ndarray:
    """Ground truth: fraction of a samples×samples grid per pixel within half_width of the curve.

    Pixels whose centre is farther than half the pixel diagonal from the stroke's edge are
    entirely in or out; only the others are supersampled.
    """
    t = np.linspace(0.0, 1.0, 20001)[:, None]
    s = 1.0 - t
    curve = s**3 * control[0] + 3 * s * s * t * control[1] + 3 * s * t * t * control[2] + t**3 * control[3]
    tree = cKDTree(curve)
    ys, xs = np.mgrid[0:height, 0:width]
    centre_distance, _ = tree.query(np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1))
    out = (centre_distance < half_width).astype(float).reshape(height, width)
    edge = np.flatnonzero(np.abs(centre_distance - half_width) < 0.75)
    offsets = (np.arange(samples) + 0.5) / samples
    grid = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(-1, 2)
    for chunk in np.array_split(edge, max(1, len(edge) // 64)):
        corners = np.stack([xs.ravel()[chunk], ys.ravel()[chunk]], axis=1).astype(float)
        points = (corners[:, None, :] + grid[None]).reshape(-1, 2)
        dist, _ = tree.query(points, distance_upper_bound=half_width + 1e-9)
        out.ravel()[chunk] = (dist <= half_width).reshape(len(chunk), -1).mean(axis=1)
    return out


# --------------------------------------------------------------------------- areas
@pytest.mark.parametrize("half_width", [0.2, 0.45, 1.5, 3.3])
@pytest.mark.parametrize("centre_y", [20.0, 20.3, 20.5, 20.77])
def test_horizontal_stroke_matches_analytic_profile(half_width: float, centre_y: float) -> None:
    segment = line_segment(8.0, centre_y, 56.0, centre_y)[None]
    coverage = rasterize(segment, half_width, 40, 64)
    rows = np.arange(40)
    expected = np.clip(np.minimum(rows + 1, centre_y + half_width) - np.maximum(rows, centre_y - half_width), 0, 1)
    for column in (20, 31, 40):  # away from the caps
        assert np.abs(coverage[:, column].numpy() - expected).max() < 0.02


@pytest.mark.parametrize("half_width", [0.15, 0.3, 0.7, 1.5, 4.0])
@pytest.mark.parametrize("end", [(90.0, 20.0), (80.0, 70.5), (33.3, 91.2)])
def test_total_coverage_equals_stroke_area(half_width: float, end: tuple[float, float]) -> None:
    start = (10.2, 10.6)
    segment = line_segment(*start, *end)[None]
    length = math.dist(start, end)
    expected = 2 * half_width * length + math.pi * half_width**2
    total = rasterize(segment, half_width, 100, 100).sum().item()
    assert total == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("half_width", [0.4, 1.5, 3.0])
def test_curved_stroke_total_area(half_width: float) -> None:
    t = torch.linspace(0, 1, 100001, dtype=torch.float64)
    curve = bezier_point(ARCH.expand(len(t), 4, 2), t)
    length = (curve[1:] - curve[:-1]).norm(dim=-1).sum().item()
    total = rasterize(ARCH[None], half_width, 48, 64).sum().item()
    assert total == pytest.approx(2 * half_width * length + math.pi * half_width**2, rel=0.02)


@pytest.mark.parametrize("half_width", [0.6, 1.5, 3.0])
def test_curved_stroke_matches_supersampled_ground_truth(half_width: float) -> None:
    coverage = rasterize(ARCH[None], half_width, 48, 64).numpy()
    truth = supersampled_coverage(ARCH.numpy(), half_width, 48, 64)
    error = np.abs(coverage - truth)
    ys, xs = np.mgrid[0:48, 0:64] + 0.5
    near_end = np.zeros_like(error, dtype=bool)
    for x, y in (ARCH[0].tolist(), ARCH[3].tolist()):
        near_end |= np.hypot(xs - x, ys - y) < half_width + 1.5
    assert error[~near_end].max() < 0.02  # along the curve: within the ground truth's noise
    assert error[near_end].max() < 0.07  # round caps: a narrowed band, not an exact disc
    assert abs(coverage.sum() - truth.sum()) / truth.sum() < 0.01
    assert error.sum() / truth.sum() < 0.02


def test_coverage_stays_in_unit_interval_where_strokes_cross() -> None:
    segments = torch.stack([line_segment(5, 5, 60, 60), line_segment(5, 60, 60, 5), line_segment(5, 32, 60, 32)])
    coverage = rasterize(segments, 2.0, 64, 64)
    assert coverage.min() >= 0 and coverage.max() <= 1
    assert coverage[32, 32] == 1.0  # the crossing is fully inside all three


def test_dot_is_drawn_by_its_round_cap() -> None:
    dot = torch.tensor([[20.0, 20.0]] * 4, dtype=torch.float64)[None]
    coverage = rasterize(dot, 3.0, 40, 40)
    assert coverage.sum().item() == pytest.approx(math.pi * 9.0, rel=0.02)
    assert coverage[19, 19] == 1.0


# ------------------------------------------------------------------ exact shifts
def test_integer_translation_shifts_image_exactly() -> None:
    segments = torch.stack([ARCH, line_segment(3.3, 7.1, 30.2, 12.9)]).float()
    base = rasterize(segments, torch.tensor([1.2, 0.7]), 64, 96)
    moved = rasterize(segments + torch.tensor([5.0, 3.0]), torch.tensor([1.2, 0.7]), 64, 96)
    assert torch.allclose(moved[3:, 5:], base[:-3, :-5], atol=1e-5)
    assert base.sum() > 100


# --------------------------------------------------------------------- gradients
def finite_difference(fn, x: torch.Tensor, step: float) -> torch.Tensor:
    """Central differences of scalar fn at every element of x."""
    grad = torch.zeros_like(x)
    flat = x.detach().clone().reshape(-1)
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += step
        minus[i] -= step
        grad.reshape(-1)[i] = (fn(plus.reshape(x.shape)) - fn(minus.reshape(x.shape))) / (2 * step)
    return grad


def smooth_weights(height: int, width: int) -> torch.Tensor:
    """A smooth weight field, so that the weighted coverage is a smooth function of the points."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    return 1.0 + 0.02 * xs + 0.5 * torch.sin(ys / 7.0)


@pytest.mark.parametrize(
    "segments, half_widths",
    [
        (ARCH[None], torch.tensor([1.7], dtype=torch.float64)),  # curved stroke
        (  # a sharp corner: two segments sharing an end point, the outer round join drawn by the caps
            torch.stack([line_segment(10.3, 40.2, 30.6, 10.1), line_segment(30.6, 10.1, 54.2, 38.7)]),
            torch.tensor([2.2, 2.2], dtype=torch.float64),
        ),
        (torch.stack([ARCH, line_segment(4.0, 44.0, 60.0, 30.0)]), torch.tensor([0.6, 1.1], dtype=torch.float64)),
    ],
    ids=["arch", "corner", "thin-crossing"],
)
def test_gradients_match_central_differences(segments: torch.Tensor, half_widths: torch.Tensor) -> None:
    weights = smooth_weights(48, 64)

    def loss(points: torch.Tensor, widths: torch.Tensor = half_widths) -> torch.Tensor:
        return (rasterize(points, widths, 48, 64) * weights).sum()

    points = segments.clone().requires_grad_(True)
    widths = half_widths.clone().requires_grad_(True)
    loss(points, widths).backward()
    numeric_points = finite_difference(lambda p: loss(p).item(), segments, 1e-4)
    numeric_widths = finite_difference(lambda w: loss(segments, w).item(), half_widths, 1e-4)

    assert torch.linalg.norm(points.grad - numeric_points) / torch.linalg.norm(numeric_points) < 0.05
    assert torch.allclose(widths.grad, numeric_widths, rtol=0.05)
    big = numeric_points.abs() > 0.1 * numeric_points.abs().max()
    assert torch.allclose(points.grad[big], numeric_points[big], rtol=0.05, atol=0.05)


def test_join_control_point_receives_gradient() -> None:
    """Moving the shared corner point moves the round join; diffvg reports no gradient there."""
    corner = torch.stack([line_segment(10.0, 40.0, 30.0, 10.0), line_segment(30.0, 10.0, 50.0, 40.0)])
    corner.requires_grad_(True)
    rasterize(corner, 2.5, 48, 64).sum().backward()
    # Total area grows when the corner moves up (the arms lengthen): dA/dy < 0 at the apex.
    apex_grad_y = corner.grad[0, 3, 1] + corner.grad[1, 0, 1]
    assert apex_grad_y < -1.0


def test_width_gradient_equals_analytic_perimeter() -> None:
    """d(area)/dw of an isolated straight stroke is 2L + 2πw."""
    width = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    rasterize(line_segment(10.2, 20.4, 70.7, 52.9)[None], width, 80, 80).sum().backward()
    length = math.dist((10.2, 20.4), (70.7, 52.9))
    assert width.grad.item() == pytest.approx(2 * length + 2 * math.pi * 1.3, rel=0.02)


def test_arch_gradient_agrees_with_ground_truth_area_change() -> None:
    """The curved-stroke gradient of diffvg was biased; ours tracks the true weighted area."""
    weights = smooth_weights(48, 64)
    points = ARCH.clone().requires_grad_(True)
    (rasterize(points[None], 1.5, 48, 64) * weights).sum().backward()

    def true_loss(p: np.ndarray) -> float:
        return float((supersampled_coverage(p, 1.5, 48, 64, samples=32) * weights.numpy()).sum())

    step = 0.5
    for index in [(1, 0), (1, 1), (2, 1)]:
        plus, minus = ARCH.numpy().copy(), ARCH.numpy().copy()
        plus[index] += step
        minus[index] -= step
        truth = (true_loss(plus) - true_loss(minus)) / (2 * step)
        assert points.grad[index].item() == pytest.approx(truth, rel=0.1, abs=0.3)


# --------------------------------------------------------- structure and devices
def test_sparse_matches_dense_reference() -> None:
    generator = torch.Generator().manual_seed(3)
    segments = torch.rand(3, 6, 4, 2, generator=generator, dtype=torch.float64) * 60
    half_widths = torch.rand(3, 6, generator=generator, dtype=torch.float64) * 2 + 0.2
    sparse = rasterize(segments, half_widths, 64, 64)
    dense = rasterize_dense(segments, half_widths, 64, 64)
    assert torch.allclose(sparse, dense, atol=1e-12)


def test_batch_dimensions_are_independent() -> None:
    generator = torch.Generator().manual_seed(5)
    segments = torch.rand(2, 3, 4, 4, 2, generator=generator) * 40
    batched = rasterize(segments, 1.0, 40, 40)
    assert batched.shape == (2, 3, 40, 40)
    for i in range(2):
        for j in range(3):
            assert torch.equal(batched[i, j], rasterize(segments[i, j], 1.0, 40, 40))


MEMORY_PROBE = """
import resource, sys, torch
from engine.vector.raster import rasterize
size = int(sys.argv[1])
rasterize(torch.rand(1, 2, 4, 2) * 30, 1.5, 32, 32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
segments = (torch.rand(16, 64, 4, 2, generator=torch.Generator().manual_seed(0)) * 256).requires_grad_(True)
rasterize(segments, 1.5, size, size).sum().backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


def test_memory_grows_with_covered_area_not_pixels() -> None:
    """16 frames × 64 strokes, forward + backward: far under 1 GB. A 16× larger canvas adds only
    a few copies of the output image (the image, its gradient, the max-union's bookkeeping),
    nothing that scales with pixels × strokes."""
    import subprocess
    import sys

    def extra_bytes(size: int) -> int:
        result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(size)], capture_output=True, text=True, check=True, cwd=ROOT)
        return int(result.stdout.strip().splitlines()[-1])

    at_256, at_1024 = extra_bytes(256), extra_bytes(1024)
    assert at_256 < 1024**3 // 2
    output_growth = 16 * (1024**2 - 256**2) * 4  # 60 MB of float32 coverage
    assert at_1024 - at_256 < 8 * output_growth  # pixels × strokes would be ~100× that


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    generator = torch.Generator().manual_seed(1)
    segments = torch.rand(4, 16, 4, 2, generator=generator) * 128
    cpu = rasterize(segments, 1.5, 128, 128)
    cuda = rasterize(segments.cuda(), 1.5, 128, 128)
    assert torch.allclose(cuda.cpu(), cpu, atol=1e-4)
    points = segments.cuda().requires_grad_(True)
    rasterize(points, 1.5, 128, 128).sum().backward()
    assert torch.isfinite(points.grad).all()


# -------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "segments, half_widths, size, message",
    [
        (torch.full((1, 4, 2), float("nan")), 1.0, (32, 32), "NaN"),
        (torch.full((1, 4, 2), float("inf")), 1.0, (32, 32), "NaN or infinite"),
        (torch.zeros(1, 3, 2), 1.0, (32, 32), "(..., M, 4, 2)"),
        (torch.zeros(2, 4, 2), torch.ones(3), (32, 32), "broadcast"),
        (torch.zeros(1, 4, 2), -1.0, (32, 32), "non-negative"),
        (torch.zeros(1, 4, 2), 1.0, (100000, 100000), "out of range"),
    ],
)
def test_bad_input_is_refused_in_one_line(segments, half_widths, size, message) -> None:
    with pytest.raises(RasterError, match=None) as info:
        rasterize(segments, half_widths, *size)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_empty_input_gives_blank_canvas() -> None:
    assert rasterize(torch.zeros(2, 0, 4, 2), 1.0, 8, 8).abs().sum() == 0


def test_strokes_off_the_canvas_give_zero_gradients() -> None:
    points = (torch.tensor([[[500.0, 500.0], [510.0, 505.0], [520.0, 500.0], [530.0, 510.0]]])).requires_grad_(True)
    coverage = rasterize(points, 1.5, 32, 32)
    coverage.sum().backward()
    assert coverage.sum() == 0 and torch.equal(points.grad, torch.zeros_like(points))


# --------------------------------------------------------------------- flat caps and per-point widths (issue 14)
def tapered_widths(first: float, last: float, count: int = 1) -> torch.Tensor:
    """Per-control-point half-widths of straight segments whose width runs linearly from first to last."""
    return torch.tensor([[first + (last - first) * k / 3 for k in range(4)]] * count, dtype=torch.float64)


def disc_hull_area(r0: float, r1: float, distance: float) -> float:
    """Area of the convex hull of two discs: a tapering stroke with round caps."""
    alpha = math.asin((r1 - r0) / distance)
    return 0.5 * r1 * r1 * (math.pi + 2 * alpha) + 0.5 * r0 * r0 * (math.pi - 2 * alpha) + (r0 + r1) * distance * math.cos(alpha)


@pytest.mark.parametrize("angle", [0.0, 0.3, 0.785, 1.9])
@pytest.mark.parametrize("half_width", [0.7, 3.0])
def test_flat_capped_straight_stroke_covers_exactly_2wl(angle: float, half_width: float) -> None:
    length = 40.0
    dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    segment = line_segment(32.3 - dx, 31.7 - dy, 32.3 + dx, 31.7 + dy)[None]
    flat = rasterize(segment, half_width, 64, 64, flat_start=True, flat_end=True).sum().item()
    assert flat == pytest.approx(2 * half_width * length, rel=0.02)
    one_flat = rasterize(segment, half_width, 64, 64, flat_end=True).sum().item()  # a round start, a flat end
    assert one_flat == pytest.approx(2 * half_width * length + 0.5 * math.pi * half_width**2, rel=0.02)


@pytest.mark.parametrize("angle", [0.0, 0.5, 1.2])
def test_tapering_straight_stroke_covers_its_analytic_area(angle: float) -> None:
    length, first, last = 44.0, 1.0, 4.0
    dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    segment = line_segment(40.2 - dx, 40.6 - dy, 40.2 + dx, 40.6 + dy)[None]
    widths = tapered_widths(first, last)
    flat = rasterize(segment, widths, 80, 80, flat_start=True, flat_end=True).sum().item()
    assert flat == pytest.approx(length * (first + last), rel=0.02)  # a trapezoid
    rounded = rasterize(segment, widths, 80, 80).sum().item()
    assert rounded == pytest.approx(disc_hull_area(first, last, length), rel=0.02)
    uniform = rasterize(segment, tapered_widths(2.0, 2.0), 80, 80)
    np.testing.assert_allclose(uniform.numpy(), rasterize(segment, 2.0, 80, 80).numpy(), atol=1e-9)  # same as one width per segment


@pytest.mark.parametrize(
    "segments, flat",
    [
        (ARCH[None], (True, True)),
        (torch.stack([line_segment(10.3, 40.2, 30.6, 10.1), line_segment(30.6, 10.1, 54.2, 38.7)]), ((True, False), (False, True))),
    ],
    ids=["arch", "two-segment stroke"],
)
def test_flat_caps_and_per_point_width_gradients_match_finite_differences(segments: torch.Tensor, flat) -> None:
    weights = smooth_weights(48, 64)
    count = len(segments)
    widths0 = torch.tensor([[1.2, 2.0, 2.6, 1.6]] * count, dtype=torch.float64)
    flat_start, flat_end = (torch.tensor(f) for f in flat) if count > 1 else (torch.tensor([flat[0]]), torch.tensor([flat[1]]))

    def loss(points: torch.Tensor, widths: torch.Tensor = widths0) -> torch.Tensor:
        return (rasterize(points, widths, 48, 64, flat_start=flat_start, flat_end=flat_end) * weights).sum()

    points = segments.clone().requires_grad_(True)
    widths = widths0.clone().requires_grad_(True)
    loss(points, widths).backward()
    numeric_points = finite_difference(lambda p: loss(p).item(), segments, 1e-4)
    numeric_widths = finite_difference(lambda w: loss(segments, w).item(), widths0, 1e-4)
    assert torch.linalg.norm(points.grad - numeric_points) / torch.linalg.norm(numeric_points) < 0.05
    assert torch.linalg.norm(widths.grad - numeric_widths) / torch.linalg.norm(numeric_widths) < 0.05
    assert (widths.grad.abs() > 0).all()  # every control point's width reaches the image


def test_flat_end_gradient_is_the_end_line_moving() -> None:
    """Lengthening a flat-ended straight stroke adds a strip 2w wide: d(area)/dL = 2w (round ends: the same)."""
    for flat in (True, False):
        length = torch.tensor(37.3, dtype=torch.float64, requires_grad=True)
        start = torch.tensor([10.2, 20.3], dtype=torch.float64)
        direction = torch.tensor([math.cos(0.4), math.sin(0.4)], dtype=torch.float64)
        segment = torch.stack([start + direction * length * k / 3 for k in range(4)])[None]
        rasterize(segment, 2.5, 64, 64, flat_start=flat, flat_end=flat).sum().backward()
        assert length.grad.item() == pytest.approx(5.0, rel=0.03), flat


def test_zero_width_and_zero_length_flat_strokes_draw_nothing() -> None:
    assert rasterize(line_segment(10, 10, 30, 10)[None], 0.0, 32, 40).sum().item() == 0.0
    dot = torch.tensor([[[15.0, 15.0]] * 4], dtype=torch.float64)
    assert rasterize(dot, 2.0, 32, 32).sum().item() == pytest.approx(math.pi * 4, rel=0.02)  # round: a dot
    assert rasterize(dot, 2.0, 32, 32, flat_start=True, flat_end=True).sum().item() == 0.0  # butt: nothing (as SVG)


def test_per_point_widths_broadcast_over_frames_like_each_frame_alone() -> None:
    # a (M, 4) width array with (F, M, 4, 2) frames: the shape the renderer passes; M = 2 and F = 4
    # would be misread as one width per (frame, segment) if the trailing (M, 4) were not per point
    first = torch.stack([line_segment(10.3, 40.2, 30.6, 10.1), line_segment(30.6, 10.1, 54.2, 38.7)])
    frames = torch.stack([first + torch.tensor([1.7 * k, -0.9 * k], dtype=torch.float64) for k in range(4)])
    widths = torch.stack([tapered_widths(0.5, 3.0, count=1)[0], tapered_widths(3.0, 1.0, count=1)[0]])  # (2, 4)
    together = rasterize(frames, widths, 64, 64, flat_end=torch.tensor([False, True]))
    for k in range(4):
        alone = rasterize(frames[k], widths, 64, 64, flat_end=torch.tensor([False, True]))
        np.testing.assert_allclose(together[k].numpy(), alone.numpy(), atol=1e-12)
    assert together[0].sum().item() > together[0].numel() * 0.02  # something was drawn
