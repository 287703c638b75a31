"""Call and response controls in memory: loop, mutate, and the CCs a preset maps to them.

The continue model here is the transpose rule model (+12), so an answer is the call an octave up and
a mutation (the model primed with the last answer) is that answer another octave up.
"""

from __future__ import annotations

import dataclasses

import pytest
from conductor_harness import CLIENT, Harness, continue_preset, note

from musebridge.core.actions import ScheduleNotes, SendMidi, SubmitJob
from musebridge.core.music import Note
from musebridge.daemon.fast_thru import held_back_controls
from musebridge.presets import PresetError, answer_bars_from_cc, parse_preset, temperature_from_cc

CC_PRESET = dict(silent_bars=1, max_call_bars=8, end_call_cc=64, loop_cc=80, mutate_cc=81,
                 temperature_cc=1, answer_bars_cc=16)


def two_bar_call(h: Harness) -> None:
    """A call on bars 1..2 (beats 4 and 8); bar 3 is silent, so the answer lands on beat 16."""
    note(h, 2.0, 2.5, 60)
    note(h, 4.0, 4.5, 62)


def schedules(h: Harness) -> list[tuple[float, tuple[Note, ...]]]:
    return [(a.replace_from, a.notes) for a in h.of(ScheduleNotes)]


def states(h: Harness) -> list[str]:
    return [a.args[1] for a in h.osc_sent("/musebridge/state")]


def test_loop_repeats_the_answer_bar_aligned_until_a_new_call() -> None:
    h = Harness(continue_preset(silent_bars=1, max_call_bars=8))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.osc(0.1, "/musebridge/loop", 1, 1)
    two_bar_call(h)
    h.advance(16.2)  # beat 32.4: the answer (16..24) and two repetitions (24, 32)
    answer = (Note(72, 100, 0.0, 1.0), Note(74, 100, 4.0, 1.0))
    assert schedules(h) == [(land, tuple(n.shifted(land) for n in answer)) for land in (16.0, 24.0, 32.0)]
    assert len(h.of(SubmitJob)) == 1  # repetitions replay the answer, the model is not asked again
    assert "looping" in states(h) and "answering" not in states(h)
    assert [a.args for a in h.osc_sent("/musebridge/loop")] == [(1, 1)]
    # A note during a repetition is a new call: bar 8 (beats 32..36), silent bar 9 -> answer on 40.
    note(h, 16.5, 16.7, 64)
    h.advance(22.2)  # beat 44.4
    jobs = h.of(SubmitJob)
    assert len(jobs) == 2 and jobs[1].job.land_beat == 40.0
    assert jobs[1].job.request.phrase.notes == (Note(64, 100, 1.0, 0.5),)
    # The new 1-bar answer replaces the old one and is what the loop repeats now.
    assert schedules(h)[3:] == [(40.0, (Note(76, 100, 41.0, 0.5),)), (44.0, (Note(76, 100, 45.0, 0.5),))]
    h.osc(22.3, "/musebridge/loop", 1, 0)
    h.advance(30.0)
    assert len(schedules(h)) == 5  # the repetition playing ends; no more after it
    assert [a.args for a in h.osc_sent("/musebridge/loop")] == [(1, 1), (1, 0)]
    assert states(h)[-1] == "listening"


def test_loop_switched_on_after_the_answer_plays_it_again_from_the_next_bar() -> None:
    h = Harness(continue_preset(silent_bars=1, max_call_bars=8))
    two_bar_call(h)
    h.advance(13.0)  # beat 26: the answer (16..24) is over
    assert [land for land, _ in schedules(h)] == [16.0]
    h.osc(13.0, "/musebridge/loop", 1, 1)
    h.advance(18.1)  # beat 36.2
    assert [land for land, _ in schedules(h)] == [16.0, 28.0, 36.0]
    assert schedules(h)[1][1] == (Note(72, 100, 28.0, 1.0), Note(74, 100, 32.0, 1.0))


def test_loop_switched_on_during_the_answer_repeats_it_once_from_its_end() -> None:
    h = Harness(continue_preset(silent_bars=1, max_call_bars=8))
    two_bar_call(h)
    h.advance(10.0)  # beat 20: the answer (16..24) plays
    h.osc(10.0, "/musebridge/loop", 1, 1)
    h.advance(16.2)
    assert [land for land, _ in schedules(h)] == [16.0, 24.0, 32.0]


def test_loop_without_an_answer_or_in_another_mode() -> None:
    h = Harness(continue_preset())
    h.osc(0.0, "/musebridge/loop", 1, 1)  # nothing to repeat yet: just switched on
    h.advance(4.0)
    assert not h.of(ScheduleNotes) and h.c.track_state(1).loop
    h.osc(4.0, "/musebridge/loop", 1, 2)
    h.osc(4.0, "/musebridge/mode", 1, "transfer")
    h.osc(4.0, "/musebridge/loop", 1, 0)
    errors = [a.args[0] for a in h.osc_sent("/musebridge/error")]
    assert errors == ["loop must be 0 or 1, got 2", "track 1 is in transfer mode, not continue"]


