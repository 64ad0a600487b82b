"""Sketch Animator engine: the method in plain Python and PyTorch. Never imports bpy."""

__version__ = "0.1.0"
