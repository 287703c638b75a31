"""The device JavaScript run under node with a stand-in for Max's globals (tests/device_stub)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "device_stub" / "run_steps.js"
SPEC = json.loads((ROOT / "bridge" / "osc_spec.json").read_text())
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (the device JS runs under node)")


def run(steps: list[dict[str, Any]], live: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = json.dumps({"steps": steps, "live": live or {}})
    done = subprocess.run(
        [NODE, str(RUNNER)], input=payload, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def send(selector: str, *args: Any) -> dict[str, Any]:
    return {"op": "send", "selector": selector, "args": list(args)}


def song(**properties: Any) -> dict[str, Any]:
    return {"op": "song", **properties}


CLOCK = {"op": "clock"}
POLL = {"op": "poll"}
CONNECT = [send("init"), send("/musebridge/welcome", "0.1.0")]


def osc(result: dict[str, Any], address: str | None = None) -> list[list[Any]]:
    """OSC messages the device sent (outlet 0), optionally one address only."""
    sent = [e["args"] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 0]
    sent = [m for m in sent if str(m[0]).startswith("/")]
    return [m for m in sent if address is None or m[0] == address]


def midi(result: dict[str, Any]) -> list[tuple[float, int, int]]:
    """(song beat, pitch, velocity) of every note message sent to midiformat."""
    return [(e["beat"], *e["args"]) for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 1]


def posts(result: dict[str, Any]) -> list[str]:
    return [e["text"] for e in result["log"] if e["kind"] == "post"]


def check_against_spec(message: list[Any]) -> None:
    address, args = message[0], message[1:]
    entry = SPEC["inbound"][address]
    fixed, repeat = entry["args"], entry.get("repeat", [])
    assert len(args) >= len(fixed), message
    kinds = [kind for _name, kind in fixed]
    if repeat:
        assert (len(args) - len(fixed)) % len(repeat) == 0, message
        kinds += [kind for _name, kind in repeat] * ((len(args) - len(fixed)) // len(repeat))
    assert len(kinds) == len(args), message
    for kind, value in zip(kinds, args, strict=True):
        if kind == "s":
            assert isinstance(value, str), message
        elif kind == "i":
            assert isinstance(value, int) or float(value).is_integer(), message
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool), message


def check_all_sent(result: dict[str, Any]) -> None:
    for message in osc(result):
        check_against_spec(message)
    assert not [p for p in posts(result) if "not sent" in p or "wrong argument" in p]


def test_played_notes_go_as_note_on_and_note_off_in_song_beats() -> None:
    result = run(
        [
            *CONNECT,
            song(is_playing=1, current_song_time=8.0),
            CLOCK,
            send("note_in", 60, 100),
            song(current_song_time=8.5),
            send("note_in", 64, 90),
            song(current_song_time=9.25),
            send("note_in", 60, 0),
            song(current_song_time=10.0),
            send("note_in", 64, 0),
        ]
    )
    played = [m for m in osc(result) if m[0] in ("/musebridge/note_on", "/musebridge/note_off")]
    assert played == [
        ["/musebridge/note_on", 0, 60, 100, 8],  # sent when struck: a held note is in its phrase
        ["/musebridge/note_on", 0, 64, 90, 8.5],
        ["/musebridge/note_off", 0, 60, 9.25],
        ["/musebridge/note_off", 0, 64, 10],
    ]
    assert not osc(result, "/musebridge/note")
    check_all_sent(result)


def test_notes_held_at_stop_get_their_note_off_and_a_repeated_key_pairs_in_order() -> None:
    result = run(
        [
            *CONNECT,
            song(is_playing=1, current_song_time=0.0),
            CLOCK,
            send("note_in", 60, 100),
            song(current_song_time=0.5),
            send("note_in", 60, 80),  # the same key again (a second source on the track)
            song(current_song_time=1.0),
            send("note_in", 60, 0),
            song(is_playing=0, current_song_time=2.0),
            CLOCK,
        ]
    )
    played = [m for m in osc(result) if m[0] in ("/musebridge/note_on", "/musebridge/note_off")]
    assert played == [
        ["/musebridge/note_on", 0, 60, 100, 0],
        ["/musebridge/note_on", 0, 60, 80, 0.5],
        ["/musebridge/note_off", 0, 60, 1],
        ["/musebridge/note_off", 0, 60, 2],  # still held at stop
    ]
    check_all_sent(result)


def test_transport_on_start_on_change_and_at_each_bar() -> None:
    steps: list[dict[str, Any]] = [*CONNECT, song(is_playing=1, current_song_time=0.0), CLOCK]
    for beat in (1.0, 2.0, 3.99, 4.0, 4.5, 5.0):
        steps += [song(current_song_time=beat), CLOCK]
    steps += [song(tempo=100.0, current_song_time=5.5), CLOCK, song(current_song_time=8.01), CLOCK]
    steps += [song(signature_numerator=3, current_song_time=8.5), CLOCK]
    steps += [song(is_playing=0, current_song_time=9.0), CLOCK]
    result = run(steps)
    assert [m[1:] for m in osc(result, "/musebridge/transport")] == [
        [120, 4, 4, 0, 1],
        [120, 4, 4, 4, 1],
        [100, 4, 4, 5.5, 1],
        [100, 4, 4, 8.01, 1],
        [100, 3, 4, 8.5, 1],
        [100, 3, 4, 9, 0],
    ]
    check_all_sent(result)


def test_notes_play_at_their_beat_not_at_arrival() -> None:
    steps: list[dict[str, Any]] = [*CONNECT, song(is_playing=1, current_song_time=0.0), CLOCK]
    steps += [
        send("/musebridge/out/note", 0, 60, 100, 2.0, 1.0),
        send("/musebridge/out/note", 0, 62, 80, 1.0, 0.5),
    ]
    steps += [send("/musebridge/out/note", 1, 70, 80, 1.0, 0.5)]  # another track's note: not ours
    for beat in (0.5, 0.99, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5):
        steps += [song(current_song_time=beat), CLOCK]
    assert midi(run(steps)) == [(1.0, 62, 80), (1.5, 62, 0), (2.0, 60, 100), (3.0, 60, 0)]


def test_note_offs_come_before_note_ons_on_the_same_beat_and_retrigger_is_clean() -> None:
    steps: list[dict[str, Any]] = [*CONNECT, song(is_playing=1, current_song_time=0.0), CLOCK]
    steps += [
        send("/musebridge/out/note", 0, 60, 100, 1.0, 1.0),
        send("/musebridge/out/note", 0, 60, 90, 2.0, 1.0),
    ]
    steps += [
        send("/musebridge/out/note", 0, 64, 70, 1.0, 3.0),
        send("/musebridge/out/note", 0, 64, 60, 2.0, 0.5),
    ]
    for beat in (1.0, 2.0, 2.5, 3.0, 4.0):
        steps += [song(current_song_time=beat), CLOCK]
    assert midi(run(steps)) == [
        (1.0, 60, 100),
        (1.0, 64, 70),
        (2.0, 60, 0),
        (2.0, 60, 90),
        (2.0, 64, 0),  # the long 64 is cut so that the new 64 can start
        (2.0, 64, 60),
        (2.5, 64, 0),
        (3.0, 60, 0),
    ]


def test_late_notes_are_skipped_not_played_out_of_time() -> None:
    steps: list[dict[str, Any]] = [*CONNECT, song(is_playing=1, current_song_time=4.0), CLOCK]
    steps += [
        send("/musebridge/out/note", 0, 60, 100, 1.0, 1.0),
        send("/musebridge/out/note", 0, 62, 100, 3.5, 1.0),
    ]
    steps += [song(current_song_time=4.1), CLOCK, song(current_song_time=4.5), CLOCK]
    assert midi(run(steps)) == [(4.1, 62, 100), (4.5, 62, 0)]


def test_clear_drops_the_replaced_phrase_and_releases_its_notes() -> None:
    steps: list[dict[str, Any]] = [*CONNECT, song(is_playing=1, current_song_time=0.0), CLOCK]
    for pitch, beat in ((60, 0.5), (62, 4.0), (64, 5.0)):
        steps.append(send("/musebridge/out/note", 0, pitch, 100, beat, 2.0))
    for beat in (0.5, 2.5, 4.25):
        steps += [song(current_song_time=beat), CLOCK]
    steps += [
        send("/musebridge/out/clear", 0, 4.0),
        song(current_song_time=6.0),
        CLOCK,
        song(current_song_time=9.0),
        CLOCK,
    ]
    assert midi(run(steps)) == [(0.5, 60, 100), (2.5, 60, 0), (4.25, 62, 100), (4.25, 62, 0)]


def test_every_started_note_ends_on_stop_jump_panic_and_removal() -> None:
    start = [
        *CONNECT,
        song(is_playing=1, current_song_time=0.0),
        CLOCK,
        send("/musebridge/out/note", 0, 60, 100, 0.0, 8.0),
        send("/musebridge/out/note", 0, 67, 100, 6.0, 1.0),
        song(current_song_time=0.5),
        CLOCK,
    ]
    stopped = run(
        [
            *start,
            song(is_playing=0, current_song_time=1.0),
            CLOCK,
            song(is_playing=1, current_song_time=6.5),
            CLOCK,
        ]
    )
    assert midi(stopped) == [(0.5, 60, 100), (1.0, 60, 0)]  # the queue went with the stop
    jumped = run([*start, song(current_song_time=0.25), CLOCK])
    assert midi(jumped) == [(0.5, 60, 100), (0.25, 60, 0)]
    panicked = run([*start, send("/musebridge/out/panic"), song(current_song_time=7.0), CLOCK])
    assert midi(panicked) == [(0.5, 60, 100), (0.5, 60, 0)]
    # a played note passed by the patcher's thru gate (the script got its copy) is ended too
    removed = run([*start, send("note_in", 50, 90), {"op": "delete"}])
    assert sorted(midi(removed)) == sorted([(0.5, 60, 100), (0.5, 60, 0), (0.5, 50, 0)])
    button = run([*start, send("note_in", 50, 90), send("panic", 1)])
    assert sorted(midi(button)[1:]) == [(0.5, 50, 0), (0.5, 60, 0)]
    assert osc(button, "/musebridge/panic") == [["/musebridge/panic"]]


def gate(result: dict[str, Any]) -> list[int]:
    """What the script sent to the patcher's thru gate (outlet 5: 1 open, 0 closed)."""
    return [e["args"][0] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 5]


