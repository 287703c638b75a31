"""Evaluation of a genre-transfer CycleGAN on held-out test phrases (`musebridge eval transfer`).

Figures (Brunner et al. 2018, section V):
- classifier accuracy on the real test phrases of both genres;
- P_A(x): the fraction of phrases x that the classifier assigns to genre A (argmax of its softmax), as
  the authors' code counts it (sumuzhao/CycleGAN-Music-Style-Transfer, style_classifier.py,
  `Classifer.test`: argmax hits of the origin, transfer and cycle phrases over the phrase count);
- S_A->B = 1/2 [ (P_A(x_A) - P_A(x^_A)) + (P_A(x~_A) - P_A(x^_A)) ] x 100, where x^_A = G_A->B(x_A) is the
  transfer and x~_A = G_B->A(x^_A) its cycle; S_B->A likewise with the roles swapped, and
  S_tot = (S_A->B + S_B->A) / 2. An identity "transfer" scores 0, a perfect one 100; a transfer toward
  the source genre scores below 0 (not clipped). Rechecked against every source reachable here (see
  METRIC_DEFINITION): the terms are PAPERS.md's transcription; the authors' README gives the formula
  only as an image, and their code produces exactly the three fractions it combines.
- content kept: the fraction of the input's note onsets (step, pitch) that the transfer keeps as onsets,
  and the fraction of onset steps that still hold an onset at any pitch (rhythm kept), so that a
  "transfer" that replaces the phrase with a stock phrase shows up.
Transfers are binarised at 0.5 before they are classified or compared.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from musebridge.models.cyclegan.model import CycleGAN
from musebridge.models.judges.classifier import GenreClassifier


def onsets(rolls: np.ndarray) -> np.ndarray:
    """Onset cells of binary rolls (..., T, P): on now and off at the step before (or at step 0)."""
    on = rolls.astype(bool)
    before = np.zeros_like(on)
    before[..., 1:, :] = on[..., :-1, :]
    return on & ~before


def content_kept(inputs: np.ndarray, outputs: np.ndarray) -> tuple[float, float]:
    """(fraction of input onsets kept at the same step and pitch, of onset steps kept at any pitch)."""
    onset_in, onset_out = onsets(inputs), onsets(outputs)
    total = int(onset_in.sum())
    same = int((onset_in & onset_out).sum())
    steps_in = onset_in.any(axis=-1)
    steps_out = onset_out.any(axis=-1)
    step_total = int(steps_in.sum())
    steps_kept = int((steps_in & steps_out).sum())
    return (same / total if total else float("nan"), steps_kept / step_total if step_total else float("nan"))


METRIC_DEFINITION = {
    "P_A(x)": "fraction of the phrases x that the genre classifier assigns to A (argmax), in percent",
    "S_A->B": (
        "1/2 [(P_A(x_A) - P_A(x^_A)) + (P_A(x~_A) - P_A(x^_A))], x^_A = G_A->B(x_A), x~_A = G_B->A(x^_A)"
    ),
    "S_tot": "(S_A->B + S_B->A) / 2; identity transfer 0, perfect transfer 100",
    "source": (
        "Brunner et al. 2018, evaluation with the genre classifier (S_A->B, S_B->A, S_tot; Tables VI-IX); "
        "formula as transcribed in PAPERS.md. The paper's equation text was not readable here: the "
        "authors' README gives it as an image; their code (style_classifier.py, Classifer.test) counts "
        "argmax hits of origin, transfer and cycle phrases, i.e. P is a fraction, not a mean probability"
    ),
}


def transfer_strength(p_source_real: float, p_source_transfer: float, p_source_cycle: float) -> float:
    """S of one direction (x 100) from the source-genre fractions of real, transferred and cycled phrases.

    S = 1/2 [(P(real) - P(transfer)) + (P(cycle) - P(transfer))] x 100: the transfer should leave the
    source genre and its cycle come back to it. 0 for an identity, 100 at best; negative when the
    transfer looks *more* like the source than the input did.
    """
    return 50.0 * ((p_source_real - p_source_transfer) + (p_source_cycle - p_source_transfer))


@dataclass
class TransferReport:
    """Everything `musebridge eval transfer` prints and writes as JSON."""

    genres: tuple[str, str]
    test_phrases: dict[str, int]
    classifier_accuracy: float
    p_source: dict[str, dict[str, float]]  # direction -> {"real", "transfer", "cycle"} fractions
    s_a_to_b: float
    s_b_to_a: float
    s_tot: float
    onsets_kept: dict[str, float]  # direction -> fraction
    onset_steps_kept: dict[str, float]
    note_density: dict[str, float]  # mean active cells per phrase: inputs and transfers per direction

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        a, b = self.genres
        ab, ba = f"{a}->{b}", f"{b}->{a}"
        return [
            f"pair {a} <-> {b}: test phrases {a} {self.test_phrases[a]}, {b} {self.test_phrases[b]}",
            f"classifier accuracy {100 * self.classifier_accuracy:.1f}%",
            f"S_{ab} {self.s_a_to_b:.1f}   S_{ba} {self.s_b_to_a:.1f}   S_tot {self.s_tot:.1f}",
            f"content kept (onsets same step+pitch): {ab} {100 * self.onsets_kept[ab]:.1f}%, "
            f"{ba} {100 * self.onsets_kept[ba]:.1f}%",
            f"rhythm kept (onset steps): {ab} {100 * self.onset_steps_kept[ab]:.1f}%, "
            f"{ba} {100 * self.onset_steps_kept[ba]:.1f}%",
        ]


@torch.no_grad()
def _run_generator(generator: torch.nn.Module, rolls: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Binary rolls (N, T, P) -> binarised generator outputs (N, T, P) uint8."""
    generator.eval()
    out = []
    for i in range(0, len(rolls), batch_size):
        batch = torch.from_numpy(rolls[i : i + batch_size].astype(np.float32)).unsqueeze(1)  # (B, 1, T, P)
        out.append((generator(batch) >= 0.5).squeeze(1).numpy().astype(np.uint8))
    return np.concatenate(out) if out else np.zeros((0,) + rolls.shape[1:], dtype=np.uint8)


