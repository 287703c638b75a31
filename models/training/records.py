"""What a run leaves in its folder: run.pt (resumable state), train_log.csv, train_log.json and
train_curves.png. Only rank 0 calls the writers.

run.pt holds the modules, optimizers, schedulers, the step, the history, the early-stop state, the
family's own state (image pools, moving averages, its random streams) and the global random states of
every rank, so a resumed run takes the path of an uninterrupted one. It loads with weights_only=True.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musebridge.models.common.checkpoint_io import read_checkpoint

RUN_CHECKPOINT = "run.pt"
LOG_FILE = "train_log.csv"
JSON_LOG_FILE = "train_log.json"
PLOT_FILE = "train_curves.png"
RUN_FORMAT = "musebridge.run/2"


def global_rng_state(device: torch.device) -> dict[str, Any]:
    """torch (CPU and this rank's CUDA device), numpy's legacy global and Python's random states."""
    kind, keys, position, gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, gauss, cached],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_global_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, gauss, cached))
    random.setstate(_tuples(state["python"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _tuples(value: Any) -> Any:
    """random.setstate wants tuples where a stored state may hold lists."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def save_run(path: Path, state: dict[str, Any]) -> None:
    """Write run.pt atomically (a kill mid-write leaves the previous one)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": RUN_FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_run(path: Path) -> dict[str, Any]:
    """run.pt as saved; ValueError when it is not a run of this trainer."""
    saved = read_checkpoint(path, "cpu", "training run")
    if not isinstance(saved, dict) or saved.get("format") != RUN_FORMAT:
        raise ValueError(f"{path} is not a run checkpoint of this version's trainer; use a fresh --out-dir")
    return saved


def card_training_fields(training: dict[str, Any]) -> dict[str, Any]:
    """The model card's account of a run, from the `training` dict a family's export records:
    seed, steps, command, processes, options and the last log row, in the cards' key order."""
    return {
        "seed": training.get("options", {}).get("seed"),
        "steps": training.get("steps"),
        "training_command": training.get("command", ""),
        "training_processes": training.get("processes", 1),  # torchrun ranks (the batch is the global one)
        "training_options": training.get("options", {}),
        "final_training_log": training.get("final", {}),
    }


SMALL_VALIDATION = 16  # phrases or windows: fewer make the figures chosen on valid mostly noise


def validation_warning(counts: Mapping[str, int], unit: str) -> str | None:
    """The line a user reads when a validation split is empty or small, else None.

    counts: {genre: validation phrases or windows}; unit: what is counted ("phrases", "windows").
    The figures chosen on valid (the best step, an early stop, a threshold) leave such a genre out or
    barely see it; the usual cause is a small MIDI folder (a tenth of its files go to valid).
    """
    empty = [g for g, n in counts.items() if n == 0]
    small = [f"{n} for {g}" for g, n in counts.items() if 0 < n < SMALL_VALIDATION]
    if not empty and not small:
        return None
    parts = ([f"no {unit} for {', '.join(empty)}"] if empty else []) + (
        [f"only {', '.join(small)}"] if small else []
    )
    where = "nothing" if len(empty) == len(counts) else "those genres barely or not at all"
    return (
        f"warning: validation split: {'; '.join(parts)}. What is chosen on valid (the best step, an early "
        f"stop, a threshold) sees {where}: a tenth of each genre's tunes (of a MIDI folder's files) go "
        "to valid, so give each genre 10 files or more."
    )


def write_csv(path: Path, history: Sequence[dict[str, float]], fields: Sequence[str] = ()) -> None:
    """The history as CSV: `fields` first (in order), then any other key in order of appearance."""
    keys = list(fields)
    for row in history:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in keys})


def write_json(path: Path, job: dict[str, Any], history: Sequence[dict[str, float]], **extra: Any) -> None:
    """{"job": ..., "history": [...], ...extra} (non-finite floats written as null)."""
    payload = {"job": job, **extra, "history": [_finite(row) for row in history]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def _finite(row: dict[str, float]) -> dict[str, Any]:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}


def plot_history(history: Sequence[dict[str, float]], path: Path, title: str) -> None:
    """Every logged quantity against step, one panel each, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = ("step", "seconds", "phase")
    keys = [k for k in dict.fromkeys(k for row in history for k in row) if k not in skip]
    if not keys:
        return
    columns = 3
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 3 * rows), squeeze=False)
    for axis, key in zip(axes.flat, keys, strict=False):
        points = [(r["step"], r[key]) for r in history if key in r]
        axis.plot([p[0] for p in points], [p[1] for p in points], ".-")
        axis.set_title(key, fontsize=9)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(keys) :]:
        axis.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
