"""musebridge.smf.read_midi: the one reader of the offline commands and the dataset (issue 12)."""

from __future__ import annotations

import os
from pathlib import Path

import music21
import pytest
from smf_builders import TPB, conductor, message, meta, notes_track, smf

from musebridge.core.music import Meter
from musebridge.models.data.midi_files import parse_midi_file
from musebridge.smf import MidiFileError, read_midi

PRIMITIVES = Path(os.path.dirname(music21.__file__)) / "midi" / "testPrimitive"


def rows(part) -> list[tuple[int, int, int, int]]:
    return [(int(n["start"]), int(n["end"]), int(n["pitch"]), int(n["velocity"])) for n in part.notes]


def track_rows(track) -> list[tuple[int, ...]]:
    """All notes of a track, in order (parts split by program or merged by channel alike)."""
    return sorted(tuple(int(x) for x in row) for part in track.parts for row in part.notes)


def test_a_tempo_on_a_later_track_counts(tmp_path) -> None:
    # the tempo event sits on the notes' track, not on a conductor track: 90 BPM, not 120
    path = tmp_path / "ninety.mid"
    path.write_bytes(smf([notes_track([(60, 80, 0, TPB)]) + conductor(tempos=[(0, 90.0)])], file_format=0))
    score = read_midi(path)
    assert score.bpm_at(0) == pytest.approx(90.0)
    assert parse_midi_file(path, "mine", "mine/ninety.mid").tempo_bpm == pytest.approx(90.0)


def test_every_tempo_change_is_read_in_order(tmp_path) -> None:
    tempos = [(0, 120.0), (4 * TPB, 100.0), (8 * TPB, 144.0), (12 * TPB, 136.0), (16 * TPB, 144.0)]
    data = smf([conductor(tempos=tempos), notes_track([(60, 80, i * TPB, (i + 1) * TPB) for i in range(20)])])
    score = read_midi(data)
    assert [(t, round(b, 3)) for t, b in score.tempos] == tempos
    assert score.bpm_at(9 * TPB) == pytest.approx(144.0)


def test_bars_follow_a_meter_change_written_in_any_track(tmp_path) -> None:
    # 4/4 that turns 3/4 at beat 4; the time signature sits on the second track
    notes = notes_track([(60, 80, i * TPB, (i + 1) * TPB) for i in range(13)])
    data = smf([conductor(meters=[(0, 4, 4)]), notes + conductor(tempos=[], meters=[(4 * TPB, 3, 4)])])
    score = read_midi(data)
    assert score.meter_changes() == [(0.0, Meter(4, 4)), (4.0, Meter(3, 4))]
    path = tmp_path / "turns.mid"
    path.write_bytes(data)
    tune = parse_midi_file(path, "mine", "mine/turns.mid")
    assert tune.bars["start"].tolist() == [0.0, 4.0, 7.0, 10.0]
    assert [(int(b["numerator"]), int(b["denominator"])) for b in tune.bars] == [
        (4, 4),
        (3, 4),
        (3, 4),
        (3, 4),
    ]


def test_parts_keep_their_program_and_channel_and_drums_are_kept_apart() -> None:
    strings = [
        notes_track([(60 + i, 70, 0, TPB)], channel=i, program=48, name=f"Strings {i + 1}") for i in range(5)
    ]
    drums = notes_track([(36, 100, 0, 60), (38, 100, TPB, TPB + 60)], channel=9, name="Drums")
    score = read_midi(smf([conductor(), *strings, drums]), channels=True)
    parts = score.parts()
    assert [(p.track, p.channel, p.program, p.is_drum) for p in parts] == [
        (1, 0, 48, False), (2, 1, 48, False), (3, 2, 48, False), (4, 3, 48, False), (5, 4, 48, False),
        (6, 9, 0, True),
    ]  # fmt: skip
    assert len(score.parts(pitched_only=True)) == 5 and score.tracks[6].name == "Drums"


