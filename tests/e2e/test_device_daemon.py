"""End to end: the device JS (node, Max stand-in) talks to a real `musebridge serve` over real UDP.

Live's song is simulated by the harness (tests/device_stub/run_live.js): song time runs in real time
at 120 BPM, a phrase is played into the device in bar 2, and the daemon (preset `transpose`: each bar
comes back an octave up on the next bar) answers over OSC. The device must play the answer on the
beats of the song, not when it arrives.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "device_stub" / "run_live.js"
SPEC = json.loads((ROOT / "bridge" / "osc_spec.json").read_text())
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NODE is None, reason="node is not installed (the device JS runs under node)"),
]

# pitch, velocity, beat, beats: the last note is held over the bar line (beat 8), the usual last note
# of a phrase; it must be in the answer, clipped at the phrase end.
PLAYED = [[60, 100, 4.0, 1.0], [64, 90, 5.0, 1.0], [67, 120, 7.0, 2.0]]
OSC_MARGIN_MS = 10.0  # docs/osc.md, "Answers over OSC"


def free_udp_port_pair() -> int:
    """A port P with P, P + 1 and P + 2 free (the daemon listens on P, devices on P + 1 + track)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65000:
            continue
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c,
            ):
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
                c.bind(("127.0.0.1", port + 2))
        except OSError:
            continue
        return port
    raise RuntimeError("no free UDP port pair")


