"""The shared trainer (models/training): 1 vs 2 processes (gloo), exact resume after a kill, rank-0-only
writes, gradient accumulation, early stop, and the job line. CPU, seconds."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from trainer_helpers import ToyFamily, free_port, run_families, run_rank, run_umt
from vae_helpers import tiny_dataset

from musebridge.models.training import TrainerOptions, fit
from musebridge.models.training.job import Job, choose_device, start_job

# forkserver with torch preloaded: each rank starts in well under a second (spawn re-imports torch)
PROCESSES = multiprocessing.get_context("forkserver")
PROCESSES.set_forkserver_preload(["torch", "musebridge.models.training", "trainer_helpers"])
OPTIONS = dict(steps=8, global_batch=16, seed=3, log_every=2, valid_every=4, checkpoint_every=2, device="cpu",
               progress=False)


def run_job(world: int, out: Path, family: dict | None = None, resume: bool = False, **options) -> dict:
    """Run a job of `world` processes (spawned, gloo) and return rank 0's {"weights", "history"}."""
    if world == 1:
        run_rank(0, 1, free_port(), str(out), family or {}, {**OPTIONS, **options}, resume)
    else:
        assert all(code == 0 for code in start(world, out, family or {}, {**OPTIONS, **options}, resume))
    return torch.load(out / "weights0.pt", weights_only=True)


