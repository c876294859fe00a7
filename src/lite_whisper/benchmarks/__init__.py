"""Measurements: speed (speed.py: `bench`), the WER-vs-size curve (compression_curve.py: `bench-compression`),
recovery stage by stage (recovery.py: `bench-recovery`) and the demo (demo.py: `make demo`)."""

RECOVERY_STAGES = ("fits", "reconstruction", "default", "recovery")
"""`bench-recovery`'s stages: one-shot fits alone, + block-wise reconstruction, what convert does, and
reconstruction followed by decoder-aware recovery (not a default: measured by this stage)."""
DEFAULT_RECOVERY_STAGES = RECOVERY_STAGES[:3]
"""The stages bench-recovery runs unless told: the method as convert runs it, step by step."""
