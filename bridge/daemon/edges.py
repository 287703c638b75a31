"""Adapters between the server and the other layers: presets + conductor, MIDI ports, OSC server.

Kept apart from server.py so that the wiring reads as wiring, and so that a change in another
layer's API is absorbed here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

MidiCallback = Callable[[tuple[int, ...], float], None]


# -- presets, models and the conductor ----------------------------------------------------------
def load_configured_preset(config: Any) -> Any:
    """The preset of --preset (default: 'default'), with --mode, --tempo and --echo applied."""
    from musebridge.presets import load_preset

    preset = load_preset(config.preset or "default")
    if config.mode:
        preset = preset.with_mode(config.mode)
    if config.tempo is not None:
        preset = dataclasses.replace(preset, tempo=float(config.tempo))
    if getattr(config, "echo", None) is not None:
        preset = preset.with_echo(config.echo == "on")
    return preset


def make_conductor(config: Any, preset: Any, now: float) -> Any:
    """The Conductor for `preset` (clock from --clock unless 'auto' and the preset says otherwise)."""
    from musebridge.core.conductor import Conductor
    from musebridge.presets import load_named_preset

    clock = config.clock if config.clock != "auto" else preset.clock
    # OSC chooses presets by name only (shipped or the user's folder), never by path
    return Conductor(preset, now=now, clock=clock, preset_loader=load_named_preset, tempo=config.tempo)


def modes_in_use(preset: Any) -> list[str]:
    modes = {preset.defaults.mode, *(track.mode for track in preset.tracks.values())}
    return sorted(mode for mode in modes if mode != "thru")


def models_in_use(preset: Any) -> list[str]:
    """Names of the models the preset's tracks use now (built at start, so errors show at once)."""
    return sorted({preset.model_for(mode) for mode in modes_in_use(preset)})


def model_options(preset: Any, name: str) -> Mapping[str, Any]:
    return dict(preset.model_options.get(name, {}))


def describe_preset(preset: Any) -> str:
    tracks = ", ".join(f"track {k}: {v.mode}" for k, v in sorted(preset.tracks.items()))
    modes = f"mode {preset.defaults.mode}" + (f" ({tracks})" if tracks else "")
    bars = preset.defaults.phrase_bars
    return f"{preset.name} ({preset.source}): {modes}, {preset.meter}, {bars}-bar phrases"


def describe_clock(config: Any, preset: Any) -> str:
    clock = config.clock if config.clock != "auto" else preset.clock
    if clock == "auto":
        return (f"auto (internal at {preset.tempo:g} BPM until MIDI clock or OSC transport is heard)")
    if clock == "internal":
        return f"internal at {preset.tempo:g} BPM"
    if clock == "midi":
        return "MIDI clock (waiting for start)"
    return "OSC transport (waiting for /musebridge/transport)"


# -- MIDI -----------------------------------------------------------------------------------------
class PortsOutput:
    """The scheduler's view of io's MidiPorts: send = send_now; send_at only for timed backends."""

    def __init__(self, ports: Any) -> None:
        self.ports = ports
        self.send = ports.send_now
        if getattr(ports, "supports_timed_output", False):
            self.send_at = ports.send_at
        if callable(getattr(ports, "panic", None)):
            self.panic = ports.panic  # releases what the port wrote itself (same-cycle thru)

    @property
    def lookahead_s(self) -> float:
        """How early timed events are handed over (io's output_lead, at least 5 ms)."""
        return max(0.005, float(getattr(self.ports, "output_lead", 0.0) or 0.0))


def open_midi(config: Any, on_message: MidiCallback) -> tuple[Any, list[str]]:
    """Open the MIDI ports of --midi-backend; (ports, lines describing them)."""
    from musebridge.io.midi_ports import create_midi_ports

    ports = create_midi_ports(config.midi_backend, client_name=config.client_name, midi_in=config.midi_in,
                              midi_out=config.midi_out)
    ports.open(on_message)
    if ports.backend == "none":
        return ports, [f"MIDI: none ({getattr(ports, 'reason', 'OSC only')})"]
    if ports.backend == "jack":
        lines = [f"MIDI in: {config.client_name}:in (JACK)", f"MIDI out: {config.client_name}:out (JACK)"]
    else:
        lines = [f"MIDI in: {getattr(ports, 'input_port_name', '?')} ({ports.backend})",
                 f"MIDI out: {getattr(ports, 'output_port_name', '?')} ({ports.backend})"]
    return ports, lines


# -- OSC ------------------------------------------------------------------------------------------
def open_osc(config: Any, on_message: Callable[..., None], on_bad: Callable[..., None],
             clock: Callable[[], float]) -> tuple[Any, str]:
    """Start the OSC server; (server, line describing it). UserError when the port is taken."""
    from musebridge.io.osc_server import OscServer

    server = OscServer(on_message, on_bad, host=config.osc_host, port=config.osc_port,
                       allow=config.osc_allow, clock=clock)
    server.start()
    host, port = server.address
    return server, f"OSC: listening on {host}:{port} (UDP; replies go to the sender)"
