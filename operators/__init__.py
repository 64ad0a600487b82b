"""Blender-side code of Sketch Animator: operators, job handling and the Grease Pencil bridge.

`gp_geometry` is the pure-numpy core (tested without Blender); `gp_io` reads and writes
Grease Pencil data with bpy; `jobs` creates, follows and applies jobs; `ops` holds the
operator classes; `settings` the per-object settings. Only the submodules import bpy, so
`gp_geometry` can be imported anywhere.
"""


def register() -> None:
    from . import jobs, ops, settings

    settings.register()
    ops.register()
    jobs.register()


def unregister() -> None:
    from . import jobs, ops, settings

    jobs.unregister()
    ops.unregister()
    settings.unregister()
