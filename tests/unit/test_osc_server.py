"""The OSC server over real UDP on 127.0.0.1: good and bad datagrams, allow-list, replies, oscsend."""

from __future__ import annotations

import queue
import select
import shutil
import socket
import struct
import subprocess
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from musebridge.errors import UserError
from musebridge.io.osc_server import OscServer, is_loopback_host, parse_allow_list

TIMEOUT = 3.0


def datagram(address: str, *args: object, types: str | None = None) -> bytes:
    builder = OscMessageBuilder(address)
    for index, value in enumerate(args):
        builder.add_arg(value, types[index] if types else None)
    return builder.build().dgram


class Recorder:
    """Callbacks that only enqueue, as the daemon's do."""

    def __init__(self) -> None:
        self.good: queue.Queue = queue.Queue()
        self.bad: queue.Queue = queue.Queue()

    def on_message(self, address, args, sender, when) -> None:
        self.good.put((address, args, sender, when))

    def on_bad(self, address, reason, sender, when) -> None:
        self.bad.put((address, reason, sender, when))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder):
    osc = OscServer(recorder.on_message, recorder.on_bad, host="127.0.0.1", port=0).start()
    yield osc
    osc.stop()


@pytest.fixture
def client():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT)
    yield sock
    sock.close()


def test_good_message_is_coerced_and_timestamped(server, recorder, client):
    before = time.perf_counter()
    client.sendto(datagram("/musebridge/mode", 2, "transfer"), server.address)
    address, args, sender, when = recorder.good.get(timeout=TIMEOUT)
    after = time.perf_counter()
    assert address == "/musebridge/mode"
    assert args == (2, "transfer")
    assert sender == client.getsockname()
    assert before <= when <= after
    client.sendto(datagram("/musebridge/bars", 1.0, 8.0, types="ff"), server.address)
    _, args, _, _ = recorder.good.get(timeout=TIMEOUT)
    assert args == (1, 8) and all(type(value) is int for value in args)
    assert recorder.bad.empty()


@pytest.mark.parametrize(
    ("payload", "address", "fragment"),
    [
        (b"\x00\xff garbage \x13", "", "malformed OSC datagram"),
        (b"/musebridge/mode\x00\x00\x00\x00,is\x00", "/musebridge/mode", "malformed OSC datagram"),
        (datagram("/musebridge/unknown", 1), "/musebridge/unknown", "unknown address"),
        (datagram("/musebridge/mode", 1, 2), "/musebridge/mode", "arg 2 'mode' expected a string"),
        (datagram("/musebridge/mode", 1, "x"), "/musebridge/mode", "expected one of"),
        (datagram("/musebridge/ping", 1), "/musebridge/ping", "expected 0 args"),
        (datagram("/musebridge/bars", 1, None), "/musebridge/bars", "expected an int"),
        # issue 13: a float cut short was padded with zeros by the parser (tempo 32 BPM)
        (datagram("/musebridge/tempo", 120.0)[:-2], "/musebridge/tempo", "malformed OSC datagram"),
        (datagram("/musebridge/tempo", 120.0)[:-4], "/musebridge/tempo", "is cut short"),
        (datagram("/musebridge/genre", 1, "folk")[:-4], "/musebridge/genre", "is cut short"),
        (datagram("/musebridge/tempo", 120.0) + b"\x00" * 4, "/musebridge/tempo", "after the last argument"),
    ],
)
def test_bad_datagrams_go_to_on_bad_and_the_server_survives(
    server, recorder, client, payload, address, fragment
):
    client.sendto(payload, server.address)
    bad_address, reason, sender, _ = recorder.bad.get(timeout=TIMEOUT)
    assert bad_address == address
    assert fragment in reason
    assert sender == client.getsockname()
    client.sendto(datagram("/musebridge/ping"), server.address)
    assert recorder.good.get(timeout=TIMEOUT)[0] == "/musebridge/ping"
    assert server.running and server.bad == 1


def test_bundles_are_refused(server, recorder, client):
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessageBuilder("/musebridge/ping").build())
    client.sendto(bundle.build().dgram, server.address)
    address, reason, _, _ = recorder.bad.get(timeout=TIMEOUT)
    assert address == "#bundle" and "bundles" in reason
    assert recorder.good.empty()


