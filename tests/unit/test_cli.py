"""The command line: --help, --version, bad options (exit 2, one line), serve/bench start-up errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from musebridge import __version__
from musebridge.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "musebridge", *args], capture_output=True, text=True,
                          timeout=60)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"musebridge {__version__}"


@pytest.mark.parametrize("command", ["serve", "bench"])
def test_help_lists_the_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    expected = {
        "serve": ["--preset", "--midi-backend", "--midi-in", "--midi-out", "--osc-host", "--osc-port",
                  "--osc-allow", "--clock", "--tempo", "--mode", "--device", "--log-level"],
        "bench": ["--json", "--quick"],
    }[command]
    for option in expected:
        assert option in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--tempo", "999"], "tempo must be 20..400 BPM, got 999"),
        (["serve", "--tempo", "fast"], "not a number: 'fast'"),
        (["serve", "--midi-backend", "midi2"], "invalid choice: 'midi2'"),
        (["serve", "--osc-port", "70000"], "port must be 0..65535"),
        (["serve", "--mode", "dance"], "invalid choice: 'dance'"),
        (["serve", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["bench", "--runs", "0"], "must be >= 1"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and err.startswith(f"musebridge {args[0]}: error:")


def test_serve_with_an_unknown_preset_is_a_one_line_user_error() -> None:
    result = run_cli("serve", "--preset", "no-such-preset", "--midi-backend", "none", "--osc-port", "0",
                     "--log-level", "error")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("musebridge serve: error:")
    ]
    assert "unknown preset 'no-such-preset'" in result.stderr


def test_serve_on_a_taken_osc_port_is_a_one_line_user_error() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_cli("serve", "--midi-backend", "none", "--osc-port", str(port), "--log-level", "error")
    assert result.returncode == 2
    assert f"OSC port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_no_jack_server_is_a_one_line_user_error() -> None:
    import os

    missing = f"musebridge-no-such-server-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=missing, JACK_NO_START_SERVER="1")
    result = subprocess.run(
        [sys.executable, "-m", "musebridge", "serve", "--midi-backend", "jack", "--osc-port", "0",
         "--log-level", "error"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "musebridge serve: error: no JACK server running (musebridge never starts one): start jackd or "
        "choose another --midi-backend"
    ]


def test_bench_without_jack_writes_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    out = tmp_path / "bench.json"
    assert main(["bench", "--no-jack", "--quick", "--runs", "3", "--models", "thru", "transpose",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "transpose" in printed and "spin 0.5 ms" in printed
    results = json.loads(out.read_text())
    assert [m["model"] for m in results["models"]] == ["thru", "transpose"]
    assert all(m["n"] == 3 and m["p50_ms"] <= m["p99_ms"] for m in results["models"])
    assert results["jack"] == {"skipped": "--no-jack"}
    assert [entry["spin_ms"] for entry in results["untimed_output"]] == [0.0, 0.5, 2.0]


def test_building_the_cli_imports_no_torch() -> None:
    """`musebridge --help`, `ports` and `serve` with rule models must start without importing torch."""
    code = "import sys, musebridge.cli; musebridge.cli.build_parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
