"""Same-cycle thru for JACK: input on a thru channel is written to the output in the cycle it came in.

Without it a thru note waits for the conductor thread and then for the next JACK cycle: on average
half a period of added latency, up to a whole one (docs/benchmarks.md). With it the note leaves at
its own frame offset, in the same process callback: no added latency.

How: the JACK port calls `on_message(data, time)` inside its process callback, after writing the
cycle's scheduled output. `FastThru.on_message` wraps the server's callback: for a channel message on
a channel in `routes` (input channel -> output channel, swapped whole by the server from the
conductor's track settings) it writes the (re-channelled) message straight into the port's output
buffer at the message's own frame offset, then enqueues the message for the conductor marked as
already forwarded; the server then drops the conductor's identical SendMidi. If the write cannot
be done (an event already written later in the buffer, buffer full), the message takes the normal
path. A note-off always follows its note-on's path, even when the routes changed in between, so no
note is left hanging.

This is an adapter over `musebridge.io.jack_midi.JackMidiPorts` (its `clock`, `outport` and
`client` attributes), kept here until the port offers the hook itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

Forwarded = Callable[[tuple[int, ...], float, bool], None]


class FastThru:
    """Forwards thru-channel input inside the JACK process callback (see the module doc)."""

    def __init__(self, ports: Any, enqueue: Forwarded) -> None:
        self.ports = ports
        self.enqueue = enqueue
        self.routes: Mapping[int, int] = {}
        self.held_back_controls: frozenset[int] = frozenset()  # CCs the conductor may consume
        self.forwarded = 0
        self.fallbacks = 0
        self._sounding: dict[tuple[int, int], int] = {}  # (in channel, pitch) -> out channel

    @staticmethod
    def supported(ports: Any) -> bool:
        """Whether `ports` is a JACK port with what this adapter uses."""
        return getattr(ports, "backend", "") == "jack" and all(
            hasattr(ports, name) for name in ("clock", "outport", "client")
        )

    def set_routes(self, routes: Mapping[int, int], held_back_controls: frozenset[int] = frozenset()) -> None:
        """Thru routes, input channel -> output channel (swapped whole: the JACK thread reads it);
        control changes in `held_back_controls` always take the conductor's path."""
        self.held_back_controls = frozenset(held_back_controls)
        self.routes = dict(routes)

    def on_message(self, data: tuple[int, ...], time: float) -> None:
        """The port's input callback (JACK process thread): forward now if routed, then enqueue."""
        forwarded = False
        if data and 0x80 <= data[0] < 0xF0:
            try:
                forwarded = self._forward(data, time)
            except Exception:  # never raise in the process callback
                forwarded = False
        self.enqueue(data, time, forwarded)

    def _forward(self, data: tuple[int, ...], time: float) -> bool:
        status = data[0] & 0xF0
        channel = data[0] & 0x0F
        if status == 0xB0 and len(data) >= 2 and data[1] in self.held_back_controls:
            return False
        key = (channel, data[1]) if status in (0x80, 0x90) and len(data) >= 2 else None
        is_off = status == 0x80 or (status == 0x90 and len(data) >= 3 and data[2] == 0)
        if key is not None and is_off and key in self._sounding:
            out_channel = self._sounding[key]  # the note-off follows its note-on's path
        else:
            out_channel = self.routes.get(channel)
            if out_channel is None:
                return False
        message = bytes(((data[0] & 0xF0) | out_channel, *data[1:]))
        if not self._write(message, time):
            self.fallbacks += 1
            if key is not None and is_off and key in self._sounding:
                del self._sounding[key]  # its note-off now goes the normal way
            return False
        self.forwarded += 1
        if key is not None:
            if is_off:
                self._sounding.pop(key, None)
            elif status == 0x90:
                self._sounding[key] = out_channel
        return True

    def _write(self, message: bytes, time: float) -> bool:
        ports = self.ports
        if not getattr(ports, "alive", True):
            return False
        cycle = ports.clock.cycle
        offset = ports.clock.time_to_frame(time) - cycle.frames
        offset = min(max(offset, 0), ports.client.blocksize - 1)
        try:
            ports.outport.write_midi_event(offset, message)
        except Exception:  # an event already written later in this buffer, or the buffer is full
            return False
        return True


def held_back_controls(conductor: Any) -> frozenset[int]:
    """Control changes the conductor may consume instead of passing through (continue's end-call CC)."""
    cc = conductor.preset.continuation.end_call_cc
    return frozenset() if cc is None else frozenset({cc})


def thru_routes(conductor: Any, seen: set[int]) -> dict[int, int]:
    """Input channel -> output channel for every MIDI channel whose track plays its input through
    (mode thru, or echo_input), as the conductor decides it (channel c is track c + 1). Channels in
    `seen` (their track exists in the conductor) use the track's live settings; the others the
    preset's, which is what the conductor gives a track on its first message."""
    routes: dict[int, int] = {}
    for channel in range(16):
        if channel in seen:
            state = conductor.track_state(channel + 1)
            mode, settings = state.mode, state.settings
        else:
            settings = conductor.preset.track(channel + 1)
            mode = settings.mode
        if mode == "thru" or settings.echo_input:
            routes[channel] = settings.out_channel if settings.out_channel is not None else channel
    return routes
