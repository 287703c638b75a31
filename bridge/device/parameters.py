"""Live parameters of a Max for Live patcher, checked against Ableton's production guidelines.

Sources: Ableton's "Max for Live Production Guidelines" (github.com/Ableton/maxdevtools,
m4l-production-guidelines) and Cycling '74's "Device Parameters in Max for Live": Live stores an Int
parameter in 0..255 only, so a whole number beyond that is a Float parameter shown with the Int unit
style; a parameter is saved with the set unless it is Hidden; Ableton gives Float parameters the
Bipolar and Int parameters the Absolute clip modulation mode.

The numbers are the ones Max saves in `saved_attribute_attributes.valueof` (defaults as the
maxdevtools object table lists them for live.dial, live.menu, live.gain~ ...).
"""

from __future__ import annotations

from typing import Any

PARAMETER_TYPES = {0: "Float", 1: "Int", 2: "Enum", 3: "Blob", 4: "File"}
UNIT_STYLE_INT, UNIT_STYLE_FLOAT = 0, 1  # then Time, Hertz, deciBel, %, Pan, Semitones, MIDI, Custom, Native
VISIBILITY = {0: "Automated and Stored", 1: "Stored Only", 2: "Hidden"}
MODULATION_MODES = {0: "None", 1: "Unipolar", 2: "Bipolar", 3: "Additive", 4: "Absolute"}
INT_RANGE = (0, 255)  # what Live's Int parameters hold


def _value_of(box: dict[str, Any]) -> dict[str, Any]:
    return box.get("saved_attribute_attributes", {}).get("valueof", {})


def parameter_range(box: dict[str, Any]) -> tuple[float, float]:
    """(minimum, maximum) of a Float or Int parameter; Max's defaults when unset (0, 127)."""
    value = _value_of(box)
    return float(value.get("parameter_mmin", 0.0)), float(value.get("parameter_mmax", 127.0))


def parameter_problems(box_id: str, box: dict[str, Any]) -> list[str]:
    """What is wrong with one parameter-enabled box, in words (empty: nothing found)."""
    value = _value_of(box)
    name = value.get("parameter_longname", box_id)
    where = f"parameter {name!r}"
    problems: list[str] = []
    kind = value.get("parameter_type")
    if kind not in (0, 1, 2):
        return [f"{where}: type {kind!r}; the device uses Float (0), Int (1) or Enum (2)"]
    visibility = value.get("parameter_invisible", 0)
    if visibility not in (0, 1):
        problems.append(
            f"{where}: visibility {VISIBILITY.get(visibility, visibility)}: not saved with the set"
        )
    if "parameter_modmode" not in value:
        problems.append(f"{where}: no clip modulation mode (parameter_modmode)")
    if kind == 2:
        enum = value.get("parameter_enum")
        if not isinstance(enum, list) or not enum:
            return [*problems, f"{where}: an Enum without items"]
        if value.get("parameter_mmax") != len(enum) - 1:
            problems.append(f"{where}: parameter_mmax {value.get('parameter_mmax')} for {len(enum)} items")
        low, high = 0.0, float(len(enum) - 1)
    else:
        low, high = parameter_range(box)
        if low > high:
            problems.append(f"{where}: minimum {low} above maximum {high}")
        if kind == 1 and not (INT_RANGE[0] <= low and high <= INT_RANGE[1]):
            problems.append(
                f"{where}: Int range {low:g}..{high:g} leaves Live's 0..255;"
                " use Float with the Int unit style"
            )
        if kind == 0 and "parameter_unitstyle" not in value:
            problems.append(f"{where}: a Float parameter without a unit style")
    if value.get("parameter_initial_enable"):
        initial = value.get("parameter_initial")
        if not isinstance(initial, list) or len(initial) != 1 or not low <= float(initial[0]) <= high:
            problems.append(f"{where}: initial value {initial!r} outside {low:g}..{high:g}")
    return problems
