"""MusicVAE adapter (PhraseModel) and the interpolate / sample / train / eval commands, on toy checkpoints."""

from __future__ import annotations

import pretty_midi
import pytest
import torch

from musebridge.cli import main
from musebridge.core.model_protocol import ModelRequest, PhraseModel
from musebridge.core.music import Meter, Note, Phrase
from musebridge.models.musicvae.model import MusicVAE, MusicVAEConfig, checkpoint_dict
from musebridge.models.musicvae.phrase_model import MusicVAEPhraseModel, create_musicvae, looped

TOY = MusicVAEConfig(z_size=8, encoder_size=16, decoder_size=16, decoder_layers=1, bars=2)


def toy_model(seed: int = 0, config: MusicVAEConfig = TOY) -> MusicVAE:
    torch.manual_seed(seed)
    model = MusicVAE(config).eval()
    # bias the output towards note-ons so that decoded phrases have notes to carry velocities
    with torch.no_grad():
        model.decoder.to_logits.bias[2:] += 3.0
    return model


@pytest.fixture()
def checkpoint(tmp_path):
    path = tmp_path / "toy.pt"
    torch.save(checkpoint_dict(toy_model(), genres=["folk"], training={}), path)
    return path


def write_midi(path, notes, tempo=100.0) -> None:
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    track = pretty_midi.Instrument(0)
    spb = 60.0 / tempo
    for pitch, velocity, start, duration in notes:
        track.notes.append(pretty_midi.Note(velocity, pitch, start * spb, (start + duration) * spb))
    midi.instruments.append(track)
    midi.write(str(path))


def phrase(velocity: int, pitch: int = 60, bars: int = 2) -> Phrase:
    notes = tuple(Note(pitch + (i % 5), velocity, i * 1.0, 0.5) for i in range(bars * 4))
    return Phrase(notes, bars, Meter())


def test_adapter_is_a_phrase_model_and_interpolates_with_velocities() -> None:
    vae = MusicVAEPhraseModel(toy_model())
    assert isinstance(vae, PhraseModel) and vae.modes == {"interpolate", "sample"}
    a, b = phrase(30, 60), phrase(110, 67)
    at_a, middle, at_b = vae.interpolate_phrases(a, b, [0.0, 0.5, 1.0], bars=2)
    for result in (at_a, middle, at_b):
        assert result.bars == 2 and result.notes
    assert {n.velocity for n in at_a.notes} == {30}
    assert {n.velocity for n in at_b.notes} == {110}
    assert {n.velocity for n in middle.notes} == {70}
    request = ModelRequest("interpolate", phrase=a, bars=2, position=0.5, clip_a=a, clip_b=b)
    assert vae.generate(request) == middle


def test_a_batch_of_tracks_interpolates_in_one_encode_and_one_decode_and_answers_as_alone() -> None:
    """Issue 11: interpolations of many tracks due at one bar line through the model together (the
    adapter decodes with temperature 0 by default, so a batched answer is the one given alone)."""
    vae = MusicVAEPhraseModel(toy_model())
    clips = [(phrase(30, 60), phrase(110, 67)), (phrase(50, 62), phrase(90, 55)),
             (phrase(70, 64), phrase(70, 60))]
    requests = [ModelRequest("interpolate", phrase=a, bars=2, position=p, clip_a=a, clip_b=b)
                for (a, b), p in zip(clips, (0.2, 0.5, 0.9), strict=True)]
    requests.append(ModelRequest("interpolate", phrase=clips[0][0], bars=1, position=0.5,
                                 clip_a=clips[0][0], clip_b=clips[0][1]))  # another length: alone
    alone = [vae.generate(r) for r in requests]
    decodes: list[int] = []
    inner = vae.model.decode

    def counting(z: torch.Tensor, *args: object) -> torch.Tensor:
        decodes.append(z.shape[0])
        return inner(z, *args)

    vae.model.decode = counting  # type: ignore[method-assign]
    assert vae.generate_batch(requests) == alone
    assert sorted(decodes) == [1, 3]  # three 2-bar interpolations decoded together (one window each)


