"""The continue PhraseModel adapter, its registry factories and the `musebridge continue` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from musebridge.cli import main
from musebridge.core.model_protocol import ModelRequest, PhraseModel
from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError
from musebridge.models.continuation import crnngan, wavenet
from musebridge.models.continuation.phrase_model import (
    ContinuePhraseModel,
    crnngan_factory,
    load_checkpoint,
    update_card_metrics,
    wavenet_factory,
    write_card,
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("continue_ckpt")
    torch.manual_seed(0)
    toy_wavenet = wavenet.MelodyWaveNet(
        wavenet.WaveNetConfig(
            residual_channels=8, skip_channels=8, blocks=1, layers_per_block=4, num_genres=2
        )
    )
    toy_gan = crnngan.CRNNGAN(crnngan.CRNNGANConfig(generator_size=8, discriminator_size=8))
    with torch.no_grad():  # make the untrained generator sound: intensity bias up, a quarter note a step
        toy_gan.generator.output.bias[2::4] = 0.7
        toy_gan.generator.output.bias[3::4] = 1.0
    paths = {"wavenet": folder / "wavenet_toy.pt", "crnngan": folder / "crnngan_toy.pt"}
    torch.save(wavenet.checkpoint_dict(toy_wavenet, ["celtic", "folk"]), paths["wavenet"])
    torch.save(crnngan.checkpoint_dict(toy_gan, ["celtic", "folk"]), paths["crnngan"])
    return paths


def _call(meter: Meter | None = None, bars: int = 2) -> Phrase:
    meter = meter or Meter(4, 4)
    step = meter.beats_per_bar * bars / 8
    notes = tuple(Note(60 + (i * 2) % 7, 70 + i, i * step, step) for i in range(8))
    return Phrase(notes=notes, bars=bars, meter=meter)


@pytest.mark.parametrize("kind", ["wavenet", "crnngan"])
def test_answers_have_the_requested_bars_and_are_repeatable(checkpoints, kind: str) -> None:
    model = ContinuePhraseModel.from_checkpoint(checkpoints[kind])
    assert isinstance(model, PhraseModel) and model.modes == frozenset({"continue"})
    request = ModelRequest("continue", _call(), bars=3, genre="folk", seed=4)
    answer = model.generate(request)
    assert answer.bars == 3 and answer.meter == Meter(4, 4)
    assert all(0 <= n.start and n.end <= answer.length_beats + 1e-9 for n in answer.notes)
    assert answer == model.generate(request)
    assert answer.notes  # the toy models do play something


@pytest.mark.parametrize("kind", ["wavenet", "crnngan"])
def test_other_meters_and_empty_calls(checkpoints, kind: str) -> None:
    model = ContinuePhraseModel.from_checkpoint(checkpoints[kind])
    answer = model.generate(ModelRequest("continue", _call(Meter(7, 8)), bars=1, seed=1))
    assert answer.meter == Meter(7, 8) and answer.length_beats == 3.5
    empty = model.generate(ModelRequest("continue", Phrase(bars=2), bars=2, seed=1))
    assert empty.bars == 2


def test_wavenet_answer_takes_velocities_from_the_call(checkpoints) -> None:
    model = ContinuePhraseModel.from_checkpoint(checkpoints["wavenet"])
    answer = model.generate(ModelRequest("continue", _call(), bars=2, seed=2))
    assert {n.velocity for n in answer.notes} <= {n.velocity for n in _call().notes}


def test_bad_requests_raise_value_errors(checkpoints) -> None:
    model = ContinuePhraseModel.from_checkpoint(checkpoints["wavenet"])
    with pytest.raises(ValueError, match="continue"):
        model.generate(ModelRequest("transfer", _call(), bars=2))
    with pytest.raises(ValueError, match="bars"):
        model.generate(ModelRequest("continue", _call(), bars=0))
    with pytest.raises(ValueError, match="temperature"):
        model.generate(ModelRequest("continue", _call(), bars=1, temperature=float("nan")))
    with pytest.raises(ValueError, match="sixteenth"):
        model.generate(ModelRequest("continue", Phrase(bars=1, meter=Meter(1, 32)), bars=1))


def test_generate_restores_the_thread_count(checkpoints) -> None:
    model = ContinuePhraseModel.from_checkpoint(checkpoints["crnngan"])
    before = torch.get_num_threads()
    model.generate(ModelRequest("continue", _call(), bars=1))
    assert torch.get_num_threads() == before


def test_factories_and_checkpoint_errors(checkpoints, tmp_path) -> None:
    assert wavenet_factory("cpu", {"checkpoint": str(checkpoints["wavenet"])}).kind == "wavenet"
    assert crnngan_factory("cpu", {"checkpoint": str(checkpoints["crnngan"])}).kind == "crnngan"
    with pytest.raises(UserError, match="not found"):
        wavenet_factory("cpu", {"checkpoint": str(tmp_path / "missing.pt")})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(junk)
    with pytest.raises(UserError, match="cannot read"):
        crnngan_factory("cpu", {"checkpoint": str(junk)})


def test_model_card_written_and_updated(checkpoints, tmp_path) -> None:
    import yaml

    path = tmp_path / "card.pt"
    card = write_card(path, "wavenet", {"blocks": 1}, ["folk"], {"options": {"seed": 3}, "steps": 10})
    assert yaml.safe_load(card.read_text())["seed"] == 3
    update_card_metrics(path, {"nll": 1.5})
    loaded = yaml.safe_load(card.read_text())
    assert loaded["metrics"] == {"nll": 1.5} and loaded["steps"] == 10


def test_continue_command_writes_call_and_answer(checkpoints, tmp_path, capsys) -> None:
    import pretty_midi

    source = tmp_path / "call.mid"
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    track = pretty_midi.Instrument(0)
    track.notes += [pretty_midi.Note(90, 60 + i, i * 0.5, i * 0.5 + 0.5) for i in range(8)]  # 2 bars at 120
    midi.instruments.append(track)
    midi.write(str(source))
    out = tmp_path / "out.mid"
    args = [
        "continue",
        str(source),
        "--bars",
        "2",
        "-o",
        str(out),
        "--checkpoint",
        str(checkpoints["wavenet"]),
    ]
    assert main(args) == 0
    written = pretty_midi.PrettyMIDI(str(out))
    starts = [n.start for n in written.instruments[0].notes]
    assert min(starts) == pytest.approx(0.0) and max(starts) >= 4.0  # the call, then the answer after bar 2
    assert "wavenet answer (2 bars" in capsys.readouterr().out


def test_continue_command_errors_are_one_line(checkpoints, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    out = str(tmp_path / "o.mid")
    assert main(["continue", str(bad), "-o", out, "--checkpoint", str(checkpoints["wavenet"])]) == 2
    assert "not a readable MIDI file" in capsys.readouterr().err
    assert main(["continue", str(bad), "-o", out, "--bars", "0"]) == 2
    assert main(["continue", str(tmp_path / "none.mid"), "-o", out]) == 2
    assert "no such file" in capsys.readouterr().err


def test_wavenet_batch_generates_calls_of_one_length_together_and_answers_as_alone(checkpoints) -> None:
    """Issue 11: the answers of many tracks due at one bar line in one autoregressive pass. With
    temperature 0 (argmax) a batched answer is the one the model gives alone."""
    model = ContinuePhraseModel.from_checkpoint(checkpoints["wavenet"])
    requests = [
        ModelRequest("continue", _call(bars=1), bars=1, temperature=0.0, genre="folk", seed=1),
        ModelRequest("continue", _call(bars=1).transposed(2), bars=1, temperature=0.0, genre="folk", seed=2),
        ModelRequest("continue", _call(bars=2), bars=1, temperature=0.0, genre="folk", seed=3),
        ModelRequest("continue", _call(bars=1), bars=2, temperature=0.0, genre="folk", seed=4),
        ModelRequest("continue", Phrase(bars=1), bars=1, temperature=0.0, seed=5),
    ]
    alone = [model.generate(r) for r in requests]
    passes: list[int] = []
    inner = model.model.generate

    def counting(call: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        passes.append(call.shape[0])
        return inner(call, *args, **kwargs)

    model.model.generate = counting  # type: ignore[method-assign]
    assert model.generate_batch(requests) == alone
    # the three calls the model sees as one bar (the toy's receptive field keeps the last bar of the
    # 2-bar call) with 1-bar answers went together; the 2-bar answer and the empty call alone
    assert sorted(passes) == [1, 1, 3]
    with pytest.raises(ValueError):
        model.generate_batch([requests[0], ModelRequest("transfer", _call(), bars=1)])


@pytest.mark.parametrize(
    ("meters", "notes", "answer_beat"),
    [
        # the call's last note (beat 12) is held to beat 20, past its bar: the answer waits for it
        ([(0, 4, 4)], [(60, 0, 4), (62, 4, 8), (64, 8, 12), (65, 12, 20)], 20.0),
        # 3/4 at beat 6 cuts the second 4/4 bar to 2 beats: the next bar line is beat 6, not 8
        ([(0, 4, 4), (6, 3, 4)], [(60, 0, 2), (62, 2, 4), (64, 4, 6)], 6.0),
    ],
)
def test_the_answer_starts_on_the_files_first_bar_line_after_the_calls_last_sounding_note(
    checkpoints, tmp_path, capsys, meters, notes, answer_beat
) -> None:
    from smf_builders import TPB, conductor, notes_track, smf

    source = tmp_path / "call.mid"
    ticks = [(pitch, 80, start * TPB, end * TPB) for pitch, start, end in notes]
    source.write_bytes(smf([conductor(meters=[(b * TPB, n, d) for b, n, d in meters]), notes_track(ticks)]))
    out = tmp_path / "out.mid"
    checkpoint = str(checkpoints["wavenet"])
    args = ["continue", str(source), "--bars", "1", "-o", str(out), "--checkpoint", checkpoint]
    assert main([*args, "--seed", "3"]) == 0
    assert f"from beat {answer_beat:g};" in capsys.readouterr().out
