"""speechbrain_sparse: choose which weights of a SpeechBrain speech model take part.

A thin add-on to SpeechBrain. Every method of the project produces one thing, a
parameter mask, and one place enforces it during training (see ``DESIGN.md``).
"""

__version__ = "0.1.0"
