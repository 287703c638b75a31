"""musebridge.midi_files: the offline commands' view of a MIDI file (issue 12: the file out is the file in,
changed only where the model acted)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from smf_builders import TPB, chunk_bodies, conductor, notes_track, smf

from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError
from musebridge.midi_files import (
    DEFAULT_TEMPO,
    _part_notes,
    describe_selection,
    open_midi,
    phrases_of,
    read_midi_clip,
    read_midi_phrase,
    select_parts,
    write_back,
    write_phrases_midi,
)
from musebridge.smf import read_midi

TEMPOS = [(0, 120.0), (4 * TPB, 100.0), (8 * TPB, 144.0), (12 * TPB, 136.0), (16 * TPB, 144.0)]


def as_tuples(phrase: Phrase) -> list[tuple[int, int, float, float]]:
    return [(n.pitch, n.velocity, round(n.start, 6), round(n.duration, 6)) for n in phrase.notes]


def quartet_with_drums(path) -> bytes:
    """A conductor track (five tempo changes, 4/4 turning 3/4 at beat 4), five string tracks (program 48,
    channels 1-5) and a drum track (channel 10)."""
    strings = [
        notes_track(
            [(60 + i, 70 + i, b * TPB, (b + 1) * TPB) for b in range(0, 20, 2)], i, 48, f"Strings {i + 1}"
        )
        for i in range(5)
    ]
    drums = notes_track([(36, 100, b * TPB, b * TPB + 60) for b in range(20)], 9, None, "Drums")
    data = smf([conductor(TEMPOS, [(0, 4, 4), (4 * TPB, 3, 4)]), *strings, drums])
    path.write_bytes(data)
    return data


def test_write_back_keeps_tempo_map_meters_other_tracks_and_each_notes_channel_and_program(tmp_path) -> None:
    source = tmp_path / "in.mid"
    data = quartet_with_drums(source)
    score = open_midi(source)
    parts = select_parts(score)  # every pitched track: the five string tracks, not the drums
    assert [p.track for p in parts] == [1, 2, 3, 4, 5]
    moved = [replace(note, pitch=note.pitch + 1) for note, _part in _part_notes(score, parts)]
    out = tmp_path / "out.mid"
    write_back(score, parts, moved, out)
    written = read_midi(out, channels=True)
    assert written.tempos == score.tempos and written.meters == score.meters
    assert [(p.track, p.channel, p.program, p.is_drum) for p in written.parts()] == [
        (p.track, p.channel, p.program, p.is_drum) for p in score.parts()
    ]
    for before, after in zip(score.parts(pitched_only=True), written.parts(pitched_only=True), strict=True):
        assert (after.notes["pitch"] == before.notes["pitch"] + 1).all()
    before_chunks, after_chunks = chunk_bodies(data), chunk_bodies(out.read_bytes())
    assert after_chunks[0] == before_chunks[0] and after_chunks[6] == before_chunks[6]  # conductor, drums


def test_the_summary_names_what_was_merged_and_what_was_left(tmp_path) -> None:
    source = tmp_path / "in.mid"
    quartet_with_drums(source)
    score = open_midi(source)
    line = describe_selection(score, select_parts(score, ["2", "Strings 3"]))
    assert line.startswith('model input: 2 "Strings 1" (program 48, channel 1, 10 notes) + 4 "Strings 3"')
    assert (
        "(merged)" in line and '7 "Drums" (drums, channel 10, 20 notes)' in line.split("left as they were")[1]
    )


def test_tracks_are_chosen_by_number_or_name_and_bad_choices_are_named(tmp_path) -> None:
    source = tmp_path / "in.mid"
    quartet_with_drums(source)
    score = open_midi(source)
    assert [p.channel for p in select_parts(score, ["Strings 5", "2"])] == [4, 0]
    with pytest.raises(UserError, match="no track '9'"):
        select_parts(score, ["9"])
    with pytest.raises(UserError, match="has no pitched notes"):
        select_parts(score, ["Drums"])


def test_phrases_follow_the_meter_changes(tmp_path) -> None:
    source = tmp_path / "in.mid"
    quartet_with_drums(source)
    score = open_midi(source)
    runs = phrases_of(score, select_parts(score))
    assert [(s.start, s.bars, str(s.meter)) for s, _phrase in runs] == [(0.0, 1, "4/4"), (4.0, 5, "3/4")]
    assert runs[1][1].meter == Meter(3, 4) and runs[1][1].notes[0].start == 0.0  # beat 4 = its bar 1


def test_a_last_note_on_a_bar_line_is_in_the_last_phrase(tmp_path) -> None:
    """C D E F | G F E D | C (whole): the final note starts bar 3 exactly, and its bar is whole."""
    pitches = [60, 62, 64, 65, 67, 65, 64, 62]
    melody = [(p, 90, i * TPB, (i + 1) * TPB) for i, p in enumerate(pitches)] + [(60, 90, 8 * TPB, 12 * TPB)]
    source = tmp_path / "in.mid"
    source.write_bytes(smf([conductor(), notes_track(melody)]))
    score = open_midi(source)
    ((segment, phrase),) = phrases_of(score, select_parts(score))
    assert (segment.start, segment.bars, segment.length) == (0.0, 3, 12.0)
    assert len(phrase.notes) == 9 and phrase.notes[-1].start == 8.0 and phrase.notes[-1].duration == 4.0


@pytest.mark.parametrize("start_bar", [0, 1, 3])
def test_a_file_of_one_note_is_one_bar(tmp_path, start_bar: int) -> None:
    source = tmp_path / "one.mid"
    start = start_bar * 4 * TPB
    source.write_bytes(smf([conductor(), notes_track([(64, 80, start, start + TPB // 2)])]))
    score = open_midi(source)
    runs = phrases_of(score, select_parts(score))
    assert [(s.start, s.bars) for s, _p in runs] == [(0.0, start_bar + 1)]
    assert [(n.pitch, n.start) for n in runs[0][1].notes] == [(64, start_bar * 4.0)]


def test_round_trip_of_written_phrases_keeps_notes_velocities_meter_and_tempo(tmp_path) -> None:
    meter = Meter(3, 4)
    first = Phrase((Note(60, 17, 0.0, 0.5), Note(64, 127, 1.5, 1.5)), bars=2, meter=meter)
    second = Phrase((Note(67, 1, 0.25, 0.25), Note(72, 90, 2.0, 4.0)), bars=1, meter=meter)  # 2nd rings on
    path = tmp_path / "round.mid"
    write_phrases_midi([first, second], path, tempo=96.0, channel=3, program=40)
    phrase, tempo = read_midi_phrase(path)
    assert tempo == pytest.approx(96.0, abs=1e-3)
    assert phrase.meter == meter and phrase.bars == 3  # the last onset lies in bar 3
    assert as_tuples(phrase) == [
        (60, 17, 0.0, 0.5),
        (64, 127, 1.5, 1.5),
        (67, 1, 6.25, 0.25),
        (72, 90, 8.0, 1.0),
    ]
    (part,) = read_midi(path, channels=True).parts()
    assert (part.channel, part.program) == (3, 40)


def test_track_name_and_default_tempo(tmp_path) -> None:
    path = tmp_path / "named.mid"
    write_phrases_midi([Phrase((Note(60, 80, 0.0, 1.0),))], path, track_name="musebridge transfer")
    score = read_midi(path, channels=True)
    assert score.tracks[1].name == "musebridge transfer" and score.bpm_at(0) == pytest.approx(DEFAULT_TEMPO)


def test_clip_starts_at_the_bar_of_the_first_note_and_cuts_at_its_end(tmp_path) -> None:
    path = tmp_path / "clip.mid"
    notes = [(60, 70, 9 * TPB, 10 * TPB), (62, 71, 15 * TPB, 18 * TPB), (64, 72, 16 * TPB, 17 * TPB)]
    path.write_bytes(smf([conductor([(0, 140.0)]), notes_track(notes, channel=2, program=11)]))
    clip = read_midi_clip(path, bars=2)
    assert clip.tempo == pytest.approx(140.0, rel=1e-5) and clip.phrase.bars == 2
    assert as_tuples(clip.phrase) == [(60, 70, 1.0, 1.0), (62, 71, 7.0, 1.0)]
    assert (clip.channel, clip.program) == (2, 11)


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
    empty.write_bytes(smf([conductor()]))
    drums_only = tmp_path / "drums.mid"
    drums_only.write_bytes(smf([notes_track([(36, 100, 0, TPB)], channel=9)]))
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
    import musebridge.smf.writer as writer

    path = tmp_path / "out.mid"
    write_phrases_midi([Phrase((Note(60, 80, 0.0, 1.0),))], path)
    before = path.read_bytes()

    def disk_full(_source, _target) -> None:
        raise OSError(28, "No space left on device")  # the temporary file is written, the rename fails

    monkeypatch.setattr(writer.os, "replace", disk_full)
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


def test_a_note_the_reader_ended_at_the_track_end_gets_its_note_off_there_when_the_track_grows(
    tmp_path,
) -> None:
    from smf_builders import message

    # note 84 starts at beat 6 and never ends: the reader ends it at the track's end, beat 8
    events = notes_track([(72, 80, 0, TPB)], 0, 73, "Flute")
    events += [(6 * TPB, message("note_on", channel=0, note=84, velocity=90))]
    events += [(8 * TPB, message("control_change", channel=0, control=7, value=100))]  # the track's end
    source = tmp_path / "in.mid"
    source.write_bytes(smf([conductor(), events]))
    score = open_midi(source)
    parts = select_parts(score)
    answer = [Note(60, 80, 8.0, 1.0), Note(62, 80, 12.0, 1.0)]  # continue: added after the call
    out = tmp_path / "out.mid"
    write_back(score, parts, answer, out, replace=False)
    back = read_midi(out, channels=True)
    rows = sorted((int(n["pitch"]), int(n["start"]), int(n["end"])) for n in back.parts()[0].notes)
    assert (84, 6 * TPB, 8 * TPB) in rows  # not held on under the answer to beat 13
    assert not any("still sounding" in w for w in back.warnings)


def test_the_zero_length_warning_says_what_transfer_and_continue_do_with_their_events(tmp_path) -> None:
    source = tmp_path / "in.mid"
    source.write_bytes(smf([conductor(), notes_track([(60, 80, 0, TPB), (64, 80, TPB, TPB)])]))
    score = open_midi(source)
    (warning,) = [w for w in score.warnings if "zero length" in w]
    assert "transfer drops their events" in warning and "continue keeps them" in warning
    parts = select_parts(score)
    for replacing, pitches in ((True, {62}), (False, {60, 62, 64})):  # transfer, continue
        out = tmp_path / f"out{replacing}.mid"
        write_back(score, parts, [Note(62, 80, 0.0, 1.0)], out, replace=replacing)
        body = chunk_bodies(out.read_bytes())[1]
        assert {body[i + 1] for i in range(len(body) - 2) if body[i] == 0x90} == pitches


def test_write_back_counts_only_the_notes_it_wrote(tmp_path) -> None:
    """At 1 PPQN a note of a tenth of a beat has no length in ticks: it is left out and not counted
    (the transfer summary said 26 notes out for a file that held 13)."""
    source = tmp_path / "in.mid"
    source.write_bytes(smf([conductor(), notes_track([(60, 90, 0, 4)])], ticks_per_beat=1))
    score = open_midi(source)
    notes = [Note(60, 90, 0.0, 1.0), Note(62, 90, 1.0, 0.1), Note(64, 90, 2.0, 2.0)]
    out = tmp_path / "out.mid"
    assert write_back(score, select_parts(score), notes, out) == 2
    assert len(read_midi(out).parts()[0].notes) == 2
