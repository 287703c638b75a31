"""`musebridge bench --tracks`: one short run of the many-tracks scenario through a whole daemon, with
the transpose rule model so it takes seconds (the table itself runs the shipped neural models)."""

from __future__ import annotations

import pytest

from musebridge.bench import tracks


def test_players_send_note_on_and_off_per_bar_and_continue_ends_each_call() -> None:
    transfer = tracks._player_events("transfer", 101, bars=2, offset=0)
    assert [a for _b, a, _args in transfer].count("/musebridge/note_on") == 8
    cont = tracks._player_events("continue", 101, bars=4, offset=0)
    assert [b for b, a, _args in cont if a == "/musebridge/end_call"] == [7.6, 15.6]  # bars 1 and 3


def test_every_track_is_answered_and_none_is_superseded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tracks.PRESETS, "transfer", "transpose")
    entry = tracks.many_tracks_run("transfer", tracks=3, bpm=240.0, bars=2)
    assert entry["jobs"] == 6 and entry["answered"] == 6
    assert entry["superseded"] == 0 and entry["errors"] == 0
    assert entry["latency"] is not None and entry["cost_per_job_ms"] is not None
