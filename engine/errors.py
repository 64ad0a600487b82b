"""User-facing errors: one line that names the problem and the fix.

Every error the engine raises on purpose derives from `SketchAnimatorError`; the CLI prints
its message as a single line (never a traceback) and exits with status 2.
"""


class SketchAnimatorError(Exception):
    """An expected failure caused by the user's input or environment."""


class SketchError(SketchAnimatorError):
    """A sketch (JSON or in memory) is invalid."""


class SVGError(SketchAnimatorError):
    """An SVG file cannot be imported."""


class RasterError(SketchAnimatorError):
    """A rasterizer input is outside what it can draw."""


class PreviewError(SketchAnimatorError):
    """The motion preview cannot run with these frames or settings."""


class SketchAnimatorWarning(UserWarning):
    """Something was done approximately, and the user should know (printed as one `warning:` line)."""
