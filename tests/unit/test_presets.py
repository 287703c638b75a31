"""Presets: shipped YAML files load; errors name the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from musebridge.core.music import Meter
from musebridge.errors import UserError
from musebridge.presets import PresetError, load_preset, parse_preset, preset_names


def test_shipped_presets_load() -> None:
    names = preset_names()
    for required in ("default", "call-and-response", "genre-transfer", "interpolate", "universal-transfer"):
        assert required in names
    for name in names:
        preset = load_preset(name)
        assert preset.name == name
        assert preset.source == f"presets/{name}.yaml"
    cr = load_preset("call-and-response")
    assert cr.defaults.mode == "continue" and cr.continuation.end_call_cc == 64
    assert load_preset("default").defaults.mode == "thru"
    universal = load_preset("universal-transfer")
    assert universal.model_for("transfer") == "umt" and universal.defaults.genre == "chorale"


def test_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        """
clock: midi
tempo: 96
meter: "7/8"
grid: {steps: 7, per: bar}
lookahead_ms: 15
echo_input: true
output: both
genres: [jazz, folk]
models: {transfer: cyclegan}
model_options: {transpose: {semitones: 7}}
continue: {silent_bars: 2, max_call_bars: 4, answer_bars: 2, end_call_cc: 20}
defaults: {mode: transfer, phrase_bars: 2, genre: jazz}
tracks:
  3: {mode: continue, out_channel: 10, temperature: 0.5}
""",
        encoding="utf-8",
    )
    p = load_preset(str(path))
    assert p.name == "mine" and p.clock == "midi" and p.tempo == 96.0 and p.meter == Meter(7, 8)
    assert p.grid.steps == 7 and p.grid.per == "bar" and p.lookahead_ms == 15.0 and p.output == "both"
    assert p.model_for("transfer") == "cyclegan" and p.model_for("interpolate") == "musicvae"
    assert p.model_options["transpose"]["semitones"] == 7
    assert p.continuation.silent_bars == 2 and p.continuation.answer_bars == 2
    assert p.defaults.echo_input is True and p.defaults.genre == "jazz"
    t3 = p.track(3)
    assert (t3.mode, t3.out_channel, t3.temperature, t3.phrase_bars) == ("continue", 9, 0.5, 2)
    assert p.track(5) == p.defaults
    assert p.with_mode("thru").track(3).mode == "thru"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tracks: {1: {mode: trnsfer}}", "x.yaml: tracks.1.mode: expected one of thru|transfer|"),
        ("tempo: fast", "x.yaml: tempo: expected a number, got str 'fast'"),
        ("tempo: 1000", "x.yaml: tempo: expected 20..400, got 1000"),
        ("colour: red", "x.yaml: colour: unknown key"),
        ("grid: {steps: 4, size: 2}", "x.yaml: grid.size: unknown key"),
        ("meter: '4/3'", "x.yaml: meter: meter denominator must be"),
        ("meter: 4", "x.yaml: meter: expected a string"),
        ("defaults: {phrase_bars: 0}", "x.yaml: defaults.phrase_bars: expected 1..64, got 0"),
        ("defaults: {echo_input: 1}", "x.yaml: defaults.echo_input: expected true or false"),
        ("continue: {end_call_cc: 200}", "x.yaml: continue.end_call_cc: expected 0..127"),
        ("tracks: {-1: {mode: thru}}", "x.yaml: tracks.-1: track ids are integers >= 0"),
        ("tracks: {1: {genre: polka}}", "x.yaml: tracks.1.genre: expected one of"),
        ("models: {transfer: 3}", "x.yaml: models.transfer: expected a string"),
        (
            "model_options: {transpose: {semitones: 1.5}}",
            "model_options.transpose.semitones: expected an integer",
        ),
        ("- a\n- b", "x.yaml: not a preset: expected a mapping of settings, got a list"),
        ("tempo: [1, 2", "x.yaml: line 1: not valid YAML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PresetError) as info:
        load_preset(str(path))
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert isinstance(info.value, UserError)


def test_missing_presets() -> None:
    with pytest.raises(PresetError, match="unknown preset 'nope'; presets: .*default"):
        load_preset("nope")
    with pytest.raises(PresetError, match="no such preset file"):
        load_preset("missing/dir/x.yaml")
    assert parse_preset(None, "empty.yaml").defaults.mode == "thru"


SECRET = "root:x:0:0:SECRET-LINE:/root:/bin/bash"


@pytest.mark.parametrize("name", ["/etc/passwd", "../default", "..", "a/b", "x.yaml", "C:\\x", ".hidden", ""])
def test_a_named_preset_is_never_a_path(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: /musebridge/preset with a path read any file and echoed its first line."""
    from musebridge.presets import load_named_preset

    monkeypatch.setenv("MUSEBRIDGE_PRESET_DIR", str(tmp_path))
    with pytest.raises(PresetError, match="by name"):
        load_named_preset(name)


def test_named_presets_come_from_the_shipped_and_the_user_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musebridge.presets import load_named_preset, user_preset_names

    monkeypatch.setenv("MUSEBRIDGE_PRESET_DIR", str(tmp_path))
    (tmp_path / "mine.yaml").write_text("tempo: 99\n")
    (tmp_path / "leak.yaml").write_text(SECRET + "\n")
    (tmp_path / "broken.yml").write_text(f"tempo: [\n{SECRET}\n")
    (tmp_path / "typo.yaml").write_text(f"tracks: {{1: {{mode: '{SECRET * 3}'}}}}\n")
    assert load_named_preset("default").source == "presets/default.yaml"
    assert load_named_preset("mine").tempo == 99.0
    assert user_preset_names() == ["broken", "leak", "mine", "typo"]
    for name in ("leak", "broken", "typo", "nothere"):
        with pytest.raises(PresetError) as caught:
            load_named_preset(name)
        assert "SECRET" not in str(caught.value), str(caught.value)
    with pytest.raises(PresetError, match="unknown preset 'nothere'; presets: .*default.*mine"):
        load_named_preset("nothere")


def test_a_path_given_on_the_command_line_never_echoes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text(SECRET + "\n")
    with pytest.raises(PresetError, match="not a preset: expected a mapping of settings") as caught:
        load_preset(str(path))
    assert "SECRET" not in str(caught.value)