def test_the_thru_gate_is_open_when_the_daemon_is_absent_or_in_thru_or_monitoring() -> None:
    # The gate starts open in the patcher (gate 1 1): the script only sends changes.
    alone = run([send("init"), send("monitor", 0), send("mode", 1), send("note_in", 60, 100)])
    assert gate(alone) == [] and midi(alone) == []  # played notes never leave through the script
    connected = [*CONNECT, send("monitor", 0), send("mode", 1)]
    assert gate(run(connected)) == [0]
    assert gate(run([*connected, send("mode", 0)])) == [0, 1]
    assert gate(run([*connected, send("monitor", 1)])) == [0, 1]
    lost = run([*connected, POLL, POLL, POLL, POLL])
    assert gate(lost) == [0, 1]  # the daemon went quiet: MIDI passes again
    assert osc(lost, "/musebridge/hello")[-1] == ["/musebridge/hello", 9001]
    monitored = run([*CONNECT, send("mode", 1)])
    assert gate(monitored) == []  # Monitor is on by default


def test_a_note_the_gate_passed_ends_even_if_the_gate_closes_while_it_is_held() -> None:
    # Its note-off passes beside the gate in the patcher; the script only forgets it (no double off).
    held = [*CONNECT, send("mode", 0), send("note_in", 61, 100), send("monitor", 0), send("mode", 2)]
    released = run([*held, send("note_in", 61, 0), send("panic", 1)])
    assert gate(released) == [0] and midi(released) == []
    kept = run([*held, send("panic", 1)])
    assert midi(kept) == [(0.0, 61, 0)]  # still held at panic: the script ends it


