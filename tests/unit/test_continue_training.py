"""`musebridge train continue` and `musebridge eval continue` end to end on a toy dataset (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from musebridge.cli import main
from musebridge.core.music import Meter
from musebridge.models.data.tunes import Tune, make_notes, pack_tunes, regular_bars


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory) -> Path:
    """40 tunes of 16 bars of 4/4: eighth-note scales and arpeggios from several roots."""
    rng = np.random.default_rng(0)
    tunes = []
    for index in range(40):
        root = int(rng.integers(55, 67))
        shape = [0, 2, 4, 5, 7, 9, 11, 12] if index % 2 else [0, 4, 7, 12, 7, 4, 0, 4]
        rows = [(root + shape[k % 8] + (k // 32) % 2, 80, k * 0.5, 0.5) for k in range(128)]
        tunes.append(
            Tune(
                source_id=f"toy/{index}",
                collection="toy",
                genre="folk" if index % 3 else "celtic",
                notes=make_notes(rows),
                bars=regular_bars(64.0, [(0.0, Meter(4, 4))]),
            )
        )
    path = tmp_path_factory.mktemp("toy_data") / "dataset.npz"
    np.savez(path, **pack_tunes(tunes))
    return path


def _train(kind: str, data: Path, folder: Path, extra: list[str]) -> Path:
    export = folder / f"{kind}_toy.pt"
    args = ["train", "continue", "--model", kind, "--data", str(data), "--out-dir", str(folder / kind)]
    args += [
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--window-bars",
        "4",
        "--no-progress",
        "--export",
        str(export),
    ]
    assert main(args + extra) == 0
    assert (folder / kind / "run.pt").exists() and (folder / kind / "train_curves.png").exists()
    card = yaml.safe_load(export.with_suffix(".yaml").read_text())
    assert card["steps"] == 3 and card["seed"] == 0 and "train continue" in card["training_command"]
    return export


def test_train_then_eval_continue(toy_dataset, tmp_path, capsys) -> None:
    wavenet = _train(
        "wavenet", toy_dataset, tmp_path, ["--channels", "4", "--blocks", "1", "--genre-conditioning"]
    )
    assert "only 14 for celtic" in capsys.readouterr().err  # 40 short toy tunes: a small valid split
    folk_only = ["--channels", "4", "--blocks", "1", "--genres", "folk"]
    folk = _train("wavenet", toy_dataset, tmp_path / "folk", folk_only)
    assert "celtic" not in capsys.readouterr().err  # a genre not trained on is never named
    card = yaml.safe_load(folk.with_suffix(".yaml").read_text())
    assert card["data"]["genres"] == ["folk"] and card["data"]["windows"]["trained_genres"] == ["folk"]
    # --genre: refused when a conditioned model does not know it; said to change nothing otherwise
    from tests.unit.test_shipped_checkpoints import A_MELODY, write_melody

    call = write_melody(tmp_path / "call.mid", A_MELODY)
    ask = ["continue", str(call), "--bars", "1", "-o", str(tmp_path / "answer.mid"), "--checkpoint"]
    assert main([*ask, str(wavenet), "--genre", "jazz"]) == 2
    assert "knows no genre 'jazz'" in capsys.readouterr().err
    assert main([*ask, str(folk), "--genre", "celtic"]) == 0
    said = capsys.readouterr().err
    assert "not conditioned on genre (trained on folk): --genre celtic changes nothing" in said
    gan = _train("crnngan", toy_dataset, tmp_path, ["--sequence-length", "8", "--pretrain-steps", "2"])
    out = tmp_path / "eval.json"
    args = [
        "eval",
        "continue",
        "--checkpoint",
        str(wavenet),
        "--checkpoint",
        str(gan),
        "--data",
        str(toy_dataset),
    ]
    args += [
        "--split",
        "valid",
        "--call-bars",
        "2",
        "--bars",
        "2",
        "--windows",
        "3",
        "--json",
        str(out),
        "--update-card",
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["windows"] == 3 and result["answer_bars"] == 2
    assert result["real"]["tone_span"] > 0
    entries = result["models"]
    assert set(entries) == {"wavenet:wavenet_toy", "crnngan:crnngan_toy"}
    assert {"free", "continuation", "free_gaps", "continuation_gaps", "fit"} <= set(
        entries["crnngan:crnngan_toy"]
    )
    assert 0 < entries["wavenet:wavenet_toy"]["likelihood"]["nll"] < 10
    card = yaml.safe_load(wavenet.with_suffix(".yaml").read_text())
    assert card["metrics"]["likelihood"] == entries["wavenet:wavenet_toy"]["likelihood"]
    assert "real answers" in capsys.readouterr().out


def test_train_continue_user_errors(tmp_path, capsys) -> None:
    missing = ["train", "continue", "--model", "wavenet", "--data", str(tmp_path / "none.npz")]
    assert main(missing + ["--out-dir", str(tmp_path / "r")]) == 2
    assert "no dataset" in capsys.readouterr().err
    assert main(["eval", "continue", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert (
        main(
            [
                "train",
                "continue",
                "--model",
                "wavenet",
                "--synthetic",
                "--out-dir",
                str(tmp_path),
                "--steps",
                "0",
            ]
        )
        == 2
    )


def test_an_answer_without_notes_is_said(tmp_path, capsys, monkeypatch) -> None:
    """A newcomer got "4 bars of 2/4, 0 notes" from `continue` with no word: the file is written (the
    call as it was) and a warning says the answer is silent and what to try."""
    from musebridge.core.music import Phrase
    from musebridge.models.continuation.phrase_model import ContinuePhraseModel
    from tests.unit.test_shipped_checkpoints import A_MELODY, write_melody

    monkeypatch.setattr(ContinuePhraseModel, "generate", lambda self, request: Phrase((), request.bars))
    call = write_melody(tmp_path / "call.mid", A_MELODY)
    assert main(["continue", str(call), "--bars", "2", "-o", str(tmp_path / "answer.mid")]) == 0
    assert "answer has no notes" in capsys.readouterr().err and (tmp_path / "answer.mid").is_file()
