"""Issue 16's data layer: top-voice genres, held-out (out-of-domain) genres, source balancing, and the
MusicVAE fine-tune + out-of-domain evaluation through the CLI (toy sizes, seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from musebridge.cli import main
from musebridge.models.data.balance import balanced_rows, genre_shares
from musebridge.models.data.corpus import score_to_tune, top_part
from musebridge.models.data.dataset import TuneDataset, split_of
from musebridge.models.data.genres import load_genres
from musebridge.models.data.tunes import Tune, make_bars, make_notes, pack_tunes


def test_shipped_genres_hold_out_whole_collections() -> None:
    genres = load_genres()
    held = {name for name, spec in genres.items() if spec.out_of_domain}
    assert {"ood_miscfolk", "ood_leadsheet", "ood_mozart"} <= held
    held_collections = {c for name in held for c in genres[name].corpus}
    trained = {c for name, spec in genres.items() if not spec.out_of_domain for c in spec.corpus}
    assert not held_collections & trained  # no held-out collection feeds any trained genre
    assert genres["chorale_melody"].voice == "top" and genres["chorale"].voice == "all"


def test_bad_voice_or_flag_is_refused(tmp_path) -> None:
    bad = tmp_path / "g.yaml"
    bad.write_text("genres:\n  x:\n    corpus: [bach]\n    voice: middle\n")
    with pytest.raises(ValueError, match="voice"):
        load_genres(bad)
    bad.write_text("genres:\n  x:\n    corpus: [bach]\n    out_of_domain: maybe\n")
    with pytest.raises(ValueError, match="out_of_domain"):
        load_genres(bad)


def test_top_part_keeps_the_highest_part_only() -> None:
    from music21 import chord, harmony, note, stream

    score = stream.Score()
    low, high = stream.Part(), stream.Part()
    for beat in range(4):
        low.insert(float(beat), note.Note(48 + beat, quarterLength=1.0))
        high.insert(float(beat), note.Note(72 - beat, quarterLength=1.0))
    high.insert(0.0, harmony.ChordSymbol("C"))
    low.insert(4.0, chord.Chord([40, 43], quarterLength=1.0))
    score.insert(0, low)  # the lower part comes first: order must not decide
    score.insert(0, high)
    assert top_part(score) is high
    merged = score_to_tune(score, "t", "test")
    top = score_to_tune(score, "t", "test", voice="top")
    assert merged.notes.size == 10
    assert top.notes["pitch"].tolist() == [72, 71, 70, 69]


def _tune(index: int, genre: str, pitch: int = 60) -> Tune:
    rows = [(pitch + (k % 7), 80, k * 0.5, 0.5) for k in range(64)]
    return Tune(source_id=f"{genre}/{index}", collection=genre, genre=genre, notes=make_notes(rows),
                bars=make_bars([(bar * 4.0, 4.0, 4, 4) for bar in range(8)]))


def _dataset(tmp_path, per_genre: int = 30) -> tuple:
    tunes = [_tune(i, genre, 60 + 3 * k) for k, genre in enumerate(("folk", "celtic", "ood_x"))
             for i in range(per_genre)]
    path = tmp_path / "dataset.npz"
    np.savez(path, **pack_tunes(tunes, {"out_of_domain": ["ood_x"], "top_voice": ["celtic"]}))
    return path, tunes


def test_held_out_genres_never_reach_train_or_valid(tmp_path) -> None:
    path, tunes = _dataset(tmp_path)
    data = TuneDataset.load(path)
    assert data.out_of_domain == ("ood_x",) and data.in_domain == ("celtic", "folk")
    assert data.polyphonic == ("folk",)  # a CycleGAN "full" mixed set takes neither copies nor held-out
    for split in ("train", "valid"):
        assert all(data.tunes[i].genre != "ood_x" for i in data.indices(None, split))
        with pytest.raises(ValueError, match="held out"):
            data.indices(["folk", "ood_x"], split)
    whole = data.indices(["ood_x"], None)
    assert len(whole) == sum(t.genre == "ood_x" for t in tunes)  # measured whole, every split
    assert {split_of(data.tunes[i].source_id) for i in whole} >= {"train"}


def test_balanced_rows_follow_the_power() -> None:
    genre = np.array([0] * 900 + [1] * 100)
    assert genre_shares(genre, 1.0) == pytest.approx({0: 0.9, 1: 0.1})
    assert genre_shares(genre, 0.0) == pytest.approx({0: 0.5, 1: 0.5})
    rows = balanced_rows(genre, 0.5, seed=1)
    share = float(np.mean(genre[rows] == 1))
    assert share == pytest.approx(10 / (30 + 10), abs=0.002)  # sqrt(100) / (sqrt(900) + sqrt(100))
    assert len(rows) == pytest.approx(1000, abs=2) and set(np.unique(rows[genre[rows] == 1])) == set(
        range(900, 1000))  # every small-genre row kept
    np.testing.assert_array_equal(rows, balanced_rows(genre, 0.5, seed=1))
    np.testing.assert_array_equal(np.sort(balanced_rows(genre, 1.0)), np.arange(1000))
    with pytest.raises(ValueError):
        genre_shares(genre, 1.5)


def test_fine_tune_then_eval_in_and_out_of_domain(tmp_path, capsys) -> None:
    path, _ = _dataset(tmp_path)
    toy = ["--set", "z_size=8", "--set", "encoder_size=16", "--set", "decoder_size=16", "--quiet",
           "--threads", "1", "--device", "cpu", "--batch-size", "8", "--dataset", str(path)]
    first = tmp_path / "first.pt"
    assert main(["train", "vae", "--genre", "folk", "--steps", "3", "--out-dir", str(tmp_path / "a"),
                 "--export", str(first), *toy]) == 0
    # a held-out genre cannot be trained on
    assert main(["train", "vae", "--genre", "ood_x", "--steps", "1", "--out-dir", str(tmp_path / "x"),
                 *toy]) == 2
    assert "held out" in capsys.readouterr().err
    tuned = tmp_path / "tuned.pt"
    assert main(["train", "vae", "--genre", "folk", "--genre", "celtic", "--balance", "0.5",
                 "--init-from", str(first), "--steps", "5", "--log-every", "1",
                 "--out-dir", str(tmp_path / "b"), "--export", str(tuned), *toy]) == 0
    card = yaml.safe_load(tuned.with_suffix(".yaml").read_text())
    log = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert card["steps"] == 5 and [row.split(",")[0] for row in log[1:]] == ["4", "5"]  # went on from 3
    assert card["fine_tuned_from"] == "first.pt" and card["data"]["balance"]["power"] == 0.5
    assert main(["train", "vae", "--init-from", str(first), "--set", "z_size=4", "--steps", "5",
                 "--out-dir", str(tmp_path / "c"), "--dataset", str(path), "--quiet"]) == 2
    out = tmp_path / "eval.json"
    assert main(["eval", "vae", "--checkpoint", str(tuned), "--dataset", str(path), "--pairs", "2",
                 "--device", "cpu", "--threads", "1", "--json", str(out), "--update-card"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["genres"] == ["celtic", "folk"]
    ood = metrics["out_of_domain"]
    assert set(ood["collections"]) == {"ood_x"} and ood["pooled"]["windows"] > 1
    assert 0.0 <= ood["collections"]["ood_x"]["sampled"] <= 1.0
    assert "out of domain: ood_x" in capsys.readouterr().out
    card = yaml.safe_load(tuned.with_suffix(".yaml").read_text())
    assert card["metrics"]["out_of_domain"]["macro"] == ood["macro"]
    # measuring a trained genre as "out of domain" is refused
    assert main(["eval", "vae", "--checkpoint", str(tuned), "--dataset", str(path),
                 "--ood-genre", "folk"]) == 2


def test_nucleus_sampling_keeps_the_most_likely_tokens() -> None:
    import torch

    from musebridge.models.continuation.wavenet import MelodyWaveNet

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    drawn = {int(MelodyWaveNet._choose(logits, 1.0, generator, top_p=0.75)) for _ in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.75: the tail is never drawn
    drawn = {int(MelodyWaveNet._choose(logits, 1.0, generator, top_p=0.1)) for _ in range(50)}
    assert drawn == {0}
    drawn = {int(MelodyWaveNet._choose(logits, 1.0, generator)) for _ in range(400)}
    assert drawn == {0, 1, 2, 3}


def test_continue_eval_reports_out_of_domain_and_stores_sampling(tmp_path, capsys) -> None:
    path, _ = _dataset(tmp_path)
    export = tmp_path / "wavenet_toy.pt"
    assert main(["train", "continue", "--model", "wavenet", "--data", str(path), "--genres", "folk", "celtic",
                 "--out-dir", str(tmp_path / "w"), "--steps", "2", "--batch-size", "4", "--window-bars", "4",
                 "--channels", "4", "--blocks", "1", "--no-progress", "--export", str(export)]) == 0
    out = tmp_path / "eval.json"
    args = ["eval", "continue", "--checkpoint", str(export), "--data", str(path), "--call-bars", "2",
            "--bars", "2", "--windows", "4", "--json", str(out)]
    assert main([*args, "--split", "valid", "--sampling-temperature", "0.8", "--top-p", "0.9",
                 "--copy-weight", "0.3", "--copy-bars", "4", "--store-sampling"]) == 0
    from musebridge.models.continuation.phrase_model import ContinuePhraseModel

    model = ContinuePhraseModel.from_checkpoint(export)
    assert (model.temperature_scale, model.top_p, model.copy_weight, model.copy_bars) == (0.8, 0.9, 0.3, (4,))
    assert yaml.safe_load(export.with_suffix(".yaml").read_text())["sampling"]["top_p"] == 0.9
    assert main([*args, "--update-card"]) == 0
    result = json.loads(out.read_text())
    assert result["genres"] == ["celtic", "folk"] and result["out_of_domain"]["genres"] == ["ood_x"]
    entry = result["out_of_domain"]["models"]["wavenet:wavenet_toy"]
    assert entry["sampling"] == {"temperature": 0.8, "top_p": 0.9, "copy_weight": 0.3, "copy_bars": [4]}
    assert entry["likelihood"]["nll_per_note"] > entry["likelihood"]["nll"] > 0
    card = yaml.safe_load(export.with_suffix(".yaml").read_text())
    assert card["metrics"]["out_of_domain"]["windows"] == result["out_of_domain"]["windows"]
    assert "out of domain (never trained on): ood_x" in capsys.readouterr().out
    assert main([*args, "--ood-genres", "folk"]) == 2
    assert main([*args, "--top-p", "0"]) == 2
    assert main([*args, "--copy-weight", "1"]) == 2


def test_copy_rates_count_exact_repeats_bars_back() -> None:
    from musebridge.models.continuation.diagnostics import copy_rates

    bar = np.array([40, 0, 0, 0, 42, 0, 1, 0, 44, 0, 0, 0, 45, 0, 0, 0])
    repeated = np.tile(bar, 4)[None]  # 4 equal bars: call = 2 bars, answer = 2 bars
    rates = copy_rates(repeated, answer_from=32, lags=(16, 32, 8))
    assert rates[16] == 1.0 and rates[32] == 1.0 and rates[8] == 0.0
    varied = repeated.copy()
    varied[0, 48] = 50  # one answer note-on of 8 changed: it and nothing else stops repeating
    assert copy_rates(varied, 32, (16,))[16] == pytest.approx(7 / 8)


def test_bar_cache_mixes_in_the_tokens_bars_back() -> None:
    import torch

    from musebridge.models.continuation.wavenet import MelodyWaveNet, WaveNetConfig, bar_cache

    history = torch.arange(64).remainder(90).unsqueeze(0)  # 4 bars of 16 steps: tokens 0..63
    cache = bar_cache(history, 16)
    assert cache is not None and cache.shape == (1, 90)
    assert {int(i) for i in cache[0].nonzero()} == {48, 32, 0}  # 1, 2 and 4 bars back
    torch.testing.assert_close(cache.sum(), torch.tensor(1.0))
    assert bar_cache(history[:, :10], 16) is None
    torch.manual_seed(0)
    model = MelodyWaveNet(WaveNetConfig(residual_channels=8, skip_channels=8, blocks=1, layers_per_block=3))
    call = torch.randint(2, 90, (2, 40))
    kwargs = {"temperature": 1.0, "top_p": 0.9, "cache_weight": 0.6}
    cached = model.generate(call, 40, 16, generator=torch.Generator().manual_seed(3), **kwargs)
    naive = model.generate_naive(call, 40, 16, generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(cached, naive)  # the Fast WaveNet path mixes the same cache
    almost_copy = model.generate(call, 40, 16, generator=torch.Generator().manual_seed(3), temperature=1.0,
                                 cache_weight=0.999)
    everything = torch.cat([call, almost_copy], dim=1)
    assert (everything[:, 56:] == everything[:, 40:-16]).float().mean() > 0.3  # bar repeats appear
