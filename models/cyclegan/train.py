"""Training of the genre-transfer CycleGAN and its evaluation classifier (`musebridge train transfer`;
the options are defined in bridge/commands/transfer.py).

    musebridge train transfer --pair celtic folk --config cpu_small --steps 3000 -o models/checkpoints
    musebridge train transfer --a ~/midi/jazz --b ~/midi/pop --config cpu_small -o ~/my_models

Data: 4-bar piano-roll phrases of the train split (valid for classifier model selection); the larger
genre of the pair is downsampled to the smaller (as the paper), the mixed set M is A u B. The genre
classifier is trained first on real phrases only; the CycleGAN after it. Each run writes
cyclegan_<a>_<b>.pt / .yaml and genre_classifier_<a>_<b>.pt / .yaml (the model cards).
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musebridge.core.music import Meter
from musebridge.models.cyclegan.model import (
    CycleGAN,
    CycleGANConfig,
    ImagePool,
    get_config,
    half_normal_noise,
    least_squares,
    save_cyclegan,
)


class CycleGANTrainer:
    """One optimisation step at a time: generators first, then all discriminators (fakes from the pool)."""

    def __init__(self, model: CycleGAN, total_steps: int, decay_from: float = 0.5, seed: int = 0):
        cfg = model.config
        self.model = model
        self.config = cfg
        betas = (cfg.beta1, 0.999)
        g_params = itertools.chain(*(m.parameters() for m in model.generators()))
        d_params = itertools.chain(*(m.parameters() for m in model.discriminators()))
        self.optimiser_g = torch.optim.Adam(g_params, lr=cfg.learning_rate, betas=betas)
        self.optimiser_d = torch.optim.Adam(d_params, lr=cfg.learning_rate, betas=betas)
        decay_start = int(total_steps * decay_from)

        def factor(step: int) -> float:  # constant, then linear decay to 0 (the paper's schedule)
            if step < decay_start:
                return 1.0
            return max(0.0, (total_steps - step) / max(1, total_steps - decay_start))

        self.schedules = [
            torch.optim.lr_scheduler.LambdaLR(self.optimiser_g, factor),
            torch.optim.lr_scheduler.LambdaLR(self.optimiser_d, factor),
        ]
        self.pool_a = ImagePool(cfg.pool_size, random.Random(seed))
        self.pool_b = ImagePool(cfg.pool_size, random.Random(seed + 1))
        self.noise = torch.Generator().manual_seed(seed + 2)
        self.steps_done = 0

    def _noisy(self, roll: torch.Tensor) -> torch.Tensor:
        return roll + half_normal_noise(roll, self.config.sigma_d, self.noise)

    def _set_discriminators_trainable(self, trainable: bool) -> None:
        for module in self.model.discriminators():
            module.requires_grad_(trainable)

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor, mixed: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One step on batches (B, 1, T, P) of A, B and the mixed set M; returns the losses."""
        m, cfg = self.model, self.config
        self.model.train()
        # Generators: adversarial (LSGAN) + cycle L1 (+ extra discriminators, as the paper's text says).
        self._set_discriminators_trainable(False)
        fake_b = m.generator_ab(real_a)
        cycle_a = m.generator_ba(fake_b)
        fake_a = m.generator_ba(real_b)
        cycle_b = m.generator_ab(fake_a)
        adversarial = least_squares(m.discriminator_b(self._noisy(fake_b)), 1.0) + least_squares(
            m.discriminator_a(self._noisy(fake_a)), 1.0
        )
        cycle = cfg.cycle_weight * (
            torch.mean(torch.abs(cycle_a - real_a)) + torch.mean(torch.abs(cycle_b - real_b))
        )
        g_loss = adversarial + cycle
        mixed_adversarial = torch.zeros(())
        if m.uses_mixed and cfg.mixed_generator_loss:
            mixed_adversarial = cfg.mixed_weight * (
                least_squares(m.discriminator_b_mixed(self._noisy(fake_b)), 1.0)
                + least_squares(m.discriminator_a_mixed(self._noisy(fake_a)), 1.0)
            )
            g_loss = g_loss + mixed_adversarial
        self.optimiser_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimiser_g.step()

        # Discriminators: real -> 1, pooled fakes -> 0; the extra ones take M as real.
        self._set_discriminators_trainable(True)
        pooled_a = self.pool_a.query(fake_a.detach())
        pooled_b = self.pool_b.query(fake_b.detach())
        d_loss = self._d_loss(m.discriminator_a, real_a, pooled_a) + self._d_loss(
            m.discriminator_b, real_b, pooled_b
        )
        d_mixed = torch.zeros(())
        if m.uses_mixed:
            if mixed is None:
                raise ValueError("this CycleGAN has extra discriminators: pass a mixed batch")
            d_mixed = cfg.mixed_weight * (
                self._d_loss(m.discriminator_a_mixed, mixed, pooled_a)
                + self._d_loss(m.discriminator_b_mixed, mixed, pooled_b)
            )
        self.optimiser_d.zero_grad(set_to_none=True)
        (d_loss + d_mixed).backward()
        self.optimiser_d.step()
        for schedule in self.schedules:
            schedule.step()
        self.steps_done += 1
        return {
            "g_adversarial": adversarial.item(),
            "g_cycle": cycle.item(),
            "g_mixed": mixed_adversarial.item(),
            "d": d_loss.item(),
            "d_mixed": d_mixed.item(),
        }

    def _d_loss(self, discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_loss = least_squares(discriminator(self._noisy(real)), 1.0)
        fake_loss = least_squares(discriminator(self._noisy(fake)), 0.0)
        return 0.5 * (real_loss + fake_loss)


class GeneratorAverage:
    """Exponential moving average of both generators' weights (not in the paper; a GAN stabiliser).

    Checkpoints 100 steps apart swing widely in transfer strength; an average of the recent weights
    (Polyak averaging, Yazici et al. 2019) follows the trajectory without its oscillation. The decay
    warms up as min(decay, (1 + step) / (10 + step)) so the first steps do not pin it to the init.
    """

    def __init__(self, model: CycleGAN, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = model
        self.shadow = {name: self._state(name) for name in ("generator_ab", "generator_ba")}
        self.updates = 0

    def _state(self, name: str) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in getattr(self.model, name).state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        """Blend the live generator weights into the average (call after each optimiser step)."""
        self.updates += 1
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for name, shadow in self.shadow.items():
            for key, value in getattr(self.model, name).state_dict().items():
                if value.dtype.is_floating_point:
                    shadow[key].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
                else:
                    shadow[key].copy_(value)

    def swap(self) -> None:
        """Exchange the live and the averaged generator weights (call twice to undo)."""
        for name, shadow in self.shadow.items():
            live = self._state(name)
            getattr(self.model, name).load_state_dict(shadow)
            self.shadow[name] = live


def _batch(rolls: np.ndarray, index: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rolls[index].astype(np.float32)).unsqueeze(1)  # (B, 1, T, P)


def train_cyclegan(
    model: CycleGAN,
    train_a: np.ndarray,
    train_b: np.ndarray,
    steps: int,
    seed: int = 0,
    log: Callable[[str], None] = print,
    log_every: int = 50,
    checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: int = 0,
    ema_decay: float = 0.0,
    mixed: np.ndarray | None = None,
) -> dict[str, float]:
    """Train for `steps` batches on rolls (N, T, P) of A and B (balanced by the caller).

    The mixed set M of the extra discriminators is `mixed` when given (the "full" model: A, B and
    other genres), else A u B (the "partial" model).

    With `ema_decay` > 0 the checkpoints and the returned model hold the moving average of the
    generator weights (GeneratorAverage), not the last weights. Returns the mean losses of the last
    `log_every` steps.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    trainer = CycleGANTrainer(model, steps, seed=seed)
    average = GeneratorAverage(model, ema_decay) if ema_decay > 0 else None
    if mixed is None:
        mixed = np.concatenate([train_a, train_b])
    size = model.config.batch_size
    recent: list[dict[str, float]] = []
    began = time.perf_counter()
    for step in range(1, steps + 1):
        batch_a = _batch(train_a, rng.integers(0, len(train_a), size))
        batch_b = _batch(train_b, rng.integers(0, len(train_b), size))
        batch_m = _batch(mixed, rng.integers(0, len(mixed), size)) if model.uses_mixed else None
        recent = (recent + [trainer.step(batch_a, batch_b, batch_m)])[-log_every:]
        if average is not None:
            average.update()
        if step % log_every == 0 or step == steps:
            means = {k: float(np.mean([r[k] for r in recent])) for k in recent[0]}
            rate = step / (time.perf_counter() - began)
            log(
                f"step {step}/{steps} ({rate:.2f} steps/s) "
                + " ".join(f"{k} {v:.4f}" for k, v in means.items())
            )
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0:
            if average is not None:
                average.swap()  # save the averaged generators, then train on with the live ones
            checkpoint(step)
            if average is not None:
                average.swap()
    if average is not None:
        average.swap()  # the trained model is the averaged one
    model.eval()
    return {k: float(np.mean([r[k] for r in recent])) for k in recent[0]} if recent else {}


# ---------------------------------------------------------------- data


@dataclass
class PhraseSets:
    """Binary rolls (N, 64, 84) of a genre pair, per split; `source` says where they came from."""

    genres: tuple[str, str]
    train_a: np.ndarray
    train_b: np.ndarray
    valid_a: np.ndarray
    valid_b: np.ndarray
    test_a: np.ndarray
    test_b: np.ndarray
    source: str


def split_rolls(data, genre: str, split: str, hop_bars: int = 4) -> np.ndarray:
    """Binary rolls (N, 64, 84) uint8 of the 4-bar 4/4 phrases of `genre` in `split`.

    As the paper, only 4/4 is used for training and evaluation (2/4, 2/2, 4/2 runs are regrouped into
    4/4 bars); other meters are handled at inference by the encoding (padding). Phrases do not overlap
    (hop 4 bars) and need at least 4 onsets.
    """
    from musebridge.models.encoding import pianoroll

    meter = Meter(4, 4)
    windows = data.windows(4, split, [genre], meter, hop_bars, min_notes=4, regroup=True)
    rolls = np.zeros((len(windows), pianoroll.ROLL_STEPS, pianoroll.N_PITCHES), dtype=np.uint8)
    for row, window in enumerate(windows):
        notes = data.tunes[window.tune_index].note_objects_between(window.start, window.length_beats)
        rolls[row] = pianoroll.encode_notes(notes, meter, 4, offset_beats=window.start)
    return rolls


def load_pair(
    pair: tuple[str, str] | None,
    dir_a: Path | None = None,
    dir_b: Path | None = None,
    names: tuple[str, str] | None = None,
    dataset: Path | None = None,
) -> PhraseSets:
    """Phrases of two dataset genres, or of two MIDI folders (split by file); ValueError if not usable."""
    from musebridge.models.data.dataset import TuneDataset

    if pair is not None:
        data = TuneDataset.load(dataset)
        genres = (pair[0], pair[1])
        source = f"built dataset ({data.path.name if data.path else 'in memory'}, genres.yaml domains)"
    else:
        assert dir_a is not None and dir_b is not None
        genres = (names[0], names[1]) if names else (dir_a.expanduser().name, dir_b.expanduser().name)
        if genres[0] == genres[1]:
            raise ValueError(f"both folders are named {genres[0]!r}: name them with --names A B")
        data = TuneDataset(folder_tunes(dir_a, genres[0]) + folder_tunes(dir_b, genres[1]))
        source = f"MIDI folders {dir_a.name}/ ({genres[0]}) and {dir_b.name}/ ({genres[1]})"
    if genres[0] == genres[1]:
        raise ValueError("a transfer pair needs two different genres")
    rolls = {(g, s): split_rolls(data, g, s) for g in genres for s in ("train", "valid", "test")}
    for g in genres:
        if len(rolls[(g, "train")]) == 0:
            raise ValueError(f"genre {g!r} has no complete 4-bar phrase in its train split")
    a, b = genres
    return PhraseSets(
        genres,
        rolls[(a, "train")], rolls[(b, "train")],
        rolls[(a, "valid")], rolls[(b, "valid")],
        rolls[(a, "test")], rolls[(b, "test")],
        source,
    )  # fmt: skip


def folder_tunes(folder: Path, genre: str) -> list:
    """Every readable MIDI file of a folder as a Tune of `genre`; unreadable files are skipped and counted."""
    from musebridge.models.data.midi_files import midi_files, parse_midi_file

    tunes, failed = [], 0
    for path in midi_files(folder):
        try:
            tune = parse_midi_file(path, folder.name, f"{genre}/{path.relative_to(folder.expanduser())}")
        except Exception:  # noqa: BLE001 - a broken file must not stop training on the others
            failed += 1
            continue
        if tune.notes.size:
            tunes.append(tune.with_genre(genre))
    if failed:
        print(f"skipped {failed} unreadable MIDI file(s) in {folder}")
    if not tunes:
        raise ValueError(f"no readable MIDI file with notes in {folder}")
    return tunes


def balance(
    rolls_a: np.ndarray, rolls_b: np.ndarray, rng: np.random.Generator, cap: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Downsample the larger set to the smaller's size (as the paper), then to `cap` if cap > 0."""
    size = min(len(rolls_a), len(rolls_b))
    if cap > 0:
        size = min(size, cap)
    pick_a = np.sort(rng.choice(len(rolls_a), size, replace=False))
    pick_b = np.sort(rng.choice(len(rolls_b), size, replace=False))
    return rolls_a[pick_a], rolls_b[pick_b]


def write_card(path: Path, card: dict) -> None:
    """A model card as YAML (atomic replace)."""
    import os

    import yaml

    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(temporary, path)


# ---------------------------------------------------------------- `musebridge train transfer`


def _check_args(args: argparse.Namespace) -> None:
    from musebridge.errors import UserError

    if args.pair is None and (args.a is None or args.b is None):
        raise UserError(
            "give either --pair A B (genres of the built dataset) or both --a DIR_A and --b DIR_B"
        )
    if args.pair is not None and (args.a is not None or args.b is not None):
        raise UserError("--pair and --a/--b exclude each other")
    for folder in (args.a, args.b):
        if folder is not None and not folder.expanduser().is_dir():
            raise UserError(f"MIDI folder {folder} does not exist")
    if args.steps < 1 or args.classifier_epochs < 0:
        raise UserError("--steps must be >= 1 and --classifier-epochs >= 0")
    if getattr(args, "kind", None) == "full" and args.pair is None:
        raise UserError("--kind full needs --pair (its mixed set takes the other genres of the dataset)")
    ema = getattr(args, "ema", None)
    if ema is not None and not 0.0 <= ema < 1.0:
        raise UserError(f"--ema must be in [0, 1) (0: off), got {ema}")


def run(args: argparse.Namespace) -> int:
    """Handler of `musebridge train transfer`: classifier, then CycleGAN, then checkpoints and cards."""
    import shlex
    import sys

    from musebridge.errors import UserError

    _check_args(args)
    torch.set_num_threads(max(1, args.threads))
    overrides: dict[str, object] = {}
    if args.kind:
        overrides["kind"] = args.kind
    if args.sigma_d is not None:
        overrides["sigma_d"] = args.sigma_d
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if getattr(args, "input_skip", None) is not None:
        overrides["input_skip"] = args.input_skip
    config: CycleGANConfig = get_config(args.config, **overrides)
    try:
        sets = load_pair(args.pair, args.a, args.b, args.names, args.dataset)
    except ValueError as error:
        raise UserError(str(error)) from error
    genre_a, genre_b = sets.genres
    rng = np.random.default_rng(args.seed)
    train_a, train_b = balance(sets.train_a, sets.train_b, rng, args.max_phrases)
    if len(train_a) < config.batch_size:
        raise UserError(
            f"too few 4-bar phrases to train: {len(sets.train_a)} {genre_a}, {len(sets.train_b)} {genre_b}"
        )
    command = "musebridge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = args.output_dir.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{genre_a}_{genre_b}"
    data_card = _data_card(sets, len(train_a))
    print(f"pair {genre_a} <-> {genre_b}: {len(train_a)} train phrases each (balanced)")

    classifier_path = out / f"genre_classifier_{stem}.pt"
    if not args.skip_classifier:
        from musebridge.models.judges.classifier import GenreClassifier, save_classifier, train_classifier

        classifier = GenreClassifier()
        fit = train_classifier(
            classifier,
            train_a,
            train_b,
            args.classifier_epochs,
            args.seed,
            valid=(sets.valid_a, sets.valid_b),
        )
        save_classifier(classifier, classifier_path, (genre_a, genre_b))
        write_card(
            classifier_path.with_suffix(".yaml"),
            {
                "model": "genre_classifier (Brunner et al. 2018), for evaluation only",
                "genres": [genre_a, genre_b],
                "data": data_card,
                "config": classifier.config.to_dict(),
                "seed": args.seed,
                "command": command,
                "training": fit,
                "metrics": "see `musebridge eval transfer` (test split) in the CycleGAN card",
            },
        )
        print(f"wrote {classifier_path}")

    model = CycleGAN(config)
    path = out / f"cyclegan_{stem}.pt"

    ema_decay = float(getattr(args, "ema", 0.0) or 0.0)

    def save(step: int) -> None:
        save_cyclegan(model, path, (genre_a, genre_b), {"steps": step, "seed": args.seed, "ema": ema_decay})
        if getattr(args, "keep_checkpoints", False):  # for model selection on the valid split
            save_cyclegan(
                model, out / f"cyclegan_{stem}.step{step:05d}.pt", (genre_a, genre_b), {"steps": step}
            )

    mixed, mixed_card = None, {"mixed_set": f"{genre_a} u {genre_b} (balanced)"}
    if config.kind == "full":
        mixed, mixed_card = _full_mixed_set(args, train_a, train_b, rng)
    losses = train_cyclegan(
        model,
        train_a,
        train_b,
        args.steps,
        args.seed,
        checkpoint=save,
        checkpoint_every=args.checkpoint_every,
        ema_decay=ema_decay,
        mixed=mixed,
    )
    save(args.steps)
    write_card(
        path.with_suffix(".yaml"),
        {
            "model": f"CycleGAN genre transfer (Brunner et al. 2018), config {config.name}",
            "genres": [genre_a, genre_b],
            "data": data_card | mixed_card,
            "config": config.to_dict(),
            "seed": args.seed,
            "sigma_d": config.sigma_d,
            "steps": args.steps,
            "generator_ema_decay": ema_decay,
            "command": command,
            "final_losses": losses,
            "metrics": "not measured yet: run `musebridge eval transfer` on the test split",
        },
    )
    print(f"wrote {path} and {path.with_suffix('.yaml')}")
    return 0


def _full_mixed_set(
    args: argparse.Namespace, train_a: np.ndarray, train_b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """The "full" model's mixed set: the balanced pair plus as many train phrases of each other genre."""
    from musebridge.errors import UserError
    from musebridge.models.data.dataset import TuneDataset

    data = TuneDataset.load(args.dataset)
    others = [g for g in (getattr(args, "mixed_genres", None) or data.polyphonic) if g not in args.pair]
    if not others:
        raise UserError("--kind full needs a third genre for the mixed set (see --mixed-genres)")
    parts, counts = [train_a, train_b], {args.pair[0]: len(train_a), args.pair[1]: len(train_b)}
    for genre in others:
        try:
            rolls = split_rolls(data, genre, "train")
        except ValueError as error:
            raise UserError(str(error)) from error
        pick = np.sort(rng.choice(len(rolls), min(len(rolls), len(train_a)), replace=False))
        parts.append(rolls[pick])
        counts[genre] = len(pick)
    print("mixed set (full): " + ", ".join(f"{g} {n}" for g, n in counts.items()))
    return np.concatenate(parts), {"mixed_set": "full: " + " u ".join(counts), "mixed_phrases": counts}


def _data_card(sets: PhraseSets, balanced: int) -> dict:
    return {
        "source": sets.source,
        "phrases": "4 bars x 16 steps x 84 pitches (MIDI 24..107), binary, tracks merged",
        "train_phrases": {sets.genres[0]: len(sets.train_a), sets.genres[1]: len(sets.train_b)},
        "train_phrases_balanced_each": balanced,
        "valid_phrases": {sets.genres[0]: len(sets.valid_a), sets.genres[1]: len(sets.valid_b)},
        "test_phrases": {sets.genres[0]: len(sets.test_a), sets.genres[1]: len(sets.test_b)},
        "split": "by tune, sha1 of the source id (80/10/10)",
    }