def start(world: int, out: Path, family: dict, options: dict, resume: bool = False) -> list[int | None]:
    """The exit codes of `world` ranks run as separate processes (a minute at most)."""
    port = free_port()
    procs = [PROCESSES.Process(target=run_rank, args=(rank, world, port, str(out), family, options, resume))
             for rank in range(world)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    return [proc.exitcode for proc in procs]


def assert_close(a: dict, b: dict, atol: float) -> None:
    for key, value in a.items():
        assert torch.allclose(value, b[key], atol=atol, rtol=0), (key, (value - b[key]).abs().max())


def test_two_processes_equal_one_process_with_the_same_global_batch_and_only_rank_zero_writes(tmp_path):
    one = run_job(1, tmp_path / "one")
    two = run_job(2, tmp_path / "two")
    written = sorted(p.name for p in (tmp_path / "two" / "rank0").iterdir())
    assert written == ["run.pt", "train_curves.png", "train_log.csv", "train_log.json"]
    assert not (tmp_path / "two" / "rank1").exists()  # rank 1 was given its own folder: never made
    job = json.loads((tmp_path / "two" / "rank0" / "train_log.json").read_text())["job"]
    assert job["world_size"] == 2 and job["backend"] == "gloo" and job["devices"] == ["cpu", "cpu"]
    assert job["global_batch"] == 16 and job["per_rank_batch"] == 8
    assert_close(one["weights"], two["weights"], atol=1e-5)
    # the logged losses are the mean over both ranks, i.e. the one-process loss of the global batch
    for a, b in zip(one["history"], two["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    untrained = run_job(1, tmp_path / "short", steps=1)
    assert not torch.allclose(untrained["weights"]["out.weight"], one["weights"]["out.weight"], atol=1e-3)


@pytest.mark.parametrize("world", [1, 2])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, world) -> None:
    family = {"dropout": 0.3, "noise": 0.1}  # dropout draws from the global stream, noise from the step's
    straight = run_job(world, tmp_path / "straight", family)
    killed = tmp_path / "killed"
    codes = start(world, killed, {**family, "die_at": 5}, OPTIONS)
    assert codes == [-9] * world  # SIGKILL before step 6, after run.pt of step 4
    assert torch.load(killed / "rank0" / "run.pt", weights_only=True)["step"] == 4
    resumed = run_job(world, killed, family, resume=True)
    for key, value in straight["weights"].items():
        assert torch.equal(value, resumed["weights"][key]), key
    assert [r["loss"] for r in straight["history"]] == [r["loss"] for r in resumed["history"]]


def test_every_family_trains_under_two_processes(tmp_path) -> None:
    """WaveNet (a weight its loss never reaches), C-RNN-GAN into its GAN phase (D and G wrapped apart, the
    freeze decision taken alike on both ranks) and a full CycleGAN (EMA, pools): one job, rank 0 writes."""
    port = free_port()
    procs = [PROCESSES.Process(target=run_families, args=(rank, 2, port, str(tmp_path))) for rank in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    for name in ("wavenet", "crnngan", "cyclegan"):
        assert (tmp_path / f"{name}0" / "run.pt").exists() and not (tmp_path / f"{name}1").exists()
        weights = torch.load(tmp_path / f"{name}.pt", weights_only=True)
        assert all(torch.isfinite(v).all() for v in weights.values() if v.dtype.is_floating_point)
    log = json.loads((tmp_path / "crnngan0" / "train_log.json").read_text())["history"]
    assert "d_loss" in log[-1] and "mse" in log[0]  # pretraining, then the adversarial phase


def test_umt_two_processes_follow_the_one_process_run(tmp_path) -> None:
    """The universal translator under 2 gloo ranks (encoder + decoders and the domain classifier wrapped
    apart, each rank augmenting the whole batch and training on its share of every genre): the weights
    and the logged losses of one process, within float tolerance; rank 0 alone writes."""
    run_umt(0, 1, free_port(), str(tmp_path))
    port = free_port()
    procs = [PROCESSES.Process(target=run_umt, args=(rank, 2, port, str(tmp_path))) for rank in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert (tmp_path / "umt2-rank0" / "run.pt").exists() and not (tmp_path / "umt2-rank1").exists()
    one, two = (torch.load(tmp_path / f"umt{n}.pt", weights_only=True) for n in (1, 2))
    assert_close(one["weights"], two["weights"], atol=1e-5)
    for a, b in zip(one["history"], two["history"], strict=True):
        for key in ("reconstruction", "confusion", "classifier_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    assert one["history"][-1]["reconstruction"] < one["history"][0]["reconstruction"]


def test_gradient_accumulation_equals_the_whole_batch(tmp_path) -> None:
    whole = fit(ToyFamily(), TrainerOptions(**OPTIONS), tmp_path / "a")
    split = fit(ToyFamily(), TrainerOptions(**OPTIONS, accumulation=4), tmp_path / "b")
    for key, value in whole.family.net.state_dict().items():
        assert torch.allclose(value, split.family.net.state_dict()[key], atol=1e-6)
    with pytest.raises(ValueError, match="divide"):
        fit(ToyFamily(), TrainerOptions(**{**OPTIONS, "global_batch": 10}, accumulation=4), tmp_path / "c")


def test_early_stop_restores_the_best_weights(tmp_path) -> None:
    options = {**OPTIONS, "steps": 200, "valid_every": 2, "early_stop": "valid_loss", "patience": 2}
    family = ToyFamily()
    family.validate = lambda ctx, step: {"valid_loss": abs(step - 6)}  # best at step 6, worse after
    result = fit(family, TrainerOptions(**options), tmp_path)
    assert result.stopped_early and result.step == 10 and result.best == {"metric": "valid_loss", "value": 0,
                                                                           "step": 6}
    saved = torch.load(tmp_path / "run.pt", weights_only=True)
    assert saved["step"] == 10
    best = saved["early_stop"]["weights"]["net"]
    assert all(torch.equal(best[k], v) for k, v in family.net.state_dict().items())
    assert json.loads((tmp_path / "train_log.json").read_text())["early_stop"]["best_step"] == 6
    with pytest.raises(ValueError, match="valid_"):
        TrainerOptions(**{**OPTIONS, "patience": 2}).check()


def test_resume_refuses_another_config_and_a_damaged_or_foreign_run(tmp_path) -> None:
    fit(ToyFamily(), TrainerOptions(**OPTIONS), tmp_path)
    with pytest.raises(ValueError, match="another model config"):
        fit(ToyFamily(dropout=0.5), TrainerOptions(**OPTIONS), tmp_path, resume=True)
    torch.save({"model": {}, "step": 3}, tmp_path / "run.pt")  # a run.pt of the loops before the trainer
    with pytest.raises(ValueError, match="not a run checkpoint of this version"):
        fit(ToyFamily(), TrainerOptions(**OPTIONS), tmp_path, resume=True)
    (tmp_path / "run.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="cannot resume from"):
        fit(ToyFamily(), TrainerOptions(**OPTIONS), tmp_path, resume=True)


def test_job_line_and_devices(tmp_path) -> None:
    job = start_job("cpu", environ={})
    assert job == Job(device=torch.device("cpu"), devices=["cpu"]) and not job.distributed
    assert job.describe(64, 2) == ("job: 1 process (no torchrun), device cpu, global batch 64 "
                                   "(32 per rank x 1 rank(s) x 2 accumulation step(s))")
    two = Job(2, 1, 1, "gloo", torch.device("cpu"), ["cpu", "cpu"])
    line = two.describe(64, 1)
    assert line.startswith("job: world size 2, backend gloo, rank 0 cpu, rank 1 cpu, global batch 64")
    with pytest.raises(ValueError, match="unknown device"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            choose_device("cuda")
    with pytest.raises(ValueError, match="bf16"):
        fit(ToyFamily(), TrainerOptions(**OPTIONS, precision="bf16"), tmp_path / "bf16", job=job)
    assert not (tmp_path / "bf16").exists()


def test_torchrun_two_processes_train_vae_as_one_job(tmp_path) -> None:
    """`torchrun --nproc-per-node 2 -m musebridge train vae ...`: one job line, one run folder, one card."""
    dataset = tiny_dataset(tmp_path / "dataset.npz")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "musebridge", "train", "vae", "--dataset", str(dataset), "--steps", "4",
               "--batch-size", "8",
               "--set", "z_size=8", "--set", "encoder_size=16", "--set", "decoder_size=16", "--threads", "1",
               "--device", "cpu", "--quiet", "--checkpoint-every", "2", "--out-dir", str(tmp_path / "run"),
               "--export", str(tmp_path / "vae.pt")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("job: world size 2, backend gloo, rank 0 cpu, rank 1 cpu, global batch 8") == 1
    assert done.stdout.count("wrote ") == 1  # rank 0 alone exported
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert log["job"]["world_size"] == 2 and [row["step"] for row in log["history"]] == [4]
    card = yaml.safe_load((tmp_path / "vae.yaml").read_text())
    assert card["steps"] == 4 and card["training_options"]["batch_size"] == 8
    assert card["training_processes"] == 2


def test_resume_says_where_it_starts_and_refuses_a_target_behind_the_run(tmp_path, capsys) -> None:
    """--resume names the step it goes on from, or says there was no run (a typo in --out-dir must not
    start over in silence); --steps below the run's step is refused (the card would name fewer steps
    than the weights had)."""
    from musebridge.cli import main

    dataset = tiny_dataset(tmp_path / "dataset.npz")
    base = ["train", "vae", "--dataset", str(dataset), "--batch-size", "8", "--set", "z_size=8",
            "--set", "encoder_size=16", "--set", "decoder_size=16", "--threads", "1", "--device", "cpu",
            "--quiet", "--checkpoint-every", "2", "--out-dir", str(tmp_path / "run"),
            "--export", str(tmp_path / "vae.pt")]
    assert main([*base, "--steps", "4", "--resume"]) == 0
    assert "--resume: no " in capsys.readouterr().err
    assert main([*base, "--steps", "6", "--resume"]) == 0
    assert "at step 4 of 6" in capsys.readouterr().err
    assert main([*base, "--steps", "2", "--resume"]) == 2
    assert "is at step 6, past --steps 2: give --steps 6 or more" in capsys.readouterr().err


def test_a_small_or_empty_validation_split_is_named() -> None:
    from musebridge.models.training.records import SMALL_VALIDATION, validation_warning

    assert validation_warning({"folk": 500, "celtic": SMALL_VALIDATION}, "phrases") is None
    some = validation_warning({"folk": 500, "jazz": 0, "blues": 3}, "phrases")
    assert some is not None and "no phrases for jazz" in some and "only 3 for blues" in some
    assert "those genres" in some
    assert "sees nothing" in (validation_warning({"jazz": 0}, "windows") or "")
