"""The Conductor end to end in memory: call and response, interpolate, clips, OSC notes."""

from __future__ import annotations

import dataclasses

from conductor_harness import Harness, continue_preset, note, preset

from musebridge.core.actions import (
    ScheduleNotes,
    SendMidi,
    SendOsc,
    SubmitJob,
)
from musebridge.core.music import Note

# -- call and response ---------------------------------------------------------------------------


def test_continue_answers_after_a_silent_bar_for_the_call_length() -> None:
    h = Harness(continue_preset(silent_bars=1, max_call_bars=8))
    h.osc(0.0, "/musebridge/hello", 50001)
    note(h, 2.0, 2.5, 60)  # bar 1 (beats 4..8)
    note(h, 4.0, 4.5, 62)  # bar 2
    h.advance(7.99)  # bar 3 is silent: the call is bars 1..2; answer lands on bar 4 (beat 16)
    jobs = h.of(SubmitJob)
    assert len(jobs) == 1
    req = jobs[0].job.request
    assert (req.mode, req.bars, jobs[0].job.land_beat) == ("continue", 2, 16.0)
    assert req.phrase.notes == (Note(60, 100, 0.0, 1.0), Note(62, 100, 4.0, 1.0))
    assert h.of(ScheduleNotes)[0].notes == (Note(72, 100, 16.0, 1.0), Note(74, 100, 20.0, 1.0))
    note(h, 8.5, 8.7, 50)  # beat 17, during the answer: ignored
    h.advance(12.5)
    states = [
        (t, a.args) for t, a in h.actions if isinstance(a, SendOsc) and a.address == "/musebridge/state"
    ]
    assert states == [
        (0.0, (1, "listening")),
        (7.9375, (1, "thinking")),
        (8.0, (1, "answering")),
        (12.0, (1, "listening")),
    ]
    assert len(h.of(SubmitJob)) == 1
    note(h, 12.5, 12.7, 64)  # beat 25, bar 6: a new call; bar 7 is silent -> answer on beat 32
    h.advance(15.99)
    assert h.of(ScheduleNotes)[-1].notes == (Note(76, 100, 33.0, 0.5),)


def test_continue_end_call_by_osc_and_cc_and_max_length() -> None:
    h = Harness(
        dataclasses.replace(continue_preset(silent_bars=2, max_call_bars=2, end_call_cc=64), name="cr")
    )
    note(h, 0.0, 0.2, 60)
    h.osc(0.5, "/musebridge/end_call", 1)  # beat 1 of bar 0 -> answer on bar 1
    assert h.of(SubmitJob)[-1].job.land_beat == 4.0
    assert h.of(SubmitJob)[-1].job.request.bars == 1
    h.advance(4.0)  # answer over at beat 8
    note(h, 4.0, 4.2, 62)  # bar 2
    h.midi(4.6, 0xB0, 64, 127)  # end_call CC: not forwarded
    assert h.of(SubmitJob)[-1].job.land_beat == 12.0
    assert not any(a.data[0] == 0xB0 for a in h.of(SendMidi))
    h.advance(8.0)  # answer over at beat 16
    note(h, 8.0, 8.2, 64)  # bar 4, 5: max_call_bars = 2 -> answer on bar 6
    note(h, 10.0, 10.2, 65)
    h.advance(11.99)
    last = h.of(SubmitJob)[-1].job
    assert last.land_beat == 24.0 and last.request.bars == 2
    with_error = Harness(preset("transfer"))
    with_error.osc(0.0, "/musebridge/end_call", 1)
    assert with_error.osc_sent("/musebridge/error")[-1].args[0] == "track 1 is in transfer mode, not continue"


# -- interpolate and clips ------------------------------------------------------------------------


def test_interpolate_captures_a_and_b_then_blends_by_position() -> None:
    h = Harness(preset("interpolate", bars=1))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.0, "/musebridge/capture", 1, "a")
    note(h, 0.0, 0.5, 60)  # bar 0 -> clip A
    h.osc(2.0, "/musebridge/capture", 1, "b")
    note(h, 2.0, 2.5, 67)  # bar 1 -> clip B
    h.advance(3.95)
    ts = h.c.track_state(1)
    assert ts.clip_a is not None and ts.clip_a.notes == (Note(60, 100, 0.0, 1.0),)
    assert ts.clip_b is not None and ts.clip_b.notes == (Note(67, 100, 0.0, 1.0),)
    assert h.of(ScheduleNotes)[0].notes == (Note(60, 100, 8.0, 1.0),)  # position 0.5, 1 bar: A
    h.osc(4.0, "/musebridge/position", 1, 0.9)
    h.advance(5.95)
    assert h.of(ScheduleNotes)[-1].notes == (Note(67, 100, 12.0, 1.0),)
    states = [
        (t, a.args[1]) for t, a in h.actions if isinstance(a, SendOsc) and a.address == "/musebridge/state"
    ]
    assert states == [
        (0.0, "idle"),  # told on hello: no clips yet
        (0.0, "capturing_a"),
        (1.9375, "idle"),  # clip A taken at bar 0's dispatch point
        (2.0, "capturing_b"),
        (3.9375, "thinking"),  # clip B taken, both clips: a job for bar 2
        (4.0, "answering"),
        (5.9375, "thinking"),  # the next phrase's job; its answer starts at beat 12
    ]


def test_clip_mode_answers_with_out_clip_and_stores_slots() -> None:
    h = Harness(preset("transfer", bars=1))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.1, "/musebridge/clip", 2, "in", 4.0, 60, 0.0, 1.0, 100, 64, 2.0, 1.0, 90)
    clip = h.osc_sent("/musebridge/out/clip")
    assert clip == [
        SendOsc(
            "/musebridge/out/clip", (2, 0, 1, 4.0, 72, 0.0, 1.0, 100, 76, 2.0, 1.0, 90), ("127.0.0.1", 50001)
        )
    ]
    h.osc(0.2, "/musebridge/clip", 2, "a", 4.0, 60, 0.0, 1.0, 100)
    assert h.c.track_state(2).clip_a is not None
    h.osc(0.3, "/musebridge/clip", 2, "in", 4.0, 60, 0.0)
    assert "groups of four" in h.osc_sent("/musebridge/error")[-1].args[0]


def test_osc_notes_come_back_as_out_notes_to_clients() -> None:
    h = Harness(preset("transfer", bars=1))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.6, "/musebridge/note", 5, 60, 100, 0.0, 1.0)
    h.advance(2.0)
    assert h.of(ScheduleNotes) == []
    assert [(a.address, a.args) for a in h.of(SendOsc) if a.address.startswith("/musebridge/out/")] == [
        ("/musebridge/out/clear", (5, 4.0)),
        ("/musebridge/out/note", (5, 72, 100, 4.0, 1.0)),
    ]
