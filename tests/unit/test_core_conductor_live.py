"""Playing it live (issue 11), in memory with the fake clock: every note of the phrase reaches the
model, captures follow the musician's order, the track table is bounded."""

from __future__ import annotations

from conductor_harness import TICK_120, Harness, continue_preset, note, preset

from musebridge.core.actions import ScheduleNotes, SendMidi, SubmitJob
from musebridge.core.conductor import MAX_TRACKS
from musebridge.core.music import Note
from musebridge.presets import parse_preset


def jobs(h: Harness) -> list[SubmitJob]:
    return h.of(SubmitJob)


def play_midi_clock(
    h: Harness, start_s: float, beats: float, first: int = 0, events: tuple = ()
) -> None:
    """MIDI clock ticks at 120 BPM from `start_s` (tick `first` onwards) for `beats` beats, with
    `events` ((time, *bytes), ...) in time order among them."""
    ticks = [(start_s + i * TICK_120, 0xF8) for i in range(first, int(beats * 24))]
    for time, *data in sorted([*ticks, *events], key=lambda e: e[0]):
        h.midi(time, *data)


# -- the phrase a musician played is the phrase the model gets ------------------------------------


def test_overlapping_same_pitch_notes_pair_first_in_first_out() -> None:
    h = Harness(preset("transfer", bars=1))
    h.midi(0.0, 0x90, 60, 100)
    h.midi(0.5, 0x90, 60, 70)  # the same key again before the first is released
    h.midi(0.75, 0x80, 60, 0)  # ends the note from beat 0
    h.midi(1.25, 0x80, 60, 0)  # ends the note from beat 1
    h.advance(1.95)
    (job,) = jobs(h)
    assert job.job.request.phrase.notes == (Note(60, 100, 0.0, 1.5), Note(60, 70, 1.0, 1.5))


def test_a_note_just_before_the_first_clock_tick_after_start_belongs_to_the_start() -> None:
    h = Harness(preset("transfer", bars=1), clock="midi")
    h.midi(1.0, 0xFA)
    h.midi(1.009, 0x90, 64, 100)  # 1 ms before the first tick (one JACK cycle)
    h.midi(1.010, 0xF8)
    play_midi_clock(h, 1.010, 4.2, first=1, events=((1.2, 0x80, 64, 0),))
    (job,) = jobs(h)
    assert job.job.request.phrase.notes == (Note(64, 100, 0.0, 0.5),)
    assert job.job.land_beat == 4.0


def test_notes_before_a_start_that_never_ticked_are_forgotten_at_the_next_start() -> None:
    h = Harness(preset("transfer", bars=1), clock="midi")
    h.midi(1.0, 0xFA)
    h.midi(1.005, 0x90, 64, 100)
    h.midi(1.006, 0xFC)  # stopped before the first tick: nothing played
    h.midi(1.5, 0xFA)
    h.midi(1.51, 0xF8)
    play_midi_clock(h, 1.51, 4.2, first=1)
    assert not jobs(h)


# -- captures follow the musician ------------------------------------------------------------------


def test_capture_armed_while_stopped_takes_the_first_phrase_after_play() -> None:
    h = Harness(preset("interpolate", bars=1))  # auto: the internal clock runs until MIDI clock comes
    h.advance(300.0)  # five minutes of uptime: the internal clock is at beat 600
    h.osc(300.0, "/musebridge/capture", 1, "a")
    h.midi(301.0, 0xFA)
    h.midi(301.0, 0xF8)
    # beat 0.2 of the song -> 0.25 on the grid
    play_midi_clock(h, 301.0, 4.2, first=1, events=((301.1, 0x90, 62, 100), (301.35, 0x80, 62, 0)))
    ts = h.c.track_state(1)
    assert ts.clip_a is not None and ts.clip_a.notes == (Note(62, 100, 0.25, 0.5),)
    assert ts.capture_slot is None


