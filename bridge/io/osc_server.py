"""The OSC edge: a UDP server on its own thread, checked against the contract, and a sender.

    server = OscServer(on_message, on_bad, host="127.0.0.1", port=9000)
    server.start()                   # UserError when the port is taken
    server.send("/musebridge/pong", (), ("127.0.0.1", 9001))
    server.stop()

Every datagram is checked for an exact OSC 1.0 layout (osc_layout_problem: arguments must fill their
type tags, no byte cut short or left over), then parsed here (python-osc's parser, errors caught): a
malformed datagram, a bundle, an unknown address, a wrong argument count, type or value goes to
`on_bad(address, reason, sender, time)`; a good message, with its args coerced to the spec's types,
goes to `on_message(address, args, sender, time)`. `time` is time.perf_counter() at receipt.
Callbacks must only timestamp and enqueue; an exception in one is logged and the server goes on.

Bound to a loopback host, every sender is accepted. Bound to any other host (asked for with
--osc-host 0.0.0.0), only loopback senders and the `allow` networks are; others are dropped, counted
in `dropped`, and logged (the first datagram of each sender).
Replies leave from the listening socket, so a client that answers the sender's port reaches us.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from musebridge.errors import UserError
from musebridge.osc_spec import OscArg, OscSpec, load_spec

log = logging.getLogger("musebridge.osc")

Sender = tuple[str, int]
MessageCallback = Callable[[str, tuple[OscArg, ...], Sender, float], None]
BadCallback = Callable[[str, str, Sender, float], None]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_HOST = "127.0.0.1"
MAX_DATAGRAM = 65535
_POLL_S = 0.2


def parse_allow_list(items: Iterable[str]) -> list[IpNetwork]:
    """IPs and CIDRs ('192.168.1.20', '10.0.0.0/24', comma-separated allowed) -> networks."""
    networks: list[IpNetwork] = []
    for item in items:
        for text in str(item).split(","):
            text = text.strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as error:
                reason = f"--osc-allow: {text!r} is not an IP address or CIDR network ({error})"
                raise UserError(reason) from None
    return networks


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_osc_arguments(parser: argparse.ArgumentParser) -> None:
    """--osc-host, --osc-port, --osc-allow, for commands that run the OSC server."""
    group = parser.add_argument_group("OSC")
    group.add_argument("--osc-host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    group.add_argument(
        "--osc-port", type=int, default=load_spec().default_port, help="UDP port (default %(default)s)"
    )
    group.add_argument(
        "--osc-allow", action="append", default=[], metavar="IP[/BITS]",
        help="with a non-loopback --osc-host, accept datagrams from these addresses/networks "
        "(repeatable or comma-separated; loopback is always accepted)",
    )


_FIXED_SIZES = {"i": 4, "f": 4, "c": 4, "r": 4, "m": 4, "h": 8, "t": 8, "d": 8,
                "T": 0, "F": 0, "N": 0, "I": 0, "[": 0, "]": 0}


def _string_end(datagram: bytes, start: int) -> int | None:
    """End (exclusive, padded to 4) of the OSC-string at `start`, or None when it is cut short."""
    nul = datagram.find(b"\x00", start)
    if nul < 0:
        return None
    end = (nul // 4 + 1) * 4
    return end if end <= len(datagram) else None


def osc_layout_problem(datagram: bytes) -> str | None:
    """Why `datagram` is not one whole OSC 1.0 message, or None when its arguments exactly fill
    their type tags (OSC 1.0 spec: 4-byte aligned strings and blobs, fixed-size numbers).

    python-osc pads a float cut short with zeros (a Reaktor quirk), so a truncated datagram would
    pass as a different number; the daemon refuses it instead. Never raises."""
    if len(datagram) % 4:
        return f"{len(datagram)} bytes is not a multiple of 4"
    end = _string_end(datagram, 0)
    if end is None:
        return "the address is cut short"
    if end == len(datagram):
        return None  # no type tag string: a message without arguments
    tags_end = _string_end(datagram, end)
    if tags_end is None or datagram[end:end + 1] != b",":
        return "no type tag string after the address"
    tags = datagram[end + 1:datagram.index(b"\x00", end)].decode("ascii", "replace")
    offset = tags_end
    for position, tag in enumerate(tags):
        size = _FIXED_SIZES.get(tag)
        if size is not None:
            offset += size
        elif tag in "sS":
            string_end = _string_end(datagram, offset)
            offset = string_end if string_end is not None else len(datagram) + 1
        elif tag == "b":
            head = datagram[offset:offset + 4]
            size = int.from_bytes(head, "big", signed=True) if len(head) == 4 else 0
            if size < 0:
                return f"argument {position + 1} (blob) has a negative size"
            offset += 4 + (size + 3) // 4 * 4
        else:
            return f"unknown type tag {tag!r}"
        if offset > len(datagram):
            return f"argument {position + 1} (type {tag!r}) is cut short: the datagram ends first"
    if offset != len(datagram):
        return f"{len(datagram) - offset} bytes after the last argument"
    return None


def _address_of_garbage(datagram: bytes) -> str:
    """The address a malformed datagram claims, if it starts like one; else ''."""
    if not datagram.startswith(b"/"):
        return ""
    head = datagram.split(b"\x00", 1)[0][:128]
    try:
        return head.decode("ascii")
    except UnicodeDecodeError:
        return ""


class OscServer:
    """UDP OSC server thread + sender; see the module doc."""

    def __init__(
        self,
        on_message: MessageCallback,
        on_bad: BadCallback,
        host: str = DEFAULT_HOST,
        port: int = 9000,
        allow: Iterable[str] | Iterable[IpNetwork] = (),
        spec: OscSpec | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.on_message = on_message
        self.on_bad = on_bad
        self.host = host
        self.requested_port = port
        self.spec = spec or load_spec()
        self.clock = clock
        self.allow: list[IpNetwork] = []
        for item in allow:
            self.allow.extend(parse_allow_list([item]) if isinstance(item, str) else [item])
        self.loopback_only = is_loopback_host(host)
        self.received = 0
        self.bad = 0
        self.dropped = 0
        self.callback_errors = 0
        self.send_errors = 0
        self._dropped_senders: set[str] = set()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def address(self) -> Sender:
        """(host, port) actually bound (port 0 asks the OS for a free one)."""
        if self._socket is None:
            raise RuntimeError("OSC server not started")
        host, port = self._socket.getsockname()[:2]
        return host, port

    def start(self) -> OscServer:
        """Bind and start the receive thread; UserError when the port is taken or the host is wrong."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                raise UserError(
                    f"OSC port {self.requested_port} on {self.host} is already in use "
                    "(another musebridge running?); choose another with --osc-port"
                ) from None
            raise UserError(f"cannot listen for OSC on {self.host}:{self.requested_port}: {error.strerror}") \
                from None
        sock.settimeout(_POLL_S)
        self._socket = sock
        if not self.loopback_only:
            allowed = ", ".join(str(n) for n in self.allow) or "none"
            log.warning(
                "OSC listening on %s:%d (not loopback): accepting loopback and --osc-allow senders (%s)",
                *self.address, allowed,
            )
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="musebridge-osc", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the socket (idempotent)."""
        self._stopping.set()
        if self._thread is not None and self._socket is not None:
            self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _wake(self) -> None:
        """Send the receive thread an empty datagram so that it sees the stop flag at once."""
        assert self._socket is not None
        host, port = self.address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        try:
            self._socket.sendto(b"", (host, port))
        except OSError:
            pass  # the poll timeout ends the thread anyway

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- receiving --------------------------------------------------------------------------------
    def _serve(self) -> None:
        sock = self._socket
        assert sock is not None
        while not self._stopping.is_set():
            try:
                datagram, sender = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError as error:
                if self._stopping.is_set():
                    break
                # e.g. ICMP port unreachable from an earlier send, surfaced on Windows/BSD: keep serving
                log.debug("OSC receive error: %s", error)
                continue
            now = self.clock()
            if self._stopping.is_set():
                break
            try:
                self.handle_datagram(datagram, (sender[0], sender[1]), now)
            except Exception:  # the server thread never dies on a message
                self.callback_errors += 1
                log.exception("OSC: error while handling a datagram from %s:%s", *sender[:2])

    def sender_allowed(self, host: str) -> bool:
        if self.loopback_only:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped  # type: ignore[assignment]
        return ip.is_loopback or any(ip in network for network in self.allow)

    def handle_datagram(self, datagram: bytes, sender: Sender, now: float) -> None:
        """Parse, check and dispatch one datagram (the receive thread calls this; tests may too)."""
        if not self.sender_allowed(sender[0]):
            self.dropped += 1
            if sender[0] not in self._dropped_senders:
                self._dropped_senders.add(sender[0])
                log.warning("OSC: dropped a datagram from %s (not in --osc-allow); further ones counted only",
                            sender[0])
            return
        self.received += 1
        if OscBundle.dgram_is_bundle(datagram):
            self._bad("#bundle", "OSC bundles are not accepted; send plain messages", sender, now)
            return
        try:
            problem = osc_layout_problem(datagram)
            if problem is not None:
                raise ValueError(problem)
            message = OscMessage(datagram)
            address = message.address
            params = tuple(message.params)
        except Exception as error:
            detail = error.args[-1] if error.args else error
            self._bad(
                _address_of_garbage(datagram),
                f"malformed OSC datagram ({len(datagram)} bytes): {detail}", sender, now,
            )
            return
        result = self.spec.validate(address, params, "inbound")
        if not result.ok:
            self._bad(address, result.reason, sender, now)
            return
        self.on_message(address, result.args, sender, now)

    def _bad(self, address: str, reason: str, sender: Sender, now: float) -> None:
        self.bad += 1
        log.info("OSC: refused %s from %s:%d: %s", address or "?", sender[0], sender[1], reason)
        self.on_bad(address, reason, sender, now)

    # -- sending ----------------------------------------------------------------------------------
    def build(self, address: str, args: Sequence[OscArg]) -> bytes:
        """The datagram of an outbound message, args coerced to the spec's types (ValueError if wrong)."""
        message = self.spec.message(address, "outbound")
        if message is None:
            raise ValueError(f"{address}: not an outbound address of bridge/osc_spec.json")
        result = self.spec.validate(address, args, "outbound")
        if not result.ok:
            raise ValueError(result.reason)
        builder = OscMessageBuilder(address)
        kinds = [arg.type for arg in message.args]
        if message.repeat:
            groups = (len(result.args) - len(kinds)) // len(message.repeat)
            kinds += [arg.type for arg in message.repeat] * groups
        for value, kind in zip(result.args, kinds, strict=True):
            builder.add_arg(value, kind)
        return builder.build().dgram

    def send(self, address: str, args: Sequence[OscArg], target: Sender) -> bool:
        """Send one outbound message to `target` from the listening socket.

        A message that breaks the contract raises ValueError (a bug in the caller); a network error
        is logged and counted and returns False (the daemon goes on).
        """
        datagram = self.build(address, args)
        return self.send_datagram(datagram, target)

    def send_many(self, address: str, args: Sequence[OscArg], targets: Iterable[Sender]) -> int:
        """Send one message to several targets (built once); returns how many sends succeeded."""
        datagram = self.build(address, args)
        return sum(self.send_datagram(datagram, target) for target in targets)

    def send_datagram(self, datagram: bytes, target: Sender) -> bool:
        sock = self._socket
        if sock is None:
            raise RuntimeError("OSC server not started")
        try:
            sock.sendto(datagram, (target[0], int(target[1])))
            return True
        except OSError as error:
            self.send_errors += 1
            log.warning("OSC: could not send to %s:%s: %s", target[0], target[1], error)
            return False
