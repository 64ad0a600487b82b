"""SVG styles: presentation attributes and `style="…"` resolved into what an element inherits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from .values import RGB, _BadValue, _checked_number, _finite, _Paint, _parse_color, _parse_length, _parse_paint, _percent_base


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
    linecap: str = "butt"  # SVG's default: the stroke ends flat at its end points


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
    "fill-opacity": "fill_opacity", "opacity": "opacity", "color": "color", "visibility": "visible", "stroke-linecap": "linecap",
}  # fmt: skip
LINECAPS = ("butt", "round", "square")
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
    if name == "stroke-linecap":
        keyword = value.strip().lower()
        if keyword not in LINECAPS:
            raise _BadValue(f"stroke-linecap must be butt, round or square, not {value!r}")
        return keyword
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


