"""The Conductor end to end in memory: thru, transfer, late results, hygiene, transport and clocks."""

from __future__ import annotations

import pytest
from conductor_harness import TICK_120, Harness, assert_balanced, note, preset

from musebridge.core.actions import (
    ClearOutput,
    ScheduleNotes,
    SendMidi,
    SubmitJob,
    TempoChanged,
)
from musebridge.core.music import Meter, Note

# -- thru -----------------------------------------------------------------------------------------


def test_thru_forwards_channel_messages_at_once_and_not_clock() -> None:
    h = Harness(preset("thru"))
    h.midi(0.1, 0x92, 60, 100)
    h.midi(0.2, 0xB2, 1, 64)
    h.midi(0.25, 0xF8)
    h.midi(0.3, 0x82, 60, 0)
    assert [(t, a.data) for t, a in h.actions if isinstance(a, SendMidi)] == [
        (0.1, (0x92, 60, 100)),
        (0.2, (0xB2, 1, 64)),
        (0.3, (0x82, 60, 0)),
    ]
    assert h.of(SubmitJob) == [] and h.of(ScheduleNotes) == []
    h.advance(10.0)
    assert h.of(SubmitJob) == []


def test_panic_releases_thru_notes_still_held() -> None:
    h = Harness(preset("thru"))
    h.midi(0.1, 0x90, 60, 100)
    h.apply(h.c.panic(0.2), 0.2)
    assert SendMidi((0x80, 60, 0)) in h.of(SendMidi)
    assert ClearOutput(None, panic=True) in h.of(ClearOutput)


# -- transfer with the transpose rule model ---------------------------------------------------------


def test_transpose_plays_each_bar_an_octave_up_on_the_next_bar_exactly() -> None:
    h = Harness(preset("transfer", bars=1))
    # 120 BPM: a beat is 0.5 s. Bar 0: C4 on beat 0 (1 beat), E4 on beat 2 (half a beat), slightly off grid.
    note(h, 0.01, 0.49, 60)
    note(h, 1.02, 1.24, 64, vel=90)
    h.advance(2.5)
    jobs = h.of(SubmitJob)
    assert len(jobs) == 1
    job = jobs[0].job
    assert (job.track, job.model, job.land_beat, job.deadline_beat) == (1, "transpose", 4.0, 4.0)
    assert job.request.phrase.notes == (Note(60, 100, 0.0, 1.0), Note(64, 90, 2.0, 0.5))
    # dispatched half a grid step (1/8 beat) before the bar line
    submit_time = next(t for t, a in h.actions if isinstance(a, SubmitJob))
    assert submit_time == pytest.approx(h.c.tempo_map.time_at(4.0 - 0.125))
    assert h.of(ScheduleNotes) == [
        ScheduleNotes(1, 0, (Note(72, 100, 4.0, 1.0), Note(76, 90, 6.0, 0.5)), replace_from=4.0)
    ]
    h.advance(5.0)
    assert h.out == [
        (4.0, (0x90, 72, 100)),
        (5.0, (0x80, 72, 0)),
        (6.0, (0x90, 76, 90)),
        (6.5, (0x80, 76, 0)),
    ]
    assert h.c.status(5.0).late == 0
    # the empty bar 1 made no job
    assert len(h.of(SubmitJob)) == 1


@pytest.mark.parametrize("meter", [Meter(3, 4), Meter(6, 8)])  # both 3 beats a bar
def test_transpose_in_3_beat_bars(meter: Meter) -> None:
    h = Harness(preset("transfer", bars=2, meter=meter))
    note(h, 0.0, 0.5, 60)  # beat 0..1 of bar 0
    note(h, 2.0, 2.5, 62)  # beat 4..5: bar 1
    h.advance(6.0)
    job = h.of(SubmitJob)[0].job
    assert (job.land_beat, job.request.bars, job.request.phrase.meter) == (6.0, 2, meter)
    assert h.of(ScheduleNotes)[0].notes == (Note(72, 100, 6.0, 1.0), Note(74, 100, 10.0, 1.0))
    assert [e for e in h.out if e[1][0] == 0x90] == [(6.0, (0x90, 72, 100)), (10.0, (0x90, 74, 100))]


