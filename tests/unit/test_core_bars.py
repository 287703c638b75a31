"""Bar grid (meters, meter changes at bar lines), quantisation and the per-track bar buffer."""

from __future__ import annotations

import pytest

from musebridge.core.bars import BarBuffer, BarGrid, Grid, quantise
from musebridge.core.music import Meter, Note


def test_bar_grid_in_3_4_and_7_8() -> None:
    g = BarGrid(Meter(3, 4))
    assert [g.bar_start(b) for b in range(4)] == [0.0, 3.0, 6.0, 9.0]
    assert g.bar_at(2.99) == 0 and g.bar_at(3.0) == 1
    g = BarGrid(Meter(7, 8))
    assert [g.bar_start(b) for b in range(3)] == [0.0, 3.5, 7.0]
    assert g.bar_at(6.99) == 1 and g.bar_at(7.0) == 2
    assert BarGrid(Meter(6, 8)).bar_end(0) == 3.0


def test_meter_change_takes_effect_at_the_next_bar_line_and_keeps_numbering() -> None:
    g = BarGrid(Meter(4, 4))
    assert g.change_meter(Meter(7, 8), at_beat=5.0) == 2  # bar 1 runs to beat 8
    assert g.bar_start(2) == 8.0 and g.bar_start(3) == 11.5 and g.bar_start(4) == 15.0
    assert g.bar_at(7.9) == 1 and g.bar_at(11.5) == 3
    assert g.meter_at_bar(1) == Meter(4, 4) and g.meter_at_bar(2) == Meter(7, 8)
    assert g.segment_start_bar(3) == 2 and g.is_segment_start(2)
    # a change exactly on a bar line applies there
    assert g.change_meter(Meter(3, 4), at_beat=15.0) == 4
    assert g.bar_start(5) == 18.0
    assert [g.bar_at(b) for b in (0.0, 4.0, 8.0, 11.5, 15.0, 18.0)] == [0, 1, 2, 3, 4, 5]


def test_quantise_and_grid_steps() -> None:
    assert quantise(0.12, 0.25) == 0.0
    assert quantise(0.125, 0.25) == 0.25  # ties go later
    assert quantise(3.9, 0.25) == 4.0
    assert quantise(1.234, 0.0) == 1.234
    assert Grid(4, "beat").step_beats(Meter(7, 8)) == 0.25
    assert Grid(7, "bar").step_beats(Meter(7, 8)) == 0.5
    assert Grid(0).step_beats(Meter()) == 0.0 and not Grid(0).enabled
    with pytest.raises(ValueError):
        Grid(4, "tick")


def _buffer(meter: Meter | None = None, step: float = 0.25) -> BarBuffer:
    return BarBuffer(BarGrid(meter or Meter(4, 4)), lambda m: step)


def test_buffer_pairs_notes_per_channel_and_pitch_and_quantises() -> None:
    buf = _buffer()
    buf.note_on(0, 60, 100, 0.02)
    buf.note_on(1, 60, 80, 0.5)  # same pitch, other channel: another note
    buf.note_off(0, 60, 0.98)
    buf.note_off(1, 60, 1.1)
    assert not buf.note_off(0, 61, 1.2)  # unmatched off is ignored
    phrase = buf.take(0.0, 4.0, Meter(), 1)
    assert phrase.notes == (Note(60, 100, 0.0, 1.0), Note(60, 80, 0.5, 0.5))


def test_note_quantised_onto_the_next_downbeat_belongs_to_the_next_phrase() -> None:
    buf = _buffer()
    buf.note_on(0, 62, 90, 3.9)  # rounds to 4.0: next bar
    buf.note_off(0, 62, 4.4)
    buf.note_on(0, 60, 90, 3.8)  # rounds to 3.75: this bar
    buf.note_off(0, 60, 3.9)
    first = buf.take(0.0, 4.0, Meter(), 1)
    assert first.notes == (Note(60, 90, 3.75, 0.25),)
    second = buf.take(4.0, 8.0, Meter(), 1)
    assert second.notes == (Note(62, 90, 0.0, 0.5),)


def test_held_notes_are_closed_at_the_phrase_end_and_their_off_is_ignored() -> None:
    buf = _buffer()
    buf.note_on(0, 64, 70, 2.0)
    assert buf.held == 1
    phrase = buf.take(0.0, 4.0, Meter(), 1)
    assert phrase.notes == (Note(64, 70, 2.0, 2.0),)
    assert buf.held == 0
    assert not buf.note_off(0, 64, 5.0)
    assert buf.take(4.0, 8.0, Meter(), 1).notes == ()


def test_silence_and_peek_and_overlapping_same_pitch_notes_pair_first_in_first_out() -> None:
    buf = _buffer()
    buf.note_on(0, 60, 100, 0.0)
    buf.note_on(0, 60, 90, 1.0)  # overlaps the first: the first note-off ends the first note
    buf.note_off(0, 60, 1.5)
    buf.note_off(0, 60, 3.0)
    assert not buf.is_silent(0.0, 4.0) and buf.is_silent(4.0, 8.0)
    assert buf.has_notes(0.0, 4.0) and not buf.has_notes(1.5, 4.0)
    peeked = buf.peek(0.0, 4.0, Meter(), 1)
    assert peeked.notes == (Note(60, 100, 0.0, 1.5), Note(60, 90, 1.0, 2.0))
    assert buf.take(0.0, 4.0, Meter(), 1) == peeked
    buf.add_note(67, 50, 5.1, 0.9)  # OSC note, quantised
    assert buf.take(4.0, 8.0, Meter(), 1).notes == (Note(67, 50, 1.0, 1.0),)


def test_quantisation_is_counted_from_the_bar_line_in_7_8() -> None:
    buf = BarBuffer(BarGrid(Meter(7, 8)), lambda m: 0.5)  # eighth-note grid
    buf.note_on(0, 60, 100, 3.45)  # bar 1 starts at 3.5
    buf.note_off(0, 60, 3.9)
    assert buf.take(0.0, 3.5, Meter(7, 8), 1).notes == ()
    assert buf.take(3.5, 7.0, Meter(7, 8), 1).notes == (Note(60, 100, 0.0, 0.5),)


def test_overlapping_same_pitch_notes_still_held_at_the_phrase_end_are_clipped_in_order() -> None:
    buf = _buffer()
    buf.note_on(0, 62, 100, 2.0)
    buf.note_on(0, 62, 80, 3.0)
    buf.note_off(0, 62, 3.5)  # ends the note from 2.0; the one from 3.0 is held over the bar line
    assert buf.held == 1
    assert buf.take(0.0, 4.0, Meter(), 1).notes == (Note(62, 100, 2.0, 1.5), Note(62, 80, 3.0, 1.0))
    assert buf.held == 0 and not buf.note_off(0, 62, 4.5)  # its late note-off is ignored
