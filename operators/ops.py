"""The operators behind the Animate panel, the preferences and File → Import.

Each one turns the user's click into a call of jobs / gp_io / engine modules, and any
failure into one line in the status bar and the panel (never a traceback); none of them
changes the user's strokes except Apply, which adds a layer and hides the source one.
"""

from pathlib import Path
from typing import Any

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper

from ..engine.errors import SketchAnimatorError
from ..engine.job import client as jobclient
from ..engine.job import environment
from ..engine.settings import DEFAULT_MODEL
from ..grease_pencil import blender_io as gp_io
from . import jobs
from .settings import EXTENSION_ROOT, ROOT_PACKAGE, preferences, user_folder

PREFIX = "sketch_animator"

# Long preference tasks (environment, model download) running in the background, by name.
BACKGROUND: dict[str, jobclient.BackgroundCommand] = {}
ENVIRONMENT_REPORT: dict[str, str] = {}
OFFLINE = "online access is off: allow it in Preferences → System → Network, then try again"  # "summary" of the last check, shown in the preferences


def _active_gp(context: Any) -> Any:
    ob = context.object
    return ob if gp_io.is_grease_pencil(ob) else None


def _fail(op: Any, ob: Any, message: str) -> set[str]:
    """Report a user error in the status bar and keep it in the panel."""
    op.report({"ERROR"}, message)
    if ob is not None and hasattr(ob, "sketch_animator"):
        ob.sketch_animator.last_error = message
    return {"CANCELLED"}


class GreasePencilOperator:
    """Shared poll: the active object must be a Grease Pencil object."""

    @classmethod
    def poll(cls, context: Any) -> bool:
        if _active_gp(context) is None:
            cls.poll_message_set("Select a Grease Pencil object")
            return False
        return True


class StartJobOperator(GreasePencilOperator):
    """Shared execute of Animate and Preview Motion (Blender must not register a subclass of a
    registered operator, so both derive from this unregistered mixin)."""

    method = "diffusion"

    def execute(self, context: Any) -> set[str]:
        ob = _active_gp(context)
        try:
            job = jobs.start_animation(ob, context, self.method)
        except jobs.UserError as exc:
            return _fail(self, ob, str(exc))
        self.report({"INFO"}, f"Sketch Animator: started {job.watcher.job_dir.name}")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_animate(StartJobOperator, bpy.types.Operator):
    """Animate the chosen layer like the reference video (runs in the background)"""

    bl_idname = f"{PREFIX}.animate"
    bl_label = "Animate"
    bl_options = {"REGISTER"}
    method = "diffusion"


class SKETCH_ANIMATOR_OT_preview_motion(StartJobOperator, bpy.types.Operator):
    """Move the sketch like the video's subject by optical flow: seconds, no GPU, no model"""

    bl_idname = f"{PREFIX}.preview_motion"
    bl_label = "Preview Motion"
    bl_options = {"REGISTER"}
    method = "preview"


def selected_grease_pencil(context: Any) -> list[Any]:
    return [ob for ob in context.selected_objects if gp_io.is_grease_pencil(ob)]


