"""MusicVAE training loop and metrics on toy configs (seconds)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from vae_helpers import toy_melodies

from musebridge.models.musicvae.eval import (
    compute_attribute_vectors,
    data_ranges,
    evaluate,
    format_report,
    note_density,
    pitch_range,
    plausible,
    reconstruction_accuracy,
)
from musebridge.models.musicvae.model import MusicVAE, MusicVAEConfig
from musebridge.models.musicvae.train import (
    LOG_FILE,
    PLOT_FILE,
    TrainOptions,
    learning_rate_at,
    train_vae,
    transpose_batch,
)

TOY = MusicVAEConfig(z_size=8, encoder_size=32, decoder_size=32, decoder_layers=1, bars=2, beta_rate=0.99)


def options(**overrides) -> TrainOptions:
    base = dict(steps=8, batch_size=16, log_every=2, valid_every=4, checkpoint_every=4, threads=1,
                device="cpu", seed=7)
    return TrainOptions(**{**base, **overrides})


def test_training_learns_and_writes_log_and_plot(tmp_path) -> None:
    data = toy_melodies(64, 2, seed=1)
    result = train_vae(TOY, options(steps=60, learning_rate=2e-2, min_learning_rate=2e-2, log_every=10,
                                    valid_every=30, checkpoint_every=60),
                       data, data[:32], tmp_path, progress=False)
    first, last = result.history[0], result.history[-1]
    assert last["reconstruction"] < 0.8 * first["reconstruction"]
    assert last["valid_reconstruction"] < result.history[2]["valid_reconstruction"]  # step 60 vs step 30
    assert (tmp_path / PLOT_FILE).stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / LOG_FILE).open()))
    assert [int(r["step"]) for r in rows] == list(range(10, 61, 10))


def test_training_is_deterministic_and_resumable(tmp_path) -> None:
    data = toy_melodies(40, 2, seed=2)
    straight = train_vae(TOY, options(steps=8), data, data[:8], tmp_path / "a", progress=False)
    train_vae(TOY, options(steps=4), data, data[:8], tmp_path / "b", progress=False)
    resumed = train_vae(TOY, options(steps=8), data, data[:8], tmp_path / "b", resume=True, progress=False)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    other_seed = train_vae(TOY, options(steps=8, seed=8), data, data[:8], tmp_path / "c", progress=False)
    assert not torch.equal(other_seed.model.decoder.to_logits.weight, straight.model.decoder.to_logits.weight)


def test_resume_refuses_another_config(tmp_path) -> None:
    data = toy_melodies(16, 2)
    train_vae(TOY, options(steps=4), data, None, tmp_path, progress=False)
    other = MusicVAEConfig(z_size=4, encoder_size=32, decoder_size=32, decoder_layers=1)
    with pytest.raises(ValueError, match="another model config"):
        train_vae(other, options(steps=8), data, None, tmp_path, resume=True, progress=False)


def test_bad_training_data_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="shape"):
        train_vae(TOY, options(), np.zeros((4, 31), dtype=np.int64), None, tmp_path, progress=False)
    with pytest.raises(ValueError, match="no training"):
        train_vae(TOY, options(), np.zeros((0, 32), dtype=np.int64), None, tmp_path, progress=False)


def test_transpose_batch_keeps_range_and_rhythm() -> None:
    rng = np.random.default_rng(0)
    tokens = np.array([[2, 0, 1, 89], [40, 0, 41, 1], [0, 0, 1, 0]])
    batch = np.tile(tokens, (50, 1))
    moved = transpose_batch(batch, rng, 5)
    assert moved.min() >= 0 and moved.max() <= 89
    structure = batch < 2
    assert np.array_equal(moved[structure], batch[structure])
    assert np.all(moved[0::3] == tokens[0])  # spans 2..89: no shift possible
    assert len({int(r[0]) for r in moved[1::3]}) > 3  # 40 moved by several shifts
    assert np.all(np.abs(moved[1::3, 0] - 40) <= 5)


def test_learning_rate_schedule() -> None:
    opts = TrainOptions(learning_rate=1e-3, min_learning_rate=1e-5, decay_rate=0.9999)
    assert learning_rate_at(opts, 0) == pytest.approx(1e-3)
    assert learning_rate_at(opts, 10_000) == pytest.approx((1e-3 - 1e-5) * 0.9999**10_000 + 1e-5)


def test_attribute_statistics() -> None:
    tokens = np.array([[2, 0, 14, 0] + [0] * 28, [1] + [0] * 31])
    assert note_density(tokens).tolist() == [1.0, 0.0]
    assert pitch_range(tokens).tolist() == [12, 0]
    ranges = {"note_density": [0.5, 2.0], "pitch_range": [0, 12]}
    assert plausible(tokens, ranges).tolist() == [True, False]


def test_metrics_on_a_trained_toy_model(tmp_path) -> None:
    data = toy_melodies(64, 2, seed=3)
    opts = options(steps=40, learning_rate=2e-2, min_learning_rate=2e-2, checkpoint_every=100)
    result = train_vae(TOY, opts, data, None, tmp_path, progress=False)
    model = result.model
    accuracy = reconstruction_accuracy(model, data[:32])
    assert 0.0 <= accuracy["sampled"] <= 1.0 and len(accuracy["per_step_sampled"]) == 32
    assert accuracy["teacher_forced"] > 0.4
    untrained = reconstruction_accuracy(MusicVAE(TOY).eval(), data[:32])
    assert accuracy["teacher_forced"] > untrained["teacher_forced"] + 0.2
    model.attribute_vectors = compute_attribute_vectors(model, data)
    assert set(model.attribute_vectors) == {"note_density", "pitch_range"}
    metrics = evaluate(model, data[:32], pairs=4)
    inter = metrics["interpolation"]
    assert len(inter["hamming_to_a"]) == 11
    assert all(0.0 <= v <= 1.0 for v in inter["hamming_to_a"] + inter["hamming_to_b"])
    increasing = bool(np.all(np.diff(inter["hamming_to_a"]) >= 0))
    decreasing = bool(np.all(np.diff(inter["hamming_to_b"]) <= 0))
    assert inter["mean_curve_monotone"] == (increasing and decreasing)
    assert data_ranges(data)["note_density"][0] >= 4.0
    text = format_report(metrics)
    assert "teacher-forced" in text and "hamming to A" in text
