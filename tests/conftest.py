"""Shared fixtures. End-to-end: a private `jackd -d dummy` per test module, JACK MIDI test clients.

    def test_x(jack_server, midi_client):      # jack_server: e2e/jack_harness.JackServer
        probe = midi_client("probe")           # a MidiTestClient on that server, closed afterwards

`jack_server` exports JACK_DEFAULT_SERVER (and JACK_NO_START_SERVER=1) for the module's tests and
their subprocesses (`jack_server.env` is a full environment for subprocess calls); the tests are
skipped with the reason when jackd or JACK-Client is missing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent / "e2e"))

# Property tests draw the same examples on every run (CI stays deterministic); to search for new
# counterexamples, run with HYPOTHESIS_PROFILE=explore and keep what it finds as an @example.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

import jack_harness  # noqa: E402


@pytest.fixture(scope="module")
def jack_server() -> Iterator[jack_harness.JackServer]:
    """A fresh jackd (dummy driver, 48 kHz, 256 frames, realtime) for one test module."""
    reason = jack_harness.jackd_missing_reason()
    if reason:
        pytest.skip(f"JACK end-to-end tests need jackd: {reason}")
    saved = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    server = jack_harness.JackServer.start()
    os.environ["JACK_DEFAULT_SERVER"] = server.name
    os.environ["JACK_NO_START_SERVER"] = "1"
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def midi_client(
    jack_server: jack_harness.JackServer,
) -> Iterator[Callable[[str], jack_harness.MidiTestClient]]:
    """Factory of MidiTestClients on the module's server; every client made is closed afterwards."""
    made: list[jack_harness.MidiTestClient] = []

    def make(name: str = "probe") -> jack_harness.MidiTestClient:
        client = jack_harness.MidiTestClient(name, servername=jack_server.name)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
