"""OSC control of the Conductor: one handler per inbound address of bridge/osc_spec.json.

A mixin of Conductor (bridge/core/conductor.py), split out to keep files short: the handlers use
the conductor's state and helpers. Arguments arrive type-checked and coerced by the io layer; the
handlers still check ranges and choices and raise ValueError with a one-line reason, which the
conductor answers as /musebridge/error (nothing changes then).

/musebridge/transport is followed only with --clock auto|osc (ignored with internal or midi).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from musebridge import __version__
from musebridge.core.actions import Action, ClearOutput, OscArg, PrepareModel, SendOsc
from musebridge.core.model_protocol import MODES
from musebridge.core.music import Meter, Note, Phrase
from musebridge.core.session import JobPlan, TrackState
from musebridge.errors import UserError
from musebridge.presets import Preset

Sender = tuple[str, int]
OSC_CHANNEL = -1  # the input buffer's channel for notes that come as /musebridge/note_on and note_off

#: Notes per answer-clip datagram: 200 notes of 20 bytes keep one datagram near 4 KB, well inside
#: what UDP and Max's [udpreceive] carry. A longer answer goes as /musebridge/out/clip_part.
CLIP_NOTES_PER_DATAGRAM = 200


def clip_datagrams(track: int, index: int, count: int, length: float,
                   flat: list[OscArg]) -> list[tuple[str, tuple[OscArg, ...]]]:
    """The OSC messages of one answer clip: `/musebridge/out/clip` when its notes (`flat`: groups of
    pitch, start, duration, velocity) fit in one datagram, else `/musebridge/out/clip_part ... part
    parts` messages of CLIP_NOTES_PER_DATAGRAM notes each, which the device joins in order
    (docs/osc.md)."""
    group = 4 * CLIP_NOTES_PER_DATAGRAM
    if len(flat) <= group:
        return [("/musebridge/out/clip", (track, index, count, length, *flat))]
    chunks = [flat[i:i + group] for i in range(0, len(flat), group)]
    return [("/musebridge/out/clip_part", (track, index, count, length, part, len(chunks), *chunk))
            for part, chunk in enumerate(chunks)]


MAX_CLIENTS = 32  # OSC registrations kept (/musebridge/hello); past it the oldest is forgotten


class OscControl:
    """OSC handlers (mixin of Conductor)."""

    def _osc_hello(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        port = int(args[0])
        if not 1 <= port <= 65535:
            raise ValueError(f"reply_port must be 1..65535, got {port}")
        target = (sender[0], port)
        key = (str(sender[0]), int(sender[1]))
        self._clients.pop(key, None)  # re-inserted last: the host's latest registration
        self._clients[key] = target
        # A controller that restarts says hello from a new port each time: a daemon running for days
        # would otherwise send every broadcast to each port it ever heard of.
        while len(self._clients) > MAX_CLIENTS:
            del self._clients[next(iter(self._clients))]
        out: list[Action] = [SendOsc("/musebridge/welcome", (__version__,), target),
                             SendOsc("/musebridge/genres", tuple(self._preset.genres), target)]
        # The new client learns every track's current state (later changes reach all clients).
        self._states(time)
        for track_id in sorted(self._tracks):
            out.append(SendOsc("/musebridge/state", (track_id, self._tracks[track_id].state), target))
            if self._tracks[track_id].loop:
                out.append(SendOsc("/musebridge/loop", (track_id, 1), target))
        return out

    def _osc_ping(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        return [SendOsc("/musebridge/pong", (), self._reply_target(sender))]

    def _osc_status(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        """The daemon's status, the MIDI ports' state and the accepted genres, then one
        /musebridge/status/track per track asked (none: all)."""
        target = self._reply_target(sender)
        changes = self._states(time)  # the states reported are the current ones
        tracks = [int(t) for t in args] or sorted(self._tracks)
        unknown = [t for t in tracks if t not in self._tracks]
        out: list[Action] = [SendOsc("/musebridge/status", self.status(time).osc_args(), target),
                             SendOsc("/musebridge/midi", self.midi_state, target),
                             SendOsc("/musebridge/genres", tuple(self._preset.genres), target)]
        out += [SendOsc("/musebridge/status/track", self.track_status(t), target)
                for t in dict.fromkeys(tracks) if t in self._tracks]
        if unknown:
            self.errors += 1
            reason = f"no track {', '.join(map(str, unknown))} (known: {len(self._tracks)} tracks)"
            out.append(SendOsc("/musebridge/error", (reason, "/musebridge/status"), target))
        return changes + out

    def midi_ports(self, state: str, detail: str) -> list[Action]:
        """The MIDI ports changed state ('ok' or 'lost', from the daemon's port watch): every client
        is told (/musebridge/midi) and /musebridge/status answers with it from now on."""
        if state not in ("ok", "lost"):
            raise ValueError(f"MIDI port state must be ok or lost, got {state!r}")
        self.midi_state = (state, detail)
        return self._to_clients("/musebridge/midi", self.midi_state)

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

    def _osc_note_on(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        track, pitch, velocity, beat = args
        ts = self._osc_input_track(int(track))
        if self._map.playing:
            ts.buffer.note_on(OSC_CHANNEL, int(pitch), int(velocity), float(beat))
        return []

    def _osc_note_off(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        track, pitch, beat = args
        ts = self._osc_input_track(int(track))
        if self._map.playing:
            ts.buffer.note_off(OSC_CHANNEL, int(pitch), float(beat))
        return []

    def _osc_input_track(self, track: int) -> TrackState:
        ts = self._get_track(track)
        ts.source = "osc"
        return ts

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
            answer_bars = ts.answer_bars or self._preset.continuation.answer_bars or bars
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
        if mode == "transfer" and not ts.settings.genre and not self._preset.genres:
            raise ValueError(f"track {ts.track}: transfer needs a target genre and the preset lists none")
        ts.settings = replace(ts.settings, mode=mode)
        ts.reset_progress()
        if self._bar is not None:
            ts.phrase_start = self._grid.bar_start(self._bar)
        out = self._default_genre(ts, "/musebridge/mode")
        return out + self._prepare_models([mode]) + self._clear_track(ts, time) + self._states(time)

    def _default_genre(self, ts: TrackState, where: str) -> list[Action]:
        """A track in transfer mode without a target genre takes the preset's first genre, once, and
        the clients are told why (/musebridge/error reason address): without it every job would fail.
        Nothing when the track has a genre, is in another mode, or the preset lists no genre."""
        if ts.mode != "transfer" or ts.settings.genre or not self._preset.genres:
            return []
        genre = self._preset.genres[0]
        ts.settings = replace(ts.settings, genre=genre)
        reason = (f"track {ts.track}: transfer needs a target genre; using {genre!r} "
                  "(choose another with /musebridge/genre)")
        return self._to_clients("/musebridge/error", (reason, where))

    def _prepare_models(self, modes: Iterable[str]) -> list[Action]:
        """PrepareModel for the model of each model mode among `modes` (once per model)."""
        names = dict.fromkeys(self._model_for(mode) for mode in modes if mode != "thru")
        return [PrepareModel(name) for name in names]

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
        if not genre and self._get_track(track).mode == "transfer":
            raise ValueError(f"track {track} is in transfer mode: it needs a target genre")
        self._set(track, genre=genre)
        return []

    def _osc_temperature(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        value = float(args[1])
        if not 0.01 <= value <= 5.0:
            raise ValueError(f"temperature must be 0.01..5.0, got {value:g}")
        self._set(int(args[0]), temperature=value)
        return []

    def _osc_bars(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        """Phrase length of the track; in continue mode also the length of its answers."""
        bars = int(args[1])
        if not 1 <= bars <= 64:
            raise ValueError(f"bars must be 1..64, got {bars}")
        ts = self._set(int(args[0]), phrase_bars=bars)
        if ts.mode == "continue":
            ts.answer_bars = bars
        return []

    def _osc_echo(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        on = int(args[1])
        if on not in (0, 1):
            raise ValueError(f"echo must be 0 or 1, got {on}")
        self._set(int(args[0]), echo_input=bool(on))
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
        ts = self._continue_track(int(args[0]))
        return self._end_call(ts, time) + self._states(time)

    def _osc_loop(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        ts = self._continue_track(int(args[0]))
        on = int(args[1])
        if on not in (0, 1):
            raise ValueError(f"loop must be 0 or 1, got {on}")
        return self._set_loop(ts, bool(on), time)

    def _osc_mutate(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        ts = self._continue_track(int(args[0]))
        if ts.last_answer is None:
            raise ValueError(f"track {ts.track} has no answer to mutate yet")
        if not self._map.playing:
            raise ValueError("the transport is stopped")
        out = self._mutate(ts, time)
        if not out:
            raise ValueError(f"track {ts.track} is busy (a call is being played or an answer computed)")
        return out

    def _continue_track(self, track: int) -> TrackState:
        ts = self._get_track(track)
        if ts.mode != "continue":
            raise ValueError(f"track {ts.track} is in {ts.mode} mode, not continue")
        return ts

    def _osc_tempo(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        bpm = float(args[0])
        leader = self._clock.leader
        if leader != "internal":
            raise ValueError(f"the {leader} clock is in charge of the tempo; /musebridge/tempo sets the "
                             "internal clock only")
        if not 20.0 <= bpm <= 400.0:
            raise ValueError(f"tempo must be 20..400 BPM, got {bpm:g}")
        self._clock.internal.set_tempo(bpm, time)
        return self._sync(time)

    def _osc_preset(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        if self._preset_loader is None:
            raise ValueError("loading presets is not available here")
        name = str(args[0])
        try:
            preset = self._preset_loader(name)
        except UserError as exc:  # the loader's one-line reason (never a file's text)
            return self.handle_bad_message("/musebridge/preset", str(exc), sender, time)
        except Exception:  # noqa: BLE001 - anything else: no detail goes back over the network
            reason = f"preset {name[:40]!r} could not be loaded"
            return self.handle_bad_message("/musebridge/preset", reason, sender, time)
        return self.load_preset(preset, time)

    def load_preset(self, preset: Preset, time: float) -> list[Action]:
        """Switch to `preset`: every track takes its settings (clips are kept), output is cleared.

        A track it puts in transfer mode without a genre takes the preset's first genre (the clients
        are told); ValueError, nothing changed, when the preset lists no genre for it."""
        if not preset.genres:
            for track_id in set(self._tracks) | set(preset.tracks):
                settings = preset.track(track_id)
                if settings.mode == "transfer" and not settings.genre:
                    raise ValueError(f"preset {preset.name!r}: track {track_id} is in transfer mode "
                                     "with no genre, and the preset lists none")
        self._preset = preset
        out: list[Action] = [ClearOutput(None), *self._to_clients("/musebridge/out/panic", ()),
                             *self._to_clients("/musebridge/genres", tuple(preset.genres))]
        beat = self._map.beat_at(time)
        if self._grid.meter_at(beat) != preset.meter:
            self._grid.change_meter(preset.meter, beat)
        if abs(self._clock.internal.tempo_map.bpm - preset.tempo) > 1e-9:
            self._clock.internal.set_tempo(preset.tempo, time)
        for track_id in set(self._tracks) | set(preset.tracks):
            ts = self._get_track(track_id)
            ts.settings = preset.track(track_id)
            if ts.loop != preset.continuation.loop:
                ts.loop = preset.continuation.loop
                out += self._to_clients("/musebridge/loop", (track_id, int(ts.loop)))
            ts.reset_progress()
            if self._bar is not None:
                ts.phrase_start = self._grid.bar_start(self._bar)
            out += self._default_genre(ts, "/musebridge/preset")
        out += self._prepare_models(sorted({ts.mode for ts in self._tracks.values()}))
        return out + self._sync(time) + self._states(time)

    def _osc_panic(self, args: tuple, sender: Sender, time: float) -> list[Action]:
        return self.panic(time)


OSC_HANDLERS: dict[str, Callable[[Any, tuple, Sender, float], list[Action]]] = {
    "/musebridge/hello": OscControl._osc_hello,
    "/musebridge/ping": OscControl._osc_ping,
    "/musebridge/status": OscControl._osc_status,
    "/musebridge/transport": OscControl._osc_transport,
    "/musebridge/note": OscControl._osc_note,
    "/musebridge/note_on": OscControl._osc_note_on,
    "/musebridge/note_off": OscControl._osc_note_off,
    "/musebridge/clip": OscControl._osc_clip,
    "/musebridge/mode": OscControl._osc_mode,
    "/musebridge/genre": OscControl._osc_genre,
    "/musebridge/temperature": OscControl._osc_temperature,
    "/musebridge/bars": OscControl._osc_bars,
    "/musebridge/capture": OscControl._osc_capture,
    "/musebridge/position": OscControl._osc_position,
    "/musebridge/echo": OscControl._osc_echo,
    "/musebridge/end_call": OscControl._osc_end_call,
    "/musebridge/loop": OscControl._osc_loop,
    "/musebridge/mutate": OscControl._osc_mutate,
    "/musebridge/tempo": OscControl._osc_tempo,
    "/musebridge/preset": OscControl._osc_preset,
    "/musebridge/panic": OscControl._osc_panic,
}
