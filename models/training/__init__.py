"""The one training loop of every model family: devices, seeds, progress, checkpoints, exact resume,
curves, JSON log, early stop, bf16 autocast on CUDA, gradient accumulation, and DDP under torchrun.

A family (models/<family>/train.py) subclasses `Family` and calls `fit`; see docs/training.md.
"""

from musebridge.models.training.family import Family, Method, StepContext
from musebridge.models.training.job import Job, choose_device, end_job, start_job
from musebridge.models.training.records import (
    JSON_LOG_FILE,
    LOG_FILE,
    PLOT_FILE,
    RUN_CHECKPOINT,
    plot_history,
)
from musebridge.models.training.trainer import PRECISIONS, FitResult, TrainerOptions, fit

__all__ = [
    "JSON_LOG_FILE", "LOG_FILE", "PLOT_FILE", "PRECISIONS", "RUN_CHECKPOINT", "Family", "FitResult", "Job",
    "Method", "StepContext", "TrainerOptions", "choose_device", "end_job", "fit", "plot_history", "start_job",
]
