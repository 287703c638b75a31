"""The daemon: wires MIDI ports + OSC server + the conductor + the engine + the output scheduler.

    MIDI in callback ─┐ (timestamp + enqueue only)
    OSC server ───────┼──> inbox ──> conductor loop (owns the Conductor; calls tick at next_tick_time)
    engine results ───┘                 │ actions: SendMidi/ScheduleNotes/ClearOutput/TempoChanged
                                        │   -> OutputScheduler; SendOsc -> OSC; SubmitJob -> Engine
Time is time.perf_counter() seconds everywhere (JACK input frames are converted by the io layer).
On JACK, input on thru channels is also written out inside the process callback, in the cycle it
came in (the port's set_thru hook, routed by musebridge.daemon.fast_thru); the conductor still sees it, and
its copy of the send is dropped.

An exception in a handler is logged and counted and answered with /musebridge/error; the loop goes
on. SIGINT/SIGTERM (and any crash of the loop) end in the shutdown path: the conductor's shutdown
actions (OSC out/panic), then every note off on the MIDI output, then engine, OSC and ports close.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from musebridge import __version__, registry
from musebridge.core.actions import (
    Action,
    ClearOutput,
    LogWarning,
    PrepareModel,
    ScheduleNotes,
    SendMidi,
    SendOsc,
    SubmitJob,
    TempoChanged,
)
from musebridge.daemon.engine import Engine, JobResult, ProcessRunner, ThreadRunner
from musebridge.daemon.fast_thru import FastThru, held_back_controls, thru_routes
from musebridge.daemon.scheduler import OutputScheduler
from musebridge.errors import UserError

log = logging.getLogger(__name__)

_STOP = ("stop",)
_IDLE_WAIT_S = 0.5  # longest wait of the conductor loop when nothing is due
_MIDI_CHECK_S = 0.25  # how often the MIDI port's count of dropped malformed input is looked at
_MIDI_WATCH_S = 1.0  # how often the MIDI ports are asked to notice losses and reconnect (poll())


@dataclass(frozen=True)
class ServerConfig:
    """Everything `musebridge serve` can set (see its --help)."""

    preset: str | None = None
    midi_backend: str = "auto"
    midi_in: str | None = None
    midi_out: str | None = None
    client_name: str = "musebridge"
    osc_host: str = "127.0.0.1"
    osc_port: int = 9000
    osc_allow: tuple[str, ...] = ()
    clock: str = "auto"
    tempo: float | None = None
    mode: str | None = None
    echo: str | None = None  # on|off: echo_input of every track (None: the preset's)
    device: str = "auto"
    isolation: str = "auto"
    max_pending_jobs: int = 4
    switch_interval_s: float | None = 0.0005
    fast_thru: bool = True  # JACK: thru input leaves in the cycle it came in (musebridge.daemon.fast_thru)
    extra_models: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerCounters:
    handler_errors: int = 0
    midi_in: int = 0
    osc_in: int = 0
    bad_in: int = 0
    results: int = 0


def _without_forwarded(actions: list[Action], forwarded: bytes) -> list[Action]:
    """`actions` less the conductor's first SendMidi of exactly the `forwarded` bytes: same-cycle
    thru sent them. A send on another channel (the routes changed meanwhile) still goes out."""
    out = list(actions)
    for index, action in enumerate(out):
        if isinstance(action, SendMidi) and bytes(action.data) == forwarded:
            del out[index]
            break
    return out


def _print_line(line: str) -> None:
    """Print a status line; a closed stdout (`serve | head`) must not stop the daemon."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, OSError):
        pass


