"""Evaluation of the universal translator on held-out phrases (`musebridge eval umt`).

For every ordered pair (A, B) of the model's genres, on the test phrases of A:
- transfer x^ = decoder_B(encoder(x)), cycle x~ = decoder_A(encoder(x^)) (greedy, p >= 0.5);
- Brunner's transfer strength S_A->B = 50 [(P_A(x) - P_A(x^)) + (P_A(x~) - P_A(x^))] (cyclegan/eval.py),
  where P_A is the fraction of phrases a judge puts on A's side of the pair A | B (argmax of the two
  logits: the binary decision of the paper's pair classifier), under TWO judges: the CNN genre
  classifier (judges/classifier.py) and the feature-based one (judges/features.py), both trained on
  real phrases only; S_min is the lower of the two (the issue's goal counts it);
- content kept: the share of input onsets (step, pitch) kept as onsets (cyclegan/eval.py).

Out of domain: phrases of a collection no genre uses (e.g. Monteverdi's madrigals) translated into
each genre B. It has no source genre, so S_ood,B = 100 (P_B(x^) - P_B(x)), P_B = the share the judge's
4-way argmax assigns to B: how much more the transfers than the inputs look like B.

The CycleGAN comparison runs each shipped pair's generators on the same test phrases with the same judges.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from musebridge.models.cyclegan.eval import content_kept, transfer_strength
from musebridge.models.umt.model import UniversalTranslator

# rolls [N, 64, 84], source genre, target genre -> bool rolls [N, 64, 84] (UMT ignores the source)
Translate = Callable[[np.ndarray, str, str], np.ndarray]


@dataclass
class Judge:
    """A genre judge: logits [N, G] of rolls [N, 64, 84] over `genres`."""

    name: str
    genres: tuple[str, ...]
    logits: Callable[[np.ndarray], np.ndarray]

    def side_fraction(self, rolls: np.ndarray, genre: str, other: str) -> float:
        """Share of rolls whose logit of `genre` beats that of `other` (the pair's binary decision)."""
        if len(rolls) == 0:
            return float("nan")
        logits = self.logits(rolls)
        i, j = self.genres.index(genre), self.genres.index(other)
        return float(np.mean(logits[:, i] > logits[:, j]))

    def argmax_fraction(self, rolls: np.ndarray, genre: str) -> float:
        """Share of rolls whose argmax over all genres is `genre`."""
        if len(rolls) == 0:
            return float("nan")
        return float(np.mean(self.logits(rolls).argmax(1) == self.genres.index(genre)))

    def accuracy(self, rolls_by_genre: Mapping[str, np.ndarray]) -> float:
        right = sum(
            int((self.logits(r).argmax(1) == self.genres.index(g)).sum()) for g, r in rolls_by_genre.items()
        )
        total = sum(len(r) for r in rolls_by_genre.values())
        return right / total if total else float("nan")


def top_voice_onset_share(rolls: np.ndarray) -> float:
    """Share of the input onsets that are the highest onset of their step: what a one-voice rendering
    can keep at best, so the ceiling of "onsets kept" for a polyphonic -> monophonic direction."""
    from musebridge.models.cyclegan.eval import onsets

    cells = onsets(rolls.astype(bool))
    total = int(cells.sum())
    steps_with_onsets = int(cells.any(-1).sum())
    return steps_with_onsets / total if total else float("nan")


def cnn_judge(classifier, genres: tuple[str, ...]) -> Judge:
    """The CNN classifier (judges/classifier.py) as a Judge."""

    def logits(rolls: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(rolls.astype(np.float32)).unsqueeze(1)
            return classifier.probabilities(x).log().numpy()

    return Judge("cnn", tuple(genres), logits)


def feature_judge(judge) -> Judge:
    """The feature-based FeatureJudge (judges/features.py) as a Judge."""
    return Judge("features", tuple(judge.genres), judge.logits)


def umt_translator(
    model: UniversalTranslator, batch_size: int = 64, threshold: float | None = None, guidance: float = 0.0
) -> Translate:
    """Greedy batched translation with the model's cached generation (threshold: the model's own;
    guidance: the input guidance in logits, UniversalTranslator.translate)."""

    def translate(rolls: np.ndarray, _source: str, genre: str) -> np.ndarray:
        out = [
            model.translate(
                torch.from_numpy(rolls[i : i + batch_size].astype(np.float32)),
                genre,
                threshold,
                guidance=guidance,
            ).numpy()
            for i in range(0, len(rolls), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros_like(rolls, dtype=bool)

    return translate


def direction_figures(
    judges: list[Judge], source: str, target: str, real: np.ndarray, transfer: np.ndarray, cycle: np.ndarray
) -> dict:
    """S (and its P terms) under every judge, S_min, and content kept, for one direction."""
    out: dict = {"phrases": int(len(real))}
    strengths = []
    for judge in judges:
        p = {
            "real": judge.side_fraction(real, source, target),
            "transfer": judge.side_fraction(transfer, source, target),
            "cycle": judge.side_fraction(cycle, source, target),
        }
        s = transfer_strength(p["real"], p["transfer"], p["cycle"])
        strengths.append(s)
        out[f"S_{judge.name}"] = round(s, 1)
        out[f"p_source_{judge.name}"] = {k: round(100 * v, 1) for k, v in p.items()}
    out["S_min"] = round(min(strengths), 1)
    kept, steps_kept = content_kept(real, transfer)
    out["onsets_kept"] = round(kept, 3)
    out["onset_steps_kept"] = round(steps_kept, 3)
    out["note_cells"] = {
        "input": round(float(real.reshape(len(real), -1).sum(1).mean()), 1) if len(real) else None,
        "transfer": round(float(transfer.reshape(len(transfer), -1).sum(1).mean()), 1)
        if len(transfer)
        else None,
    }
    return out


def evaluate_pairs(
    translate: Translate,
    judges: list[Judge],
    test: Mapping[str, np.ndarray],
    directions: list[tuple[str, str]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Figures of every direction "A->B" (default: all ordered pairs of test's genres)."""
    directions = directions or list(itertools.permutations(test, 2))
    results = {}
    for source, target in directions:
        real = test[source].astype(bool)
        transfer = translate(real, source, target)
        cycle = translate(transfer, target, source)
        results[f"{source}->{target}"] = direction_figures(judges, source, target, real, transfer, cycle)
        if progress is not None:
            r = results[f"{source}->{target}"]
            progress(f"{source}->{target}: S_cnn {r['S_cnn']:.1f} S_features {r['S_features']:.1f} "
                     f"onsets kept {100 * r['onsets_kept']:.1f}%")  # fmt: skip
    return results


def evaluate_out_of_domain(
    translate: Translate, judges: list[Judge], rolls: np.ndarray, genres: tuple[str, ...], source: str
) -> dict[str, dict]:
    """S_ood per target genre (see the module docstring) under every judge, and content kept."""
    real = rolls.astype(bool)
    results = {}
    for target in genres:
        transfer = translate(real, source, target)
        entry: dict = {"phrases": int(len(real))}
        strengths = []
        for judge in judges:
            before, after = judge.argmax_fraction(real, target), judge.argmax_fraction(transfer, target)
            strengths.append(100 * (after - before))
            entry[f"S_ood_{judge.name}"] = round(100 * (after - before), 1)
            entry[f"p_target_{judge.name}"] = {
                "input": round(100 * before, 1),
                "transfer": round(100 * after, 1),
            }
        entry["S_ood_min"] = round(min(strengths), 1)
        entry["onsets_kept"] = round(content_kept(real, transfer)[0], 3)
        results[target] = entry
    return results


def cyclegan_translator(pairs) -> tuple[Translate, list[tuple[str, str]]]:
    """A Translate over shipped CycleGAN pairs [(model, (a, b))] and the directions they cover."""
    generators: dict[tuple[str, str], torch.nn.Module] = {}
    for model, (a, b) in pairs:
        model.eval()
        generators[(a, b)] = model.generator_ab
        generators[(b, a)] = model.generator_ba

    def translate(rolls: np.ndarray, source: str, target: str) -> np.ndarray:
        generator = generators[(source, target)]
        out = []
        with torch.no_grad():
            for i in range(0, len(rolls), 64):
                batch = torch.from_numpy(rolls[i : i + 64].astype(np.float32)).unsqueeze(1)
                out.append((generator(batch) >= 0.5).squeeze(1).numpy())
        return np.concatenate(out) if out else np.zeros_like(rolls, dtype=bool)

    return translate, sorted(generators)


def evaluate_cyclegan(pairs, judges: list[Judge], test: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """The CycleGAN pairs' figures in the directions they cover, on the same phrases and judges."""
    translate, directions = cyclegan_translator(pairs)
    covered = [(a, b) for a, b in directions if a in test and b in test]
    return evaluate_pairs(translate, judges, test, covered) if covered else {}


def summary_lines(report: Mapping) -> list[str]:
    """Human-readable table of a report (as written to JSON)."""
    lines = [
        f"judges on real {report['split']} phrases: CNN {100 * report['judge_accuracy']['cnn']:.1f}%, "
        f"features {100 * report['judge_accuracy']['features']:.1f}% (4-way)",
        f"{'direction':<26}{'S_cnn':>8}{'S_feat':>8}{'S_min':>8}{'onsets':>8}   CycleGAN S_cnn/S_feat/onsets",
    ]
    for direction, r in report["directions"].items():
        line = (
            f"{direction:<26}{r['S_cnn']:>8.1f}{r['S_features']:>8.1f}{r['S_min']:>8.1f}"
            f"{100 * r['onsets_kept']:>7.1f}%"
        )
        c = report.get("cyclegan", {}).get(direction)
        if c:
            line += f"   {c['S_cnn']:.1f} / {c['S_features']:.1f} / {100 * c['onsets_kept']:.1f}%"
        lines.append(line)
    for target, r in report.get("out_of_domain", {}).get("targets", {}).items():
        lines.append(
            f"{report['out_of_domain']['genre']}->{target} (unseen input): S_ood cnn {r['S_ood_cnn']:.1f}, "
            f"features {r['S_ood_features']:.1f}, onsets kept {100 * r['onsets_kept']:.1f}%"
        )
    goal = report.get("goal", {})
    if goal:
        lines.append(
            f"goal S_min >= 72 with onsets kept >= 0.5: {goal['directions_met']} of {goal['directions']} "
            f"directions; mean S_min {goal['mean_S_min']:.1f}"
        )
    return lines


# ---------------------------------------------------------------- `musebridge eval umt`


def load_judges(directory, genres: tuple[str, ...]) -> list[Judge]:
    """The CNN and feature judges of exactly these genres from `directory`; UserError if missing."""
    from musebridge.errors import UserError
    from musebridge.models.judges.classifier import load_classifier
    from musebridge.models.judges.features import load_feature_judge
    from musebridge.models.judges.train import judge_paths

    cnn_path, feature_path = judge_paths(directory, genres)
    for path in (cnn_path, feature_path):
        if not path.is_file():
            raise UserError(f"judge not found: {path} (train it: musebridge train judges --genres ...)")
    try:
        classifier, cnn_genres = load_classifier(cnn_path)
        features = load_feature_judge(feature_path)
    except ValueError as error:
        raise UserError(str(error)) from error
    return [cnn_judge(classifier, cnn_genres), feature_judge(features)]


def cap(rolls: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` rolls (a seeded pick, in order); all when limit <= 0."""
    if limit <= 0 or len(rolls) <= limit:
        return rolls
    return rolls[np.sort(np.random.default_rng(seed).permutation(len(rolls))[:limit])]


def build_report(args, model: UniversalTranslator, progress: Callable[[str], None] = print) -> dict:
    """Every figure of `musebridge eval umt` as a JSON-able dict."""
    from musebridge.errors import UserError
    from musebridge.models.cyclegan.model import load_cyclegan
    from musebridge.models.cyclegan.phrase_model import shipped_checkpoints
    from musebridge.models.umt.data import genre_rolls

    genres = tuple(g for g in model.genres if g in (args.genres or model.genres))
    judges = load_judges(args.judges_dir, genres)
    try:
        sets = genre_rolls(genres, args.dataset, splits=(args.split,))
    except ValueError as error:
        raise UserError(str(error)) from error
    unseen: dict = {}
    if args.unseen:
        try:
            unseen = genre_rolls((args.unseen,), args.dataset)
        except ValueError as error:  # not built: the other figures still count
            progress(f"no out-of-domain figures: {error}")
    split = args.split
    test = {g: cap(sets[g][split], args.max_phrases, args.seed) for g in genres}
    report: dict = {
        "model": "umt",
        "split": split,
        "phrases": {g: int(len(r)) for g, r in test.items()},
        "judge_accuracy": {j.name: j.accuracy(test) for j in judges},
        "top_voice_onset_share": {g: round(top_voice_onset_share(r), 3) for g, r in test.items()},
        "threshold": model.threshold,
        "guidance": float(getattr(args, "guidance", 0.0)),
    }
    progress("judges: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in report["judge_accuracy"].items()))
    translate = umt_translator(model, guidance=report["guidance"])
    report["directions"] = evaluate_pairs(translate, judges, test, progress=progress)
    pairs = [load_cyclegan(p)[:2] for p in shipped_checkpoints()]
    report["cyclegan"] = evaluate_cyclegan(pairs, judges, test)
    if unseen:
        rolls = cap(
            np.concatenate([unseen[args.unseen][s] for s in ("train", "valid", "test")]),
            args.max_phrases,
            args.seed,
        )
        report["out_of_domain"] = {
            "genre": args.unseen,
            "note": "a corpus collection no genre of the model or the judges uses; all its splits",
            "targets": evaluate_out_of_domain(translate, judges, rolls, genres, args.unseen),
        }
    met = [d for d, r in report["directions"].items() if r["S_min"] >= 72.0 and r["onsets_kept"] >= 0.5]
    report["goal"] = {
        "rule": "S_min (lower of the two judges) >= 72 with onsets kept >= 0.5, in every direction",
        "directions": len(report["directions"]),
        "directions_met": len(met),
        "met": met,
        "mean_S_min": round(float(np.mean([r["S_min"] for r in report["directions"].values()])), 1),
        "beats_cyclegan": {
            d: bool(report["directions"][d]["S_min"] >= c["S_min"]) for d, c in report["cyclegan"].items()
        },
    }
    return report


def update_cyclegan_cards(report: Mapping, directory) -> list:
    """Write the two judges' figures for each shipped CycleGAN pair the report covers into its card
    (cyclegan_<a>_<b>.yaml) and eval JSON (.eval.json), under "two_judges". Returns the cards written."""
    import json
    from pathlib import Path

    import yaml

    from musebridge.models.cyclegan.train import write_card

    written = []
    for card_path in sorted(Path(directory).glob("cyclegan_*.yaml")):
        card = yaml.safe_load(card_path.read_text(encoding="utf-8")) or {}
        genres = card.get("genres") or []
        directions = (
            [f"{a}->{b}" for a, b in ((genres[0], genres[1]), (genres[1], genres[0]))]
            if len(genres) == 2
            else []
        )
        if not directions or not all(d in report["cyclegan"] for d in directions):
            continue
        block = {
            "what": "S under the two judges of the universal translator's evaluation (CNN and feature-based, "
            "4 genres, the pair's binary decision), on the same test phrases as the UMT",
            "command": report["command"],
            "phrases": {g: report["phrases"][g] for g in genres},
            "judge_accuracy_percent": {k: round(100 * v, 1) for k, v in report["judge_accuracy"].items()},
            "per_direction": {
                d: {k: report["cyclegan"][d][k] for k in ("S_cnn", "S_features", "S_min", "onsets_kept")}
                for d in directions
            },
            "umt_same_phrases": {
                d: {k: report["directions"][d][k] for k in ("S_cnn", "S_features", "S_min", "onsets_kept")}
                for d in directions
            },
        }
        card["two_judges"] = block
        write_card(card_path, card)
        eval_path = card_path.with_suffix(".eval.json")
        if eval_path.is_file():
            figures = json.loads(eval_path.read_text(encoding="utf-8"))
            figures["two_judges"] = block
            eval_path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        written.append(card_path)
    return written


def run(args) -> int:
    """Handler of `musebridge eval umt`."""
    import json

    import yaml

    from musebridge.commands.train import command_line
    from musebridge.errors import UserError
    from musebridge.models.umt.model import load_umt

    torch.set_num_threads(max(1, args.threads))
    if not args.checkpoint.is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    try:
        model, extra = load_umt(args.checkpoint)
    except ValueError as error:
        raise UserError(str(error)) from error
    report = build_report(args, model)
    report["checkpoint"] = args.checkpoint.name
    report["command"] = command_line()
    for line in summary_lines(report):
        print(line)
    path = args.json or args.checkpoint.with_suffix(".eval.json")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    print(f"wrote {path}")
    if args.update_card:
        card_path = args.checkpoint.with_suffix(".yaml")
        card = yaml.safe_load(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
        card["metrics"] = {
            "command": report["command"],
            "split": report["split"],
            "guidance": report["guidance"],
            "phrases": report["phrases"],
            "judge_accuracy_percent": {k: round(100 * v, 1) for k, v in report["judge_accuracy"].items()},
            "per_direction": {
                d: {k: r[k] for k in ("S_cnn", "S_features", "S_min", "onsets_kept")}
                for d, r in report["directions"].items()
            },
            "cyclegan_same_phrases": {
                d: {k: r[k] for k in ("S_cnn", "S_features", "S_min", "onsets_kept")}
                for d, r in report["cyclegan"].items()
            },
            "out_of_domain": report.get("out_of_domain", {}),
            "goal": report["goal"],
        }
        from musebridge.models.cyclegan.train import write_card

        write_card(card_path, card)
        print(f"updated {card_path}")
    if args.update_cyclegan_cards:
        for path in update_cyclegan_cards(report, args.checkpoint.parent):
            print(f"updated {path} and {path.with_suffix('.eval.json')}")
    return 0
