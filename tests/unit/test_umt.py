"""Universal translator (models/umt): generation, bottlenecks, augmentation, training steps, new genres."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Meter, Note, Phrase
from musebridge.models.umt.augment import augment_roll, notes_of
from musebridge.models.umt.model import (
    UniversalTranslator,
    argmax_bottleneck,
    generate,
    generate_naive,
    get_config,
    load_umt,
    save_umt,
)
from musebridge.models.umt.phrase_model import UMTPhraseModel, create_umt_model
from musebridge.models.umt.train import UMTTrainer, choose_threshold, reconstruction_loss, train_umt

GENRES = ("folk", "chorale", "celtic")


@pytest.fixture(autouse=True)
def one_thread():
    """The machine's cores are shared: one torch thread keeps these tests fast and deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**overrides) -> UniversalTranslator:
    torch.manual_seed(0)
    return UniversalTranslator(get_config("tiny", genres=GENRES, **overrides)).eval()


def toy_rolls(seed: int, n: int = 16, chords: bool = False) -> np.ndarray:
    """Quarter-note melodies (or three-note chords) from random roots: rolls uint8 (n, 64, 84)."""
    rng = np.random.default_rng(seed)
    rolls = np.zeros((n, 64, 84), dtype=np.uint8)
    for r in range(n):
        for beat in range(16):
            root = int(rng.integers(30, 50))
            for offset in (0, 4, 7) if chords else (0,):
                rolls[r, beat * 4 : beat * 4 + 3, root + offset] = 1
    return rolls


