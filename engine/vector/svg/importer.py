"""The SVG importer: the file read safely, the XML walked while it is parsed, elements turned into Paths."""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import warnings
import zlib
from dataclasses import dataclass, replace
from pathlib import Path as FilePath
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ...errors import SketchAnimatorWarning, SketchError, SVGError
from ..sketch import DEFAULT_CANVAS, MAX_PATHS, MAX_POINTS, Path, Sketch, check_canvas
from .outline import _SHAPES, _Outline
from .style import _STYLE_FIELDS, _declared_properties, _has_css_rules, _parse_property, _Style
from .values import (
    _DEFAULT_ASPECT, RGB, SVG_NS, XLINK_HREF, _BadValue, _fit_to_canvas, _length_attribute, _Paint, _parse_aspect,
    _parse_transform, _parse_view_box, _root_viewport, _translation, _view_box_transform,
)  # fmt: skip

DEFAULT_FILL_HALF_WIDTH = 1.0  # canvas px: the outline drawn for a filled shape without stroke
MAX_SVG_BYTES = 64 * 2**20
MAX_SVG_ELEMENTS = 10 * MAX_PATHS  # parsed elements plus the copies `<use>` makes
MAX_NESTING = 128  # group depth, including what <use> adds


class SVGImportWarning(SketchAnimatorWarning):
    """Part of an SVG was imported approximately (a fill as an outline, a gradient as black)."""


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
        linecap = context.style.linecap if ink.stroke_width is not None else "round"  # an outline drawn for a fill has no ends to shape
        for points, closed in subpaths:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                canvas_points = points @ linear.T + offset
            if not np.isfinite(canvas_points).all():
                raise SVGError(f"{self._describe(element)}: coordinates become infinite after its transforms")
            if linecap == "square" and not closed:
                canvas_points = _with_square_ends(canvas_points, half_width)
            cap = "round" if linecap == "round" else "flat"
            self._add_path(Path(canvas_points, closed, half_width, ink.color, ink.opacity, start_cap=cap, end_cap=cap), element)

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


def _with_square_ends(points: np.ndarray, half_width: float) -> np.ndarray:
    """A square cap is a flat end half a width beyond the end point: straight cubics added at both ends,
    along the end tangents (along x for a zero-length subpath, as SVG says)."""

    def outward(end: np.ndarray, inner: np.ndarray, fallback: tuple[float, float]) -> np.ndarray:
        for point in inner:
            direction = end - point
            length = float(np.hypot(*direction))
            if length > 1e-12:
                return direction / length
        return np.array(fallback)

    before = points[0] + half_width * outward(points[0], points[1:], (-1.0, 0.0))
    after = points[-1] + half_width * outward(points[-1], points[-2::-1], (1.0, 0.0))
    head = before + np.linspace(0.0, 1.0, 4)[:3, None] * (points[0] - before)
    tail = points[-1] + np.linspace(0.0, 1.0, 4)[1:, None] * (after - points[-1])
    return np.concatenate([head, points, tail])


def _scale_factors(linear: np.ndarray) -> tuple[float, float]:
    """|det| (how areas scale) and the largest singular value (how far lengths can stretch)."""
    (a, c), (b, d) = linear.tolist()
    det = abs(a * d - b * c)
    squares = a * a + b * b + c * c + d * d
    stretch = math.sqrt(max(0.0, (squares + math.sqrt(max(0.0, squares * squares - 4 * det * det))) / 2))
    return det, stretch


def _local_name(tag: object) -> str:
    return str(tag).rpartition("}")[2]


