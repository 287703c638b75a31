"""C-RNN-GAN: tone scaling, generator priming, discriminator, pretraining and the GAN step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musebridge.core.music import Note, Phrase
from musebridge.models.continuation.crnngan import (
    CRNNGAN,
    CRNNGANConfig,
    checkpoint_dict,
    feature_matching_loss,
    from_model_space,
    model_from_checkpoint,
    to_model_space,
)
from musebridge.models.continuation.train import ContinueTrainOptions, synthetic_steps, train_crnngan
from musebridge.models.encoding import tones

TOY = CRNNGANConfig(generator_size=16, discriminator_size=12)


def _phrase() -> Phrase:
    notes = (Note(60, 80, 0, 1), Note(64, 70, 0, 1), Note(67, 90, 1, 0.5), Note(65, 100, 1.5, 2.5))
    return Phrase(notes=notes, bars=1)


def test_model_space_round_trip_and_scaling() -> None:
    array = tones.encode_phrase(_phrase())
    scaled = to_model_space(array)
    assert scaled.shape == array.shape == (3, 12)
    assert scaled[0, 0] == pytest.approx(1.0)  # one quarter note long
    assert scaled[0, 1] == pytest.approx((64 - 69) / 12)  # octaves from A4; top voice first
    assert scaled[1, 3] == pytest.approx(1.0)  # one beat after the previous step
    assert scaled[0, 8:11].tolist() == [0, 0, 0]  # empty third slot
    np.testing.assert_allclose(from_model_space(scaled), array, rtol=1e-5)


def test_generated_features_are_snapped_and_silenced() -> None:
    raw = np.zeros((3, 12), dtype=np.float32)
    raw[:, 3] = [0.1, 0.52, 0.49]  # onsets 0.1, 0.62, 1.11 -> 0, 0.5, 1.0 on the 16th grid
    raw[:, 0] = 0.1  # shorter than a 16th -> one 16th
    raw[:, 1] = 0.0  # A4
    raw[:, 2] = [0.6, 0.1, 0.6]  # the middle step is under the silence threshold
    notes = tones.decode_notes(from_model_space(raw))
    assert [(n.pitch, n.start, n.duration) for n in notes] == [(69, 0.0, 0.25), (69, 1.0, 0.25)]
    with pytest.raises(ValueError, match="NaN"):
        from_model_space(np.full((1, 12), np.nan))


def test_priming_reads_the_call() -> None:
    torch.manual_seed(0)
    model = CRNNGAN(TOY).eval()
    call = torch.from_numpy(to_model_space(tones.encode_phrase(_phrase()))).unsqueeze(0)
    first = model.generator.continue_call(call, 6, torch.Generator().manual_seed(1))
    again = model.generator.continue_call(call, 6, torch.Generator().manual_seed(1))
    unprimed = model.generator.continue_call(call[:, :0], 6, torch.Generator().manual_seed(1))
    assert first.shape == (1, 6, 12)
    assert torch.equal(first, again)
    assert not torch.allclose(first, unprimed)
    decoded = model.continue_tones(tones.encode_phrase(_phrase()), 6, seed=1, batch=2)
    assert len(decoded) == 2 and decoded[0].shape == (6, 12)


def test_primed_state_matches_teacher_forcing() -> None:
    torch.manual_seed(0)
    generator = CRNNGAN(TOY).generator.eval()
    real = torch.rand(2, 5, 12)
    noise = torch.rand(2, 6, 4)
    with torch.no_grad():
        full, _ = generator.teacher_forced(torch.cat([real, torch.zeros(2, 1, 12)], dim=1), noise)
        _, state = generator.teacher_forced(real, noise[:, :5])
        step = generator.run(1, noise[:, 5:], previous=real[:, -1], state=state)
    torch.testing.assert_close(step[:, 0], full[:, 5])


def test_discriminator_outputs_and_feature_matching() -> None:
    model = CRNNGAN(TOY)
    with torch.no_grad():
        probability, features = model.discriminator(torch.rand(3, 7, 12))
    assert probability.shape == (3,) and bool(((probability > 0) & (probability < 1)).all())
    assert features.shape == (3, 7, 24)
    assert float(feature_matching_loss(features, features)) == 0.0
    assert float(feature_matching_loss(features, features + 1)) > 0


def test_training_pretrains_then_runs_the_gan(tmp_path) -> None:
    data = synthetic_steps(32, 8, seed=0)
    options = ContinueTrainOptions(
        steps=24,
        pretrain_steps=16,
        min_length=4,
        batch_size=8,
        log_every=4,
        valid_every=8,
        checkpoint_every=24,
    )
    result = train_crnngan(TOY, options, data, data[:8], tmp_path, progress=False)
    pre = [row for row in result.history if "mse" in row]
    gan = [row for row in result.history if "d_loss" in row]
    assert pre and gan
    assert [row["length"] for row in pre][0] < [row["length"] for row in pre][-1] <= 8  # growing curriculum
    assert pre[-1]["mse"] < pre[0]["mse"]
    assert {"feature_matching", "d_frozen", "d_real", "d_fake"} <= set(gan[-1])
    assert (tmp_path / "run.pt").exists() and (tmp_path / "train_log.csv").exists()
    assert (tmp_path / "train_curves.png").exists()


def test_discriminator_freezes_when_far_ahead(tmp_path) -> None:
    data = synthetic_steps(16, 6, seed=0)
    options = ContinueTrainOptions(steps=3, pretrain_steps=0, batch_size=4, log_every=1, freeze_ratio=1e9)
    result = train_crnngan(TOY, options, data, None, tmp_path, progress=False)
    assert all(row["d_frozen"] == 1.0 for row in result.history)
    options = ContinueTrainOptions(steps=3, pretrain_steps=0, batch_size=4, log_every=1, freeze_ratio=0.0)
    result = train_crnngan(TOY, options, data, None, tmp_path / "b", progress=False)
    assert all(row["d_frozen"] == 0.0 for row in result.history)


def test_training_rejects_bad_data(tmp_path) -> None:
    with pytest.raises(ValueError, match="shape"):
        train_crnngan(TOY, ContinueTrainOptions(steps=1), np.zeros((4, 5, 7)), None, tmp_path, progress=False)
    bad = synthetic_steps(4, 5)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_crnngan(TOY, ContinueTrainOptions(steps=1), bad, None, tmp_path, progress=False)


def test_checkpoint_round_trip_weights_only(tmp_path) -> None:
    torch.manual_seed(0)
    model = CRNNGAN(TOY).eval()
    path = tmp_path / "c.pt"
    torch.save(checkpoint_dict(model, ["folk"]), path)
    loaded = model_from_checkpoint(torch.load(path, weights_only=True))
    call = tones.encode_phrase(_phrase())
    np.testing.assert_array_equal(
        model.continue_tones(call, 4, seed=2)[0], loaded.continue_tones(call, 4, seed=2)[0]
    )
    assert CRNNGANConfig.paper().generator_size == 350


def test_resume_across_the_pretraining_boundary_equals_a_straight_run(tmp_path) -> None:
    data = synthetic_steps(32, 8, seed=0)

    def options(steps: int) -> ContinueTrainOptions:
        return ContinueTrainOptions(steps=steps, pretrain_steps=6, min_length=4, batch_size=8, log_every=2,
                                    valid_every=4, checkpoint_every=4, device="cpu")

    straight = train_crnngan(TOY, options(12), data, data[:8], tmp_path / "a", progress=False)
    train_crnngan(TOY, options(4), data, data[:8], tmp_path / "b", progress=False)
    resumed = train_crnngan(TOY, options(12), data, data[:8], tmp_path / "b", resume=True, progress=False)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.history[-1]["d_loss"] == straight.history[-1]["d_loss"]
