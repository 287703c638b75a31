"""`musebridge device install|build|check` and the default User Library paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from musebridge.cli import main
from musebridge.device.install import INSTALL_SUBFOLDER, default_user_library, install_device
from musebridge.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
DEVICE_DIR = ROOT / "max_for_live"


def test_default_user_library_paths() -> None:
    home = Path("/Users/ada")
    assert default_user_library("Darwin", home) == home / "Music" / "Ableton" / "User Library"
    windows = default_user_library("Windows", home, env={"USERPROFILE": "C:/Users/ada"})
    assert windows == Path("C:/Users/ada") / "Documents" / "Ableton" / "User Library"
    assert default_user_library("Linux", home) is None


def test_install_copies_the_frozen_device_and_prints_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / INSTALL_SUBFOLDER
    target.mkdir(parents=True)
    (target / "musebridge.js").write_text("// left by an earlier unfrozen install")
    assert main(["device", "install", "--path", str(tmp_path)]) == 0
    assert (target / "MuseBridge.amxd").read_bytes() == (DEVICE_DIR / "MuseBridge.frozen.amxd").read_bytes()
    # the script is inside the frozen device; the one left beside it is kept aside, not lost
    assert sorted(p.name for p in target.iterdir()) == ["MuseBridge.amxd", "musebridge.js.bak"]
    assert (target / "musebridge.js.bak").read_text() == "// left by an earlier unfrozen install"
    out = capsys.readouterr().out
    assert str(target / "MuseBridge.amxd") in out and "User Library" in out
    assert "moved musebridge.js aside to musebridge.js.bak" in out


def test_install_over_an_edited_copy_keeps_it_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / INSTALL_SUBFOLDER
    assert main(["device", "install", "--unfrozen", "--path", str(tmp_path)]) == 0
    assert "replaced" not in capsys.readouterr().out  # a first install replaces nothing
    (target / "musebridge.js").write_text("// my edit")
    assert main(["device", "install", "--unfrozen", "--path", str(tmp_path)]) == 0
    expected = "replaced musebridge.js: the earlier copy differs, kept as musebridge.js.bak"
    assert expected in capsys.readouterr().out
    assert (target / "musebridge.js.bak").read_text() == "// my edit"
    assert main(["device", "install", "--unfrozen", "--path", str(tmp_path)]) == 0  # same files again
    assert "replaced" not in capsys.readouterr().out
    (target / "musebridge.js").write_text("// a second edit")
    assert main(["device", "install", "--path", str(tmp_path)]) == 0  # frozen: the script goes aside
    assert (target / "musebridge.js.1.bak").read_text() == "// a second edit"


def test_install_unfrozen_copies_the_development_device_and_its_script(tmp_path: Path) -> None:
    assert main(["device", "install", "--unfrozen", "--path", str(tmp_path)]) == 0
    target = tmp_path / INSTALL_SUBFOLDER
    for name in ("MuseBridge.amxd", "musebridge.js"):
        assert (target / name).read_bytes() == (DEVICE_DIR / name).read_bytes()


def test_install_refuses_a_broken_build(tmp_path: Path) -> None:
    source = tmp_path / "built"
    source.mkdir()
    (source / "MuseBridge.frozen.amxd").write_bytes((DEVICE_DIR / "MuseBridge.amxd").read_bytes())
    with pytest.raises(UserError, match="not frozen"):
        install_device(source, tmp_path)


def test_install_refuses_a_missing_folder_and_a_platform_without_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["device", "install", "--path", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(UserError, match="pass --path"):
        install_device(DEVICE_DIR, None, system="Linux")
    with pytest.raises(UserError, match="run `musebridge device build`"):
        install_device(tmp_path, tmp_path)


def test_default_install_goes_to_the_library_live_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "Music" / "Ableton" / "User Library"
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    with pytest.raises(UserError, match="not at"):
        install_device(DEVICE_DIR, None, system="Darwin")
    library.mkdir(parents=True)
    installed = install_device(DEVICE_DIR, None, system="Darwin")
    assert installed.files[0] == library / INSTALL_SUBFOLDER / "MuseBridge.amxd"


def test_check_passes_on_the_committed_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "check"]) == 0
    assert "device OK" in capsys.readouterr().out


def test_build_to_another_folder_reproduces_the_committed_device(tmp_path: Path) -> None:
    assert main(["device", "build", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "MuseBridge.amxd").read_bytes() == (DEVICE_DIR / "MuseBridge.amxd").read_bytes()
    assert (tmp_path / "musebridge.js").read_bytes() == (DEVICE_DIR / "musebridge.js").read_bytes()
    frozen = (tmp_path / "MuseBridge.frozen.amxd").read_bytes()
    assert frozen == (DEVICE_DIR / "MuseBridge.frozen.amxd").read_bytes()