def test_mutate_asks_the_model_again_primed_with_the_last_answer() -> None:
    h = Harness(continue_preset(silent_bars=1, max_call_bars=8))
    h.osc(0.0, "/musebridge/mutate", 1)
    assert h.osc_sent("/musebridge/error")[-1].args[0] == "track 1 has no answer to mutate yet"
    two_bar_call(h)
    h.advance(9.0)  # beat 18: the answer plays (16..24)
    h.osc(9.0, "/musebridge/mutate", 1)
    mutation = h.of(SubmitJob)[-1].job
    assert mutation.land_beat == 24.0  # where the playing answer ends
    assert mutation.request.phrase.notes == (Note(72, 100, 0.0, 1.0), Note(74, 100, 4.0, 1.0))
    assert mutation.request.bars == 2
    h.advance(13.0)
    assert schedules(h)[-1] == (24.0, (Note(84, 100, 24.0, 1.0), Note(86, 100, 28.0, 1.0)))
    # A mutation does not hold off the next call: a note during it starts one.
    note(h, 14.5, 14.7, 65)  # beat 29 (bar 7); bar 8 silent -> answer on beat 36
    h.advance(17.99)
    assert h.of(SubmitJob)[-1].job.land_beat == 36.0
    # Mutating with the loop on: the loop then repeats the mutation.
    h.osc(18.0, "/musebridge/loop", 1, 1)
    h.osc(18.5, "/musebridge/mutate", 1)  # beat 37, the 1-bar answer 36..40 plays
    h.advance(22.1)  # beat 44.2
    assert schedules(h)[-3:] == [
        (36.0, (Note(77, 100, 37.0, 0.5),)),
        (40.0, (Note(89, 100, 41.0, 0.5),)),
        (44.0, (Note(89, 100, 45.0, 0.5),)),
    ]


def test_mapped_ccs_steer_the_track_and_are_not_echoed() -> None:
    h = Harness(dataclasses.replace(continue_preset(**CC_PRESET), name="cc"))
    h.osc(0.0, "/musebridge/hello", 50001)
    h.midi(0.1, 0xB0, 1, 127)
    assert h.c.track_state(1).settings.temperature == pytest.approx(2.0)
    h.midi(0.1, 0xB0, 1, 0)
    assert h.c.track_state(1).settings.temperature == pytest.approx(0.1)
    h.midi(0.1, 0xB0, 16, 8)  # answer length: 8 * 16 / 127 -> 1 bar
    assert h.c.track_state(1).answer_bars == 1
    two_bar_call(h)
    h.advance(7.99)
    req = h.of(SubmitJob)[-1].job.request
    assert (req.bars, req.temperature) == (1, pytest.approx(0.1))
    h.midi(8.5, 0xB0, 80, 127)  # loop on
    assert h.c.track_state(1).loop and h.osc_sent("/musebridge/loop")[-1].args == (1, 1)
    h.midi(8.6, 0xB0, 81, 127)  # mutate: a press
    h.midi(8.7, 0xB0, 81, 127)  # still held: no second mutation
    mutations = h.of(SubmitJob)[1:]
    assert len(mutations) == 1 and mutations[0].job.land_beat == 20.0  # the 1-bar answer ends there
    h.midi(9.0, 0xB0, 81, 0)
    h.midi(9.1, 0xB0, 81, 100)  # a second press
    assert len(h.of(SubmitJob)) == 3
    h.midi(9.2, 0xB0, 80, 0)  # loop off
    assert not h.c.track_state(1).loop
    assert not any(m.data[0] & 0xF0 == 0xB0 for m in h.of(SendMidi))
    # In thru mode the same CCs pass through untouched.
    h.osc(9.3, "/musebridge/mode", 1, "thru")
    h.midi(9.4, 0xB0, 80, 127)
    assert h.of(SendMidi)[-1].data == (0xB0, 80, 127)
    assert held_back_controls(h.c) == frozenset({64, 80, 81, 1, 16})


def test_cc_value_mappings() -> None:
    assert temperature_from_cc(0) == pytest.approx(0.1)
    assert temperature_from_cc(127) == pytest.approx(2.0)
    assert temperature_from_cc(64) == pytest.approx(0.1 + 1.9 * 64 / 127)
    assert [answer_bars_from_cc(v) for v in (0, 4, 8, 64, 127)] == [0, 1, 1, 8, 16]


def test_preset_continue_keys_are_validated() -> None:
    ok = parse_preset({"continue": {"loop": True, "loop_cc": 80, "mutate_cc": 81}}, "x.yaml")
    assert ok.continuation.loop and ok.continuation.cc_roles() == {80: "loop", 81: "mutate"}
    with pytest.raises(PresetError, match=r"x.yaml: continue.mutate_cc: CC 80 is already continue.loop_cc"):
        parse_preset({"continue": {"loop_cc": 80, "mutate_cc": 80}}, "x.yaml")
    with pytest.raises(PresetError, match=r"continue.loop: expected true or false"):
        parse_preset({"continue": {"loop": "yes"}}, "x.yaml")
    with pytest.raises(PresetError, match=r"continue.temperature_cc: expected 0..127, got 128"):
        parse_preset({"continue": {"temperature_cc": 128}}, "x.yaml")


def test_a_preset_sets_the_loop_and_clients_learn_it() -> None:
    looping = dataclasses.replace(continue_preset(loop=True), name="l")
    h = Harness(looping, preset_loader=lambda name: continue_preset() if name == "plain" else looping)
    assert h.c.track_state(1).loop
    h.osc(0.0, "/musebridge/hello", 50001, sender=CLIENT)  # a new client learns the loop is on
    assert [a.args for a in h.osc_sent("/musebridge/loop")] == [(1, 1)]
    two_bar_call(h)
    h.advance(16.2)
    assert [land for land, _ in schedules(h)] == [16.0, 24.0, 32.0]
    h.osc(16.3, "/musebridge/preset", "plain")  # loop off by the preset: clients are told
    h.osc(16.4, "/musebridge/preset", "plain")  # unchanged: nothing sent
    assert [a.args for a in h.osc_sent("/musebridge/loop")] == [(1, 1), (1, 0)]
    assert not h.c.track_state(1).loop
