"""The device patcher as a graph, and the OSC addresses of the device JS against the daemon's spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from musebridge.device.build import (
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
    assert ("midiin", 0, "midiselect", 0) in edges
    assert ("js", 1, "midiformat", 0) in edges  # generated notes out
    assert ("midiformat", 0, "midiout", 0) in edges
    assert ("js", 0, "udpsend", 0) in edges and ("udpreceive", 0, "js", 0) in edges
    assert ("midiselect", 7, "midiout", 0) in edges  # CC, 14-bit bend...: raw bytes, untouched
    assert ("js", 5, "gate", 0) in edges  # the script opens and closes the thru gate
    assert not [edge for edge in edges if edge[0] == "js" and edge[2] == "midiout"]


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


def _edges_of(box_id: str) -> tuple[set[tuple[str, int, int]], set[tuple[str, int, int]]]:
    """Lines into `box_id` as (source, outlet, inlet) and out of it as (destination, outlet, inlet)."""
    into, out = set(), set()
    for entry in PATCHER["patcher"]["lines"]:
        (src, outlet), (dst, inlet) = entry["patchline"]["source"], entry["patchline"]["destination"]
        if dst == box_id:
            into.add((src, outlet, inlet))
        if src == box_id:
            out.add((dst, outlet, inlet))
    return into, out


def test_loop_and_mutate_are_live_parameters_wired_to_the_js() -> None:
    boxes = boxes_by_id(PATCHER)
    named = {parameter_longname(box): box for box in boxes.values() if parameter_longname(box)}
    loop, mutate = named["Loop"], named["Mutate"]
    assert (object_class(loop), object_class(mutate)) == ("live.toggle", "live.button")
    loop_value = loop["saved_attribute_attributes"]["valueof"]
    assert loop_value["parameter_type"] == 2 and loop_value["parameter_enum"] == ["off", "on"]
    assert loop_value["parameter_mmax"] == 1 and loop_value.get("parameter_invisible", 0) == 0  # automatable
    # saved with the set and restored like the other switches (Monitor): initial value enabled, off
    monitor_value = named["Monitor"]["saved_attribute_attributes"]["valueof"]
    assert loop_value["parameter_initial_enable"] == monitor_value["parameter_initial_enable"] == 1
    assert loop_value["parameter_initial"] == [0]
    mutate_value = mutate["saved_attribute_attributes"]["valueof"]
    assert mutate_value["parameter_type"] == 2 and mutate_value["parameter_mmax"] == 1
    assert not mutate_value.get("parameter_initial_enable"), "a saved press must not mutate on load"
    for box in (loop, mutate):
        assert box.get("presentation") == 1 and box.get("presentation_rect")
        assert PATCHER["patcher"]["parameters"][box["id"]][0] == parameter_longname(box)
    banks = PATCHER["patcher"]["parameters"]["parameterbanks"].values()
    assert any(bank["parameters"][:2] == ["Loop", "Mutate"] for bank in banks)

    loop_in, loop_out = _edges_of(loop["id"])
    ((prepend_loop, outlet, inlet),) = loop_out
    assert (boxes[prepend_loop]["text"], outlet, inlet) == ("prepend loop", 0, 0)
    assert (prepend_loop, 0, 0) in _edges_of("obj-js")[0]
    assert loop_in == {("obj-js", 4, 0)}, "the daemon's loop feedback reaches the toggle ('set': no output)"
    ((prepend_mutate, outlet, inlet),) = _edges_of(mutate["id"])[1]
    assert (boxes[prepend_mutate]["text"], outlet, inlet) == ("prepend mutate", 0, 0)
    assert (prepend_mutate, 0, 0) in _edges_of("obj-js")[0]
    assert {"loop", "mutate"} <= js_functions(JS)
    assert 'outlet(4, "set", ' in JS


def test_every_osc_address_of_the_js_is_in_the_spec() -> None:
    used = js_osc_addresses(JS)
    known = set(SPEC["inbound"]) | set(SPEC["outbound"])
    assert used and used <= known, sorted(used - known)
    for needed in (
        "/musebridge/note_on",
        "/musebridge/note_off",
        "/musebridge/transport",
        "/musebridge/clip",
        "/musebridge/hello",
        "/musebridge/loop",
        "/musebridge/mutate",
    ):
        assert needed in used and needed in SPEC["inbound"]
    for handled in (
        "/musebridge/out/note",
        "/musebridge/out/clear",
        "/musebridge/out/panic",
        "/musebridge/out/clip",
        "/musebridge/loop",
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
        (lambda r: _box(r, "obj-midiselect").update(numoutlets=7, outlettype=[""] * 7), "Max has (1, 8)"),
        (lambda r: _box(r, "obj-note-split").update(numoutlets=3, outlettype=[""] * 3), "Max has (1, 2)"),
        (lambda r: _box(r, "obj-thru-gate").update(text="gaet 1 1"), "not in the Max reference"),
        (
            lambda r: r["lines"].remove(
                {"patchline": {"source": ["obj-midiselect", 7], "destination": ["obj-midiout", 0]}}
            ),
            "raw outlet",
        ),
        (
            lambda r: r["lines"].remove(
                {"patchline": {"source": ["obj-note-on-rev", 0], "destination": ["obj-midiformat-thru", 0]}}
            ),
            "played notes do not reach midiout",
        ),
        (
            lambda r: r["lines"].remove(
                {"patchline": {"source": ["obj-note-off", 0], "destination": ["obj-note-off-format", 0]}}
            ),
            "note-offs do not reach midiout",
        ),
        (lambda r: r["project"].update(amxdtype=0), "project amxdtype"),
        (lambda r: r.pop("project"), "no 'project' block"),
        (lambda r: r.update(amxdtype=1835887981), "belongs in the project block"),
        (lambda r: r["dependency_cache"][0].pop("bootpath"), "lacks name, bootpath or type"),
        (lambda r: r.update(dependency_cache=[]), "musebridge.js is loaded by a js box"),
        (
            lambda r: _box(r, "obj-genre")["saved_attribute_attributes"]["valueof"].update(
                parameter_longname="Mode"
            ),
            "parameter name 'Mode' used by",
        ),
        (lambda r: _box(r, "obj-prepend-loop").update(text="prepend lop"), "no such function"),
        (lambda r: _box(r, "obj-loop").update(numoutlets=2, outlettype=["", ""]), "Max has (1, 1)"),
        (
            lambda r: r["boxes"].remove(next(e for e in r["boxes"] if e["box"]["id"] == "obj-mutate")),
            "parameter 'Mutate' is missing",
        ),
    ],
)
def test_the_graph_check_catches_broken_patchers(change: Any, expected: str) -> None:
    problems = _broken(change)
    assert any(expected in problem for problem in problems), problems


def test_arity_table_holds_the_classes_the_patcher_uses() -> None:
    used = {object_class(box) for box in boxes_by_id(PATCHER).values()} - {"js", "t", "gate", "route"}
    assert used <= set(KNOWN_ARITY), sorted(used - set(KNOWN_ARITY))


def test_the_patcher_carries_the_project_block_max_writes() -> None:
    root = PATCHER["patcher"]
    assert "amxdtype" not in root and root["project"]["amxdtype"] == int.from_bytes(b"mmmm", "big")
    assert root["project"]["contents"]["code"] == {"musebridge.js": {"kind": "javascript", "local": 1}}
    (script,) = root["dependency_cache"]
    assert script["name"] == "musebridge.js" and script["type"] == "TEXT" and script["bootpath"]


def test_udpreceive_starts_on_no_fixed_port() -> None:
    # A fixed creation port would collide between two instances before their saved Track moves them.
    (receiver,) = [box for box in boxes_by_id(PATCHER).values() if object_class(box) == "udpreceive"]
    assert receiver["text"] == "udpreceive 0"


def _values() -> dict[str, dict[str, Any]]:
    return {
        parameter_longname(box): box["saved_attribute_attributes"]["valueof"]
        for box in boxes_by_id(PATCHER).values()
        if parameter_longname(box)
    }


def test_parameter_types_and_ranges_follow_the_production_guidelines() -> None:
    values = _values()
    for name, value in values.items():
        kind = value["parameter_type"]
        assert kind in (0, 1, 2), name
        assert value.get("parameter_invisible", 0) in (0, 1), f"{name} is Hidden: not saved with the set"
        assert "parameter_modmode" in value, name
        if kind == 1:  # Live's Int parameters hold 0..255
            assert 0 <= value.get("parameter_mmin", 0) <= value["parameter_mmax"] <= 255, name
        if kind == 2:
            assert value["parameter_mmax"] == len(value["parameter_enum"]) - 1, name
    port = values["OSC Port"]  # a whole number beyond 255: Float shown with the Int unit style
    assert (port["parameter_type"], port["parameter_unitstyle"]) == (0, 0)
    assert (port["parameter_mmin"], port["parameter_mmax"], port["parameter_initial"]) == (
        1024.0,
        65518.0,
        [9000.0],
    )
    for name in ("Temperature", "Position"):
        assert (values[name]["parameter_type"], values[name]["parameter_unitstyle"]) == (0, 1)
        assert values[name]["parameter_modmode"] == 2  # Bipolar for Float
    assert values["Bars"]["parameter_type"] == 1 and values["Bars"]["parameter_modmode"] == 4  # Absolute
    # the performance controls are automatable; the connection settings are saved, not automated
    automated = {name for name, value in values.items() if value["parameter_invisible"] == 0}
    assert automated == set(values) - {"OSC Port", "Track"}
    assert values["OSC Port"]["parameter_invisible"] == values["Track"]["parameter_invisible"] == 1


def _valueof(root: dict[str, Any], box_id: str) -> dict[str, Any]:
    return _box(root, box_id)["saved_attribute_attributes"]["valueof"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: _valueof(r, "obj-osc-port").update(parameter_type=1), "leaves Live's 0..255"),
        (lambda r: _valueof(r, "obj-bars").update(parameter_mmax=300.0), "leaves Live's 0..255"),
        (lambda r: _valueof(r, "obj-loop").update(parameter_invisible=2), "not saved with the set"),
        (lambda r: _valueof(r, "obj-mode").update(parameter_mmax=7), "for 5 items"),
        (lambda r: _valueof(r, "obj-temperature").update(parameter_initial=[3.0]), "outside"),
        (lambda r: _valueof(r, "obj-position").pop("parameter_modmode"), "modulation mode"),
        (lambda r: _valueof(r, "obj-position").pop("parameter_unitstyle"), "without a unit style"),
        (lambda r: _valueof(r, "obj-genre").update(parameter_type=3), "type 3"),
    ],
)
def test_the_parameter_check_catches_what_live_would_lose(change: Any, expected: str) -> None:
    problems = _broken(change)
    assert any(expected in problem for problem in problems), problems
