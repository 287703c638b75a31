"""The Conductor end to end in memory: OSC control, errors, mode changes and the remaining edges."""

from __future__ import annotations

import dataclasses

import pytest
from conductor_harness import CLIENT, TICK_120, Harness, continue_preset, note, preset

from musebridge.core.actions import (
    ClearOutput,
    PrepareModel,
    ScheduleNotes,
    SendMidi,
    SubmitJob,
)
from musebridge.core.bars import Grid
from musebridge.core.music import Meter, Note
from musebridge.presets import Preset, TrackSettings

# -- OSC control ----------------------------------------------------------------------------------


def test_registrations_are_bounded_and_the_newest_kept() -> None:
    """A controller restarting over days says hello from new ports: the daemon keeps the last
    MAX_CLIENTS registrations, so a broadcast never goes to every port it ever heard of."""
    from musebridge.core.conductor_osc import MAX_CLIENTS

    h = Harness(preset("thru"))
    for i in range(MAX_CLIENTS + 8):
        h.osc(0.0, "/musebridge/hello", 50000 + i, sender=("127.0.0.1", 40000 + i))
    assert [port for _host, port in h.c.clients] == list(range(50008, 50000 + MAX_CLIENTS + 8))
    h.apply(h.c.handle_bad_message("midi", "malformed MIDI", None, 0.1), 0.1)  # no sender: a broadcast
    assert len(h.osc_sent("/musebridge/error")) == MAX_CLIENTS
    h.osc(0.2, "/musebridge/hello", 50000, sender=("127.0.0.1", 40000))  # an old one comes back
    assert h.c.clients[-1] == ("127.0.0.1", 50000) and len(h.c.clients) == MAX_CLIENTS


def test_hello_ping_status_and_errors() -> None:
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", 50001, sender=("127.0.0.1", 40000))
    assert h.osc_sent("/musebridge/welcome")[0].target == ("127.0.0.1", 50001)
    h.osc(0.1, "/musebridge/ping", sender=("127.0.0.1", 40000))
    assert h.osc_sent("/musebridge/pong")[0].target == ("127.0.0.1", 50001)
    # A one-shot sender (liblo's oscsend: a new port per message) of a registered host gets the
    # host's registered port; a host that never said hello is answered on the sender's port.
    h.osc(0.2, "/musebridge/ping", sender=("127.0.0.1", 40001))
    assert h.osc_sent("/musebridge/pong")[1].target == ("127.0.0.1", 50001)
    h.osc(0.2, "/musebridge/ping", sender=("10.0.0.2", 40001))
    assert h.osc_sent("/musebridge/pong")[2].target == ("10.0.0.2", 40001)
    h.osc(0.2, "/musebridge/hello", 50002, sender=("127.0.0.1", 40002))  # a second client
    h.osc(0.2, "/musebridge/ping", sender=("127.0.0.1", 40000))
    h.osc(0.2, "/musebridge/ping", sender=("127.0.0.1", 40003))
    assert [a.target[1] for a in h.osc_sent("/musebridge/pong")[3:]] == [50001, 50002]
    h.osc(0.3, "/musebridge/genre", 1, "polka")
    h.osc(0.3, "/musebridge/mode", 1, "karaoke")
    h.apply(h.c.handle_bad_message("/musebridge/mode", "arg 2 'mode' expected ...", CLIENT, 0.3), 0.3)
    h.osc(0.3, "/musebridge/nope")
    reasons = [a.args for a in h.osc_sent("/musebridge/error")]
    assert reasons[0][0].startswith("unknown genre 'polka'")
    assert reasons[1][0].startswith("unknown mode 'karaoke'")
    assert reasons[3] == ("unknown address", "/musebridge/nope")
    assert h.c.track_state(1).settings.genre == "" and h.c.track_state(1).mode == "thru"
    h.osc(1.0, "/musebridge/status")
    status = h.osc_sent("/musebridge/status")[0].args
    assert status[:3] == ("thru", "internal", 120.0) and status[3] == 1 and status[5] == "thru"
    assert status[9] == 4  # errors
    assert status[4] == pytest.approx(2.0)


