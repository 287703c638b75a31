"""The JACK server going away under the daemon's MIDI ports: logged, survived, no hang.

A module of its own so that its private server never runs beside another module's (jackd has a
small limit on servers alive at once).
"""

from __future__ import annotations

import threading
import time

import jack_harness
import pytest

from musebridge.io.jack_midi import JackMidiPorts

pytestmark = pytest.mark.e2e


def test_server_shutdown_is_logged_and_survived(caplog):
    reason = jack_harness.jackd_missing_reason()
    if reason:
        pytest.skip(f"JACK end-to-end tests need jackd: {reason}")
    server = jack_harness.JackServer.start()
    midi = JackMidiPorts(servername=server.name)
    try:
        midi.open(lambda data, when: None)
        with caplog.at_level("ERROR", logger="musebridge.midi.jack"):
            server.stop()
            deadline = time.monotonic() + 5
            while midi.alive and time.monotonic() < deadline:
                time.sleep(0.01)
        assert not midi.alive
        assert any("JACK server shut down" in r.getMessage() for r in caplog.records)
        midi.send_now((0x90, 60, 1))  # counted, not raised
        assert midi.stats()["dropped_out"] >= 1
        closer = threading.Thread(target=midi.close, daemon=True)
        closer.start()
        closer.join(timeout=5)
        assert not closer.is_alive(), "close() hung after the server went away"
    finally:
        server.stop()
