"""The OSC contract: load bridge/osc_spec.json, validate and coerce messages, render docs/osc.md.

The JSON file is the single source of truth shared by the daemon, the Max for Live device and the tests.

    spec = load_spec()
    result = spec.validate("/musebridge/mode", (1, "transfer"))
    result.ok, result.args, result.reason    # True, (1, 'transfer'), ''

Regenerate the docs with `python -m musebridge.osc_spec > docs/osc.md`
(`python -m musebridge.osc_spec --check docs/osc.md` exits 1 when they are out of date).
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

OscArg = int | float | str
Direction = Literal["inbound", "outbound"]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
TYPE_TAGS = ("i", "f", "s")


class SpecError(ValueError):
    """bridge/osc_spec.json itself is inconsistent."""


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument: its name, OSC type tag ('i', 'f', 's') and optional constraints."""

    name: str
    type: str
    choices: tuple[str, ...] | None = None
    range: tuple[float, float] | None = None

    def signature(self) -> str:
        return f"{self.name}:{self.type}"


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """One OSC address: fixed args, then optional `repeat` groups (variadic messages)."""

    address: str
    direction: Direction
    args: tuple[ArgSpec, ...]
    repeat: tuple[ArgSpec, ...]
    doc: str
    reply: str | None = None
    max_repeat: int | None = None  # most `repeat` groups one message may carry

    def signature(self) -> str:
        """e.g. 'track:i length:f [pitch:i start:f duration:f velocity:i]...'"""
        parts = [arg.signature() for arg in self.args]
        if self.repeat:
            parts.append("[" + " ".join(arg.signature() for arg in self.repeat) + "]...")
        return " ".join(parts)

    def arg_count_text(self) -> str:
        if self.repeat:
            return f"{len(self.args)} + {len(self.repeat)}*n"
        return str(len(self.args))


@dataclass(frozen=True, slots=True)
class Validation:
    """The outcome of validating a message: coerced args when ok, else a one-line reason."""

    ok: bool
    args: tuple[OscArg, ...] = ()
    reason: str = ""

    def __iter__(self):  # allows `ok, args_or_reason = spec.validate(...)`-style unpacking of (ok, x)
        yield self.ok
        yield self.args if self.ok else self.reason