def test_adapter_handles_lengths_and_meters() -> None:
    vae = MusicVAEPhraseModel(toy_model())
    a = phrase(80, bars=1)
    four = vae.interpolate_phrases(a, phrase(90), [0.3], bars=4)[0]
    assert four.bars == 4 and max(n.end for n in four.notes) <= 16.0
    waltz = Phrase((Note(62, 70, 0.0, 1.0),), 1, Meter(3, 4))
    three = vae.interpolate_phrases(waltz, waltz, [0.5], bars=3)[0]
    assert three.meter == Meter(3, 4) and three.bars == 3 and max(n.end for n in three.notes) <= 9.0
    empty = Phrase((), 2, Meter())
    assert vae.interpolate_phrases(empty, empty, [0.5], bars=2)[0].bars == 2
    assert vae.interpolate_phrases(a, a, [], bars=2) == []


def test_adapter_sampling_is_seeded() -> None:
    vae = MusicVAEPhraseModel(toy_model())
    request = ModelRequest("sample", phrase=phrase(45), bars=2, temperature=1.0, seed=5)
    first, again = vae.generate(request), vae.generate(request)
    assert first == again and first.bars == 2
    assert {n.velocity for n in first.notes} == {45}
    other = vae.generate(ModelRequest("sample", phrase=phrase(45), bars=2, temperature=1.0, seed=6))
    assert other != first
    with pytest.raises(ValueError, match="serves"):
        vae.generate(ModelRequest("transfer", phrase=phrase(45), bars=2))


def test_looped_fills_the_request() -> None:
    one_bar = Phrase((Note(60, 90, 0.0, 1.0), Note(62, 90, 3.5, 1.0)), 1, Meter())
    notes = looped(one_bar, 8.0)
    assert [n.start for n in notes] == [0.0, 3.5, 4.0, 7.5]
    assert notes[1].duration == 0.5  # clipped at the clip's end before looping


def test_factory_options(checkpoint) -> None:
    from musebridge.errors import UserError

    vae = create_musicvae("cpu", {"checkpoint": str(checkpoint), "velocity": 64})
    assert vae.velocity == 64 and vae.info["genres"] == ["folk"]
    with pytest.raises(UserError, match="unknown option"):
        create_musicvae("cpu", {"checkpoint": str(checkpoint), "temperature": 1})
    with pytest.raises(UserError, match="not found"):
        create_musicvae("cpu", {"checkpoint": str(checkpoint) + ".missing"})


def test_interpolate_command_writes_a_then_steps_then_b(tmp_path, checkpoint, capsys) -> None:
    write_midi(tmp_path / "a.mid", [(60 + i, 40, i * 1.0, 0.5) for i in range(8)])
    write_midi(tmp_path / "b.mid", [(72 - i, 100, 8.0 + i * 0.5, 0.5) for i in range(16)])  # starts in bar 3
    out = tmp_path / "out.mid"
    code = main(["interpolate", str(tmp_path / "a.mid"), str(tmp_path / "b.mid"), "--steps", "3",
                 "--checkpoint", str(checkpoint), "--device", "cpu", "-o", str(out)])
    assert code == 0
    midi = pretty_midi.PrettyMIDI(str(out))
    notes = sorted(midi.instruments[0].notes, key=lambda n: n.start)
    seconds_per_bar = 4 * 60.0 / 100.0
    phrase_seconds = 2 * seconds_per_bar
    first = [n for n in notes if n.start < phrase_seconds - 1e-6]
    last = [n for n in notes if n.start >= 4 * phrase_seconds - 1e-6]
    assert [n.pitch for n in first] == list(range(60, 68)) and {n.velocity for n in first} == {40}
    assert [n.pitch for n in last] == [72 - i for i in range(16)]  # B moved to its first bar
    assert last[0].start == pytest.approx(4 * phrase_seconds, abs=1e-3)
    middle = [n for n in notes if phrase_seconds - 1e-6 <= n.start < 4 * phrase_seconds - 1e-6]
    assert middle and all(40 <= n.velocity <= 100 for n in middle)
    assert max(n.end for n in notes) <= 5 * phrase_seconds + 1e-3


@pytest.mark.parametrize("content", [b"", b"MThd garbage", b"\x00" * 100])
def test_corrupt_midi_is_a_one_line_error(tmp_path, checkpoint, capsys, content) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(content)
    write_midi(tmp_path / "b.mid", [(60, 80, 0.0, 1.0)])
    code = main(["interpolate", str(bad), str(tmp_path / "b.mid"), "--checkpoint", str(checkpoint),
                 "-o", str(tmp_path / "o.mid")])
    err = capsys.readouterr().err
    assert code == 2 and "not a readable MIDI" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.mid").exists()