def test_track_names_lose_their_control_characters(tmp_path) -> None:
    """music21's test16.mid names its track "Piano" + NUL (a C string): the summary printed the NUL
    raw, and --track Piano found nothing."""
    from musebridge.midi_files import select_parts

    data = smf([conductor(), notes_track([(60, 70, 0, TPB)], name="Piano\x00"),
                notes_track([(64, 70, 0, TPB)], name="Str\x07ings")])  # fmt: skip
    score = read_midi(data, channels=True)
    assert [t.name for t in score.tracks[1:]] == ["Piano", "Strings"]
    assert all(c.isprintable() for t in score.tracks for c in t.describe())
    assert [p.track for p in select_parts(score, ["Piano"])] == [1]


def test_the_timing_summary_leaves_out_a_restated_meter() -> None:
    """Ryan's Mammoth Collection restates 2/4 at beat 16: "meter 2/4 -> 2/4 at beat 16" said nothing."""
    from musebridge.midi_files import describe_timing

    notes = notes_track([(60, 70, i * TPB, TPB) for i in range(40)])
    restated = read_midi(smf([conductor(meters=((0, 2, 4), (16 * TPB, 2, 4), (32 * TPB, 3, 4))), notes]),
                         channels=True)  # fmt: skip
    assert describe_timing(restated) == "tempo 120 BPM, meter 2/4 -> 3/4 at beat 32"


def test_overlapping_notes_of_one_pitch_pair_first_in_first_out() -> None:
    events = [
        (0, message("note_on", note=60, velocity=10)),
        (100, message("note_on", note=60, velocity=20)),
        (200, message("note_off", note=60)),  # ends the first note (first in, first out)
        (300, message("note_off", note=60)),
    ]
    (part,) = read_midi(smf([events])).parts()
    assert rows(part) == [(0, 200, 60, 10), (100, 300, 60, 20)]


def test_a_note_still_sounding_at_the_end_of_its_track_ends_there_with_a_warning() -> None:
    events = [
        (0, message("note_on", note=60, velocity=50)),  # never released
        (100, message("note_on", note=64, velocity=60)),
        (200, message("note_off", note=64)),
        (960, meta("end_of_track")),
    ]
    score = read_midi(smf([events]))
    (part,) = score.parts()
    assert rows(part) == [(0, 960, 60, 50), (100, 200, 64, 60)]
    assert score.tracks[0].end_tick == 960
    assert any("1 note(s) still sounding at the end of the track" in w for w in score.warnings)


def test_a_note_starting_at_the_very_end_has_no_length_and_is_left_out_with_a_warning() -> None:
    events = [(0, message("note_on", note=60, velocity=50)), (480, message("note_off", note=60))]
    events.append((480, message("note_on", note=62, velocity=50)))  # the last event, never released
    score = read_midi(smf([events]))
    assert rows(score.parts()[0]) == [(0, 480, 60, 50)]
    assert any("zero length" in w for w in score.warnings)


def test_events_after_an_early_end_of_track_are_not_part_of_the_track() -> None:
    body = bytes([0, 0x90, 60, 100, 0x60, 0xFF, 0x2F, 0, 0x10, 0x80, 60, 0, 0, 0xFF, 0x2F, 0])
    data = (
        b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0, 96]) + b"MTrk" + len(body).to_bytes(4, "big")
    )
    score = read_midi(data + body)
    assert rows(score.parts()[0]) == [(0, 0x60, 60, 100)]  # ends at the (first) end of its track
    assert score.warnings


HEADER = b"MThd\x00\x00\x00\x06"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "an empty file"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a MIDI file"),
        (b"MThd\x00\x00", "header is cut off"),
        (HEADER + b"\x00\x01\x00\x01\xe7\x28", "SMPTE time division"),
        (HEADER + b"\x00\x02\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "format 2"),
        (HEADER + b"\x00\x01\x00\x01\x00\x00MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "0 ticks per quarter"),
        (HEADER + b"\x00\x01\x00\x01\x01\xe0", "no track chunks"),
        (HEADER + b"\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10\x00\x00\x90\x3c\x40", "track 1 is cut off"),
        (
            HEADER + b"\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x08\x00\x3c\x40\x00\x00\xff\x2f\x00",
            "track 1:",
        ),
    ],
)
def test_unusable_files_are_refused_with_one_line_naming_the_cause(data: bytes, reason: str) -> None:
    with pytest.raises(MidiFileError, match=reason) as caught:
        read_midi(data)
    assert len(str(caught.value).splitlines()) == 1


