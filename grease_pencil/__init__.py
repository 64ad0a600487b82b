"""The Grease Pencil bridge: Grease Pencil strokes ↔ the engine's Sketch, a numpy core plus bulk bpy I/O.

Modules: `mapping` (canvas mapping), `fitting` (Bézier fitting of POLY strokes), `strokes`
(strokes → Sketch), `keyframes` (animated Sketch → keyframe plans) are numpy only, so tests
run them without Blender; `blender_io` reads and writes Grease Pencil data with bpy, in bulk
(`foreach_get` into `StrokeData`, `foreach_set` from a `FramePlan`). Both directions use the
engine's own `Sketch` (engine/vector/sketch.py, numpy only), never a hand-built dict.

Conventions
-----------
* **Spaces.** GP v3 stores `position` / `handle_left` / `handle_right` in layer-local space.
  `matrix_world` is the matrix that takes those stored positions to world space: the
  object's world matrix (parents included), times the layer's own transform when it has one
  (`ob.matrix_world @ layer.matrix_local` for an unparented layer).
* **Drawing plane.** The object's local X–Z plane (the 2D Animation convention: drawing on
  the "front" plane, local Y = 0), measured in *world* lengths in an orthonormal frame of
  that plane: `(u, v) = R @ (x, z)`, where `R` is the upper-triangular factor of the QR
  decomposition of the world images of the local X and Z axes (`u` runs along the object's
  X axis as it lies in the world, `v` perpendicular to it in the plane, towards local +Z).
  The canvas thus shows the strokes as a camera facing the plane and aligned with the
  object's X axis sees them: the object's scale, non-uniform scale and a parent's shear
  show, its rotation does not turn the canvas image. Canvas pixels are a similarity of
  that: `canvas_x = scale·u + offset_x`, `canvas_y = offset_y − scale·v` (local X → canvas
  x, local Z → canvas −y; canvas origin top-left, y down).
* **Depth.** The local Y of each point. Projection drops it; write-back restores it from the
  mapping, which stores one depth per control point of every path. Points that did not exist
  in Grease Pencil get an interpolated depth from their stroke's own points: a fitted POLY
  stroke's knots are input points (exact depth); its handles get the depth interpolated
  along the stroke's chord length at one and two thirds of their segment. Output frames keep
  each control point's depth (the topology of an animation never changes). Strokes drawn on
  the plane have depth 0 everywhere, so this is exact for them.
* **Radius ↔ half width.** A GP point's `radius` is half the visible line width, in layer
  units; Blender draws it times the object's average scale, `|M₃·(1,1,1)/√3|` (BLI's
  `mat4_to_scale` of the *object* world matrix, which the draw engine applies). diffvg's
  half width is half the visible width too, so
  `half_width_px = mean(radius) · radius_scale · mapping.scale`. Write-back restores the
  source radii, times `path.half_width / imported half_width` if the width was changed.
* **Bézier layout.** A Sketch path holds 3k+1 cubic control points [P0, C1, C2, P1, …].
  GP v3 stores one point per knot with its two handles; segment i runs
  `P[i] → handle_right[i] → handle_left[i+1] → P[i+1]`. So K = k+1 knots for an open path,
  K = k for a closed one (its last control point equals its first and is dropped; the
  closing segment uses `handle_right[K−1]` and `handle_left[0]`). An open stroke's outer
  handles (left of the first knot, right of the last) are not drawn; write-back mirrors the
  inner ones through the knot (`2·P − H`), which keeps them aligned. Handle types are FREE
  (0): GP does not recompute AUTO handles written from Python.
* **Colour.** A path's colour is the point-wise mix of the material's stroke colour with the
  vertex colour (vertex alpha = mix factor), averaged over the stroke and converted from
  linear to sRGB; its opacity is the mean point opacity times the material alpha.
  Write-back restores the source vertex colours, opacities, radii and material index,
  resampled to the knots (exact at knots that are source points).
"""

