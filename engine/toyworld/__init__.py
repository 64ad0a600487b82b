"""A toy world in which the method must work: procedural sketches moving in known ways, a small
text-to-video model trained on them in the real model's layout, and the paper's protocol run on it."""
