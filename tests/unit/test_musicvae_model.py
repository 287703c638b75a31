"""MusicVAE model: shapes, loss parts, schedules, slerp, generation, checkpoints, toy training."""

from __future__ import annotations

import math

import pytest
import torch
from vae_helpers import toy_melodies

from musebridge.models.musicvae.model import (
    MusicVAE,
    MusicVAEConfig,
    checkpoint_dict,
    load_checkpoint,
    model_from_checkpoint,
    slerp,
)

TOY = dict(z_size=8, encoder_size=16, decoder_size=16, conductor_size=16, bars=2)


@pytest.mark.parametrize("hierarchical,bars", [(False, 2), (True, 4)])
def test_shapes_and_loss_parts(hierarchical: bool, bars: int) -> None:
    torch.manual_seed(0)
    config = MusicVAEConfig(**{**TOY, "bars": bars, "hierarchical": hierarchical})
    model = MusicVAE(config)
    tokens = torch.as_tensor(toy_melodies(5, bars))
    mu, sigma = model.encode(tokens)
    assert mu.shape == sigma.shape == (5, 8)
    assert bool((sigma > 0).all())
    logits = model.teacher_forced_logits(mu, tokens)
    assert logits.shape == (5, bars * 16, 90)
    parts = model.loss(tokens, step=100)
    assert parts["loss"].requires_grad
    expected = parts["reconstruction"] + parts["beta"] * torch.clamp(parts["kl"], min=0)
    assert float(parts["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)
    model.eval()
    assert model.decode(mu).shape == (5, bars * 16)


def test_teacher_forcing_is_causal() -> None:
    """Changing token t must not change the logits of steps <= t (decoder reads only the past)."""
    torch.manual_seed(0)
    for hierarchical, bars in ((False, 2), (True, 4)):
        model = MusicVAE(MusicVAEConfig(**{**TOY, "bars": bars, "hierarchical": hierarchical})).eval()
        tokens = torch.as_tensor(toy_melodies(1, bars))
        z = torch.randn(1, 8)
        changed = tokens.clone()
        changed[0, 20] = (changed[0, 20] + 7) % 90
        a = model.teacher_forced_logits(z, tokens)
        b = model.teacher_forced_logits(z, changed)
        assert torch.allclose(a[:, :21], b[:, :21])
        assert not torch.allclose(a[:, 21:], b[:, 21:])


def test_generation_matches_teacher_forcing() -> None:
    """Argmax decoding equals the teacher-forced argmax when fed its own outputs (flat and hierarchical)."""
    torch.manual_seed(1)
    for hierarchical, bars in ((False, 2), (True, 4)):
        model = MusicVAE(MusicVAEConfig(**{**TOY, "bars": bars, "hierarchical": hierarchical})).eval()
        z = torch.randn(3, 8)
        generated = model.decode(z)
        logits = model.teacher_forced_logits(z, generated)
        assert torch.equal(logits.argmax(-1), generated)


def test_schedules_follow_magenta() -> None:
    model = MusicVAE(MusicVAEConfig(**TOY, max_beta=0.2, beta_rate=0.999, sampling_rate=1000))
    assert model.beta(0) == 0.0
    assert model.beta(1000) == pytest.approx((1 - 0.999**1000) * 0.2)
    assert model.sampling_probability(0) == pytest.approx(1 - 1000 / 1001)
    assert model.sampling_probability(10_000) == pytest.approx(1 - 1000 / (1000 + math.exp(10)))
    assert model.sampling_probability(10**7) == pytest.approx(1.0)


def test_free_bits_zero_the_kl_term_below_threshold() -> None:
    torch.manual_seed(0)
    model = MusicVAE(MusicVAEConfig(**TOY, free_bits=1e6, max_beta=1.0, beta_rate=0.0))
    tokens = torch.as_tensor(toy_melodies(4, 2))
    parts = model.loss(tokens, step=10)
    assert float(parts["kl"]) > 0
    assert float(parts["loss"].detach()) == pytest.approx(float(parts["reconstruction"]), rel=1e-6)


def test_slerp_endpoints_and_norm() -> None:
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 2.0, 0.0])
    path = slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(path[0], a, atol=1e-6)
    assert torch.allclose(path[2], b, atol=1e-6)
    # halfway between orthogonal vectors: equal weights sin(pi/4)/sin(pi/2)
    assert torch.allclose(path[1], torch.tensor([math.sqrt(0.5), 2 * math.sqrt(0.5), 0.0]), atol=1e-6)
    same = slerp(a, a, torch.tensor([0.3]))
    assert torch.allclose(same[0], a)


def test_sampling_is_seeded_and_temperature_matters() -> None:
    torch.manual_seed(0)
    model = MusicVAE(MusicVAEConfig(**TOY)).eval()
    first = model.sample(4, temperature=1.0, generator=torch.Generator().manual_seed(3))
    again = model.sample(4, temperature=1.0, generator=torch.Generator().manual_seed(3))
    other = model.sample(4, temperature=1.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == (4, 32)


def test_interpolate_batch_and_endpoints() -> None:
    torch.manual_seed(0)
    model = MusicVAE(MusicVAEConfig(**TOY)).eval()
    tokens = torch.as_tensor(toy_melodies(2, 2))
    inner = model.interpolate(tokens[0], tokens[1], steps=6)
    assert inner.shape == (6, 32)
    with_ends = model.interpolate(tokens[0], tokens[1], steps=3, include_endpoints=True)
    assert torch.equal(with_ends[0], model.reconstruct(tokens[:1])[0])
    assert torch.equal(with_ends[2], model.reconstruct(tokens[1:])[0])
    with pytest.raises(ValueError):
        model.interpolate(tokens[0], tokens[1], steps=0)


def test_attribute_shift() -> None:
    model = MusicVAE(MusicVAEConfig(**TOY))
    model.attribute_vectors["note_density"] = torch.ones(8)
    z = torch.zeros(2, 8)
    assert torch.equal(model.shift_attribute(z, "note_density", 2.0), torch.full((2, 8), 2.0))
    with pytest.raises(KeyError, match="note_density"):
        model.shift_attribute(z, "syncopation", 1.0)


def test_bad_tokens_are_rejected() -> None:
    model = MusicVAE(MusicVAEConfig(**TOY))
    with pytest.raises(ValueError, match="shape"):
        model.encode(torch.zeros(2, 31, dtype=torch.long))
    with pytest.raises(ValueError, match="0..89"):
        model.encode(torch.full((2, 32), 90, dtype=torch.long))


def test_checkpoint_roundtrip_weights_only(tmp_path) -> None:
    torch.manual_seed(0)
    model = MusicVAE(MusicVAEConfig(**{**TOY, "bars": 4, "hierarchical": True})).eval()
    model.attribute_vectors["note_density"] = torch.randn(8)
    path = tmp_path / "vae.pt"
    torch.save(checkpoint_dict(model, genres=["folk"], training={"steps": 1}, half=False), path)
    loaded, checkpoint = load_checkpoint(str(path))
    assert checkpoint["genres"] == ["folk"]
    z = torch.randn(2, 8)
    assert torch.equal(loaded.decode(z), model.decode(z))
    assert torch.equal(loaded.attribute_vectors["note_density"], model.attribute_vectors["note_density"])
    half = checkpoint_dict(model, genres=[], training={}, half=True)
    assert all(v.dtype == torch.float16 for v in half["state_dict"].values())
    assert model_from_checkpoint(half).config == model.config
    with pytest.raises(ValueError, match="not a MusicVAE"):
        model_from_checkpoint({"format": "other"})
