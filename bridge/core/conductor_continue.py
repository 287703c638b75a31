"""Call-and-response controls of the Conductor: the end-call, loop and mutate triggers and the CCs
a preset maps to them (and to temperature and answer length).

A mixin of Conductor (bridge/core/conductor.py), split out to keep files short. The CCs are those of
the preset's `continue` section, read on the track's own MIDI channel and consumed (not echoed) while
the track is in continue mode: end_call (value >= 64 ends the call), loop (>= 64 on, < 64 off),
mutate (a press to >= 64 triggers once), temperature (0..127 -> 0.1..2.0) and answer_bars
(0..127 -> 0..16 bars, 0 = as long as the call).
"""

from __future__ import annotations

from dataclasses import replace

from musebridge.core import midi_bytes as mb
from musebridge.core.actions import Action
from musebridge.core.session import TrackState
from musebridge.presets import answer_bars_from_cc, temperature_from_cc


class ContinueControl:
    """Call-and-response triggers (mixin of Conductor)."""

    def _continue_cc(self, ts: TrackState, msg: mb.ControlChange, time: float) -> list[Action] | None:
        """The actions of a CC mapped in the preset's continue section; None when it is not mapped
        (or the track is not in continue mode) and the CC goes on as any other message."""
        role = self._preset.continuation.cc_roles().get(msg.control)
        if role is None or ts.mode != "continue":
            return None
        on = msg.value >= 64
        if role == "end_call":
            return self._end_call(ts, time) if on else []
        if role == "loop":
            return self._set_loop(ts, on, time)
        if role == "mutate":
            pressed = on and not ts.mutate_held
            ts.mutate_held = on
            return self._mutate(ts, time) if pressed else []
        if role == "temperature":
            ts.settings = replace(ts.settings, temperature=temperature_from_cc(msg.value))
            return []
        ts.answer_bars = answer_bars_from_cc(msg.value)  # role == "answer_bars"
        return []

    def _playing_position(self, time: float) -> tuple[float, float] | None:
        """(beat, lead) at `time` while the transport plays (a trigger can land an answer), else None."""
        if not self._map.playing or self._bar is None:
            return None
        beat = self._map.beat_at(time)
        return beat, self._lead(self._grid.bar_at(beat))

    def _end_call(self, ts: TrackState, time: float) -> list[Action]:
        position = self._playing_position(time)
        if position is None:
            return []
        plan = ts.end_call(*position, self._grid, self._preset.continuation)
        return [self._submit(ts, plan)] if plan is not None else []

    def _set_loop(self, ts: TrackState, on: bool, time: float) -> list[Action]:
        """Switch the loop; switched on between calls, the last answer plays again from the next bar."""
        out: list[Action] = []
        if ts.loop != on:
            ts.loop = on
            out += self._to_clients("/musebridge/loop", (ts.track, int(on)))
        position = self._playing_position(time)
        if on and position is not None:
            start = ts.loop_start_beat(*position, self._grid)
            if start is not None and ts.last_answer is not None:
                out += self._play_answer(ts, ts.last_answer, start, time, follow_up=True)
        return out + self._states(time)

    def _mutate(self, ts: TrackState, time: float) -> list[Action]:
        """Ask for a new answer primed with the last one; [] when there is nothing to mutate now."""
        position = self._playing_position(time)
        if position is None:
            return []
        plan = ts.mutation(*position, self._grid, self._preset.continuation)
        if plan is None:
            return []
        return [self._submit(ts, plan, follow_up=True), *self._states(time)]

    def _loop_repeat(self, ts: TrackState, bar: int, time: float) -> list[Action]:
        """At bar `bar`'s dispatch point: the last answer again from the bar line ahead, if due."""
        if ts.last_answer is None or not ts.loop_due(bar, self._grid):
            return []
        return self._play_answer(ts, ts.last_answer, self._grid.bar_end(bar), time, follow_up=True)
