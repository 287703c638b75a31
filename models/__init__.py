"""The model families (one folder each) and what they share; torch is imported below this package only."""

from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
"""The shipped weights (*.pt) and their model cards (*.yaml)."""
