"""The sketch as vectors: the Sketch model, SVG import and export, the differentiable rasterizer, colour rendering."""
