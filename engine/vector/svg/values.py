"""SVG attribute values: numbers, lengths and units, colours and paint, transforms, the viewport mapping."""

from __future__ import annotations

import colorsys
import functools
import math
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import numpy as np

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

Point = tuple[float, float]
RGB = tuple[float, float, float]


class _BadValue(Exception):
    """An attribute value cannot be read; the caller adds which element it belongs to."""


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