def test_mode_genre_bars_and_preset_loading() -> None:
    loaded = preset("transfer", bars=2, meter=Meter(3, 4))
    h = Harness(preset("thru"), preset_loader=lambda name: loaded if name == "good" else _fail(name))
    h.osc(0.0, "/musebridge/mode", 1, "transfer")
    h.osc(0.0, "/musebridge/genre", 1, "folk")
    h.osc(0.0, "/musebridge/bars", 1, 2)
    h.osc(0.0, "/musebridge/temperature", 1, 0.5)
    s = h.c.track_state(1).settings
    assert (s.mode, s.genre, s.phrase_bars, s.temperature) == ("transfer", "folk", 2, 0.5)
    h.osc(0.1, "/musebridge/preset", "bad")
    assert h.osc_sent("/musebridge/error")[-1].args == ("presets/bad.yaml: boom", "/musebridge/preset")
    h.osc(0.2, "/musebridge/preset", "good")
    assert h.c.preset is loaded and h.c.track_state(1).settings.phrase_bars == 2
    assert h.c.grid.meter_at_bar(1) == Meter(3, 4)  # from the next bar line
    # Each switch asks for its model to be loaded now, not on the first bar that needs it.
    prepared = [(t, a.model) for t, a in h.actions if isinstance(a, PrepareModel)]
    assert prepared == [(0.0, "transpose"), (0.2, "transpose")]
    h.osc(0.3, "/musebridge/mode", 1, "interpolate")
    h.osc(0.3, "/musebridge/mode", 1, "thru")
    assert [a.model for a in h.of(PrepareModel)] == ["transpose", "transpose", "blend"]


def test_the_accepted_genres_are_reported_on_hello_status_and_preset_load() -> None:
    universal = dataclasses.replace(preset("transfer"), genres=("folk", "chorale", "jazz"))
    h = Harness(preset("thru"), preset_loader=lambda name: universal)
    h.osc(0.0, "/musebridge/hello", 50001, sender=("127.0.0.1", 40000))
    first = h.osc_sent("/musebridge/genres")
    assert [(a.args, a.target) for a in first] == [(h.c.preset.genres, ("127.0.0.1", 50001))]
    h.osc(0.1, "/musebridge/preset", "universal")
    assert h.osc_sent("/musebridge/genres")[-1].args == ("folk", "chorale", "jazz")  # every client told
    h.osc(0.2, "/musebridge/genre", 1, "jazz")  # a genre only this preset lists is taken
    assert h.c.track_state(1).settings.genre == "jazz"
    h.osc(0.3, "/musebridge/status", sender=("127.0.0.1", 40000))
    assert h.osc_sent("/musebridge/genres")[-1].args == ("folk", "chorale", "jazz")
    assert len(h.osc_sent("/musebridge/genres")) == 3


def _fail(name: str) -> Preset:
    from musebridge.presets import PresetError

    raise PresetError(f"presets/{name}.yaml: boom")


def test_garbage_midi_is_counted_and_reported() -> None:
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", 50001)
    for junk in ([0x42], [0x90, 60], [0xF4], [], [0x90, 200, 1]):
        h.midi(0.1, *junk)
    errors = h.osc_sent("/musebridge/error")
    assert len(errors) == 5 and all(e.args[1] == "midi" and e.args[0].startswith("bad MIDI") for e in errors)
    assert h.c.status(0.2).errors == 5
    h.midi(0.3, 0x90, 60, 100)
    assert h.of(SendMidi)[-1].data == (0x90, 60, 100)