def test_random_bytes_never_kill_the_thread(server, recorder, client):
    rng = __import__("random").Random(7)
    count = 200
    for _ in range(count):
        size = rng.randrange(0, 64)
        head = rng.choice([b"", b"/", b"/musebridge/clip\x00\x00\x00\x00,", b"#bundle\x00"])
        client.sendto(head + bytes(rng.randrange(256) for _ in range(size)), server.address)
    client.sendto(datagram("/musebridge/ping"), server.address)
    assert recorder.good.get(timeout=TIMEOUT)[0] == "/musebridge/ping"
    assert server.running
    # every datagram was either refused or (rarely, by chance) valid: none vanished
    assert server.received == count + 1
    assert server.bad + recorder.good.qsize() + 1 == count + 1


def test_a_raising_callback_does_not_stop_the_server(recorder, client):
    calls = []

    def explode(address, args, sender, when):
        calls.append(address)
        if len(calls) == 1:
            raise RuntimeError("boom")
        recorder.on_message(address, args, sender, when)

    with OscServer(explode, recorder.on_bad, port=0) as osc:
        client.sendto(datagram("/musebridge/ping"), osc.address)
        client.sendto(datagram("/musebridge/status"), osc.address)
        assert recorder.good.get(timeout=TIMEOUT)[0] == "/musebridge/status"
        assert osc.callback_errors == 1 and osc.running


def test_port_in_use_is_a_user_error(server, recorder):
    with pytest.raises(UserError, match="already in use"):
        OscServer(recorder.on_message, recorder.on_bad, port=server.address[1]).start()


def test_replies_are_typed_by_the_spec(server, client):
    server.send("/musebridge/out/note", (1, 60, 100, 4, 1), client.getsockname())
    data, source = client.recvfrom(65535)
    assert source == server.address  # replies leave from the listening port
    message = OscMessage(data)
    assert message.address == "/musebridge/out/note"
    assert message.params == [1, 60, 100, 4.0, 1.0]
    assert b",iiiff" in data  # ints given for float args go out as 'f'
    server.send("/musebridge/out/clip", (0, 0, 1, 4.0, 60, 0, 1, 90, 62, 1, 1, 80), client.getsockname())
    message = OscMessage(client.recvfrom(65535)[0])
    assert message.params[4:8] == [60, 0.0, 1.0, 90]
    assert server.send_many("/musebridge/pong", (), [client.getsockname(), client.getsockname()]) == 2


def test_sending_a_message_outside_the_contract_raises(server, client):
    with pytest.raises(ValueError, match="not an outbound address"):
        server.send("/musebridge/nope", (), client.getsockname())
    with pytest.raises(ValueError, match="expected"):
        server.send("/musebridge/state", (1,), client.getsockname())


def test_allow_list_on_a_non_loopback_host(recorder):
    allow = ["10.1.0.0/16", "192.168.1.7"]
    osc = OscServer(recorder.on_message, recorder.on_bad, host="0.0.0.0", allow=allow)
    ping = datagram("/musebridge/ping")
    for allowed in ("127.0.0.1", "10.1.200.3", "192.168.1.7", "::ffff:10.1.0.9"):
        osc.handle_datagram(ping, (allowed, 5000), 0.0)
    for refused in ("192.168.1.8", "10.2.0.1", "8.8.8.8", "not-an-ip"):
        osc.handle_datagram(ping, (refused, 5000), 0.0)
    assert recorder.good.qsize() == 4
    assert osc.dropped == 4 and osc.received == 4
    assert recorder.bad.empty()  # dropped datagrams are not answered


def test_loopback_server_accepts_every_sender(recorder):
    osc = OscServer(recorder.on_message, recorder.on_bad, host="127.0.0.1")
    osc.handle_datagram(datagram("/musebridge/ping"), ("127.0.0.1", 1), 0.0)
    assert recorder.good.qsize() == 1 and osc.dropped == 0


