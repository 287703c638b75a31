"""Conductor faults of issue 13: a mode with no setting for it, and every failure counted in status."""

from __future__ import annotations

import dataclasses

import pytest
from conductor_harness import CLIENT, Harness, note, preset


def test_switching_to_transfer_without_a_genre_takes_the_first_genre_once_with_a_reason() -> None:
    """Issue 13: transfer with no genre (call-and-response's tracks) failed every job."""
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", CLIENT[1])
    h.osc(0.1, "/musebridge/mode", 1, "transfer")
    assert h.c.track_state(1).settings.genre == "celtic"
    (told,) = h.osc_sent("/musebridge/error")
    assert told.args == ("track 1: transfer needs a target genre; using 'celtic' "
                         "(choose another with /musebridge/genre)", "/musebridge/mode")
    h.osc(0.2, "/musebridge/mode", 1, "thru")
    h.osc(0.3, "/musebridge/mode", 1, "transfer")
    assert len(h.osc_sent("/musebridge/error")) == 1  # once: the genre stays
    h.osc(0.4, "/musebridge/genre", 1, "")
    assert "needs a target genre" in h.osc_sent("/musebridge/error")[-1].args[0]
    assert h.c.track_state(1).settings.genre == "celtic"


def test_a_preset_putting_a_track_in_transfer_gets_the_genre_or_is_refused() -> None:
    loaded = preset("transfer")
    bare = dataclasses.replace(preset("transfer"), genres=())
    h = Harness(preset("thru"), preset_loader=lambda name: loaded if name == "good" else bare)
    h.osc(0.0, "/musebridge/hello", CLIENT[1])
    h.osc(0.1, "/musebridge/preset", "good")
    assert h.c.track_state(1).settings.genre == "celtic"
    assert h.osc_sent("/musebridge/error")[-1].args[1] == "/musebridge/preset"
    h.osc(0.2, "/musebridge/preset", "bare")
    assert "lists none" in h.osc_sent("/musebridge/error")[-1].args[0]
    assert h.c.preset is loaded  # refused: nothing changed


def test_status_errors_count_model_failures_and_daemon_failures() -> None:
    h = Harness(preset("transfer"), run_jobs=False)
    h.osc(0.0, "/musebridge/nope")  # a refused message
    note(h, 0.1, 0.4, 60)
    h.advance(2.2)  # a bar played: a job is submitted
    assert h.held
    h.finish(h.held.pop(0), 2.3, error="model crashed")
    h.c.note_failure()
    assert h.c.status(2.4).errors == 3
    assert h.c.status(2.4).osc_args()[-1] == 3


@pytest.mark.parametrize("genres", [(), ("folk",)])
def test_mode_switch_is_refused_only_when_no_genre_exists(genres: tuple[str, ...]) -> None:
    h = Harness(dataclasses.replace(preset("thru"), genres=genres))
    h.osc(0.1, "/musebridge/mode", 1, "transfer")
    assert (h.c.track_state(1).mode == "transfer") == bool(genres)


def test_midi_port_state_reaches_every_client_and_follows_each_status() -> None:
    h = Harness(preset("thru"))
    h.osc(0.0, "/musebridge/hello", CLIENT[1])
    h.apply(h.c.midi_ports("lost", "JACK server gone"), 0.1)
    assert h.osc_sent("/musebridge/midi")[-1].args == ("lost", "JACK server gone")
    h.osc(0.2, "/musebridge/status")
    assert h.osc_sent("/musebridge/midi")[-1].args == ("lost", "JACK server gone")
    h.apply(h.c.midi_ports("ok", "JACK server back"), 0.3)
    h.osc(0.4, "/musebridge/status")
    assert h.osc_sent("/musebridge/midi")[-1].args == ("ok", "JACK server back")
    with pytest.raises(ValueError):
        h.c.midi_ports("broken", "")