def test_transpose_in_7_8() -> None:
    h = Harness(preset("transfer", bars=1, meter=Meter(7, 8)))
    note(h, 1.0, 1.25, 62)  # beat 2..2.5 of bar 0 (3.5 beats long)
    note(h, 1.74, 2.0, 64)  # beat 3.48 rounds to 3.5: the downbeat of bar 1
    h.advance(6.0)
    scheduled = h.of(ScheduleNotes)
    assert [s.replace_from for s in scheduled] == [3.5, 7.0]
    assert scheduled[0].notes == (Note(74, 100, 5.5, 0.5),)
    assert scheduled[1].notes == (Note(76, 100, 7.0, 0.5),)
    assert [e for e in h.out if e[1][0] == 0x90] == [(5.5, (0x90, 74, 100)), (7.0, (0x90, 76, 100))]


def test_tempo_change_mid_phrase_keeps_beats_and_moves_times() -> None:
    h = Harness(preset("transfer", bars=1))
    note(h, 0.5, 0.75, 60)  # beat 1..1.5 at 120 BPM
    h.osc(1.0, "/musebridge/tempo", 60.0)  # beat 2: now a beat lasts 1 s
    assert any(isinstance(a, TempoChanged) and a.tempo_map.bpm == 60.0 for a in h.of(TempoChanged))
    h.advance(2.5)
    assert h.of(SubmitJob) == []  # bar end is at beat 4 = 3.0 s now
    h.advance(3.0)
    submit_time = next(t for t, a in h.actions if isinstance(a, SubmitJob))
    assert submit_time == pytest.approx(1.0 + 1.875)
    assert h.of(ScheduleNotes)[0].notes == (Note(72, 100, 5.0, 0.5),)
    assert h.c.tempo_map.time_at(5.0) == pytest.approx(4.0)


def test_next_phrase_replaces_the_answer_and_closes_its_notes() -> None:
    h = Harness(preset("transfer", bars=1))
    h.midi(0.0, 0x90, 60, 100)  # held through the whole bar: closed at the phrase end
    h.advance(1.98)
    h.midi(2.0, 0x80, 60, 0)
    # answer 1: beat 4..8 (72); bar 1 has a note: answer 2 replaces from beat 8
    note(h, 2.5, 2.75, 62)
    h.advance(6.0)
    assert h.of(ScheduleNotes)[0].notes == (Note(72, 100, 4.0, 4.0),)
    assert h.of(ScheduleNotes)[1].notes == (Note(74, 100, 9.0, 0.5),)
    assert h.out[:2] == [(4.0, (0x90, 72, 100)), (8.0, (0x80, 72, 0))]
    assert_balanced([m for _, m in h.out])


# -- late results, model errors, hygiene -----------------------------------------------------------


def test_late_result_moves_to_the_next_bar_and_is_counted() -> None:
    h = Harness(preset("transfer", bars=1), run_jobs=False)
    note(h, 0.0, 0.5, 60)
    h.advance(1.95)
    assert len(h.held) == 1
    h.advance(2.1)  # beat 4.2: past the land beat 4.0
    h.finish(h.held.pop(), 2.1)
    assert h.of(ScheduleNotes) == [ScheduleNotes(1, 0, (Note(72, 100, 8.0, 1.0),), replace_from=8.0)]
    status = h.c.status(2.1)
    assert status.late == 1 and status.queue == 0 and status.latency_ms == pytest.approx(2.0)


def test_result_just_in_time_is_not_late() -> None:
    h = Harness(preset("transfer", bars=1), run_jobs=False)
    note(h, 0.0, 0.5, 60)
    h.advance(1.95)
    assert h.c.status(1.95).queue == 1
    h.finish(h.held.pop(), 1.99)  # 10 ms before the bar line (safety margin is 5 ms)
    assert h.of(ScheduleNotes)[0].replace_from == 4.0 and h.c.late == 0


