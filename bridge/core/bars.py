"""Bars and the input buffer: where bar lines fall, quantisation, and completed notes per track.

Capture rule (what makes "output exactly on the next bar" possible): a note whose quantised start
falls on or after a phrase's end belongs to the next phrase, so a phrase's content is final half a grid
step before its end. The job for a phrase can therefore be dispatched at `phrase_end - lead` with
`lead = half a grid step` (grid off: a small lookahead converted to beats), its deadline at phrase_end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from musebridge.core.music import Meter, Note, Phrase

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class MeterSegment:
    """From bar `start_bar` (at song beat `start_beat`) on, bars have `meter`."""

    start_bar: int
    start_beat: float
    meter: Meter


class BarGrid:
    """Bar index <-> song beat, with meter changes that take effect at bar lines.

    Bar 0 starts at `origin` (song beat). Bar numbering is monotonic: a meter change never renumbers
    the bars before it. Beats before the origin belong to negative bars of the first meter.
    """

    def __init__(self, meter: Meter, origin: float = 0.0) -> None:
        self._segments: list[MeterSegment] = [MeterSegment(0, origin, meter)]

    @property
    def segments(self) -> tuple[MeterSegment, ...]:
        return tuple(self._segments)

    def _segment_for_bar(self, bar: int) -> MeterSegment:
        for seg in reversed(self._segments):
            if bar >= seg.start_bar:
                return seg
        return self._segments[0]

    def _segment_for_beat(self, beat: float) -> MeterSegment:
        for seg in reversed(self._segments):
            if beat >= seg.start_beat - _EPS:
                return seg
        return self._segments[0]

    def bar_start(self, bar: int) -> float:
        """Song beat where `bar` starts."""
        seg = self._segment_for_bar(bar)
        return seg.start_beat + (bar - seg.start_bar) * seg.meter.beats_per_bar

    def bar_end(self, bar: int) -> float:
        return self.bar_start(bar + 1)

    def bar_at(self, beat: float) -> int:
        """The bar containing `beat` (a beat on a bar line belongs to the bar it starts)."""
        seg = self._segment_for_beat(beat)
        return seg.start_bar + math.floor((beat - seg.start_beat) / seg.meter.beats_per_bar + _EPS)

    def meter_at_bar(self, bar: int) -> Meter:
        return self._segment_for_bar(bar).meter

    def meter_at(self, beat: float) -> Meter:
        return self._segment_for_beat(beat).meter

    def segment_start_bar(self, bar: int) -> int:
        """First bar of the meter segment containing `bar` (phrases are counted from it)."""
        return self._segment_for_bar(bar).start_bar

    def is_segment_start(self, bar: int) -> bool:
        return any(seg.start_bar == bar for seg in self._segments)

    def change_meter(self, meter: Meter, at_beat: float) -> int:
        """Switch to `meter` at the first bar line at or after `at_beat`; returns that bar.

        Later segments (changes scheduled further ahead) are dropped. A change to the meter already in
        force at that bar does nothing.
        """
        bar = self.bar_at(at_beat)
        if self.bar_start(bar) < at_beat - _EPS:
            bar += 1
        if self.meter_at_bar(bar) == meter and not any(s.start_bar > bar for s in self._segments):
            return bar
        start_beat = self.bar_start(bar)
        self._segments = [s for s in self._segments if s.start_bar < bar]
        if not self._segments:
            self._segments = [MeterSegment(bar, start_beat, meter)]
        else:
            self._segments.append(MeterSegment(bar, start_beat, meter))
        return bar

    def reset(self, meter: Meter, origin: float = 0.0) -> None:
        """Forget every meter change: one meter from `origin`."""
        self._segments = [MeterSegment(0, origin, meter)]


@dataclass(frozen=True, slots=True)
class Grid:
    """Quantisation grid: `steps` per beat or per bar; steps == 0 turns quantisation off."""

    steps: int = 4
    per: str = "beat"  # "beat" | "bar"

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"grid steps must be >= 0, got {self.steps}")
        if self.per not in ("beat", "bar"):
            raise ValueError(f"grid per must be 'beat' or 'bar', got {self.per!r}")

    @property
    def enabled(self) -> bool:
        return self.steps > 0

    def step_beats(self, meter: Meter) -> float:
        """Length of one grid step in beats (0.0 when off)."""
        if not self.enabled:
            return 0.0
        if self.per == "beat":
            return 1.0 / self.steps
        return meter.beats_per_bar / self.steps


def quantise(beat: float, step: float, origin: float = 0.0) -> float:
    """`beat` rounded to the nearest grid step counted from `origin` (ties go later); step 0 = off."""
    if step <= 0:
        return beat
    return origin + math.floor((beat - origin) / step + 0.5 + _EPS) * step


@dataclass(slots=True)
class _OpenNote:
    pitch: int
    velocity: int
    start: float  # quantised song beat


class BarBuffer:
    """What one track played, as completed notes in song beats, ready to be cut into phrases.

    Note-on/off pairs are matched per (channel, pitch) first in, first out: when two notes of one
    pitch overlap, the first note-off ends the note that started first (as the MIDI files the
    offline reader takes pair them). Starts and ends are quantised with `step` from the bar line of
    the note's bar (`grid` gives bar lines; step 0 = no quantisation). A note keeps at least one
    step (or its raw length with the grid off).
    """

    def __init__(self, grid: BarGrid, step_of: Callable[[Meter], float]) -> None:
        self._grid = grid
        self._step_of = step_of  # Meter -> step in beats
        self._open: dict[tuple[int, int], list[_OpenNote]] = {}  # oldest first
        self._done: list[Note] = []

    def _q(self, beat: float) -> tuple[float, float]:
        meter = self._grid.meter_at(beat)
        step = self._step_of(meter)
        origin = self._grid.bar_start(self._grid.bar_at(beat))
        return quantise(beat, step, origin), step

    def note_on(self, channel: int, pitch: int, velocity: int, beat: float) -> None:
        start, _ = self._q(beat)
        self._open.setdefault((channel, pitch), []).append(_OpenNote(pitch, velocity, start))

    def note_off(self, channel: int, pitch: int, beat: float) -> bool:
        """Close the oldest open note of (channel, pitch); False when there was none (e.g. it was
        closed at a phrase end)."""
        key = (channel, pitch)
        held = self._open.get(key)
        if not held:
            return False
        open_note = held.pop(0)
        if not held:
            del self._open[key]
        end, step = self._q(beat)
        minimum = step if step > 0 else 1e-3
        duration = max(end - open_note.start, minimum)
        self._done.append(Note(open_note.pitch, open_note.velocity, open_note.start, duration))
        return True

    def add_note(self, pitch: int, velocity: int, start: float, duration: float) -> None:
        """A completed note (OSC input): start and end quantised like played notes."""
        q_start, step = self._q(start)
        q_end, _ = self._q(start + duration)
        minimum = step if step > 0 else 1e-3
        self._done.append(Note(pitch, velocity, q_start, max(q_end - q_start, minimum)))

    def has_notes(self, start: float, end: float) -> bool:
        """True if a note (done or still held) starts in [start, end)."""
        if any(start - _EPS <= n.start < end - _EPS for n in self._done):
            return True
        return any(start - _EPS <= o.start < end - _EPS for o in self._held())

    def _held(self) -> list[_OpenNote]:
        return [o for notes in self._open.values() for o in notes]

    def is_silent(self, start: float, end: float) -> bool:
        """True if nothing starts or sounds in [start, end)."""
        for n in self._done:
            if n.start < end - _EPS and n.end > start + _EPS:
                return False
        return not any(o.start < end - _EPS for o in self._held())

    def first_start(self) -> float | None:
        starts = [n.start for n in self._done] + [o.start for o in self._held()]
        return min(starts) if starts else None

    def take(self, start: float, end: float, meter: Meter, bars: int) -> Phrase:
        """Remove and return the notes starting in [start, end) as a phrase (starts relative to start).

        Notes still held are closed at `end` (their later note-off is then ignored); notes that ring
        past `end` are cut there. Notes starting before `start` are dropped.
        """
        return self._extract(start, end, meter, bars, remove=True)

    def peek(self, start: float, end: float, meter: Meter, bars: int) -> Phrase:
        """Like take, but leaves the buffer as it is (held notes are shown closed at `end`)."""
        return self._extract(start, end, meter, bars, remove=False)

    def _extract(self, start: float, end: float, meter: Meter, bars: int, remove: bool) -> Phrase:
        kept: list[Note] = []
        remaining: list[Note] = []
        for n in self._done:
            if n.start < start - _EPS:
                continue
            if n.start < end - _EPS:
                kept.append(Note(n.pitch, n.velocity, n.start - start, min(n.end, end) - n.start))
            else:
                remaining.append(n)
        for key, notes in list(self._open.items()):
            for o in notes:
                if o.start < end - _EPS and o.start >= start - _EPS:
                    kept.append(Note(o.pitch, o.velocity, o.start - start, end - o.start))
            if remove:
                later = [o for o in notes if o.start >= end - _EPS]
                if later:
                    self._open[key] = later
                else:
                    del self._open[key]
        if remove:
            self._done = remaining
        return Phrase(tuple(n for n in kept if n.duration > _EPS), bars=bars, meter=meter)

    def discard_before(self, beat: float) -> None:
        """Forget completed notes starting before `beat` and held notes started before it."""
        self._done = [n for n in self._done if n.start >= beat - _EPS]
        kept = {k: [o for o in notes if o.start >= beat - _EPS] for k, notes in self._open.items()}
        self._open = {k: notes for k, notes in kept.items() if notes}

    def clear(self) -> None:
        self._done.clear()
        self._open.clear()

    @property
    def held(self) -> int:
        return len(self._held())