def test_ports_open_once_after_load_from_the_saved_parameters() -> None:
    # Live restores the saved OSC Port and Track before live.thisdevice starts the script (init).
    result = run([send("osc_port", 9100), send("track", 3), send("mode", 0), send("init")])
    ports = [e["args"] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] in (0, 2)]
    ports = [p for p in ports if p[0] == "port"]
    assert ports == [["port", 9100], ["port", 9104]]
    assert osc(result, "/musebridge/hello") == [["/musebridge/hello", 9104]]


LIVE_SET = {
    "tracks": [
        {
            "clip_slots": [
                {
                    "length": 8.0,
                    "is_midi_clip": 1,
                    "name": "riff",
                    "notes": [
                        {
                            "note_id": 1,
                            "pitch": 60,
                            "start_time": 0.0,
                            "duration": 1.0,
                            "velocity": 101,
                            "mute": 0,
                        },
                        {
                            "note_id": 2,
                            "pitch": 67,
                            "start_time": 2.5,
                            "duration": 0.5,
                            "velocity": 37,
                            "mute": 0,
                        },
                        {
                            "note_id": 3,
                            "pitch": 72,
                            "start_time": 4.0,
                            "duration": 1.0,
                            "velocity": 90,
                            "mute": 1,
                        },
                    ],
                },
                None,
                {"length": 4.0, "is_midi_clip": 1, "name": "taken", "notes": []},
                None,
            ]
        }
    ],
    "detailClip": [0, 0],
}