def _fraction_of(classifier: GenreClassifier, rolls: np.ndarray, genre_index: int) -> float:
    if len(rolls) == 0:
        return float("nan")
    probabilities = classifier.probabilities(torch.from_numpy(rolls.astype(np.float32)).unsqueeze(1))
    return float((probabilities.argmax(1) == genre_index).float().mean())


def evaluate(
    model: CycleGAN,
    classifier: GenreClassifier,
    genres: tuple[str, str],
    test_a: np.ndarray,
    test_b: np.ndarray,
) -> TransferReport:
    """All figures on test rolls (N, 64, 84) of genre A (classifier index 0) and B (index 1)."""
    a, b = genres
    ab, ba = f"{a}->{b}", f"{b}->{a}"
    transfer_a = _run_generator(model.generator_ab, test_a)
    cycle_a = _run_generator(model.generator_ba, transfer_a)
    transfer_b = _run_generator(model.generator_ba, test_b)
    cycle_b = _run_generator(model.generator_ab, transfer_b)
    p_ab = {
        "real": _fraction_of(classifier, test_a, 0),
        "transfer": _fraction_of(classifier, transfer_a, 0),
        "cycle": _fraction_of(classifier, cycle_a, 0),
    }
    p_ba = {
        "real": _fraction_of(classifier, test_b, 1),
        "transfer": _fraction_of(classifier, transfer_b, 1),
        "cycle": _fraction_of(classifier, cycle_b, 1),
    }
    total = len(test_a) + len(test_b)
    accuracy = (p_ab["real"] * len(test_a) + p_ba["real"] * len(test_b)) / total if total else float("nan")
    s_ab = transfer_strength(p_ab["real"], p_ab["transfer"], p_ab["cycle"])
    s_ba = transfer_strength(p_ba["real"], p_ba["transfer"], p_ba["cycle"])
    kept_ab, steps_ab = content_kept(test_a, transfer_a)
    kept_ba, steps_ba = content_kept(test_b, transfer_b)

    def density(rolls: np.ndarray) -> float:
        return float(rolls.reshape(len(rolls), -1).sum(1).mean()) if len(rolls) else float("nan")

    return TransferReport(
        genres=(a, b),
        test_phrases={a: int(len(test_a)), b: int(len(test_b))},
        classifier_accuracy=float(accuracy),
        p_source={ab: p_ab, ba: p_ba},
        s_a_to_b=s_ab,
        s_b_to_a=s_ba,
        s_tot=(s_ab + s_ba) / 2.0,
        onsets_kept={ab: kept_ab, ba: kept_ba},
        onset_steps_kept={ab: steps_ab, ba: steps_ba},
        note_density={
            a: density(test_a),
            b: density(test_b),
            ab: density(transfer_a),
            ba: density(transfer_b),
        },
    )


# ---------------------------------------------------------------- `musebridge eval transfer`