class SKETCH_ANIMATOR_OT_animate_selected(bpy.types.Operator):
    """Animate every selected Grease Pencil object, each with its own panel settings, as one batch: a motion or a sketch they share is learned once"""

    bl_idname = f"{PREFIX}.animate_selected"
    bl_label = "Animate Selected"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not selected_grease_pencil(context):
            cls.poll_message_set("Select Grease Pencil objects")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        objects = selected_grease_pencil(context)
        try:
            started = jobs.start_batch(objects, context)
        except jobs.UserError as exc:
            return _fail(self, None, str(exc))
        self.report({"INFO"}, f"Sketch Animator: started a batch of {len(started)} jobs ({', '.join(ob.name for ob in objects)})")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_apply_all(bpy.types.Operator):
    """Apply the finished animation of every Grease Pencil object in the scene (unfinished jobs are left alone)"""

    bl_idname = f"{PREFIX}.apply_all"
    bl_label = "Apply All"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> set[str]:
        applied, refused = jobs.apply_all(context)
        for name, message in refused.items():
            self.report({"WARNING"}, f"'{name}': {message}")
        if not applied:
            self.report({"WARNING"}, "No object of this scene has a finished job to apply")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Sketch Animator: applied {len(applied)} animations ({', '.join(applied)})")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_cancel(GreasePencilOperator, bpy.types.Operator):
    """Stop the running job; what is finished is kept and Resume continues it"""

    bl_idname = f"{PREFIX}.cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    def execute(self, context: Any) -> set[str]:
        if not jobs.cancel(_active_gp(context)):
            self.report({"WARNING"}, "No job of this object is running")
            return {"CANCELLED"}
        self.report({"INFO"}, "Cancelling: the engine saves a checkpoint and stops")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_resume(GreasePencilOperator, bpy.types.Operator):
    """Continue a cancelled or stopped job from its last checkpoint"""

    bl_idname = f"{PREFIX}.resume"
    bl_label = "Resume"
    bl_options = {"REGISTER"}

    def execute(self, context: Any) -> set[str]:
        ob = _active_gp(context)
        try:
            jobs.resume(ob, context)
        except jobs.UserError as exc:
            return _fail(self, ob, str(exc))
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_apply(GreasePencilOperator, bpy.types.Operator):
    """Write the finished animation as a new layer, keyed on the scene's frame rate (the source layer is kept, hidden)"""

    bl_idname = f"{PREFIX}.apply"
    bl_label = "Apply"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> set[str]:
        ob = _active_gp(context)
        try:
            applied = jobs.apply_result(ob, context)
        except jobs.UserError as exc:
            return _fail(self, ob, str(exc))
        for note in applied.notes:
            self.report({"WARNING"}, note)
        keys = len(applied.schedule.key_offsets)
        self.report({"INFO"}, f"Sketch Animator: wrote layer '{applied.layer.name}' ({keys} keys over {int(applied.schedule.frame_offsets[-1]) + 1} frames)")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_pin_layer(GreasePencilOperator, bpy.types.Operator):
    """Keep the active layer still in the animation (or let it move again): a ground line, a signature"""

    bl_idname = f"{PREFIX}.pin_layer"
    bl_label = "Pin Layer"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> set[str]:
        ob = _active_gp(context)
        layer = ob.data.layers.active
        if layer is None:
            return _fail(self, ob, "the object has no active layer: pick one in the layer list")
        settings = ob.sketch_animator
        pinned = settings.pinned()
        pinned.symmetric_difference_update({layer.name})
        settings.pinned_layers = ", ".join(sorted(pinned))
        self.report({"INFO"}, f"layer '{layer.name}' is {'pinned: it stays still' if layer.name in pinned else 'animated again'}")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_pin_strokes(GreasePencilOperator, bpy.types.Operator):
    """Keep the selected strokes of the active layer still in the animation (or let them move again)"""

    bl_idname = f"{PREFIX}.pin_strokes"
    bl_label = "Pin Selected Strokes"
    bl_options = {"REGISTER", "UNDO"}
    pinned: bpy.props.BoolProperty(name="Pinned", default=True)

    def execute(self, context: Any) -> set[str]:
        ob = _active_gp(context)
        try:
            count = gp_io.pin_selected_strokes(ob, context.scene.frame_current, self.pinned)
        except gp_io.GreasePencilInputError as exc:
            return _fail(self, ob, str(exc))
        self.report({"INFO"}, f"{count} stroke{'s' * (count != 1)} {'pinned' if self.pinned else 'unpinned'}")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_open_log(GreasePencilOperator, bpy.types.Operator):
    """Open the engine's log of this object's job"""

    bl_idname = f"{PREFIX}.open_log"
    bl_label = "Open Log"

    def execute(self, context: Any) -> set[str]:
        ob = _active_gp(context)
        log = Path(bpy.path.abspath(ob.sketch_animator.job_dir or ".")) / "engine.log"
        if not log.is_file():
            return _fail(self, None, "this object's job has no log yet")
        bpy.ops.wm.path_open(filepath=str(log))
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_import_svg(bpy.types.Operator, ImportHelper):
    """Import an SVG drawing as a new Grease Pencil object (paths become Bézier strokes)"""

    bl_idname = f"{PREFIX}.import_svg"
    bl_label = "Import SVG as Sketch"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".svg"
    filter_glob: StringProperty(default="*.svg;*.svgz", options={"HIDDEN"})

    def execute(self, context: Any) -> set[str]:
        from ..engine.vector.svg import import_svg  # numpy + defusedxml (bundled wheel); no torch

        path = Path(self.filepath)
        try:
            sketch = import_svg(path, canvas_size=256)
        except (SketchAnimatorError, OSError) as exc:
            return _fail(self, None, f"{path.name}: {exc}")
        ob = gp_io.new_object_from_sketch(sketch, path.stem, context.scene.frame_current, context.collection)
        for other in context.view_layer.objects:
            other.select_set(False)
        ob.select_set(True)
        context.view_layer.objects.active = ob
        self.report({"INFO"}, f"Imported {len(sketch.paths)} strokes from {path.name}")
        return {"FINISHED"}


