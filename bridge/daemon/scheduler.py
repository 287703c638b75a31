"""The output scheduler: sends scheduled notes at their time and owns note hygiene on the MIDI output.

It holds core's pure note schedule (OutputSchedule, in beats) and the current TempoMap (beats <->
perf_counter seconds).
`service(now)` sends whatever is due and says when to wake next; the output thread loops on it:

- untimed outputs (rtmidi): wait on a condition until `spin_s` before the event, then spin on the
  clock and send at the time;
- timed outputs (JACK, `send_at(data, time)`): hand events over `lookahead_s` ahead, stamped with
  their exact time, so they land on the exact frame.

Note hygiene: every note-on written is counted per (channel, pitch). A replaced phrase closes what it
leaves open (core's schedule places those note-offs), transport stop closes every scheduled note, and panic,
shutdown and the crash path close every note ever opened on the output (thru notes included; a key
struck n times gets n note-offs), plus sustain off and All Notes Off on each channel used, and the
port's own panic (what JACK's same-cycle thru wrote). On timed outputs those note-offs are stamped
no earlier than the last event already handed over, so a note-on in flight cannot outlive its
note-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from musebridge.core.actions import ClearOutput, ScheduleNotes, TempoChanged
from musebridge.core.music import Note
from musebridge.core.schedule import DueEvent, OutputSchedule
from musebridge.core.tempo import TempoMap

log = logging.getLogger(__name__)

MidiBytes = tuple[int, ...]


class MidiOutput(Protocol):
    """Where MIDI goes: `send(data)` now. Timed outputs also have `send_at(data, time)`."""

    def send(self, data: Sequence[int]) -> None: ...


class NoteSchedule(Protocol):
    """What the scheduler needs of core's pure schedule (musebridge.core.schedule.OutputSchedule)."""

    def schedule(self, track: int, channel: int, notes: Iterable[Note], replace_from: float) -> None: ...

    def pop_due_events(self, beat: float) -> list[DueEvent]: ...

    def next_beat(self) -> float | None: ...

    def clear(self, track: int) -> list[MidiBytes]: ...

    def all_off(self) -> list[MidiBytes]: ...


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    sent: int
    late: int
    max_late_s: float
    sounding: int
    errors: int


def _is_note_on(data: Sequence[int]) -> bool:
    return len(data) >= 3 and data[0] & 0xF0 == 0x90 and data[2] > 0


def _is_note_off(data: Sequence[int]) -> bool:
    return len(data) >= 3 and (data[0] & 0xF0 == 0x80 or (data[0] & 0xF0 == 0x90 and data[2] == 0))


