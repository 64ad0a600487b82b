"""Blender-side code of Sketch Animator: operators and the pure-numpy Grease Pencil ↔ Sketch core.

Nothing here imports bpy at module level, so the numpy core (`gp_geometry`) is testable
without Blender.
"""