# --------------------------------------------------------------------------- preferences
class SKETCH_ANIMATOR_OT_check_engine(bpy.types.Operator):
    """Check that the engine Python has everything the engine needs, and which device it will use"""

    bl_idname = f"{PREFIX}.check_engine"
    bl_label = "Check"

    def execute(self, context: Any) -> set[str]:
        report = environment.check_engine_python(preferences(context).engine_python)
        ENVIRONMENT_REPORT["summary"] = report.summary()
        self.report({"ERROR"} if not report.ok else {"WARNING"} if report.untested else {"INFO"}, report.summary())
        return {"FINISHED"} if report.ok else {"CANCELLED"}


class SKETCH_ANIMATOR_OT_create_engine(bpy.types.Operator):
    """Create a Python environment with the engine's requirements in the extension's user folder (downloads several GB)"""

    bl_idname = f"{PREFIX}.create_engine"
    bl_label = "Create Engine Environment"

    def execute(self, context: Any) -> set[str]:
        if not bpy.app.online_access:
            return _fail(self, None, OFFLINE)
        folder = user_folder("engine-env")
        task = _start_background("environment", environment.setup_command(folder), folder.parent / "engine-env.log")
        if task is None:
            return _fail(self, None, "the engine environment is already being created")
        prefs = context.preferences.addons[ROOT_PACKAGE].preferences
        prefs.engine_python = str(environment.venv_python(folder))
        self.report({"INFO"}, f"Creating the engine environment in {folder} (see {task.log_path})")
        return {"FINISHED"}


class SKETCH_ANIMATOR_OT_download_model(bpy.types.Operator):
    """Download the video model into the Hugging Face cache (about 5 GB for ModelScope T2V)"""

    bl_idname = f"{PREFIX}.download_model"
    bl_label = "Download Model"

    def execute(self, context: Any) -> set[str]:
        prefs = preferences(context)
        if not bpy.app.online_access:
            return _fail(self, None, OFFLINE)
        if Path(prefs.model).exists():
            return _fail(self, None, f"{prefs.model} is a folder: there is nothing to download")
        if not prefs.engine_python or not Path(prefs.engine_python).is_file():
            return _fail(self, None, "set or create the engine Python first: it does the download")
        command = [prefs.engine_python, "-m", "engine", "download", prefs.model or DEFAULT_MODEL]
        task = _start_background("download", command, user_folder("logs") / "download.log", environment.engine_environment(EXTENSION_ROOT))
        if task is None:
            return _fail(self, None, "a download is already running")
        self.report({"INFO"}, f"Downloading {prefs.model} (see {task.log_path})")
        return {"FINISHED"}


def _start_background(name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> jobclient.BackgroundCommand | None:
    running = BACKGROUND.get(name)
    if running is not None and running.poll() is None:
        return None
    BACKGROUND[name] = jobclient.BackgroundCommand(command, log, env)
    return BACKGROUND[name]


def background_state(name: str) -> str | None:
    """'running: <last log line>', 'done', 'failed: <last line>' or None, for the preferences panel."""
    task = BACKGROUND.get(name)
    if task is None:
        return None
    code = task.poll()
    if code is None:
        return f"running: {task.last_line() or '…'}"
    return "done" if code == 0 else f"failed (exit code {code}): {task.last_line() or 'see ' + str(task.log_path)}"


def import_menu(self: Any, context: Any) -> None:
    self.layout.operator(SKETCH_ANIMATOR_OT_import_svg.bl_idname, text="SVG as Sketch Animator Sketch (.svg)")


CLASSES = (
    SKETCH_ANIMATOR_OT_animate,
    SKETCH_ANIMATOR_OT_preview_motion,
    SKETCH_ANIMATOR_OT_animate_selected,
    SKETCH_ANIMATOR_OT_apply_all,
    SKETCH_ANIMATOR_OT_cancel,
    SKETCH_ANIMATOR_OT_resume,
    SKETCH_ANIMATOR_OT_apply,
    SKETCH_ANIMATOR_OT_pin_layer,
    SKETCH_ANIMATOR_OT_pin_strokes,
    SKETCH_ANIMATOR_OT_open_log,
    SKETCH_ANIMATOR_OT_import_svg,
    SKETCH_ANIMATOR_OT_check_engine,
    SKETCH_ANIMATOR_OT_create_engine,
    SKETCH_ANIMATOR_OT_download_model,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(import_menu)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(import_menu)
    for task in BACKGROUND.values():
        if task.poll() is None:
            task.cancel()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
