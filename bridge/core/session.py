"""Per-track settings and state, and the decisions each track makes at bar and phrase boundaries.

Decisions are returned as JobPlan values (what to ask a model, where its answer lands); the
Conductor turns them into jobs and actions. Boundaries are processed at a bar's dispatch point
(`bar_end - lead`, see bars.py): from then on the bar's content is final.

Modes:
- thru: nothing is generated (input is still buffered for `capture`).
- transfer: each completed non-empty phrase -> job -> plays on the next phrase.
- continue: a call starts with its first note; it ends on `silent_bars` silent bars, on end_call
  (OSC or a CC mapped in the preset) or after `max_call_bars`; the answer starts on the next bar
  and lasts the track's `answer_bars` (set by /musebridge/bars in continue mode), else the preset's
  continue.answer_bars, else (0) the call's length. Input during thinking and during the first
  answer is ignored. With the loop on, the last answer repeats from where it ends, bar-aligned,
  until a new call is played (input during a repetition is a call) or the loop is switched off;
  mutate asks the model for a new answer primed with the last one, which then replaces it.
- interpolate: with clips A and B present, each phrase boundary decodes the current position
  -> plays on the next phrase.
- sample: a new phrase each phrase.
Phrases are counted in bars from the start of the current meter segment, so a meter change also
ends a phrase.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from musebridge.core.bars import BarBuffer, BarGrid
from musebridge.core.music import Meter, Phrase
from musebridge.presets import ContinueSettings, TrackSettings

_EPS = 1e-9
STATES = ("idle", "listening", "capturing_a", "capturing_b", "thinking", "answering", "looping")


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A model job a track wants: the request's content and where its answer lands."""

    track: int
    mode: str
    phrase: Phrase
    bars: int
    land_beat: float
    deadline_beat: float
    genre: str = ""
    temperature: float = 1.0
    position: float = 0.0
    clip_a: Phrase | None = None
    clip_b: Phrase | None = None