class Server:
    """The running bridge. `run_forever()` for the CLI; `start()`/`stop()` to run it in a thread."""

    def __init__(self, config: ServerConfig, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config
        self.clock = clock
        self.inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.counters = ServerCounters()
        self.conductor: Any = None
        self.midi: Any = None
        self.osc: Any = None
        self.engine: Engine | None = None
        self.scheduler: OutputScheduler | None = None
        self.models: registry.ModelCache | None = None
        self.preset: Any = None
        self.opened: list[str] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop_requested = threading.Event()
        self._second_signal = 0  # a signal that came during the shutdown (its number)
        self._next_midi_check = 0.0
        self._midi_channels: set[int] = set()
        self.fast_thru: FastThru | None = None
        self._invalid_midi_seen = 0
        self._prepared: set[str] = set()  # models loaded, or loading, in the engine

    # -- opening --------------------------------------------------------------------------------
    def open(self) -> list[str]:
        """Open every edge and build the conductor; returns one line per thing opened."""
        from musebridge.daemon import edges

        config = self.config
        now = self.clock()
        if config.switch_interval_s:
            sys.setswitchinterval(config.switch_interval_s)  # a busy Python thread yields the GIL sooner
        preset = edges.load_configured_preset(config)
        self.preset = preset
        self.conductor = edges.make_conductor(config, preset, now)
        lines = [f"preset: {edges.describe_preset(preset)}"]

        self.models = registry.ModelCache(device=config.device)
        used = edges.models_in_use(preset)
        for name in used:
            registry.entry(name)  # an unknown model name is a UserError now
        self.engine = Engine(self._runner_for, self._on_result, max_pending=config.max_pending_jobs,
                             clock=self.clock, on_fault=self._on_engine_fault)
        try:
            self.engine.prepare(used)  # a missing checkpoint fails now, not on the first bar
            self._prepared.update(used)
        except UserError:
            raise
        except Exception as error:
            raise UserError(f"a model failed to load: {error}") from error
        placed = ", ".join(f"{name} in a {self._isolation(name)}" for name in used) or "none yet"
        lines.append(f"models: {placed} (device: {config.device}; "
                     f"available: {', '.join(registry.names())})")

        self.midi, midi_lines = edges.open_midi(config, self._on_midi)
        if config.fast_thru and callable(getattr(self.midi, "set_thru", None)):
            self.fast_thru = FastThru()
            self._guarded_routes()
            self.midi.set_thru(self.fast_thru.route, self._on_midi_forwarded)
            midi_lines.append("MIDI thru: same-cycle (JACK)")
        lines += midi_lines
        output = edges.PortsOutput(self.midi)
        self.scheduler = OutputScheduler(output, tempo_map=self.conductor.tempo_map, clock=self.clock,
                                         lookahead_s=output.lookahead_s)
        self.scheduler.on_error = lambda error: self._count_error("scheduler", error)
        self.osc, osc_line = edges.open_osc(config, self._on_osc, self._on_bad, self.clock)
        lines.append(osc_line)
        lines.append(f"clock: {edges.describe_clock(config, preset)}")
        self.engine.start()
        self.scheduler.start()
        if callable(getattr(self.midi, "poll", None)):
            threading.Thread(target=self._watch_midi, name="musebridge-midi-watch", daemon=True).start()
        self.opened = lines
        return lines

    def _watch_midi(self) -> None:
        """The MIDI ports' own thread of watching: poll() notices a lost JACK server or named port and
        reconnects when it is back; each change goes to the conductor loop (reported there)."""
        while not self._stop_requested.wait(_MIDI_WATCH_S):
            try:
                changes = self.midi.poll()
            except Exception as error:
                log.warning("watching the MIDI ports failed: %s", error)
                continue
            for state, detail in changes:
                self.inbox.put(("midi_state", "ok" if state == "back" else state, detail, self.clock()))

    def _model_options(self, name: str) -> dict[str, Any]:
        preset = getattr(self.conductor, "preset", None) or self.preset
        return dict(preset.model_options.get(name, {}))

    def _isolation(self, model: str) -> str:
        """Where `model` runs ("thread" or "process"). auto: a child process when the model is
        CPU-bound (neural models are: their generation loops run Python even on a GPU), a thread for
        rule models. Measured: a model holding the GIL in-process shifts JACK output by whole clock
        ticks (docs/benchmarks.md)."""
        if self.config.isolation != "auto":
            return self.config.isolation
        try:
            cpu_bound = registry.entry(model).cpu_bound
        except UserError:
            cpu_bound = False  # an unknown model then fails in its thread, as an error result
        return "process" if cpu_bound else "thread"

    def _runner_for(self, model: str) -> ThreadRunner | ProcessRunner:
        """The runner of `model`'s engine lane (never raises: failures become error results)."""
        if self._isolation(model) == "process":
            return ProcessRunner(device=self.config.device, options_for=self._model_options)
        models = self.models
        assert models is not None
        return ThreadRunner(lambda name: models.get(name, self._model_options(name)))

    # -- edges -> inbox (other threads: timestamp + enqueue only) -------------------------------
    def _on_midi(self, data: tuple[int, ...], when: float) -> None:
        self.inbox.put(("midi", tuple(data), when, None))

    def _on_midi_forwarded(self, data: tuple[int, ...], when: float, forwarded: bytes | None) -> None:
        """Input from the port's same-cycle thru hook, with the bytes it forwarded (or None)."""
        self.inbox.put(("midi", tuple(data), when, forwarded))

    def _on_osc(self, address: str, args: Sequence[Any], sender: tuple[str, int], when: float) -> None:
        self.inbox.put(("osc", address, tuple(args), sender, when))

    def _on_bad(self, address: str, reason: str, sender: tuple[str, int] | None, when: float) -> None:
        self.inbox.put(("bad", address, reason, sender, when))

    def _on_result(self, result: JobResult) -> None:
        self.inbox.put(("result", result))

    def _on_engine_fault(self, model: str, reason: str) -> None:
        """A model process that died while idle (restarted by the engine): counted, and reported as
        /musebridge/error to the clients (address "model")."""
        self.inbox.put(("bad", "model", f"model {model!r}: {reason}", None, self.clock()))

    # -- the conductor loop ---------------------------------------------------------------------
    def run_forever(
        self, *, install_signals: bool = True, announce: Callable[[str], None] | None = None
    ) -> int:
        """Open, print what was opened, run the conductor loop here until a signal.

        Exit code: 0 after a stop by one signal; 128 + N when signal N came again during the
        shutdown (which still completed: every note off, edges closed)."""
        say = announce or _print_line
        previous: dict[int, Any] = {}
        if install_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            try:
                lines = self.open()
            except UserError:
                raise
            except Exception as error:
                raise UserError(f"could not start: {error}") from error
            for line in lines:
                say(line)
            if not self._stop_requested.is_set():  # a Ctrl-C while opening: never "ready" after it
                say(f"musebridge {__version__} ready (Ctrl-C to stop)")
                self.loop()
        finally:
            self.close()
            if not self._stop_requested.is_set():  # an error ended the loop: give the signals back
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
            elif install_signals:
                # Every note is off and the edges are closed: a signal from now on is ignored. Keeping
                # _on_signal is not enough, since the interpreter's finalization puts SIG_DFL back for
                # every Python-level handler (but leaves SIG_IGN), and a Ctrl-C landing there was a
                # death by SIGINT (exit -2, CI, 30 ms between two signals).
                for signum in previous:
                    signal.signal(signum, signal.SIG_IGN)
        say("musebridge stopped: all notes off")
        return 128 + self._second_signal if self._second_signal else 0

    def start(self) -> list[str]:
        """Open and run the conductor loop in a thread (tests, bench). Returns the opened lines."""
        lines = self.open()
        self._thread = threading.Thread(
            target=self._loop_then_close, name="musebridge-conductor", daemon=True
        )
        self._thread.start()
        return lines

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for the shutdown path."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def request_stop(self) -> None:
        self._stop_requested.set()
        self.inbox.put(_STOP)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """SIGINT/SIGTERM: stop. A second signal during the shutdown (Ctrl-C pressed twice, a
        process manager) is noted, never obeyed at once: raising here would cut the shutdown path
        short (skipped note-offs; a JACK client left active while the interpreter exits crashed it).
        The shutdown is bounded (a few seconds at most); the exit code then says a second signal
        came (128 + its number)."""
        if self._stop_requested.is_set():
            self._second_signal = signum
            log.warning("signal %d again: still stopping (every note off first)", signum)
            return
        log.info("signal %d: stopping", signum)
        self.request_stop()

    def _loop_then_close(self) -> None:
        try:
            self.loop()
        finally:
            self.close()

    def loop(self) -> None:
        """Take inputs until stop; tick the conductor when it asks."""
        conductor = self.conductor
        while True:
            now = self.clock()
            try:
                wake = conductor.next_tick_time(now)
            except Exception as error:
                self._count_error("next_tick_time", error)
                wake = now + _IDLE_WAIT_S
            timeout = min(max(0.0, wake - now), _IDLE_WAIT_S) if wake is not None else _IDLE_WAIT_S
            try:
                item = self.inbox.get(timeout=timeout) if timeout > 0 else self.inbox.get_nowait()
            except queue.Empty:
                item = None
            if item is _STOP or self._stop_requested.is_set():
                return
            if item is not None:
                self._handle(item)
            now = self.clock()
            if wake is not None and now >= wake:
                self._guarded("tick", lambda at=now: conductor.tick(at), None)
            if now >= self._next_midi_check:
                self._report_invalid_midi(now)

    def _report_invalid_midi(self, now: float) -> None:
        """MIDI the port dropped as malformed (it never reaches the conductor) is reported like any
        refused input: counted, and /musebridge/error "midi" to the registered clients."""
        self._next_midi_check = now + _MIDI_CHECK_S
        stats = getattr(self.midi, "stats", None)
        if not callable(stats):
            return
        try:
            invalid = int(stats().get("invalid_in", 0))
        except Exception:
            return
        if invalid > self._invalid_midi_seen:
            count = invalid - self._invalid_midi_seen
            self._invalid_midi_seen = invalid
            reason = f"{count} malformed MIDI message{'s' if count > 1 else ''} dropped"
            self._guarded("handle_bad_message",
                          lambda: self.conductor.handle_bad_message("midi", reason, None, now), None)

    def _handle(self, item: tuple[Any, ...]) -> None:
        conductor = self.conductor
        kind = item[0]
        if kind == "midi":
            _, data, when, forwarded = item
            self.counters.midi_in += 1
            if data and 0x80 <= data[0] < 0xF0:
                self._midi_channels.add(data[0] & 0x0F)

            def handle() -> list[Action]:
                actions = conductor.handle_midi(data, when)
                return _without_forwarded(actions, forwarded) if forwarded is not None else actions

            self._guarded("handle_midi", handle, None, midi=None if forwarded is not None else data)
        elif kind == "osc":
            _, address, args, sender, when = item
            self.counters.osc_in += 1
            if args and isinstance(args[0], int) and 1 <= args[0] <= 16:
                self._midi_channels.add(args[0] - 1)  # the conductor makes this track now
            self._guarded("handle_osc", lambda: conductor.handle_osc(address, args, sender, when),
                          (address, sender))
        elif kind == "bad":
            _, address, reason, sender, when = item
            self.counters.bad_in += 1
            self._guarded("handle_bad_message",
                          lambda: conductor.handle_bad_message(address, reason, sender, when),
                          (address, sender))
        elif kind == "midi_state":
            _, state, detail, when = item
            (log.warning if state == "lost" else log.info)("MIDI ports %s: %s", state, detail)
            self._guarded("midi_ports", lambda: conductor.midi_ports(state, detail), None)
        elif kind == "result":
            result: JobResult = item[1]
            self.counters.results += 1
            self._guarded(
                "handle_result",
                lambda: conductor.handle_result(result.job.job_id, result.phrase, result.error,
                                                result.finished_at, result.latency_s),
                None,
            )
        if self.fast_thru is not None and kind in ("midi", "osc"):
            self._guarded_routes()

    def _guarded_routes(self) -> None:
        """Tell the same-cycle thru which channels the conductor now plays through."""
        try:
            self.fast_thru.set_routes(thru_routes(self.conductor, self._midi_channels),
                                      held_back_controls(self.conductor))
        except Exception as error:
            self.fast_thru.set_routes({})
            self._count_error("thru routes", error)

    def _guarded(
        self,
        what: str,
        call: Callable[[], list[Action]],
        osc_origin: tuple[str, tuple[str, int] | None] | None,
        midi: tuple[int, ...] | None = None,
    ) -> None:
        """Run one conductor call and perform its actions; a failure is logged, counted, answered."""
        try:
            actions = call()
        except Exception as error:
            self._count_error(what, error)
            if midi is not None and self.scheduler is not None:
                self.scheduler.release_if_sounding(midi)  # a note-off must still get through
            if osc_origin is not None and self.osc is not None:
                address, sender = osc_origin
                self._send_osc(SendOsc("/musebridge/error", (f"internal error: {error}"[:200], address),
                                       sender))
            return
        if what == "handle_osc" and osc_origin is not None:  # refused by the conductor (unknown genre,
            address, sender = osc_origin  # preset, track...): logged as the OSC edge logs malformed ones
            for action in actions or ():
                if isinstance(action, SendOsc) and action.address == "/musebridge/error" and action.args:
                    where = f"{sender[0]}:{sender[1]}" if sender else "?"
                    log.info("OSC: refused %s from %s: %s", address, where, action.args[0])
        self._perform(actions)

    def _count_error(self, what: str, error: BaseException) -> None:
        self.counters.handler_errors += 1
        log.error("%s failed: %s", what, error, exc_info=error)
        note_failure = getattr(self.conductor, "note_failure", None)
        if callable(note_failure):
            note_failure()  # /musebridge/status errors counts every failure

    # -- actions -> edges -----------------------------------------------------------------------
    def _perform(self, actions: Sequence[Action]) -> None:
        jobs = [action for action in actions or () if isinstance(action, SubmitJob)]
        for action in actions or ():
            if isinstance(action, SubmitJob):
                continue
            try:
                self._perform_one(action)
            except Exception as error:
                self._count_error(f"performing {type(action).__name__}", error)
        if jobs:  # together: the jobs of one bar line meet in one batch per model
            try:
                self._submit_jobs(jobs)
            except Exception as error:
                self._count_error("performing SubmitJob", error)

    def _submit_jobs(self, actions: Sequence[SubmitJob]) -> None:
        assert self.scheduler is not None and self.engine is not None
        tempo = self.scheduler.tempo_map
        self.engine.submit_many([
            (a.job, tempo.time_at(a.job.deadline_beat) if tempo.playing else None) for a in actions
        ])

    def _perform_one(self, action: Action) -> None:
        scheduler = self.scheduler
        assert scheduler is not None and self.engine is not None
        if isinstance(action, SendMidi):
            scheduler.send_now(action.data)
        elif isinstance(action, (ScheduleNotes, ClearOutput, TempoChanged)):
            scheduler.apply(action)
        elif isinstance(action, SendOsc):
            self._send_osc(action)
        elif isinstance(action, SubmitJob):
            self._submit_jobs([action])
        elif isinstance(action, PrepareModel):
            self._prepare_in_background(action.model)
        elif isinstance(action, LogWarning):
            log.warning("%s", action.text)
        else:
            raise TypeError(f"unknown action {action!r}")

    def _prepare_in_background(self, name: str) -> None:
        """Load `name` in its lane now (a mode switched to it), in a thread of its own: the load waits
        on the model's child process (or, thread-isolated, builds it) while the daemon goes on. A
        model that fails to load is logged here; its jobs then report the error as usual."""
        if name in self._prepared:
            return
        self._prepared.add(name)
        engine = self.engine
        assert engine is not None

        def load() -> None:
            try:
                engine.prepare([name])
                log.info("model %s loaded", name)
            except Exception as error:  # reported again by its first job
                self._prepared.discard(name)
                log.warning("model %s could not be loaded: %s", name, error)

        threading.Thread(target=load, name=f"musebridge-load-{name}", daemon=True).start()

    def _send_osc(self, action: SendOsc) -> None:
        if self.osc is None:
            return
        targets = [action.target] if action.target is not None else list(self.conductor.clients)
        if not targets:
            return
        try:
            self.osc.send_many(action.address, action.args, targets)
        except Exception as error:  # a bad message or a client gone away must not stop the daemon
            log.warning("OSC send of %s to %s failed: %s", action.address, targets, error)

    # -- shutdown -------------------------------------------------------------------------------
    def close(self) -> None:
        """The shutdown path (idempotent): conductor shutdown actions, all notes off, close edges."""
        if self._closed:
            return
        self._closed = True
        now = self.clock()
        if self.conductor is not None and self.scheduler is not None:  # fully opened
            try:
                self._perform(self.conductor.shutdown(now))
            except Exception as error:
                self._count_error("shutdown", error)
        if self.scheduler is not None:
            self.scheduler.stop()  # stops the thread and closes every note
            # no wait for the handed-over output here: the ports' close() drops what is not yet
            # written, releases every note it wrote (thru included) and lets that reach the receivers
        if self.engine is not None:
            self.engine.stop(timeout=1.0)
        for edge in (self.osc, self.midi):
            if edge is not None:
                try:
                    edge.stop() if edge is self.osc else edge.close()
                except Exception as error:
                    log.warning("closing %s failed: %s", type(edge).__name__, error)