def test_clip_mode_reads_with_get_notes_extended_and_writes_new_clips() -> None:
    answer_one = ["/musebridge/out/clip", 0, 0, 3, 8.0, 62, 0.0, 1.5, 120, 65, 4.0, 0.25, 5]
    answer_two = ["/musebridge/out/clip", 0, 1, 3, 4.0, 48, 1.0, 1.0, 64]
    answer_three = ["/musebridge/out/clip", 0, 2, 3, 4.0]
    result = run(
        [*CONNECT, send("to_clip", 1), send(*answer_one), send(*answer_two), send(*answer_three)],
        live=LIVE_SET,
    )
    assert osc(result, "/musebridge/clip") == [
        ["/musebridge/clip", 0, "in", 8, 60, 0, 1, 101, 67, 2.5, 0.5, 37]  # the muted note stays home
    ]
    calls = [(e["path"], e["args"]) for e in result["log"] if e["kind"] == "liveapi" and e["op"] == "call"]
    assert ("live_set tracks 0 clip_slots 0 clip", ["get_notes_extended", 0, 128, 0, 8]) in calls
    assert ("live_set tracks 0 clip_slots 1", ["create_clip", 8]) in calls
    assert ("live_set tracks 0 clip_slots 3", ["create_clip", 4]) in calls
    assert ("live_set", ["create_scene", -1]) in calls  # no empty slot left for the third
    assert ("live_set tracks 0 clip_slots 4", ["create_clip", 4]) in calls
    assert not [c for c in calls if c[1][0] in ("set_notes", "replace_selected_notes", "notes", "note")]
    slots = result["tracks"][0]["clip_slots"]
    assert [(n["pitch"], n["start_time"], n["duration"], n["velocity"]) for n in slots[1]["notes"]] == [
        (62, 0.0, 1.5, 120),
        (65, 4.0, 0.25, 5),
    ]
    assert [(n["pitch"], n["velocity"]) for n in slots[3]["notes"]] == [(48, 64)]
    assert slots[2]["name"] == "taken" and slots[4]["notes"] == []
    assert slots[1]["name"] == "MuseBridge thru 1/3"
    check_all_sent(result)


