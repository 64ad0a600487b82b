"""Sketch Animator, the Blender extension: animate a Grease Pencil sketch like a reference video.

Blender imports this package as `bl_ext.<repository>.sketch_animator` and calls `register()`.
The heavy work runs in a separate engine process (`python -m engine`, see engine/), so nothing
here imports torch; the bpy modules are imported inside `register()` so that importing the
package outside Blender (pytest, pip) has no side effects.
"""


def register() -> None:
    from . import operators, panels

    operators.register()
    panels.register()


def unregister() -> None:
    from . import operators, panels

    panels.unregister()
    operators.unregister()
