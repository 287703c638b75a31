"""The frozen device: the mx@c archive layout, the committed frozen .amxd read back, refusals."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from musebridge.commands.device import frozen_device
from musebridge.device.build import (
    AmxdError,
    build_frozen_amxd,
    read_chunks,
    unpack_amxd,
    unpack_frozen_amxd,
)
from musebridge.device.frozen import (
    DEFAULT_MDAT,
    FrozenEntry,
    FrozenError,
    pack_archive,
    unpack_archive,
)

ROOT = Path(__file__).resolve().parents[2]
DEVICE_DIR = ROOT / "max_for_live"
PATCHER_TEXT = (DEVICE_DIR / "MuseBridge.maxpat").read_text(encoding="utf-8")
SCRIPT = (DEVICE_DIR / "musebridge.js").read_bytes()
FROZEN = (DEVICE_DIR / "MuseBridge.frozen.amxd").read_bytes()


def test_the_committed_frozen_device_is_the_build_of_the_committed_sources() -> None:
    assert FROZEN == frozen_device(PATCHER_TEXT, SCRIPT.decode("utf-8")), "run `musebridge device build`"


def test_the_frozen_device_reads_back_with_the_patcher_and_the_script_byte_identical() -> None:
    device_type, meta_flags, payload = read_chunks(FROZEN)
    assert (device_type, meta_flags, payload[:4]) == (b"mmmm", 7, b"mx@c")
    _type, entries = unpack_frozen_amxd(FROZEN)
    assert [(e.name, e.kind, e.flag) for e in entries] == [
        ("MuseBridge.amxd", b"JSON", 17),
        ("musebridge.js", b"TEXT", 0),
    ]
    device, script = entries
    assert script.data == SCRIPT
    assert device.data == PATCHER_TEXT.encode("utf-8") + b"\x00"
    assert json.loads(device.data[:-1]) == json.loads(PATCHER_TEXT)
    # the sizes and offsets in the directory are those of the data that follows the header
    assert payload[16 : 16 + len(device.data)] == device.data
    assert payload[16 + len(device.data) : 16 + len(device.data) + len(script.data)] == script.data
    # and the unfrozen reader refuses it with a reason, not a crash
    with pytest.raises(AmxdError, match="frozen"):
        unpack_amxd(FROZEN)


def test_archive_layout_field_by_field() -> None:
    archive = pack_archive(
        [FrozenEntry("a.amxd", b"JSON", b"{}\x00", flag=17), FrozenEntry("b.js", b"TEXT", b"x")]
    )
    magic, header, directory_at = struct.unpack_from(">4sIQ", archive)
    assert (magic, header, directory_at) == (b"mx@c", 16, 16 + 3 + 1)
    assert archive[16:20] == b"{}\x00x"
    directory = archive[directory_at:]
    assert directory[:4] == b"dlst" and struct.unpack_from(">I", directory, 4) == (len(directory),)
    first = directory[8:]
    assert first[:4] == b"dire"
    (entry_size,) = struct.unpack_from(">I", first, 4)
    fields = first[8:entry_size]
    assert fields[:12] == b"type" + struct.pack(">I", 12) + b"JSON"
    assert fields[12:28] == b"fnam" + struct.pack(">I", 16) + b"a.amxd\x00\x00"  # NUL, padded to 4
    assert fields[28:] == (
        b"sz32" + struct.pack(">II", 12, 3)
        + b"of32" + struct.pack(">II", 12, 16)
        + b"vers" + struct.pack(">II", 12, 0)
        + b"flag" + struct.pack(">II", 12, 17)
        + b"mdat" + struct.pack(">II", 12, DEFAULT_MDAT)
    )  # fmt: skip
    assert entry_size == 8 + 12 + 16 + 5 * 12


def test_round_trip_keeps_every_entry() -> None:
    entries = [
        FrozenEntry("Dev.amxd", b"JSON", b'{"patcher": {}}\n\x00', flag=17, mdat=3_600_000_000),
        FrozenEntry("tool.js", b"TEXT", "é // ünïcode\n".encode()),
        FrozenEntry("icon.svg", b"svg ", b"<svg/>"),
        FrozenEntry("empty.txt", b"TEXT", b""),
    ]
    assert unpack_archive(pack_archive(entries)) == entries


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda a: b"mx@d" + a[4:], "not an mx@c archive"),
        (lambda a: a[:4] + struct.pack(">I", 20) + a[8:], "header size"),
        (lambda a: a[:8] + struct.pack(">Q", len(a) + 5) + a[16:], "outside"),
        (lambda a: a[:-1], "claims"),
        (lambda a: a.replace(b"dlst", b"dlsx"), "'dlst'"),
        (lambda a: a.replace(b"dire", b"dirf", 1), "expected 'dire'"),
        (
            lambda a: a.replace(b"of32" + struct.pack(">II", 12, 16), b"of32" + struct.pack(">II", 12, 9)),
            "outside",
        ),
    ],
)
def test_broken_archives_are_refused_with_a_reason(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    archive = pack_archive([FrozenEntry("a.amxd", b"JSON", b"{}\x00", flag=17)])
    with pytest.raises(FrozenError, match=message):
        unpack_archive(mangle(archive))


def test_the_writer_refuses_what_max_could_not_load() -> None:
    with pytest.raises(FrozenError, match="at least"):
        pack_archive([])
    with pytest.raises(FrozenError, match="duplicate"):
        pack_archive([FrozenEntry("a", b"TEXT", b""), FrozenEntry("a", b"TEXT", b"")])
    with pytest.raises(FrozenError, match="4 bytes"):
        pack_archive([FrozenEntry("a", b"JS", b"")])
    with pytest.raises(AmxdError, match="lists"):
        build_frozen_amxd(PATCHER_TEXT, {})  # the script the patcher loads is missing
    with pytest.raises(AmxdError, match="lists"):
        build_frozen_amxd(PATCHER_TEXT, {"musebridge.js": SCRIPT, "extra.js": b""})
    with pytest.raises(AmxdError, match="not frozen"):
        unpack_frozen_amxd((DEVICE_DIR / "MuseBridge.amxd").read_bytes())
