"""`musebridge device build|check|install`: the Max for Live device from its text sources."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from musebridge.device.build import (
    DEVICE_FILE,
    FROZEN_FILE,
    PATCHER_FILE,
    SCRIPT_FILE,
    AmxdError,
    build_amxd,
    build_frozen_amxd,
    embed_spec,
    unpack_amxd,
    validate_patcher,
)
from musebridge.errors import UserError


def source_dir() -> Path:
    """The folder holding the device sources and the built device (package musebridge.max_for_live)."""
    return Path(str(resources.files("musebridge.max_for_live")))


def load_osc_spec() -> dict[str, Any]:
    return json.loads((resources.files("musebridge") / "osc_spec.json").read_text(encoding="utf-8"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from error


def frozen_device(patcher_text: str, js_text: str) -> bytes:
    """The frozen device for these sources (the script is the only file the patcher loads)."""
    return build_frozen_amxd(patcher_text, {SCRIPT_FILE: js_text.encode("utf-8")})


def device_problems(folder: Path) -> list[str]:
    """What is wrong with the device in `folder`: graph, stale spec block, stale or broken .amxd files."""
    patcher_text = _read(folder / PATCHER_FILE)
    js_text = _read(folder / SCRIPT_FILE)
    try:
        patcher = json.loads(patcher_text)
    except json.JSONDecodeError as error:
        return [f"{PATCHER_FILE} is not JSON: {error}"]
    problems = validate_patcher(patcher, js_text)
    if embed_spec(js_text, load_osc_spec()) != js_text:
        problems.append(
            f"{SCRIPT_FILE}: its OSC spec block is older than osc_spec.json (run `musebridge device build`)"
        )
    built = folder / DEVICE_FILE
    if not built.is_file():
        problems.append(f"{DEVICE_FILE} is missing (run `musebridge device build`)")
    else:
        try:
            unpack_amxd(built.read_bytes())
        except AmxdError as error:
            problems.append(f"{DEVICE_FILE}: {error}")
        if built.read_bytes() != build_amxd(patcher_text):
            problems.append(f"{DEVICE_FILE} differs from {PATCHER_FILE} (run `musebridge device build`)")
    frozen = folder / FROZEN_FILE
    if not frozen.is_file():
        problems.append(f"{FROZEN_FILE} is missing (run `musebridge device build`)")
    elif not problems and frozen.read_bytes() != frozen_device(patcher_text, js_text):
        problems.append(f"{FROZEN_FILE} differs from its sources (run `musebridge device build`)")
    return problems


def run_build(args: argparse.Namespace) -> int:
    folder = source_dir()
    js_path = folder / SCRIPT_FILE
    js_text = _read(js_path)
    try:
        fresh_js = embed_spec(js_text, load_osc_spec())
    except ValueError as error:
        raise UserError(f"{js_path}: {error}") from error
    if fresh_js != js_text:
        js_path.write_text(fresh_js, encoding="utf-8")
        print(f"updated the OSC spec block of {js_path}")
    patcher_text = _read(folder / PATCHER_FILE)
    try:
        patcher = json.loads(patcher_text)
    except json.JSONDecodeError as error:
        raise UserError(f"{folder / PATCHER_FILE} is not JSON: {error}") from error
    problems = validate_patcher(patcher, fresh_js)
    if problems:
        raise UserError("the patcher has problems:\n  " + "\n  ".join(problems))
    out_dir = Path(args.out) if args.out else folder
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / DEVICE_FILE
    target.write_bytes(build_amxd(patcher_text))
    if out_dir != folder:
        (out_dir / SCRIPT_FILE).write_text(fresh_js, encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size} bytes; unfrozen, loads {SCRIPT_FILE} beside it)")
    frozen = out_dir / FROZEN_FILE
    frozen.write_bytes(frozen_device(patcher_text, fresh_js))
    print(f"wrote {frozen} ({frozen.stat().st_size} bytes; frozen, holds {SCRIPT_FILE}: share this one)")
    return 0


def run_check(args: argparse.Namespace) -> int:
    folder = source_dir()
    problems = device_problems(folder)
    for problem in problems:
        print(f"problem: {problem}")
    if not problems:
        print(f"device OK: {folder / DEVICE_FILE} matches its sources and the OSC spec")
    return 1 if problems else 0


def run_install(args: argparse.Namespace) -> int:
    from musebridge.device.install import INSTALL_SUBFOLDER, install_device

    installed, notes = install_device(
        source_dir(), Path(args.path).expanduser() if args.path else None, frozen=not args.unfrozen
    )
    for note in notes:
        print(note)
    for path in installed:
        print(f"installed {path}")
    print(f"In Live: Browser > User Library > {INSTALL_SUBFOLDER.as_posix()} > {installed[0].name}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "device", help="build, check or install the Max for Live device (MuseBridge.amxd)"
    )
    actions = parser.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="refresh the JS's OSC spec block; write MuseBridge.amxd and the frozen device"
    )
    build.add_argument("--out", metavar="DIR", help="write the device here instead of the source folder")
    build.set_defaults(handler=run_build)
    check = actions.add_parser("check", help="check the patcher graph and that the built device is current")
    check.set_defaults(handler=run_check)
    install = actions.add_parser("install", help="copy the device into Ableton Live's User Library")
    install.add_argument(
        "--path", metavar="DIR", help="the User Library folder (default: Live's on macOS and Windows)"
    )
    install.add_argument(
        "--unfrozen",
        action="store_true",
        help="install the development device and its script instead of the frozen device",
    )
    install.set_defaults(handler=run_install)
