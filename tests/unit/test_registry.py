"""The model registry: names, factories, lazy entries, devices, checkpoints, the built-in rule models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from musebridge import registry
from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Note, Phrase
from musebridge.errors import UserError

PHRASE = Phrase((Note(60, 100, 0.0, 1.0), Note(67, 80, 2.0, 2.0)), bars=1)


class EchoModel:
    modes = frozenset({"transfer"})

    def __init__(self, device: str, options: Mapping[str, Any]) -> None:
        self.name = "echo"
        self.device = device
        self.options = dict(options)

    def generate(self, request: ModelRequest) -> Phrase:
        return request.phrase


def lazy_echo_factory(device: str, options: Mapping[str, Any]) -> EchoModel:
    return EchoModel(device, options)


@pytest.fixture
def scratch_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        registry.unregister(name)


def test_builtins_are_registered_and_not_neural() -> None:
    assert {"thru", "transpose", "blend"} <= set(registry.names())
    assert not registry.is_neural("transpose")


def test_builtin_thru_and_transpose_models_run() -> None:
    thru = registry.create("thru")
    assert thru.generate(ModelRequest("transfer", PHRASE, 1)).notes == PHRASE.notes
    transpose = registry.create("transpose", options={"semitones": 5})
    answer = transpose.generate(ModelRequest("transfer", PHRASE, 1))
    assert [n.pitch for n in answer.notes] == [65, 72]


def test_register_and_create_passes_device_and_options(scratch_names: list[str]) -> None:
    registry.register("echo-test", EchoModel)
    scratch_names.append("echo-test")
    model = registry.create("echo-test", device="cuda", options={"k": 1})
    assert model.device == "cpu"  # not neural: rule models always get the cpu
    assert model.options == {"k": 1}
    with pytest.raises(ValueError, match="already registered"):
        registry.register("echo-test", EchoModel)


def test_unknown_model_is_a_user_error_listing_known_names() -> None:
    with pytest.raises(UserError, match=r"unknown model 'nope' \(known: .*transpose"):
        registry.create("nope")


def test_lazy_entry_imports_on_first_use(scratch_names: list[str]) -> None:
    registry.register_lazy("lazy-echo", f"{__name__}:lazy_echo_factory", neural=False)
    registry.register_lazy("lazy-missing", "musebridge.no_such_module:factory", neural=False)
    scratch_names += ["lazy-echo", "lazy-missing"]
    assert registry.create("lazy-echo").generate(ModelRequest("transfer", PHRASE, 1)) == PHRASE
    with pytest.raises(UserError, match="cannot import musebridge.no_such_module"):
        registry.create("lazy-missing")
    with pytest.raises(ValueError, match="module:function"):
        registry.register_lazy("bad-target", "no_colon_here")


def test_missing_checkpoint_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "cyclegan_folk.pt"
    with pytest.raises(UserError, match=r"model 'cyclegan': checkpoint not found: .*cyclegan_folk\.pt"):
        registry.require_checkpoint(missing, model="cyclegan")
    missing.write_bytes(b"x")
    assert registry.require_checkpoint(missing) == missing


def test_device_resolution() -> None:
    assert registry.resolve_device("cpu") == "cpu"
    assert registry.resolve_device("auto") in {"cpu", "cuda", "mps"}
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        registry.resolve_device("tpu")


def test_rule_models_never_import_torch() -> None:
    code = (
        "import sys; from musebridge import registry; "
        "registry.create('transpose', device='auto', options={'semitones': 2}); "
        "print('torch' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"


def test_model_cache_builds_once(scratch_names: list[str]) -> None:
    built: list[str] = []

    def factory(device: str, options: Mapping[str, Any]) -> EchoModel:
        built.append(device)
        return EchoModel(device, options)

    registry.register("cache-test", factory)
    scratch_names.append("cache-test")
    cache = registry.ModelCache(device="cpu")
    assert cache.get("cache-test") is cache.get("cache-test")
    assert built == ["cpu"] and cache.loaded() == ["cache-test"]


def test_every_shipped_preset_names_registered_models_that_load() -> None:
    """`musebridge serve --preset X` must start on the shipped checkpoints, for every shipped preset."""
    from musebridge.presets import load_preset, preset_names

    for preset_name in preset_names():
        preset = load_preset(preset_name)
        for mode, model_name in preset.models.items():
            assert model_name in registry.names(), f"{preset_name}: {mode} -> {model_name}"
            model = registry.create(model_name, device="cpu", options=preset.model_options.get(model_name))
            assert mode in model.modes or model_name == "thru", f"{preset_name}: {model_name} cannot {mode}"