def test_clip_mode_without_a_midi_clip_or_daemon_says_so() -> None:
    no_clip = run([*CONNECT, send("to_clip", 1)], live={"tracks": LIVE_SET["tracks"], "detailClip": None})
    assert osc(no_clip, "/musebridge/clip") == []
    assert ["set", "select a MIDI clip first"] in [e["args"] for e in no_clip["log"] if e["kind"] == "outlet"]
    offline = run([send("init"), send("to_clip", 1)], live=LIVE_SET)
    assert osc(offline, "/musebridge/clip") == []


def test_parameters_reach_the_daemon_with_the_spec_types() -> None:
    result = run(
        [
            *CONNECT,
            send("mode", 3),
            send("genre", 2),
            send("temperature", 0.7),
            send("bars", 8.0),
            send("position", 0.25),
            send("capture_a", 1),
            send("capture_b", 1),
            send("capture_b", 0),
            send("track", 2),
            send("mode", 42),
        ]
    )
    assert osc(result, "/musebridge/mode")[-1] == ["/musebridge/mode", 0, "interpolate"]
    assert osc(result, "/musebridge/genre")[-1] == ["/musebridge/genre", 0, "chorale"]
    assert osc(result, "/musebridge/temperature")[-1] == ["/musebridge/temperature", 0, 0.7]
    assert osc(result, "/musebridge/bars")[-1] == ["/musebridge/bars", 0, 8]
    assert osc(result, "/musebridge/position")[-1] == ["/musebridge/position", 0, 0.25]
    assert osc(result, "/musebridge/capture") == [
        ["/musebridge/capture", 0, "a"],
        ["/musebridge/capture", 0, "b"],
    ]
    ports = [e["args"] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 2]
    assert ports[-1] == ["port", 9003]  # track 2 listens on OSC port + 1 + 2
    check_all_sent(result)


def test_bad_messages_from_the_network_are_refused_without_harm() -> None:
    result = run(
        [
            *CONNECT,
            song(is_playing=1),
            CLOCK,
            send("/musebridge/out/note", 0, 60, 100),
            send("/musebridge/out/note", 0, 260, 100, 1.0, 1.0),
            send("/musebridge/out/note", 0, 60, 100, 1.0, -1.0),
            send("/musebridge/nonsense", 1),
            song(current_song_time=2.0),
            CLOCK,
        ]
    )
    assert midi(result) == []
    text = " ".join(posts(result))
    assert "wrong argument count for /musebridge/out/note" in text
    assert "unknown message /musebridge/nonsense" in text
    assert "bad /musebridge/out/note" in text


def test_status_line_shows_connection_model_and_latency() -> None:
    status = ["/musebridge/status", "transfer", "osc", 120.0, 1, 4.0, "cyclegan-celtic", 0, 0, 12.4, 0]
    result = run([*CONNECT, send(*status)])
    lines = [e["args"][1] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 3]
    assert lines[0].startswith("no daemon on port 9000")
    assert lines[-1] == "connected | thru | cyclegan-celtic | 12 ms"


def test_song_properties_come_from_observers_with_a_periodic_refresh() -> None:
    start = [*CONNECT, song(is_playing=1), CLOCK, send("/musebridge/out/note", 0, 60, 100, 0.5, 8.0)]
    start += [song(current_song_time=0.5), CLOCK]
    observed = run([*start, song(is_playing=0)])  # no clock tick: the observer alone reacts
    assert midi(observed) == [(0.5, 60, 100), (0.5, 60, 0)]
    assert osc(observed, "/musebridge/transport")[-1][-1] == 0

    missed = [*start, song(is_playing=0, silent=True)]  # Live's notification lost: the refresh catches it
    one_tick = run([*missed, CLOCK])
    assert midi(one_tick) == [(0.5, 60, 100)]
    caught = run([*missed, *[CLOCK] * 20])
    assert midi(caught) == [(0.5, 60, 100), (0.5, 60, 0)]

    gets = [
        e for e in caught["log"] if e["kind"] == "liveapi" and e["op"] == "get" and e["args"] == ["tempo"]
    ]
    assert len(gets) <= 3, "tempo is observed, not polled on every tick"


