"""The output scheduler with a fake sender and fake time: timing, tempo changes, note hygiene."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from musebridge.core.actions import ClearOutput, ScheduleNotes, TempoChanged
from musebridge.core.music import Note
from musebridge.core.schedule import OutputSchedule
from musebridge.core.tempo import TempoMap
from musebridge.daemon.scheduler import MidiBytes, OutputScheduler


class FakeOutput:
    def __init__(self) -> None:
        self.sent: list[MidiBytes] = []

    def send(self, data: Sequence[int]) -> None:
        self.sent.append(tuple(data))


class FakeTimedOutput(FakeOutput):
    def __init__(self) -> None:
        super().__init__()
        self.timed: list[tuple[float, MidiBytes]] = []

    def send_at(self, data: Sequence[int], when: float) -> None:
        self.timed.append((when, tuple(data)))


def tempo(bpm: float = 120.0, playing: bool = True) -> TempoChanged:
    return TempoChanged(TempoMap(anchor_time=10.0, anchor_beat=0.0, bpm=bpm, playing=playing))


def notes(*pitches_starts: tuple[int, float]) -> tuple[Note, ...]:
    return tuple(Note(p, 100, s, 0.5) for p, s in pitches_starts)


def make(output: FakeOutput | None = None) -> tuple[OutputScheduler, FakeOutput, list[float]]:
    now = [10.0]
    out = output or FakeOutput()
    scheduler = OutputScheduler(out, OutputSchedule(), clock=lambda: now[0])
    return scheduler, out, now


def test_events_are_sent_at_their_beat_and_next_wake_is_reported() -> None:
    scheduler, out, now = make()
    scheduler.apply(tempo(120.0))  # 0.5 s a beat from t=10
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 1.0), (64, 2.0)), replace_from=0.0))
    assert scheduler.service(10.4) == pytest.approx(10.5)
    assert out.sent == []
    assert scheduler.service(10.5) == pytest.approx(10.75)  # note 60 on; its off is at beat 1.5
    assert out.sent == [(0x90, 60, 100)]
    scheduler.service(11.1)
    assert out.sent == [(0x90, 60, 100), (0x80, 60, 0), (0x90, 64, 100)]
    assert scheduler.stats().late == 2  # due at 10.75 and 11.0, both sent at 11.1


def test_tempo_change_moves_pending_events() -> None:
    scheduler, out, now = make()
    scheduler.apply(tempo(120.0))
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 4.0)), replace_from=0.0))
    assert scheduler.service(10.0) == pytest.approx(12.0)
    scheduler.apply(tempo(60.0))  # one beat a second: beat 4 sounds at t=14
    assert scheduler.service(12.0) == pytest.approx(14.0)
    assert out.sent == []


def test_stopped_transport_sends_nothing_and_stop_closes_open_scheduled_notes() -> None:
    scheduler, out, now = make()
    scheduler.apply(tempo(120.0))
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 0.0)), replace_from=0.0))
    scheduler.service(10.0)
    assert out.sent == [(0x90, 60, 100)]
    scheduler.apply(tempo(120.0, playing=False))
    assert out.sent[-1] == (0x80, 60, 0)
    assert scheduler.service(20.0) is None
    assert scheduler.stats().sounding == 0


def test_replacing_a_phrase_closes_the_notes_it_leaves_open() -> None:
    scheduler, out, now = make()
    scheduler.apply(tempo(120.0))
    scheduler.apply(ScheduleNotes(0, 2, notes((60, 0.0)), replace_from=0.0))
    scheduler.service(10.0)  # note on, its off scheduled at beat 0.5
    scheduler.apply(ScheduleNotes(0, 2, notes((67, 0.25)), replace_from=0.1))
    assert scheduler.service(10.0) == pytest.approx(10.05)  # its off moved to beat 0.1
    scheduler.service(10.125)
    assert out.sent == [(0x92, 60, 100), (0x82, 60, 0), (0x92, 67, 100)]


def test_panic_closes_thru_and_scheduled_notes_with_all_notes_off() -> None:
    scheduler, out, now = make()
    scheduler.apply(tempo(120.0))
    scheduler.send_now((0x91, 50, 90))  # a thru note, still held
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 0.0), (62, 3.0)), replace_from=0.0))
    scheduler.service(10.0)
    scheduler.panic()
    tail = out.sent[2:]
    assert sorted(tail[:2]) == [(0x80, 60, 0), (0x81, 50, 0)]
    assert sorted(tail[2:]) == [(0xB0, 64, 0), (0xB0, 123, 0), (0xB1, 64, 0), (0xB1, 123, 0)]
    assert scheduler.service(20.0) is None  # the rest was dropped
    assert scheduler.stats().sounding == 0


@pytest.mark.parametrize("strikes", [2, 3000])
def test_panic_closes_a_key_as_often_as_it_was_struck(strikes: int) -> None:
    """Issue 13: a key struck twice before its note-off left one note sounding after panic."""
    scheduler, out, now = make()
    for _ in range(strikes):
        scheduler.send_now((0x90, 60, 100))
    scheduler.send_now((0x90, 62, 100))
    scheduler.apply(ClearOutput(None, panic=True))
    assert out.sent.count((0x80, 60, 0)) == strikes and out.sent.count((0x80, 62, 0)) == 1
    assert out.sent[-2:] == [(0xB0, 64, 0), (0xB0, 123, 0)]
    assert scheduler.stats().sounding == 0


def test_panic_also_runs_the_outputs_own_panic() -> None:
    """Notes a port wrote itself (JACK's same-cycle thru) are known only to the port."""
    class PanickingOutput(FakeOutput):
        panics = 0

        def panic(self) -> None:
            self.panics += 1

    scheduler, out, now = make(PanickingOutput())
    scheduler.apply(ClearOutput(None, panic=True))
    assert out.panics == 1
    scheduler.apply(ClearOutput(None))  # a transport stop is no panic
    assert out.panics == 1


def test_clear_output_of_one_track() -> None:
    scheduler, out, now = make()
    scheduler.apply(tempo(120.0))
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 0.0)), replace_from=0.0))
    scheduler.apply(ScheduleNotes(1, 1, notes((70, 1.0)), replace_from=0.0))
    scheduler.service(10.0)
    scheduler.apply(ClearOutput(track=0))
    assert out.sent == [(0x90, 60, 100), (0x80, 60, 0)]
    scheduler.service(10.5)
    assert out.sent[-1] == (0x91, 70, 100)


