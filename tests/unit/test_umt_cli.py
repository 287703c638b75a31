"""`musebridge train judges|umt`, `train umt --add-genre`, `eval umt` and the feature judge, on toy data."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
import yaml

from musebridge.cli import main
from musebridge.core.music import Meter
from musebridge.models.data.tunes import Tune, make_notes, pack_tunes, regular_bars
from musebridge.models.judges.features import fit_feature_judge, roll_features

# genre -> (note length in beats, chord offsets): rhythm and texture tell them apart
STYLES = {
    "folk": (0.5, (0,)),
    "chorale": (1.0, (0, 4, 7)),
    "celtic": (0.25, (0,)),
    "madrigal": (2.0, (0, 7)),
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory) -> Path:
    """8 train, 2 valid, 2 test tunes of 16 bars of 4/4 per genre, each genre its own rhythm and texture."""
    from musebridge.models.data.dataset import split_of

    rng = np.random.default_rng(0)
    tunes = []
    for genre, (length, chord) in STYLES.items():
        wanted, ids = {"train": 8, "valid": 2, "test": 2}, []
        for number in range(1000):
            split = split_of(f"{genre}/{number}")
            if wanted[split] > 0:
                wanted[split] -= 1
                ids.append(number)
        for index in ids:
            rows, beat = [], 0.0
            while beat < 64.0:
                root = int(rng.integers(50, 70))
                rows += [(root + offset, 80, beat, length) for offset in chord]
                beat += length
            tunes.append(
                Tune(
                    source_id=f"{genre}/{index}",
                    collection="toy",
                    genre=genre,
                    notes=make_notes(rows),
                    bars=regular_bars(64.0, [(0.0, Meter(4, 4))]),
                )
            )
    path = tmp_path_factory.mktemp("umt_data") / "dataset.npz"
    np.savez(path, **pack_tunes(tunes))
    return path


def write_midi(path: Path, pitches: list[int], beats: float = 0.5) -> None:
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for pitch in pitches:
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=int(480 * beats)))
    midi.save(path)


def test_feature_judge_is_transposition_invariant_and_separates_textures() -> None:
    rng = np.random.default_rng(1)
    melodies = np.zeros((20, 64, 84), dtype=np.uint8)
    chords = np.zeros((20, 64, 84), dtype=np.uint8)
    for i in range(20):
        for beat in range(16):
            root = int(rng.integers(30, 50))
            melodies[i, beat * 4 : beat * 4 + 2, root] = 1
            chords[i, beat * 4 : beat * 4 + 4, [root, root + 3, root + 7]] = 1
    assert np.allclose(roll_features(chords[0]), roll_features(np.roll(chords[0], 5, axis=1)))
    judge = fit_feature_judge(("melody", "chords"), [melodies[:10], chords[:10]])
    assert judge.accuracy([melodies[10:], chords[10:]]) == 1.0
    with pytest.raises(ValueError, match="real phrases of every genre"):
        fit_feature_judge(("a", "b"), [melodies, chords[:0]])


def test_train_judges_then_umt_then_add_genre_then_eval(toy_dataset, tmp_path, capsys) -> None:
    genres = ["folk", "chorale", "celtic"]
    out = tmp_path / "checkpoints"
    data = ["--dataset", str(toy_dataset)]
    assert main(["train", "judges", "--genres", *genres, *data, "--epochs", "1", "-o", str(out)]) == 0
    assert (out / "genre_classifier_folk_chorale_celtic.pt").is_file()
    card = yaml.safe_load((out / "feature_judge_folk_chorale_celtic.yaml").read_text())
    assert card["test_accuracy"] >= 90.0  # the toy genres differ in rhythm and texture

    umt = out / "umt.pt"
    train = ["train", "umt", "--genres", *genres, *data, "--config", "tiny", "--steps", "3"]
    assert main([*train, "--checkpoint-every", "2", "-o", str(umt), "--run-dir", str(tmp_path / "run")]) == 0
    card = yaml.safe_load(umt.with_suffix(".yaml").read_text())
    assert card["genres"] == genres and card["steps"] == 3 and card["config"]["confusion_weight"] == 0.01
    assert card["command"].startswith("musebridge") and not (out / "umt.last.pt").exists()
    logged = json.loads((tmp_path / "run" / "train_log.json").read_text())  # the shared trainer's run folder
    assert logged["job"]["family"] == "umt" and logged["history"][-1]["step"] == 3
    assert "valid_reconstruction" in logged["history"][-1] and (tmp_path / "run" / "run.pt").is_file()

    assert main(["train", "umt", "--threshold-only", "--checkpoint", str(umt), *data]) == 0
    assert yaml.safe_load(umt.with_suffix(".yaml").read_text())["threshold"] == torch.load(
        umt, weights_only=True
    )["threshold"]

    folder = tmp_path / "jazz"
    folder.mkdir()
    for i in range(12):  # 8 bars each
        write_midi(folder / f"tune{i}.mid", [60 + (i + k) % 12 for k in range(64)])
    extended = tmp_path / "umt_jazz.pt"
    add = ["train", "umt", "--add-genre", f"jazz={folder}", "--checkpoint", str(umt), "--config", "tiny"]
    capsys.readouterr()
    assert main([*add, "--steps", "2", "-o", str(extended), "--run-dir", str(tmp_path / "run-jazz")]) == 0
    assert "warning: validation split: no phrases for jazz" in capsys.readouterr().out  # 12 files, 0 to valid
    before, after = torch.load(umt, weights_only=True), torch.load(extended, weights_only=True)
    assert after["genres"] == [*genres, "jazz"]
    for key, value in before["state_dict"].items():
        assert torch.equal(after["state_dict"][key], value), key

    import shutil

    from musebridge.models import CHECKPOINT_DIR

    for suffix in (".yaml", ".eval.json"):  # a CycleGAN pair's card beside the checkpoint
        shutil.copy(CHECKPOINT_DIR / f"cyclegan_celtic_folk{suffix}", out)
    report = tmp_path / "eval.json"
    options = ["--checkpoint", str(umt), "--judges-dir", str(out), *data, "--json", str(report)]
    assert main(["eval", "umt", *options, "--update-card", "--update-cyclegan-cards"]) == 0
    figures = json.loads(report.read_text())
    assert figures["guidance"] == 0.0
    assert len(figures["directions"]) == 6  # every ordered pair of 3 genres
    for direction in figures["directions"].values():
        assert {"S_cnn", "S_features", "S_min", "onsets_kept"} <= set(direction)
        assert direction["S_min"] == min(direction["S_cnn"], direction["S_features"])
    assert set(figures["out_of_domain"]["targets"]) == set(genres)
    assert figures["out_of_domain"]["genre"] == "madrigal"
    card = yaml.safe_load(umt.with_suffix(".yaml").read_text())
    assert set(card["metrics"]["per_direction"]) == set(figures["directions"])
    assert set(figures["cyclegan"]) == {"celtic->folk", "folk->celtic"}  # the shipped pair, same phrases
    cyclegan_card = yaml.safe_load((out / "cyclegan_celtic_folk.yaml").read_text())
    assert cyclegan_card["two_judges"]["per_direction"] == {d: {
        k: figures["cyclegan"][d][k] for k in ("S_cnn", "S_features", "S_min", "onsets_kept")
    } for d in ("celtic->folk", "folk->celtic")}  # fmt: skip
    assert "metrics" in cyclegan_card  # the card's own figures stay
    assert "two_judges" in json.loads((out / "cyclegan_celtic_folk.eval.json").read_text())
    printed = capsys.readouterr().out
    assert "folk->chorale" in printed and "S_min" in printed

    melody = tmp_path / "folk.mid"
    write_midi(melody, [67, 72, 72, 74, 76, 74, 72, 71] * 4)  # 4 bars of eighths
    answer = tmp_path / "chorale.mid"
    transfer = ["transfer", str(melody), "--model", "umt", "--checkpoint", str(umt), "-o"]
    assert main([*transfer, str(answer), "--to", "chorale"]) == 0 and answer.is_file()
    guided = tmp_path / "guided.mid"
    assert main([*transfer, str(guided), "--to", "chorale", "--guidance", "2.5"]) == 0 and guided.is_file()
    capsys.readouterr()
    cyclegan = ["transfer", str(melody), "--to", "folk", "-o", str(tmp_path / "c.mid")]
    assert main([*cyclegan, "--guidance", "1"]) == 2
    assert "--guidance is an option of --model umt" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: a guidance outside 0..20
        main([*transfer, str(tmp_path / "n.mid"), "--to", "chorale", "--guidance", "-1"])
    assert "guidance must be 0..20" in capsys.readouterr().err
    assert main([*transfer, str(tmp_path / "no.mid"), "--to", "jazz"]) == 2
    assert "known: celtic, chorale, folk" in capsys.readouterr().err
    assert not (tmp_path / "no.mid").exists()

    assert main(["train", "umt", "--add-genre", "jazz", "--checkpoint", str(umt)]) == 2
    assert main(["train", "umt", "--genres", "folk", "nowhere", *data, "--config", "tiny"]) == 2
    assert main(["eval", "umt", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and "NAME=DIR" in errors[0] and "nowhere" in errors[1]