def test_a_daemon_error_shows_on_the_status_line_for_a_while() -> None:
    status = send("/musebridge/status", "thru", "osc", 120.0, 0, 0.0, "thru", 0, 0, 1.0, 1)
    steps = [*CONNECT, send("/musebridge/error", "bars must be 1..64", "/musebridge/bars")]
    result = run([*steps, *[POLL, status] * 6])
    lines = [e["args"][1] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 3]
    shown = [i for i, line in enumerate(lines) if "error: bars must be 1..64" in line]
    assert shown and shown[-1] < len(lines) - 1
    assert lines[-1] == "connected | thru | thru | 1 ms"
    assert any("daemon refused /musebridge/bars" in text for text in posts(result))


def test_clip_failures_are_reported_not_thrown() -> None:
    audio = {"tracks": [{"clip_slots": [{"length": 4.0, "is_midi_clip": 0, "name": "audio", "notes": []}]}]}
    not_midi = run([*CONNECT, send("to_clip", 1)], live={**audio, "detailClip": [0, 0]})
    assert osc(not_midi, "/musebridge/clip") == []
    full = {"tracks": [{"clip_slots": [{"length": 4.0, "is_midi_clip": 1, "name": "x", "notes": []}]}]}
    refused = {**full, "failCalls": ["add_new_notes", "get_notes_extended"]}
    unread = run([*CONNECT, send("to_clip", 1)], live={**refused, "detailClip": [0, 0]})
    assert osc(unread, "/musebridge/clip") == []
    assert any("get_notes_extended failed" in text for text in posts(unread))
    refused_clip = {**full, "failCalls": ["create_clip"]}
    bad_length = run(
        [*CONNECT, send("/musebridge/out/clip", 0, 0, 1, 4.0, 60, 0.0, 1.0, 90)], live=refused_clip
    )
    statuses = [e["args"] for e in bad_length["log"] if e["kind"] == "outlet" and e["outlet"] == 3]
    assert statuses[-1] == ["set", "could not write clip 1/1"]
    assert any("writing the clip failed" in text for text in posts(bad_length))


def _notes_calls(result: dict[str, Any]) -> list[Any]:
    return [
        e["args"][1]
        for e in result["log"]
        if e["kind"] == "liveapi" and e["op"] == "call" and e["args"][0] == "add_new_notes"
    ]


def test_clip_notes_go_to_add_new_notes_as_a_dict_with_a_plain_object_fallback() -> None:
    answer = send("/musebridge/out/clip", 0, 0, 1, 4.0, 60, 0.0, 1.0, 90)
    empty = {"tracks": [{"clip_slots": [None, None]}]}
    as_dict = run([*CONNECT, answer], live=empty)
    (call,) = _notes_calls(as_dict)
    assert call == {
        "dict": {"notes": [{"pitch": 60, "start_time": 0, "duration": 1, "velocity": 90, "mute": 0}]}
    }
    assert [n["pitch"] for n in as_dict["tracks"][0]["clip_slots"][0]["notes"]] == [60]
    fallback = run([*CONNECT, answer], live={**empty, "refuseNotes": ["dict"]})
    assert [list(c) for c in _notes_calls(fallback)] == [["dict"], ["notes"]]  # a Dict, then the object
    assert [n["pitch"] for n in fallback["tracks"][0]["clip_slots"][0]["notes"]] == [60]
    assert any("refused a Dict" in text and "plain object worked" in text for text in posts(fallback))
    neither = run([*CONNECT, answer], live={**empty, "refuseNotes": ["dict", "object"]})
    statuses = [e["args"] for e in neither["log"] if e["kind"] == "outlet" and e["outlet"] == 3]
    assert statuses[-1] == ["set", "clip 1/1 created, but Live refused its notes (Max window)"]
    assert any("failed with a Dict" in text for text in posts(neither))


