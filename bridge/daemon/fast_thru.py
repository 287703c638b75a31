"""Same-cycle thru: which input a JACK port forwards in the cycle it came in, and as what bytes.

Without it a thru note waits for the conductor thread and then for the next JACK cycle: on average
half a period of added latency, up to a whole one (docs/benchmarks.md). With it the note leaves at
its own frame offset, in the same process callback: no added latency.

How: `JackMidiPorts.set_thru(router.route, on_message)` (musebridge.io.jack_midi) offers every valid
incoming message to `FastThru.route` inside the process callback. For a channel message on a channel
in the routes (input channel -> output channel, swapped whole by the server from the conductor's
track settings) it returns the re-channelled bytes; the port writes them at the message's own frame
offset in that same cycle (or first thing in the next one when the cycle is full) and tracks the
notes they open. Every message still reaches the conductor, marked with what was forwarded, and the
server drops the conductor's identical SendMidi.

Two rules keep the conductor's state and the output in step:
- control changes the conductor may consume (continue's end-call CC) are never forwarded here;
- a note-off follows its note-on's path: it is forwarded on the channel its note-on went out on,
  even when the routes changed in between (the conductor does the same for its thru notes).

The router is pure: no JACK, no clock, no I/O; `route` runs on the JACK thread, `set_routes` on the
conductor's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FastThru:
    """Decides, per incoming message, what the JACK port forwards in the same cycle."""

    def __init__(self) -> None:
        # (routes, held-back controls), swapped whole: the JACK thread reads it without a lock
        self._table: tuple[dict[int, int], frozenset[int]] = ({}, frozenset())
        self._sounding: dict[tuple[int, int], int] = {}  # (in channel, pitch) -> out channel
        self.forwarded = 0

    @property
    def routes(self) -> dict[int, int]:
        return dict(self._table[0])

    @property
    def held_back_controls(self) -> frozenset[int]:
        return self._table[1]

    def set_routes(self, routes: Mapping[int, int], held_back_controls: frozenset[int] = frozenset()) -> None:
        """Thru routes, input channel -> output channel (0-15); control changes in
        `held_back_controls` always take the conductor's path. Replaces the previous routes whole."""
        table = {int(channel): int(out) for channel, out in routes.items()}
        bad = [(c, o) for c, o in table.items() if not (0 <= c < 16 and 0 <= o < 16)]
        if bad:
            raise ValueError(f"thru routes must map channels 0-15 to 0-15, got {bad}")
        self._table = (table, frozenset(held_back_controls))

    def route(self, data: tuple[int, ...]) -> bytes | None:
        """What to forward of the incoming `data` now (JACK process thread), or None: not forwarded.

        The port writes whatever this returns, so the note bookkeeping here is final."""
        if len(data) < 2 or not 0x80 <= data[0] < 0xF0:
            return None
        routes, held_back = self._table
        status, channel = data[0] & 0xF0, data[0] & 0x0F
        if status == 0xB0 and data[1] in held_back:
            return None
        is_note = status in (0x80, 0x90) and len(data) >= 3
        is_off = is_note and (status == 0x80 or data[2] == 0)
        key = (channel, data[1])
        if is_off and key in self._sounding:
            out_channel = self._sounding.pop(key)  # the note-off follows its note-on's path
        else:
            out_channel = routes.get(channel)
            if out_channel is None:
                return None
            if is_note and not is_off:
                self._sounding[key] = out_channel
        self.forwarded += 1
        return bytes((status | out_channel, *data[1:]))


def held_back_controls(conductor: Any) -> frozenset[int]:
    """Control changes the conductor may consume instead of passing through (the CCs of the preset's
    continue section: end call, loop, mutate, temperature, answer length)."""
    return frozenset(conductor.preset.continuation.cc_roles())


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