@pytest.fixture()
def daemon() -> Any:
    port = free_udp_port_pair()
    command = [
        sys.executable,
        "-m",
        "musebridge",
        "serve",
        "--preset",
        "transpose",
        "--midi-backend",
        "none",
        "--osc-port",
        str(port),
        "--clock",
        "osc",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "ready" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(60):
            pytest.fail("musebridge serve did not get ready:\n" + "".join(lines))
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def run_harness(scenario: dict[str, Any]) -> dict[str, Any]:
    """Run the device script under node with `scenario` (JSON on stdin); its JSON report."""
    done = subprocess.run(
        [NODE, str(HARNESS)],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"harness exit {done.returncode}: {done.stderr}\n{done.stdout[-2000:]}"
    return json.loads(done.stdout)


def run_device(port: int) -> dict[str, Any]:
    scenario = {
        "osc_port": port,
        "tempo": 120.0,
        "params": [["osc_port", port], ["mode", 1], ["bars", 1]],
        "notes": PLAYED,
        "stop_beat": 12.5,
        "connect_timeout_s": 15,
    }
    return run_harness(scenario)


def test_notes_in_answer_out_on_the_song_beats(daemon: int) -> None:
    result = run_device(daemon)
    assert result["connected_after_s"] is not None

    played = [(address, args) for _beat, address, args in result["outbound"]
              if address in ("/musebridge/note_on", "/musebridge/note_off")]
    assert [(a, args[1]) for a, args in played] == [
        ("/musebridge/note_on", 60), ("/musebridge/note_off", 60), ("/musebridge/note_on", 64),
        ("/musebridge/note_off", 64), ("/musebridge/note_on", 67), ("/musebridge/note_off", 67),
    ]
    ons = [args for a, args in played if a == "/musebridge/note_on"]
    for (_track, _pitch, velocity, beat), (_p, played_velocity, played_beat, _length) in zip(
        ons, PLAYED, strict=True
    ):
        assert velocity == played_velocity and beat == pytest.approx(played_beat, abs=0.1)

    answers = [(beat, args) for beat, address, args in result["inbound"] if address == "/musebridge/out/note"]
    assert [(args[1], args[2], args[3], args[4]) for _b, args in answers] == [
        (72, 100, 8.0, 1.0),
        (76, 90, 9.0, 1.0),
        (79, 120, 11.0, 1.0),  # held from 7 to 9: in the phrase, clipped at its end (beat 8)
    ]
    # The early-send margin: how long before the answer's first beat its notes reached the device.
    first_beat = min(args[3] for _b, args in answers)
    margin_ms = (first_beat - max(arrived for arrived, _args in answers)) * 60_000.0 / 120.0
    print(f"answer reached the device {margin_ms:.1f} ms before its first beat (120 BPM)")
    assert margin_ms >= OSC_MARGIN_MS
    note_ons = {pitch: beat for beat, pitch, velocity in result["midi"] if velocity > 0}
    note_offs = {pitch: beat for beat, pitch, velocity in result["midi"] if velocity == 0}
    lags = []
    for arrived, (_track, pitch, _velocity, beat, duration) in answers:
        assert arrived < beat, "the answer must arrive ahead of its beat for this test to mean anything"
        assert beat <= note_ons[pitch] < beat + 0.5, f"{pitch} played at {note_ons[pitch]}, due at {beat}"
        assert beat + duration <= note_offs[pitch] < beat + duration + 0.5
        lags.append(note_ons[pitch] - beat)
    print(f"device playback lag after the due beat (beats at 120 BPM): {[round(lag, 4) for lag in lags]}")

    ons = sorted(p for _b, p, v in result["midi"] if v > 0)
    offs = sorted(p for _b, p, v in result["midi"] if v == 0)
    assert ons == offs, "every note the device started must end"

    statuses = [args for _beat, address, args in result["inbound"] if address == "/musebridge/status"]
    assert statuses and statuses[-1][9] == 0, "the daemon refused some of the device's messages"
    assert not [a for _b, address, a in result["inbound"] if address == "/musebridge/error"]
    assert not [p for p in result["posts"] if "not sent" in p or "wrong argument" in p or "unknown" in p]


def test_clip_mode_round_trip_writes_the_answer_into_the_next_empty_slot(daemon: int) -> None:
    riff = [
        {"note_id": 1, "pitch": 60, "start_time": 0.0, "duration": 1.0, "velocity": 101, "mute": 0},
        {"note_id": 2, "pitch": 63, "start_time": 1.5, "duration": 0.5, "velocity": 33, "mute": 0},
        {"note_id": 3, "pitch": 67, "start_time": 3.0, "duration": 1.0, "velocity": 77, "mute": 0},
    ]
    live = {
        "tracks": [{"clip_slots": [{"length": 4.0, "is_midi_clip": 1, "name": "riff", "notes": riff}, None]}],
        "detailClip": [0, 0],
    }
    scenario = {
        "osc_port": daemon,
        "tempo": 120.0,
        "params": [["osc_port", daemon], ["mode", 1], ["bars", 1]],
        "play": False,
        "live": live,
        "after_connect": [["to_clip", [1]]],
        "until": "/musebridge/out/clip",
        "timeout_s": 20,
        "connect_timeout_s": 15,
    }
    result = run_harness(scenario)
    written = result["tracks"][0]["clip_slots"][1]
    assert written is not None and written["length"] == 4.0
    assert [(n["pitch"], n["start_time"], n["duration"], n["velocity"]) for n in written["notes"]] == [
        (72, 0.0, 1.0, 101),
        (75, 1.5, 0.5, 33),
        (79, 3.0, 1.0, 77),
    ]
    assert result["tracks"][0]["clip_slots"][0]["notes"] == riff  # the source clip is left alone


def test_loop_toggle_reaches_the_daemon_and_its_feedback_moves_the_toggle(daemon: int) -> None:
    """Continue mode: the device's Loop toggle switches the daemon's loop; the daemon's
    /musebridge/loop feedback sets the toggle (without being sent back); Mutate with no answer yet
    is refused by the daemon and the refusal shows on the status line."""
    scenario = {
        "osc_port": daemon,
        "tempo": 120.0,
        "params": [["osc_port", daemon], ["mode", 2]],
        "play": False,
        "after_connect": [["loop", [1]], ["mutate", ["bang"]]],
        "until": "/musebridge/error",
        "timeout_s": 20,
        "connect_timeout_s": 15,
    }
    result = run_harness(scenario)
    outbound = [args for _beat, address, args in result["outbound"] if address == "/musebridge/loop"]
    # off when the Mode parameter and the connect send the settings, then on once: no echo of the feedback
    assert outbound[-1] == [0, 1] and outbound[:-1] and all(args == [0, 0] for args in outbound[:-1])
    feedback = [args for _beat, address, args in result["inbound"] if address == "/musebridge/loop"]
    assert feedback == [[0, 1]]
    assert [args for _beat, outlet, args in result["ui"] if outlet == 4] == [["set", 1]]
    errors = [args for _beat, address, args in result["inbound"] if address == "/musebridge/error"]
    assert errors == [["track 0 has no answer to mutate yet", "/musebridge/mutate"]]
    status_lines = [args[1] for _beat, outlet, args in result["ui"] if outlet == 3]
    assert "error: track 0 has no answer to mutate yet" in status_lines[-1]
    assert not [p for p in result["posts"] if "not sent" in p or "wrong argument" in p or "unknown" in p]


def test_two_device_instances_share_one_daemon_each_answered_on_its_own_track(
    daemon: int, tmp_path: Path
) -> None:
    # Two instances in one set: Track 0 and Track 1, the same OSC port, one song (same start).
    start_at_ms = int(time.time() * 1000) + 1500
    phrases = {
        0: PLAYED,
        1: [[pitch - 12, velocity, beat, length] for pitch, velocity, beat, length in PLAYED],
    }
    runs = {}
    for track, phrase in phrases.items():
        scenario = {
            "osc_port": daemon,
            "tempo": 120.0,
            "params": [["osc_port", daemon], ["track", track], ["mode", 1], ["bars", 1]],
            "notes": phrase,
            "stop_beat": 12.5,
            "connect_timeout_s": 15,
            "start_at_ms": start_at_ms,
        }
        path = tmp_path / f"track{track}.json"
        path.write_text(json.dumps(scenario))
        with path.open() as stdin:
            runs[track] = subprocess.Popen(
                [NODE, str(HARNESS)], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
    results = {}
    for track, process in runs.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"track {track}: harness exit {process.returncode}: {err}"
        results[track] = json.loads(out)

    for track, result in results.items():
        hello = [args for _b, address, args in result["outbound"] if address == "/musebridge/hello"]
        assert hello and hello[0] == [daemon + 1 + track], "each instance listens on its own port"
        sent = [args for _b, address, args in result["outbound"] if address == "/musebridge/note_on"]
        assert {args[0] for args in sent} == {track}
        expected = sorted(pitch + 12 for pitch, *_rest in phrases[track])
        played = sorted(pitch for _beat, pitch, velocity in result["midi"] if velocity > 0)
        assert played == expected, f"track {track} played {played}, its answer is {expected}"
        offs = sorted(pitch for _beat, pitch, velocity in result["midi"] if velocity == 0)
        assert offs == played, "every note the device started must end"
        assert not [a for _b, address, a in result["inbound"] if address == "/musebridge/error"]