def test_empty_midi_and_missing_checkpoint(tmp_path, checkpoint, capsys) -> None:
    write_midi(tmp_path / "empty.mid", [])
    write_midi(tmp_path / "b.mid", [(60, 80, 0.0, 1.0)])
    code = main(["interpolate", str(tmp_path / "empty.mid"), str(tmp_path / "b.mid"),
                 "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o.mid")])
    assert code == 2 and "no notes" in capsys.readouterr().err
    code = main(["interpolate", str(tmp_path / "b.mid"), str(tmp_path / "b.mid"),
                 "--checkpoint", str(tmp_path / "none.pt"), "-o", str(tmp_path / "o.mid")])
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    code = main(["sample", "--checkpoint", str(tmp_path / "junk.pt"), "-o", str(tmp_path / "o.mid")])
    assert code == 2 and "not a usable MusicVAE checkpoint" in capsys.readouterr().err


def test_sample_command(tmp_path, checkpoint) -> None:
    out = tmp_path / "s.mid"
    code = main(["sample", "--bars", "2", "-n", "3", "--checkpoint", str(checkpoint), "--velocity", "77",
                 "--seed", "1", "-o", str(out)])
    assert code == 0
    notes = pretty_midi.PrettyMIDI(str(out)).instruments[0].notes
    assert notes and {n.velocity for n in notes} == {77}
    assert max(n.end for n in notes) <= 3 * 2 * 2.0 + 1e-3  # 3 phrases x 2 bars x 2 s at 120 BPM
    assert main(["sample", "-n", "0", "--checkpoint", str(checkpoint), "-o", str(out)]) == 2


def test_train_and_eval_commands_on_a_tiny_dataset(tmp_path, capsys) -> None:
    """Through the CLI: a tiny dataset, 4 training steps, export + card, eval + card update."""
    import yaml
    from vae_helpers import tiny_dataset

    dataset = tiny_dataset(tmp_path / "dataset.npz")
    export = tmp_path / "ckpt" / "musicvae_toy.pt"
    code = main(["train", "vae", "--dataset", str(dataset), "--genre", "folk", "--steps", "4",
                 "--batch-size", "8", "--set", "z_size=8", "--set", "encoder_size=16",
                 "--set", "decoder_size=16",
                 "--out-dir", str(tmp_path / "run"), "--export", str(export), "--quiet", "--threads", "1",
                 "--device", "cpu", "--checkpoint-every", "2"])
    assert code == 0
    assert (tmp_path / "run" / "train_curves.png").exists() and (tmp_path / "run" / "run.pt").exists()
    card = yaml.safe_load(export.with_suffix(".yaml").read_text())
    assert card["steps"] == 4 and card["data"]["genres"] == ["folk"]
    assert card["training_command"].startswith("musebridge") and card["config"]["z_size"] == 8
    code = main(["eval", "vae", "--checkpoint", str(export), "--dataset", str(dataset), "--pairs", "3",
                 "--device", "cpu", "--update-card"])
    assert code == 0
    out = capsys.readouterr().out
    assert "teacher-forced" in out and "hamming to A" in out
    card = yaml.safe_load(export.with_suffix(".yaml").read_text())
    assert 0.0 <= card["metrics"]["reconstruction_sampled"] <= 1.0
    assert export.with_suffix(".eval.json").exists()
    assert main(["train", "vae", "--dataset", str(tmp_path / "missing.npz"), "--steps", "1"]) == 2
    assert main(["train", "vae", "--preset", "nope"]) == 2


def test_card_command_has_no_machine_paths(monkeypatch, tmp_path) -> None:
    from musebridge.commands.train import command_line

    monkeypatch.chdir(tmp_path)
    argv = ["musebridge", "train", "vae", "--dataset", "/somewhere/else/folk.npz", "--resume",
            f"--export={tmp_path}/models/x.pt", "--steps", "5", "--init-from", "/elsewhere/runs/old.pt"]
    monkeypatch.setattr("sys.argv", argv)
    assert command_line(drop=("--resume",)) == (
        "musebridge train vae --dataset folk.npz --export=models/x.pt --steps 5 --init-from old.pt"
    )


def test_interpolation_timing_helper() -> None:
    from musebridge.models.musicvae.eval import time_interpolation

    timing = time_interpolation(MusicVAEPhraseModel(toy_model()), steps=8, repeats=3, warmup=1)
    assert timing["steps"] == 8 and timing["repeats"] == 3
    assert 0 < timing["p50_ms"] <= timing["max_ms"]