def test_the_device_script_is_es5_for_max_js() -> None:
    source = (ROOT / "max_for_live" / "musebridge.js").read_text(encoding="utf-8")
    code = re.sub(r"\"(?:\\.|[^\"\\])*\"|//[^\n]*", '""', source)  # strings and comments out
    for token in (r"\blet\s", r"\bconst\s", r"=>", r"`", r"\bclass\s", r"\.\.\.", r"\bof\s"):
        assert not re.search(token, code), f"ES2015+ syntax {token!r} in musebridge.js (Max's js is ES5)"


CONTINUE = 2  # index of continue in the Mode menu


def status_lines(result: dict[str, Any]) -> list[str]:
    return [e["args"][1] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 3]


def toggle_sets(result: dict[str, Any]) -> list[list[Any]]:
    """Messages to the Loop toggle (outlet 4)."""
    return [e["args"] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 4]


def test_the_loop_toggle_sends_its_state_in_continue_mode() -> None:
    result = run([*CONNECT, send("mode", CONTINUE), send("loop", 1), send("loop", 0), send("loop", 1)])
    assert osc(result, "/musebridge/loop") == [
        ["/musebridge/loop", 0, 0],  # entering continue mode: the toggle's state
        ["/musebridge/loop", 0, 1],
        ["/musebridge/loop", 0, 0],
        ["/musebridge/loop", 0, 1],
    ]
    assert [m[0] for m in osc(result)[-3:]] == ["/musebridge/loop"] * 3
    check_all_sent(result)


def test_loop_feedback_moves_the_toggle_without_echo() -> None:
    steps = [*CONNECT, send("mode", CONTINUE), send("loop", 1)]
    steps += [send("/musebridge/loop", 0, 0)]  # switched off by its CC, say
    steps += [send("loop", 0)]  # Live echoing the toggle's new value: not sent back
    steps += [send("/musebridge/loop", 1, 1)]  # another track's loop: not ours
    steps += [send("/musebridge/loop", 0, 1), send("loop", 1)]
    result = run(steps)
    assert toggle_sets(result) == [["set", 0], ["set", 1]]
    assert osc(result, "/musebridge/loop") == [["/musebridge/loop", 0, 0], ["/musebridge/loop", 0, 1]]
    assert not [p for p in posts(result) if "unknown message" in p]
    # after the feedback a real change of the toggle is sent again
    later = run([*steps, send("loop", 0)])
    assert osc(later, "/musebridge/loop")[-1] == ["/musebridge/loop", 0, 0]


def test_loop_is_resent_on_reconnect_in_continue_mode_only() -> None:
    lost = [POLL, POLL, POLL, POLL]  # no answer: the device counts as disconnected and says hello again
    looping = run(
        [*CONNECT, send("mode", CONTINUE), send("loop", 1), *lost, send("/musebridge/welcome", "0.1.0")]
    )
    sent = [m[0] for m in osc(looping)]
    after = sent[sent.index("/musebridge/hello", sent.index("/musebridge/loop")) :]
    assert after.index("/musebridge/mode") < after.index("/musebridge/loop")
    assert osc(looping, "/musebridge/loop")[-1] == ["/musebridge/loop", 0, 1]
    transfer = run([*CONNECT, send("mode", 1), send("loop", 1), *lost, send("/musebridge/welcome", "0.1.0")])
    assert osc(transfer, "/musebridge/loop") == []
    check_all_sent(looping)


def test_outside_continue_mode_loop_is_kept_and_mutate_is_not_sent() -> None:
    steps = [*CONNECT, send("mode", 1), send("loop", 1), send("mutate", "bang")]
    result = run(steps)
    assert osc(result, "/musebridge/loop") == [] and osc(result, "/musebridge/mutate") == []
    lines = status_lines(result)
    assert any("Loop on: acts in continue mode" in line for line in lines)
    assert lines[-1].endswith("Mutate acts in continue mode only")
    switched = run([*steps, send("mode", CONTINUE)])
    assert [m for m in osc(switched) if m[0] in ("/musebridge/mode", "/musebridge/loop")][-2:] == [
        ["/musebridge/mode", 0, "continue"],
        ["/musebridge/loop", 0, 1],  # the kept state follows the mode
    ]
    status = send("/musebridge/status", "transfer", "osc", 120.0, 0, 0.0, "transpose", 0, 0, 1.0, 0)
    faded = run([*steps, *[POLL, status] * 6])
    assert status_lines(faded)[-1] == "connected | transfer | transpose | 1 ms"


