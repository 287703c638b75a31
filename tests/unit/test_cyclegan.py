"""CycleGAN (Brunner et al. 2018): shapes, paper sizes, losses, noise, pool, a training step, checkpoints."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from musebridge.models.cyclegan.model import (
    CONFIGS,
    CycleGAN,
    CycleGANConfig,
    Generator,
    ImagePool,
    PatchDiscriminator,
    count_parameters,
    get_config,
    half_normal_noise,
    least_squares,
    load_cyclegan,
    save_cyclegan,
)
from musebridge.models.cyclegan.train import CycleGANTrainer, GeneratorAverage, balance, train_cyclegan
from musebridge.models.judges.classifier import (
    ClassifierConfig,
    GenreClassifier,
    accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The machine's cores are shared: one torch thread keeps these tests fast and deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TOY = CycleGANConfig(
    name="toy", generator_channels=4, residual_blocks=1, discriminator_channels=4, batch_size=4
)


def sparse_rolls(n: int, seed: int, density: float = 0.03) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 84, generator=g) < density).float()


def test_paper_config_has_the_paper_sizes() -> None:
    config = get_config("brunner2018")
    assert (config.cycle_weight, config.mixed_weight, config.pool_size) == (10.0, 1.0, 50)
    assert (config.learning_rate, config.beta1, config.batch_size) == (2e-4, 0.5, 16)
    # ~12.5M per generator, ~0.8M per discriminator (paper section IV)
    assert 12.0e6 < count_parameters(Generator(config)) < 13.0e6
    assert 0.75e6 < count_parameters(PatchDiscriminator(config)) < 0.85e6


def test_shapes_generator_and_patch_discriminator() -> None:
    for config in (TOY, CONFIGS["cpu_small"]):
        roll = sparse_rolls(2, 0)
        out = Generator(config)(roll)
        assert out.shape == (2, 1, 64, 84)
        assert out.min().item() >= 0.0 and out.max().item() <= 1.0
        assert PatchDiscriminator(config)(roll).shape == (2, 1, 16, 21)


def test_extra_discriminators_only_in_partial_and_full_kinds() -> None:
    assert len(CycleGAN(TOY).discriminators()) == 4
    assert len(CycleGAN(CycleGANConfig(**{**TOY.to_dict(), "kind": "base"})).discriminators()) == 2
    assert len(CycleGAN(CycleGANConfig(**{**TOY.to_dict(), "kind": "full"})).discriminators()) == 4
    with pytest.raises(ValueError):
        CycleGANConfig(kind="full-ish")
    with pytest.raises(ValueError):
        get_config("nope")


def test_half_normal_noise_is_non_negative_with_the_right_scale() -> None:
    like = torch.zeros(200, 1, 64, 84)
    noise = half_normal_noise(like, 1.0, torch.Generator().manual_seed(0))
    assert float(noise.min()) >= 0.0
    assert abs(float(noise.mean()) - (2 / np.pi) ** 0.5) < 0.01  # E|N(0,1)| = sqrt(2/pi)
    assert torch.equal(half_normal_noise(like, 0.0), like)


def test_least_squares_criterion() -> None:
    assert float(least_squares(torch.ones(3), 1.0)) == 0.0
    assert float(least_squares(torch.zeros(4), 1.0)) == 1.0


def test_image_pool_fills_then_mixes_history() -> None:
    pool = ImagePool(3, random.Random(0))
    first = torch.arange(3.0).view(3, 1)
    assert torch.equal(pool.query(first), first)  # filling: the batch itself
    later = torch.full((50, 1), 9.0)
    mixed = pool.query(later)
    assert mixed.shape == (50, 1)
    assert set(mixed.flatten().tolist()) - {9.0}  # some old fakes come back
    assert torch.equal(ImagePool(0).query(later), later)


def test_trainer_step_updates_every_network_and_lowers_the_cycle_loss() -> None:
    torch.manual_seed(0)
    model = CycleGAN(TOY)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = CycleGANTrainer(model, total_steps=12, seed=0)
    a, b = sparse_rolls(2, 1), sparse_rolls(2, 2)
    losses = [trainer.step(a, b, torch.cat([a[:1], b[:1]])) for _ in range(12)]
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {
        "generator_ab",
        "generator_ba",
        "discriminator_a",
        "discriminator_b",
        "discriminator_a_mixed",
        "discriminator_b_mixed",
    }
    assert losses[-1]["g_cycle"] < losses[0]["g_cycle"]
    assert losses[0]["g_mixed"] > 0.0  # the extra discriminators pull the generators (paper text)
    with pytest.raises(ValueError):
        trainer.step(a, b, None)


def test_generator_ignores_mixed_discriminators_when_asked() -> None:
    model = CycleGAN(CycleGANConfig(**{**TOY.to_dict(), "mixed_generator_loss": False}))
    trainer = CycleGANTrainer(model, total_steps=2, seed=0)
    a = sparse_rolls(4, 1)
    assert trainer.step(a, a, a)["g_mixed"] == 0.0


def test_train_cyclegan_is_deterministic_per_seed() -> None:
    a = sparse_rolls(8, 3).squeeze(1).numpy().astype(np.uint8)
    b = sparse_rolls(8, 4).squeeze(1).numpy().astype(np.uint8)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = CycleGAN(TOY)
        train_cyclegan(model, a, b, steps=3, seed=5, log=lambda _m: None)
        runs.append(model.generator_ab.state_dict())
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key])


def test_balance_downsamples_the_larger_genre() -> None:
    rng = np.random.default_rng(0)
    a, b = balance(np.zeros((10, 2)), np.ones((4, 2)), rng)
    assert len(a) == len(b) == 4
    a, b = balance(np.zeros((10, 2)), np.ones((40, 2)), rng, cap=3)
    assert len(a) == len(b) == 3


def test_cyclegan_checkpoint_round_trip(tmp_path) -> None:
    model = CycleGAN(TOY)
    path = tmp_path / "cyclegan_x_y.pt"
    save_cyclegan(model, path, ("x", "y"), {"steps": 7})
    loaded, genres, extra = load_cyclegan(path)
    assert genres == ("x", "y") and extra == {"steps": 7}
    roll = sparse_rolls(1, 9)
    assert torch.equal(loaded.transfer(roll), model.eval().transfer(roll))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        load_cyclegan(tmp_path / "junk.pt")


def test_classifier_shapes_learns_a_toy_pair_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    classifier = GenreClassifier(ClassifierConfig(channels=8, batch_size=16))
    assert classifier(sparse_rolls(3, 0)).shape == (3, 2)
    # toy genres: A plays low notes, B high notes
    rng = np.random.default_rng(0)
    low = np.zeros((48, 64, 84), dtype=np.uint8)
    high = np.zeros((48, 64, 84), dtype=np.uint8)
    for i in range(48):
        low[i, rng.integers(0, 64, 12), rng.integers(0, 30, 12)] = 1
        high[i, rng.integers(0, 64, 12), rng.integers(54, 84, 12)] = 1
    fit = train_classifier(
        classifier, low[:40], high[:40], epochs=8, seed=0, valid=(low[40:], high[40:]), log=str
    )
    held_out = (
        torch.from_numpy(low[40:]).float().unsqueeze(1),
        torch.from_numpy(high[40:]).float().unsqueeze(1),
    )
    assert accuracy(classifier, *held_out) == 1.0
    assert fit["valid_accuracy"] == 1.0
    path = tmp_path / "genre_classifier_low_high.pt"
    save_classifier(classifier, path, ("low", "high"))
    loaded, genres = load_classifier(path)
    assert genres == ("low", "high")
    assert torch.allclose(loaded.probabilities(held_out[0]), classifier.probabilities(held_out[0]))


def test_input_skip_starts_near_identity_and_is_off_in_the_paper_configs() -> None:
    assert all(config.input_skip == 0.0 for config in CONFIGS.values())
    torch.manual_seed(0)
    skip = Generator(CycleGANConfig(**{**TOY.to_dict(), "input_skip": 6.0}))
    roll = sparse_rolls(2, 5)
    assert torch.equal((skip(roll) >= 0.5).float(), roll)
    assert "skip_weight" in dict(skip.named_parameters())
    assert "skip_weight" not in dict(Generator(TOY).named_parameters())


def test_generator_average_follows_the_weights_and_swaps_back() -> None:
    torch.manual_seed(0)
    model = CycleGAN(TOY)
    average = GeneratorAverage(model, decay=0.5)
    start = {k: v.clone() for k, v in model.generator_ab.state_dict().items()}
    with torch.no_grad():
        for p in model.generator_ab.parameters():
            p.add_(1.0)
    average.update()  # warm-up decay min(0.5, 2/11) = 2/11: the average moves 9/11 of the way
    key = next(k for k, v in start.items() if v.dtype.is_floating_point)
    assert torch.allclose(average.shadow["generator_ab"][key], start[key] + 9.0 / 11.0)
    live = model.generator_ab.state_dict()[key].clone()
    average.swap()
    assert torch.allclose(model.generator_ab.state_dict()[key], start[key] + 9.0 / 11.0)
    average.swap()
    assert torch.equal(model.generator_ab.state_dict()[key], live)
    with pytest.raises(ValueError):
        GeneratorAverage(model, decay=1.0)


def test_train_cyclegan_with_ema_saves_and_returns_the_average_of_an_unchanged_trajectory() -> None:
    a = sparse_rolls(8, 3).squeeze(1).numpy().astype(np.uint8)
    b = sparse_rolls(8, 4).squeeze(1).numpy().astype(np.uint8)

    def run(decay: float) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        torch.manual_seed(123)
        model = CycleGAN(TOY)
        saved = [{k: v.clone() for k, v in model.generator_ab.state_dict().items()}]

        def keep(_step: int) -> None:
            saved.append({k: v.clone() for k, v in model.generator_ab.state_dict().items()})

        train_cyclegan(
            model,
            a,
            b,
            steps=4,
            seed=5,
            log=lambda _m: None,
            checkpoint=keep,
            checkpoint_every=1,
            ema_decay=decay,
        )
        return saved, model.generator_ab.state_dict()

    live, _ = run(0.0)  # the weights after each step, init first
    averaged, final = run(0.9)  # each checkpoint saves the average; training goes on with live weights
    expected = {k: v.clone() for k, v in live[0].items()}
    for step in range(1, 5):
        decay = min(0.9, (1.0 + step) / (10.0 + step))
        for key, value in live[step].items():
            if value.dtype.is_floating_point:
                expected[key] = decay * expected[key] + (1.0 - decay) * value
            assert torch.allclose(averaged[step][key], expected[key], atol=1e-6)
    for key in expected:
        assert torch.allclose(final[key], expected[key], atol=1e-6)
    assert any(not torch.allclose(final[k], live[4][k]) for k in final)


def test_train_cyclegan_feeds_the_given_mixed_set_to_the_extra_discriminators() -> None:
    a = sparse_rolls(8, 3).squeeze(1).numpy().astype(np.uint8)
    b = sparse_rolls(8, 4).squeeze(1).numpy().astype(np.uint8)
    other = np.ones((8, 64, 84), dtype=np.uint8)  # a third "genre" unlike A and B
    weights = {}
    for name, mixed in (("partial", None), ("explicit A u B", np.concatenate([a, b])), ("full", other)):
        torch.manual_seed(123)
        model = CycleGAN(TOY)
        train_cyclegan(model, a, b, steps=2, seed=5, log=lambda _m: None, mixed=mixed)
        weights[name] = next(iter(model.discriminator_a_mixed.parameters())).detach().clone()
    assert torch.equal(weights["partial"], weights["explicit A u B"])  # default M = A u B
    assert not torch.equal(weights["partial"], weights["full"])


def test_train_cyclegan_resumes_exactly_after_an_interruption(tmp_path) -> None:
    """Pools, noise, EMA, schedules and the batch stream come back from run.pt: the same weights."""
    a = sparse_rolls(8, 3).squeeze(1).numpy().astype(np.uint8)
    b = sparse_rolls(8, 4).squeeze(1).numpy().astype(np.uint8)
    config = CycleGANConfig(**{**TOY.to_dict(), "pool_size": 3})

    def run(folder, resume=False, stop_at=0):
        torch.manual_seed(123)
        model = CycleGAN(config)

        def checkpoint(step: int) -> None:
            if step == stop_at:
                raise KeyboardInterrupt  # a kill right after run.pt of this step was written

        train_cyclegan(model, a, b, steps=6, seed=5, log=lambda _m: None, checkpoint=checkpoint,
                       checkpoint_every=3, ema_decay=0.5, out_dir=folder, resume=resume)
        return model.state_dict()

    straight = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=3)
    resumed = run(tmp_path / "b", resume=True)
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    assert (tmp_path / "b" / "train_log.json").exists() and (tmp_path / "b" / "train_curves.png").exists()