def run(args: argparse.Namespace) -> int:
    """Handler of `musebridge eval transfer`: print the figures, write JSON if asked."""
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.model import load_cyclegan
    from musebridge.models.cyclegan.train import load_pair
    from musebridge.models.judges.classifier import load_classifier

    torch.set_num_threads(max(1, args.threads))
    if not args.checkpoint.is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    if (args.a is None) != (args.b is None):
        raise UserError("give both --a DIR_A and --b DIR_B, or neither (then the dataset is used)")
    try:
        model, genres, _extra = load_cyclegan(args.checkpoint)
        classifier_path = args.classifier or args.checkpoint.with_name(
            args.checkpoint.name.replace("cyclegan_", "genre_classifier_", 1)
        )
        if not classifier_path.is_file():
            raise UserError(f"genre classifier not found: {classifier_path} (pass --classifier)")
        classifier, classifier_genres = load_classifier(classifier_path)
        if classifier_genres != genres:
            raise UserError(f"classifier genres {classifier_genres} do not match the checkpoint's {genres}")
        if args.a is not None:
            sets = load_pair(None, args.a, args.b, genres, args.dataset)
        else:
            sets = load_pair(genres, dataset=args.dataset)
    except ValueError as error:
        raise UserError(str(error)) from error
    rolls_a = sets.test_a if args.split == "test" else sets.valid_a
    rolls_b = sets.test_b if args.split == "test" else sets.valid_b
    if args.max_phrases > 0:
        rng = np.random.default_rng(args.seed)
        rolls_a = rolls_a[np.sort(rng.permutation(len(rolls_a))[: args.max_phrases])]
        rolls_b = rolls_b[np.sort(rng.permutation(len(rolls_b))[: args.max_phrases])]
    if len(rolls_a) == 0 or len(rolls_b) == 0:
        raise UserError(f"no {args.split} phrases for one of {genres}")
    report = evaluate(model, classifier, genres, rolls_a, rolls_b)
    for line in report.lines():
        print(line)
    if args.json is not None:
        payload = report.to_dict() | {
            "checkpoint": str(args.checkpoint),
            "classifier": str(classifier_path),
            "split": args.split,
            "source": sets.source,
        }
        temporary = args.json.with_name(args.json.name + ".tmp")
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        temporary.replace(args.json)
        print(f"wrote {args.json}")
    if getattr(args, "update_card", False):
        _update_card(args.checkpoint.with_suffix(".yaml"), report, args, sets.source)
        _update_classifier_card(classifier_path.with_suffix(".yaml"), report, args)
        print(f"updated {args.checkpoint.with_suffix('.yaml')} and {classifier_path.with_suffix('.yaml')}")
    return 0


def _update_classifier_card(path: Path, report: TransferReport, args: argparse.Namespace) -> None:
    """Write the classifier's accuracy on the real phrases of the split into its card."""
    import yaml

    card = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    card["metrics"] = {
        "split": args.split,
        "phrases": report.test_phrases,
        "accuracy": round(100 * report.classifier_accuracy, 1),
        "accuracy_per_genre": {
            direction.split("->")[0]: round(100 * p["real"], 1) for direction, p in report.p_source.items()
        },
        "paper_reference": "Jazz/Classic 88.9, Classic/Pop 84.7, Jazz/Pop 67.1 (sigma_C = 0)",
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    temporary.replace(path)


def _update_card(path: Path, report: TransferReport, args: argparse.Namespace, source: str) -> None:
    """Write the figures into the model card's "metrics" (and "goals") entries."""
    import shlex
    import sys

    import yaml

    card = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    a, b = report.genres
    card["metrics"] = {
        "split": args.split,
        "source": source,
        "command": "musebridge " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "test_phrases": report.test_phrases,
        "classifier_accuracy": round(100 * report.classifier_accuracy, 1),
        f"S_{a}_to_{b}": round(report.s_a_to_b, 1),
        f"S_{b}_to_{a}": round(report.s_b_to_a, 1),
        "S_tot": round(report.s_tot, 1),
        "p_source_genre": {
            k: {n: round(100 * v, 1) for n, v in d.items()} for k, d in report.p_source.items()
        },
        "onsets_kept_percent": {k: round(100 * v, 1) for k, v in report.onsets_kept.items()},
        "onset_steps_kept_percent": {k: round(100 * v, 1) for k, v in report.onset_steps_kept.items()},
        "note_cells_per_phrase": {k: round(v, 1) for k, v in report.note_density.items()},
    }
    card["metric_definitions"] = dict(METRIC_DEFINITION)
    card["goals"] = {
        "classifier_accuracy_ge_90": bool(report.classifier_accuracy >= 0.90),
        "S_tot_ge_72": bool(report.s_tot >= 72.0),
        "paper_reference": "classifier J/C 88.9, C/P 84.7; best S_tot J/C 71.6, C/P 58.1, J/P 37.3",
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")
    temporary.replace(path)


def time_phrase_transfer(
    config_name: str, runs: int = 200, threads: int = 2, seed: int = 0
) -> dict[str, float]:
    """Latency of one 4-bar 4/4 phrase through the whole adapter (encode, generator, decode), in ms.

    Weights are random (speed does not depend on them). Returns p50, p90, max over `runs` after 10 warm-ups.
    """
    import time

    from musebridge.core.model_protocol import ModelRequest
    from musebridge.core.music import Note, Phrase
    from musebridge.models.cyclegan.model import get_config
    from musebridge.models.cyclegan.phrase_model import TransferPhraseModel

    torch.manual_seed(seed)
    model = TransferPhraseModel([(CycleGAN(get_config(config_name)), ("a", "b"))], threads=threads)
    notes = tuple(Note(60 + (i * 7) % 12, 80, i * 0.5, 0.5) for i in range(32))
    request = ModelRequest("transfer", Phrase(notes, 4), 4, genre="b")
    timings = []
    for i in range(runs + 10):
        began = time.perf_counter()
        model.generate(request)
        if i >= 10:
            timings.append((time.perf_counter() - began) * 1000.0)
    timings.sort()
    return {
        "p50_ms": timings[len(timings) // 2],
        "p90_ms": timings[int(len(timings) * 0.9)],
        "max_ms": timings[-1],
        "runs": float(runs),
        "threads": float(threads),
    }
