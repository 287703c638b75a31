"""The Conductor: the single owner of the bridge's state. Pure and single-threaded.

It is fed whole MIDI messages, type-checked OSC messages, model results and timer ticks, each with
the time (float seconds, the daemon's one clock), and answers with actions (bridge/core/actions.py)
for the I/O edges to perform. It performs no I/O and never reads the time itself. Mixins hold
parts of it: clock following (conductor_clock.py), OSC handlers (conductor_osc.py) and the
call-and-response controls (conductor_continue.py).

Tracks: MIDI channel c (0..15) is track c + 1; OSC track ids are ints >= 0; at most MAX_TRACKS are
kept (a new id past it is refused with a ValueError, answered as /musebridge/error). A track's output goes
where its input came from (preset `output: same`): MIDI in -> ScheduleNotes on the MIDI output
(same channel unless `out_channel`), OSC in -> /musebridge/out/clear then /musebridge/out/note per
note (song beats, sent ahead of time) to every registered client. A track that has had no input yet
counts as MIDI for ids 1..16 and OSC otherwise. OSC input comes as /musebridge/note_on and
note_off (a note held over the phrase end is clipped there, as with MIDI), or as completed notes
(/musebridge/note: one that arrives after its bar's dispatch point misses that bar's job).

OSC replies go to the sender's registered reply port (/musebridge/hello); a sender that never said
hello is answered on the port its host registered last (a tool such as liblo's oscsend sends each
message from a new port), else on the sender's own address. Messages for "every client" are
returned as one SendOsc per registered client (explicit targets); with no client registered they
are not sent.

Timing: a bar's content is final at its dispatch point `bar_end - lead` (lead = half a grid step,
or the preset's lookahead with the grid off); jobs are submitted there with their deadline at the
bar line where the answer lands. A result in hand after `land_beat - safety` is moved later by
whole bars until it fits and counted in `late`; it is never dropped silently. Results for a
track whose mode changed, or after a stop, relocation or panic, are stale: dropped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from musebridge.core import midi_bytes as mb
from musebridge.core.actions import (
    Action,
    ClearOutput,
    Job,
    OscArg,
    ScheduleNotes,
    SendMidi,
    SendOsc,
    SubmitJob,
)
from musebridge.core.bars import BarGrid
from musebridge.core.clock import ClockSelector
from musebridge.core.conductor_clock import ClockControl
from musebridge.core.conductor_continue import ContinueControl
from musebridge.core.conductor_osc import OSC_HANDLERS, OscControl, Sender, clip_datagrams
from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Meter, Phrase
from musebridge.core.session import JobPlan, TrackState, new_track
from musebridge.core.tempo import TempoMap
from musebridge.presets import Preset

_EPS = 1e-9
SAFETY_MS = 5.0  # a result must be in hand this long before its land beat
OSC_MARGIN_MS = 10.0  # an answer to an OSC track is sent at least this long before its first beat
MAX_IDLE_S = 0.25  # next_tick_time never lies further ahead than this
MAX_BARS_PER_TICK = 256
DEFAULT_TRACK = 1  # exists from the start (MIDI channel 1): sample mode plays without any input
MAX_TRACKS = 64  # tracks the daemon keeps (MIDI channels 1..16 always fit); a new id past it is refused


@dataclass(frozen=True, slots=True)
class Status:
    """What /musebridge/status reports (first ten fields, in order), plus extra counters."""

    mode: str
    clock: str
    tempo: float
    playing: bool
    beat: float
    model: str
    queue: int
    late: int
    latency_ms: float
    errors: int
    model_errors: int = 0
    stale: int = 0
    tracks: int = 0

    def osc_args(self) -> tuple[OscArg, ...]:
        """Arguments of the /musebridge/status reply, as in bridge/osc_spec.json."""
        return (
            self.mode,
            self.clock,
            float(self.tempo),
            int(self.playing),
            float(self.beat),
            self.model,
            self.queue,
            self.late,
            float(self.latency_ms),
            self.errors,
        )


@dataclass(frozen=True, slots=True)
class _Pending:
    job: Job
    generation: int
    reply_to: Sender | None  # clip jobs answer with /musebridge/out/clip to this target
    clip_length: float = 0.0
    follow_up: bool = False  # a mutation: its answer does not hold off the next call


class Conductor(ClockControl, OscControl, ContinueControl):
    """Single owner of state; every method takes the time and returns actions (see module doc).

    clock: auto|internal|midi|osc (None: the preset's); tempo: the internal clock's BPM (None: the
    preset's); model_names: mode -> model name, over the preset's; preset_loader: name -> Preset for
    /musebridge/preset; safety_s: a result must be in hand this long before its land beat (give
    it the output's lookahead plus a margin), else it is late and moves to a later bar.

    Jobs stay counted in `queue` until their result (or error) comes back, stale ones included:
    that is the engine's real load.
    """

    def __init__(
        self,
        preset: Preset,
        *,
        now: float,
        clock: str | None = "auto",
        model_names: Mapping[str, str] | None = None,
        preset_loader: Callable[[str], Preset] | None = None,
        tempo: float | None = None,
        safety_s: float = SAFETY_MS / 1000.0,
    ) -> None:
        self._preset = preset
        self._safety_s = max(0.0, safety_s)
        self._model_overrides = dict(model_names or {})
        self._preset_loader = preset_loader
        self._clock = ClockSelector(clock or preset.clock, tempo or preset.tempo, now)
        self._grid = BarGrid(preset.meter)
        self._tracks: dict[int, TrackState] = {}
        self._jobs: dict[int, _Pending] = {}
        self._next_job_id = 1
        self._clients: dict[Sender, Sender] = {}
        # (in channel, pitch) -> out channels of its thru note-ons still open, oldest first: a key
        # struck twice (two players, a DAW's overlapping notes) is closed twice, on the same path
        self._thru_open: dict[tuple[int, int], list[int]] = {}
        self._bar: int | None = None  # the bar whose dispatch point comes next (None: stopped)
        # Notes played between MIDI Start/Continue and the first clock tick (the start position).
        self._preroll: list[tuple[TrackState, mb.NoteOn | mb.NoteOff]] = []
        self._map = self._clock.tempo_map
        self._leader = self._clock.leader
        self.late = 0
        self.errors = 0
        self.model_errors = 0
        self.internal_errors = 0  # failures the daemon met around the conductor (note_failure)
        self.midi_state: tuple[str, str] = ("ok", "")  # the MIDI ports (midi_ports), for status
        self.stale = 0
        self.latency_ms = 0.0
        for track_id in sorted({DEFAULT_TRACK, *preset.tracks}):
            self._get_track(track_id)
        if self._map.playing:
            self._start_bars(self._map.beat_at(now))

    # -- public API -------------------------------------------------------------------------------

    @property
    def tempo_map(self) -> TempoMap:
        """The map last announced with TempoChanged (the one the output follows)."""
        return self._map

    @property
    def preset(self) -> Preset:
        return self._preset

    @property
    def grid(self) -> BarGrid:
        return self._grid

    @property
    def clients(self) -> tuple[Sender, ...]:
        """Registered OSC clients (reply targets)."""
        return tuple(dict.fromkeys(self._clients.values()))

    def track_state(self, track: int) -> TrackState:
        """The state of `track` (created with the preset's settings if new)."""
        return self._get_track(track)

    def handle_midi(self, data: Sequence[int], time: float) -> list[Action]:
        """One whole MIDI message received at `time`."""
        msg = mb.parse_midi(data)
        if isinstance(msg, mb.MidiError):
            return self.handle_bad_message("midi", f"bad MIDI: {msg.reason}", None, time)
        if isinstance(msg, mb.Realtime | mb.SongPosition):
            return self._midi_clock(msg, time)
        if isinstance(msg, mb.SystemMessage):
            return []
        track = msg.channel + 1
        ts = self._get_track(track)
        ts.source, ts.in_channel = "midi", msg.channel
        out: list[Action] = []
        if isinstance(msg, mb.ControlChange):
            consumed = self._continue_cc(ts, msg, time)
            if consumed is not None:
                return consumed + self._states(time)
        forward = ts.mode == "thru" or ts.settings.echo_input
        if isinstance(msg, mb.NoteOff):
            # A note that went out thru gets its off on the same channel, whatever the mode is now.
            out_channel = self._thru_close((msg.channel, msg.pitch))
            if out_channel is not None:
                out.append(SendMidi(((data[0] & 0xF0) | out_channel, *tuple(data)[1:])))
            elif forward:
                out.append(SendMidi(self._on_out_channel(tuple(data), ts)))
        elif forward:
            out.append(SendMidi(self._on_out_channel(tuple(data), ts)))
            if isinstance(msg, mb.NoteOn):
                self._thru_open.setdefault((msg.channel, msg.pitch), []).append(self._out_channel(ts))
        if isinstance(msg, mb.NoteOn | mb.NoteOff):
            if self._map.playing:
                self._buffer_note(ts, msg, self._map.beat_at(time))
            elif self._clock.leader == "midi" and self._clock.midi.waiting_first_tick:
                # After Start/Continue and before the first tick the song stands at its start
                # position: a note here (the same JACK cycle as the tick, say) belongs to it.
                self._preroll.append((ts, msg))
        return out + self._states(time)

    @staticmethod
    def _buffer_note(ts: TrackState, msg: mb.NoteOn | mb.NoteOff, beat: float) -> None:
        if isinstance(msg, mb.NoteOn):
            ts.buffer.note_on(msg.channel, msg.pitch, msg.velocity, beat)
        else:
            ts.buffer.note_off(msg.channel, msg.pitch, beat)

    def _thru_close(self, key: tuple[int, int]) -> int | None:
        """The out channel of the oldest thru note-on still open for `key`, now closed (None: none)."""
        channels = self._thru_open.get(key)
        if not channels:
            return None
        channel = channels.pop(0)
        if not channels:
            del self._thru_open[key]
        return channel

    def handle_osc(self, address: str, args: tuple, sender: Sender, time: float) -> list[Action]:
        """One OSC message, already type-checked and coerced per bridge/osc_spec.json."""
        handler = OSC_HANDLERS.get(address)
        if handler is None:
            return self.handle_bad_message(address, "unknown address", sender, time)
        try:
            return handler(self, tuple(args), sender, time)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            return self.handle_bad_message(address, str(exc) or type(exc).__name__, sender, time)

    def handle_bad_message(
        self, address: str, reason: str, sender: Sender | None, time: float
    ) -> list[Action]:
        """Count a refused message and answer /musebridge/error (to the sender when known)."""
        self.errors += 1
        args: tuple[OscArg, ...] = (reason, address)
        if sender is not None:
            return [SendOsc("/musebridge/error", args, self._reply_target(sender))]
        return self._to_clients("/musebridge/error", args)

    def handle_result(
        self, job_id: int, phrase: Phrase | None, error: str | None, time: float, latency_s: float
    ) -> list[Action]:
        """A job's answer (or its error) is in hand at `time`."""
        pending = self._jobs.pop(job_id, None)
        if pending is None:
            self.stale += 1
            return []
        self.latency_ms = max(0.0, latency_s * 1000.0)
        job = pending.job
        ts = self._get_track(job.track)
        ts.latency_ms = self.latency_ms
        ts.jobs.discard(job_id)
        if pending.reply_to is None and pending.generation != ts.generation:
            self.stale += 1
            return self._states(time)
        if error is None and not isinstance(phrase, Phrase):
            error = f"returned {type(phrase).__name__}, not a Phrase"
        if error is not None or phrase is None:
            self.model_errors += 1
            ts.busy_until = -math.inf
            reason = f"model '{job.model}' failed: {error}"
            where = "/musebridge/clip" if pending.reply_to is not None else f"/musebridge/{job.request.mode}"
            target = [pending.reply_to] if pending.reply_to is not None else self.clients
            return [SendOsc("/musebridge/error", (reason, where), t) for t in target] + self._states(time)
        if pending.reply_to is not None:
            return self._clip_reply(job.track, phrase, pending)
        return self._play_answer(ts, phrase, job.land_beat, time, pending.follow_up) + self._states(time)

    def tick(self, time: float) -> list[Action]:
        """Advance the clock to `time`: cross dispatch points, submit jobs, report state changes."""
        out = self._check_clock(time)
        out += self._sync(time)
        if self._map.playing and self._bar is not None:
            beat = self._map.beat_at(time)
            for _ in range(MAX_BARS_PER_TICK):
                bar_end = self._grid.bar_end(self._bar)
                if beat < bar_end - self._lead(self._bar) - _EPS:
                    break
                out += self._bar_end(self._bar, time)
                self._bar += 1
            else:
                self._bar = self._grid.bar_at(beat)
        return out + self._states(time)

    def next_tick_time(self, time: float) -> float:
        """The latest time at which tick() must be called next."""
        latest = time + MAX_IDLE_S
        lost_at = self._clock.midi.lost_deadline()
        if lost_at is not None and self._clock.mode in ("auto", "midi"):
            latest = min(latest, lost_at + 1e-3)
        if not self._map.playing or self._bar is None:
            return max(time, latest)
        when = self._map.time_at(self._grid.bar_end(self._bar) - self._lead(self._bar))
        beat = self._map.beat_at(time)
        for ts in self._tracks.values():
            for edge in (ts.answer_start, ts.answer_end):
                if edge > beat + _EPS:
                    when = min(when, self._map.time_at(edge))
        return max(time, min(latest, when))

    def panic(self, time: float) -> list[Action]:
        """All notes off now on every output; scheduled output and in-flight results are dropped.

        The output closes every note it ever opened (per-key counts: a key struck twice gets two
        note-offs) and sends sustain off + All Notes Off on the channels used (ClearOutput(panic))."""
        thru_open = sorted(self._thru_open.items())
        out: list[Action] = [SendMidi(mb.note_off(ch, pitch)) for (_, pitch), chs in thru_open for ch in chs]
        out.append(ClearOutput(None, panic=True))
        self._thru_open.clear()
        out += self._to_clients("/musebridge/out/panic", ())
        for ts in self._tracks.values():
            ts.generation += 1
            ts.jobs.clear()
            ts.answer_start = ts.answer_end = -math.inf
            ts.busy_until = -math.inf
        return out + self._states(time)

    def note_failure(self) -> None:
        """Count a failure met outside the conductor (a handler that raised, an output error, a model
        process that died): /musebridge/status errors counts every failure."""
        self.internal_errors += 1

    def shutdown(self, time: float) -> list[Action]:
        """Everything off before the daemon exits (same as panic)."""
        return self.panic(time)

    def status(self, time: float) -> Status:
        ts = self._default_track()
        mode = ts.mode if ts is not None else self._preset.defaults.mode
        return Status(
            mode=mode,
            clock=self._clock_text(),
            tempo=self._map.bpm,
            playing=self._map.playing,
            beat=self._map.beat_at(time),
            model=self._model_for(mode),
            queue=len(self._jobs),
            late=self.late,
            latency_ms=self.latency_ms,
            errors=self.errors + self.model_errors + self.internal_errors,
            model_errors=self.model_errors,
            stale=self.stale,
            tracks=len(self._tracks),
        )

    def track_status(self, track: int) -> tuple[OscArg, ...]:
        """Arguments of /musebridge/status/track for a known `track` (KeyError when unknown)."""
        ts = self._tracks[track]
        return (track, ts.mode, ts.settings.genre, ts.state or "idle", float(ts.latency_ms), ts.late)

    # -- tracks ------------------------------------------------------------------------------------

    def _step_of(self, meter: Meter) -> float:
        return self._preset.grid.step_beats(meter)

    def _get_track(self, track: int) -> TrackState:
        if isinstance(track, bool) or not isinstance(track, int) or track < 0:
            raise ValueError(f"track must be an integer >= 0, got {track!r}")
        ts = self._tracks.get(track)
        if ts is None:
            if len(self._tracks) >= MAX_TRACKS and not 1 <= track <= 16:
                raise ValueError(f"too many tracks: {MAX_TRACKS} is the most (track {track} refused)")
            ts = new_track(track, self._preset.track(track), self._grid, self._step_of)
            ts.loop = self._preset.continuation.loop
            if self._bar is not None:
                ts.phrase_start = self._grid.bar_start(self._bar)
            self._tracks[track] = ts
        return ts

    def _default_track(self) -> TrackState | None:
        return self._tracks[min(self._tracks)] if self._tracks else None

    def _model_for(self, mode: str) -> str:
        if mode in self._model_overrides:
            return self._model_overrides[mode]
        return self._preset.model_for(mode)

    def _lead(self, bar: int) -> float:
        grid = self._preset.grid
        if grid.enabled:
            return grid.step_beats(self._grid.meter_at_bar(bar)) / 2.0
        return self._preset.lookahead_ms / 1000.0 * self._map.bpm / 60.0

    def _safety_beats(self) -> float:
        return self._safety_s * self._map.bpm / 60.0

    def _out_channel(self, ts: TrackState) -> int:
        if ts.settings.out_channel is not None:
            return ts.settings.out_channel
        if ts.in_channel is not None:
            return ts.in_channel
        return (ts.track - 1) % 16 if ts.track >= 1 else 0

    def _on_out_channel(self, data: tuple[int, ...], ts: TrackState) -> tuple[int, ...]:
        if ts.settings.out_channel is None or data[0] >= 0xF0:
            return data
        return ((data[0] & 0xF0) | ts.settings.out_channel, *data[1:])

    def _routes(self, ts: TrackState) -> tuple[bool, bool]:
        """(to MIDI, to OSC) for the track's output."""
        output = self._preset.output
        if output == "both":
            return True, True
        if output == "midi":
            return True, False
        if output == "osc":
            return False, True
        source = ts.source or ("midi" if 1 <= ts.track <= 16 else "osc")
        return source == "midi", source == "osc"

    # -- OSC plumbing ------------------------------------------------------------------------------

    def _reply_target(self, sender: Sender) -> Sender:
        """Where a reply to `sender` goes: the port it registered with /musebridge/hello, else the
        port its host registered last (liblo's oscsend sends each message from a new port), else
        the sender's own address."""
        key = (str(sender[0]), int(sender[1]))
        if key in self._clients:
            return self._clients[key]
        for (host, _port), target in reversed(self._clients.items()):
            if host == key[0]:
                return target
        return key

    def _to_clients(self, address: str, args: tuple[OscArg, ...]) -> list[Action]:
        return [SendOsc(address, args, target) for target in self.clients]

    def _states(self, time: float) -> list[Action]:
        beat = self._map.beat_at(time)
        out: list[Action] = []
        for track_id in sorted(self._tracks):
            ts = self._tracks[track_id]
            state = ts.desired_state(beat)
            if state != ts.state:
                ts.state = state
                out += self._to_clients("/musebridge/state", (track_id, state))
        return out

    # -- boundaries and jobs -----------------------------------------------------------------------

    def _bar_end(self, bar: int, time: float) -> list[Action]:
        out: list[Action] = []
        for track_id in sorted(self._tracks):
            ts = self._tracks[track_id]
            plan = ts.on_bar_end(bar, self._grid, self._preset.continuation)
            if plan is not None:
                out.append(self._submit(ts, plan))
            else:
                out += self._loop_repeat(ts, bar, time)
        return out

    def _submit(
        self,
        ts: TrackState,
        plan: JobPlan,
        reply_to: Sender | None = None,
        clip_length: float = 0.0,
        follow_up: bool = False,
    ) -> SubmitJob:
        job_id = self._next_job_id
        self._next_job_id += 1
        request = ModelRequest(
            mode=plan.mode,
            phrase=plan.phrase,
            bars=plan.bars,
            genre=plan.genre,
            temperature=plan.temperature,
            position=plan.position,
            clip_a=plan.clip_a,
            clip_b=plan.clip_b,
            seed=job_id,
        )
        job = Job(job_id, ts.track, self._model_for(plan.mode), request, plan.deadline_beat, plan.land_beat)
        self._jobs[job_id] = _Pending(job, ts.generation, reply_to, clip_length, follow_up)
        if reply_to is None:  # clip jobs are offline: they do not hold up the track's live state
            ts.jobs.add(job_id)
        return SubmitJob(job)

    def _play_answer(
        self, ts: TrackState, phrase: Phrase, land_beat: float, time: float, follow_up: bool = False
    ) -> list[Action]:
        """Schedule an answer on `land_beat`, or whole bars later when it came too late. In continue
        mode it becomes the track's last answer; a first answer (not a follow-up: a loop repetition
        or a mutation) holds off the next call until it ends."""
        if not self._map.playing:
            self.stale += 1
            return []
        grid = self._grid
        land = land_beat
        to_midi, to_osc = self._routes(ts)
        margin = self._safety_beats()
        if to_osc:  # the device queues the notes by beat: they must reach it before the first one
            margin = max(margin, OSC_MARGIN_MS / 1000.0 * self._map.bpm / 60.0)
        earliest = self._map.beat_at(time) + margin
        if land < earliest - _EPS:
            bar = grid.bar_at(land)
            while grid.bar_start(bar) < earliest - _EPS:
                bar += 1
            land = grid.bar_start(bar)
            self.late += 1
            ts.late += 1
        answer = phrase.clipped()
        notes = tuple(n.shifted(land) for n in answer.notes)
        if not follow_up or ts.mode != "continue":
            ts.answered += 1
        land_bar = grid.bar_at(land)
        ts.answer_start = land
        ts.answer_end = max(grid.bar_start(land_bar + answer.bars), land)
        if ts.mode == "continue":
            ts.last_answer = answer
            if not follow_up:
                ts.busy_until = ts.answer_end
        out: list[Action] = []
        if to_midi:
            out.append(ScheduleNotes(ts.track, self._out_channel(ts), notes, land))
        if to_osc:
            out += self._to_clients("/musebridge/out/clear", (ts.track, float(land)))
            for n in notes:
                args = (ts.track, n.pitch, n.velocity, float(n.start), float(n.duration))
                out += self._to_clients("/musebridge/out/note", args)
        return out

    def _clip_reply(self, track: int, phrase: Phrase, pending: _Pending) -> list[Action]:
        """/musebridge/out/clip (or its parts): an answer as long as the clip sent keeps the clip's
        own length."""
        answer = phrase.clipped()
        length = float(answer.length_beats)
        if answer.bars == pending.job.request.phrase.bars and 0 < pending.clip_length < length:
            length = pending.clip_length
        flat: list[OscArg] = []
        for n in answer.notes:
            if n.start < length - _EPS:
                flat += [n.pitch, float(n.start), float(min(n.duration, length - n.start)), n.velocity]
        assert pending.reply_to is not None
        return [SendOsc(address, args, pending.reply_to)
                for address, args in clip_datagrams(track, 0, 1, length, flat)]
