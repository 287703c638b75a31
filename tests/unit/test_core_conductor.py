"""The Conductor end to end in memory: fake clock, rule models run synchronously, exact beat lists."""

from __future__ import annotations

import dataclasses
from collections import Counter
from types import MappingProxyType

import pytest

from musebridge.core.actions import (
    Action,
    ClearOutput,
    ScheduleNotes,
    SendMidi,
    SendOsc,
    SubmitJob,
    TempoChanged,
)
from musebridge.core.bars import Grid
from musebridge.core.conductor import Conductor
from musebridge.core.music import Meter, Note
from musebridge.core.rule_models import RULE_MODEL_NAMES, build_rule_model
from musebridge.core.schedule import OutputSchedule
from musebridge.presets import ContinueSettings, Preset, TrackSettings

CLIENT = ("127.0.0.1", 50000)
TICK_120 = 0.5 / 24


RULE_MODELS = {
    "transfer": "transpose", "continue": "transpose", "interpolate": "blend", "sample": "transpose",
}


def preset(mode: str = "transfer", bars: int = 1, meter: Meter | None = None, **kw: object) -> Preset:
    """A preset whose modes all run the rule models (they run synchronously here)."""
    base = Preset(name="test", meter=meter or Meter(4, 4), tempo=120.0, grid=Grid(4, "beat"),
                  models=MappingProxyType(RULE_MODELS))
    defaults = TrackSettings(mode=mode, phrase_bars=bars)
    return dataclasses.replace(base, defaults=defaults, **kw)  # type: ignore[arg-type]


class Harness:
    """Feeds a Conductor and performs its actions in memory (output schedule, job runner, OSC log)."""

    def __init__(self, p: Preset, *, clock: str = "auto", run_jobs: bool = True, **kw: object) -> None:
        self.c = Conductor(p, now=0.0, clock=clock, **kw)  # type: ignore[arg-type]
        self.sched = OutputSchedule()
        self.models = {n: build_rule_model(n, p.model_options.get(n)) for n in RULE_MODEL_NAMES}
        self.run_jobs = run_jobs
        self.held: list[SubmitJob] = []
        self.actions: list[tuple[float, Action]] = []
        self.out: list[tuple[float, tuple[int, ...]]] = []  # (beat, bytes) as the output plays them
        self.now = 0.0

    def apply(self, actions: list[Action], time: float) -> None:
        """Perform actions in order; jobs run (or are held) after the whole list, like the engine."""
        submitted = []
        for a in actions:
            self.actions.append((time, a))
            if isinstance(a, SubmitJob):
                submitted.append(a)
            elif isinstance(a, ScheduleNotes):
                self.sched.schedule(a.track, a.channel, a.notes, a.replace_from)
            elif isinstance(a, ClearOutput):
                beat = self.c.tempo_map.beat_at(time)
                offs = self.sched.all_off() if a.track is None else self.sched.clear(a.track)
                self.out += [(beat, m) for m in offs]
        for a in submitted:
            if self.run_jobs:
                self.finish(a, time)
            else:
                self.held.append(a)

    def finish(self, submit: SubmitJob, time: float, error: str | None = None) -> None:
        job = submit.job
        phrase = None if error else self.models[job.model].generate(job.request)
        self.apply(self.c.handle_result(job.job_id, phrase, error, time, 0.002), time)

    def midi(self, time: float, *data: int) -> None:
        self.advance(time)
        self.apply(self.c.handle_midi(data, time), time)

    def osc(self, time: float, address: str, *args: object, sender: tuple[str, int] = CLIENT) -> None:
        self.advance(time)
        self.apply(self.c.handle_osc(address, tuple(args), sender, time), time)

    def advance(self, until: float) -> None:
        """Call tick at every time the conductor asks for, popping output as it falls due."""
        while True:
            t = min(self.c.next_tick_time(self.now), until)
            t = max(t, self.now)
            self.apply(self.c.tick(t), t)
            self.pop(t)
            self.now = t
            if t >= until:
                break

    def pop(self, time: float) -> None:
        m = self.c.tempo_map
        if m.playing:
            self.out += [(e.beat, e.data) for e in self.sched.pop_due_events(m.beat_at(time))]

    def of(self, kind: type) -> list:
        return [a for _, a in self.actions if isinstance(a, kind)]

    def osc_sent(self, address: str) -> list[SendOsc]:
        return [a for a in self.of(SendOsc) if a.address == address]


def note(h: Harness, start_s: float, end_s: float, pitch: int, vel: int = 100, ch: int = 0) -> None:
    h.midi(start_s, 0x90 | ch, pitch, vel)
    h.midi(end_s, 0x80 | ch, pitch, 0)


def assert_balanced(messages: list[tuple[int, ...]]) -> None:
    sounding: Counter[tuple[int, int]] = Counter()
    for m in messages:
        key = (m[0] & 15, m[1]) if len(m) > 1 else None
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            assert not sounding[key], f"re-struck without off: {m}"
            sounding[key] += 1
        elif m[0] & 0xF0 == 0x80:
            assert sounding[key], f"off without on: {m}"
            sounding[key] -= 1
    assert not +sounding, f"hanging notes: {+sounding}"


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
    assert ClearOutput(None) in h.of(ClearOutput)


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
    note(h, t, t + 0.1, 65)  # beat ~8: a job for bar 2 will be in flight at the stop
    h.advance(t + 1.97)  # no ticks: the follower extrapolates the map past the dispatch point
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


# -- call and response ---------------------------------------------------------------------------


def continue_preset(**cont: int) -> Preset:
    return preset("continue", bars=2, continuation=ContinueSettings(**cont))


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


# -- OSC control ----------------------------------------------------------------------------------


def test_hello_ping_status_and_errors() -> None:
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", 50001, sender=("127.0.0.1", 40000))
    assert h.osc_sent("/musebridge/welcome")[0].target == ("127.0.0.1", 50001)
    h.osc(0.1, "/musebridge/ping", sender=("127.0.0.1", 40000))
    assert h.osc_sent("/musebridge/pong")[0].target == ("127.0.0.1", 50001)
    h.osc(0.2, "/musebridge/ping", sender=("127.0.0.1", 40001))  # unregistered: answer the sender
    assert h.osc_sent("/musebridge/pong")[1].target == ("127.0.0.1", 40001)
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
    h.midi(0.3, 0x80, 60, 0)  # forwarded: its note-on went out thru
    h.midi(0.4, 0x90, 62, 100)  # transfer mode: not echoed
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