@dataclass(slots=True)
class TrackState:
    """One track: its settings (changed by OSC), its input buffer and its call/capture state."""

    track: int
    settings: TrackSettings
    buffer: BarBuffer
    source: str | None = None  # "midi" | "osc": where its input came from last
    in_channel: int | None = None
    phrase_start: float | None = None  # song beat where the phrase being collected started
    clip_a: Phrase | None = None
    clip_b: Phrase | None = None
    captures: list[str] = field(default_factory=list)  # slots asked for, in order (a then b, say)
    capture_from: float = -math.inf  # the first capture takes the first phrase starting here or later
    call_start_bar: int | None = None
    silent_run: int = 0
    answer_bars: int = 0  # continue: answer length set by /musebridge/bars (0 = preset / call length)
    busy_until: float = -math.inf  # continue: input is ignored before this beat (thinking/answering)
    answer_start: float = -math.inf  # beat where the scheduled answer starts
    answer_end: float = -math.inf  # beat where the scheduled answer ends
    loop: bool = False  # continue: repeat the last answer until a new call
    last_answer: Phrase | None = None  # continue: the last answer landed (relative to its downbeat)
    mutate_held: bool = False  # continue: the mutate CC is down (a press triggers once)
    jobs: set[int] = field(default_factory=set)
    generation: int = 0  # bumped when in-flight results become stale (mode change, stop, panic)
    latency_ms: float = -1.0  # the track's last job, submit to result (-1: none yet)
    late: int = 0  # answers of this track that landed on a later bar than asked
    answered: int = 0  # answers played (loop repetitions not counted)
    state: str = ""  # last state reported

    @property
    def mode(self) -> str:
        return self.settings.mode

    def reset_progress(self) -> None:
        """Forget input, call and phrase progress (transport stop, relocation, mode change)."""
        self.buffer.clear()
        self.phrase_start = None
        self.call_start_bar = None
        self.silent_run = 0
        self.busy_until = -math.inf
        self.answer_start = -math.inf
        self.answer_end = -math.inf
        self.jobs.clear()
        self.generation += 1

    @property
    def capture_slot(self) -> str | None:
        """The slot the next complete phrase goes to (None: no capture armed)."""
        return self.captures[0] if self.captures else None

    def request_capture(self, slot: str, beat: float, lead: float) -> None:
        """Capture the next complete phrase (one starting at or after `beat - lead`) as clip `slot`.

        Captures queue in the order asked: `b` asked while `a` waits takes the phrase after `a`'s.
        Asking again for a slot already waiting changes nothing."""
        if slot not in ("a", "b"):
            raise ValueError(f"capture slot must be 'a' or 'b', got {slot!r}")
        if slot in self.captures:
            return
        if not self.captures:
            self.capture_from = beat - lead
        self.captures.append(slot)

    def rearm_captures(self, beat: float) -> None:
        """The transport (re)started at `beat`: waiting captures take the first phrase from here."""
        if self.captures:
            self.capture_from = beat

    def _capture(self, phrase: Phrase) -> None:
        self.store_clip(self.captures.pop(0), phrase)

    def store_clip(self, slot: str, phrase: Phrase) -> None:
        if slot == "a":
            self.clip_a = phrase
        elif slot == "b":
            self.clip_b = phrase
        else:
            raise ValueError(f"clip slot must be 'a' or 'b', got {slot!r}")

    def desired_state(self, beat: float) -> str:
        """The state to report now."""
        if self.capture_slot is not None:
            return f"capturing_{self.capture_slot}"
        if self.mode == "thru":
            return "idle"
        if self.jobs or beat < self.answer_start - _EPS:
            return "thinking"
        if beat < self.answer_end - _EPS:
            return "looping" if self.loop and self.mode == "continue" else "answering"
        if self.mode == "interpolate" and (self.clip_a is None or self.clip_b is None):
            return "idle"
        return "listening"

    # -- boundaries -------------------------------------------------------------------------------

    def _plan(self, mode: str, phrase: Phrase, bars: int, land: float, **extra: object) -> JobPlan:
        s = self.settings
        return JobPlan(
            track=self.track,
            mode=mode,
            phrase=phrase,
            bars=bars,
            land_beat=land,
            deadline_beat=land,
            genre=s.genre,
            temperature=s.temperature,
            position=s.position,
            **extra,  # type: ignore[arg-type]
        )

    def on_bar_end(self, bar: int, grid: BarGrid, cont: ContinueSettings) -> JobPlan | None:
        """Bar `bar` is final (its dispatch point passed): update state, maybe plan a job."""
        bar_start, bar_end = grid.bar_start(bar), grid.bar_end(bar)
        if self.phrase_start is None:
            self.phrase_start = bar_start
        if self.mode == "continue":
            return self._continue_bar_end(bar, grid, cont)
        if not self._is_phrase_end(bar, grid):
            return None
        return self._phrase_end(bar, grid, bar_end)

    def _is_phrase_end(self, bar: int, grid: BarGrid) -> bool:
        if grid.is_segment_start(bar + 1):
            return True
        return (bar + 1 - grid.segment_start_bar(bar)) % self.settings.phrase_bars == 0

    def next_phrase_bars(self, bar: int, grid: BarGrid) -> int:
        """Bars in the phrase that starts at bar `bar` (cut short by a meter change ahead)."""
        n = self.settings.phrase_bars
        done = (bar - grid.segment_start_bar(bar)) % n
        length = n - done
        for k in range(1, length):
            if grid.is_segment_start(bar + k):
                return k
        return length

    def take_phrase(self, start: float, end: float, grid: BarGrid) -> Phrase:
        first_bar = grid.bar_at(start)
        bars = max(1, grid.bar_at(end) - first_bar)  # `end` is a bar line
        return self.buffer.take(start, end, grid.meter_at_bar(first_bar), bars)

    def _phrase_end(self, bar: int, grid: BarGrid, bar_end: float) -> JobPlan | None:
        start = self.phrase_start if self.phrase_start is not None else grid.bar_start(bar)
        phrase = self.take_phrase(start, bar_end, grid)
        self.phrase_start = bar_end
        if self.captures and start >= self.capture_from - _EPS and phrase.notes:
            self._capture(phrase)
        mode = self.mode
        bars = self.next_phrase_bars(bar + 1, grid)
        if mode == "transfer":
            return self._plan("transfer", phrase, bars, bar_end) if phrase.notes else None
        if mode == "sample":
            return self._plan("sample", phrase, bars, bar_end)
        if mode == "interpolate" and self.clip_a is not None and self.clip_b is not None:
            return self._plan("interpolate", phrase, bars, bar_end, clip_a=self.clip_a, clip_b=self.clip_b)
        return None

    def _continue_bar_end(self, bar: int, grid: BarGrid, cont: ContinueSettings) -> JobPlan | None:
        bar_start, bar_end = grid.bar_start(bar), grid.bar_end(bar)
        if self.capture_slot is not None and self._is_phrase_end(bar, grid):
            start = self.phrase_start if self.phrase_start is not None else bar_start
            if start >= self.capture_from - _EPS and self.buffer.has_notes(start, bar_end):
                # A capture copies the phrase; the call goes on with the same notes.
                bars = max(1, grid.bar_at(bar_end) - grid.bar_at(start))
                self._capture(self.buffer.peek(start, bar_end, grid.meter_at_bar(bar), bars))
        if self._is_phrase_end(bar, grid):
            self.phrase_start = bar_end
        if bar_end <= self.busy_until + _EPS or self.jobs:
            self.buffer.discard_before(min(bar_end, max(self.busy_until, bar_start)))
            return None
        if self.busy_until > bar_start:
            self.buffer.discard_before(self.busy_until)
        if self.call_start_bar is None:
            first = self.buffer.first_start()
            if first is None or first >= bar_end - _EPS:
                return None
            self.call_start_bar = min(grid.bar_at(first), bar)
            self.silent_run = 0
        if self.buffer.is_silent(bar_start, bar_end):
            self.silent_run += 1
        else:
            self.silent_run = 0
        call_bars = bar + 1 - self.call_start_bar
        if self.silent_run >= cont.silent_bars:
            end_bar = bar + 1 - cont.silent_bars
            if end_bar <= self.call_start_bar:  # only silence: no call after all
                self.call_start_bar = None
                self.silent_run = 0
                return None
            return self._answer(end_bar, bar + 1, grid, cont)
        if call_bars >= cont.max_call_bars:
            return self._answer(bar + 1, bar + 1, grid, cont)
        return None

    def _answer(self, call_end_bar: int, land_bar: int, grid: BarGrid, cont: ContinueSettings) -> JobPlan:
        assert self.call_start_bar is not None
        start = grid.bar_start(self.call_start_bar)
        call = self.take_phrase(start, grid.bar_start(call_end_bar), grid)
        answer_bars = self.answer_bars or cont.answer_bars or call.bars
        land = grid.bar_start(land_bar)
        self.call_start_bar = None
        self.silent_run = 0
        self.busy_until = grid.bar_start(land_bar + answer_bars)
        self.buffer.clear()
        return self._plan("continue", call, answer_bars, land)

    def end_call(self, beat: float, lead: float, grid: BarGrid, cont: ContinueSettings) -> JobPlan | None:
        """The call is over now (OSC end_call or the preset's CC): answer from the next bar."""
        if self.mode != "continue" or self.jobs or beat < self.busy_until - _EPS:
            return None
        first = self.buffer.first_start()
        if self.call_start_bar is None:
            if first is None:
                return None
            self.call_start_bar = grid.bar_at(first)
        land_bar = next_bar_line(beat, lead, grid)
        return self._answer(land_bar, land_bar, grid, cont)

    def _between_calls(self) -> bool:
        """Continue mode with an answer to reuse, no job in flight and no call being played (a note
        played since the answer's input-ignoring time starts a new call, even before its first bar
        is final: the loop then waits for that call's answer instead of replaying the old one)."""
        first = self.buffer.first_start()
        new_call = first is not None and first >= self.busy_until - _EPS
        return (
            self.mode == "continue"
            and self.last_answer is not None
            and not self.jobs
            and self.call_start_bar is None
            and not new_call
        )

    def loop_due(self, bar: int, grid: BarGrid) -> bool:
        """Bar `bar` is final: True when the loop plays the last answer again from the bar line ahead
        (the playing answer ends there and no new call has started)."""
        return self.loop and self._between_calls() and abs(self.answer_end - grid.bar_end(bar)) <= _EPS

    def loop_start_beat(self, beat: float, lead: float, grid: BarGrid) -> float | None:
        """The loop was just switched on: the bar line where the last answer starts again, or None
        when an answer still plays (it repeats from its end) or there is nothing to repeat."""
        if not self._between_calls() or self.answer_end > beat + lead + _EPS:
            return None  # nothing to repeat, or the playing answer's end is still ahead (loop_due)
        return grid.bar_start(next_bar_line(beat, lead, grid))

    def mutation(self, beat: float, lead: float, grid: BarGrid, cont: ContinueSettings) -> JobPlan | None:
        """Mutate: a continue job primed with the last answer, landing where the playing answer ends
        (else on the next bar line); None when there is no answer yet, a job is in flight or a call
        is being played."""
        if not self._between_calls():
            return None
        assert self.last_answer is not None
        land = grid.bar_start(next_bar_line(beat, lead, grid))
        if self.answer_end > land + _EPS:
            land = self.answer_end
        bars = self.answer_bars or cont.answer_bars or self.last_answer.bars
        return self._plan("continue", self.last_answer, bars, land)


def next_bar_line(beat: float, lead: float, grid: BarGrid) -> int:
    """The first bar that starts at or after `beat + lead` (an answer needs `lead` to be computed)."""
    land_bar = grid.bar_at(beat + lead)
    if grid.bar_start(land_bar) < beat + lead - _EPS:
        land_bar += 1
    return land_bar


def new_track(
    track: int, settings: TrackSettings, grid: BarGrid, step_of: Callable[[Meter], float]
) -> TrackState:
    """A fresh track with an empty buffer on `grid`."""
    return TrackState(track=track, settings=settings, buffer=BarBuffer(grid, step_of))