def test_osc_transport_leads_and_meter_changes_at_a_bar_line() -> None:
    h = Harness(preset("transfer", bars=1))
    h.osc(0.0, "/musebridge/transport", 120.0, 4, 4, 0.0, 1)
    assert h.c.status(0.0).clock == "osc"
    h.osc(1.0, "/musebridge/transport", 120.0, 7, 8, 2.0, 1)  # 7/8 from the next bar line (beat 4)
    note(h, 2.0, 2.25, 60)  # beat 4: bar 1, now 3.5 beats long
    h.advance(4.0)
    assert h.of(SubmitJob)[0].job.land_beat == 7.5
    assert h.of(ScheduleNotes)[0].notes == (Note(72, 100, 7.5, 0.5),)
    h.osc(4.0, "/musebridge/transport", 120.0, 7, 8, 8.0, 0)  # stop
    assert h.c.status(4.0).playing is False
    assert ClearOutput(None) in h.of(ClearOutput)


def test_a_thru_note_gets_its_off_after_a_mode_change() -> None:
    h = Harness(preset("thru"))
    h.midi(0.1, 0x90, 60, 100)
    h.osc(0.2, "/musebridge/mode", 1, "transfer")
    h.osc(0.2, "/musebridge/echo", 1, 0)
    h.midi(0.3, 0x80, 60, 0)  # forwarded: its note-on went out thru
    h.midi(0.4, 0x90, 62, 100)  # transfer mode with echo off: not echoed
    h.midi(0.5, 0x80, 62, 0)
    assert [a.data for a in h.of(SendMidi)] == [(0x90, 60, 100), (0x80, 60, 0)]
    assert h.of(ClearOutput) == [ClearOutput(1)]


def test_sample_mode_asks_for_a_phrase_every_phrase_even_when_silent() -> None:
    h = Harness(preset("sample", bars=2), run_jobs=False)
    h.advance(8.0)  # 16 beats: phrase ends at beats 8 and 16
    jobs = [a.job for a in h.held]
    assert [(j.request.mode, j.land_beat, j.request.bars) for j in jobs] == [
        ("sample", 8.0, 2),
        ("sample", 16.0, 2),
    ]
    assert h.c.status(8.0).queue == 2


def test_routing_both_and_out_channel_from_the_preset() -> None:
    p = dataclasses.replace(
        preset("transfer"), output="both", tracks={3: TrackSettings("transfer", 1, out_channel=9)}
    )
    h = Harness(p)
    h.osc(0.0, "/musebridge/hello", 50001)
    note(h, 0.0, 0.5, 60, ch=2)  # MIDI channel 3 (index 2) is track 3
    h.advance(2.0)
    assert h.of(ScheduleNotes) == [ScheduleNotes(3, 9, (Note(72, 100, 4.0, 1.0),), replace_from=4.0)]
    assert [a.args for a in h.osc_sent("/musebridge/out/note")] == [(3, 72, 100, 4.0, 1.0)]


def test_next_tick_time_is_the_next_dispatch_point() -> None:
    h = Harness(preset("transfer", bars=1))
    assert h.c.next_tick_time(0.0) == pytest.approx(0.25)  # never further than MAX_IDLE_S
    assert h.c.next_tick_time(1.8) == pytest.approx(1.9375)  # beat 3.875
    h.advance(1.94)
    assert h.c.next_tick_time(1.94) == pytest.approx(2.19)


def test_results_after_a_mode_change_are_stale_but_clip_answers_are_not() -> None:
    h = Harness(preset("transfer", bars=1), run_jobs=False)
    note(h, 0.0, 0.5, 60)
    h.advance(1.95)
    h.osc(1.96, "/musebridge/hello", 50001)
    h.osc(1.96, "/musebridge/clip", 1, "in", 4.0, 60, 0.0, 1.0, 100)
    h.osc(1.97, "/musebridge/mode", 1, "thru")
    assert h.c.status(1.97).queue == 2  # both still run in the engine
    for job in list(h.held):
        h.finish(job, 1.98)
    assert h.of(ScheduleNotes) == [] and h.c.stale == 1
    assert len(h.osc_sent("/musebridge/out/clip")) == 1 and h.c.status(2.0).queue == 0