def test_capture_b_while_a_is_pending_keeps_both_in_order() -> None:
    h = Harness(preset("interpolate", bars=1))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.0, "/musebridge/capture", 1, "a")
    h.osc(0.1, "/musebridge/capture", 1, "b")  # A has not been taken yet
    h.osc(0.2, "/musebridge/capture", 1, "b")  # asked twice: still one capture
    assert h.c.track_state(1).captures == ["a", "b"]
    note(h, 0.0, 0.5, 60)  # bar 0 -> A
    note(h, 2.0, 2.5, 67)  # bar 1 -> B
    h.advance(3.95)
    ts = h.c.track_state(1)
    assert ts.clip_a is not None and ts.clip_a.notes == (Note(60, 100, 0.0, 1.0),)
    assert ts.clip_b is not None and ts.clip_b.notes == (Note(67, 100, 0.0, 1.0),)
    states = [a.args[1] for a in h.osc_sent("/musebridge/state")]
    assert states[:4] == ["idle", "capturing_a", "capturing_b", "thinking"]


def test_loop_switched_on_while_a_new_call_is_played_waits_for_that_calls_answer() -> None:
    """Rule: a note played after the last answer ended starts a new call at once; the loop switched
    on then does not replay the old answer over the call: it repeats the new call's answer."""
    h = Harness(continue_preset(silent_bars=1, max_call_bars=8))
    note(h, 2.0, 2.5, 60)  # call on bar 1, silent bar 2: the answer lands on beat 12 (bars 3)
    h.advance(8.0)  # beat 16: the 1-bar answer (12..16) is over
    assert [a.replace_from for a in h.of(ScheduleNotes)] == [12.0]
    note(h, 8.5, 8.75, 65)  # a new call starts in bar 4 (beats 16..20)
    h.osc(9.0, "/musebridge/loop", 1, 1)  # loop on while it is being played (bar 4 not final yet)
    h.advance(12.2)  # beat 24.4: bar 5 silent -> the new answer on beat 24
    schedules = [(a.replace_from, a.notes) for a in h.of(ScheduleNotes)]
    assert [land for land, _ in schedules] == [12.0, 24.0], "the old answer must not play over the call"
    assert schedules[1][1] == (Note(77, 100, 25.0, 0.5),)
    h.advance(14.2)  # beat 28.4: now the loop repeats the new answer
    assert [a.replace_from for a in h.of(ScheduleNotes)] == [12.0, 24.0, 28.0]


# -- bounded track state ---------------------------------------------------------------------------


def test_track_ids_past_the_maximum_are_refused_with_an_error() -> None:
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", 50001)
    for track in range(100, 100 + 2 * MAX_TRACKS):
        h.osc(0.0, "/musebridge/genre", track, "")
    assert h.c.status(0.0).tracks == MAX_TRACKS
    errors = [a.args for a in h.osc_sent("/musebridge/error")]
    assert len(errors) == MAX_TRACKS + 1  # the default track 1 counts; every id past the maximum
    assert errors[0] == (f"too many tracks: {MAX_TRACKS} is the most (track {100 + MAX_TRACKS - 1} refused)",
                         "/musebridge/genre")
    h.midi(0.1, 0x9F, 60, 100)  # MIDI channel 16 is always a track
    assert h.c.track_state(16).mode == "thru"


def test_the_documented_track_maximum_is_the_daemons() -> None:
    from musebridge.osc_spec import load_spec

    rules = dict(load_spec().rules)
    assert f"at most {MAX_TRACKS} tracks" in rules["Tracks"]


# -- MIDI port and device: one phrase, one model input ---------------------------------------------

# pitch, velocity, start beat, length in beats: two overlapping notes of one pitch, and the last note
# held from beat 6 over the phrase end (beat 8) to beat 10.
PHRASE = [(60, 100, 0.3, 1.1), (64, 90, 1.0, 3.0), (64, 70, 2.0, 2.5), (67, 120, 6.0, 4.0)]


def _events() -> list[tuple[float, int, int]]:
    """(beat, pitch, velocity or 0) in playing order."""
    events = [(start, p, v) for p, v, start, _ in PHRASE] + [(s + d, p, 0) for p, _, s, d in PHRASE]
    return sorted(events, key=lambda e: (e[0], e[2]))


