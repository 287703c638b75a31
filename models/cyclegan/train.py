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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musebridge.core.music import Meter
from musebridge.models.cyclegan.family import CycleGANTrainer, GeneratorAverage, train_cyclegan
from musebridge.models.cyclegan.model import CycleGAN, CycleGANConfig, get_config, save_cyclegan

__all__ = ["CycleGANTrainer", "GeneratorAverage", "PhraseSets", "balance", "load_pair", "train_cyclegan"]


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
    if args.steps < 1 or args.classifier_epochs < 0 or getattr(args, "log_every", 1) < 1:
        raise UserError("--steps and --log-every must be >= 1 and --classifier-epochs >= 0")
    if getattr(args, "kind", None) == "full" and args.pair is None:
        raise UserError("--kind full needs --pair (its mixed set takes the other genres of the dataset)")
    ema = getattr(args, "ema", None)
    if ema is not None and not 0.0 <= ema < 1.0:
        raise UserError(f"--ema must be in [0, 1) (0: off), got {ema}")


def run(args: argparse.Namespace) -> int:
    """Handler of `musebridge train transfer`: classifier, then CycleGAN, then checkpoints and cards."""
    import shlex
    import sys

    from musebridge.commands.train import start_training_job
    from musebridge.errors import UserError
    from musebridge.models.training import end_job
    from musebridge.models.training.records import validation_warning

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
    job = start_training_job(getattr(args, "device", "cpu"))
    out = args.output_dir.expanduser()
    if job.is_main:
        out.mkdir(parents=True, exist_ok=True)
    stem = f"{genre_a}_{genre_b}"
    data_card = _data_card(sets, len(train_a))
    say = print if job.is_main else (lambda *_a, **_k: None)
    say(f"pair {genre_a} <-> {genre_b}: {len(train_a)} train phrases each (balanced)")
    warning = validation_warning({genre_a: len(sets.valid_a), genre_b: len(sets.valid_b)}, "phrases")
    if warning:
        say(warning)

    classifier_path = out / f"genre_classifier_{stem}.pt"
    # A resumed run keeps the classifier its first start trained (and the figures its card holds since).
    kept = bool(getattr(args, "resume", False)) and classifier_path.is_file() and not args.skip_classifier
    if kept:
        say(f"resuming: keeping {classifier_path} (trained when the run began)")
    if not args.skip_classifier and not kept and job.is_main:  # other ranks wait in the CycleGAN's DDP
        from musebridge.models.judges.classifier import GenreClassifier, save_classifier, train_classifier

        torch.manual_seed(args.seed)  # its initial weights too follow --seed
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
        mixed, mixed_card = _full_mixed_set(args, train_a, train_b, rng, say)
    run_dir = getattr(args, "run_dir", None) or Path("runs") / f"transfer-{stem}"
    try:
        losses = train_cyclegan(
            model, train_a, train_b, args.steps, args.seed, log=say, log_every=getattr(args, "log_every", 50),
            checkpoint=save,
            checkpoint_every=args.checkpoint_every, ema_decay=ema_decay, mixed=mixed, out_dir=run_dir,
            resume=getattr(args, "resume", False), device=getattr(args, "device", "cpu"),
            precision=getattr(args, "precision", "auto"), job=job,
        )
    except ValueError as error:
        raise UserError(str(error)) from error
    finally:
        end_job(job)
    if not job.is_main:  # rank 0 alone writes the checkpoint and its card
        return 0
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
            "processes": job.world_size,  # torchrun ranks; the global batch is the config's on any count
            "final_losses": losses,
            "metrics": "not measured yet: run `musebridge eval transfer` on the test split",
        },
    )
    print(f"wrote {path} and {path.with_suffix('.yaml')}")
    return 0


def _full_mixed_set(
    args: argparse.Namespace, train_a: np.ndarray, train_b: np.ndarray, rng: np.random.Generator,
    say: Callable[[str], None] = print,
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
    say("mixed set (full): " + ", ".join(f"{g} {n}" for g, n in counts.items()))
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
