"""Every shipped checkpoint loads from its place in the package and runs through the command a user types.

A checkpoint added to models/checkpoints/ without a line here fails
`test_every_shipped_checkpoint_is_covered`, so a move of the weights or of the code that loads them cannot
go unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mido
import pytest
import torch

from musebridge.cli import main
from musebridge.models import CHECKPOINT_DIR

A_MELODY = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 67, 64, 60]


def write_melody(path: Path, pitches: list[int], bars: int = 4) -> Path:
    """One track, 120 BPM, 4/4, 480 PPQN: the pitches as quarter notes, repeated to fill `bars` bars."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    for index in range(bars * 4):
        pitch = pitches[index % len(pitches)]
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=480))
    midi.save(path)
    return path


def notes_in(path: Path) -> int:
    return sum(1 for message in mido.MidiFile(path) if message.type == "note_on" and message.velocity > 0)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(args)
    assert code == 0, f"{args}: {capsys.readouterr().err}"


def cli_case(*args: str) -> Callable[[Path, Path], list[str]]:
    """A command on the input melody `{in}` writing `{out}`."""
    return lambda melody, out: [str(melody) if a == "{in}" else str(out) if a == "{out}" else a for a in args]


def classifier_runs(path: Path) -> None:
    if path.name.startswith("feature_judge_"):
        import numpy as np

        from musebridge.models.judges.features import load_feature_judge

        judge = load_feature_judge(path)
        assert judge.logits(np.zeros((2, 64, 84), dtype=bool)).shape == (2, len(judge.genres))
        return
    from musebridge.models.judges.classifier import load_classifier

    classifier, genres = load_classifier(path)
    with torch.no_grad():
        logits = classifier(torch.zeros(2, 1, 64, 84))
    assert logits.shape == (2, len(genres)) and len(genres) >= 2


CLI_CASES: dict[str, Callable[[Path, Path], list[str]]] = {
    "musicvae_2bar.pt": cli_case("sample", "--bars", "2", "-n", "2", "-o", "{out}", "--seed", "1"),
    "musicvae_4bar.pt": cli_case("interpolate", "--bars", "4", "--steps", "1", "{in}", "{in}", "-o", "{out}"),
    "cyclegan_celtic_folk.pt": cli_case("transfer", "{in}", "--to", "folk", "-o", "{out}",
                                        "--checkpoint", str(CHECKPOINT_DIR / "cyclegan_celtic_folk.pt")),
    "cyclegan_chorale_renaissance.pt": cli_case(
        "transfer", "{in}", "--to", "renaissance", "-o", "{out}",
        "--checkpoint", str(CHECKPOINT_DIR / "cyclegan_chorale_renaissance.pt")),
    "wavenet_melody.pt": cli_case("continue", "{in}", "--model", "wavenet", "--bars", "2", "-o", "{out}"),
    "crnngan_tones3.pt": cli_case("continue", "{in}", "--model", "crnngan", "--bars", "2", "-o", "{out}"),
    "umt.pt": cli_case("transfer", "{in}", "--to", "chorale", "--model", "umt", "-o", "{out}"),
}
LOADED_BY_EVAL = {
    "genre_classifier_celtic_folk.pt",
    "genre_classifier_chorale_renaissance.pt",
    "genre_classifier_celtic_folk_chorale_renaissance.pt",
    "feature_judge_celtic_folk_chorale_renaissance.pt",
}


def test_every_shipped_checkpoint_is_covered() -> None:
    shipped = {path.name for path in CHECKPOINT_DIR.glob("*.pt")}
    assert shipped, f"no checkpoints in {CHECKPOINT_DIR}"
    assert shipped == set(CLI_CASES) | LOADED_BY_EVAL


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_shipped_checkpoint_runs_through_the_cli(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    melody = write_melody(tmp_path / "in.mid", A_MELODY)
    out = tmp_path / "out.mid"
    run_cli(CLI_CASES[name](melody, out), capsys)
    assert notes_in(out) > 0


@pytest.mark.parametrize("name", sorted(LOADED_BY_EVAL))
def test_shipped_classifier_loads_and_classifies(name: str) -> None:
    classifier_runs(CHECKPOINT_DIR / name)
