"""musebridge.midi_files: reading .mid files into phrases and writing phrases atomically."""

from __future__ import annotations

import pretty_midi
import pytest

from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError
from musebridge.midi_files import (
    DEFAULT_TEMPO,
    read_midi_clip,
    read_midi_phrase,
    write_phrases_midi,
)


def write_raw_midi(path, notes, numerator=4, denominator=4, tempo=120.0, drums=()) -> None:
    """notes and drums: (pitch, velocity, start beat, duration beats) at `tempo`."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, 0.0))
    seconds = 60.0 / tempo
    for is_drum, items in ((False, notes), (True, drums)):
        track = pretty_midi.Instrument(program=0, is_drum=is_drum)
        for pitch, velocity, start, duration in items:
            track.notes.append(
                pretty_midi.Note(velocity, pitch, start * seconds, (start + duration) * seconds)
            )
        midi.instruments.append(track)
    midi.write(str(path))


def as_tuples(phrase: Phrase) -> list[tuple[int, int, float, float]]:
    return [(n.pitch, n.velocity, round(n.start, 6), round(n.duration, 6)) for n in phrase.notes]


def test_round_trip_keeps_notes_velocities_meter_and_tempo(tmp_path) -> None:
    meter = Meter(3, 4)
    first = Phrase((Note(60, 17, 0.0, 0.5), Note(64, 127, 1.5, 1.5)), bars=2, meter=meter)
    second = Phrase((Note(67, 1, 0.25, 0.25), Note(72, 90, 2.0, 4.0)), bars=1, meter=meter)  # 2nd rings on
    path = tmp_path / "round.mid"
    write_phrases_midi([first, second], path, tempo=96.0)

    phrase, tempo = read_midi_phrase(path)
    assert tempo == pytest.approx(96.0)
    assert phrase.meter == meter and phrase.bars == 3  # the last onset lies in bar 3
    assert as_tuples(phrase) == [
        (60, 17, 0.0, 0.5),
        (64, 127, 1.5, 1.5),
        (67, 1, 6.25, 0.25),
        (72, 90, 8.0, 1.0),  # cut at the end of its phrase
    ]
    track = pretty_midi.PrettyMIDI(str(path)).instruments[0]
    assert track.program == 0 and track.name == "musebridge" and not track.is_drum


def test_track_name_and_default_tempo(tmp_path) -> None:
    path = tmp_path / "named.mid"
    write_phrases_midi([Phrase((Note(60, 80, 0.0, 1.0),))], path, track_name="musebridge transfer")
    midi = pretty_midi.PrettyMIDI(str(path))
    assert midi.instruments[0].name == "musebridge transfer"
    assert midi.get_tempo_changes()[1][0] == pytest.approx(DEFAULT_TEMPO)


def test_reading_merges_tracks_from_bar_one_and_skips_drums(tmp_path) -> None:
    path = tmp_path / "merged.mid"
    write_raw_midi(path, [(50, 40, 4.0, 1.0), (52, 41, 9.0, 0.5)], drums=[(36, 100, 0.0, 0.5)])
    phrase, tempo = read_midi_phrase(path)
    assert tempo == pytest.approx(120.0) and phrase.meter == Meter(4, 4)
    assert as_tuples(phrase) == [(50, 40, 4.0, 1.0), (52, 41, 9.0, 0.5)]  # from bar 1, drums left out
    assert phrase.bars == 3


def test_clip_starts_at_the_bar_of_the_first_note_and_cuts_at_its_end(tmp_path) -> None:
    path = tmp_path / "clip.mid"
    # 4/4: first note in bar 3 (beat 9); one note rings past the 2-bar window, one starts after it
    write_raw_midi(path, [(60, 70, 9.0, 1.0), (62, 71, 15.0, 3.0), (64, 72, 16.0, 1.0)], tempo=140.0)
    clip, tempo = read_midi_clip(path, bars=2)
    assert tempo == pytest.approx(140.0, rel=1e-5) and clip.bars == 2
    assert as_tuples(clip) == [(60, 70, 1.0, 1.0), (62, 71, 7.0, 1.0)]


def test_missing_corrupt_and_empty_files_are_one_line_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_midi_phrase(tmp_path / "missing.mid")
    with pytest.raises(UserError, match="no such file"):
        read_midi_clip(tmp_path, bars=2)  # a folder is no file
    corrupt = tmp_path / "corrupt.mid"
    for content in (b"MThd nonsense", b"\x00\x01\x02" * 50, b""):
        corrupt.write_bytes(content)
        with pytest.raises(UserError, match="not a readable MIDI file") as caught:
            read_midi_phrase(corrupt)
        assert len(str(caught.value).splitlines()) == 1 and str(corrupt) in str(caught.value)
    empty = tmp_path / "empty.mid"
    write_raw_midi(empty, [])
    drums_only = tmp_path / "drums.mid"
    write_raw_midi(drums_only, [], drums=[(36, 100, 0.0, 1.0)])
    for path in (empty, drums_only):
        with pytest.raises(UserError, match="no notes"):
            read_midi_clip(path, bars=2)
        with pytest.raises(UserError, match="no notes"):
            read_midi_phrase(path)


def test_write_creates_folders_and_refuses_nothing(tmp_path) -> None:
    path = tmp_path / "new" / "deeper" / "out.mid"
    write_phrases_midi([Phrase((Note(60, 80, 0.0, 1.0),))], path)
    assert path.is_file()
    with pytest.raises(UserError, match="nothing to write"):
        write_phrases_midi([], tmp_path / "none.mid")
    assert not (tmp_path / "none.mid").exists()


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch) -> None:
    path = tmp_path / "out.mid"
    write_phrases_midi([Phrase((Note(60, 80, 0.0, 1.0),))], path)
    before = path.read_bytes()

    def half_write(self, filename) -> None:
        with open(filename, "wb") as handle:
            handle.write(b"MThd\x00")  # a partial file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pretty_midi.PrettyMIDI, "write", half_write)
    with pytest.raises(UserError, match="cannot write \\(No space left on device\\)"):
        write_phrases_midi([Phrase((Note(72, 80, 0.0, 1.0),))], path)
    assert path.read_bytes() == before
    with pytest.raises(UserError, match="cannot write"):
        write_phrases_midi([Phrase((Note(72, 80, 0.0, 1.0),))], tmp_path / "fresh.mid")
    assert not (tmp_path / "fresh.mid").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]  # no temporary files left


def test_unwritable_targets_are_user_errors(tmp_path) -> None:
    phrase = Phrase((Note(60, 80, 0.0, 1.0),))
    (tmp_path / "folder.mid").mkdir()
    with pytest.raises(UserError, match="cannot write"):
        write_phrases_midi([phrase], tmp_path / "folder.mid")
    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(UserError, match="cannot write"):
        write_phrases_midi([phrase], tmp_path / "plain" / "out.mid")
    with pytest.raises(UserError, match="cannot write"):
        write_phrases_midi([phrase], tmp_path / "..")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.mid", "plain"]
