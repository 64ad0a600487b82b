"""Instant motion preview: move the sketch like the video's subject, by tracking, without a GPU.

No diffusion model is involved; a preview takes a few seconds on a CPU. It is a quick look at
the motion before the long stage-3 run, and a starting point for it (`--init preview`).

1. Subject motion (`track_subject`). Dense optical flow (OpenCV's DIS at full resolution, or
   Farnebäck) between consecutive frames, read `flow_substeps` times as densely as the output
   frames so that each flow step stays short. A grid of first-frame points is carried along
   the flow; a point dies when it nears the frame's edge, when the backward flow does not
   bring it back, or when its colour jumps (the subject ran over it). The camera's motion
   between two frames is the homography most of the flow agrees with (RANSAC); undoing the
   chained homographies puts every track into first-frame coordinates. The subject is the
   largest connected region of points that move as the subject's overall motion predicts
   (flow bleeding onto the background moves points less), holes filled (the centre of a
   turn); a user-given box says where to look instead.
2. Transfer (`transfer_motion`). The subject's first-frame box is mapped onto the sketch's
   extent (same centre, one uniform scale, so a turn stays a turn). Per frame, a similarity
   (turn, scale, shift) is fitted robustly to the tracks; "partwise" fits one per rigid part
   (the tracks are split where one similarity cannot explain them) and blends them between
   parts; "deformable" adds a regularised thin-plate spline fitted to what the similarity
   leaves over. Every control point moves with the result. `strength` scales the motion's
   parameters (half strength = half the turn), the displacements are smoothed over time, and
   the subject's translation can be dropped. When the subject has left the frame, the sketch
   continues at its last speed.
3. Outputs (`preview_motion`): the same result folder as stage 3 (`outputs.write_result`).

All pixel tolerances below are for 256 px frames and scale with the frame size.
"""

from ..errors import PreviewError
from ..settings import PreviewSettings
from .run import PreviewResult, preview_motion
from .similarity import Similarity
from .tracking import SubjectTracks, track_subject
from .transfer import ExtentMapping, transfer_motion

__all__ = [
    "ExtentMapping",
    "PreviewError",
    "PreviewResult",
    "PreviewSettings",
    "Similarity",
    "SubjectTracks",
    "preview_motion",
    "track_subject",
    "transfer_motion",
]