def test_timed_output_gets_events_ahead_with_their_exact_time() -> None:
    out = FakeTimedOutput()
    now = [10.0]
    scheduler = OutputScheduler(out, OutputSchedule(), clock=lambda: now[0], lookahead_s=0.01)
    assert scheduler.timed
    scheduler.apply(tempo(120.0))
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 1.0)), replace_from=0.0))
    assert scheduler.service(10.0) == pytest.approx(10.49)
    scheduler.service(10.492)
    assert out.timed == [(pytest.approx(10.5), (0x90, 60, 100))]
    now[0] = 10.493
    scheduler.panic()  # the note-off must not precede the note-on in flight
    assert out.timed[1] == (pytest.approx(10.5), (0x80, 60, 0))


def test_a_failing_output_is_counted_and_does_not_raise() -> None:
    class Broken(FakeOutput):
        def send(self, data: Sequence[int]) -> None:
            raise OSError("port gone")

    scheduler, out, now = make(Broken())
    scheduler.apply(tempo(120.0))
    scheduler.apply(ScheduleNotes(0, 0, notes((60, 0.0)), replace_from=0.0))
    scheduler.service(10.0)
    assert scheduler.stats().errors == 1


def test_the_thread_sends_on_time_and_stop_closes_notes() -> None:
    out = FakeOutput()
    stamps: list[float] = []

    class Stamping(FakeOutput):
        def send(self, data: Sequence[int]) -> None:
            stamps.append(time.perf_counter())
            out.send(data)

    scheduler = OutputScheduler(Stamping(), OutputSchedule())
    start = time.perf_counter()
    scheduler.apply(TempoChanged(TempoMap(start, 0.0, 600.0)))  # 0.1 s a beat
    scheduler.apply(ScheduleNotes(0, 0, (Note(60, 100, 0.5, 5.0),), replace_from=0.0))
    scheduler.start()
    deadline = time.monotonic() + 5.0
    while not out.sent and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    scheduler.stop()
    assert out.sent[0] == (0x90, 60, 100)
    assert stamps[0] >= start + 0.05  # never early (lateness goes to the benchmark, not an assert)
    assert (0x80, 60, 0) in out.sent[1:]
    assert scheduler.stats().sounding == 0
