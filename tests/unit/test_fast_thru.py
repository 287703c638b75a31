"""Same-cycle thru routing (pure): what is forwarded, on which channel, and the note-off that follows."""

from __future__ import annotations

import pytest

from musebridge.core.actions import SendMidi
from musebridge.daemon.fast_thru import FastThru, thru_routes
from musebridge.daemon.server import _without_forwarded
from musebridge.presets import TrackSettings


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
        return TrackSettings(mode="thru") if track <= 2 else TrackSettings(mode="transfer", echo_input=False)


class FakeConductor:
    preset = FakePreset()

    def __init__(self) -> None:
        self.tracks = {1: FakeTrack(TrackSettings(mode="transfer", echo_input=False)),
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


# -- the JACK port's side of the hook, one process cycle at a time with fake JACK buffers ----------
class FakeCycle:
    def __init__(self, frames: int) -> None:
        self.frames = frames


class FakeClock:
    """Frame n sounds at n / 48000 s; each update() starts the next 256-frame cycle."""

    def __init__(self) -> None:
        self.cycle = FakeCycle(-256)

    def update(self, nframes: int) -> FakeCycle:
        self.cycle = FakeCycle(self.cycle.frames + nframes)
        return self.cycle

    def frame_to_time(self, frame: int) -> float:
        return frame / 48000

    def time_to_frame(self, when: float) -> int:
        return round(when * 48000)


class FakeOutPort:
    """Keeps events in order and refuses what JACK refuses: an earlier offset, a full buffer."""

    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self.cycles: list[list[tuple[int, bytes]]] = []

    def clear_buffer(self) -> None:
        self.cycles.append([])

    def write_midi_event(self, offset: int, data: bytes) -> None:
        import jack

        events = self.cycles[-1]
        if len(events) >= self.capacity or (events and offset < events[-1][0]):
            raise jack.JackError("refused")
        events.append((offset, bytes(data)))


class FakeInPort:
    def __init__(self) -> None:
        self.next: list[tuple[int, bytes]] = []

    def incoming_midi_events(self) -> list[tuple[int, bytes]]:
        events, self.next = self.next, []
        return events


def fake_ports(routes: dict[int, int], capacity: int = 100):
    from musebridge.io.jack_midi import JackMidiPorts

    ports = JackMidiPorts()
    ports.clock, ports.outport, ports.inport = FakeClock(), FakeOutPort(capacity), FakeInPort()
    ports.alive = True
    plain: list = []
    seen: list = []
    ports._on_message = lambda data, when: plain.append(data)
    ports.set_thru(router(routes).route, lambda data, when, forwarded: seen.append((data, when, forwarded)))
    return ports, seen, plain


def run_cycle(ports, incoming: list[tuple[int, tuple[int, ...]]]) -> list[tuple[int, bytes]]:
    ports.inport.next = [(offset, bytes(data)) for offset, data in incoming]
    ports._process(256)
    return ports.outport.cycles[-1]


def test_port_writes_forwarded_input_in_frame_order_with_scheduled_output() -> None:
    ports, seen, plain = fake_ports({0: 1})
    run_cycle(ports, [])  # cycle 0: frames 0-255
    ports.send_at((0xB5, 1, 1), (256 + 100) / 48000)  # scheduled: offset 100 of the next cycle
    out = run_cycle(ports, [(10, (0x90, 60, 100)), (150, (0x90, 61, 100)), (200, (0x92, 62, 100))])
    assert out == [(10, bytes((0x91, 60, 100))), (100, bytes((0xB5, 1, 1))), (150, bytes((0x91, 61, 100)))]
    assert [(data, forwarded) for data, _, forwarded in seen] == [
        ((0x90, 60, 100), bytes((0x91, 60, 100))), ((0x90, 61, 100), bytes((0x91, 61, 100))),
        ((0x92, 62, 100), None)]
    assert seen[0][1] == (256 + 10) / 48000  # stamped with its frame's time
    assert plain == []  # with thru set, everything goes to set_thru's callback
    stats = ports.stats()
    assert stats["thru"] == 2 and stats["thru_late"] == 0 and stats["callback_errors"] == 0


def test_port_carries_forwarded_input_to_the_next_cycle_when_full() -> None:
    ports, seen, _ = fake_ports({0: 0}, capacity=2)
    out = run_cycle(ports, [(5, (0x90, 60, 1)), (6, (0x90, 61, 1)), (7, (0x80, 60, 0))])
    assert out == [(5, bytes((0x90, 60, 1))), (6, bytes((0x90, 61, 1)))]
    out = run_cycle(ports, [(3, (0x80, 61, 0))])
    assert out == [(0, bytes((0x80, 60, 0))), (3, bytes((0x80, 61, 0)))]  # the carry first, in order
    assert ports.stats()["thru_late"] == 1 and ports.stats()["thru"] == 4
    assert [forwarded is not None for _, _, forwarded in seen] == [True] * 4


def test_port_releases_forwarded_notes_on_panic() -> None:
    ports, _, _ = fake_ports({0: 4})
    run_cycle(ports, [(5, (0x90, 60, 100)), (9, (0x90, 62, 100)), (20, (0x80, 62, 0))])
    ports.panic()
    out = run_cycle(ports, [])
    assert out[0] == (0, bytes((0x84, 60, 0)))  # the held forwarded note, then sustain/all notes off
    assert bytes((0x84, 62, 0)) not in [message for _, message in out]
    assert len(out) == 1 + 32


def test_a_panic_drops_forwarded_input_not_yet_written() -> None:
    ports, seen, _ = fake_ports({0: 0})
    ports.panic()
    out = run_cycle(ports, [(5, (0x90, 60, 100))])  # same cycle as the panic
    assert bytes((0x90, 60, 100)) not in [message for _, message in out]
    assert len(out) == 32 and ports.stats()["dropped_out"] == 1
    assert seen[0][2] is not None  # the router had decided: its note-off will follow (harmless)


def test_a_failing_or_malformed_route_forwards_nothing_and_the_input_still_arrives() -> None:
    ports, seen, _ = fake_ports({})
    results = iter([RuntimeError("boom"), (0x90, 200, 1)])

    def route(data: tuple[int, ...]) -> object:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    ports.set_thru(route, lambda data, when, forwarded: seen.append((data, forwarded)))
    out = run_cycle(ports, [(1, (0x90, 60, 100)), (2, (0x90, 61, 100))])
    assert out == [] and seen == [((0x90, 60, 100), None), ((0x90, 61, 100), None)]
    assert ports.stats()["callback_errors"] == 2
    with pytest.raises(ValueError, match="on_message"):
        ports.set_thru(route)
