"""Instant motion preview: move the sketch like the video's subject, by tracking, without a GPU.

No diffusion model (and no torch) is involved; a preview takes a few seconds on a CPU. It is a
quick look at the motion before the long stage-3 run, and a starting point for it (`--init preview`).

1. Subject motion (`track_subject`, tracking.py). Seed tracks by pyramidal Lucas–Kanade with a
   forward–backward check; the camera's motion as RANSAC homographies; the coarse moving
   region; then, per frame, the subject's similarity aligned to the first frame without drift
   (alignment.py: warp back, measure what is left with LK, refit with OpenCV's
   estimateAffinePartial2D / findHomography); the subject's region to the pixel by which motion
   explains each pixel's colour (segmentation.py), its tight box; and each tracked point's own
   motion beyond the similarity. A user-given box says where to look instead.
2. Transfer (`transfer_motion`, transfer.py). The subject's first-frame box is mapped onto the
   extent of the sketch's curves (same centre, one uniform scale, so a turn stays a turn). Per
   frame, a similarity (turn, scale, shift) is fitted robustly to the tracks; "partwise" fits
   one per rigid part and blends them between parts; "deformable" (the default) adds a
   regularised thin-plate spline fitted to what the similarity leaves over, held back from
   turning and scaling itself. Every control point moves with the result. `strength` scales
   the motion's parameters, the displacements are smoothed in real time (each frame's
   timestamp: frames sampled unevenly from a clip stay right), the translation can be dropped,
   and by default it is scaled down, with a warning, where it would carry the drawing off its
   canvas. When the subject has left the frame, the sketch continues at its last speed.
3. Outputs (`preview_motion`, run.py): the same result folder as stage 3 (`outputs.write_result`):
   result.json first, then the pictures, drawn without torch (engine/vector/draw.py).

All pixel tolerances are for 256 px frames and scale with the frame size.
"""

from ..errors import PreviewError
from ..settings import PreviewSettings
from .run import PreviewResult, preview_motion
from .similarity import Similarity
from .tracking import SubjectTracks, track_subject
from .transfer import ExtentMapping, MotionTransfer, transfer_motion

__all__ = [
    "ExtentMapping",
    "MotionTransfer",
    "PreviewError",
    "PreviewResult",
    "PreviewSettings",
    "Similarity",
    "SubjectTracks",
    "preview_motion",
    "track_subject",
    "transfer_motion",
]
