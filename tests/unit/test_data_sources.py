"""Parsing sources into tunes: multi-tune .abc, ties, MIDI files in beats, genres YAML."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from musebridge.core.music import Meter
from musebridge.models.data.corpus import corpus_files, parse_score_file
from musebridge.models.data.genres import load_genres, parse_midi_dir_option
from musebridge.models.data.midi_files import parse_midi_file
from musebridge.models.data.tunes import complete_bars, pack_tunes, regular_bars, unpack_tunes

TWO_TUNES_ABC = """X:1
T:First
M:3/4
L:1/8
K:G
G2 A2 B2 | d4- d2 | B2- B2 A2 | G6 |

X:7
T:Second
M:2/4
L:1/8
K:D
A | d2 f2 | a4 |
"""


def write_midi(path: Path, ticks_per_beat: int = 480) -> None:
    """Two beats at 120 bpm then 60 bpm; 3/4; a piano line and a drum hit."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack(
        [
            mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
            mido.MetaMessage("set_tempo", tempo=500000, time=0),
            mido.MetaMessage("set_tempo", tempo=1000000, time=2 * ticks_per_beat),
        ]
    )
    piano = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=33, time=0),
            mido.Message("note_off", note=60, velocity=0, time=ticks_per_beat),
            mido.Message("note_on", note=64, velocity=99, time=2 * ticks_per_beat),
            mido.Message("note_off", note=64, velocity=0, time=ticks_per_beat // 2),
        ]
    )
    drums = mido.MidiTrack(
        [
            mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
            mido.Message("note_off", channel=9, note=36, velocity=0, time=100),
        ]
    )
    midi.tracks += [meta, piano, drums]
    midi.save(path)


def test_multi_tune_abc_gives_one_tune_per_x_number_with_ties_joined(tmp_path):
    path = tmp_path / "two.abc"
    path.write_text(TWO_TUNES_ABC)
    tunes, failures = parse_score_file(path, "test", "test/two.abc")
    assert failures == []
    assert [t.source_id for t in tunes] == ["test/two.abc#1", "test/two.abc#7"]
    first, second = tunes
    assert first.title == "First" and first.key == "G major" and first.meters == ["3/4"]
    rows = [(int(n["pitch"]), float(n["start"]), float(n["duration"])) for n in first.notes]
    assert rows == [(67, 0.0, 1.0), (69, 1.0, 1.0), (71, 2.0, 1.0), (74, 3.0, 3.0), (71, 6.0, 2.0),
                    (69, 8.0, 1.0), (67, 9.0, 3.0)]
    assert complete_bars(first.bars).tolist() == [True] * 4
    # the second tune has a pickup: its first bar is incomplete
    assert second.bars["length"][0] == pytest.approx(0.5)
    assert complete_bars(second.bars).tolist()[:2] == [False, True]
    assert second.key == "D major"


def test_a_shipped_corpus_file_parses_with_all_parts_merged():
    path = corpus_files("bach")[0]
    tunes, failures = parse_score_file(path, "bach")
    assert failures == [] and len(tunes) == 1
    tune = tunes[0]
    assert tune.source_id == f"bach/{path.name}"
    starts_at_zero = tune.notes[tune.notes["start"] == 0]
    assert len(set(starts_at_zero["pitch"].tolist())) >= 3  # four voices, not one
    assert tune.meters == ["4/4"]


def test_midi_file_is_read_in_beats_through_tempo_changes(tmp_path):
    path = tmp_path / "song.mid"
    write_midi(path)
    tune = parse_midi_file(path, "mine", "mine/song.mid")
    rows = [
        (int(n["pitch"]), int(n["velocity"]), float(n["start"]), float(n["duration"]))
        for n in tune.notes
    ]
    assert rows == [(60, 33, 0.0, 1.0), (64, 99, 3.0, 0.5)]  # drum dropped, velocities kept
    assert tune.tempo_bpm == pytest.approx(120.0)
    assert tune.bars[0]["numerator"] == 3 and tune.bars[0]["length"] == pytest.approx(3.0)


def test_corrupt_midi_raises_so_the_builder_can_log_it(tmp_path):
    path = tmp_path / "broken.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(Exception):  # noqa: B017 - any parser error; the builder logs its name
        parse_midi_file(path, "mine", "mine/broken.mid")


def test_regular_bars_follow_meter_changes_and_cut_bars_short():
    bars = regular_bars(13.0, [(0.0, Meter(4, 4)), (6.0, Meter(3, 4))])
    assert bars["start"].tolist() == [0.0, 4.0, 6.0, 9.0, 12.0]
    assert complete_bars(bars).tolist() == [True, False, True, True, False]


def test_pack_and_unpack_round_trip(tmp_path):
    path = tmp_path / "two.abc"
    path.write_text(TWO_TUNES_ABC)
    tunes, _ = parse_score_file(path, "test", "test/two.abc")
    back = unpack_tunes(pack_tunes(tunes))
    assert [t.source_id for t in back] == [t.source_id for t in tunes]
    for a, b in zip(tunes, back, strict=True):
        assert np.array_equal(a.notes, b.notes) and np.array_equal(a.bars, b.bars)
        assert (a.title, a.key, a.tempo_bpm) == (b.title, b.key, b.tempo_bpm)


def test_shipped_genres_and_bad_genre_files(tmp_path):
    genres = load_genres()
    assert genres["celtic"].corpus == ("oneills1850", "ryansMammoth", "airdsAirs")
    assert genres["folk"].corpus == ("essenFolksong",)
    assert genres["chorale"].corpus == ("bach",) and genres["renaissance"].corpus == ("palestrina",)
    bad = tmp_path / "bad.yaml"
    for text, message in [
        ("genres: {}", "non-empty"),
        ("genres: {jazz: {corpus: bach}}", "lists"),
        ("genres: {jazz: {records: [x]}}", "only"),
        ("genres: {'ja zz': {corpus: [bach]}}", "letters"),
        ("genres: [", "YAML"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_genres(bad)
    with pytest.raises(ValueError, match="cannot read"):
        load_genres(tmp_path / "missing.yaml")
    bad.write_text("genres: {jazz: {midi_dirs: [midi/jazz]}}")
    assert load_genres(bad)["jazz"].midi_dirs == ((tmp_path / "midi" / "jazz").resolve(),)
    assert parse_midi_dir_option("jazz=/x")[0] == "jazz"
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_midi_dir_option("jazz")
