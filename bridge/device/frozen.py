"""Frozen Max for Live devices: the `mx@c` archive that holds a device's patcher and its dependencies.

Pure functions, bytes in and bytes out. A frozen .amxd is the usual chunk container (see build.py)
whose `meta` flags are 7 and whose `ptch` payload is this archive instead of patcher JSON. Layout
(all integers big-endian), as read back from Ableton's frozen test device and as Ableton's maxdiff
parses it (github.com/Ableton/maxdevtools, maxdiff/freezing_utils.py):

    header   b"mx@c"  uint32 header size (16)  uint64 offset of the directory
    data     the entries' bytes, one after the other, from byte 16
    b"dlst"  uint32 size of the whole directory (these 8 bytes included), then one "dire" per entry:
    b"dire"  uint32 size of the entry (8 included), then fields, each b"tag" uint32 size (8 included):
             type  4 bytes, the file kind ("JSON" for a patcher, "TEXT" for a script)
             fnam  the file name, NUL-terminated, NUL-padded to a multiple of 4 bytes
             sz32  uint32 size of the data      of32  uint32 offset of the data in the archive
             vers  uint32 0                     flag  uint32 (17 for the device's own patcher, 0 else)
             mdat  uint32 modification time, seconds since 1904-01-01 (Mac HFS+)

The first entry is the device itself (its patcher JSON followed by one NUL byte, named after the
unfrozen device file); the others are the files it loads. Max itself is closed source: the meaning
of `flag` bits other than 17 = "the device" and of `vers` is not documented anywhere public.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MXC_MAGIC = b"mx@c"
HEADER_SIZE = 16
FROZEN_META_FLAGS = 7  # the `meta` chunk of a frozen device (an unfrozen one: 0 or 1)
DEVICE_ENTRY_FLAG = 17
HFS_EPOCH_OFFSET = 2_082_844_800  # seconds from 1904-01-01 to 1970-01-01
# A fixed modification time keeps builds byte-reproducible (2025-01-01 00:00 UTC).
DEFAULT_MDAT = 1_735_689_600 + HFS_EPOCH_OFFSET


class FrozenError(ValueError):
    """Bytes that are not a readable mx@c archive."""


@dataclass(frozen=True, slots=True)
class FrozenEntry:
    """One file in a frozen device's archive."""

    name: str
    kind: bytes  # 4 bytes, e.g. b"JSON", b"TEXT"
    data: bytes
    flag: int = 0
    mdat: int = DEFAULT_MDAT  # seconds since 1904-01-01 UTC
    vers: int = 0


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack(">I", 8 + len(payload)) + payload


def _padded_name(name: str) -> bytes:
    raw = name.encode("utf-8") + b"\x00"
    return raw + b"\x00" * (-len(raw) % 4)


def pack_archive(entries: list[FrozenEntry]) -> bytes:
    """The mx@c archive holding `entries` in this order (the device's own patcher first)."""
    if not entries:
        raise FrozenError("an archive needs at least the device entry")
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise FrozenError(f"duplicate file names in the archive: {names}")
    blob = bytearray()
    directory = bytearray()
    for entry in entries:
        if len(entry.kind) != 4:
            raise FrozenError(f"{entry.name}: the type must be 4 bytes, not {entry.kind!r}")
        if not entry.name or "/" in entry.name or "\x00" in entry.name:
            raise FrozenError(f"bad file name {entry.name!r}")
        offset = HEADER_SIZE + len(blob)
        blob += entry.data
        fields = (
            _field(b"type", entry.kind)
            + _field(b"fnam", _padded_name(entry.name))
            + _field(b"sz32", struct.pack(">I", len(entry.data)))
            + _field(b"of32", struct.pack(">I", offset))
            + _field(b"vers", struct.pack(">I", entry.vers))
            + _field(b"flag", struct.pack(">I", entry.flag))
            + _field(b"mdat", struct.pack(">I", entry.mdat))
        )
        directory += _field(b"dire", fields)
    header = MXC_MAGIC + struct.pack(">IQ", HEADER_SIZE, HEADER_SIZE + len(blob))
    return header + bytes(blob) + _field(b"dlst", bytes(directory))


def _fields(data: bytes, where: str) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {}
    offset = 0
    while offset < len(data):
        if offset + 8 > len(data):
            raise FrozenError(f"{where}: truncated field header at byte {offset}")
        tag = data[offset : offset + 4]
        (size,) = struct.unpack_from(">I", data, offset + 4)
        if size < 8 or offset + size > len(data):
            raise FrozenError(f"{where}: field {tag!r} claims {size} bytes")
        fields[tag] = data[offset + 8 : offset + size]
        offset += size
    return fields


def _uint(fields: dict[bytes, bytes], tag: bytes, where: str) -> int:
    if tag not in fields or len(fields[tag]) != 4:
        raise FrozenError(f"{where}: field {tag.decode()!r} missing or not 4 bytes")
    return int.from_bytes(fields[tag], "big")


def unpack_archive(payload: bytes) -> list[FrozenEntry]:
    """The entries of an mx@c archive, in directory order; FrozenError says what is wrong."""
    if len(payload) < HEADER_SIZE or not payload.startswith(MXC_MAGIC):
        raise FrozenError("not an mx@c archive")
    header_size, directory_at = struct.unpack_from(">IQ", payload, 4)
    if header_size != HEADER_SIZE:
        raise FrozenError(f"header size {header_size}, expected {HEADER_SIZE}")
    if not HEADER_SIZE <= directory_at <= len(payload) - 8:
        raise FrozenError(f"directory offset {directory_at} is outside the {len(payload)} bytes")
    directory = payload[directory_at:]
    if directory[:4] != b"dlst":
        raise FrozenError("the directory does not start with 'dlst'")
    (size,) = struct.unpack_from(">I", directory, 4)
    if size != len(directory):
        raise FrozenError(f"the directory claims {size} bytes, {len(directory)} follow")
    entries: list[FrozenEntry] = []
    offset = 8
    while offset < len(directory):
        if directory[offset : offset + 4] != b"dire":
            raise FrozenError(f"directory byte {offset}: expected 'dire'")
        (entry_size,) = struct.unpack_from(">I", directory, offset + 4)
        if entry_size < 8 or offset + entry_size > len(directory):
            raise FrozenError(f"directory byte {offset}: entry claims {entry_size} bytes")
        where = f"entry {len(entries)}"
        fields = _fields(directory[offset + 8 : offset + entry_size], where)
        if b"fnam" not in fields or b"type" not in fields:
            raise FrozenError(f"{where}: no file name or type")
        name = fields[b"fnam"].rstrip(b"\x00").decode("utf-8")
        start, length = _uint(fields, b"of32", name), _uint(fields, b"sz32", name)
        if start < HEADER_SIZE or start + length > directory_at:
            raise FrozenError(f"{name}: data at {start}+{length} is outside the data area")
        entries.append(
            FrozenEntry(
                name=name,
                kind=fields[b"type"],
                data=payload[start : start + length],
                flag=_uint(fields, b"flag", name),
                mdat=_uint(fields, b"mdat", name),
                vers=_uint(fields, b"vers", name),
            )
        )
        offset += entry_size
    if not entries:
        raise FrozenError("the archive lists no files")
    return entries