def test_the_same_phrase_through_the_midi_port_and_the_device_gives_the_same_model_input() -> None:
    via_midi = Harness(preset("transfer", bars=2))  # the internal clock at 120 BPM: beat = 2 x seconds
    for beat, pitch, velocity in _events():
        via_midi.midi(beat / 2, 0x90 if velocity else 0x80, pitch, velocity)
    via_midi.advance(5.5)

    via_device = Harness(preset("transfer", bars=2), clock="osc")
    via_device.osc(0.0, "/musebridge/transport", 120.0, 4, 4, 0.0, 1)
    for beat, pitch, velocity in _events():
        if velocity:
            via_device.osc(beat / 2, "/musebridge/note_on", 7, pitch, velocity, beat)
        else:
            via_device.osc(beat / 2, "/musebridge/note_off", 7, pitch, beat)
    via_device.advance(5.5)

    (midi_job,), (device_job,) = jobs(via_midi), jobs(via_device)
    assert midi_job.job.request == device_job.job.request
    assert midi_job.job.request.phrase.notes == (
        Note(60, 100, 0.25, 1.25),
        Note(64, 90, 1.0, 3.0),
        Note(64, 70, 2.0, 2.5),
        Note(67, 120, 6.0, 2.0),  # held over the phrase end: in the phrase, clipped at beat 8
    )


def test_a_device_note_held_to_the_bar_line_is_in_the_answer() -> None:
    """Issue 11's example: 4/4 at 120 BPM, 4-bar phrase, transport every bar, the last note from
    beat 14 to 16 at velocity 120 (its note-off comes after the dispatch point)."""
    h = Harness(preset("transfer", bars=4), clock="osc")
    h.osc(0.0, "/musebridge/hello", 50001)
    for bar in range(4):
        h.osc(bar * 2.0, "/musebridge/transport", 120.0, 4, 4, bar * 4.0, 1)
        if bar == 0:
            h.osc(0.0, "/musebridge/note_on", 5, 60, 100, 0.0)
            h.osc(0.5, "/musebridge/note_off", 5, 60, 1.0)
    h.osc(7.0, "/musebridge/note_on", 5, 67, 120, 14.0)
    h.osc(8.0, "/musebridge/transport", 120.0, 4, 4, 16.0, 1)
    h.osc(8.0, "/musebridge/note_off", 5, 67, 16.0)  # arrives at the bar line, after the dispatch point
    h.advance(8.1)
    (job,) = jobs(h)
    assert job.job.request.phrase.notes == (Note(60, 100, 0.0, 1.0), Note(67, 120, 14.0, 2.0))
    answer = [a.args for a in h.osc_sent("/musebridge/out/note")]
    assert (5, 79, 120, 30.0, 2.0) in answer  # transposed an octave up, on the next phrase


# -- the clock never lies --------------------------------------------------------------------------


def test_midi_clock_lost_without_a_stop_stops_playing_and_auto_falls_back() -> None:
    h = Harness(preset("transfer", bars=1))  # auto
    h.osc(0.0, "/musebridge/hello", 50001)
    h.midi(1.0, 0xFA)
    h.midi(1.0, 0xF8)
    # ticks until beat 2 (t = 2.0), then nothing; a note is held when the cable is pulled
    play_midi_clock(h, 1.0, 2.0, first=1, events=((1.2, 0x90, 60, 100),))
    assert h.c.status(2.0).clock == "midi" and h.c.tempo_map.playing
    h.advance(2.2)
    assert not h.osc_sent("/musebridge/clock")  # 200 ms: not lost yet (a stalled sender is not lost)
    h.advance(2.4)  # 250 ms (8 ticks at 120 BPM is 167 ms) after the last tick
    assert [a.args for a in h.osc_sent("/musebridge/clock")] == [("midi", "lost")]
    assert h.osc_sent("/musebridge/out/panic"), "playing stops with every note off"
    status = h.c.status(2.5)
    assert status.clock == "internal (midi lost)" and status.playing  # auto: the next source leads
    warnings = [a.text for _, a in h.actions if type(a).__name__ == "LogWarning"]
    assert warnings and "MIDI clock lost" in warnings[0]
    # /musebridge/tempo works again now that the internal clock leads; MIDI clock coming back leads.
    h.osc(2.5, "/musebridge/tempo", 90.0)
    assert h.c.status(2.5).tempo == 90.0
    h.midi(3.0, 0xFA)
    h.midi(3.0, 0xF8)
    assert [a.args for a in h.osc_sent("/musebridge/clock")][-1] == ("midi", "following")
    assert h.c.status(3.0).clock == "midi"