def test_osc_transport_relocation_restarts_bars_and_clears_output() -> None:
    h = Harness(preset("transfer", bars=1))
    h.osc(0.0, "/musebridge/transport", 120.0, 4, 4, 0.0, 1)
    note(h, 0.0, 0.5, 60)
    h.advance(1.0)
    h.osc(1.0, "/musebridge/transport", 120.0, 4, 4, 32.0, 1)  # the DAW jumped to bar 8
    assert ClearOutput(None) in h.of(ClearOutput)
    note(h, 1.0, 1.5, 62)  # beat 32
    h.advance(3.0)
    assert [a.job.land_beat for a in h.of(SubmitJob)] == [36.0]  # bar 0 was dropped by the jump
    assert h.of(ScheduleNotes)[0].notes == (Note(74, 100, 36.0, 1.0),)


def test_auto_clock_follows_midi_clock_once_it_is_heard() -> None:
    h = Harness(preset("transfer", bars=1))
    h.advance(1.0)
    assert h.c.status(1.0).clock == "internal" and h.c.status(1.0).playing
    h.midi(1.0, 0xFA)
    assert h.c.status(1.0).clock == "midi" and not h.c.status(1.0).playing
    for i in range(30):
        h.midi(1.1 + i * TICK_120, 0xF8)
    status = h.c.status(1.1 + 29 * TICK_120)
    assert status.playing and status.beat == pytest.approx(29 / 24)


def test_end_call_without_a_call_does_nothing() -> None:
    h = Harness(continue_preset(silent_bars=1))
    h.osc(0.5, "/musebridge/end_call", 1)
    assert h.of(SubmitJob) == [] and h.osc_sent("/musebridge/error") == []


def test_bars_in_continue_mode_sets_the_answer_length() -> None:
    h = Harness(continue_preset(silent_bars=1))
    h.osc(0.0, "/musebridge/bars", 1, 3)
    note(h, 0.0, 0.5, 60)
    h.advance(3.99)
    job = h.of(SubmitJob)[0].job
    assert (job.land_beat, job.request.bars, job.request.phrase.bars) == (8.0, 3, 1)
    assert h.of(ScheduleNotes)[0].notes == (
        Note(72, 100, 8.0, 1.0),
        Note(72, 100, 12.0, 1.0),
        Note(72, 100, 16.0, 1.0),
    )


def test_a_result_that_is_not_a_phrase_is_a_model_error() -> None:
    h = Harness(preset("transfer", bars=1), run_jobs=False)
    note(h, 0.0, 0.5, 60)
    h.advance(1.95)
    job = h.held.pop().job
    h.apply(h.c.handle_result(job.job_id, "nonsense", None, 1.96, 0.01), 1.96)  # type: ignore[arg-type]
    assert h.c.model_errors == 1 and h.of(ScheduleNotes) == []
    h.apply(h.c.handle_result(999, None, "lost", 1.97, 0.01), 1.97)  # unknown job: counted as stale
    assert h.c.stale == 1


def test_clip_answer_keeps_an_odd_clip_length() -> None:
    h = Harness(preset("transfer", bars=1))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.1, "/musebridge/clip", 1, "in", 6.0, 60, 0.0, 1.0, 100, 62, 5.0, 2.0, 100)  # 1.5 bars
    reply = h.osc_sent("/musebridge/out/clip")[0]
    assert reply.args == (1, 0, 1, 6.0, 72, 0.0, 1.0, 100, 74, 5.0, 1.0, 100)


def test_grid_off_uses_the_lookahead_and_keeps_raw_timing() -> None:
    p = dataclasses.replace(preset("transfer", bars=1), grid=Grid(0), lookahead_ms=50.0)
    h = Harness(p, safety_s=0.001)
    note(h, 0.013, 0.3, 60)  # beat 0.026 .. 0.6, unquantised
    h.advance(2.0)
    submit_time = next(t for t, a in h.actions if isinstance(a, SubmitJob))
    assert submit_time == pytest.approx(2.0 - 0.05)  # 50 ms before the bar line
    (scheduled,) = h.of(ScheduleNotes)
    assert scheduled.notes[0].start == pytest.approx(4.026)
    assert scheduled.notes[0].duration == pytest.approx(0.574)
