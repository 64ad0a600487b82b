"""The Blender operators: `ops` holds the operator classes, `jobs` creates, follows and applies jobs,
`settings` the per-object settings and the preferences' values. The Grease Pencil conversion
lives in grease_pencil/, the engine (run in another process) in engine/."""


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
