"""Genre transfer around the CycleGAN: metrics (S, content kept), the PhraseModel adapter, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musebridge.core.model_protocol import ModelRequest, PhraseModel
from musebridge.core.music import Meter, Note, Phrase
from musebridge.models.cyclegan.eval import content_kept, evaluate, onsets, transfer_strength
from musebridge.models.cyclegan.model import CycleGAN, CycleGANConfig, save_cyclegan
from musebridge.models.cyclegan.phrase_model import TransferPhraseModel, create_transfer_model
from musebridge.models.judges.classifier import GenreClassifier

TOY = CycleGANConfig(name="toy", generator_channels=4, residual_blocks=1, discriminator_channels=4)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Identity(torch.nn.Module):
    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        return roll


class OctaveUp(torch.nn.Module):
    """Moves every note 12 pitch columns up (cells pushed past the top are dropped)."""

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(roll)
        out[..., 12:] = roll[..., :-12]
        return out


class Constant(torch.nn.Module):
    """Ignores its input: always the same stock phrase (one long C4)."""

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(roll)
        out[..., 60 - 24] = 1.0
        return out


def rigged(ab: torch.nn.Module, ba: torch.nn.Module) -> CycleGAN:
    model = CycleGAN(TOY)
    model.generator_ab, model.generator_ba = ab, ba
    return model


class PitchClassifier(GenreClassifier):
    """Genre A = mean pitch below MIDI 60, genre B = above (a stand-in with known answers)."""

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        pitches = torch.arange(84, dtype=torch.float32) + 24
        weight = roll.sum(dim=2).squeeze(1)  # (B, 84)
        mean = (weight * pitches).sum(1) / weight.sum(1).clamp(min=1)
        return torch.stack([60 - mean, mean - 60], dim=1)


def test_onsets_and_content_kept() -> None:
    roll = np.zeros((1, 64, 84), dtype=np.uint8)
    roll[0, 0:4, 10] = 1  # one note: one onset
    roll[0, 8:10, 10] = 1  # a second note of the same pitch
    roll[0, 8, 20] = 1
    assert onsets(roll).sum() == 3
    assert content_kept(roll, roll) == (1.0, 1.0)
    moved = np.roll(roll, 12, axis=2)
    assert content_kept(roll, moved) == (0.0, 1.0)  # pitches changed, rhythm kept
    assert content_kept(roll, np.zeros_like(roll)) == (0.0, 0.0)


def test_transfer_strength_extremes() -> None:
    assert transfer_strength(0.9, 0.9, 0.9) == 0.0  # identity: no transfer
    assert transfer_strength(1.0, 0.0, 1.0) == 100.0  # all moved to B and all cycled back
    assert transfer_strength(1.0, 0.0, 0.0) == 50.0  # moved but not recoverable


def test_transfer_strength_pins_the_papers_formula_on_hand_made_numbers() -> None:
    # S_A->B = 1/2 [(P_A(x_A) - P_A(x^)) + (P_A(x~_A) - P_A(x^))] x 100 (both terms, each counted once)
    assert transfer_strength(0.9, 0.3, 0.8) == pytest.approx(55.0)  # 1/2 (0.6 + 0.5)
    assert transfer_strength(0.8, 0.5, 0.6) == pytest.approx(20.0)  # 1/2 (0.3 + 0.1)
    # a transfer that moves *toward* the source genre scores below 0 (not clipped)
    assert transfer_strength(0.5, 0.7, 0.5) == pytest.approx(-20.0)
    # not the one-term variant (real - transfer) nor a mean of the three fractions
    assert transfer_strength(0.9, 0.3, 0.5) != pytest.approx(60.0)


class LeaningClassifier(GenreClassifier):
    """Every phrase gets P(genre A) = 0.6: argmax says A for all of them, the mean probability 0.6."""

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        logit = float(np.log(0.6 / 0.4))
        return torch.tensor([[logit, 0.0]]).expand(roll.shape[0], 2)


def test_p_source_is_the_fraction_classified_as_the_source_not_a_mean_probability() -> None:
    low, high = low_and_high_rolls()
    report = evaluate(rigged(Identity(), Identity()), LeaningClassifier(), ("low", "high"), low, high)
    # as the official code counts argmax hits: all A phrases count as A (1.0, not 0.6), no B phrase as B
    assert report.p_source["low->high"] == {"real": 1.0, "transfer": 1.0, "cycle": 1.0}
    assert report.p_source["high->low"] == {"real": 0.0, "transfer": 0.0, "cycle": 0.0}
    assert report.classifier_accuracy == 0.5


def low_and_high_rolls() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    low = np.zeros((6, 64, 84), dtype=np.uint8)
    high = np.zeros((6, 64, 84), dtype=np.uint8)
    for i in range(6):
        low[i, rng.integers(0, 64, 8), rng.integers(20, 30, 8)] = 1  # MIDI 44..53
        high[i, rng.integers(0, 64, 8), rng.integers(45, 55, 8)] = 1  # MIDI 69..78
    return low, high


def test_evaluate_identity_scores_zero_and_octave_shift_scores_full() -> None:
    low, high = low_and_high_rolls()
    classifier = PitchClassifier()
    identity = evaluate(rigged(Identity(), Identity()), classifier, ("low", "high"), low, high)
    assert identity.classifier_accuracy == 1.0
    assert identity.s_tot == 0.0
    assert identity.onsets_kept == {"low->high": 1.0, "high->low": 1.0}

    class OctaveDown(torch.nn.Module):
        def forward(self, roll: torch.Tensor) -> torch.Tensor:
            out = torch.zeros_like(roll)
            out[..., :-24] = roll[..., 24:]
            return out

    class TwoOctavesUp(torch.nn.Module):
        def forward(self, roll: torch.Tensor) -> torch.Tensor:
            out = torch.zeros_like(roll)
            out[..., 24:] = roll[..., :-24]
            return out

    shifted = evaluate(rigged(TwoOctavesUp(), OctaveDown()), classifier, ("low", "high"), low, high)
    assert shifted.s_a_to_b == 100.0 and shifted.s_b_to_a == 100.0 and shifted.s_tot == 100.0
    assert shifted.onsets_kept["low->high"] == 0.0 and shifted.onset_steps_kept["low->high"] == 1.0
    stock = evaluate(rigged(Constant(), Constant()), classifier, ("low", "high"), low, high)
    assert stock.onset_steps_kept["low->high"] < 0.2  # a stock phrase does not keep the rhythm
    assert "S_tot" in "\n".join(shifted.lines())


def melody(meter: Meter | None = None, bars: int = 4) -> Phrase:
    meter = meter or Meter(4, 4)
    notes = tuple(Note(60 + (i % 5), 40 + i, i * 1.0, 0.5) for i in range(int(bars * meter.beats_per_bar)))
    return Phrase(notes, bars, meter)


def test_phrase_model_routes_target_genre_and_keeps_input_velocities() -> None:
    model = TransferPhraseModel([(rigged(Identity(), OctaveUp()), ("folk", "celtic"))])
    assert isinstance(model, PhraseModel)
    assert model.genres == ("celtic", "folk")
    phrase = melody()
    to_celtic = model.generate(ModelRequest("transfer", phrase, 4, genre="celtic"))  # folk->celtic: identity
    assert [(n.pitch, n.velocity, n.start, n.duration) for n in to_celtic.notes] == [
        (n.pitch, n.velocity, n.start, n.duration) for n in phrase.notes
    ]
    to_folk = model.generate(ModelRequest("transfer", phrase, 4, genre="Folk"))  # celtic->folk: octave up
    assert [n.pitch for n in to_folk.notes] == [n.pitch + 12 for n in phrase.notes]
    assert [n.velocity for n in to_folk.notes] == [n.velocity for n in phrase.notes]  # from the input
    with pytest.raises(ValueError, match="known: celtic, folk"):
        model.generate(ModelRequest("transfer", phrase, 4, genre="jazz"))
    with pytest.raises(ValueError):
        model.generate(ModelRequest("transfer", phrase, 4, genre=""))
    with pytest.raises(ValueError):
        model.generate(ModelRequest("continue", phrase, 4, genre="folk"))


def test_phrase_model_pads_short_phrases_and_handles_three_four_and_six_eight() -> None:
    model = TransferPhraseModel([(rigged(Identity(), Identity()), ("folk", "celtic"))])
    short = melody(bars=2)
    out = model.generate(ModelRequest("transfer", short, 2, genre="celtic"))
    assert out.bars == 2 and len(out.notes) == len(short.notes)
    for meter in (Meter(3, 4), Meter(6, 8)):
        phrase = melody(meter, bars=4)
        out = model.generate(ModelRequest("transfer", phrase, 4, genre="celtic"))
        assert out.meter == meter and out.bars == 4
        assert [(n.pitch, n.start) for n in out.notes] == [(n.pitch, n.start) for n in phrase.notes]
    eight = melody(bars=8)  # two rolls
    out = model.generate(ModelRequest("transfer", eight, 8, genre="celtic"))
    assert [(n.pitch, n.start) for n in out.notes] == [(n.pitch, n.start) for n in eight.notes]


def test_a_batch_of_tracks_is_one_forward_pass_per_genre_and_answers_as_alone() -> None:
    """Issue 11: jobs of many tracks due at one bar line run through the generator together."""

    class Counting(OctaveUp):
        calls: list[int] = []

        def forward(self, roll: torch.Tensor) -> torch.Tensor:
            Counting.calls.append(roll.shape[0])
            return super().forward(roll)

    model = TransferPhraseModel([(rigged(Identity(), Counting()), ("folk", "celtic"))])
    requests = [ModelRequest("transfer", melody(bars=b), b, genre=g)
                for b, g in ((1, "folk"), (4, "folk"), (8, "celtic"), (2, "folk"))]
    requests.append(ModelRequest("transfer", Phrase((), 4), 4, genre="folk"))  # silence: no roll
    alone = [model.generate(r) for r in requests]
    Counting.calls.clear()
    together = model.generate_batch(requests)
    assert together == alone
    assert Counting.calls == [3]  # the three folk phrases' rolls in one forward pass


def test_silence_stays_silent_even_from_a_model_that_invents_notes() -> None:
    model = TransferPhraseModel([(rigged(Constant(), Constant()), ("folk", "celtic"))])
    out = model.generate(ModelRequest("transfer", Phrase((), 4), 4, genre="celtic"))
    assert out.notes == () and out.bars == 4


def test_factory_loads_checkpoints_and_names_a_missing_one(tmp_path) -> None:
    from musebridge.errors import UserError

    path = tmp_path / "cyclegan_folk_celtic.pt"
    save_cyclegan(CycleGAN(TOY), path, ("folk", "celtic"))
    model = create_transfer_model("cpu", {"checkpoint": str(path)})
    out = model.generate(ModelRequest("transfer", melody(), 4, genre="celtic"))
    assert out.bars == 4 and all(0 <= n.start < 16 for n in out.notes)
    with pytest.raises(UserError, match="missing.pt"):
        create_transfer_model("cpu", {"checkpoint": str(tmp_path / "missing.pt")})
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a musebridge CycleGAN|cannot read"):
        create_transfer_model("cpu", {"checkpoint": str(tmp_path / "bad.pt")})


def write_midi(
    path, notes: list[tuple[int, int, float, float]], numerator: int = 4, denominator: int = 4
) -> None:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, 0.0))
    piano = pretty_midi.Instrument(program=0)
    for pitch, velocity, start, duration in notes:  # beats at 120 BPM: 0.5 s each
        piano.notes.append(pretty_midi.Note(velocity, pitch, start * 0.5, (start + duration) * 0.5))
    midi.instruments.append(piano)
    midi.write(str(path))


def test_transfer_command_writes_the_file_and_fails_cleanly(tmp_path, capsys) -> None:
    import pretty_midi

    from musebridge.cli import main

    checkpoint = tmp_path / "cyclegan_folk_celtic.pt"
    save_cyclegan(CycleGAN(TOY), checkpoint, ("folk", "celtic"))
    source = tmp_path / "in.mid"
    write_midi(source, [(60 + i % 7, 50 + i, float(i), 0.5) for i in range(24)], 3, 4)  # 8 bars of 3/4
    out = tmp_path / "out.mid"
    args = ["transfer", str(source), "--to", "celtic", "-o", str(out), "--checkpoint", str(checkpoint)]
    assert main(args) == 0
    written = pretty_midi.PrettyMIDI(str(out))
    assert written.time_signature_changes[0].numerator == 3
    assert all(n.end <= 24 * 0.5 + 1e-6 for n in written.instruments[0].notes)

    missing = tmp_path / "nothing.mid"
    bad_out = tmp_path / "bad.mid"
    assert (
        main(
            ["transfer", str(missing), "--to", "celtic", "-o", str(bad_out), "--checkpoint", str(checkpoint)]
        )
        == 2
    )
    assert (
        main(["transfer", str(source), "--to", "jazz", "-o", str(bad_out), "--checkpoint", str(checkpoint)])
        == 2
    )
    (tmp_path / "junk.mid").write_bytes(b"MThd nonsense")
    assert main(["transfer", str(tmp_path / "junk.mid"), "--to", "celtic", "-o", str(bad_out)]) == 2
    assert not bad_out.exists()
    assert not list(tmp_path.glob(".*.tmp"))
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("musebridge transfer: error:") for line in errors)
    assert "known: celtic, folk" in errors[1]


def test_train_and_eval_transfer_commands_on_midi_folders(tmp_path, capsys) -> None:
    import json

    import yaml

    from musebridge.cli import main

    for genre, low in (("lowland", 48), ("highland", 72)):
        folder = tmp_path / genre
        folder.mkdir()
        for i in range(30):  # 8 bars of 4/4 each: two 4-bar phrases a file
            write_midi(
                folder / f"{genre}{i:02d}.mid", [(low + (i + k) % 9, 70, k * 1.0, 1.0) for k in range(32)]
            )
    (tmp_path / "lowland" / "broken.mid").write_bytes(b"not midi")  # skipped and counted, never fatal
    out = tmp_path / "ckpt"
    common = ["--a", str(tmp_path / "lowland"), "--b", str(tmp_path / "highland")]
    tiny = ["--steps", "2", "--batch-size", "2", "--classifier-epochs", "1", "-o", str(out)]
    run = ["--run-dir", str(tmp_path / "run")]
    assert main(["train", "transfer", *common, *tiny, *run]) == 0
    checkpoint = out / "cyclegan_lowland_highland.pt"
    classifier = out / "genre_classifier_lowland_highland.pt"
    first = classifier.read_bytes()
    again = tmp_path / "again"  # the same seed gives the same classifier, initial weights included
    assert main(["train", "transfer", *common, *tiny[:-1], str(again), "--run-dir", str(tmp_path / "r")]) == 0
    weights = [torch.load(path, weights_only=True)["state"] for path in (classifier, again / classifier.name)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    capsys.readouterr()
    resumed = ["--steps", "3", *tiny[2:], *run, "--resume"]  # the run goes on; its classifier stays
    assert main(["train", "transfer", *common, *resumed]) == 0
    assert classifier.read_bytes() == first and "keeping" in capsys.readouterr().out
    card = yaml.safe_load(checkpoint.with_suffix(".yaml").read_text())
    assert card["genres"] == ["lowland", "highland"] and card["config"]["name"] == "cpu_small"
    assert card["data"]["train_phrases_balanced_each"] > 0
    assert (out / "genre_classifier_lowland_highland.yaml").is_file()

    report = tmp_path / "eval.json"
    options = ["--split", "valid", "--json", str(report), "--update-card"]
    assert main(["eval", "transfer", str(checkpoint), *common, *options]) == 0
    figures = json.loads(report.read_text())
    for key in ("classifier_accuracy", "s_a_to_b", "s_b_to_a", "s_tot", "onsets_kept"):
        assert key in figures
    assert "S_tot" in yaml.safe_load(checkpoint.with_suffix(".yaml").read_text())["metrics"]
    classifier_card = yaml.safe_load((out / "genre_classifier_lowland_highland.yaml").read_text())
    assert set(classifier_card["metrics"]["accuracy_per_genre"]) == {"lowland", "highland"}
    printed = capsys.readouterr().out
    assert "S_tot" in printed and "classifier accuracy" in printed

    assert (
        main(["train", "transfer", "--a", str(tmp_path / "nowhere"), "--b", str(tmp_path / "highland")]) == 2
    )
    assert main(["eval", "transfer", str(tmp_path / "missing.pt")]) == 2
    # the "full" model takes its third genre from the dataset: not with two folders (one clear line)
    capsys.readouterr()
    assert main(["train", "transfer", *common, *tiny, "--kind", "full"]) == 2  # before any training
    assert "--kind full needs --pair" in capsys.readouterr().err
    assert main(["train", "transfer", *common, *tiny, "--ema", "1.5"]) == 2


def test_transfer_command_keeps_drums_tempo_and_the_program_of_the_tracks_it_acts_on(
    tmp_path, capsys
) -> None:
    """Issue 12: a 90 BPM file of two string tracks (program 48) and drums comes out at 90 BPM, with the
    drums byte for byte, the model's notes on the strings' channels and program, and a summary that
    names what was merged and what was left."""
    from smf_builders import TPB, chunk_bodies, conductor, notes_track, smf

    from musebridge.cli import main
    from musebridge.smf import read_midi

    checkpoint = tmp_path / "cyclegan_folk_celtic.pt"
    save_cyclegan(CycleGAN(TOY), checkpoint, ("folk", "celtic"))
    violins = notes_track([(67 + i % 5, 80, i * TPB, (i + 1) * TPB) for i in range(16)], 0, 48, "Violins")
    violas = notes_track([(55 + i % 3, 60, i * TPB, (i + 2) * TPB) for i in range(0, 16, 2)], 1, 48, "Violas")
    drums = notes_track([(36, 100, i * TPB, i * TPB + 50) for i in range(16)], 9, None, "Drums")
    data = smf([conductor([(0, 90.0)]), violins, violas, drums])
    source, out = tmp_path / "in.mid", tmp_path / "out.mid"
    source.write_bytes(data)
    assert (
        main(["transfer", str(source), "--to", "celtic", "-o", str(out), "--checkpoint", str(checkpoint)])
        == 0
    )
    written = read_midi(out, channels=True)
    assert written.bpm_at(0) == pytest.approx(90.0, abs=1e-3)
    assert {(p.channel, p.program) for p in written.parts(pitched_only=True)} <= {(0, 48), (1, 48)}
    assert chunk_bodies(out.read_bytes())[3] == chunk_bodies(data)[3]  # the drums, untouched
    printed = capsys.readouterr().out
    assert '2 "Violins"' in printed and '3 "Violas"' in printed and "(merged)" in printed
    assert 'left as they were: 4 "Drums" (drums, channel 10, 16 notes)' in printed


def test_transfer_warns_when_a_phrase_with_notes_comes_back_silent(tmp_path, monkeypatch, capsys) -> None:
    """A model may answer a played passage with no notes (the UMT did, on a real file): the file is
    written, and stderr says which passage came back silent."""
    from test_shipped_checkpoints import A_MELODY, write_melody

    from musebridge.cli import main
    from musebridge.core.music import Phrase
    from musebridge.models.cyclegan import phrase_model

    class Silent:
        name, genres = "silent", ("folk",)

        def generate(self, request):
            return Phrase((), request.bars, request.phrase.meter)

    monkeypatch.setattr(phrase_model, "create_transfer_model", lambda device, options: Silent())
    melody = write_melody(tmp_path / "in.mid", A_MELODY)
    assert main(["transfer", str(melody), "--to", "folk", "-o", str(tmp_path / "out.mid")]) == 0
    captured = capsys.readouterr()
    assert "0 notes out" in captured.out
    assert "1 of 1 phrase(s) with notes came back without any (silent into folk): from beat 0" in captured.err
