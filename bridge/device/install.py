"""Install the Max for Live device into Ableton Live's User Library."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Mapping
from pathlib import Path

from musebridge.device.build import DEVICE_FILE, DEVICE_NAME, SCRIPT_FILE, unpack_amxd
from musebridge.errors import UserError

INSTALL_SUBFOLDER = Path("Presets") / "MIDI Effects" / "Max MIDI Effect" / DEVICE_NAME
DEVICE_FILES = (DEVICE_FILE, SCRIPT_FILE)


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


def install_device(source_dir: Path, library: Path | None, system: str | None = None) -> list[Path]:
    """Copy the built device and its script into `library` (default: Live's); return the new files.

    The copies are checked byte for byte against the sources.
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
    sources = [source_dir / name for name in DEVICE_FILES]
    for source in sources:
        if not source.is_file():
            raise UserError(f"{source} is missing; run `musebridge device build` first")
    unpack_amxd(sources[0].read_bytes())  # refuse to install a broken container
    target_dir = library / INSTALL_SUBFOLDER
    target_dir.mkdir(parents=True, exist_ok=True)
    installed = []
    for source in sources:
        target = target_dir / source.name
        shutil.copyfile(source, target)
        if target.read_bytes() != source.read_bytes():
            raise UserError(f"the copy at {target} differs from {source}")
        installed.append(target)
    return installed
