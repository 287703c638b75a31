"""The Conductor: the single owner of the bridge's state. Pure and single-threaded.

It is fed whole MIDI messages, type-checked OSC messages, model results and timer ticks, each with
the time (float seconds, the daemon's one clock), and answers with actions (bridge/core/actions.py)
for the I/O edges to perform. It performs no I/O and never reads the time itself.

Tracks: MIDI channel c (0..15) is track c + 1; OSC track ids are ints >= 0. A track's output goes
where its input came from (preset `output: same`): MIDI in -> ScheduleNotes on the MIDI output
(same channel unless `out_channel`), OSC in -> /musebridge/out/clear then /musebridge/out/note per
note (song beats, sent ahead of time) to every registered client. A track that has had no input yet
counts as MIDI for ids 1..16 and OSC otherwise.

OSC replies go to the sender's registered reply port (/musebridge/hello), else to the sender's
address. Messages for "every client" are returned as one SendOsc per registered client (explicit
targets); with no client registered they are not sent.

Timing: a bar's content is final at its dispatch point `bar_end - lead` (lead = half a grid step,
or the preset's lookahead with the grid off); jobs are submitted there with their deadline at the
bar line where the answer lands. A result in hand after `land_beat - safety` is moved later by
whole bars until it fits and counted in `late`; it is never dropped silently. Results for a
track whose mode changed, or after a stop, relocation or panic, are stale: dropped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from musebridge import __version__
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
    TempoChanged,
)
from musebridge.core.bars import BarGrid
from musebridge.core.clock import ClockSelector
from musebridge.core.model_protocol import MODES, ModelRequest
from musebridge.core.music import Meter, Note, Phrase
from musebridge.core.session import JobPlan, TrackState, new_track
from musebridge.core.tempo import TempoMap
from musebridge.presets import Preset

_EPS = 1e-9
SAFETY_MS = 5.0  # a result must be in hand this long before its land beat
RESYNC_BEATS = 0.002  # re-send the tempo map when it drifts more than this (1 ms at 120 BPM)
RELOCATE_BEATS = 0.25  # a jump bigger than this while playing is a relocation (bars restart)
MAX_IDLE_S = 0.25  # next_tick_time never lies further ahead than this
MAX_BARS_PER_TICK = 256

Sender = tuple[str, int]


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


class Conductor:
    """Single owner of state; every method takes the time and returns actions (see module doc)."""

    def __init__(
        self,
        preset: Preset,
        *,
        now: float,
        clock: str | None = "auto",
        model_names: Mapping[str, str] | None = None,
        preset_loader: Callable[[str], Preset] | None = None,
        tempo: float | None = None,
    ) -> None:
        self._preset = preset
        self._model_overrides = dict(model_names or {})
        self._preset_loader = preset_loader
        self._clock = ClockSelector(clock or preset.clock, tempo or preset.tempo, now)
        self._grid = BarGrid(preset.meter)
        self._tracks: dict[int, TrackState] = {}
        for track_id in preset.tracks:
            self._get_track(track_id)
        self._jobs: dict[int, _Pending] = {}
        self._next_job_id = 1
        self._clients: dict[Sender, Sender] = {}
        self._thru_open: dict[tuple[int, int], int] = {}  # (in channel, pitch) -> out channel
        self._bar: int | None = None  # the bar whose dispatch point comes next (None: stopped)
        self._map = self._clock.tempo_map
        self._leader = self._clock.leader
        self.late = 0
        self.errors = 0
        self.model_errors = 0
        self.stale = 0
        self.latency_ms = 0.0
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
            cc = self._preset.continuation.end_call_cc
            if ts.mode == "continue" and cc is not None and msg.control == cc:
                if msg.value >= 64:
                    out += self._end_call(ts, time)
                return out
        forward = ts.mode == "thru" or ts.settings.echo_input
        if isinstance(msg, mb.NoteOff):
            # A note that went out thru gets its off on the same channel, whatever the mode is now.
            out_channel = self._thru_open.pop((msg.channel, msg.pitch), None)
            if out_channel is not None:
                out.append(SendMidi(((data[0] & 0xF0) | out_channel, *tuple(data)[1:])))
            elif forward:
                out.append(SendMidi(self._on_out_channel(tuple(data), ts)))
        elif forward:
            out.append(SendMidi(self._on_out_channel(tuple(data), ts)))
            if isinstance(msg, mb.NoteOn):
                self._thru_open[(msg.channel, msg.pitch)] = self._out_channel(ts)
        if isinstance(msg, mb.NoteOn | mb.NoteOff):
            if self._map.playing:
                beat = self._map.beat_at(time)
                if isinstance(msg, mb.NoteOn):
                    ts.buffer.note_on(msg.channel, msg.pitch, msg.velocity, beat)
                else:
                    ts.buffer.note_off(msg.channel, msg.pitch, beat)
        return out + self._states(time)

    def handle_osc(self, address: str, args: tuple, sender: Sender, time: float) -> list[Action]:
        """One OSC message, already type-checked and coerced per bridge/osc_spec.json."""
        handler = _OSC_HANDLERS.get(address)
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
        ts.jobs.discard(job_id)
        if pending.generation != ts.generation:
            self.stale += 1
            return self._states(time)
        if error is not None or phrase is None:
            self.model_errors += 1
            ts.busy_until = -math.inf
            reason = f"model '{job.model}' failed: {error or 'no phrase returned'}"
            where = "/musebridge/clip" if pending.reply_to is not None else f"/musebridge/{job.request.mode}"
            target = [pending.reply_to] if pending.reply_to is not None else self.clients
            return [SendOsc("/musebridge/error", (reason, where), t) for t in target] + self._states(time)
        if pending.reply_to is not None:
            return [self._clip_reply(job.track, phrase, pending)]
        return self._land(ts, job, phrase, time) + self._states(time)

    def tick(self, time: float) -> list[Action]:
        """Advance the clock to `time`: cross dispatch points, submit jobs, report state changes."""
        out = self._sync(time)
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
        if not self._map.playing or self._bar is None:
            return latest
        when = self._map.time_at(self._grid.bar_end(self._bar) - self._lead(self._bar))
        beat = self._map.beat_at(time)
        for ts in self._tracks.values():
            for edge in (ts.answer_start, ts.answer_end):
                if edge > beat + _EPS:
                    when = min(when, self._map.time_at(edge))
        return max(time, min(latest, when))

    def panic(self, time: float) -> list[Action]:
        """All notes off now on every output; scheduled output and in-flight results are dropped."""
        out: list[Action] = [ClearOutput(None)]
        out += [SendMidi(mb.note_off(ch, pitch)) for (_, pitch), ch in sorted(self._thru_open.items())]
        self._thru_open.clear()
        out += self._to_clients("/musebridge/out/panic", ())
        for ts in self._tracks.values():
            ts.generation += 1
            ts.jobs.clear()
            ts.answer_start = ts.answer_end = -math.inf
            ts.busy_until = -math.inf
        self._jobs.clear()
        return out + self._states(time)

    def shutdown(self, time: float) -> list[Action]:
        """Everything off before the daemon exits (same as panic)."""
        return self.panic(time)

    def status(self, time: float) -> Status:
        ts = self._default_track()
        mode = ts.mode if ts is not None else self._preset.defaults.mode
        return Status(
            mode=mode,
            clock=self._clock.leader,
            tempo=self._map.bpm,
            playing=self._map.playing,
            beat=self._map.beat_at(time),
            model=self._model_for(mode),
            queue=len(self._jobs),
            late=self.late,
            latency_ms=self.latency_ms,
            errors=self.errors,
            model_errors=self.model_errors,
            stale=self.stale,
            tracks=len(self._tracks),
        )

    # -- tracks ------------------------------------------------------------------------------------

    def _step_of(self, meter: Meter) -> float:
        return self._preset.grid.step_beats(meter)

    def _get_track(self, track: int) -> TrackState:
        if isinstance(track, bool) or not isinstance(track, int) or track < 0:
            raise ValueError(f"track must be an integer >= 0, got {track!r}")
        ts = self._tracks.get(track)
        if ts is None:
            ts = new_track(track, self._preset.track(track), self._grid, self._step_of)
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
        return SAFETY_MS / 1000.0 * self._map.bpm / 60.0

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
        return self._clients.get(tuple(sender), tuple(sender))  # type: ignore[arg-type]

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

    # -- clock ------------------------------------------------------------------------------------

    def _midi_clock(self, msg: mb.Realtime | mb.SongPosition, time: float) -> list[Action]:
        follower = self._clock.midi
        if isinstance(msg, mb.SongPosition):
            follower.song_position(msg.beats, time)
        elif msg.kind == "clock":
            follower.tick(time)
        elif msg.kind == "start":
            follower.start(time)
        elif msg.kind == "continue":
            follower.continue_(time)
        elif msg.kind == "stop":
            follower.stop(time)
        else:  # active sensing, reset: nothing to follow
            return []
        if self._clock.mode in ("auto", "midi"):
            self._clock.external_seen("midi")
        return self._sync(time)

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
            self._restart(new.beat_at(time))
            return out
        if not new.playing:
            if changed_leader or abs(new.anchor_beat - old.anchor_beat) > _EPS or new.bpm != old.bpm:
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
        self._jobs.clear()

    def _stop(self, time: float) -> list[Action]:
        self._invalidate()
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

    # -- boundaries and jobs -----------------------------------------------------------------------

    def _bar_end(self, bar: int, time: float) -> list[Action]:
        out: list[Action] = []
        for track_id in sorted(self._tracks):
            ts = self._tracks[track_id]
            plan = ts.on_bar_end(bar, self._grid, self._preset.continuation)
            if plan is not None:
                out.append(self._submit(ts, plan))
        return out

    def _submit(
        self, ts: TrackState, plan: JobPlan, reply_to: Sender | None = None, clip_length: float = 0.0
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
        self._jobs[job_id] = _Pending(job, ts.generation, reply_to, clip_length)
        ts.jobs.add(job_id)
        return SubmitJob(job)

    def _end_call(self, ts: TrackState, time: float) -> list[Action]:
        if not self._map.playing or self._bar is None:
            return []
        beat = self._map.beat_at(time)
        plan = ts.end_call(beat, self._lead(self._grid.bar_at(beat)), self._grid, self._preset.continuation)
        return [self._submit(ts, plan)] if plan is not None else []

    def _land(self, ts: TrackState, job: Job, phrase: Phrase, time: float) -> list[Action]:
        """Schedule a result on its land beat, or whole bars later when it came too late."""
        if not self._map.playing:
            self.stale += 1
            return []
        grid = self._grid
        land = job.land_beat
        earliest = self._map.beat_at(time) + self._safety_beats()
        if land < earliest - _EPS:
            bar = grid.bar_at(land)
            while grid.bar_start(bar) < earliest - _EPS:
                bar += 1
            land = grid.bar_start(bar)
            self.late += 1
        answer = phrase.clipped()
        notes = tuple(n.shifted(land) for n in answer.notes)
        land_bar = grid.bar_at(land)
        ts.answer_start = land
        ts.answer_end = max(grid.bar_start(land_bar + answer.bars), land)
        if ts.mode == "continue":
            ts.busy_until = ts.answer_end
        to_midi, to_osc = self._routes(ts)
        out: list[Action] = []
        if to_midi:
            out.append(ScheduleNotes(ts.track, self._out_channel(ts), notes, land))
        if to_osc:
            out += self._to_clients("/musebridge/out/clear", (ts.track, float(land)))
            for n in notes:
                args = (ts.track, n.pitch, n.velocity, float(n.start), float(n.duration))
                out += self._to_clients("/musebridge/out/note", args)
        return out

    def _clip_reply(self, track: int, phrase: Phrase, pending: _Pending) -> SendOsc:
        answer = phrase.clipped()
        flat: list[OscArg] = []
        for n in answer.notes:
            flat += [n.pitch, float(n.start), float(n.duration), n.velocity]
        length = float(answer.length_beats)
        assert pending.reply_to is not None
        return SendOsc("/musebridge/out/clip", (track, 0, 1, length, *flat), pending.reply_to)

    # -- OSC handlers ------------------------------------------------------------------------------

    def _osc_hello(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        port = int(args[0])
        if not 1 <= port <= 65535:
            raise ValueError(f"reply_port must be 1..65535, got {port}")
        target = (sender[0], port)
        self._clients[tuple(sender)] = target  # type: ignore[index]
        return [SendOsc("/musebridge/welcome", (__version__,), target)]

    def _osc_ping(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        return [SendOsc("/musebridge/pong", (), self._reply_target(sender))]

    def _osc_status(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        return [SendOsc("/musebridge/status", self.status(time).osc_args(), self._reply_target(sender))]

    def _osc_transport(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        tempo, numerator, denominator, beat, playing = args
        if self._clock.mode not in ("auto", "osc"):
            return []
        meter = Meter(int(numerator), int(denominator))
        self._clock.osc.update(
            float(tempo), meter.numerator, meter.denominator, float(beat), bool(playing), time
        )
        self._clock.external_seen("osc")
        if self._clock.leader == "osc" and self._grid.meter_at(float(beat)) != meter:
            self._grid.change_meter(meter, float(beat))
        return self._sync(time) + self._states(time)

    def _osc_note(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        track, pitch, velocity, beat, duration = args
        note = Note(int(pitch), int(velocity), float(beat), float(duration))  # validates
        ts = self._get_track(int(track))
        ts.source = "osc"
        if self._map.playing:
            ts.buffer.add_note(note.pitch, note.velocity, note.start, note.duration)
        return []

    def _osc_clip(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        track, slot, length = int(args[0]), str(args[1]), float(args[2])
        flat = args[3:]
        if len(flat) % 4:
            raise ValueError("clip notes come in groups of four: pitch start duration velocity")
        if not length > 0:
            raise ValueError(f"clip length must be > 0 beats, got {length:g}")
        meter = self._grid.meter_at(self._map.beat_at(time))
        bars = max(1, math.ceil(length / meter.beats_per_bar - 1e-6))
        notes = [
            Note(int(flat[i]), int(flat[i + 3]), float(flat[i + 1]), float(flat[i + 2]))
            for i in range(0, len(flat), 4)
        ]
        phrase = Phrase(tuple(notes), bars=bars, meter=meter).clipped()
        ts = self._get_track(track)
        ts.source = "osc"
        if slot in ("a", "b"):
            ts.store_clip(slot, phrase)
            return self._states(time)
        if slot != "in":
            raise ValueError(f"clip slot must be in|a|b, got {slot!r}")
        answer_bars = bars
        if ts.mode == "continue":
            answer_bars = self._preset.continuation.answer_bars or bars
        # Clip mode is offline: no deadline, the answer goes back as /musebridge/out/clip.
        plan = JobPlan(
            track=track,
            mode=ts.mode,
            phrase=phrase,
            bars=answer_bars,
            land_beat=math.inf,
            deadline_beat=math.inf,
            genre=ts.settings.genre,
            temperature=ts.settings.temperature,
            position=ts.settings.position,
            clip_a=ts.clip_a,
            clip_b=ts.clip_b,
        )
        return [self._submit(ts, plan, reply_to=self._reply_target(sender), clip_length=length)]

    def _set(self, track: int, **changes: object) -> TrackState:
        ts = self._get_track(int(track))
        ts.settings = replace(ts.settings, **changes)  # type: ignore[arg-type]
        return ts

    def _osc_mode(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        track, mode = int(args[0]), str(args[1])
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (known: {'|'.join(MODES)})")
        ts = self._get_track(track)
        if ts.mode == mode:
            return self._states(time)
        return self._change_mode(ts, mode, time)

    def _change_mode(self, ts: TrackState, mode: str, time: float) -> list[Action]:
        ts.settings = replace(ts.settings, mode=mode)
        ts.reset_progress()
        for job_id in [j for j, p in self._jobs.items() if p.job.track == ts.track and p.reply_to is None]:
            del self._jobs[job_id]
        if self._bar is not None:
            ts.phrase_start = self._grid.bar_start(self._bar)
        return self._clear_track(ts, time) + self._states(time)

    def _clear_track(self, ts: TrackState, time: float) -> list[Action]:
        to_midi, to_osc = self._routes(ts)
        out: list[Action] = [ClearOutput(ts.track)] if to_midi else []
        if to_osc:
            out += self._to_clients("/musebridge/out/clear", (ts.track, float(self._map.beat_at(time))))
        return out

    def _osc_genre(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        track, genre = int(args[0]), str(args[1])
        if genre and genre not in self._preset.genres:
            raise ValueError(f"unknown genre {genre!r} (known: {', '.join(self._preset.genres)})")
        self._set(track, genre=genre)
        return []

    def _osc_temperature(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        value = float(args[1])
        if not 0.01 <= value <= 5.0:
            raise ValueError(f"temperature must be 0.01..5.0, got {value:g}")
        self._set(int(args[0]), temperature=value)
        return []

    def _osc_bars(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        bars = int(args[1])
        if not 1 <= bars <= 64:
            raise ValueError(f"bars must be 1..64, got {bars}")
        self._set(int(args[0]), phrase_bars=bars)
        return []

    def _osc_position(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        value = float(args[1])
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"position must be 0..1, got {value:g}")
        self._set(int(args[0]), position=value)
        return []

    def _osc_capture(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        ts = self._get_track(int(args[0]))
        beat = self._map.beat_at(time)
        ts.request_capture(str(args[1]), beat, self._lead(self._grid.bar_at(beat)))
        return self._states(time)

    def _osc_end_call(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        ts = self._get_track(int(args[0]))
        if ts.mode != "continue":
            raise ValueError(f"track {ts.track} is in {ts.mode} mode, not continue")
        return self._end_call(ts, time) + self._states(time)

    def _osc_tempo(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        bpm = float(args[0])
        if not 20.0 <= bpm <= 400.0:
            raise ValueError(f"tempo must be 20..400 BPM, got {bpm:g}")
        self._clock.internal.set_tempo(bpm, time)
        return self._sync(time)

    def _osc_preset(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        if self._preset_loader is None:
            raise ValueError("loading presets is not available here")
        try:
            preset = self._preset_loader(str(args[0]))
        except Exception as exc:  # noqa: BLE001 - any loader failure is the user's message
            return self.handle_bad_message("/musebridge/preset", str(exc), sender, time)
        return self.load_preset(preset, time)

    def load_preset(self, preset: Preset, time: float) -> list[Action]:
        """Switch to `preset`: every track takes its settings (clips are kept), output is cleared."""
        self._preset = preset
        out: list[Action] = [ClearOutput(None), *self._to_clients("/musebridge/out/panic", ())]
        beat = self._map.beat_at(time)
        if self._grid.meter_at(beat) != preset.meter:
            self._grid.change_meter(preset.meter, beat)
        if abs(self._clock.internal.tempo_map.bpm - preset.tempo) > 1e-9:
            self._clock.internal.set_tempo(preset.tempo, time)
        for track_id in set(self._tracks) | set(preset.tracks):
            ts = self._get_track(track_id)
            ts.settings = preset.track(track_id)
            ts.reset_progress()
            if self._bar is not None:
                ts.phrase_start = self._grid.bar_start(self._bar)
        self._jobs = {k: p for k, p in self._jobs.items() if p.reply_to is not None}
        return out + self._sync(time) + self._states(time)

    def _osc_panic(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        return self.panic(time)


_OSC_HANDLERS: dict[str, Callable[[Conductor, tuple, Sender, float], list[Action]]] = {
    "/musebridge/hello": Conductor._osc_hello,
    "/musebridge/ping": Conductor._osc_ping,
    "/musebridge/status": Conductor._osc_status,
    "/musebridge/transport": Conductor._osc_transport,
    "/musebridge/note": Conductor._osc_note,
    "/musebridge/clip": Conductor._osc_clip,
    "/musebridge/mode": Conductor._osc_mode,
    "/musebridge/genre": Conductor._osc_genre,
    "/musebridge/temperature": Conductor._osc_temperature,
    "/musebridge/bars": Conductor._osc_bars,
    "/musebridge/capture": Conductor._osc_capture,
    "/musebridge/position": Conductor._osc_position,
    "/musebridge/end_call": Conductor._osc_end_call,
    "/musebridge/tempo": Conductor._osc_tempo,
    "/musebridge/preset": Conductor._osc_preset,
    "/musebridge/panic": Conductor._osc_panic,
}
