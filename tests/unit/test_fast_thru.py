"""Same-cycle thru: routing, offsets, fallbacks and the note-off that follows its note-on."""

from __future__ import annotations

from dataclasses import dataclass, field

from musebridge.core.actions import SendMidi
from musebridge.fast_thru import FastThru, thru_routes
from musebridge.presets import TrackSettings
from musebridge.server import _without_forwarded


@dataclass
class Cycle:
    frames: int = 4800


class Clock:
    """1 ms = 48 frames; time 0.1 s is frame 4800, the start of the current cycle."""

    def __init__(self) -> None:
        self.cycle = Cycle()

    def time_to_frame(self, when: float) -> int:
        return round(when * 48000)


class OutPort:
    def __init__(self) -> None:
        self.events: list[tuple[int, bytes]] = []

    def write_midi_event(self, offset: int, message: bytes) -> None:
        if self.events and offset < self.events[-1][0]:
            raise RuntimeError("events must be written in order")
        self.events.append((offset, bytes(message)))


@dataclass
class Client:
    blocksize: int = 256


@dataclass
class Ports:
    backend: str = "jack"
    alive: bool = True
    clock: Clock = field(default_factory=Clock)
    outport: OutPort = field(default_factory=OutPort)
    client: Client = field(default_factory=Client)


def make(routes: dict[int, int]) -> tuple[FastThru, Ports, list[tuple[tuple[int, ...], float, bool]]]:
    queued: list[tuple[tuple[int, ...], float, bool]] = []
    ports = Ports()
    fast = FastThru(ports, lambda data, when, forwarded: queued.append((data, when, forwarded)))
    fast.set_routes(routes)
    return fast, ports, queued


def test_routed_input_is_written_at_its_own_offset_and_marked_forwarded() -> None:
    fast, ports, queued = make({0: 0, 1: 5})
    fast.on_message((0x90, 60, 100), 0.101)  # frame 4848: offset 48
    fast.on_message((0x91, 62, 90), 0.102)  # channel 2 -> 6
    assert ports.outport.events == [(48, bytes((0x90, 60, 100))), (96, bytes((0x95, 62, 90)))]
    assert [forwarded for _, _, forwarded in queued] == [True, True]
    assert queued[0][0] == (0x90, 60, 100)  # the conductor sees the input as it came


def test_unrouted_and_system_messages_take_the_normal_path() -> None:
    fast, ports, queued = make({0: 0})
    fast.on_message((0x93, 60, 100), 0.101)
    fast.on_message((0xF8,), 0.101)
    assert ports.outport.events == []
    assert [forwarded for _, _, forwarded in queued] == [False, False]


def test_a_write_that_cannot_be_done_falls_back() -> None:
    fast, ports, queued = make({0: 0})
    ports.outport.events.append((200, b"\x90\x40\x40"))  # scheduled output already written later
    fast.on_message((0x90, 60, 100), 0.101)
    assert queued[-1][2] is False and fast.fallbacks == 1


def test_the_note_off_follows_its_note_on_when_routes_change() -> None:
    fast, ports, queued = make({0: 3})
    fast.on_message((0x90, 60, 100), 0.101)
    fast.set_routes({})  # the track left thru mode while the key was down
    fast.on_message((0x80, 60, 0), 0.102)
    assert ports.outport.events == [(48, bytes((0x93, 60, 100))), (96, bytes((0x83, 60, 0)))]
    fast.on_message((0x90, 61, 100), 0.103)  # but new notes are no longer forwarded
    assert len(ports.outport.events) == 2 and queued[-1][2] is False


def test_held_back_controls_take_the_conductors_path() -> None:
    fast, ports, queued = make({0: 0})
    fast.set_routes({0: 0}, frozenset({64}))
    fast.on_message((0xB0, 64, 127), 0.101)  # the end-call CC: the conductor decides
    fast.on_message((0xB0, 7, 100), 0.101)
    assert ports.outport.events == [(48, bytes((0xB0, 7, 100)))]
    assert [forwarded for _, _, forwarded in queued] == [False, True]


def test_supported_only_for_jack_ports() -> None:
    assert FastThru.supported(Ports())
    assert not FastThru.supported(Ports(backend="alsa"))
    assert not FastThru.supported(object())


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


def test_the_conductors_send_of_a_forwarded_message_is_dropped_once() -> None:
    actions = [SendMidi((0x93, 60, 100)), SendMidi((0x90, 61, 1)), SendMidi((0x93, 60, 100))]
    assert _without_forwarded(actions, (0x90, 60, 100)) == actions[1:]