def test_mutate_sends_on_a_press_only_when_connected() -> None:
    result = run(
        [*CONNECT, send("mode", CONTINUE), send("mutate", "bang"), send("mutate", 0), send("mutate", 1)]
    )
    assert osc(result, "/musebridge/mutate") == [["/musebridge/mutate", 0], ["/musebridge/mutate", 0]]
    check_all_sent(result)
    offline = run([send("init"), send("mode", CONTINUE), send("mutate", "bang")])
    assert osc(offline, "/musebridge/mutate") == []
    assert status_lines(offline)[-1] == "mutate needs the daemon: start `musebridge serve`"
    refused = run(
        [
            *CONNECT,
            send("mode", CONTINUE),
            send("mutate", "bang"),
            send("/musebridge/error", "track 0 has no answer to mutate yet", "/musebridge/mutate"),
        ]
    )
    assert status_lines(refused)[-1] == "connected | continue | error: track 0 has no answer to mutate yet"


def test_the_looping_state_shows_on_the_status_line() -> None:
    status = send("/musebridge/status", "continue", "osc", 120.0, 1, 8.0, "wavenet", 0, 0, 40.0, 0)
    result = run([*CONNECT, send("mode", CONTINUE), status, send("/musebridge/state", 0, "looping")])
    assert status_lines(result)[-1] == "connected | continue | wavenet | 40 ms | looping"
    other = run([*CONNECT, send("mode", CONTINUE), status, send("/musebridge/state", 1, "looping")])
    assert "looping" not in status_lines(other)[-1]


def test_an_answer_clip_in_parts_is_joined_and_a_lost_part_drops_it() -> None:
    """Issue 13: an answer clip too large for one datagram was dropped with a log line only."""
    from musebridge.core.conductor_osc import clip_datagrams

    flat: list[Any] = []
    for i in range(450):
        flat += [40 + i % 60, i * 0.125, 0.125, 1 + i % 127]
    parts = clip_datagrams(0, 0, 1, 64.0, flat)
    assert [address for address, _ in parts] == ["/musebridge/out/clip_part"] * 3
    joined = run([*CONNECT, send("to_clip", 1), *[send(a, *args) for a, args in parts]], live=LIVE_SET)
    notes = joined["tracks"][0]["clip_slots"][1]["notes"]
    expected = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 4)]
    assert [(n["pitch"], n["start_time"]) for n in notes] == expected
    first, _, last = (send(address, *args) for address, args in parts)
    lost = run([*CONNECT, send("to_clip", 1), first, last], live=LIVE_SET)
    assert lost["tracks"][0]["clip_slots"][1] is None  # nothing written
    assert any("was lost" in line for line in posts(lost))


def test_the_genre_menu_shows_the_genres_the_daemon_reports() -> None:
    """/musebridge/genres replaces the menu's items (live.menu _parameter_range); the menu index then
    names the daemon's genres, and the current choice is kept where it still exists."""
    reported = ["celtic", "folk", "chorale", "renaissance", "jazz"]
    result = run(
        [
            *CONNECT,
            send("genre", 2),  # chorale, from the patcher's initial items
            send("/musebridge/genres", *reported),
            send("genre", 4),
            send("/musebridge/genres", "pop"),  # the choice (jazz) is gone: the first item is shown
        ]
    )
    menu = [e["args"] for e in result["log"] if e["kind"] == "outlet" and e["outlet"] == 6]
    assert menu == [["_parameter_range", *reported], ["set", 2], ["_parameter_range", "pop"], ["set", 0]]
    assert [m[2] for m in osc(result, "/musebridge/genre")][-2:] == ["chorale", "jazz"]
    assert not [p for p in posts(result) if "unknown message" in p or "wrong argument" in p]
