"""Clock followers: internal clock, MIDI clock (start/stop/continue/SPP, jittery ticks), OSC transport."""

from __future__ import annotations

import pytest

from musebridge.core.clock import ClockSelector, InternalClock, MidiClockFollower, OscTransportFollower

TICK_120 = 0.5 / 24  # seconds per tick at 120 BPM


def test_internal_clock_tempo_change_keeps_beat_continuous() -> None:
    clock = InternalClock(120.0, start_time=10.0)
    assert clock.tempo_map.beat_at(11.0) == pytest.approx(2.0)
    clock.set_tempo(60.0, 11.0)
    assert clock.tempo_map.beat_at(11.0) == pytest.approx(2.0)
    assert clock.tempo_map.beat_at(12.0) == pytest.approx(3.0)
    assert clock.tempo_map.time_at(4.0) == pytest.approx(13.0)


def test_midi_start_first_tick_is_beat_zero_and_tempo_is_estimated() -> None:
    f = MidiClockFollower(default_bpm=90.0)
    f.start(1.0)
    assert not f.tempo_map.playing and f.tempo_map.beat_at(1.2) == 0.0
    t0 = 1.1
    for i in range(48):
        f.tick(t0 + i * TICK_120)
    m = f.tempo_map
    assert m.playing
    assert m.anchor_beat == pytest.approx(47 / 24)
    assert m.bpm == pytest.approx(120.0)
    assert m.beat_at(t0) == pytest.approx(0.0)


def test_midi_tempo_is_robust_to_one_jittery_tick() -> None:
    f = MidiClockFollower()
    f.start(0.0)
    times = [i * TICK_120 for i in range(48)]
    times[30] += 0.004  # one tick 4 ms late
    for t in times:
        f.tick(t)
    assert f.bpm == pytest.approx(120.0, rel=1e-6)
    # the map is anchored at the last tick, which is on time
    assert f.tempo_map.beat_at(times[-1]) == pytest.approx(47 / 24)


def test_midi_tempo_follows_a_tempo_change() -> None:
    f = MidiClockFollower()
    f.start(0.0)
    t = 0.0
    for _ in range(24):
        f.tick(t)
        t += TICK_120
    for _ in range(24):
        f.tick(t)
        t += 0.25 / 24  # 240 BPM
    assert f.bpm == pytest.approx(240.0)


def test_midi_stop_continue_and_song_position() -> None:
    f = MidiClockFollower()
    f.start(0.0)
    for i in range(24):  # ticks for beats 0 .. 23/24
        f.tick(i * TICK_120)
    f.stop(0.6)
    assert not f.tempo_map.playing
    assert f.tempo_map.beat_at(5.0) == pytest.approx(1.0)  # where a continue resumes
    f.continue_(2.0)
    f.tick(2.01)
    assert f.tempo_map.beat_at(2.01) == pytest.approx(1.0)
    f.tick(2.01 + TICK_120)
    f.stop(3.0)
    f.song_position(32 / 4, 3.1)  # SPP 32 sixteenths = beat 8, immediate while stopped
    assert f.tempo_map.beat_at(3.2) == pytest.approx(8.0)
    f.continue_(4.0)
    f.tick(4.0)
    assert f.tempo_map.beat_at(4.0) == pytest.approx(8.0)
    # SPP while playing waits for the next continue
    f.song_position(4.0, 4.1)
    f.tick(4.0 + TICK_120)
    assert f.tempo_map.anchor_beat == pytest.approx(8.0 + 1 / 24)
    f.stop(4.2)
    f.continue_(5.0)
    f.tick(5.0)
    assert f.tempo_map.beat_at(5.0) == pytest.approx(4.0)
    # start always goes back to the song start
    f.start(6.0)
    f.tick(6.0)
    assert f.tempo_map.beat_at(6.0) == pytest.approx(0.0)


def test_osc_transport_and_selector() -> None:
    sel = ClockSelector("auto", 100.0, now=0.0)
    assert sel.leader == "internal" and sel.tempo_map.bpm == 100.0
    sel.osc.update(140.0, 7, 8, 16.0, True, 2.0)
    assert sel.leader == "internal"  # not yet marked as seen by the caller
    sel.external_seen("osc")
    assert sel.leader == "osc"
    assert sel.tempo_map.beat_at(2.0 + 60 / 140) == pytest.approx(17.0)
    sel.external_seen("midi")
    assert sel.leader == "osc"  # the first external source keeps the lead
    fixed = ClockSelector("internal", 100.0, now=0.0)
    fixed.external_seen("midi")
    assert fixed.leader == "internal"
    with pytest.raises(ValueError):
        OscTransportFollower().update(120.0, 4, 3, 0.0, True, 0.0)
    with pytest.raises(ValueError):
        ClockSelector("wall", 120.0, now=0.0)
