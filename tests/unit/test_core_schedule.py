"""OutputSchedule: ordering, replacement, re-struck pitches and note-offs on every path."""

from __future__ import annotations

from collections import Counter

from musebridge.core.music import Note
from musebridge.core.schedule import OutputSchedule

ON, OFF = 0x90, 0x80


def balanced(messages: list[tuple[int, ...]]) -> bool:
    """Every note-on is followed by exactly one note-off for its channel and pitch."""
    sounding: Counter[tuple[int, int]] = Counter()
    for m in messages:
        if m[0] & 0xF0 == ON:
            if sounding[(m[0] & 15, m[1])]:
                return False  # re-struck without an off first
            sounding[(m[0] & 15, m[1])] += 1
        elif m[0] & 0xF0 == OFF:
            if not sounding[(m[0] & 15, m[1])]:
                return False  # off without on
            sounding[(m[0] & 15, m[1])] -= 1
    return not +sounding


def test_events_come_out_in_beat_order_offs_before_ons() -> None:
    s = OutputSchedule()
    s.schedule(1, 0, [Note(60, 100, 0.0, 1.0), Note(62, 90, 1.0, 1.0)], replace_from=0.0)
    assert s.pop_due(-0.1) == []
    assert s.pop_due(0.0) == [(ON, 60, 100)]
    assert s.pop_due(1.0) == [(OFF, 60, 0), (ON, 62, 90)]
    assert s.open_notes() == {(0, 62)}
    assert s.next_beat() == 2.0
    assert s.pop_due(5.0) == [(OFF, 62, 0)]
    assert s.open_notes() == set()


def test_replacement_drops_later_events_and_closes_open_notes() -> None:
    s = OutputSchedule()
    s.schedule(1, 2, [Note(60, 100, 0.0, 8.0), Note(64, 100, 5.0, 1.0)], replace_from=0.0)
    out = s.pop_due(1.0)
    assert out == [(ON | 2, 60, 100)]
    s.schedule(1, 2, [Note(67, 80, 4.0, 1.0)], replace_from=4.0)
    out += s.pop_due(10.0)
    assert out == [(ON | 2, 60, 100), (OFF | 2, 60, 0), (ON | 2, 67, 80), (OFF | 2, 67, 0)]
    assert balanced(out)


def test_replacement_never_recalls_popped_events() -> None:
    s = OutputSchedule()
    s.schedule(1, 0, [Note(60, 100, 3.0, 4.0)], replace_from=0.0)
    out = s.pop_due(3.5)  # popped ahead (lookahead): the on at 3.0 is out
    s.schedule(1, 0, [], replace_from=2.0)  # replacement from before the horizon
    out += s.pop_due(3.5)
    assert out == [(ON, 60, 100), (OFF, 60, 0)]
    assert s.pending() == 0


def test_re_struck_pitch_gets_its_off_first_and_one_off_per_on() -> None:
    s = OutputSchedule()
    s.schedule(1, 0, [Note(60, 100, 0.0, 2.0)], replace_from=0.0)
    s.schedule(2, 0, [Note(60, 90, 1.0, 2.0)], replace_from=1.0)  # another track, same channel
    out = s.pop_due(10.0)
    assert out == [(ON, 60, 100), (OFF, 60, 0), (ON, 60, 90), (OFF, 60, 0)]


def test_clear_and_all_off_release_everything() -> None:
    s = OutputSchedule()
    s.schedule(1, 0, [Note(60, 100, 0.0, 4.0), Note(61, 100, 2.0, 1.0)], replace_from=0.0)
    s.schedule(2, 1, [Note(70, 100, 0.0, 4.0)], replace_from=0.0)
    out = s.pop_due(0.5)
    out += s.clear(1)
    assert out[-1] == (OFF, 60, 0)
    assert s.pending(1) == 0 and s.pending(2) == 1
    out += s.all_off()
    assert out[-3:] == [(OFF | 1, 70, 0), (0xB0, 123, 0), (0xB1, 123, 0)]
    assert s.pop_due(100.0) == []
    assert balanced([m for m in out if m[0] & 0xF0 in (ON, OFF)])


def test_random_schedules_stay_balanced() -> None:
    import random

    rng = random.Random(3)
    s = OutputSchedule()
    out: list[tuple[int, ...]] = []
    beat = 0.0
    for _ in range(300):
        beat += rng.choice([0.0, 0.25, 0.5])
        track = rng.randrange(3)
        notes = [
            Note(rng.randrange(60, 64), 100, beat + rng.random() * 4, rng.choice([0.1, 0.5, 2.0, 6.0]))
            for _ in range(rng.randrange(4))
        ]
        s.schedule(track, rng.randrange(2), notes, replace_from=beat + rng.random())
        out += s.pop_due(beat + rng.random())
        if rng.random() < 0.05:
            out += s.clear(track)
    out += s.pop_due(beat + 100)
    out += s.all_off()
    assert balanced([m for m in out if m[0] & 0xF0 in (ON, OFF)])
