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

from __future__ import annotations

import colorsys
import functools
import gzip
import io
import math
import operator
import os
import re
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path as FilePath
from typing import Callable, Iterator
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from .errors import SketchError, SVGError
from .files import atomic_write_text
from .sketch import MAX_PATHS, MAX_POINTS, Path, Sketch, check_canvas

__all__ = [
    "DEFAULT_FILL_HALF_WIDTH",
    "MAX_SVG_BYTES",
    "SVGImportWarning",
    "export_svg",
    "import_svg",
    "save_svg",
    "save_svg_frames",
]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

DEFAULT_CANVAS = 256
DEFAULT_FILL_HALF_WIDTH = 1.0  # canvas px: the outline drawn for a filled shape without stroke
ARC_TOLERANCE_PX = 0.02  # most an arc's cubics may stray from the true arc, in canvas px
MAX_ARC_PIECES = 1024  # per arc; only absurd radii (≫ 1e12 px) would need more
MAX_SVG_BYTES = 64 * 2**20
MAX_SVG_ELEMENTS = 10 * MAX_PATHS  # parsed elements plus the copies `<use>` makes
MAX_NESTING = 128  # group depth, including what <use> adds

Point = tuple[float, float]
RGB = tuple[float, float, float]


class SVGImportWarning(UserWarning):
    """Part of an SVG was imported approximately (a fill as an outline, a gradient as black)."""


class _BadValue(Exception):
    """An attribute value cannot be read; the caller adds which element it belongs to."""


# ============================================================================ public API
def import_svg(
    source: str | os.PathLike | bytes,
    canvas_size: int | tuple[int, int] | None = DEFAULT_CANVAS,
    fill_half_width: float = DEFAULT_FILL_HALF_WIDTH,
) -> Sketch:
    """Read an SVG (a file path, or the SVG text or bytes) into a validated `Sketch`.

    `canvas_size` is the canvas in px: an int for a square, (width, height), or None for the
    SVG's own viewport size. The drawing is fitted into it as the module docstring says.
    """
    canvas = _requested_canvas(canvas_size)
    if not (isinstance(fill_half_width, (int, float)) and 0 < fill_half_width < math.inf):
        raise SVGError(f"fill_half_width must be a positive number of pixels, not {fill_half_width!r}")
    data, name = _read_source(source)
    importer = _Importer(name, canvas, float(fill_half_width))
    _parse_while_walking(data, name, importer)
    return importer.finish()


def export_svg(sketch: Sketch, frame: int | None = None) -> str:
    """The sketch (or one animation frame of it) as standalone SVG text."""
    sketch.validate()
    drawn = _frame_of(sketch, frame)
    width, height = sketch.width, sketch.height
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        *(_path_element(path) for path in drawn.paths),
        "</svg>",
        "",
    ]
    return "\n".join(lines)


def save_svg(sketch: Sketch, path: str | os.PathLike, frame: int | None = None) -> FilePath:
    """Write `export_svg(sketch, frame)` to `path` atomically (complete or absent)."""
    return atomic_write_text(path, export_svg(sketch, frame))


def save_svg_frames(sketch: Sketch, out_dir: str | os.PathLike, stem: str = "frame") -> list[FilePath]:
    """Write one SVG per animation frame, `{stem}_0000.svg`, `{stem}_0001.svg`, …, each atomically."""
    if sketch.num_frames == 0:
        raise SketchError("the sketch has no animation frames: animate it first, or use save_svg for one drawing")
    out_dir = FilePath(out_dir)
    return [save_svg(sketch, out_dir / f"{stem}_{i:04d}.svg", frame=i) for i in range(sketch.num_frames)]


