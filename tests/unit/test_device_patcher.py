"""The device patcher as a graph, and the OSC addresses of the device JS against the daemon's spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from musebridge.device_build import (
    KNOWN_ARITY,
    REQUIRED_OBJECTS,
    boxes_by_id,
    js_functions,
    js_io_counts,
    js_osc_addresses,
    object_class,
    parameter_longname,
    validate_patcher,
)

ROOT = Path(__file__).resolve().parents[2]
PATCHER = json.loads((ROOT / "max_for_live" / "MuseBridge.maxpat").read_text(encoding="utf-8"))
JS = (ROOT / "max_for_live" / "musebridge.js").read_text(encoding="utf-8")
SPEC = json.loads((ROOT / "bridge" / "osc_spec.json").read_text())


def test_the_committed_patcher_has_no_graph_problems() -> None:
    assert validate_patcher(PATCHER, JS) == []


def test_ids_are_unique_and_every_line_joins_existing_ports() -> None:
    boxes = [entry["box"] for entry in PATCHER["patcher"]["boxes"]]
    ids = [box["id"] for box in boxes]
    assert len(ids) == len(set(ids))
    by_id = boxes_by_id(PATCHER)
    assert PATCHER["patcher"]["lines"], "a device without patch cords does nothing"
    for entry in PATCHER["patcher"]["lines"]:
        (src, outlet), (dst, inlet) = entry["patchline"]["source"], entry["patchline"]["destination"]
        assert 0 <= outlet < by_id[src]["numoutlets"] and 0 <= inlet < by_id[dst]["numinlets"]


def test_required_objects_and_the_midi_path_are_there() -> None:
    classes = {object_class(box) for box in boxes_by_id(PATCHER).values()}
    assert set(REQUIRED_OBJECTS) <= classes
    edges = {
        (
            object_class(boxes_by_id(PATCHER)[e["patchline"]["source"][0]]),
            e["patchline"]["source"][1],
            object_class(boxes_by_id(PATCHER)[e["patchline"]["destination"][0]]),
            e["patchline"]["destination"][1],
        )
        for e in PATCHER["patcher"]["lines"]
    }
    assert ("midiin", 0, "midiparse", 0) in edges
    assert ("js", 1, "midiformat", 0) in edges  # notes out
    assert ("midiformat", 0, "midiout", 0) in edges
    assert ("js", 0, "udpsend", 0) in edges and ("udpreceive", 0, "js", 0) in edges
    assert {("midiparse", i, "midiformat", i) for i in range(1, 6)} <= edges  # CC, bend... pass untouched


def test_the_js_box_matches_the_script() -> None:
    (js_box,) = [box for box in boxes_by_id(PATCHER).values() if object_class(box) == "js"]
    assert (js_box["numinlets"], js_box["numoutlets"]) == js_io_counts(JS)
    assert {"init", "note_in", "anything", "notifydeleted", "to_clip", "panic"} <= js_functions(JS)


def test_parameters_are_named_live_parameters_with_the_js_tables() -> None:
    boxes = boxes_by_id(PATCHER)
    named = {parameter_longname(box): box for box in boxes.values() if parameter_longname(box)}
    expected = {
        "Mode",
        "Genre",
        "Temperature",
        "Bars",
        "Position",
        "Capture A",
        "Capture B",
        "Generate to Clip",
    }
    assert expected | {"OSC Port", "Panic"} <= set(named)
    modes = named["Mode"]["saved_attribute_attributes"]["valueof"]["parameter_enum"]
    assert modes == SPEC["inbound"]["/musebridge/mode"]["choices"]["mode"]
    genres = named["Genre"]["saved_attribute_attributes"]["valueof"]["parameter_enum"]
    assert f"var GENRES = {json.dumps(genres)};" in JS


def test_every_osc_address_of_the_js_is_in_the_spec() -> None:
    used = js_osc_addresses(JS)
    known = set(SPEC["inbound"]) | set(SPEC["outbound"])
    assert used and used <= known, sorted(used - known)
    for needed in ("/musebridge/note", "/musebridge/transport", "/musebridge/clip", "/musebridge/hello"):
        assert needed in used and needed in SPEC["inbound"]
    for handled in (
        "/musebridge/out/note",
        "/musebridge/out/clear",
        "/musebridge/out/panic",
        "/musebridge/out/clip",
    ):
        assert handled in used and handled in SPEC["outbound"]


def _broken(change: Any) -> list[str]:
    patcher = copy.deepcopy(PATCHER)
    change(patcher["patcher"])
    return validate_patcher(patcher, JS)


def _box(root: dict[str, Any], box_id: str) -> dict[str, Any]:
    return next(entry["box"] for entry in root["boxes"] if entry["box"]["id"] == box_id)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["boxes"].append(copy.deepcopy(r["boxes"][0])), "duplicate box id"),
        (
            lambda r: r["lines"].append(
                {"patchline": {"source": ["obj-ghost", 0], "destination": ["obj-js", 0]}}
            ),
            "missing box",
        ),
        (
            lambda r: r["lines"].append(
                {"patchline": {"source": ["obj-midiin", 3], "destination": ["obj-js", 0]}}
            ),
            "outlet 3",
        ),
        (
            lambda r: r["lines"].append(
                {"patchline": {"source": ["obj-js", 0], "destination": ["obj-midiout", 1]}}
            ),
            "inlet 1",
        ),
        (
            lambda r: r["boxes"].remove(next(e for e in r["boxes"] if e["box"]["id"] == "obj-udpsend")),
            "required object udpsend",
        ),
        (lambda r: _box(r, "obj-js").update(numoutlets=3, outlettype=["", "", ""]), "the JS declares"),
        (lambda r: _box(r, "obj-prepend-mode").update(text="prepend moed"), "no such function"),
        (lambda r: _box(r, "obj-midiparse").update(numoutlets=7, outlettype=[""] * 7), "Max has (1, 8)"),
        (
            lambda r: _box(r, "obj-genre")["saved_attribute_attributes"]["valueof"].update(
                parameter_longname="Mode"
            ),
            "parameter name 'Mode' used by",
        ),
        (lambda r: r.update(amxdtype=0), "amxdtype"),
    ],
)
def test_the_graph_check_catches_broken_patchers(change: Any, expected: str) -> None:
    problems = _broken(change)
    assert any(expected in problem for problem in problems), problems


def test_arity_table_holds_the_classes_the_patcher_uses() -> None:
    used = {object_class(box) for box in boxes_by_id(PATCHER).values()} - {"js"}
    assert used <= set(KNOWN_ARITY), sorted(used - set(KNOWN_ARITY))