def test_allow_list_parsing():
    networks = parse_allow_list(["10.0.0.0/8, 192.168.1.2", "::1"])
    assert [str(n) for n in networks] == ["10.0.0.0/8", "192.168.1.2/32", "::1/128"]
    with pytest.raises(UserError, match="not an IP address"):
        parse_allow_list(["10.0.0.300"])
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost") and is_loopback_host("::1")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("")


def test_int32_overflow_from_int64_tag_is_refused(server, recorder, client):
    address = b"/musebridge/bars\x00\x00\x00\x00"
    payload = address + b",ih\x00" + struct.pack(">i", 1) + struct.pack(">q", 2**40)
    client.sendto(payload, server.address)
    _, reason, _, _ = recorder.bad.get(timeout=TIMEOUT)
    assert "int32" in reason


@pytest.mark.skipif(shutil.which("oscsend") is None, reason="oscsend (liblo-tools) not installed")
def test_oscsend_talks_to_the_server(server, recorder):
    host, port = server.address
    subprocess.run(
        ["oscsend", host, str(port), "/musebridge/temperature", "if", "3", "0.5"], check=True, timeout=10
    )
    address, args, _, _ = recorder.good.get(timeout=TIMEOUT)
    assert (address, args) == ("/musebridge/temperature", (3, 0.5))


@pytest.mark.skipif(shutil.which("oscdump") is None, reason="oscdump (liblo-tools) not installed")
def test_oscdump_reads_what_the_server_sends(server):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + TIMEOUT
        # oscdump needs a moment to bind: resend until it prints (UDP to a closed port is just lost)
        while not line and time.monotonic() < deadline:
            server.send("/musebridge/out/note", (2, 64, 90, 8, 0.5), ("127.0.0.1", port))
            ready, _, _ = select.select([dump.stdout], [], [], 0.1)
            if ready:
                line = dump.stdout.readline()
    finally:
        dump.kill()
        dump.wait()
    words = line.split()  # [timestamp] address types args...
    words = words[words.index("/musebridge/out/note"):]
    assert words[1] == "iiiff"
    assert [float(v) for v in words[2:]] == [2, 64, 90, 8, 0.5]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"/a\x00\x00", None),
        (b"/a\x00\x00,\x00\x00\x00", None),
        (b"/a\x00\x00,ifs\x00\x00\x00\x00" + bytes(8) + b"ab\x00\x00", None),
        (b"/a\x00\x00,b\x00\x00\x00\x00\x00\x05hello\x00\x00\x00", None),
        (b"/a\x00\x00,b\x00\x00\xff\xff\xff\xfb", "negative size"),
        (b"/a\x00\x00,b\x00\x00\x00\x00\x00\x05hell", "cut short"),
        (b"/a\x00\x00,s\x00\x00abcd", "cut short"),
        (b"/abc", "address is cut short"),
        (b"/a\x00\x00,x\x00\x00", "unknown type tag"),
        (b"/a\x00\x00i\x00\x00\x00", "no type tag string"),
        (b"/a\x00", "multiple of 4"),
    ],
)
def test_osc_layout_problem(payload: bytes, problem: str | None) -> None:
    from musebridge.io.osc_server import osc_layout_problem

    found = osc_layout_problem(payload)
    assert found is None if problem is None else problem in (found or "")


def test_answer_clip_datagrams_fit_in_a_small_udp_datagram_and_match_the_spec() -> None:
    from musebridge.core.conductor_osc import CLIP_NOTES_PER_DATAGRAM, clip_datagrams
    from musebridge.io.osc_server import OscServer

    builder = OscServer(lambda *a: None, lambda *a: None)
    flat = [127, 255.875, 255.875, 127] * (3 * CLIP_NOTES_PER_DATAGRAM + 1)
    messages = clip_datagrams(3, 0, 1, 256.0, flat)
    assert [args[4:6] for _, args in messages] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert sum(len(args) - 6 for _, args in messages) == len(flat)
    assert max(len(builder.build(address, args)) for address, args in messages) < 8192
    (address, args), = clip_datagrams(3, 0, 1, 4.0, flat[:8])
    assert address == "/musebridge/out/clip" and len(builder.build(address, args)) < 8192
