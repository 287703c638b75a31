"""Clock followers: each turns one clock source into a TempoMap (song beats <-> seconds).

All times are float seconds given by the caller (never read here). Sources:

- InternalClock: plays from `start_time` at a set tempo; tempo changes keep the beat continuous.
- MidiClockFollower: MIDI clock, 24 ticks per quarter note, start/continue/stop/song position.
- OscTransportFollower: `/musebridge/transport tempo numerator denominator beat playing`.
- ClockSelector: --clock auto|internal|midi|osc; in `auto` the internal clock leads until an
  external source (MIDI clock or OSC transport) is seen, then that source leads.
"""

from __future__ import annotations

from collections import deque
from statistics import median

from musebridge.core.music import Meter
from musebridge.core.tempo import TempoMap

TICKS_PER_BEAT = 24
LOST_TICKS = 8  # MIDI clock missing for this many tick intervals while playing is lost ...
LOST_MIN_S = 0.25  # ... and for at least this long (a jittery or stalled sender is not lost)
MIN_BPM = 20.0
MAX_BPM = 400.0
CLOCK_MODES = ("auto", "internal", "midi", "osc")


def _clamp_bpm(bpm: float) -> float:
    return min(MAX_BPM, max(MIN_BPM, bpm))


class InternalClock:
    """A free-running clock: beat 0 at `start_time`, always playing."""

    def __init__(self, bpm: float, start_time: float) -> None:
        self._map = TempoMap(anchor_time=start_time, anchor_beat=0.0, bpm=_clamp_bpm(bpm), playing=True)

    @property
    def tempo_map(self) -> TempoMap:
        return self._map

    def set_tempo(self, bpm: float, time: float) -> TempoMap:
        """Change the tempo at `time`; the beat position stays continuous."""
        beat = self._map.beat_at(time)
        self._map = TempoMap(anchor_time=time, anchor_beat=beat, bpm=_clamp_bpm(bpm), playing=True)
        return self._map

    def locate(self, beat: float, time: float) -> TempoMap:
        """Jump to `beat` at `time` (keeps the tempo)."""
        self._map = TempoMap(anchor_time=time, anchor_beat=beat, bpm=self._map.bpm, playing=True)
        return self._map


class MidiClockFollower:
    """Follows MIDI clock (0xF8 at 24 ppqn), start 0xFA, continue 0xFB, stop 0xFC, SPP 0xF2.

    - start: position 0; the first tick after start sounds beat 0 (MIDI spec: start always plays
      from the song start, so a song position received before a start is superseded by it).
    - continue: resumes from the current position (or the last song position received).
    - song position: while stopped it moves the position at once; while playing it is kept and
      applied at the next continue.
    - tempo: the median of the last `window` tick intervals (robust to a jittery tick), also
      measured while stopped when the sender keeps ticking. The TempoMap is anchored at the last tick.
    """

    def __init__(self, default_bpm: float = 120.0, window: int = TICKS_PER_BEAT) -> None:
        self._intervals: deque[float] = deque(maxlen=window)
        self._last_tick_time: float | None = None
        self._bpm = _clamp_bpm(default_bpm)
        self._playing = False
        self._waiting_first_tick = False
        self._next_tick_beat = 0.0  # the beat the next tick sounds while playing
        self._pending_position: float | None = None
        self._map = TempoMap(anchor_time=0.0, anchor_beat=0.0, bpm=self._bpm, playing=False)
        self._began_at: float | None = None  # when start/continue came (no tick yet)
        self.seen = False  # any clock message at all
        self.lost = False  # ticks stopped while playing, without a Stop (set by check_lost)

    @property
    def tempo_map(self) -> TempoMap:
        return self._map

    @property
    def bpm(self) -> float:
        return self._bpm

    @property
    def playing(self) -> bool:
        return self._playing

    def _stopped_map(self, beat: float, time: float) -> TempoMap:
        return TempoMap(anchor_time=time, anchor_beat=beat, bpm=self._bpm, playing=False)

    def lost_deadline(self) -> float | None:
        """The time after which the clock counts as lost if no tick came (None: not playing).

        Lost = no tick for LOST_TICKS tick intervals at the current tempo, and at least LOST_MIN_S
        (DAW closed or cable pulled without a Stop)."""
        if not self._playing:
            return None
        last = self._last_tick_time if self._last_tick_time is not None else self._began_at
        if last is None:
            return None
        return last + max(LOST_MIN_S, LOST_TICKS * 60.0 / (self._bpm * TICKS_PER_BEAT))

    def check_lost(self, time: float) -> bool:
        """True once, when the clock is found lost at `time`: it then stops where the ticks left it."""
        deadline = self.lost_deadline()
        if deadline is None or time <= deadline:
            return False
        self.stop(time)
        self.lost = True
        return True

    def tick(self, time: float) -> TempoMap:
        """One 0xF8 clock tick at `time`."""
        self.seen = True
        self.lost = False
        if self._last_tick_time is not None:
            interval = time - self._last_tick_time
            if interval > 0:
                self._intervals.append(interval)
                self._bpm = _clamp_bpm(60.0 / (median(self._intervals) * TICKS_PER_BEAT))
        self._last_tick_time = time
        if self._playing:
            self._waiting_first_tick = False
            self._map = TempoMap(
                anchor_time=time, anchor_beat=self._next_tick_beat, bpm=self._bpm, playing=True
            )
            self._next_tick_beat += 1.0 / TICKS_PER_BEAT
        else:
            self._map = TempoMap(self._map.anchor_time, self._map.anchor_beat, self._bpm, playing=False)
        return self._map

    def start(self, time: float) -> TempoMap:
        """0xFA: play from the song start; the next tick is beat 0."""
        self.seen = True
        self._pending_position = None
        return self._begin(0.0, time)

    def continue_(self, time: float) -> TempoMap:
        """0xFB: resume from the current position (or a song position received since)."""
        self.seen = True
        position = self._next_tick_beat if self._pending_position is None else self._pending_position
        self._pending_position = None
        return self._begin(position, time)

    def _begin(self, position: float, time: float) -> TempoMap:
        self.lost = False
        self._began_at = time
        self._playing = True
        self._waiting_first_tick = True
        self._next_tick_beat = position
        # Ticks after a pause: do not count the pause as a tick interval.
        self._last_tick_time = None
        # Until the first tick the song waits at `position` (the DAW starts on that tick).
        self._map = self._stopped_map(position, time)
        return self._map

    @property
    def waiting_first_tick(self) -> bool:
        """True between start/continue and the first tick: the transport is about to move."""
        return self._playing and self._waiting_first_tick

    def stop(self, time: float) -> TempoMap:
        """0xFC: stop; the position stays where the ticks left it."""
        self.seen = True
        position = self._next_tick_beat  # where a continue resumes
        self._playing = False
        self._waiting_first_tick = False
        self._map = self._stopped_map(position, time)
        return self._map

    def song_position(self, beats: float, time: float) -> TempoMap:
        """0xF2 (beats = sixteenths / 4): immediate while stopped, else at the next continue."""
        self.seen = True
        if self._playing:
            self._pending_position = beats
            return self._map
        self._next_tick_beat = beats
        self._pending_position = None
        self._map = self._stopped_map(beats, time)
        return self._map


