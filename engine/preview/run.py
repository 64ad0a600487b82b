"""The preview as a whole: read the clip (with flow substeps), track, transfer, and write the result folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..job.events import EventLog, Progress
from ..media.reference import ReferenceClip, VideoSpec, load_reference_frames, warn_if_too_few
from ..settings import PreviewSettings
from ..vector.sketch import Sketch
from .tracking import SubjectTracks, track_subject
from .transfer import transfer_motion

if TYPE_CHECKING:  # outputs renders with torch: imported only when a result is written
    from ..job.outputs import ResultFiles


@dataclass
class PreviewResult:
    """The previewed animation and what it came from."""

    frames: np.ndarray  # (F, P, 2) control points per frame; frame 0 is the sketch
    sketch: Sketch  # the input sketch with these frames
    clip: ReferenceClip
    tracks: SubjectTracks
    settings: PreviewSettings  # as used (matched to the video's frame count and size)
    warnings: list[str]
    files: ResultFiles | None = None


def preview_motion(
    sketch: Sketch,
    video_spec: VideoSpec,
    settings: PreviewSettings = PreviewSettings(),
    out_dir: str | Path | None = None,
    events: EventLog | None = None,
    motion_prompt: str = "",
) -> PreviewResult:
    """Read the clip, track its subject, move the sketch like it, and write the result if asked.

    `video_spec` decides which frames are read (their number and size); `settings` are matched
    to it (`PreviewSettings.matching`). With `out_dir`, the result folder is written with
    `outputs.write_result`, metadata `{"kind": "preview", "preview": settings, …}` (and the
    motion prompt, when given, so `evaluate` can score the preview like a full result).
    """
    sketch.validate()
    settings = settings.matching(video_spec)
    with Progress("preview", total=4 if out_dir is not None else 3, events=events) as progress:
        clip, dense_frames, substeps = read_clip_with_substeps(video_spec, settings.flow_substeps)
        progress.update(1)
        tracks = track_subject(dense_frames, settings, substeps, times_s=clip.timing()["times_s"])
        progress.update(2)
        transfer = transfer_motion(sketch, tracks, settings)
        frames = transfer.frames
        progress.update(3)
        warnings = [*clip.warnings, *tracks.warnings, *transfer.warnings]
        for warning in warnings if events is not None else ():
            events.warning(warning)
        files = None
        if out_dir is not None:
            from ..job.outputs import write_result

            metadata = preview_metadata(settings, video_spec, tracks, warnings, clip)
            metadata["translation_kept"] = transfer.translation_kept
            if motion_prompt:
                metadata["motion_prompt"] = motion_prompt
            files = write_result(out_dir, sketch, frames, clip.frames, metadata=metadata)
            progress.update(4)
    return PreviewResult(frames, sketch.with_frames(frames), clip, tracks, settings, warnings, files)


def read_clip_with_substeps(spec: VideoSpec, substeps: int) -> tuple[ReferenceClip, np.ndarray, int]:
    """The clip `spec` describes, the same span read `substeps` times as densely, and the substeps.

    Every `substeps`-th dense frame is exactly the frame `spec` samples (`video.sample_indices`
    is exact in integers), so the video is decoded once. Warnings about too few frames are
    worded for the frames the user asked for.
    """
    if substeps == 1 or spec.num_frames == 1:
        clip = load_reference_frames(spec)
        return clip, clip.frames, 1
    dense_spec = replace(spec, num_frames=substeps * (spec.num_frames - 1) + 1)
    dense = load_reference_frames(dense_spec)
    available = int(dense.source_indices[-1] - dense.source_indices[0] + 1)
    dense_only: list[str] = []
    warn_if_too_few(dense_spec, available, dense_only)
    warnings = [warning for warning in dense.warnings if warning not in dense_only]
    warn_if_too_few(spec, available, warnings)
    clip = ReferenceClip(
        dense.frames[::substeps], dense.source_indices[::substeps], dense.fps, dense.duration_s, dense.source_frame_count, warnings
    )
    return clip, dense.frames, substeps


def preview_metadata(settings: PreviewSettings, spec: VideoSpec, tracks: SubjectTracks, warnings: list[str], clip: ReferenceClip) -> dict[str, Any]:
    """What result.json records about a preview (numbers only, no arrays of tracks), its timing included."""
    return {
        "kind": "preview",
        "timing": {**clip.timing(), "periodic": False},
        "preview": settings.to_dict(),
        "video": spec.to_dict(),
        "subject_box": list(tracks.box),
        "diagnostics": tracks.diagnostics,
        "warnings": warnings,
    }


