"""WaveNet over melody tokens: causality, receptive field, cached (Fast WaveNet) == naive generation."""

from __future__ import annotations

import pytest
import torch

from musebridge.models.continuation.wavenet import (
    MelodyWaveNet,
    WaveNetConfig,
    checkpoint_dict,
    model_from_checkpoint,
)


def _toy(num_genres: int = 0, seed: int = 0) -> MelodyWaveNet:
    torch.manual_seed(seed)
    config = WaveNetConfig(
        residual_channels=12, skip_channels=16, blocks=2, layers_per_block=3, num_genres=num_genres
    )
    return MelodyWaveNet(config).eval()


def test_default_receptive_field_covers_four_bars() -> None:
    config = WaveNetConfig()
    assert config.dilations == [1, 2, 4, 8, 16, 32] * 2
    assert config.receptive_field == 127 >= 4 * 16


def test_forward_is_causal() -> None:
    model = _toy()
    tokens = torch.randint(0, 90, (1, 20))
    inputs, positions = model.teacher_forced_inputs(tokens, 16)
    before = model(inputs, positions)
    changed = inputs.clone()
    changed[0, 12] = (changed[0, 12] + 7) % 90
    after = model(changed, positions)
    assert torch.equal(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


@pytest.mark.parametrize("num_genres", [0, 3])
@pytest.mark.parametrize("call_length", [0, 1, 3, 37])
def test_cached_generation_equals_naive(num_genres: int, call_length: int) -> None:
    model = _toy(num_genres)
    call = torch.randint(0, 90, (2, call_length))
    genre = torch.tensor([0, 2]) if num_genres else None
    naive_tokens, naive_logits = model.generate_naive(
        call, 24, 16, genre=genre, generator=torch.Generator().manual_seed(5), return_logits=True
    )
    cached_tokens, cached_logits = model.generate(
        call, 24, 16, genre=genre, generator=torch.Generator().manual_seed(5), return_logits=True
    )
    assert torch.equal(naive_tokens, cached_tokens)
    torch.testing.assert_close(cached_logits, naive_logits, rtol=0, atol=1e-5)


def test_cached_logits_equal_teacher_forced_logits() -> None:
    model = _toy(seed=1)
    call = torch.randint(0, 90, (1, 30))
    answer, logits = model.generate(
        call, 10, 12, generator=torch.Generator().manual_seed(0), return_logits=True
    )
    inputs, positions = model.teacher_forced_inputs(torch.cat([call, answer], dim=1), 12)
    torch.testing.assert_close(model(inputs, positions)[:, 30:], logits, rtol=0, atol=1e-5)


def test_argmax_at_zero_temperature_and_seeded_sampling() -> None:
    model = _toy()
    call = torch.randint(0, 90, (1, 16))
    greedy, logits = model.generate(call, 8, 16, temperature=0.0, return_logits=True)
    assert torch.equal(greedy, logits.argmax(-1))
    first = model.generate(call, 8, 16, generator=torch.Generator().manual_seed(3))
    again = model.generate(call, 8, 16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)


def test_bad_inputs_raise() -> None:
    model = _toy()
    with pytest.raises(ValueError, match="0..89"):
        model.generate(torch.tensor([[3, 90]]), 4, 16)
    with pytest.raises(ValueError, match="shape"):
        model.generate(torch.tensor([3, 4]), 4, 16)
    with pytest.raises(ValueError, match="steps_per_bar"):
        model.generate(torch.tensor([[3, 4]]), 4, 0)


def test_a_few_training_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = MelodyWaveNet(WaveNetConfig(residual_channels=12, skip_channels=16, blocks=1, layers_per_block=3))
    tokens = torch.tensor([[40, 0, 1, 0, 42, 0, 1, 0] * 4] * 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first, _ = model.loss(tokens, 16)
    for _ in range(30):
        loss, _ = model.loss(tokens, 16)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * float(first.detach())


def test_checkpoint_round_trip_weights_only(tmp_path) -> None:
    model = _toy(num_genres=2)
    path = tmp_path / "w.pt"
    torch.save(checkpoint_dict(model, ["folk", "celtic"]), path)
    loaded = model_from_checkpoint(torch.load(path, weights_only=True))
    call = torch.randint(0, 90, (1, 8))
    genre = torch.tensor([1])
    assert torch.equal(
        model.generate(call, 6, 16, genre=genre, temperature=0),
        loaded.generate(call, 6, 16, genre=genre, temperature=0),
    )
    with pytest.raises(ValueError, match="not a wavenet"):
        model_from_checkpoint({"model": "crnngan"})
