"""Clock handling of the Conductor: following the leading clock's map, start, stop, relocation, and
a MIDI clock lost without a Stop.

A mixin of Conductor (bridge/core/conductor.py), split out to keep files short: the methods use the
conductor's state. Rules (docs/osc.md, "Playing live"): a note between MIDI Start/Continue and the
first tick belongs to the start position; MIDI clock missing for LOST_TICKS tick intervals (at least
LOST_MIN_S) while playing is lost: /musebridge/clock midi lost, a log warning, playing stops with
every note off, and `auto` falls back to the next source until the MIDI clock ticks again.
"""

from __future__ import annotations

from musebridge.core import midi_bytes as mb
from musebridge.core.actions import Action, ClearOutput, LogWarning, TempoChanged
from musebridge.core.clock import LOST_TICKS

_EPS = 1e-9
RESYNC_BEATS = 0.002  # re-send the tempo map when it drifts more than this (1 ms at 120 BPM)
RELOCATE_BEATS = 0.25  # a jump bigger than this while playing is a relocation (bars restart)


class ClockControl:
    """Clock following (mixin of Conductor)."""

    def _check_clock(self, time: float) -> list[Action]:
        """MIDI clock gone without a Stop: report it lost; playing stops (every note off, by _sync)
        and `auto` falls back to the next source."""
        if self._clock.mode not in ("auto", "midi") or not self._clock.midi.check_lost(time):
            return []
        self._clock.external_lost("midi")
        text = f"MIDI clock lost (no tick for {LOST_TICKS} ticks): transport stopped"
        if self._clock.leader != "midi":
            text += f", the {self._clock.leader} clock leads until MIDI clock comes back"
        return [LogWarning(text), *self._to_clients("/musebridge/clock", ("midi", "lost"))]

    def _clock_text(self) -> str:
        """The status's clock: the leader, and a lost MIDI clock."""
        if self._clock.midi.lost and self._clock.mode in ("auto", "midi"):
            return "midi (lost)" if self._clock.leader == "midi" else f"{self._clock.leader} (midi lost)"
        return self._clock.leader

    def _midi_clock(self, msg: mb.Realtime | mb.SongPosition, time: float) -> list[Action]:
        follower = self._clock.midi
        was_lost = follower.lost
        if isinstance(msg, mb.SongPosition):
            follower.song_position(msg.beats, time)
        elif msg.kind == "clock":
            follower.tick(time)
        elif msg.kind == "start":
            self._preroll.clear()
            follower.start(time)
        elif msg.kind == "continue":
            self._preroll.clear()
            follower.continue_(time)
        elif msg.kind == "stop":
            follower.stop(time)
        else:  # active sensing, reset: nothing to follow
            return []
        if self._clock.mode in ("auto", "midi"):
            self._clock.external_seen("midi")
        back: list[Action] = []
        if was_lost and not follower.lost:
            back = self._to_clients("/musebridge/clock", ("midi", "following"))
        return back + self._sync(time)

    def _sync(self, time: float) -> list[Action]:
        """Adopt the leading clock's map; handle start, stop and relocation; announce changes."""
        new = self._clock.tempo_map
        old = self._map
        leader = self._clock.leader
        out: list[Action] = []
        changed_leader = leader != self._leader
        self._leader = leader
        if old.playing and not new.playing:
            self._map = new
            out.append(TempoChanged(new))
            out += self._stop(time)
            return out
        if new.playing and not old.playing:
            self._map = new
            out.append(TempoChanged(new))
            start = new.beat_at(time)
            self._restart(start)
            preroll, self._preroll = self._preroll, []
            for ts, msg in preroll:
                self._buffer_note(ts, msg, new.anchor_beat if leader == "midi" else start)
            return out
        if not new.playing:
            moved = abs(new.anchor_beat - old.anchor_beat) > _EPS
            if changed_leader or moved or abs(new.bpm - old.bpm) > 1e-4 * old.bpm:
                self._map = new
                out.append(TempoChanged(new))
            return out
        drift = abs(new.beat_at(time) - old.beat_at(time))
        if drift > RELOCATE_BEATS or (changed_leader and drift > RESYNC_BEATS):
            self._map = new
            out.append(TempoChanged(new))
            out += self._relocate(time)
            return out
        if drift > RESYNC_BEATS or abs(new.bpm - old.bpm) > 1e-4 * old.bpm:
            self._map = new
            out.append(TempoChanged(new))
        return out

    def _invalidate(self) -> None:
        for ts in self._tracks.values():
            ts.reset_progress()

    def _stop(self, time: float) -> list[Action]:
        self._invalidate()
        self._preroll.clear()
        self._bar = None
        return [ClearOutput(None), *self._to_clients("/musebridge/out/panic", ())]

    def _relocate(self, time: float) -> list[Action]:
        self._invalidate()
        self._restart(self._map.beat_at(time))
        return [ClearOutput(None), *self._to_clients("/musebridge/out/panic", ())]

    def _restart(self, beat: float) -> None:
        self._invalidate()
        self._start_bars(beat)

    def _start_bars(self, beat: float) -> None:
        bar = self._grid.bar_at(beat)
        # A bar whose dispatch point already passed is joined at the next one.
        if beat >= self._grid.bar_end(bar) - self._lead(bar) - _EPS:
            bar += 1
        self._bar = bar
        for ts in self._tracks.values():
            ts.phrase_start = self._grid.bar_start(bar)
            ts.rearm_captures(ts.phrase_start)  # armed while stopped: the first phrase after Play
