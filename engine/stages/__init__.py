"""The three stages of the method: appearance learning, motion learning, and video prior distillation of the control points."""