def test_midi_clock_lost_with_clock_midi_stops_and_says_so() -> None:
    h = Harness(preset("transfer", bars=1), clock="midi")
    h.osc(0.0, "/musebridge/hello", 50001)
    h.midi(1.0, 0xFA)
    play_midi_clock(h, 1.0, 1.0)
    h.advance(3.0)
    assert [a.args for a in h.osc_sent("/musebridge/clock")] == [("midi", "lost")]
    status = h.c.status(3.0)
    assert status.clock == "midi (lost)" and not status.playing


def test_tempo_under_an_external_clock_is_answered_with_an_error_naming_it() -> None:
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.midi(0.5, 0xF8)  # MIDI clock seen: it leads
    h.osc(0.6, "/musebridge/tempo", 150.0)
    (error,) = h.osc_sent("/musebridge/error")
    assert error.args == ("the midi clock is in charge of the tempo; /musebridge/tempo sets the internal "
                          "clock only", "/musebridge/tempo")


# -- status per track ------------------------------------------------------------------------------


def test_status_per_track_and_for_the_whole_picture() -> None:
    h = Harness(preset("transfer", bars=1))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.0, "/musebridge/mode", 3, "continue")
    h.osc(0.0, "/musebridge/genre", 3, "folk")
    note(h, 0.5, 0.75, 60)  # track 1 plays: a job, answered with latency 2 ms (the harness's)
    h.advance(2.1)
    h.osc(2.1, "/musebridge/status", 3)
    h.osc(2.1, "/musebridge/status")
    h.osc(2.1, "/musebridge/status", 1, 99)
    per_track = [a.args for a in h.osc_sent("/musebridge/status/track")]
    assert per_track == [
        (3, "continue", "folk", "listening", -1.0, 0),  # asked for track 3
        (1, "transfer", "", "answering", 2.0, 0),  # the whole picture: every track
        (3, "continue", "folk", "listening", -1.0, 0),
        (1, "transfer", "", "answering", 2.0, 0),  # track 1 asked with an unknown one
    ]
    assert len(h.osc_sent("/musebridge/status")) == 3
    assert h.osc_sent("/musebridge/error")[-1].args == ("no track 99 (known: 2 tracks)", "/musebridge/status")


def test_late_answers_are_counted_per_track() -> None:
    h = Harness(preset("transfer", bars=1), run_jobs=False)
    note(h, 0.5, 0.75, 60, ch=0)
    note(h, 0.5, 0.75, 62, ch=1)
    h.advance(1.95)
    first, second = h.held
    h.finish(first, 1.96)  # in time
    h.finish(second, 2.2)  # after its land beat (4.0): moved to bar 2, late
    assert h.c.track_status(1)[5] == 0 and h.c.track_status(2)[5] == 1 and h.c.late == 1


# -- monitoring ------------------------------------------------------------------------------------


def test_a_player_hears_what_they_play_in_model_modes_by_default_and_echo_switches_it() -> None:
    h = Harness(preset("transfer", bars=1))
    note(h, 0.1, 0.2, 60)  # echoed: the player hears the notes while the model answers later
    h.osc(0.3, "/musebridge/echo", 1, 0)
    note(h, 0.4, 0.5, 62)  # echo off: only the answers are heard
    h.osc(0.6, "/musebridge/echo", 1, 2)
    assert [a.data for a in h.of(SendMidi)] == [(0x90, 60, 100), (0x80, 60, 0)]
    assert h.osc_sent("/musebridge/error")[-1].args == ("echo must be 0 or 1, got 2", "/musebridge/echo")
    off = parse_preset({"name": "quiet", "echo_input": False}, "quiet.yaml")
    assert off.defaults.echo_input is False and preset("transfer").defaults.echo_input is True