def test_interpolate_reads_the_track_asked_for(checkpoint, tmp_path) -> None:
    """--track picks the part of A and B the morph starts and ends on (default: every pitched track)."""
    from smf_builders import TPB, conductor, notes_track, smf

    low = [(48 + i, 80, i * TPB, (i + 1) * TPB) for i in range(8)]
    high = [(72 + i, 80, i * TPB, (i + 1) * TPB) for i in range(8)]
    source = tmp_path / "two.mid"
    tracks = [conductor(), notes_track(low, 0, None, "Bass"), notes_track(high, 1, None, "Lead")]
    source.write_bytes(smf(tracks))
    out = tmp_path / "out.mid"
    args = ["interpolate", str(source), str(source), "--steps", "1", "-o", str(out)]
    assert main([*args, "--checkpoint", str(checkpoint), "--track", "Lead"]) == 0
    notes = pretty_midi.PrettyMIDI(str(out)).instruments[0].notes
    first_bars = [n.pitch for n in notes if n.start < 4.0 - 1e-6]
    assert first_bars == [72 + i for i in range(8)]  # A is the lead alone
    assert main([*args, "--checkpoint", str(checkpoint), "--track", "Drums"]) == 2
    # --track-b: B's melody lies on another track (the bass) than A's (the lead)
    assert main([*args, "--checkpoint", str(checkpoint), "--track", "Lead", "--track-b", "Bass"]) == 0
    notes = pretty_midi.PrettyMIDI(str(out)).instruments[0].notes
    phrase = 4.0  # 2 bars of 4/4 at 120 BPM, in seconds
    assert [n.pitch for n in notes if n.start < phrase - 1e-6] == [72 + i for i in range(8)]
    assert [n.pitch for n in notes if n.start >= 2 * phrase - 1e-6] == [48 + i for i in range(8)]


def test_a_meter_the_model_cannot_count_is_one_line_exit_2(checkpoint, tmp_path, capsys) -> None:
    from smf_builders import TPB, conductor, notes_track, smf

    odd = tmp_path / "odd.mid"  # 5/32: not a whole number of sixteenth-note steps
    odd.write_bytes(smf([conductor(meters=[(0, 5, 32)]), notes_track([(60, 80, 0, TPB // 8)])]))
    write_midi(tmp_path / "b.mid", [(60, 80, 0.0, 1.0)])
    code = main(["interpolate", str(odd), str(tmp_path / "b.mid"), "--steps", "1", "--checkpoint",
                 str(checkpoint), "-o", str(tmp_path / "o.mid")])
    err = capsys.readouterr().err
    assert code == 2 and "5/32" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("warning:")]) == 1
    assert not (tmp_path / "o.mid").exists()


def test_interpolate_says_what_it_read_warns_of_a_meter_change_and_writes_on_the_melody(
    checkpoint, tmp_path, capsys
) -> None:
    from smf_builders import TPB, conductor, notes_track, smf

    bass = [(36, 80, 0, 2 * TPB), (38, 80, 2 * TPB, 4 * TPB)]  # the earliest note, 2 notes
    lead = [(72 + i, 80, TPB // 2 + i * TPB // 2, TPB + i * TPB // 2) for i in range(12)]
    a = tmp_path / "a.mid"
    a.write_bytes(smf([conductor(), notes_track(bass, 1, 33, "Bass"), notes_track(lead, 0, 73, "Flute")]))
    b = tmp_path / "b.mid"
    b.write_bytes(smf([conductor(meters=[(0, 3, 4)]), notes_track([(60 + i, 90, i * TPB, (i + 1) * TPB)
                                                                  for i in range(8)])]))
    out = tmp_path / "out.mid"
    assert main(["interpolate", str(a), str(b), "--steps", "1", "--checkpoint", str(checkpoint),
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "A: model input:" in captured.out and "B: model input:" in captured.out
    assert "written on channel 1, program 73 (track 3" in captured.out
    assert "meter 3/4 differs from A's 4/4" in captured.err and "8 notes" in captured.err
    midi = pretty_midi.PrettyMIDI(str(out))
    assert midi.instruments[0].program == 73
    b_notes = [n for n in midi.instruments[0].notes if n.start >= 2 * 2 * 4 * 0.5 - 1e-6]  # 120 BPM
    assert len(b_notes) == 8  # B's 8 beats read whole (in 3/4 only 6 would be kept)
