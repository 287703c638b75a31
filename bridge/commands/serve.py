"""`musebridge serve`: the realtime daemon (MIDI ports, OSC server, clock, models)."""

from __future__ import annotations

import argparse
import logging

from musebridge.commands.arguments import bounded, port, tempo_bpm
from musebridge.core.model_protocol import MODES
from musebridge.io.midi_ports import DEFAULT_CLIENT_NAME

MIDI_BACKENDS = ("auto", "alsa", "coremidi", "jack", "winmm", "none")
CLOCKS = ("auto", "internal", "midi", "osc")
DEVICES = ("auto", "cpu", "cuda", "mps")
LOG_LEVELS = ("debug", "info", "warning", "error")
ISOLATIONS = ("auto", "thread", "process")


_switch_interval = bounded(float, 0.05, 100.0, "switch interval", " ms")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the realtime bridge daemon (virtual MIDI ports + OSC)",
        description="Run the bridge: listen on a virtual MIDI port and on OSC, follow the DAW's clock, "
        "buffer what is played into bars and answer with the model's bars on time. "
        "Stop with Ctrl-C (all notes off).",
        epilog="example: musebridge serve --preset transpose --midi-backend jack --osc-port 9000",
    )
    parser.add_argument("--preset", metavar="NAME|PATH", default=None,
                        help="preset name (shipped) or path to a YAML preset (default: the default preset)")
    parser.add_argument("--midi-backend", choices=MIDI_BACKENDS, default="auto",
                        help="MIDI backend; 'auto' tries the platform's, 'none' is OSC-only (default: auto)")
    parser.add_argument("--midi-in", metavar="NAME", default=None,
                        help="connect the input to this existing port instead of only opening a virtual one")
    parser.add_argument("--midi-out", metavar="NAME", default=None,
                        help="connect the output to this existing port instead of only opening a virtual one")
    parser.add_argument("--midi-name", metavar="NAME", default=DEFAULT_CLIENT_NAME,
                        help="MIDI client name, so that two daemons can share one JACK server or MIDI "
                        "system (default: %(default)s)")
    parser.add_argument("--osc-host", default="127.0.0.1", help="OSC listen address (default: 127.0.0.1)")
    parser.add_argument("--osc-port", type=port, default=9000, help="OSC listen UDP port (default: 9000)")
    parser.add_argument("--osc-allow", metavar="ADDR", action="append", default=[],
                        help="with a non-loopback --osc-host, also accept OSC from this address or CIDR "
                        "network (repeatable; loopback is always accepted)")
    parser.add_argument("--clock", choices=CLOCKS, default="auto",
                        help="who leads time: MIDI clock, OSC transport, the internal clock, or auto "
                        "(the first external clock heard, else internal) "
                        "(default: the preset's, normally auto)")
    parser.add_argument("--tempo", type=tempo_bpm, default=None, metavar="BPM",
                        help="tempo of the internal clock, 20..400 (default: the preset's)")
    parser.add_argument("--mode", choices=[m for m in MODES if m != "sample"], default=None,
                        help="mode of every track (default: the preset's)")
    parser.add_argument("--echo", choices=("on", "off"), default=None,
                        help="on: what is played into a track in a model mode is also played out, so a "
                        "player routed through the MIDI ports hears themself; off: answers only "
                        "(default: the preset's echo_input, normally on; /musebridge/echo per track)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="torch device of neural models; auto = cuda, then mps, then cpu (default: auto)")
    parser.add_argument("--isolation", choices=ISOLATIONS, default="auto",
                        help="where models run: a worker thread, a child process per model, or auto "
                        "(processes when a model is CPU-bound, as neural models are; threads for rule "
                        "models; see docs/benchmarks.md) (default: auto)")
    parser.add_argument("--switch-interval-ms", type=_switch_interval, default=0.5, metavar="MS",
                        help="Python's GIL switch interval while serving: how long a busy model thread may "
                        "hold the GIL before the realtime threads get it (default: 0.5; Python's own: 5)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="log level (default: info)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the server from the options and run it until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from musebridge.daemon.server import Server, ServerConfig

    config = ServerConfig(
        preset=args.preset,
        midi_backend=args.midi_backend,
        midi_in=args.midi_in,
        midi_out=args.midi_out,
        client_name=args.midi_name,
        osc_host=args.osc_host,
        osc_port=args.osc_port,
        osc_allow=tuple(args.osc_allow),
        clock=args.clock,
        tempo=args.tempo,
        mode=args.mode,
        echo=args.echo,
        device=args.device,
        isolation=args.isolation,
        switch_interval_s=args.switch_interval_ms / 1000.0,
    )
    server = Server(config)
    return server.run_forever()
