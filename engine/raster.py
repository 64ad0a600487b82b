"""The rasterizer at its documented public path, `engine.raster.rasterize` (design.md §3).

The implementation lives with the rest of the vector side, in engine/vector/raster.py.
"""

from .vector.raster import rasterize, rasterize_dense

__all__ = ["rasterize", "rasterize_dense"]