@pytest.mark.parametrize("bottleneck", ["continuous", "argmax"])
def test_cached_generation_equals_the_naive_one(bottleneck: str) -> None:
    model = tiny(bottleneck=bottleneck)
    rolls = torch.from_numpy(toy_rolls(1, 3, chords=True).astype(np.float32))
    latent = model.encode(rolls)
    assert latent.shape == (3, model.config.latent_dim, 16)
    decoder = model.decoder("chorale")
    for threshold in (0.5, 0.45):  # around the untrained decoder's p, so both on and off cells occur
        cached, naive = generate(decoder, latent, threshold), generate_naive(decoder, latent, threshold)
        assert cached.dtype == torch.bool and cached.shape == (3, 64, 84)
        assert torch.equal(cached, naive)
    sampled = [generate(decoder, latent, 0.5, 1.0, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(sampled[0], sampled[1])
    assert torch.equal(
        sampled[0], generate_naive(decoder, latent, 0.5, 1.0, torch.Generator().manual_seed(7))
    )


def test_input_guidance_keeps_the_input_and_both_generations_agree() -> None:
    """Guidance adds its logits where the input sounds: both paths agree, 0 is the plain decoding, a
    large one sounds every input cell, and a negative or misshapen guide is refused."""
    model = tiny()
    rolls = torch.from_numpy(toy_rolls(2, 3).astype(np.float32))
    latent, decoder = model.encode(rolls), model.decoder("folk")
    for guidance in (0.0, 0.3, 2.0):
        cached = generate(decoder, latent, 0.5, guide=rolls, guidance=guidance)
        assert torch.equal(cached, generate_naive(decoder, latent, 0.5, guide=rolls, guidance=guidance))
    assert torch.equal(model.translate(rolls, "folk", guidance=0.0), generate(decoder, latent, 0.5))
    copied = model.translate(rolls, "folk", guidance=20.0)
    assert copied[rolls.bool()].all()  # every cell the input sounds, sounds
    plain = model.translate(rolls, "folk")
    assert int((copied & rolls.bool()).sum()) > int((plain & rolls.bool()).sum())
    with pytest.raises(ValueError, match="guidance must be"):
        model.translate(rolls, "folk", guidance=-1.0)
    with pytest.raises(ValueError, match="guide must be"):
        generate(decoder, latent, 0.5, guide=rolls[:2], guidance=1.0)


def test_argmax_bottleneck_is_one_hot_forward_and_passes_gradients() -> None:
    latent = torch.randn(2, 5, 4, requires_grad=True)
    code, q = argmax_bottleneck(latent)
    assert torch.allclose(code.sum(1), torch.ones(2, 4))
    assert set(code.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(code.argmax(1), q.argmax(1))
    (code * torch.arange(5.0).view(1, 5, 1)).sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0


def test_decoder_is_causal_and_the_encoder_sees_the_whole_phrase() -> None:
    model = tiny()
    roll = torch.from_numpy(toy_rolls(2, 1).astype(np.float32))
    changed = roll.clone()
    changed[0, 40:, :] = 0
    latent = model.encode(roll)
    decoder = model.decoder("folk")
    before, after = decoder(roll, latent), decoder(changed, latent)
    assert torch.allclose(before[:, :41], after[:, :41])  # frame t reads frames < t only
    assert not torch.allclose(before[:, 41:], after[:, 41:])
    # non-causal: the vector of steps 36..39 sees steps from 40 on
    assert not torch.allclose(model.encode(changed)[..., 9], latent[..., 9])


def test_augmentation_distorts_the_input_only_a_little_and_is_seeded() -> None:
    roll = toy_rolls(3, 1, chords=True)[0]
    copy = roll.copy()
    out = augment_roll(roll, np.random.default_rng(0), segments=2, drop=0.1, nudge=0.1)
    again = augment_roll(roll, np.random.default_rng(0), segments=2, drop=0.1, nudge=0.1)
    assert np.array_equal(roll, copy) and np.array_equal(out, again)
    assert out.shape == roll.shape and not np.array_equal(out, roll)
    assert 0.6 * len(notes_of(roll)) <= len(notes_of(out)) <= len(notes_of(roll)) + 4
    assert np.array_equal(augment_roll(roll, np.random.default_rng(0), segments=0, drop=0, nudge=0), roll)
    shifted = augment_roll(
        roll, np.random.default_rng(5), segments=1, segment_steps=(64, 64), drop=0, nudge=0
    )
    assert any(np.array_equal(shifted, np.roll(roll, s, axis=1)) for s in (1, -1))


@pytest.mark.parametrize("bottleneck", ["continuous", "argmax"])
def test_training_steps_lower_the_reconstruction_loss(bottleneck: str) -> None:
    model = tiny(bottleneck=bottleneck, learning_rate=3e-3)
    train = {"folk": toy_rolls(4), "chorale": toy_rolls(5, chords=True), "celtic": toy_rolls(6)}
    before = reconstruction_loss(model, train)
    result = train_umt(model, train, 20, log=lambda _line: None)
    assert result.steps == 20 and {"reconstruction", "confusion", "classifier_accuracy"} <= set(result.losses)
    assert ("diversity" in result.losses) == (bottleneck == "argmax")
    assert reconstruction_loss(model, train) < 0.7 * before
    threshold, scores = choose_threshold(model, train, candidates=(0.3, 0.5), per_genre=4)
    assert threshold in (0.3, 0.5) and set(scores) == {0.3, 0.5}
    assert scores[threshold] == max(scores.values()) and all(0.0 <= f <= 1.0 for f in scores.values())


def test_a_new_genre_trains_only_its_decoder() -> None:
    model = tiny()
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    model.add_genre("jazz")
    assert model.genres == (*GENRES, "jazz") and model.config.genres[-1] == "jazz"
    new_before = {k: v.clone() for k, v in model.decoder("jazz").state_dict().items()}
    train_umt(model, {"jazz": toy_rolls(7)}, 5, new_genres=("jazz",), log=lambda _line: None)
    after = model.state_dict()
    for key, value in frozen.items():  # encoder, classifier and every other decoder: bit-identical
        assert torch.equal(after[key], value), key
    assert any(not torch.equal(model.decoder("jazz").state_dict()[k], v) for k, v in new_before.items())


def reference_loop(trainer: UMTTrainer, train: dict, steps: int, seed: int, genres=None) -> list[dict]:
    """The loop UMT trained with before the shared trainer (models/umt/train.py's train_loop, logging
    left out): torch seeded, batches from numpy seeded by seed + 1, one UMTTrainer.step each."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    size = trainer.config.batch_per_genre
    rows = []
    for _ in range(steps):
        batches = {g: train[g][rng.integers(0, len(train[g]), size)] for g in genres or train}
        rows.append(trainer.step(batches))
    return rows


@pytest.mark.parametrize("mode", ["continuous", "argmax", "add_genre"])
def test_shared_trainer_follows_the_old_loop_exactly(mode: str, tmp_path) -> None:
    """One process on models/training: the same per-step losses and the same weights as the old loop."""
    def make() -> tuple[UniversalTranslator, dict, tuple[str, ...]]:
        if mode == "add_genre":
            model = tiny()
            model.add_genre("jazz")
            return model, {"jazz": toy_rolls(7)}, ("jazz",)
        train = {"folk": toy_rolls(4), "chorale": toy_rolls(5, chords=True), "celtic": toy_rolls(6)}
        return tiny(bottleneck=mode, learning_rate=3e-3), train, ()

    model, train, new = make()
    old = reference_loop(UMTTrainer(model, seed=3, new_genres=new), train, 6, 3)
    ported, train, new = make()
    result = train_umt(ported, train, 6, 3, new_genres=new, log=lambda _line: None, log_every=1,
                       out_dir=tmp_path / "run")
    logged = [{k: v for k, v in row.items() if k not in ("step", "seconds")} for row in result.history]
    assert logged == old  # bit-identical, not approximately
    for key, value in model.state_dict().items():
        assert torch.equal(value, ported.state_dict()[key]), key
    assert {"reconstruction", "frames_exact"} <= set(old[-1]) and old[0] != old[-1]


def test_training_resumes_exactly_after_an_interruption(tmp_path) -> None:
    """The batch and augmentation streams, both optimisers and the best-so-far come back from run.pt."""
    train = {"folk": toy_rolls(4), "chorale": toy_rolls(5, chords=True)}
    valid = {"folk": toy_rolls(9, 4)}

    def run(folder, resume=False, stop_at=0):
        torch.manual_seed(0)
        model = UniversalTranslator(get_config("tiny", genres=("folk", "chorale")))
        kept = []

        def checkpoint(step: int, loss: float, best: bool) -> None:
            kept.append((step, best))
            if step == stop_at:
                raise KeyboardInterrupt  # a kill right after run.pt of this step was written

        result = train_umt(model, train, 6, 2, validation=lambda m: reconstruction_loss(m, valid),
                           checkpoint=checkpoint, checkpoint_every=3, log=lambda _l: None,
                           out_dir=folder, resume=resume)
        return model.state_dict(), result.history, result.best, kept

    straight, history, best, kept = run(tmp_path / "a")
    assert [step for step, _ in kept] == [3, 6] and best["step"] in (3, 6) and kept[0][1]
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=3)
    resumed, again, best_again, kept_again = run(tmp_path / "b", resume=True)
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    timeless = [[{k: v for k, v in r.items() if k != "seconds"} for r in h] for h in (history, again)]
    assert timeless[0] == timeless[1] and "valid_reconstruction" in again[-1]
    assert best_again == best and kept_again == kept[1:] and (tmp_path / "b" / "train_curves.png").exists()


def test_checkpoint_round_trip_keeps_an_added_genre(tmp_path) -> None:
    model = tiny(bottleneck="argmax")
    model.add_genre("jazz")
    path = tmp_path / "umt.pt"
    save_umt(model, path, {"steps": 3})
    loaded, extra = load_umt(path)
    assert loaded.genres == model.genres and extra["steps"] == 3
    assert loaded.config.classifier_genres == 3 and loaded.config.bottleneck == "argmax"
    rolls = torch.from_numpy(toy_rolls(8, 2).astype(np.float32))
    assert torch.equal(loaded.translate(rolls, "jazz"), model.translate(rolls, "jazz"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read UMT checkpoint"):
        load_umt(tmp_path / "junk.pt")


def test_phrase_model_transfers_into_every_genre_and_names_unknown_ones(tmp_path) -> None:
    model = tiny()
    path = tmp_path / "umt.pt"
    save_umt(model, path)
    phrase_model = create_umt_model("cpu", {"checkpoint": str(path)})
    assert isinstance(phrase_model, UMTPhraseModel) and phrase_model.genres == tuple(sorted(GENRES))
    notes = tuple(Note(60 + (i * 5) % 12, 70 + i, i * 1.0, 1.0) for i in range(12))
    phrase = Phrase(notes, 4, Meter(3, 4))
    for genre in GENRES:
        out = phrase_model.generate(ModelRequest("transfer", phrase, 4, genre=genre))
        assert out.bars == 4 and out.meter == Meter(3, 4)
        assert all(0 <= n.start and n.end <= 12 + 1e-9 for n in out.notes)
    silent = phrase_model.generate(ModelRequest("transfer", Phrase((), 4), 4, genre="folk"))
    assert silent.notes == ()
    with pytest.raises(ValueError, match="known: celtic, chorale, folk"):
        phrase_model.generate(ModelRequest("transfer", phrase, 4, genre="jazz"))
    from musebridge.errors import UserError

    with pytest.raises(UserError, match="checkpoint not found"):
        create_umt_model("cpu", {"checkpoint": str(tmp_path / "missing.pt")})
    for bad in (-1, "lots", float("nan"), 25):  # as `transfer --guidance` refuses them (0..20)
        with pytest.raises(UserError, match=r"guidance must be 0\.\.20"):
            create_umt_model("cpu", {"checkpoint": str(path), "guidance": bad})
    from musebridge.commands.arguments import guidance as cli_guidance
    from musebridge.models.umt.model import MAX_GUIDANCE

    assert cli_guidance(str(MAX_GUIDANCE)) == MAX_GUIDANCE
    with pytest.raises(argparse.ArgumentTypeError):
        cli_guidance(str(MAX_GUIDANCE + 0.1))
    guided = create_umt_model("cpu", {"checkpoint": str(path), "guidance": 20})
    out = guided.generate(ModelRequest("transfer", phrase, 4, genre="folk"))
    for note in notes:  # at guidance 20 every played note sounds (the decoder may join it to its own)
        assert any(o.pitch == note.pitch and o.start <= note.start < o.end for o in out.notes), note