# ======================================================================= reading input
def _requested_canvas(canvas_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """Canvas (width, height) from the `canvas_size` argument; None means the SVG's own size."""
    if canvas_size is None:
        return None
    if isinstance(canvas_size, (tuple, list)) and len(canvas_size) == 2:
        width, height = canvas_size
    else:
        width = height = canvas_size
    check_canvas(width, height)
    return int(width), int(height)


def _read_source(source: str | os.PathLike | bytes) -> tuple[str | bytes, str]:
    """The SVG document and a name for messages; refuses oversized input before reading it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = _within_size_limit(bytes(source), "the SVG data")
        return _within_size_limit(_gunzip_if_needed(data, "the SVG data"), "the SVG data"), "the SVG data"
    if isinstance(source, str) and source.lstrip("\ufeff \t\r\n").startswith("<"):
        _within_size_limit(source.encode("utf-8"), "the SVG text")
        return source, "the SVG text"
    if isinstance(source, (str, os.PathLike)):
        path = FilePath(source)
        return _read_file(path), str(path)
    raise SVGError(f"cannot import an SVG from a {type(source).__name__}: pass a file path, SVG text or bytes")


def _read_file(path: FilePath) -> bytes:
    try:
        if path.is_dir():
            raise SVGError(f"{path} is a folder, not an SVG file")
        size = path.stat().st_size
        if size > MAX_SVG_BYTES:
            raise SVGError(
                f"{path} is {size / 2**20:.0f} MiB; an SVG may be at most {MAX_SVG_BYTES >> 20} MiB: simplify it"
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_SVG_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise SVGError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _within_size_limit(_gunzip_if_needed(data, str(path)), str(path))


def _gunzip_if_needed(data: bytes, name: str) -> bytes:
    """Decompress `.svgz` content, reading no more than the size limit (no zip bombs)."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
            return archive.read(MAX_SVG_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise SVGError(f"{name} looks gzip-compressed (.svgz) but cannot be decompressed: {exc}") from None


def _within_size_limit(data: bytes, name: str) -> bytes:
    if len(data) > MAX_SVG_BYTES:
        raise SVGError(f"{name} is larger than {MAX_SVG_BYTES >> 20} MiB, the limit for an SVG: simplify it")
    return data


# ===================================================================== XML, streamed
class _WalkingTreeBuilder(TreeBuilder):
    """Builds the element tree and hands each element to the importer as soon as it is parsed.

    Walking during the parse lets a huge file fail at the element that crosses a limit
    instead of after the whole file has been read into a tree.
    """

    def __init__(self, importer: "_Importer") -> None:
        super().__init__()
        self.importer = importer
        self.expat = None  # the expat parser, for line numbers

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = super().start(tag, attrs)
        self.importer.open_element(element, self.expat.CurrentLineNumber if self.expat else None)
        return element

    def end(self, tag: str) -> Element:
        element = super().end(tag)
        self.importer.close_element(element)
        return element


def _parse_while_walking(data: str | bytes, name: str, importer: "_Importer") -> None:
    """Parse with XML entities forbidden, so nothing is ever expanded or fetched."""
    builder = _WalkingTreeBuilder(importer)
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        parser.close()
    except DefusedXmlException:
        raise SVGError(
            f"{name} declares XML entities, which are refused for safety (they can expand to gigabytes "
            "or read other files): remove the <!ENTITY …> declarations (from Illustrator, use "
            "File → Export → Export As… → SVG instead of Save As)"
        ) from None
    except ParseError as exc:
        line, column = exc.position
        reason = re.sub(r":\s*line \d+, column \d+$", "", str(exc))
        raise SVGError(f"{name} is not well-formed XML: {reason} at line {line}, column {column + 1}") from None


# =============================================================== numbers and lengths
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_NOT_FINITE_RE = re.compile(r"[+-]?(?:nan|inf)", re.IGNORECASE)
_SPACE_RE = re.compile(r"[ \t\r\n\f]*")
_SEPARATOR_RE = re.compile(r"[ \t\r\n\f]*(?:,[ \t\r\n\f]*)?")
_LENGTH_RE = re.compile(rf"({_NUMBER})\s*(%|[a-zA-Z]*)")
_PX_PER_UNIT = {
    "": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4,
    "q": 96 / 101.6, "em": 16.0, "rem": 16.0, "ex": 8.0,
}  # fmt: skip


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _BadValue(f"number {token!r} is not finite")
    return value


def _number_list(text: str) -> list[float]:
    """Numbers separated by whitespace and/or single commas (SVG's list grammar)."""
    numbers: list[float] = []
    pos = _SPACE_RE.match(text).end()
    while pos < len(text):
        match = _NUMBER_RE.match(text, pos)
        if match is None:
            bad = _NOT_FINITE_RE.match(text, pos)
            found = bad.group() if bad else text[pos : pos + 12]
            raise _BadValue(f"expected a finite number at character {pos + 1}, found {found!r}")
        numbers.append(_finite(match.group()))
        pos = _SEPARATOR_RE.match(text, match.end()).end()
    return numbers


def _parse_length(text: str, percent_of: float) -> float:
    """A length in user units (= px): `12`, `1.5mm`, `2in`, `50%` (of `percent_of`)."""
    match = _LENGTH_RE.fullmatch(text.strip())
    if match is None:
        if _NOT_FINITE_RE.match(text.strip()):
            raise _BadValue("coordinates must be finite numbers")
        raise _BadValue(f"{text!r} is not a length")
    number, unit = _finite(match.group(1)), match.group(2).lower()
    if unit == "%":
        return number / 100 * percent_of
    if unit not in _PX_PER_UNIT:
        raise _BadValue(f"unknown unit {unit!r} in {text!r}")
    return number * _PX_PER_UNIT[unit]


def _percent_base(viewport: tuple[float, float], axis: str) -> float:
    """What 100% means for a length along `axis` ('x', 'y' or 'xy' for radii and widths)."""
    width, height = viewport
    if axis == "x":
        return width
    if axis == "y":
        return height
    return math.hypot(width, height) / math.sqrt(2)


def _length_attribute(
    element: Element, name: str, viewport: tuple[float, float], axis: str, default: float | None = 0.0
) -> float | None:
    """A geometry attribute such as `x` or `r`; `default` when absent or `auto`."""
    value = element.get(name)
    if value is None or value.strip() in ("", "auto"):
        return default
    try:
        return _parse_length(value, _percent_base(viewport, axis))
    except _BadValue as exc:
        raise _BadValue(f"{name}={value!r}: {exc}") from None


# ============================================================================= colours
# The CSS named colours (CSS Color Module Level 4), as 0xRRGGBB.
_NAMED_COLORS = {
    "aliceblue": 0xF0F8FF, "antiquewhite": 0xFAEBD7, "aqua": 0x00FFFF, "aquamarine": 0x7FFFD4,
    "azure": 0xF0FFFF, "beige": 0xF5F5DC, "bisque": 0xFFE4C4, "black": 0x000000,
    "blanchedalmond": 0xFFEBCD, "blue": 0x0000FF, "blueviolet": 0x8A2BE2, "brown": 0xA52A2A,
    "burlywood": 0xDEB887, "cadetblue": 0x5F9EA0, "chartreuse": 0x7FFF00, "chocolate": 0xD2691E,
    "coral": 0xFF7F50, "cornflowerblue": 0x6495ED, "cornsilk": 0xFFF8DC, "crimson": 0xDC143C,
    "cyan": 0x00FFFF, "darkblue": 0x00008B, "darkcyan": 0x008B8B, "darkgoldenrod": 0xB8860B,
    "darkgray": 0xA9A9A9, "darkgreen": 0x006400, "darkgrey": 0xA9A9A9, "darkkhaki": 0xBDB76B,
    "darkmagenta": 0x8B008B, "darkolivegreen": 0x556B2F, "darkorange": 0xFF8C00, "darkorchid": 0x9932CC,
    "darkred": 0x8B0000, "darksalmon": 0xE9967A, "darkseagreen": 0x8FBC8F, "darkslateblue": 0x483D8B,
    "darkslategray": 0x2F4F4F, "darkslategrey": 0x2F4F4F, "darkturquoise": 0x00CED1, "darkviolet": 0x9400D3,
    "deeppink": 0xFF1493, "deepskyblue": 0x00BFFF, "dimgray": 0x696969, "dimgrey": 0x696969,
    "dodgerblue": 0x1E90FF, "firebrick": 0xB22222, "floralwhite": 0xFFFAF0, "forestgreen": 0x228B22,
    "fuchsia": 0xFF00FF, "gainsboro": 0xDCDCDC, "ghostwhite": 0xF8F8FF, "gold": 0xFFD700,
    "goldenrod": 0xDAA520, "gray": 0x808080, "green": 0x008000, "greenyellow": 0xADFF2F,
    "grey": 0x808080, "honeydew": 0xF0FFF0, "hotpink": 0xFF69B4, "indianred": 0xCD5C5C,
    "indigo": 0x4B0082, "ivory": 0xFFFFF0, "khaki": 0xF0E68C, "lavender": 0xE6E6FA,
    "lavenderblush": 0xFFF0F5, "lawngreen": 0x7CFC00, "lemonchiffon": 0xFFFACD, "lightblue": 0xADD8E6,
    "lightcoral": 0xF08080, "lightcyan": 0xE0FFFF, "lightgoldenrodyellow": 0xFAFAD2, "lightgray": 0xD3D3D3,
    "lightgreen": 0x90EE90, "lightgrey": 0xD3D3D3, "lightpink": 0xFFB6C1, "lightsalmon": 0xFFA07A,
    "lightseagreen": 0x20B2AA, "lightskyblue": 0x87CEFA, "lightslategray": 0x778899, "lightslategrey": 0x778899,
    "lightsteelblue": 0xB0C4DE, "lightyellow": 0xFFFFE0, "lime": 0x00FF00, "limegreen": 0x32CD32,
    "linen": 0xFAF0E6, "magenta": 0xFF00FF, "maroon": 0x800000, "mediumaquamarine": 0x66CDAA,
    "mediumblue": 0x0000CD, "mediumorchid": 0xBA55D3, "mediumpurple": 0x9370DB, "mediumseagreen": 0x3CB371,
    "mediumslateblue": 0x7B68EE, "mediumspringgreen": 0x00FA9A, "mediumturquoise": 0x48D1CC,
    "mediumvioletred": 0xC71585, "midnightblue": 0x191970, "mintcream": 0xF5FFFA, "mistyrose": 0xFFE4E1,
    "moccasin": 0xFFE4B5, "navajowhite": 0xFFDEAD, "navy": 0x000080, "oldlace": 0xFDF5E6,
    "olive": 0x808000, "olivedrab": 0x6B8E23, "orange": 0xFFA500, "orangered": 0xFF4500,
    "orchid": 0xDA70D6, "palegoldenrod": 0xEEE8AA, "palegreen": 0x98FB98, "paleturquoise": 0xAFEEEE,
    "palevioletred": 0xDB7093, "papayawhip": 0xFFEFD5, "peachpuff": 0xFFDAB9, "peru": 0xCD853F,
    "pink": 0xFFC0CB, "plum": 0xDDA0DD, "powderblue": 0xB0E0E6, "purple": 0x800080,
    "rebeccapurple": 0x663399, "red": 0xFF0000, "rosybrown": 0xBC8F8F, "royalblue": 0x4169E1,
    "saddlebrown": 0x8B4513, "salmon": 0xFA8072, "sandybrown": 0xF4A460, "seagreen": 0x2E8B57,
    "seashell": 0xFFF5EE, "sienna": 0xA0522D, "silver": 0xC0C0C0, "skyblue": 0x87CEEB,
    "slateblue": 0x6A5ACD, "slategray": 0x708090, "slategrey": 0x708090, "snow": 0xFFFAFA,
    "springgreen": 0x00FF7F, "steelblue": 0x4682B4, "tan": 0xD2B48C, "teal": 0x008080,
    "thistle": 0xD8BFD8, "tomato": 0xFF6347, "turquoise": 0x40E0D0, "violet": 0xEE82EE,
    "wheat": 0xF5DEB3, "white": 0xFFFFFF, "whitesmoke": 0xF5F5F5, "yellow": 0xFFFF00,
    "yellowgreen": 0x9ACD32,
}  # fmt: skip
_HEX_COLOR_RE = re.compile(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_FUNCTION_COLOR_RE = re.compile(r"(rgba?|hsla?)\((.*)\)", re.DOTALL)


def _parse_color(text: str) -> tuple[RGB, float]:
    """A CSS colour as (sRGB in [0, 1], alpha): #rgb[a], #rrggbb[aa], rgb[a](), hsl[a](), names."""
    value = text.strip().lower()
    if (match := _HEX_COLOR_RE.fullmatch(value)) is not None:
        return _hex_color(match.group(1))
    if value in _NAMED_COLORS:
        return _hex_color(f"{_NAMED_COLORS[value]:06x}")
    if value == "transparent":
        return (0.0, 0.0, 0.0), 0.0
    if (match := _FUNCTION_COLOR_RE.fullmatch(value)) is not None:
        args = [arg for arg in re.split(r"[\s,/]+", match.group(2).strip()) if arg]
        if len(args) in (3, 4):
            alpha = _color_fraction(args[3], 1.0) if len(args) == 4 else 1.0
            if match.group(1).startswith("rgb"):
                return tuple(_color_fraction(arg, 255.0) for arg in args[:3]), alpha  # type: ignore[return-value]
            return _hsl_color(args[:3]), alpha
    raise _BadValue(f"unknown colour {text.strip()!r}")


def _hex_color(digits: str) -> tuple[RGB, float]:
    if len(digits) <= 4:
        digits = "".join(2 * d for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in range(0, len(digits), 2)]
    return (channels[0], channels[1], channels[2]), (channels[3] if len(channels) == 4 else 1.0)


def _color_fraction(token: str, full_scale: float) -> float:
    """A colour channel or alpha: a number out of `full_scale`, or a percentage; clamped to [0, 1]."""
    if token.endswith("%"):
        value = _finite(_checked_number(token[:-1])) / 100
    else:
        value = _finite(_checked_number(token)) / full_scale
    return min(1.0, max(0.0, value))


def _checked_number(token: str) -> str:
    if _NUMBER_RE.fullmatch(token) is None:
        raise _BadValue(f"{token!r} is not a number")
    return token


_DEGREES_PER_UNIT = {None: 1.0, "deg": 1.0, "rad": 180 / math.pi, "grad": 0.9, "turn": 360.0}


def _hsl_color(args: list[str]) -> RGB:
    hue = re.fullmatch(rf"({_NUMBER})(deg|rad|grad|turn)?", args[0])
    if hue is None:
        raise _BadValue(f"{args[0]!r} is not a hue")
    degrees = _finite(hue.group(1)) * _DEGREES_PER_UNIT[hue.group(2)]
    saturation = _color_fraction(args[1] if args[1].endswith("%") else args[1] + "%", 1.0)
    lightness = _color_fraction(args[2] if args[2].endswith("%") else args[2] + "%", 1.0)
    return colorsys.hls_to_rgb((degrees / 360) % 1.0, lightness, saturation)


@dataclass(frozen=True)
class _Paint:
    """A fill or stroke that is not `none`: a colour, `currentColor`, or a paint server."""

    rgb: RGB | None = None  # None: currentColor (resolved with the element's `color`)
    alpha: float = 1.0
    server: str | None = None  # url(#…) without a fallback colour: drawn black


@functools.lru_cache(maxsize=4096)
def _parse_paint(text: str) -> _Paint | None:
    """A `fill` / `stroke` value; None for `none`."""
    value = text.strip()
    lowered = value.lower()
    if lowered == "none":
        return None
    if lowered == "currentcolor":
        return _Paint()
    if lowered.startswith("url("):
        end = value.find(")")
        if end < 0:
            raise _BadValue(f"unclosed url( in {value!r}")
        fallback = value[end + 1 :].strip()
        return _parse_paint(fallback) if fallback else _Paint(server=value[: end + 1])
    rgb, alpha = _parse_color(value)
    return _Paint(rgb, alpha)


# ========================================================================== transforms
_TRANSFORM_ITEM_RE = re.compile(r"[ \t\r\n\f,]*([A-Za-z]+)[ \t\r\n\f]*\(([^()]*)\)")
_TRANSFORM_ARITY = {
    "matrix": (6,), "translate": (1, 2), "scale": (1, 2), "rotate": (1, 3), "skewX": (1,), "skewY": (1,),
}  # fmt: skip


def _parse_transform(text: str) -> np.ndarray:
    """A `transform` list as a 3×3 matrix; items compose left to right (`A B` is A·B)."""
    matrix = np.eye(3)
    text = text.rstrip(" \t\r\n\f,")
    pos = 0
    while pos < len(text):
        match = _TRANSFORM_ITEM_RE.match(text, pos)
        if match is None:
            raise _BadValue(f"bad transform {text!r} at character {pos + 1}")
        try:
            matrix = matrix @ _transform_matrix(match.group(1), _number_list(match.group(2)))
        except _BadValue as exc:
            raise _BadValue(f"bad transform {match.group().strip(' ,')!r}: {exc}") from None
        pos = match.end()
    return matrix


def _transform_matrix(name: str, args: list[float]) -> np.ndarray:
    arity = _TRANSFORM_ARITY.get(name)
    if arity is None:
        raise _BadValue(f"unknown function {name}()")
    if len(args) not in arity:
        raise _BadValue(f"{name}() takes {' or '.join(map(str, arity))} numbers, not {len(args)}")
    if name == "matrix":
        a, b, c, d, e, f = args
        return _affine(a, b, c, d, e, f)
    if name == "translate":
        return _translation(args[0], args[1] if len(args) == 2 else 0.0)
    if name == "scale":
        return _affine(args[0], 0.0, 0.0, args[-1], 0.0, 0.0)
    if name == "rotate":
        angle = math.radians(args[0])
        cx, cy = (args[1], args[2]) if len(args) == 3 else (0.0, 0.0)
        rotation = _affine(math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle), 0.0, 0.0)
        return _translation(cx, cy) @ rotation @ _translation(-cx, -cy)
    if name == "skewX":
        return _affine(1.0, 0.0, math.tan(math.radians(args[0])), 1.0, 0.0, 0.0)
    return _affine(1.0, math.tan(math.radians(args[0])), 0.0, 1.0, 0.0, 0.0)  # skewY


def _affine(a: float, b: float, c: float, d: float, e: float, f: float) -> np.ndarray:
    """The 3×3 matrix of SVG's matrix(a b c d e f): x' = a·x + c·y + e, y' = b·x + d·y + f."""
    return np.array([[a, c, e], [b, d, f], [0.0, 0.0, 1.0]])


def _translation(tx: float, ty: float) -> np.ndarray:
    return _affine(1.0, 0.0, 0.0, 1.0, tx, ty)


# ==================================================================== viewport mapping
_ALIGNMENTS = {
    f"x{x}Y{y}": (fx, fy)
    for x, fx in (("Min", 0.0), ("Mid", 0.5), ("Max", 1.0))
    for y, fy in (("Min", 0.0), ("Mid", 0.5), ("Max", 1.0))
}
_DEFAULT_ASPECT: tuple[tuple[float, float] | None, bool] = ((0.5, 0.5), False)


def _parse_view_box(text: str) -> tuple[float, float, float, float]:
    numbers = _number_list(text)
    if len(numbers) != 4:
        raise _BadValue(f"viewBox={text!r} needs 4 numbers (x y width height)")
    if numbers[2] <= 0 or numbers[3] <= 0:
        raise _BadValue(f"viewBox={text!r} has a zero or negative width or height")
    return numbers[0], numbers[1], numbers[2], numbers[3]


def _parse_aspect(text: str | None) -> tuple[tuple[float, float] | None, bool]:
    """`preserveAspectRatio` as (alignment fractions or None for `none`, slice?)."""
    if text is None:
        return _DEFAULT_ASPECT
    tokens = text.split()
    if tokens[:1] == ["defer"]:
        tokens = tokens[1:]
    if not 1 <= len(tokens) <= 2 or (tokens[0] != "none" and tokens[0] not in _ALIGNMENTS):
        raise _BadValue(f"preserveAspectRatio={text!r} is not valid")
    if len(tokens) == 2 and tokens[1] not in ("meet", "slice"):
        raise _BadValue(f"preserveAspectRatio={text!r} must end in meet or slice")
    alignment = None if tokens[0] == "none" else _ALIGNMENTS[tokens[0]]
    return alignment, tokens[1:] == ["slice"]


def _view_box_transform(
    view_box: tuple[float, float, float, float],
    aspect: tuple[tuple[float, float] | None, bool],
    width: float,
    height: float,
) -> np.ndarray:
    """Map the viewBox rectangle onto a width × height viewport as preserveAspectRatio says."""
    x, y, box_width, box_height = view_box
    scale_x, scale_y = width / box_width, height / box_height
    alignment, slice_ = aspect
    if alignment is None:
        return _affine(scale_x, 0.0, 0.0, scale_y, -x * scale_x, -y * scale_y)
    scale = max(scale_x, scale_y) if slice_ else min(scale_x, scale_y)
    offset_x = alignment[0] * (width - box_width * scale) - x * scale
    offset_y = alignment[1] * (height - box_height * scale) - y * scale
    return _affine(scale, 0.0, 0.0, scale, offset_x, offset_y)


def _root_viewport(root: Element) -> tuple[float, float, tuple[float, float, float, float] | None]:
    """The root's viewport size in px and its viewBox (see the module docstring for defaults)."""
    view_box = _parse_view_box(root.get("viewBox", "")) if root.get("viewBox") else None
    box_width, box_height = (view_box[2], view_box[3]) if view_box else (300.0, 150.0)
    width = _length_attribute(root, "width", (box_width, box_height), "x", default=None)
    height = _length_attribute(root, "height", (box_width, box_height), "y", default=None)
    if width is None and height is None:
        width, height = box_width, box_height
    elif width is None:
        width = height * box_width / box_height if view_box else 300.0
    elif height is None:
        height = width * box_height / box_width if view_box else 150.0
    if not (width > 0 and height > 0 and math.isfinite(width * height)):
        raise _BadValue(f"the size {width} × {height} px is not a positive, finite size")
    return width, height, view_box


def _fit_to_canvas(width: float, height: float, canvas: tuple[int, int]) -> np.ndarray:
    """Scale the viewport uniformly to fit the canvas, centred."""
    scale = min(canvas[0] / width, canvas[1] / height)
    return _affine(scale, 0.0, 0.0, scale, (canvas[0] - scale * width) / 2, (canvas[1] - scale * height) / 2)


# ======================================================================= arcs as cubics
@dataclass(frozen=True)
class _Arc:
    """An elliptical arc in centre form: the ellipse, the start angle and the signed sweep."""

    cx: float
    cy: float
    rx: float
    ry: float
    rotation: float  # radians, of the ellipse's x axis
    start: float  # radians, parameter angle on the unit circle
    sweep: float  # radians, positive towards +y

    def cubics(self, pieces: int) -> Iterator[tuple[Point, Point, Point]]:
        """(control 1, control 2, end) of each piece, with the k = 4/3·tan(θ/4) handles."""
        step = self.sweep / pieces
        k = 4 / 3 * math.tan(step / 4)
        for i in range(pieces):
            a, b = self.start + i * step, self.start + (i + 1) * step
            cos_a, sin_a, cos_b, sin_b = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
            yield (
                self._point(cos_a - k * sin_a, sin_a + k * cos_a),
                self._point(cos_b + k * sin_b, sin_b - k * cos_b),
                self._point(cos_b, sin_b),
            )

    def _point(self, u: float, v: float) -> Point:
        """Unit-circle coordinates → user space."""
        x, y = self.rx * u, self.ry * v
        cos_r, sin_r = math.cos(self.rotation), math.sin(self.rotation)
        return self.cx + cos_r * x - sin_r * y, self.cy + sin_r * x + cos_r * y


def _endpoint_arc_to_center(
    p1: Point, p2: Point, rx: float, ry: float, rotation: float, large_arc: bool, sweep: bool
) -> _Arc:
    """SVG's endpoint parameterisation → centre form (SVG 1.1, appendix F.6.5 and F.6.6).

    Radii too small to span the endpoints are scaled up until the arc is a half ellipse.
    """
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    half_dx, half_dy = (p1[0] - p2[0]) / 2, (p1[1] - p2[1]) / 2
    x1 = cos_r * half_dx + sin_r * half_dy
    y1 = -sin_r * half_dx + cos_r * half_dy
    too_small = (x1 / rx) ** 2 + (y1 / ry) ** 2
    if too_small > 1:
        rx, ry = rx * math.sqrt(too_small), ry * math.sqrt(too_small)
    numerator = (rx * ry) ** 2 - (rx * y1) ** 2 - (ry * x1) ** 2
    denominator = (rx * y1) ** 2 + (ry * x1) ** 2
    factor = math.sqrt(max(0.0, numerator / denominator))
    if large_arc == sweep:
        factor = -factor
    cx1, cy1 = factor * rx * y1 / ry, -factor * ry * x1 / rx
    cx = cos_r * cx1 - sin_r * cy1 + (p1[0] + p2[0]) / 2
    cy = sin_r * cx1 + cos_r * cy1 + (p1[1] + p2[1]) / 2
    ux, uy = (x1 - cx1) / rx, (y1 - cy1) / ry
    vx, vy = (-x1 - cx1) / rx, (-y1 - cy1) / ry
    delta = math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    return _Arc(cx, cy, rx, ry, rotation, math.atan2(uy, ux), delta)


def _arc_piece_error(angle: float) -> float:
    """Largest radial deviation of a k = 4/3·tan(θ/4) cubic from a unit circular arc of angle θ."""
    return 2 / 27 * math.sin(angle / 4) ** 6 / math.cos(angle / 4) ** 2


def _arc_piece_count(sweep: float, radius_px: float) -> int:
    """Pieces (each ≤ 90°) for an arc whose ellipse is at most `radius_px` across on the canvas.

    An affine map stretches the unit-circle error by at most its largest singular value, so
    radius_px · error(θ) bounds the distance to the true (transformed) arc.
    """
    pieces = max(1, math.ceil(abs(sweep) / (math.pi / 2) - 1e-9))
    while pieces < MAX_ARC_PIECES and radius_px * _arc_piece_error(abs(sweep) / pieces) > ARC_TOLERANCE_PX:
        pieces += 1
    return pieces


# ====================================================================== outline builder
def _same_point(a: Point, b: Point) -> bool:
    """Equal up to float noise (relative path data accumulates rounding)."""
    tolerance = 1e-9 * (1.0 + max(abs(a[0]), abs(a[1])))
    return abs(a[0] - b[0]) <= tolerance and abs(a[1] - b[1]) <= tolerance


class _Outline:
    """Subpaths of cubic Bézier control points in user space, built command by command.

    Keeps what S and T reflect (the last cubic or quadratic control point) and what Z and
    relative commands need (the subpath start, the current point).
    """

    def __init__(self, arc_scale: float = 1.0, max_points: int = MAX_POINTS, max_subpaths: int = MAX_PATHS) -> None:
        self.arc_scale = arc_scale  # canvas px per user unit, at most (for arc accuracy)
        self.max_points = max_points  # what is left of the sketch's limits, to fail early
        self.max_subpaths = max_subpaths
        self.subpaths: list[tuple[list[Point], bool]] = []
        self.current: Point = (0.0, 0.0)
        self.start: Point = (0.0, 0.0)
        self._points: list[Point] | None = None  # the open subpath
        self._num_points = 0
        self._cubic_control: Point | None = None
        self._quad_control: Point | None = None

    # -------------------------------------------------------------------- commands
    def move_to(self, p: Point) -> None:
        self._end_subpath()
        self.start = self.current = p
        self._points = [p]
        self._forget_controls()

    def line_to(self, p: Point) -> None:
        """A line as the exact cubic with handles at 1/3 and 2/3."""
        (x0, y0), (x1, y1) = self.current, p
        dx, dy = x1 - x0, y1 - y0
        self._append_cubic((x0 + dx / 3, y0 + dy / 3), (x0 + 2 * dx / 3, y0 + 2 * dy / 3), p)
        self._forget_controls()

    def cubic_to(self, c1: Point, c2: Point, p: Point) -> None:
        self._append_cubic(c1, c2, p)
        self._forget_controls()
        self._cubic_control = c2

    def smooth_cubic_to(self, c2: Point, p: Point) -> None:
        """S: the first control point reflects the previous C/S's second, else is the current point."""
        self.cubic_to(self._reflected(self._cubic_control), c2, p)

    def quad_to(self, q: Point, p: Point) -> None:
        """A quadratic as its exact cubic: handles 2/3 of the way to the control point."""
        (x0, y0), (x1, y1) = self.current, p
        c1 = (x0 + 2 / 3 * (q[0] - x0), y0 + 2 / 3 * (q[1] - y0))
        c2 = (x1 + 2 / 3 * (q[0] - x1), y1 + 2 / 3 * (q[1] - y1))
        self._append_cubic(c1, c2, p)
        self._forget_controls()
        self._quad_control = q

    def smooth_quad_to(self, p: Point) -> None:
        """T: the control point reflects the previous Q/T's, else is the current point."""
        self.quad_to(self._reflected(self._quad_control), p)

    def arc_to(self, rx: float, ry: float, rotation_deg: float, large_arc: bool, sweep: bool, p: Point) -> None:
        """A: identical endpoints omit the arc, a zero radius makes it a line."""
        if _same_point(self.current, p):
            self._forget_controls()
            return
        if rx == 0 or ry == 0:
            self.line_to(p)
            return
        arc = _endpoint_arc_to_center(self.current, p, abs(rx), abs(ry), math.radians(rotation_deg), large_arc, sweep)
        self.add_arc(arc, end=p)

    def add_arc(self, arc: _Arc, end: Point | None = None) -> None:
        """Append an arc in centre form, in as many pieces as the canvas scale needs."""
        pieces = _arc_piece_count(arc.sweep, self.arc_scale * max(arc.rx, arc.ry))
        for c1, c2, p in arc.cubics(pieces):
            self._append_cubic(c1, c2, p)
        if end is not None:  # land exactly on the requested end point
            self._points[-1] = self.current = end  # type: ignore[index]
        self._forget_controls()

    def close(self) -> None:
        """Z: a line back to the start unless already there; a subpath of one point is a dot."""
        if self._points is None:
            return
        if len(self._points) == 1:
            self._append_cubic(self.start, self.start, self.start)
        elif not _same_point(self.current, self.start):
            self.line_to(self.start)
        self._points[-1] = self.start
        self._store_subpath(self._points, closed=True)
        self._points = None
        self.current = self.start
        self._forget_controls()

    def finish(self) -> list[tuple[np.ndarray, bool]]:
        """The subpaths as ((3k+1, 2) arrays, closed) pairs; a lone moveto is dropped."""
        self._end_subpath()
        return [(np.asarray(points, dtype=np.float64), closed) for points, closed in self.subpaths]

    # ------------------------------------------------------------------- internals
    def _append_cubic(self, c1: Point, c2: Point, p: Point) -> None:
        if self._points is None:  # a drawing command right after Z starts at the old start
            self._points = [self.current]
        self._num_points += 3
        if self._num_points > self.max_points:
            raise _BadValue(f"more than {MAX_POINTS} control points in the drawing, the limit: simplify it")
        self._points.extend((c1, c2, p))
        self.current = p

    def _end_subpath(self) -> None:
        if self._points is not None and len(self._points) > 1:
            self._store_subpath(self._points, closed=False)
        self._points = None

    def _store_subpath(self, points: list[Point], closed: bool) -> None:
        if len(self.subpaths) >= self.max_subpaths:
            raise _BadValue(f"more than {MAX_PATHS} strokes in the drawing, the limit: simplify it")
        self.subpaths.append((points, closed))

    def _reflected(self, control: Point | None) -> Point:
        if control is None:
            return self.current
        return 2 * self.current[0] - control[0], 2 * self.current[1] - control[1]

    def _forget_controls(self) -> None:
        self._cubic_control = self._quad_control = None


# =========================================================================== path data
_PATH_ARGUMENTS = {"M": "nn", "L": "nn", "H": "n", "V": "n", "C": "nnnnnn", "S": "nnnn", "Q": "nnnn", "T": "nn",
                   "A": "nnnffnn", "Z": ""}  # fmt: skip
_IMPLICIT_NEXT = {"M": "L", "m": "l"}  # coordinates after a moveto are linetos


class _PathDataScanner:
    """Reads path data one command letter, number or arc flag at a time, tracking the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = _SPACE_RE.match(text).end()

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def next_is_number(self) -> bool:
        return not self.at_end() and self.text[self.pos] in "0123456789+-."

    def command(self) -> str:
        letter = self.text[self.pos] if not self.at_end() else ""
        if not letter or letter not in "MmLlHhVvCcSsQqTtAaZz":
            raise self.error("expected a command letter (M, L, H, V, C, S, Q, T, A or Z)")
        self.pos = _SPACE_RE.match(self.text, self.pos + 1).end()
        return letter

    def number(self) -> float:
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is None:
            if _NOT_FINITE_RE.match(self.text, self.pos):
                raise self.error("coordinates must be finite numbers")
            raise self.error("expected a number")
        value = float(match.group())
        if not math.isfinite(value):
            raise self.error(f"the number {match.group()!r} is not finite")
        self.pos = _SEPARATOR_RE.match(self.text, match.end()).end()
        return value

    def flag(self) -> bool:
        """An arc flag: a single 0 or 1, which may touch the next number (`0110 10`)."""
        if self.at_end() or self.text[self.pos] not in "01":
            raise self.error("expected an arc flag (0 or 1)")
        value = self.text[self.pos] == "1"
        self.pos = _SEPARATOR_RE.match(self.text, self.pos + 1).end()
        return value

    def error(self, problem: str) -> _BadValue:
        found = self.text[self.pos : self.pos + 16]
        where = f"found {found!r}" if found else "found the end"
        return _BadValue(f"bad path data at character {self.pos + 1}: {problem}, {where}")


def _parse_path_data(text: str, outline: _Outline) -> None:
    """Run SVG path data (`d`) through `outline`, with implicit repeats of each command."""
    scanner = _PathDataScanner(text)
    if scanner.at_end():
        return
    if scanner.text[scanner.pos] not in "Mm":
        raise scanner.error("path data must start with M or m")
    command = scanner.command()
    while True:
        args = [scanner.flag() if kind == "f" else scanner.number() for kind in _PATH_ARGUMENTS[command.upper()]]
        _apply_path_command(command, args, outline)
        if command in "Zz" or not scanner.next_is_number():
            if scanner.at_end():
                return
            command = scanner.command()
        else:
            command = _IMPLICIT_NEXT.get(command, command)


def _apply_path_command(command: str, args: list, outline: _Outline) -> None:
    kind = command.upper()
    x0, y0 = outline.current if command != kind else (0.0, 0.0)  # relative: offset by current point

    def at(i: int) -> Point:
        return x0 + args[i], y0 + args[i + 1]

    if kind == "M":
        outline.move_to(at(0))
    elif kind == "L":
        outline.line_to(at(0))
    elif kind == "H":
        outline.line_to((x0 + args[0], outline.current[1]))
    elif kind == "V":
        outline.line_to((outline.current[0], y0 + args[0]))
    elif kind == "C":
        outline.cubic_to(at(0), at(2), at(4))
    elif kind == "S":
        outline.smooth_cubic_to(at(0), at(2))
    elif kind == "Q":
        outline.quad_to(at(0), at(2))
    elif kind == "T":
        outline.smooth_quad_to(at(0))
    elif kind == "A":
        outline.arc_to(args[0], args[1], args[2], args[3], args[4], at(5))
    else:
        outline.close()


# ============================================================================== shapes
def _path_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    _parse_path_data(element.get("d") or "", outline)


def _line_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    outline.move_to((_length_attribute(element, "x1", viewport, "x"), _length_attribute(element, "y1", viewport, "y")))
    outline.line_to((_length_attribute(element, "x2", viewport, "x"), _length_attribute(element, "y2", viewport, "y")))


def _polyline_shape(element: Element, outline: _Outline, viewport: tuple[float, float], closed: bool = False) -> None:
    try:
        numbers = _number_list(element.get("points") or "")
    except _BadValue as exc:
        raise _BadValue(f"bad points: {exc}") from None
    if len(numbers) % 2:
        raise _BadValue(f"points has an odd number of coordinates ({len(numbers)}): each point needs x and y")
    if not numbers:
        return
    outline.move_to((numbers[0], numbers[1]))
    for i in range(2, len(numbers), 2):
        outline.line_to((numbers[i], numbers[i + 1]))
    if closed:
        outline.close()


def _polygon_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    _polyline_shape(element, outline, viewport, closed=True)


def _rect_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    """The rectangle path of the SVG spec: clockwise from the end of the top-left corner."""
    x, y = _length_attribute(element, "x", viewport, "x"), _length_attribute(element, "y", viewport, "y")
    width = _length_attribute(element, "width", viewport, "x")
    height = _length_attribute(element, "height", viewport, "y")
    if width < 0 or height < 0:
        raise _BadValue(f"negative width or height ({width} × {height})")
    if width == 0 or height == 0:
        return  # not rendered
    rx, ry = _corner_radii(element, viewport, width, height)
    if rx == 0 or ry == 0:
        outline.move_to((x, y))
        for corner in ((x + width, y), (x + width, y + height), (x, y + height)):
            outline.line_to(corner)
        outline.close()
        return
    outline.move_to((x + rx, y))
    for line_end, arc_end in (
        ((x + width - rx, y), (x + width, y + ry)),
        ((x + width, y + height - ry), (x + width - rx, y + height)),
        ((x + rx, y + height), (x, y + height - ry)),
        ((x, y + ry), (x + rx, y)),
    ):
        if not _same_point(outline.current, line_end):  # straight sides vanish when rx = width/2
            outline.line_to(line_end)
        outline.arc_to(rx, ry, 0.0, False, True, arc_end)
    outline.close()


def _corner_radii(element: Element, viewport: tuple[float, float], width: float, height: float) -> tuple[float, float]:
    """rx/ry per the spec: one given → the other equals it; clamped to half the width/height."""
    rx = _length_attribute(element, "rx", viewport, "x", default=None)
    ry = _length_attribute(element, "ry", viewport, "y", default=None)
    if rx is None and ry is None:
        return 0.0, 0.0
    rx = ry if rx is None else rx
    ry = rx if ry is None else ry
    if rx < 0 or ry < 0:
        raise _BadValue(f"negative corner radius (rx={rx}, ry={ry})")
    return min(rx, width / 2), min(ry, height / 2)


def _ellipse_outline(outline: _Outline, cx: float, cy: float, rx: float, ry: float) -> None:
    """A closed ellipse starting at (cx + rx, cy) and turning towards +y, as the spec draws it."""
    outline.move_to((cx + rx, cy))
    outline.add_arc(_Arc(cx, cy, rx, ry, 0.0, 0.0, 2 * math.pi), end=(cx + rx, cy))
    outline.close()


def _circle_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    r = _length_attribute(element, "r", viewport, "xy")
    if r < 0:
        raise _BadValue(f"negative radius r={r}")
    if r > 0:
        cx, cy = _length_attribute(element, "cx", viewport, "x"), _length_attribute(element, "cy", viewport, "y")
        _ellipse_outline(outline, cx, cy, r, r)


def _ellipse_shape(element: Element, outline: _Outline, viewport: tuple[float, float]) -> None:
    rx = _length_attribute(element, "rx", viewport, "x", default=None)
    ry = _length_attribute(element, "ry", viewport, "y", default=None)
    rx, ry = (ry if rx is None else rx), (rx if ry is None else ry)  # `auto`: the other radius
    if rx is None or ry is None:
        return
    if rx < 0 or ry < 0:
        raise _BadValue(f"negative radius (rx={rx}, ry={ry})")
    if rx > 0 and ry > 0:
        cx, cy = _length_attribute(element, "cx", viewport, "x"), _length_attribute(element, "cy", viewport, "y")
        _ellipse_outline(outline, cx, cy, rx, ry)


_SHAPES: dict[str, Callable[[Element, _Outline, tuple[float, float]], None]] = {
    "path": _path_shape,
    "line": _line_shape,
    "polyline": _polyline_shape,
    "polygon": _polygon_shape,
    "rect": _rect_shape,
    "circle": _circle_shape,
    "ellipse": _ellipse_shape,
}


# ============================================================================== styles
@dataclass(frozen=True)
class _Style:
    """Presentation properties an element ends up with, after inheritance."""

    stroke: _Paint | None = None
    fill: _Paint | None = _Paint((0.0, 0.0, 0.0))
    stroke_width: float = 1.0
    stroke_opacity: float = 1.0
    fill_opacity: float = 1.0
    color: tuple[RGB, float] = ((0.0, 0.0, 0.0), 1.0)
    visible: bool = True
    opacity: float = 1.0  # product of `opacity` over the element and its ancestors


def _parse_opacity(text: str) -> float:
    value = _finite(_checked_number(text[:-1])) / 100 if text.endswith("%") else _finite(_checked_number(text))
    return min(1.0, max(0.0, value))


def _parse_stroke_width(text: str, viewport: tuple[float, float]) -> float:
    width = _parse_length(text, _percent_base(viewport, "xy"))
    if width < 0:
        raise _BadValue("a stroke width cannot be negative")
    return width


def _parse_visibility(text: str) -> bool:
    if text not in ("visible", "hidden", "collapse"):
        raise _BadValue("use visible, hidden or collapse")
    return text == "visible"


# CSS property → the _Style field it sets
_STYLE_FIELDS = {
    "stroke": "stroke", "fill": "fill", "stroke-width": "stroke_width", "stroke-opacity": "stroke_opacity",
    "fill-opacity": "fill_opacity", "opacity": "opacity", "color": "color", "visibility": "visible",
}  # fmt: skip
_PRESENTATION_ATTRIBUTES = (*_STYLE_FIELDS, "display", "vector-effect")


def _parse_property(name: str, value: str, viewport: tuple[float, float]) -> object:
    """The value of one of `_STYLE_FIELDS`' properties, as the _Style field holds it."""
    if name in ("stroke", "fill"):
        return _parse_paint(value)
    if name == "stroke-width":
        return _parse_stroke_width(value, viewport)
    if name == "color":
        return _parse_color(value)
    if name == "visibility":
        return _parse_visibility(value)
    return _parse_opacity(value)
_CSS_COMMENT_RE = re.compile(r"/\*.*?\*/", re.DOTALL)


def _declared_properties(element: Element) -> dict[str, str]:
    """Presentation attributes, overridden by the `style` attribute's declarations."""
    if not element.attrib:
        return {}
    declared = {name: element.get(name, "") for name in _PRESENTATION_ATTRIBUTES if name in element.attrib}
    for item in _CSS_COMMENT_RE.sub("", element.get("style", "")).split(";"):
        name, colon, value = item.partition(":")
        name = name.strip().lower()
        if colon and name in _PRESENTATION_ATTRIBUTES:
            declared[name] = re.sub(r"\s*!\s*important\s*$", "", value.strip(), flags=re.IGNORECASE)
    return {name: value.strip() for name, value in declared.items()}


def _has_css_rules(style_sheet: str) -> bool:
    """True when a <style> holds anything beyond whitespace, comments and <!-- -->."""
    return bool(_CSS_COMMENT_RE.sub("", style_sheet).replace("<!--", "").replace("-->", "").strip())


# ============================================================================== walker
_NEVER_RENDERED = {
    "defs", "title", "desc", "metadata", "style", "script", "clipPath", "mask", "symbol",
    "linearGradient", "radialGradient", "meshgradient", "pattern", "hatch", "marker", "filter",
    "font", "font-face", "glyph", "missing-glyph", "cursor", "view", "color-profile", "solidcolor",
    "animate", "animateColor", "animateMotion", "animateTransform", "set", "mpath", "discard", "stop",
}  # fmt: skip
_CONTAINERS = {"g", "a", "switch", "svg"}
_TEXT_FIX = "text cannot be imported as strokes: convert text to paths in Inkscape (Path → Object to Path) and save again"
_REFUSAL_FIXES = {
    "text": _TEXT_FIX,
    "tspan": _TEXT_FIX,
    "textPath": _TEXT_FIX,
    "image": "raster images cannot be imported as strokes: delete the image, or trace it first "
    "(Inkscape: Path → Trace Bitmap)",
    "foreignObject": "foreign (HTML) content cannot be imported: delete it or redraw it with paths",
}
_UNKNOWN_FIX = (
    "not an SVG drawing element this importer knows: delete it or convert it to paths (Inkscape: Path → Object to Path)"
)
_FILL_AS_OUTLINE = "a shape with a fill but no stroke was imported as its outline, half-width {} px"


class _SwitchChoice:
    """`<switch>` draws only its first child whose conditions hold."""

    def __init__(self) -> None:
        self.taken = False

    def take(self) -> bool:
        if self.taken:
            return False
        self.taken = True
        return True


@dataclass(frozen=True, eq=False)
class _Context:
    """What an element inherits: the transform to canvas px, the style, the viewport for %."""

    ctm: np.ndarray  # 3×3, the element's user space → canvas px
    style: _Style
    viewport: tuple[float, float]  # user units that 100% refers to
    use_chain: tuple[str, ...] = ()  # ids being expanded by <use>, to refuse cycles
    switch: _SwitchChoice | None = None
    depth: int = 0


@dataclass(frozen=True, eq=False)
class _DeferredUse:
    """A <use> whose target comes later in the file: expanded, in place, after the parse."""

    element: Element
    context: _Context


@dataclass(frozen=True)
class _Ink:
    color: RGB
    opacity: float
    stroke_width: float | None  # user units; None: a fill drawn as an outline


class _Importer:
    """Walks the SVG elements, resolving styles and transforms, and collects the Paths."""

    def __init__(self, name: str, canvas: tuple[int, int] | None, fill_half_width: float) -> None:
        self.name = name
        self.canvas = canvas
        self.fill_half_width = fill_half_width
        self.svg_prefix = ""  # "{http://www.w3.org/2000/svg}", or "" for a namespace-less file
        self.svg_to_canvas = np.eye(3)
        self.canvas_scale = 1.0  # canvas px per viewport px
        self.lines: dict[Element, int] = {}
        self.ids: dict[str, Element] = {}
        self.open: list[tuple[Element, _Context | None]] = []
        self.open_elements: set[Element] = set()
        self.parsing = True
        self.output: list[Path | _DeferredUse] = []
        self.sink = self.output  # where new paths go
        self.num_paths = self.num_points = self.num_elements = 0
        self.warnings: dict[str, list[str]] = {}

    # ------------------------------------------------------------- parse events
    def open_element(self, element: Element, line: int | None) -> None:
        self._count_element()
        if line is not None:
            self.lines[element] = line
        if (element_id := element.get("id")) is not None:
            self.ids.setdefault(element_id, element)
        if not self.open:
            context = self._enter_root(element)
        else:
            parent = self.open[-1][1]
            context = self._enter(element, parent) if parent is not None else None
        self.open.append((element, context))
        self.open_elements.add(element)

    def close_element(self, element: Element) -> None:
        self.open.pop()
        self.open_elements.discard(element)
        if self._svg_tag(element) == "style" and _has_css_rules("".join(element.itertext())):
            raise SVGError(
                f"{self._describe(element)}: CSS style sheets are not supported, their rules would be lost: "
                "save the SVG with presentation attributes instead (Illustrator: Styling → Presentation "
                "Attributes; or inline the styles with svgo's inlineStyles and convertStyleToAttrs)"
            )

    def finish(self) -> Sketch:
        """Expand forward <use> references, then build, validate and report."""
        self.parsing = False
        self._expand_deferred_uses()
        if not self.output:
            raise SVGError(
                f"{self.name} has no drawable strokes: it needs at least one visible path, line or shape "
                "with a stroke or a fill"
            )
        messages = self._warning_messages()
        width, height = self.canvas  # type: ignore[misc]
        sketch = Sketch(
            paths=list(self.output),  # type: ignore[arg-type]
            width=width,
            height=height,
            metadata={"svg_to_canvas": self.svg_to_canvas[:2].tolist(), "import_warnings": messages},
        ).validate()
        for message in messages:
            warnings.warn(message, SVGImportWarning, stacklevel=3)
        return sketch

    # --------------------------------------------------------------- elements
    def _enter_root(self, root: Element) -> _Context | None:
        """Set up the mapping to canvas px (module docstring) and the root's context."""
        if root.tag == f"{{{SVG_NS}}}svg":
            self.svg_prefix = f"{{{SVG_NS}}}"
        elif _local_name(root.tag) == "svg" and root.tag != "svg":
            raise SVGError(
                f"{self.name} is not an SVG file: its <svg> root is not in the SVG namespace "
                f'(write xmlns="{SVG_NS}")'
            )
        elif root.tag != "svg":
            raise SVGError(f"{self.name} is not an SVG file: its root element is <{_local_name(root.tag)}>, not <svg>")
        try:
            width, height, view_box = _root_viewport(root)
        except _BadValue as exc:
            raise SVGError(f"{self.name}: <svg>: {exc}") from None
        if self.canvas is None:
            self.canvas = (math.ceil(width - 1e-6), math.ceil(height - 1e-6))
            try:
                check_canvas(*self.canvas)
            except SketchError as exc:
                raise SVGError(f"{self.name} is {width:g} × {height:g} px: {exc}; pass a canvas_size") from None
        user_to_viewport = np.eye(3)
        viewport = (width, height)
        if view_box is not None:
            user_to_viewport = _view_box_transform(view_box, self._aspect(root), width, height)
            viewport = (view_box[2], view_box[3])
        fit = _fit_to_canvas(width, height, self.canvas)
        self.canvas_scale = float(fit[0, 0])
        self.svg_to_canvas = fit @ user_to_viewport
        return self._enter(root, _Context(self.svg_to_canvas, _Style(), viewport), is_root=True)

    def _enter(self, element: Element, parent: _Context, is_root: bool = False) -> _Context | None:
        """Draw or refuse one element; return the context for its children (None: skip them)."""
        tag = self._svg_tag(element)
        if tag is None or tag in _NEVER_RENDERED or element.get("requiredExtensions") is not None:
            return None
        if parent.switch is not None and not parent.switch.take():
            return None
        declared = _declared_properties(element)
        if declared.get("display", "").lower() == "none":
            return None
        if tag not in _SHAPES and tag not in _CONTAINERS and tag != "use":
            raise SVGError(f"{self._describe(element)}: {_REFUSAL_FIXES.get(tag, _UNKNOWN_FIX)}")
        context = self._context_for(element, parent, declared)
        if tag in _SHAPES:
            self._draw(element, tag, context, declared)
            return None
        if tag == "use":
            self._use(element, context)
            return None
        if tag == "switch":
            return replace(context, switch=_SwitchChoice())
        if tag == "svg" and not is_root:
            return self._nested_viewport(element, context, element)
        return context

    def _context_for(self, element: Element, parent: _Context, declared: dict[str, str]) -> _Context:
        """The element's own style and transform on top of what it inherits."""
        if parent.depth >= MAX_NESTING:
            raise SVGError(
                f"{self._describe(element)} is nested more than {MAX_NESTING} levels deep: flatten the groups"
            )
        ctm = parent.ctm
        if (transform := element.get("transform")) is not None:
            try:
                ctm = ctm @ _parse_transform(transform)
            except _BadValue as exc:
                raise SVGError(f"{self._describe(element)}: {exc}") from None
        style = self._computed_style(element, parent.style, declared, parent.viewport)
        return _Context(ctm, style, parent.viewport, parent.use_chain, None, parent.depth + 1)

    def _computed_style(self, element: Element, parent: _Style, declared: dict[str, str], viewport) -> _Style:
        """Inherit the parent's style; invalid values are ignored (as browsers do) with a warning."""
        changes: dict[str, object] = {}
        for name, value in declared.items():
            keyword = value.lower()
            if name not in _STYLE_FIELDS or keyword in ("", "inherit") or (name == "color" and keyword == "currentcolor"):
                continue  # inherited anyway
            try:
                changes[_STYLE_FIELDS[name]] = _parse_property(name, value, viewport)
            except _BadValue as exc:
                self._warn(f"ignored {name}={value!r} ({exc})", element)
        own_opacity = changes.pop("opacity", 1.0)
        if not changes and own_opacity == 1.0:
            return parent
        return replace(parent, opacity=parent.opacity * own_opacity, **changes)  # type: ignore[arg-type]

    def _nested_viewport(self, element: Element, context: _Context, sizing: Element) -> _Context | None:
        """A nested <svg> (or a <symbol> placed by `sizing`, a <use>): a new viewport and viewBox."""
        try:
            x = _length_attribute(sizing, "x", context.viewport, "x") if sizing is element else 0.0
            y = _length_attribute(sizing, "y", context.viewport, "y") if sizing is element else 0.0
            width = _length_attribute(sizing, "width", context.viewport, "x", default=context.viewport[0])
            height = _length_attribute(sizing, "height", context.viewport, "y", default=context.viewport[1])
            view_box = _parse_view_box(element.get("viewBox", "")) if element.get("viewBox") else None
        except _BadValue as exc:
            raise SVGError(f"{self._describe(element)}: {exc}") from None
        if width <= 0 or height <= 0:
            return None  # not rendered
        ctm = context.ctm @ _translation(x, y)
        if view_box is None:
            return replace(context, ctm=ctm, viewport=(width, height))
        ctm = ctm @ _view_box_transform(view_box, self._aspect(element), width, height)
        return replace(context, ctm=ctm, viewport=(view_box[2], view_box[3]))

    def _use(self, element: Element, context: _Context) -> None:
        """Draw the referenced element as if it were a child of this <use>, moved by x, y."""
        href = (element.get("href") or element.get(XLINK_HREF) or "").strip()
        if not href:
            return
        if not href.startswith("#"):
            raise SVGError(
                f"{self._describe(element)} refers to {href!r} in another file, which cannot be imported: "
                "copy that drawing into this SVG"
            )
        target_id = href[1:]
        target = self.ids.get(target_id)
        if target is None:
            if self.parsing:  # may still come later in the file
                self.sink.append(_DeferredUse(element, context))
            else:
                self._warn("a <use> refers to a missing element and was skipped", element)
            return
        if target in self.open_elements or target_id in context.use_chain:
            raise SVGError(
                f"{self._describe(element)} refers to #{target_id}, which contains it: a <use> cycle cannot be "
                "drawn; remove the <use>"
            )
        try:
            x = _length_attribute(element, "x", context.viewport, "x")
            y = _length_attribute(element, "y", context.viewport, "y")
        except _BadValue as exc:
            raise SVGError(f"{self._describe(element)}: {exc}") from None
        ctm = context.ctm @ _translation(x, y) if x or y else context.ctm
        placed = _Context(ctm, context.style, context.viewport, context.use_chain + (target_id,), None, context.depth)
        if self._svg_tag(target) == "symbol":
            self._walk_symbol(target, element, placed)
        else:
            self._walk(target, placed)

    def _walk_symbol(self, symbol: Element, use: Element, context: _Context) -> None:
        declared = _declared_properties(symbol)
        if declared.get("display", "").lower() == "none":
            return
        symbol_context = self._nested_viewport(symbol, self._context_for(symbol, context, declared), use)
        if symbol_context is not None:
            for child in symbol:
                self._walk(child, symbol_context)

    def _walk(self, element: Element, parent: _Context) -> None:
        """Walk a parsed subtree (what a <use> copies)."""
        self._count_element()
        context = self._enter(element, parent)
        if context is not None:
            for child in element:
                self._walk(child, context)

    def _expand_deferred_uses(self) -> None:
        expanded: list[Path | _DeferredUse] = []
        self.sink = expanded
        for item in self.output:
            if isinstance(item, _DeferredUse):
                self._use(item.element, item.context)
            else:
                expanded.append(item)
        self.output = self.sink = expanded

    # ----------------------------------------------------------------- drawing
    def _draw(self, element: Element, tag: str, context: _Context, declared: dict[str, str]) -> None:
        """Turn a shape into Paths on the canvas, if it paints anything."""
        if not context.style.visible:
            return
        ink = self._ink(element, tag, context.style)
        linear, offset = context.ctm[:2, :2], context.ctm[:2, 2]
        area_scale, stretch = _scale_factors(linear)
        if ink is None or area_scale == 0:
            return  # invisible, or squashed flat by its transform
        if not math.isfinite(area_scale * stretch):
            raise SVGError(f"{self._describe(element)}: its transforms scale by more than floating point can hold")
        outline = _Outline(stretch, MAX_POINTS - self.num_points, MAX_PATHS - self.num_paths)
        try:
            _SHAPES[tag](element, outline, context.viewport)
            subpaths = outline.finish()
        except _BadValue as exc:
            raise SVGError(f"{self._describe(element)}: {exc}") from None
        if not subpaths:
            return
        half_width = self._half_width(element, ink, area_scale, declared)
        for points, closed in subpaths:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                canvas_points = points @ linear.T + offset
            if not np.isfinite(canvas_points).all():
                raise SVGError(f"{self._describe(element)}: coordinates become infinite after its transforms")
            self._add_path(Path(canvas_points, closed, half_width, ink.color, ink.opacity), element)

    def _ink(self, element: Element, tag: str, style: _Style) -> _Ink | None:
        """The stroke if it is painted, else the fill (drawn as an outline), else None."""
        stroke = self._resolve_paint(style.stroke, style, element)
        if stroke is not None and style.stroke_width > 0:
            opacity = stroke[1] * style.stroke_opacity * style.opacity
            if opacity > 0:
                return _Ink(stroke[0], opacity, style.stroke_width)
        if tag == "line":  # a line has no inside to fill
            return None
        fill = self._resolve_paint(style.fill, style, element)
        if fill is not None:
            opacity = fill[1] * style.fill_opacity * style.opacity
            if opacity > 0:
                return _Ink(fill[0], opacity, None)
        return None

    def _resolve_paint(self, paint: _Paint | None, style: _Style, element: Element) -> tuple[RGB, float] | None:
        if paint is None:
            return None
        if paint.server is not None:
            self._warn("a gradient or pattern paint is not supported and was drawn in black", element)
            return (0.0, 0.0, 0.0), 1.0
        if paint.rgb is None:
            return style.color
        return paint.rgb, paint.alpha

    def _half_width(self, element: Element, ink: _Ink, area_scale: float, declared: dict[str, str]) -> float:
        """Canvas half-width: stroke-width/2 · sqrt(|det|) (exact unless the scale is non-uniform)."""
        if ink.stroke_width is None:
            self._warn(_FILL_AS_OUTLINE.format(self.fill_half_width), element)
            return self.fill_half_width
        if declared.get("vector-effect") == "non-scaling-stroke":
            half_width = ink.stroke_width / 2 * self.canvas_scale
        else:
            half_width = ink.stroke_width / 2 * math.sqrt(area_scale)
        width, height = self.canvas  # type: ignore[misc]
        if not 0 < half_width <= max(width, height):
            raise SVGError(
                f"{self._describe(element)}: its stroke is {2 * half_width:.4g} px wide on the {width}×{height} "
                "canvas, wider than the canvas: use a thinner stroke"
            )
        return half_width

    def _add_path(self, path: Path, element: Element) -> None:
        self.num_paths += 1
        if self.num_paths > MAX_PATHS:
            raise SVGError(
                f"{self.name} has more than {MAX_PATHS} strokes, the limit (reached at {self._describe(element)}): "
                "simplify the drawing or split it into several files"
            )
        self.num_points += len(path.points)
        if self.num_points > MAX_POINTS:
            raise SVGError(f"{self.name} has more than {MAX_POINTS} control points, the limit: simplify it")
        self.sink.append(path)

    # --------------------------------------------------------------- helpers
    def _svg_tag(self, element: Element) -> str | None:
        """The local name of an SVG element; None for other namespaces (Inkscape, RDF, …)."""
        tag = element.tag
        if not isinstance(tag, str):
            return None
        if self.svg_prefix:
            return tag[len(self.svg_prefix) :] if tag.startswith(self.svg_prefix) else None
        return None if tag.startswith("{") else tag

    def _aspect(self, element: Element) -> tuple[tuple[float, float] | None, bool]:
        try:
            return _parse_aspect(element.get("preserveAspectRatio"))
        except _BadValue as exc:
            self._warn(f"ignored {exc}; used xMidYMid meet", element)
            return _DEFAULT_ASPECT

    def _count_element(self) -> None:
        self.num_elements += 1
        if self.num_elements > MAX_SVG_ELEMENTS:
            raise SVGError(
                f"{self.name} has more than {MAX_SVG_ELEMENTS} elements (counting copies made by <use>), "
                "the limit: simplify it"
            )

    def _describe(self, element: Element) -> str:
        """`<path id='p3'>`, or `<path> at line 7` when it has no id."""
        tag = _local_name(element.tag)
        element_id = element.get("id")
        if element_id:
            shown = element_id if len(element_id) <= 60 else element_id[:57] + "..."
            return f"<{tag} id='{shown}'>"
        line = self.lines.get(element)
        return f"<{tag}> at line {line}" if line else f"<{tag}>"

    def _warn(self, message: str, element: Element) -> None:
        self.warnings.setdefault(message, []).append(self._describe(element))

    def _warning_messages(self) -> list[str]:
        """One line per kind of problem, naming the first element and counting the rest."""
        messages = []
        for message, elements in self.warnings.items():
            more = f" and {len(elements) - 1} more" if len(elements) > 1 else ""
            messages.append(f"{self.name}: {message}: {elements[0]}{more}")
        return messages


def _scale_factors(linear: np.ndarray) -> tuple[float, float]:
    """|det| (how areas scale) and the largest singular value (how far lengths can stretch)."""
    (a, c), (b, d) = linear.tolist()
    det = abs(a * d - b * c)
    squares = a * a + b * b + c * c + d * d
    stretch = math.sqrt(max(0.0, (squares + math.sqrt(max(0.0, squares * squares - 4 * det * det))) / 2))
    return det, stretch


def _local_name(tag: object) -> str:
    return str(tag).rpartition("}")[2]


# ============================================================================== export
def _frame_of(sketch: Sketch, frame: int | None) -> Sketch:
    if frame is None:
        return sketch
    if sketch.frames is None:
        raise SketchError("the sketch has no animation frames: export it without a frame number")
    index = operator.index(frame)
    if not 0 <= index < sketch.num_frames:
        raise SketchError(f"frame {index} is out of range: the animation has frames 0 to {sketch.num_frames - 1}")
    return sketch.frame(index)


def _number(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


def _path_data(path: Path) -> str:
    points = path.points
    commands = [f"M {_number(points[0, 0])} {_number(points[0, 1])}"]
    for i in range(1, len(points), 3):
        commands.append("C " + " ".join(f"{_number(x)} {_number(y)}" for x, y in points[i : i + 3]))
    if path.closed:
        commands.append("Z")
    return " ".join(commands)


def _svg_color(rgb: RGB) -> str:
    """#rrggbb when the colour is exactly on the 8-bit grid, else rgb() percentages that round-trip."""
    scaled = [channel * 255 for channel in rgb]
    if all(abs(value - round(value)) < 1e-9 for value in scaled):
        return "#" + "".join(f"{round(value):02x}" for value in scaled)
    percentages = (f"{channel * 100:.12f}".rstrip("0").rstrip(".") + "%" for channel in rgb)
    return f"rgb({', '.join(percentages)})"


def _path_element(path: Path) -> str:
    return (
        f'  <path d="{_path_data(path)}" fill="none" stroke="{_svg_color(path.color)}" '
        f'stroke-width="{_number(2 * path.half_width)}" stroke-opacity="{_number(path.opacity)}" '
        'stroke-linecap="round" stroke-linejoin="round"/>'
    )
