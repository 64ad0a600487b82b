"""The user interface: the Animate sidebar tab and the add-on preferences (no torch here)."""


def register() -> None:
    from . import preferences, sidebar

    preferences.register()
    sidebar.register()


def unregister() -> None:
    from . import preferences, sidebar

    sidebar.unregister()
    preferences.unregister()