def test_model_error_is_reported_and_the_track_goes_on() -> None:
    h = Harness(preset("transfer", bars=1), run_jobs=False)
    h.osc(0.0, "/musebridge/hello", 50001)
    note(h, 0.0, 0.5, 60)
    h.advance(1.95)
    h.finish(h.held.pop(), 1.96, error="boom")
    errors = h.osc_sent("/musebridge/error")
    assert errors[-1].args == ("model 'transpose' failed: boom", "/musebridge/transfer")
    assert errors[-1].target == ("127.0.0.1", 50001)
    assert h.c.status(2.0).model_errors == 1
    note(h, 2.0, 2.5, 62)
    h.advance(3.95)
    h.finish(h.held.pop(), 3.96)
    assert h.of(ScheduleNotes)[-1].notes == (Note(74, 100, 8.0, 1.0),)
    h.advance(6.0)
    assert_balanced([m for _, m in h.out])


@pytest.mark.parametrize("path", ["panic", "shutdown", "osc_panic"])
def test_every_note_on_gets_its_off_on_panic_and_shutdown(path: str) -> None:
    h = Harness(preset("transfer", bars=1))
    h.midi(0.0, 0x90, 60, 100)
    h.midi(1.9, 0x80, 60, 0)
    h.advance(2.2)  # the answer (beat 4..7.75) is sounding
    assert h.sched.open_notes() == {(0, 72)}
    if path == "osc_panic":
        h.osc(2.3, "/musebridge/panic")
    else:
        h.apply(getattr(h.c, path)(2.3), 2.3)
    assert h.sched.open_notes() == set()
    h.advance(6.0)
    assert_balanced([m for _, m in h.out])
    assert (0xB0, 123, 0) in [m for _, m in h.out]


def test_transport_stop_clears_output_and_late_results_are_stale() -> None:
    h = Harness(preset("transfer", bars=1), clock="midi", run_jobs=False)
    h.midi(0.0, 0xFA)
    t = 0.0
    for i in range(24 * 8):  # 8 beats of clock at 120 BPM, from t = 0
        t = i * TICK_120
        h.midi(t, 0xF8)
        if i == 0:
            h.midi(t, 0x90, 60, 100)
        if i == 12:
            h.midi(t, 0x80, 60, 0)
        if i == 24 * 4 - 2:  # beat 3.92: the job has been submitted (dispatch at 3.875)
            assert len(h.held) == 1
            h.finish(h.held.pop(), t)
    assert h.of(ScheduleNotes)[0].notes == (Note(72, 100, 4.0, 0.5),)
    # beat ~8: a job for bar 2 will be in flight at the stop
    ticks = [(t + i * TICK_120, (0xF8,)) for i in range(1, 96)]  # on to beat ~11.92, past the dispatch
    for when, data in sorted([*ticks, (t, (0x90, 65, 100)), (t + 0.1, (0x80, 65, 0))], key=lambda e: e[0]):
        h.midi(when, *data)
    assert len(h.held) == 1
    h.midi(t + 1.98, 0xFC)
    assert ClearOutput(None) in h.of(ClearOutput)
    assert h.c.status(t + 2).playing is False
    h.finish(h.held.pop(), t + 2.0)
    assert h.c.stale == 1 and len(h.of(ScheduleNotes)) == 1
    assert_balanced([m for _, m in h.out])


def test_midi_clock_drives_bars_with_jitter_and_song_position() -> None:
    h = Harness(preset("transfer", bars=1), clock="midi")
    assert h.c.status(0.0).playing is False
    h.midi(0.0, 0xF2, 16, 0)  # SPP 16 sixteenths = beat 4, while stopped
    h.midi(0.01, 0xFB)  # continue from beat 4
    for i in range(24 * 5):
        t = 0.1 + i * TICK_120 + (0.003 if i == 30 else 0.0)  # one jittery tick
        h.midi(t, 0xF8)
        if i == 2:
            h.midi(t, 0x90, 67, 100)  # beat 4 + 2/24 -> quantised to beat 4
        if i == 20:
            h.midi(t, 0x80, 67, 0)
    status = h.c.status(0.1 + 24 * 5 * TICK_120)
    assert status.clock == "midi" and status.tempo == pytest.approx(120.0)
    assert h.of(ScheduleNotes) == [ScheduleNotes(1, 0, (Note(79, 100, 8.0, 0.75),), replace_from=8.0)]
    assert h.of(SubmitJob)[0].job.request.phrase.notes == (Note(67, 100, 0.0, 0.75),)
