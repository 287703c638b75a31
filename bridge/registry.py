"""Model registry: a model name -> a factory(device, options) -> PhraseModel.

Built-in rule models (thru, transpose, blend) come from core's rule_models. Neural models join with
`register(name, factory, neural=True)` or, so that torch is imported only when the model is used,
`register_lazy(name, "package.module:function")`: the module is imported on first use.

A factory gets the resolved torch device ("cpu", "cuda", "mps"; "cpu" for rule models) and a dict of
options, and returns an object satisfying `musebridge.core.model_protocol.PhraseModel`.
A factory that needs a checkpoint calls `require_checkpoint(path)`, which raises a UserError naming
the missing file.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musebridge.core.model_protocol import PhraseModel
from musebridge.errors import UserError

ModelFactory = Callable[[str, Mapping[str, Any]], PhraseModel]

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One registered model: its factory, or a lazy 'module:function' target resolved on first use."""

    name: str
    factory: ModelFactory | None
    target: str | None
    neural: bool
    description: str
    cpu_bound: bool = False  # holds the GIL while it runs: `serve --isolation auto` gives it a process


_ENTRIES: dict[str, ModelEntry] = {}
_LOCK = threading.Lock()


def register(
    name: str,
    factory: ModelFactory,
    *,
    neural: bool = False,
    description: str = "",
    replace: bool = False,
    cpu_bound: bool | None = None,
) -> None:
    """Register `factory` under `name`; registering a taken name raises ValueError unless replace.

    neural: needs torch and a device. cpu_bound (default: neural): runs long in Python/CPU, so
    `serve --isolation auto` runs it in a child process when it runs on the CPU.
    """
    bound = neural if cpu_bound is None else cpu_bound
    _add(ModelEntry(name, factory, None, neural, description, bound), replace)


def register_lazy(
    name: str,
    target: str,
    *,
    neural: bool = True,
    description: str = "",
    replace: bool = False,
    cpu_bound: bool | None = None,
) -> None:
    """Register a factory by 'package.module:function'; the module is imported only when used."""
    if ":" not in target:
        raise ValueError(f"lazy target must look like 'package.module:function', got {target!r}")
    bound = neural if cpu_bound is None else cpu_bound
    _add(ModelEntry(name, None, target, neural, description, bound), replace)


def unregister(name: str) -> None:
    """Remove a registered model (tests, plugins); unknown names are ignored."""
    with _LOCK:
        _ENTRIES.pop(name, None)


def _add(entry: ModelEntry, replace: bool) -> None:
    if not entry.name or not entry.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"model names are letters, digits, '-' and '_', got {entry.name!r}")
    with _LOCK:
        if entry.name in _ENTRIES and not replace:
            raise ValueError(f"model {entry.name!r} is already registered")
        _ENTRIES[entry.name] = entry


def names() -> list[str]:
    """Registered model names, sorted."""
    with _LOCK:
        return sorted(_ENTRIES)


def entry(name: str) -> ModelEntry:
    """The entry for `name`, or a UserError listing the known names."""
    with _LOCK:
        found = _ENTRIES.get(name)
    if found is None:
        raise UserError(f"unknown model {name!r} (known: {', '.join(names()) or 'none'})")
    return found


def is_neural(name: str) -> bool:
    """True when the model needs torch (and a device)."""
    return entry(name).neural