class OutputScheduler:
    """Plays `schedule` on `output` by `tempo_map`; thread-safe; `start()` runs the output thread.

    clock: perf_counter seconds (inject a fake in tests and call `service(now)` directly).
    lookahead_s: how early timed outputs get their events (ignored for untimed ones).
    spin_s: how long before an event an untimed output stops sleeping and spins.
    late_s: an event sent later than this after its time is counted late.
    """

    def __init__(
        self,
        output: MidiOutput,
        schedule: NoteSchedule | None = None,
        *,
        tempo_map: TempoMap | None = None,
        clock: Callable[[], float] = time.perf_counter,
        timed: bool | None = None,
        lookahead_s: float = 0.010,
        spin_s: float = 0.0005,
        late_s: float = 0.001,
    ) -> None:
        self._output = output
        self._schedule: NoteSchedule = schedule if schedule is not None else OutputSchedule()
        self._send_at = getattr(output, "send_at", None) if timed in (None, True) else None
        if timed and self._send_at is None:
            raise ValueError("timed=True needs an output with send_at(data, time)")
        self.timed = self._send_at is not None
        self._tempo = tempo_map or TempoMap(clock(), 0.0, 120.0, playing=False)
        self._clock = clock
        self._lookahead = lookahead_s if self.timed else 0.0
        self._spin = spin_s
        self._late_s = late_s
        self._lock = threading.Condition()
        self._sounding: Counter[tuple[int, int]] = Counter()
        self._channels_used: set[int] = set()
        self._horizon = 0.0  # latest time an event was stamped with (timed outputs)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._sent = self._late = self._errors = 0
        self._max_late = 0.0
        self.on_error: Callable[[BaseException], None] | None = None

    # -- from the conductor thread ------------------------------------------------------------
    def apply(self, action: ScheduleNotes | ClearOutput | TempoChanged) -> None:
        """Take a scheduling action from the conductor."""
        now = self._clock()
        with self._lock:
            if isinstance(action, TempoChanged):
                was_playing = self._tempo.playing
                self._tempo = action.tempo_map
                if was_playing and not action.tempo_map.playing:  # transport stop: close scheduled notes
                    offs = [data for data in self._schedule.all_off() if data[0] & 0xF0 != 0xB0]
                    self._write_all(offs, now)
            elif isinstance(action, ScheduleNotes):
                self._schedule.schedule(action.track, action.channel, action.notes, action.replace_from)
            elif isinstance(action, ClearOutput) and action.panic:
                self._panic(now)
            elif isinstance(action, ClearOutput):
                offs = (self._schedule.all_off() if action.track is None
                        else self._schedule.clear(action.track))
                self._write_all(offs, now)
            else:
                raise TypeError(f"the scheduler does not take {type(action).__name__}")
            self._lock.notify()

    def send_now(self, data: Sequence[int]) -> None:
        """Send MIDI bytes now (the thru path), tracking any note it opens or closes."""
        with self._lock:
            self._write(tuple(data), self._clock(), None)

    def release_if_sounding(self, data: Sequence[int]) -> bool:
        """Send `data` if it is a note-off for a note sounding on this output (the crash path of
        an input handler: a key released must still close its note). True when sent."""
        with self._lock:
            if not _is_note_off(data) or self._sounding[(data[0] & 0x0F, data[1])] == 0:
                return False
            self._write(tuple(data), self._clock(), None)
            return True

    def panic(self) -> None:
        """Drop everything scheduled and close every note ever opened on this output: one note-off per
        note-on still open (per key counts), sustain off and All Notes Off on every channel used; then
        the output's own panic where it has one (ports that forward input themselves, JACK's
        same-cycle thru, release what they wrote)."""
        with self._lock:
            self._panic(self._clock())
            self._lock.notify()

    def _panic(self, now: float) -> None:
        self._write_all([data for data in self._schedule.all_off() if data[0] & 0xF0 != 0xB0], now)
        self._all_notes_off(now)  # what is left (thru notes), then sustain off + CC 123 per channel
        output_panic = getattr(self._output, "panic", None)
        if callable(output_panic):
            try:
                output_panic()
            except Exception:
                self._errors += 1
                log.exception("the MIDI output's panic failed")

    @property
    def tempo_map(self) -> TempoMap:
        with self._lock:
            return self._tempo

    def stats(self) -> SchedulerStats:
        with self._lock:
            return SchedulerStats(self._sent, self._late, self._max_late, sum(self._sounding.values()),
                                  self._errors)

    # -- the output thread ----------------------------------------------------------------------
    def service(self, now: float) -> float | None:
        """Send everything due by `now` (+ lookahead on timed outputs); the next wake-up time or None."""
        with self._lock:
            tempo = self._tempo
            if not tempo.playing:
                return None
            due = self._schedule.pop_due_events(tempo.beat_at(now + self._lookahead))
            for event in due:
                at = tempo.time_at(event.beat)
                self._write(event.data, now, max(at, self._horizon) if self.timed else None)
                lateness = now - at if not self.timed else max(0.0, now - at)
                if lateness > self._late_s:
                    self._late += 1
                self._max_late = max(self._max_late, lateness)
            next_beat = self._schedule.next_beat()
            if next_beat is None:
                return None
            return tempo.time_at(next_beat) - self._lookahead

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="musebridge-output", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the output thread, then close every note (the shutdown path)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.panic()

    def _run(self) -> None:
        while True:
            try:
                wake = self._wait_until_due()
                if wake is None:
                    return
                if not self.timed:
                    while self._clock() < wake:  # the last stretch: spin for precision
                        pass
                self.service(self._clock())
            except Exception as error:  # the crash path: note-offs, report, keep going
                log.exception("output scheduler error")
                self._errors += 1
                try:
                    self.panic()
                except Exception:
                    log.exception("note-offs after a scheduler error failed")
                if self.on_error is not None:
                    self.on_error(error)
                time.sleep(0.01)

    def _wait_until_due(self) -> float | None:
        """Block until the next event is within spin_s (its time), or None once stopping."""
        while True:
            now = self._clock()
            wake = self.service(now)
            with self._lock:
                if self._stopping:
                    return None
                if wake is None:
                    self._lock.wait(0.5)
                    continue
                remaining = wake - self._clock()
                if remaining > self._spin:
                    self._lock.wait(remaining - self._spin)
                    continue
                return wake

    # -- writing (lock held) --------------------------------------------------------------------
    def _write_all(self, events: Sequence[MidiBytes], now: float) -> None:
        """Note-offs of hygiene, now; on timed outputs never before an event already handed over."""
        for data in events:
            self._write(data, now, max(now, self._horizon) if self.timed else None)

    def _write(self, data: MidiBytes, now: float, at: float | None) -> None:
        try:
            if at is not None and self._send_at is not None:
                self._send_at(data, at)
                self._horizon = max(self._horizon, at)
            else:
                self._output.send(data)
        except Exception:
            self._errors += 1
            log.exception("MIDI write of %s failed", list(data))
            return
        self._sent += 1
        if len(data) >= 3 and data[0] & 0xF0 in (0x80, 0x90):
            key = (data[0] & 0x0F, data[1])
            self._channels_used.add(key[0])
            if _is_note_on(data):
                self._sounding[key] += 1
            elif _is_note_off(data) and self._sounding[key] > 0:
                self._sounding[key] -= 1
                if self._sounding[key] == 0:
                    del self._sounding[key]

    def _all_notes_off(self, now: float) -> None:
        at = max(now, self._horizon) if self.timed else None
        for (channel, pitch), count in sorted(self._sounding.items()):
            for _ in range(count):
                self._write((0x80 | channel, pitch, 0), now, at)
        for channel in sorted(self._channels_used):
            self._write((0xB0 | channel, 64, 0), now, at)  # sustain off: a held pedal keeps notes on
            self._write((0xB0 | channel, 123, 0), now, at)  # All Notes Off
        self._sounding.clear()
