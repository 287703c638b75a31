"""The .amxd container, and the committed device agreeing with its sources and the OSC spec."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from musebridge.device.build import (
    AmxdError,
    build_amxd,
    device_spec,
    embed_spec,
    embedded_spec,
    pack_amxd,
    unpack_amxd,
)

ROOT = Path(__file__).resolve().parents[2]
DEVICE_DIR = ROOT / "max_for_live"
SPEC = json.loads((ROOT / "bridge" / "osc_spec.json").read_text())
PATCHER = {"patcher": {"boxes": [], "lines": [], "amxdtype": 1835887981}}


def test_container_layout_is_ampf_meta_ptch_with_little_endian_sizes() -> None:
    text = json.dumps(PATCHER).encode()
    data = pack_amxd(text)
    assert data[:4] == b"ampf" and struct.unpack("<I", data[4:8]) == (4,) and data[8:12] == b"mmmm"
    assert data[12:16] == b"meta" and struct.unpack("<II", data[16:24]) == (4, 0)
    assert data[24:28] == b"ptch" and struct.unpack("<I", data[28:32]) == (len(text) + 1,)
    assert data[32:] == text + b"\x00"


def test_round_trip_keeps_type_flags_and_json() -> None:
    text = json.dumps(PATCHER, indent="\t").encode()
    container = unpack_amxd(pack_amxd(text, device_type=b"iiii", meta_flags=7))
    assert (container.device_type, container.meta_flags, container.patcher_json) == (b"iiii", 7, text)
    assert container.patcher == PATCHER


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "does not start with 'ampf'"),
        (pack_amxd(b"{}")[:24], "missing chunk 'ptch'"),
        (b"RIFF" + struct.pack("<I", 4) + b"mmmm", "does not start with 'ampf'"),
        (pack_amxd(b"{}")[:-3], "claims"),
        (pack_amxd(b"{}")[:30], "truncated"),
        (pack_amxd(b"{}")[:-1] + b"}", "does not end with NUL"),
        (pack_amxd(b"{}").replace(b"mmmm", b"zzzz"), "unknown device type"),
        (pack_amxd(b"{}").replace(b"{}\x00", b"{]\x00"), "not JSON"),
    ],
)
def test_bad_containers_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(AmxdError, match=message):
        unpack_amxd(data)


def test_frozen_and_bad_inputs_to_the_writer_are_refused() -> None:
    frozen = b"ampf" + struct.pack("<I", 4) + b"mmmm" + b"meta" + struct.pack("<II", 4, 0)
    frozen += b"ptch" + struct.pack("<I", 8) + b"mx@c\x00\x00\x00\x10"
    with pytest.raises(AmxdError, match="frozen"):
        unpack_amxd(frozen)
    with pytest.raises(AmxdError, match="not JSON"):
        pack_amxd(b"{not json")
    with pytest.raises(AmxdError, match="device type"):
        pack_amxd(b"{}", device_type=b"xxxx")


def test_committed_device_is_the_build_of_the_committed_patcher() -> None:
    patcher_text = (DEVICE_DIR / "MuseBridge.maxpat").read_text(encoding="utf-8")
    committed = (DEVICE_DIR / "MuseBridge.amxd").read_bytes()
    assert committed == build_amxd(patcher_text), "run `musebridge device build` and commit MuseBridge.amxd"
    container = unpack_amxd(committed)
    assert container.device_type == b"mmmm"
    assert container.patcher == json.loads(patcher_text)


def test_device_js_carries_the_current_osc_spec() -> None:
    js_text = (DEVICE_DIR / "musebridge.js").read_text(encoding="utf-8")
    assert embedded_spec(js_text) == device_spec(SPEC), (
        "run `musebridge device build` and commit musebridge.js"
    )
    assert embed_spec(js_text, SPEC) == js_text


def test_embedding_follows_a_changed_spec_and_needs_one_block() -> None:
    js_text = (DEVICE_DIR / "musebridge.js").read_text(encoding="utf-8")
    grown = json.loads(json.dumps(SPEC))
    grown["outbound"]["/musebridge/extra"] = {"args": [["x", "f"]], "repeat": [["y", "i"]], "doc": ""}
    rebuilt = embedded_spec(embed_spec(js_text, grown))
    assert rebuilt["outbound"]["/musebridge/extra"] == {"args": "f", "repeat": "i"}
    with pytest.raises(ValueError, match="exactly one"):
        embed_spec("var x = 1;", SPEC)