def _number(value: float) -> str:
    """1.0 -> '1', 1000000.0 -> '1000000', 0.01 -> '0.01'."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _coerce(arg: ArgSpec, value: Any) -> tuple[bool, OscArg | str]:
    """(True, coerced value) or (False, what was wrong with it)."""
    kind = arg.type
    if kind == "i":
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                return False, f"expected an int, got {value!r}"
            value = int(value)
        elif not isinstance(value, int):
            return False, f"expected an int, got {type(value).__name__} {value!r}"
        if not INT32_MIN <= value <= INT32_MAX:
            return False, f"expected an int32, got {value!r}"
    elif kind == "f":
        if isinstance(value, bool):
            value = float(value)
        elif isinstance(value, int | float):
            value = float(value)
            if not math.isfinite(value):
                return False, f"expected a finite float, got {value!r}"
        else:
            return False, f"expected a float, got {type(value).__name__} {value!r}"
    elif kind == "s":
        if not isinstance(value, str):
            return False, f"expected a string, got {type(value).__name__} {value!r}"
    if arg.choices is not None and value not in arg.choices:
        return False, f"expected one of {'|'.join(arg.choices)}, got {value!r}"
    if arg.range is not None:
        low, high = arg.range
        if not low <= value <= high:
            return False, f"expected {_number(low)}..{_number(high)}, got {value!r}"
    return True, value


def _parse_args(
    address: str,
    pairs: Sequence[Sequence[str]],
    choices: Mapping[str, tuple[str, ...]],
    ranges: Mapping[str, tuple[float, float]],
) -> tuple[ArgSpec, ...]:
    parsed = []
    for name, kind in pairs:
        if kind not in TYPE_TAGS:
            raise SpecError(f"{address}: arg {name!r} has unknown type {kind!r}")
        parsed.append(ArgSpec(name, kind, choices.get(name), ranges.get(name)))
    return tuple(parsed)


class OscSpec:
    """The parsed contract: `inbound` and `outbound` address -> MessageSpec."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.version: int = int(raw.get("version", 1))
        self.default_port: int = int(raw.get("default_port", 9000))
        self.types: dict[str, str] = dict(raw.get("types", {}))
        self.rules: list[tuple[str, str]] = [(str(r["rule"]), str(r["doc"])) for r in raw.get("rules", [])]
        self.inbound = self._parse_section(raw.get("inbound", {}), "inbound")
        self.outbound = self._parse_section(raw.get("outbound", {}), "outbound")
        for message in self.inbound.values():
            if message.reply is not None and message.reply not in self.outbound:
                raise SpecError(f"{message.address}: reply {message.reply!r} is not an outbound address")

    @staticmethod
    def _parse_section(section: Mapping[str, Any], direction: Direction) -> dict[str, MessageSpec]:
        messages: dict[str, MessageSpec] = {}
        for address, entry in section.items():
            if not address.startswith("/") or " " in address:
                raise SpecError(f"bad OSC address {address!r}")
            choices = {name: tuple(values) for name, values in entry.get("choices", {}).items()}
            ranges = {name: (float(low), float(high)) for name, (low, high) in entry.get("range", {}).items()}
            args = _parse_args(address, entry.get("args", []), choices, ranges)
            repeat = _parse_args(address, entry.get("repeat", []), choices, ranges)
            names = [arg.name for arg in args + repeat]
            if len(set(names)) != len(names):
                raise SpecError(f"{address}: duplicate argument names {names}")
            for constrained in list(choices) + list(ranges):
                if constrained not in names:
                    raise SpecError(f"{address}: constraint on unknown arg {constrained!r}")
            for arg in args + repeat:
                if arg.choices is not None and arg.type != "s":
                    raise SpecError(f"{address}: choices on non-string arg {arg.name!r}")
                if arg.range is not None and arg.type == "s":
                    raise SpecError(f"{address}: range on string arg {arg.name!r}")
            max_repeat = entry.get("max_repeat")
            if max_repeat is not None and (not repeat or not isinstance(max_repeat, int) or max_repeat < 1):
                raise SpecError(f"{address}: max_repeat needs repeat groups and a positive int")
            messages[address] = MessageSpec(
                address, direction, args, repeat, str(entry.get("doc", "")), entry.get("reply"), max_repeat
            )
        return messages

    def message(self, address: str, direction: Direction = "inbound") -> MessageSpec | None:
        return (self.inbound if direction == "inbound" else self.outbound).get(address)

    def validate(self, address: str, args: Sequence[Any], direction: Direction = "inbound") -> Validation:
        """Check arg count, types and constraints; coerce ints/floats. Never raises on bad input."""
        message = self.message(address, direction)
        if message is None:
            return Validation(False, reason=f"{address}: unknown address")
        fixed = len(message.args)
        count = len(args)
        if message.repeat:
            group = len(message.repeat)
            if count < fixed or (count - fixed) % group:
                return Validation(
                    False,
                    reason=f"{address}: expected {fixed} args then groups of {group} "
                    f"({message.signature()}), got {count}",
                )
            groups = (count - fixed) // group
            if message.max_repeat is not None and groups > message.max_repeat:
                return Validation(
                    False, reason=f"{address}: at most {message.max_repeat} groups "
                    f"[{' '.join(arg.name for arg in message.repeat)}], got {groups}",
                )
        elif count != fixed:
            plural = "" if fixed == 1 else "s"
            signature = message.signature() or "none"
            reason = f"{address}: expected {fixed} arg{plural} ({signature}), got {count}"
            return Validation(False, reason=reason)
        coerced: list[OscArg] = []
        for index, value in enumerate(args):
            if index < fixed:
                arg = message.args[index]
                where = f"arg {index + 1} '{arg.name}'"
            else:
                group_index, within = divmod(index - fixed, len(message.repeat))
                arg = message.repeat[within]
                where = f"arg {index + 1} '{arg.name}' (group {group_index + 1})"
            ok, result = _coerce(arg, value)
            if not ok:
                return Validation(False, reason=f"{address}: {where} {result}")
            coerced.append(result)  # type: ignore[arg-type]
        return Validation(True, tuple(coerced))


