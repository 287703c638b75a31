"""In-memory Harness shared by the Conductor tests: fake clock, rule models run synchronously."""

from __future__ import annotations

import dataclasses
from collections import Counter
from types import MappingProxyType

from musebridge.core.actions import (
    Action,
    ClearOutput,
    ScheduleNotes,
    SendOsc,
    SubmitJob,
)
from musebridge.core.bars import Grid
from musebridge.core.conductor import Conductor
from musebridge.core.music import Meter
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


def continue_preset(**cont: int) -> Preset:
    """A continue-mode preset of 2-bar phrases with these ContinueSettings."""
    return preset("continue", bars=2, continuation=ContinueSettings(**cont))


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