class OscTransportFollower:
    """Follows `/musebridge/transport tempo numerator denominator beat playing` from the device."""

    def __init__(self) -> None:
        self._map = TempoMap(anchor_time=0.0, anchor_beat=0.0, bpm=120.0, playing=False)
        self.meter: Meter | None = None
        self.seen = False

    @property
    def tempo_map(self) -> TempoMap:
        return self._map

    def update(
        self, tempo: float, numerator: int, denominator: int, beat: float, playing: bool, time: float
    ) -> TempoMap:
        """Re-anchor at `time`; raises ValueError for an impossible meter (the map is unchanged then)."""
        meter = Meter(int(numerator), int(denominator))
        self.seen = True
        self.meter = meter
        self._map = TempoMap(
            anchor_time=time, anchor_beat=float(beat), bpm=_clamp_bpm(tempo), playing=bool(playing)
        )
        return self._map


class ClockSelector:
    """Picks the leading clock for --clock auto|internal|midi|osc.

    `auto`: the internal clock leads until MIDI clock or OSC transport is seen; from then on the
    first external source seen leads (a second one does not take over). `leader` names the leader.
    """

    def __init__(self, mode: str, bpm: float, now: float) -> None:
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock must be one of {'|'.join(CLOCK_MODES)}, got {mode!r}")
        self.mode = mode
        self.internal = InternalClock(bpm, now)
        self.midi = MidiClockFollower(default_bpm=bpm)
        self.osc = OscTransportFollower()
        self._external: str | None = None

    @property
    def leader(self) -> str:
        if self.mode != "auto":
            return self.mode
        return self._external or "internal"

    @property
    def tempo_map(self) -> TempoMap:
        leader = self.leader
        if leader == "midi":
            return self.midi.tempo_map
        if leader == "osc":
            return self.osc.tempo_map
        return self.internal.tempo_map

    def external_lost(self, source: str) -> None:
        """`source` stopped speaking: in auto mode the OSC transport leads if it was seen (and is not
        the one lost), else the internal clock; the lost source leads again when it speaks."""
        if self.mode == "auto" and self._external == source:
            self._external = "osc" if source != "osc" and self.osc.seen else None

    def external_seen(self, source: str) -> None:
        """Record that `source` (midi | osc) spoke; in auto mode the first one seen becomes the leader."""
        if source not in ("midi", "osc"):
            raise ValueError(f"unknown external clock source {source!r}")
        if self._external is None:
            self._external = source

    @property
    def bpm(self) -> float:
        return self.tempo_map.bpm