def _factory_of(found: ModelEntry) -> ModelFactory:
    if found.factory is not None:
        return found.factory
    assert found.target is not None
    module_name, _, attribute = found.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(
            f"model {found.name!r} is not available: cannot import {module_name} ({error})"
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UserError(f"model {found.name!r}: {found.target} is not a callable factory")
    return factory


def create(name: str, *, device: str = "auto", options: Mapping[str, Any] | None = None) -> PhraseModel:
    """Build the model `name`. Neural models get `resolve_device(device)`; rule models get "cpu".

    Raises UserError for an unknown name, an unavailable device or a missing checkpoint.
    """
    found = entry(name)
    resolved = resolve_device(device) if found.neural else "cpu"
    model = _factory_of(found)(resolved, dict(options or {}))
    if not isinstance(model, PhraseModel):
        raise UserError(f"model {name!r}: the factory returned {type(model).__name__}, not a PhraseModel")
    return model


def require_checkpoint(path: str | Path, *, model: str = "") -> Path:
    """`path` as a Path if the file exists, else a UserError that names the file."""
    checkpoint = Path(path)
    if not checkpoint.is_file():
        owner = f"model {model!r}: " if model else ""
        raise UserError(f"{owner}checkpoint not found: {checkpoint}")
    return checkpoint


def resolve_device(requested: str) -> str:
    """'auto' -> cuda if available, then mps, then cpu. An unavailable explicit device is a UserError.

    Imports torch: call it only when a neural model is used.
    """
    if requested not in DEVICES:
        raise UserError(f"unknown device {requested!r} (choose from {', '.join(DEVICES)})")
    if requested == "cpu":
        return "cpu"
    import torch  # a neural model is in use: torch is needed anyway

    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise UserError("device 'cuda' requested but torch sees no CUDA GPU (try --device auto or cpu)")
    if requested == "mps" and not mps:
        raise UserError("device 'mps' requested but torch has no MPS backend here (try --device auto or cpu)")
    return requested


class ModelCache:
    """Models built once per (name, options), on first use, for one device setting. Thread-safe."""

    def __init__(self, *, device: str = "auto") -> None:
        self.device = device
        self._models: dict[tuple[str, tuple[tuple[str, Any], ...]], PhraseModel] = {}
        self._lock = threading.Lock()

    def get(self, name: str, options: Mapping[str, Any] | None = None) -> PhraseModel:
        """The model `name` with `options`, built on first call (UserError for unknown/missing)."""
        key = (name, tuple(sorted(dict(options or {}).items())))
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = create(name, device=self.device, options=options)
                self._models[key] = model
            return model

    def loaded(self) -> list[str]:
        with self._lock:
            return sorted({name for name, _ in self._models})


def _rule_factory(name: str) -> ModelFactory:
    """A factory for the rule model `name` of musebridge.core.rule_models (options: see there)."""

    def factory(device: str, options: Mapping[str, Any]) -> PhraseModel:
        from musebridge.core import rule_models

        try:
            return rule_models.build_rule_model(name, options)
        except ValueError as error:
            raise UserError(str(error)) from error

    factory.__name__ = f"create_{name}"
    return factory


def _register_builtins() -> None:
    register("thru", _rule_factory("thru"), description="no model: the played phrase, unchanged")
    register("transpose", _rule_factory("transpose"), description="the phrase moved by N semitones")
    register("blend", _rule_factory("blend"), description="interpolation of clip A and B by rule")
    register_lazy("busy", "musebridge.bench.models:create_busy_model", neural=False, cpu_bound=True,
                  description="benchmark load: burns work_ms of CPU (GIL held), then transposes")
    register_lazy("musicvae", "musebridge.models.musicvae.phrase_model:create_musicvae",
                  description="MusicVAE (Roberts 2018): interpolate between clips A and B, sample")
    register_lazy("cyclegan", "musebridge.models.cyclegan.phrase_model:create_transfer_model",
                  description="CycleGAN genre transfer (Brunner 2018)")
    register_lazy("umt", "musebridge.models.umt.phrase_model:create_umt_model",
                  description="universal translation (Mor 2019): any genre into any genre it decodes")
    register_lazy("wavenet", "musebridge.models.continuation.phrase_model:wavenet_factory",
                  description="WaveNet-style continuation over melody tokens (cached generation)")
    register_lazy("crnngan", "musebridge.models.continuation.phrase_model:crnngan_factory",
                  description="C-RNN-GAN-3 continuation over tones (Mogren 2016)")


_register_builtins()
