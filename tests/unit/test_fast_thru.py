"""Same-cycle thru routing (pure): what is forwarded, on which channel, and the note-off that follows."""

from __future__ import annotations

import pytest
from musebridge.core.actions import SendMidi
from musebridge.fast_thru import FastThru, thru_routes
from musebridge.presets import TrackSettings
from musebridge.server import _without_forwarded


def router(routes: dict[int, int], held_back: frozenset[int] = frozenset()) -> FastThru:
    fast = FastThru()
    fast.set_routes(routes, held_back)
    return fast


def test_routed_channel_messages_are_forwarded_on_their_output_channel() -> None:
    fast = router({0: 0, 1: 5})
    assert fast.route((0x90, 60, 100)) == bytes((0x90, 60, 100))
    assert fast.route((0x91, 62, 90)) == bytes((0x95, 62, 90))  # channel 2 -> 6
    assert fast.route((0xE1, 0, 64)) == bytes((0xE5, 0, 64))  # pitch bend too
    assert fast.route((0xC1, 7)) == bytes((0xC5, 7))  # two-byte messages too
    assert fast.forwarded == 4


def test_unrouted_and_system_messages_are_not_forwarded() -> None:
    fast = router({0: 0})
    assert fast.route((0x93, 60, 100)) is None
    assert fast.route((0xF8,)) is None
    assert fast.route((0xF2, 0, 1)) is None
    assert fast.forwarded == 0


def test_no_routes_forwards_nothing() -> None:
    assert FastThru().route((0x90, 60, 100)) is None


def test_the_note_off_follows_its_note_on_when_routes_change() -> None:
    fast = router({0: 3})
    assert fast.route((0x90, 60, 100)) == bytes((0x93, 60, 100))
    fast.set_routes({})  # the track left thru mode while the key was down
    assert fast.route((0x80, 60, 0)) == bytes((0x83, 60, 0))
    assert fast.route((0x90, 61, 100)) is None  # but new notes are no longer forwarded
    assert fast.route((0x80, 60, 0)) is None  # and a second off of the same key is not either


def test_the_note_off_keeps_its_note_ons_channel_when_the_output_channel_changes() -> None:
    fast = router({0: 3})
    fast.route((0x90, 60, 100))
    fast.set_routes({0: 9})
    assert fast.route((0x90, 60, 0)) == bytes((0x93, 60, 0))  # velocity-0 note-on is a note-off
    assert fast.route((0x90, 60, 100)) == bytes((0x99, 60, 100))


def test_a_note_off_without_a_forwarded_note_on_follows_the_routes() -> None:
    fast = router({})
    fast.route((0x90, 60, 100))  # not forwarded: the track was not thru yet
    fast.set_routes({0: 0})
    assert fast.route((0x80, 60, 0)) == bytes((0x80, 60, 0))  # an extra note-off is harmless


def test_held_back_controls_take_the_conductors_path() -> None:
    fast = router({0: 0}, frozenset({64}))
    assert fast.route((0xB0, 64, 127)) is None  # the end-call CC: the conductor decides
    assert fast.route((0xB0, 7, 100)) == bytes((0xB0, 7, 100))
    assert fast.held_back_controls == frozenset({64})


def test_routes_are_checked_and_copied() -> None:
    routes = {0: 1}
    fast = router(routes)
    routes[2] = 2  # the caller's dict changing later changes nothing
    assert fast.routes == {0: 1}
    with pytest.raises(ValueError, match="channels 0-15"):
        fast.set_routes({0: 16})
    assert fast.routes == {0: 1}  # a refused table leaves the old one


class FakeTrack:
    def __init__(self, settings: TrackSettings) -> None:
        self.settings = settings

    @property
    def mode(self) -> str:
        return self.settings.mode


class FakePreset:
    def track(self, track: int) -> TrackSettings:
        return TrackSettings(mode="thru") if track <= 2 else TrackSettings(mode="transfer")


class FakeConductor:
    preset = FakePreset()

    def __init__(self) -> None:
        self.tracks = {1: FakeTrack(TrackSettings(mode="transfer")),
                       4: FakeTrack(TrackSettings(mode="transfer", echo_input=True, out_channel=9))}

    def track_state(self, track: int) -> FakeTrack:
        return self.tracks[track]


def test_routes_from_live_tracks_and_the_preset() -> None:
    routes = thru_routes(FakeConductor(), seen={0, 3})
    # channel 0: track 1 left thru; channel 1: preset thru; channel 3: echo to channel 10
    assert routes == {1: 1, 3: 9}


def test_the_conductors_send_of_exactly_the_forwarded_bytes_is_dropped_once() -> None:
    actions = [SendMidi((0x93, 60, 100)), SendMidi((0x90, 61, 1)), SendMidi((0x93, 60, 100))]
    assert _without_forwarded(actions, bytes((0x93, 60, 100))) == actions[1:]
    # a send on another channel than the forwarded one still goes out (its note needs its own off)
    assert _without_forwarded(actions, bytes((0x90, 60, 100))) == actions