def load_spec_text() -> str:
    """The raw text of the packaged osc_spec.json."""
    return importlib.resources.files("musebridge").joinpath("osc_spec.json").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def load_spec() -> OscSpec:
    """The packaged contract (parsed once)."""
    return OscSpec(json.loads(load_spec_text()))


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(message: MessageSpec) -> str:
    parts = []
    for arg in message.args + message.repeat:
        if arg.choices is not None:
            parts.append(f"{arg.name} ∈ {{{', '.join(arg.choices)}}}")
        if arg.range is not None:
            parts.append(f"{arg.name} ∈ [{_number(arg.range[0])}, {_number(arg.range[1])}]")
    if message.max_repeat is not None:
        parts.append(f"at most {message.max_repeat} groups")
    return "; ".join(parts)


def _table(messages: Mapping[str, MessageSpec], with_reply: bool) -> list[str]:
    header = "| Address | Arguments | Constraints |" + (" Reply |" if with_reply else "") + " Description |"
    rule = "|---|---|---|" + ("---|" if with_reply else "") + "---|"
    lines = [header, rule]
    for address in sorted(messages):
        message = messages[address]
        signature = f"`{message.signature()}`" if message.signature() else "—"
        row = f"| `{address}` | {signature} | {_escape(_constraints(message)) or '—'} |"
        if with_reply:
            row += f" {'`' + message.reply + '`' if message.reply else '—'} |"
        row += f" {_escape(message.doc)} |"
        lines.append(row)
    return lines


def render_markdown(spec: OscSpec | None = None) -> str:
    """docs/osc.md: the address space as markdown tables, generated from the JSON spec."""
    spec = spec or load_spec()
    lines = [
        "# OSC address space",
        "",
        "<!-- Generated from bridge/osc_spec.json by `python -m musebridge.osc_spec > docs/osc.md`."
        " Do not edit by hand. -->",
        "",
        f"Contract version {spec.version}. The daemon listens on UDP 127.0.0.1:{spec.default_port} by default"
        " (`--osc-host`, `--osc-port`; a non-loopback host accepts only `--osc-allow` senders).",
        "Replies go to the port registered with `/musebridge/hello` (rules below), else to the sender.",
        "A message with an unknown address, a wrong argument count, a wrong type or a value outside its",
        "constraints is refused: the daemon answers `/musebridge/error reason address` and counts it.",
        "Bundles are not accepted.",
        "",
        "Arguments are written `name:type`; `[...]...` is a group repeated zero or more times.",
        "",
        "## Types",
        "",
        "| Tag | Meaning |",
        "|---|---|",
    ]
    for tag in TYPE_TAGS:
        lines.append(f"| `{tag}` | {_escape(spec.types.get(tag, ''))} |")
    if spec.rules:
        lines += ["", "## Playing live: the rules", ""]
        lines += [f"- **{_escape(rule)}**: {_escape(doc)}" for rule, doc in spec.rules]
    lines += ["", "## Inbound (to the daemon)", ""]
    lines += _table(spec.inbound, with_reply=True)
    lines += ["", "## Outbound (from the daemon)", ""]
    lines += _table(spec.outbound, with_reply=False)
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print docs/osc.md, or with --check FILE say whether FILE is up to date (exit 1 if not)."""
    parser = argparse.ArgumentParser(prog="python -m musebridge.osc_spec", description=main.__doc__)
    parser.add_argument("--check", metavar="FILE", help="compare FILE with the rendering instead of printing")
    args = parser.parse_args(argv)
    text = render_markdown()
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python -m musebridge.osc_spec > {path}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