def test_missing_files_and_folders_are_named_as_such(tmp_path) -> None:
    with pytest.raises(MidiFileError, match="no such file"):
        read_midi(tmp_path / "missing.mid")
    with pytest.raises(MidiFileError, match="a folder"):
        read_midi(tmp_path)


def test_a_riff_rmid_wrapper_is_unwrapped() -> None:
    inner = smf([notes_track([(60, 80, 0, TPB)])])
    size = len(inner)
    riff = (
        b"RIFF" + (size + 12).to_bytes(4, "little") + b"RMID" + b"data" + size.to_bytes(4, "little") + inner
    )
    assert rows(read_midi(riff).parts()[0]) == [(0, TPB, 60, 80)]


def test_the_music21_test_files_are_all_read() -> None:
    files = sorted(PRIMITIVES.glob("*.mid"))
    assert len(files) >= 20
    for path in files:
        score = read_midi(path, channels=True)
        assert score.parts(), path.name
        fast = read_midi(path)  # the dataset's path: one parser call for the whole file
        assert (fast.tempos, fast.meters, fast.keys) == (score.tempos, score.meters, score.keys), path.name
        for slow_track, fast_track in zip(score.tracks, fast.tracks, strict=True):
            assert slow_track.end_tick == fast_track.end_tick
            assert track_rows(slow_track) == track_rows(fast_track), path.name
    turning = read_midi(PRIMITIVES / "test03.mid")  # 4/4 that turns 3/4 at beat 4, tempo on a track
    assert turning.meter_changes() == [(0.0, Meter(4, 4)), (4.0, Meter(3, 4))]
    assert turning.bpm_at(0) == pytest.approx(144.0, abs=1e-3)  # the later of two tempo events at tick 0
    winds = read_midi(PRIMITIVES / "test04.mid", channels=True)
    assert [p.program for p in winds.parts()[:4]] == [73, 68, 71, 70]  # flute, oboe, clarinet, bassoon
    assert len(read_midi(PRIMITIVES / "test09.mid").tempos) == 5


def test_a_file_longer_than_the_bar_limit_is_refused_before_any_bar_grid_is_laid(tmp_path) -> None:
    # 79 bytes, 1 PPQN, a second note 2^28 - 26 ticks later: 67 million 4/4 bars if the grid were laid
    gap = 0x0FFFFFE6
    data = smf([notes_track([(60, 80, 0, 1), (62, 80, gap, gap + 1)])], ticks_per_beat=1)
    assert len(data) < 100
    with pytest.raises(MidiFileError, match=r"too long: \d+ bars \(the reader takes at most 65536\)"):
        read_midi(data)
    path = tmp_path / "long.mid"
    path.write_bytes(data)
    with pytest.raises(MidiFileError, match="too long"):
        parse_midi_file(path, "mine", "mine/long.mid")  # the dataset path refuses it too


def test_a_file_of_exactly_the_bar_limit_is_read() -> None:
    from musebridge.smf.score import MAX_BARS

    end = MAX_BARS * 4  # 1 PPQN, 4/4: the last note ends on the last bar line
    assert read_midi(smf([notes_track([(60, 80, 0, 1), (62, 80, end - 1, end)])], ticks_per_beat=1))


@pytest.mark.parametrize("channels", [False, True])
def test_a_tempo_of_zero_microseconds_per_beat_is_refused_by_both_paths(channels: bool) -> None:
    """FF 51 03 00 00 00: no time would pass (it read as 'tempo inf BPM' and wrote 60,000,000 BPM)."""
    body = b"\x00\xff\x51\x03\x00\x00\x00\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"
    data = HEADER + b"\x00\x00\x00\x01\x01\xe0MTrk" + len(body).to_bytes(4, "big") + body
    with pytest.raises(MidiFileError, match="tempo event of 0 microseconds per beat at tick 0"):
        read_midi(data, channels=channels)
