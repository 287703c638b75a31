"""Install the Max for Live device into Ableton Live's User Library."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from musebridge.device.build import (
    DEVICE_FILE,
    DEVICE_NAME,
    FROZEN_FILE,
    SCRIPT_FILE,
    AmxdError,
    unpack_amxd,
    unpack_frozen_amxd,
)
from musebridge.errors import UserError

INSTALL_SUBFOLDER = Path("Presets") / "MIDI Effects" / "Max MIDI Effect" / DEVICE_NAME
DEVICE_FILES = (DEVICE_FILE, SCRIPT_FILE)  # the unfrozen device loads the script beside it


def default_user_library(
    system: str | None = None, home: Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """Live's default User Library folder on this system (macOS, Windows), or None elsewhere."""
    system = system or platform.system()
    env = os.environ if env is None else env
    if system == "Darwin":
        return (home or Path.home()) / "Music" / "Ableton" / "User Library"
    if system == "Windows":
        profile = Path(env["USERPROFILE"]) if "USERPROFILE" in env else (home or Path.home())
        return profile / "Documents" / "Ableton" / "User Library"
    return None


class Installed(NamedTuple):
    """What `install_device` did: the files now in place, and one line per earlier file it touched."""

    files: list[Path]
    notes: list[str]


def _set_aside(path: Path) -> Path:
    """Rename `path` to the first free `path.bak`, `path.1.bak`, ... (Live and Max ignore .bak files)."""
    backup = path.with_name(path.name + ".bak")
    number = 0
    while backup.exists():
        number += 1
        backup = path.with_name(f"{path.name}.{number}.bak")
    path.rename(backup)
    return backup


def install_device(
    source_dir: Path, library: Path | None, system: str | None = None, frozen: bool = True
) -> Installed:
    """Copy the built device into `library` (default: Live's); return the files and what was replaced.

    frozen: the frozen device (FROZEN_FILE, script inside) is installed as DEVICE_FILE, and a script
    left beside it by an earlier unfrozen install is taken away, so Max cannot pick up a stale copy.
    Otherwise the unfrozen device and its script are copied. Nothing the user may have edited is lost:
    an earlier file that differs from the new one is kept as `NAME.bak` (then `NAME.1.bak`, ...), and
    each such step is named in `notes`. Copies are checked byte for byte.
    Raises UserError: no library, missing or broken build, a copy that differs.
    """
    if library is None:
        library = default_user_library(system)
        if library is None:
            raise UserError(
                f"no default Ableton User Library on {system or platform.system()}; pass --path DIR"
            )
        if not library.is_dir():
            raise UserError(
                f"Live's User Library is not at {library}; pass --path DIR (Live: Preferences > Library)"
            )
    elif not library.is_dir():
        raise UserError(f"--path {library} is not a folder")
    # (source name, installed name)
    files = [(FROZEN_FILE, DEVICE_FILE)] if frozen else [(name, name) for name in DEVICE_FILES]
    for name, _target in files:
        if not (source_dir / name).is_file():
            raise UserError(f"{source_dir / name} is missing; run `musebridge device build` first")
    try:  # refuse to install a broken container
        if frozen:
            unpack_frozen_amxd((source_dir / FROZEN_FILE).read_bytes())
        else:
            unpack_amxd((source_dir / DEVICE_FILE).read_bytes())
    except AmxdError as error:
        raise UserError(f"the built device is broken ({error}); run `musebridge device build`") from error
    target_dir = library / INSTALL_SUBFOLDER
    target_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    stale_script = target_dir / SCRIPT_FILE
    if frozen and stale_script.is_file():
        backup = _set_aside(stale_script)
        notes.append(f"moved {stale_script.name} aside to {backup.name} (the frozen device holds the script)")
    installed = []
    for name, target_name in files:
        source, target = source_dir / name, target_dir / target_name
        if target.is_file() and target.read_bytes() != source.read_bytes():
            backup = _set_aside(target)
            notes.append(f"replaced {target.name}: the earlier copy differs, kept as {backup.name}")
        shutil.copyfile(source, target)
        if target.read_bytes() != source.read_bytes():
            raise UserError(f"the copy at {target} differs from {source}")
        installed.append(target)
    return Installed(installed, notes)
