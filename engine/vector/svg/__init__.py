"""SVG import and export: SVG drawings become a `Sketch` of cubic Bézier strokes, and back.

Import
------
`import_svg` reads a file, SVG text or bytes and returns a validated `Sketch`:

* Every subpath of every drawn element (`<path>`, `<line>`, `<polyline>`, `<polygon>`,
  `<rect>`, `<circle>`, `<ellipse>`, and what `<use>` copies) becomes one `Path`.
  Lines and quadratics become *exact* cubics; elliptical arcs (the `A` command, circles,
  ellipses, rounded rectangle corners) become cubics with the k = 4/3·tan(θ/4) handles,
  split into enough pieces to stay within `ARC_TOLERANCE_PX` of the true arc *on the
  canvas* (after every transform). A zero-length subpath (`M 5 5 Z`, `M x y h.01`) is a
  dot drawn by its round cap, not an error; a lone `M` draws nothing and is skipped.
* Control points are mapped by the full affine transform (exact for Béziers). The stroke
  half-width is stroke-width / 2 · sqrt(|det|) of the linear part of that transform: exact
  for rotations and uniform scales, the area-preserving average for a non-uniform scale or
  a skew (a Path has one width; the SVG's stroke would be thicker in one direction).
* Paint: a stroked element keeps its stroke (colour, stroke-opacity × colour alpha × the
  product of `opacity` down the tree); its fill is ignored. A filled element without a
  stroke is imported as its outline, `fill_half_width` (default
  `DEFAULT_FILL_HALF_WIDTH` = 1.0 canvas px) wide, in its fill colour with fill-opacity ×
  opacity, and an `SVGImportWarning`. An element with neither (SVG's defaults: fill black,
  stroke none) draws nothing and is skipped, like the invisible boxes of icon sets.
  Gradients and patterns are drawn black with a warning. Every warning is also listed in
  `sketch.metadata["import_warnings"]`.
* Not drawn, silently: `<defs>` content (unless `<use>`d), `<title>`, `<desc>`,
  `<metadata>`, clip paths, masks, symbols, gradients, patterns, markers, filters,
  animation elements, an empty `<style>`, and elements of other namespaces (Inkscape,
  Sodipodi, RDF). Refused with an `SVGError` naming the element and the fix: text,
  raster images, `<foreignObject>`, CSS style sheets with rules (wherever they are, since
  they would restyle the drawing) and unknown SVG elements.
* Also understood: `<use>` (of elements, symbols and later elements, in drawing order;
  cycles refused), nested `<svg>`, `<a>`, `<switch>` (first child without
  `requiredExtensions`), `vector-effect="non-scaling-stroke"`, `.svgz`. An invalid
  presentation value (say `stroke="#12345"`) is ignored, as browsers do, with a warning;
  invalid geometry (path data, points, coordinates, transforms) is an `SVGError`.
* XML is parsed with defusedxml: entity declarations (billion laughs, external entities)
  are refused before anything is expanded or fetched; a plain `<!DOCTYPE>` is accepted.
  The drawing is walked while it is parsed, so a file over a limit (`MAX_SVG_BYTES`,
  `MAX_SVG_ELEMENTS`, `engine.sketch.MAX_PATHS` / `MAX_POINTS`) fails as soon as it is
  exceeded.

Coordinate mapping
------------------
1. The root `width` × `height` (units px, pt, pc, mm, cm, in, Q, em = rem = 16 px,
   ex = 8 px, %; missing: the `viewBox` size, one missing: from the `viewBox` aspect
   ratio, neither and no `viewBox`: 300 × 150) is the *viewport*, in px.
2. The `viewBox` (x, y, w, h) maps user space onto the viewport as `preserveAspectRatio`
   says (default `xMidYMid meet`): for `none`, scale (W/w, H/h); otherwise s = min (meet)
   or max (slice) of those, and the scaled box is aligned at Min (0), Mid (½) or Max (1) of
   the slack on each axis. Without a `viewBox`, user units are viewport px.
3. The viewport is scaled uniformly to fit the canvas and centred:
   k = min(canvas_w / W, canvas_h / H), offset ((canvas_w − k·W)/2, (canvas_h − k·H)/2).
   With `canvas_size=None` the canvas is the viewport rounded up to whole pixels.

The composition (user space of the root → canvas px) is stored in
`sketch.metadata["svg_to_canvas"]` as the 2×3 affine [[a, c, e], [b, d, f]]:
x' = a·x + c·y + e, y' = b·x + d·y + f.

Export
------
`export_svg` writes a plain SVG with one `<path>` per Path (absolute `M`/`C`, `Z` when
closed, numbers at `repr` precision), whose canvas is its viewport and its `viewBox`, so
`import_svg(export_svg(s), canvas_size=(s.width, s.height))` gives `s` back.
"""

from .export import export_svg, save_svg, save_svg_frames
from .importer import DEFAULT_CANVAS, DEFAULT_FILL_HALF_WIDTH, MAX_SVG_BYTES, SVGImportWarning, import_svg

__all__ = [
    "DEFAULT_CANVAS",
    "DEFAULT_FILL_HALF_WIDTH",
    "MAX_SVG_BYTES",
    "SVGImportWarning",
    "export_svg",
    "import_svg",
    "save_svg",
    "save_svg_frames",
]
