"""The OSC contract: well-formed messages validate; bad counts, types and values are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musebridge.osc_spec import ArgSpec, MessageSpec, OscSpec, SpecError, load_spec, main, render_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "osc.md"


def _valid_value(arg: ArgSpec) -> int | float | str:
    if arg.choices:
        return arg.choices[-1]
    if arg.type == "s":
        return "text"
    if arg.range:
        low, high = arg.range
        middle = (low + high) / 2
        return int(middle) if arg.type == "i" else middle
    return 3 if arg.type == "i" else 1.5


def _valid_args(message: MessageSpec, groups: int = 0) -> list[int | float | str]:
    values = [_valid_value(arg) for arg in message.args]
    for _ in range(groups):
        values += [_valid_value(arg) for arg in message.repeat]
    return values


SPEC = load_spec()
ALL_MESSAGES = [(m.direction, m) for m in list(SPEC.inbound.values()) + list(SPEC.outbound.values())]


@pytest.mark.parametrize(("direction", "message"), ALL_MESSAGES, ids=lambda x: getattr(x, "address", x))
def test_every_address_accepts_a_well_formed_message(direction, message):
    args = _valid_args(message, groups=2 if message.repeat else 0)
    result = SPEC.validate(message.address, args, direction)
    assert result.ok, result.reason
    assert len(result.args) == len(args)
    for value, arg in zip(result.args, message.args + message.repeat * 2, strict=False):
        assert isinstance(value, {"i": int, "f": float, "s": str}[arg.type])


@pytest.mark.parametrize(("direction", "message"), ALL_MESSAGES, ids=lambda x: getattr(x, "address", x))
def test_every_address_refuses_one_arg_too_many_and_too_few(direction, message):
    args = _valid_args(message)
    if len(message.repeat) == 1:  # one more arg is one more whole group: past max_repeat it is too many
        assert message.max_repeat is not None, "a one-argument repeat group needs a max_repeat"
        extra = _valid_args(message, groups=message.max_repeat + 1)[len(args):]
    else:
        extra = [1]
    too_many = SPEC.validate(message.address, args + extra, direction)
    assert not too_many.ok and message.address in too_many.reason
    if args:
        too_few = SPEC.validate(message.address, args[:-1], direction)
        assert not too_few.ok and "expected" in too_few.reason


@pytest.mark.parametrize(("direction", "message"), ALL_MESSAGES, ids=lambda x: getattr(x, "address", x))
def test_every_argument_refuses_a_wrong_type(direction, message):
    for index, arg in enumerate(message.args):
        args = _valid_args(message)
        args[index] = 2.5 if arg.type in ("i", "s") else "not a number"
        result = SPEC.validate(message.address, args, direction)
        assert not result.ok
        assert f"arg {index + 1} '{arg.name}'" in result.reason


def test_mode_choice_reason_is_one_clear_line():
    result = SPEC.validate("/musebridge/mode", [1, "x"])
    assert not result.ok
    assert result.reason == (
        "/musebridge/mode: arg 2 'mode' expected one of thru|transfer|continue|interpolate|sample, got 'x'"
    )


def test_int_accepts_integral_float_and_float_accepts_int():
    result = SPEC.validate("/musebridge/bars", [2.0, 8.0])
    assert result.ok and result.args == (2, 8) and all(type(v) is int for v in result.args)
    result = SPEC.validate("/musebridge/position", [0, 1])
    assert result.ok and result.args == (0, 1.0) and type(result.args[1]) is float


@pytest.mark.parametrize(
    ("address", "args", "fragment"),
    [
        ("/musebridge/bars", [1, 1.5], "expected an int"),
        ("/musebridge/bars", [1, 0], "expected 1..64, got 0"),
        ("/musebridge/bars", [1, 65], "expected 1..64, got 65"),
        ("/musebridge/temperature", [0, 0.0], "expected 0.01..5"),
        ("/musebridge/temperature", [0, float("nan")], "finite"),
        ("/musebridge/position", [0, 1.01], "expected 0..1"),
        ("/musebridge/position", [0, "half"], "expected a float"),
        ("/musebridge/capture", [0, "c"], "expected one of a|b"),
        ("/musebridge/genre", [0, 7], "expected a string"),
        ("/musebridge/note", [0, 2**31, 100, 0.0, 1.0], "int32"),
        ("/musebridge/note", [0, 128, 100, 0.0, 1.0], "arg 2 'pitch'"),
        ("/musebridge/ping", [1], "expected 0 args (none), got 1"),
        ("/musebridge/nope", [], "unknown address"),
    ],
)
def test_bad_values_are_refused_with_a_reason(address, args, fragment):
    result = SPEC.validate(address, args)
    assert not result.ok
    assert fragment in result.reason
    assert result.reason.startswith(address)


def test_variadic_clip_groups():
    head = [1, "in", 4.0]
    note = [60, 0.0, 1.0, 100]
    assert SPEC.validate("/musebridge/clip", head).ok  # an empty clip
    result = SPEC.validate("/musebridge/clip", head + note + [62, 1, 0.5, 90.0])
    assert result.ok
    assert result.args[3:] == (60, 0.0, 1.0, 100, 62, 1.0, 0.5, 90)
    partial = SPEC.validate("/musebridge/clip", head + note + [62])
    assert not partial.ok and "groups of 4" in partial.reason
    bad_group = SPEC.validate("/musebridge/clip", head + note + [62, 1.0, 0.5, 0])
    assert not bad_group.ok
    assert "arg 11 'velocity' (group 2)" in bad_group.reason
    assert not SPEC.validate("/musebridge/clip", [1, "z", 4.0]).ok


def test_validation_unpacks_to_ok_and_args_or_reason():
    ok, args = SPEC.validate("/musebridge/ping", [])
    assert ok and args == ()
    ok, reason = SPEC.validate("/musebridge/ping", ["x"])
    assert not ok and isinstance(reason, str)


def test_outbound_and_inbound_are_separate():
    assert SPEC.validate("/musebridge/out/note", [0, 60, 100, 0.0, 1.0], "outbound").ok
    assert not SPEC.validate("/musebridge/out/note", [0, 60, 100, 0.0, 1.0], "inbound").ok


def test_every_reply_is_an_outbound_address():
    for message in SPEC.inbound.values():
        if message.reply:
            assert message.reply in SPEC.outbound


@pytest.mark.parametrize(
    "broken",
    [
        {"inbound": {"/x": {"args": [["a", "q"]]}}},
        {"inbound": {"/x": {"args": [["a", "i"]], "range": {"b": [0, 1]}}}},
        {"inbound": {"/x": {"args": [["a", "i"]], "choices": {"a": ["1"]}}}},
        {"inbound": {"/x": {"args": [["a", "i"], ["a", "f"]]}}},
        {"inbound": {"/x": {"args": [], "reply": "/nowhere"}}},
        {"inbound": {"x": {"args": []}}},
    ],
)
def test_inconsistent_spec_is_rejected(broken):
    with pytest.raises(SpecError):
        OscSpec(broken)


def test_docs_are_in_sync_with_the_spec():
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/osc.md is out of date: python -m musebridge.osc_spec > docs/osc.md"
    )


def test_docs_list_every_address():
    text = render_markdown()
    for address in list(SPEC.inbound) + list(SPEC.outbound):
        assert f"`{address}`" in text


def test_check_mode_detects_stale_docs(tmp_path, capsys):
    stale = tmp_path / "osc.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    stale.write_text(render_markdown(), encoding="utf-8")
    assert main(["--check", str(stale)]) == 0


def test_packaged_json_is_what_the_tree_holds():
    tree = Path(__file__).resolve().parents[2] / "bridge" / "osc_spec.json"
    assert json.loads(tree.read_text(encoding="utf-8")) == SPEC.raw
