"""Checkpoint reading for every family (`read_checkpoint`), and the shared save/rebuild of the
continuation models (C-RNN-GAN, WaveNet).

Both store the same dict layout, keyed by a ``model`` kind string:
``{"model", "config", "encoding", "genres", "state_dict", **extra}`` (loadable with
``torch.load(weights_only=True)``). MusicVAE and CycleGAN use other layouts and keep their own code.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import torch
from torch import nn


def read_checkpoint(path, device: str | torch.device = "cpu", what: str = "musebridge") -> Any:
    """torch.load(path, weights_only=True) onto `device`; ValueError with a one-line reason otherwise.

    A file that is not a torch checkpoint (a MIDI file given as --checkpoint, a truncated download)
    makes torch raise a page of advice, including to load with weights_only=False, which would run
    code from the file: never. So the reason is ours, in one line; torch's stays chained for a debugger.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Exception as error:  # noqa: BLE001 - unpickling errors come in many types
        raise ValueError(
            f"cannot read {what} checkpoint {path}: a file of another kind, damaged, or holding objects "
            "a safe load refuses"
        ) from error


class _Config(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


ModelT = TypeVar("ModelT", bound=nn.Module)


def checkpoint_dict(
    kind: str, model: nn.Module, encoding: str, genres: tuple[str, ...] | list[str], extra: dict | None = None
) -> dict:
    """What a .pt holds: model kind, config, encoding, genres and weights, then any extra keys."""
    config: _Config = model.config  # type: ignore[assignment]
    return {
        "model": kind,
        "config": config.to_dict(),
        "encoding": encoding,
        "genres": list(genres),
        "state_dict": model.state_dict(),
        **(extra or {}),
    }


def rebuild(
    checkpoint: dict,
    kind: str,
    model_class: type[ModelT],
    config_class: Any,
    device: str | torch.device = "cpu",
) -> ModelT:
    """Rebuild the model a `checkpoint_dict` of this kind describes, in eval mode; ValueError otherwise."""
    if checkpoint.get("model") != kind:
        raise ValueError(f"not a {kind} checkpoint (model={checkpoint.get('model')!r})")
    model = model_class(config_class.from_dict(checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()
