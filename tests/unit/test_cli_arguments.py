"""Numbers on the command line: out of range, NaN and infinities are refused by the parser, in one line
naming the option, before a file or a model is touched; generating commands take a new seed each run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musebridge.cli import build_parser, main
from tests.unit.test_shipped_checkpoints import A_MELODY, write_melody

BAD_VALUES = [
    ("sample", "--temperature", "nan"), ("sample", "--temperature", "inf"), ("sample", "--temperature", "-1"),
    ("sample", "--tempo", "3"), ("sample", "--tempo", "nan"), ("sample", "--tempo", "1e9"),
    ("sample", "--seed", "99999999999999999999"), ("sample", "--seed", "-1"),
    ("interpolate", "--temperature", "-1"), ("interpolate", "--temperature", "nan"),
    ("continue", "--temperature", "nan"), ("continue", "--seed", "1.5"),
    ("serve", "--tempo", "inf"),
]


def command_line(command: str, option: str, value: str, melody: Path, out: Path) -> list[str]:
    inputs = {"sample": [], "interpolate": [str(melody), str(melody)], "continue": [str(melody)], "serve": []}
    output = [] if command == "serve" else ["-o", str(out)]
    return [command, *inputs[command], *output, option, value]


@pytest.mark.parametrize(("command", "option", "value"), BAD_VALUES)
def test_out_of_range_numbers_are_refused_in_one_line(
    command: str, option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    melody = write_melody(tmp_path / "in.mid", A_MELODY)
    with pytest.raises(SystemExit) as exit_info:
        main(command_line(command, option, value, melody, tmp_path / "out.mid"))
    assert exit_info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error) == 1 and f"argument {option}" in error[0], error
    assert not (tmp_path / "out.mid").exists()


def run_ok(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_sample_takes_a_new_seed_each_run_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.mid"
        summary = run_ok(["sample", "-n", "2", "-o", str(out)], capsys)
        seed = int(summary.rsplit("seed ", 1)[1])
        outputs.append((seed, out.read_bytes()))
    (seed_a, bytes_a), (seed_b, bytes_b) = outputs
    assert seed_a != seed_b and bytes_a != bytes_b
    again = tmp_path / "again.mid"
    run_ok(["sample", "-n", "2", "-o", str(again), "--seed", str(seed_a)], capsys)
    assert again.read_bytes() == bytes_a


def test_continue_says_the_shipped_model_takes_no_genre(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped WaveNet is not conditioned on genre (a live call's genre is unknown): --genre is
    said to change nothing. A conditioned model refuses a genre it does not know
    (tests/unit/test_continue_training.py)."""
    melody = write_melody(tmp_path / "in.mid", A_MELODY)
    assert main(["continue", str(melody), "-o", str(tmp_path / "out.mid"), "--genre", "jazz"]) == 0
    error = capsys.readouterr().err
    assert "not conditioned on genre" in error and "--genre jazz changes nothing" in error


def test_serve_takes_a_client_name() -> None:
    args = build_parser().parse_args(["serve", "--midi-name", "second"])
    assert args.midi_name == "second"


@pytest.mark.parametrize("command", [
    ["transfer", "{in}", "--to", "folk"], ["continue", "{in}"], ["interpolate", "{in}", "{in}"], ["sample"],
    ["transfer", "{in}", "--to", "folk", "--model", "umt"],
])
def test_a_file_that_is_no_checkpoint_is_refused_in_one_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch's own message is a page that advises weights_only=False (running the file's code): never."""
    melody = write_melody(tmp_path / "in.mid", A_MELODY)
    args = [str(melody) if part == "{in}" else part for part in command]
    assert main([*args, "-o", str(tmp_path / "out.mid"), "--checkpoint", str(melody)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in.mid" in err and "weights_only" not in err, err
    assert not (tmp_path / "out.mid").exists()


@pytest.mark.parametrize("command", [
    ["transfer", "{in}", "--to", "folk"], ["continue", "{in}"], ["interpolate", "{in}", "{other}"],
])
def test_the_output_may_not_be_an_input(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    melody = write_melody(tmp_path / "in.mid", A_MELODY)
    other = write_melody(tmp_path / "other.mid", A_MELODY[::-1])
    before = melody.read_bytes()
    args = [str(melody) if p == "{in}" else str(other) if p == "{other}" else p for p in command]
    assert main([*args, "-o", str(tmp_path / "." / "in.mid")]) == 2
    assert "is the input file" in capsys.readouterr().err and melody.read_bytes() == before


# One spelling per idea across the train and eval commands, the older spellings kept as aliases.
SPELLINGS = {
    ("train", "vae"): {"genre": "genre", "dataset": "dataset", "run": "out_dir", "quiet": "quiet"},
    ("train", "continue", "--model", "wavenet", "--out-dir", "r"): {
        "genre": "genres", "dataset": "data", "run": "out_dir", "quiet": "no_progress"},
    ("train", "umt"): {"genre": "genres", "dataset": "dataset", "run_only": "run_dir"},
    ("train", "transfer"): {"dataset": "dataset", "run_only": "run_dir"},
    ("train", "judges"): {"genre": "genres", "dataset": "dataset"},
    ("eval", "vae"): {"genre": "genre", "dataset": "dataset"},
    ("eval", "continue"): {"genre": "genres", "dataset": "data"},
    ("eval", "umt"): {"genre": "genres", "dataset": "dataset"},
}  # fmt: skip


@pytest.mark.parametrize("command", list(SPELLINGS), ids=lambda c: " ".join(c[:2]))
def test_every_train_and_eval_command_takes_the_same_spellings(command: tuple[str, ...]) -> None:
    """--genre A --genre B and --genres A B; --dataset and --data; --run-dir and --out-dir; --quiet
    and --no-progress: a user who learned one command's flags can type them to the next."""
    dest = SPELLINGS[command]
    parse = build_parser().parse_args
    if "genre" in dest:
        one_by_one = parse([*command, "--genre", "folk", "--genre", "celtic"])
        at_once = parse([*command, "--genres", "folk", "celtic"])
        mixed = parse([*command, "--genre", "folk", "--genres", "celtic"])
        assert getattr(one_by_one, dest["genre"]) == getattr(at_once, dest["genre"]) == ["folk", "celtic"]
        assert getattr(mixed, dest["genre"]) == ["folk", "celtic"]
        assert getattr(parse(list(command)), dest["genre"]) is None  # the command's default applies
    for flag in ("--dataset", "--data"):
        assert str(getattr(parse([*command, flag, "d.npz"]), dest["dataset"])) == "d.npz"
    if "run" in dest:
        for flag in ("--run-dir", "--out-dir"):
            assert str(getattr(parse([*command, flag, "runs/x"]), dest["run"])) == "runs/x"
    if "run_only" in dest:  # -o/--output-dir names the checkpoints' folder there: no --out-dir to mix it with
        assert str(getattr(parse([*command, "--run-dir", "runs/x"]), dest["run_only"])) == "runs/x"
        with pytest.raises(SystemExit):
            parse([*command, "--out-dir", "runs/x"])

    if "quiet" in dest:
        for flag in ("--quiet", "--no-progress"):
            assert getattr(parse([*command, flag]), dest["quiet"]) is True


@pytest.mark.parametrize("command", list(SPELLINGS), ids=lambda c: " ".join(c[:2]))
def test_the_help_names_both_spellings_of_the_dataset(command, capsys) -> None:
    with pytest.raises(SystemExit):
        main([*command[:2], "--help"])
    assert re.search(r"--dataset [A-Z]+, --data [A-Z]+", capsys.readouterr().out)  # --data is no mere prefix
