"""Evaluation of the continuation models: C-RNN-GAN statistics, WaveNet NLL/accuracy, continuation fit.

The four statistics follow olofmogren/c-rnn-gan midi_statistics.py (get_polyphony_score,
max_likelihood_scale, repetitions, tone_span), computed per phrase and averaged over phrases, as its
get_gnuplot_line does. Their quirks are kept on purpose, so figures compare with the paper's curves:

- polyphony: onsets are walked in time order; every note-on adds one to the mono or poly count of
  the onset group it belongs to *as seen so far*, and each group is counted once more when the next
  group begins; the walk starts with "previous onset" = 0. Score = poly / (poly + mono).
- scale consistency: for each of 12 roots x {major, natural minor, harmonic minor}, the fraction of
  tones with (pitch % 12 - root) in the scale's steps, *without* wrapping the difference mod 12
  (a pitch class below the root never counts); the best fraction wins.
- repetitions: for lengths l in 2..min(n // 2, 10) - 1, the number of pairs i < j, j >= i + l,
  i < n - 2l, j < n - l with tones[i:i+l] == tones[j:j+l]; "repetitions" is the sum over l.
- tone span: max - min pitch in semitones.

Continuation fit uses a proper (mod 12) scale estimate of the call: the fraction of answer notes in the
call's best scale, the fraction inside the call's pitch range widened by 2 semitones, and the distance
between the mean pitches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musebridge.core.music import Note, Phrase

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
STAT_KEYS = ("polyphony", "scale_consistency", "repetitions", "tone_span")
ONSET_DECIMALS = 6  # onsets equal to 1e-6 beats are one event (the reference compares integer ticks)


def _notes(phrase_or_notes: Phrase | Iterable[Note]) -> list[Note]:
    notes = phrase_or_notes.notes if isinstance(phrase_or_notes, Phrase) else phrase_or_notes
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def tones(phrase_or_notes: Phrase | Iterable[Note]) -> list[int]:
    """Pitches in onset order (pitch order within an onset), as the reference's get_tones lists them."""
    return [n.pitch for n in _notes(phrase_or_notes)]


def polyphony_score(onsets: Sequence[float]) -> float:
    """Reference get_polyphony_score over note-on times (any unit; equal values are one event)."""
    ticks = sorted(round(float(t), ONSET_DECIMALS) for t in onsets)
    mono = poly = 0
    last = 0.0
    in_event = 0
    for tick in ticks:
        if tick == last:
            in_event += 1
        else:
            if in_event == 1:
                mono += 1
            elif in_event > 1:
                poly += 1
            in_event = 1
        last = tick
        if in_event == 1:
            mono += 1
        elif in_event > 1:
            poly += 1
    if poly == 0:
        return 0.0
    return poly / (poly + mono)


def scale_consistency(pitches: Sequence[int]) -> tuple[str, float]:
    """Reference max_likelihood_scale: (best "root scale" name, fraction of tones in it)."""
    if not pitches:
        return ("C major", 0.0)
    best_name, best = "", -1.0
    for root, name in enumerate(PITCH_NAMES):
        for label, steps in SCALES.items():
            count = sum(1 for p in pitches if (p % 12 - root) in steps)
            score = count / len(pitches)
            if score > best:
                best_name, best = f"{name} {label}", score
    return best_name, best


def repetitions(pitches: Sequence[int]) -> dict[int, int]:
    """Reference repetitions(): {length: count} for lengths 2..min(n // 2, 10) - 1, zero counts left out."""
    seq = list(pitches)
    n = len(seq)
    found: dict[int, int] = {}
    for length in range(2, min(n // 2, 10)):
        count = 0
        for i in range(n - 2 * length):
            head = seq[i : i + length]
            for j in range(i + length, n - length):
                if seq[j : j + length] == head:
                    count += 1
        if count:
            found[length] = count
    return found


def phrase_statistics(phrase_or_notes: Phrase | Iterable[Note]) -> dict[str, float] | None:
    """The four statistics of one phrase (None for an empty phrase, which the reference skips)."""
    notes = _notes(phrase_or_notes)
    if not notes:
        return None
    pitches = [n.pitch for n in notes]
    reps = repetitions(pitches)
    stats = {
        "polyphony": polyphony_score([n.start for n in notes]),
        "scale_consistency": scale_consistency(pitches)[1],
        "repetitions": float(sum(reps.values())),
        "tone_span": float(max(pitches) - min(pitches)),
        "num_tones": float(len(pitches)),
    }
    for length in range(2, 10):
        stats[f"repetitions_{length}"] = float(reps.get(length, 0))
    return stats


def mean_statistics(phrases: Iterable[Phrase | Iterable[Note]]) -> dict[str, float]:
    """Per-phrase statistics averaged over the non-empty phrases; `phrases` and `empty` count them."""
    rows = []
    empty = 0
    for phrase in phrases:
        stats = phrase_statistics(phrase)
        if stats is None:
            empty += 1
        else:
            rows.append(stats)
    out: dict[str, float] = {"phrases": float(len(rows)), "empty": float(empty)}
    if rows:
        for key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


POLYPHONY_DEFINED_FROM = 0.01  # real polyphony below this: monophonic melodies, no relative gap


def relative_gaps(model: dict[str, float], real: dict[str, float], keys: Sequence[str] = STAT_KEYS) -> dict:
    """|model - real| / |real| per statistic, and whether each is within 10% (the goal).

    Polyphony of monophonic melodies (real score under POLYPHONY_DEFINED_FROM: a stray chord in one
    answer in a hundred) has no meaningful relative gap: it is then reported with `defined: False`,
    its gap the absolute difference, and it is left out of the goals and the mean gap."""
    gaps = {}
    for key in keys:
        if key not in model or key not in real:
            continue
        ref = real[key]
        if key == "polyphony" and ref < POLYPHONY_DEFINED_FROM:
            gaps[key] = {"gap": abs(model[key] - ref), "within_10pct": None, "defined": False}
            continue
        gap = abs(model[key] - ref) / abs(ref) if ref else abs(model[key])
        gaps[key] = {"gap": gap, "within_10pct": gap <= 0.10, "signed_gap": (model[key] - ref) / abs(ref)
                     if ref else model[key]}
    return gaps


def mean_gap(gaps: dict) -> float:
    """Mean of the defined gaps of one `relative_gaps` result (a single number to rank settings by)."""
    values = [g["gap"] for g in gaps.values() if g.get("defined", True)]
    return float(np.mean(values)) if values else math.inf


# ---- continuation fit ------------------------------------------------------------------------------


def estimate_scale(pitches: Sequence[int]) -> tuple[int, str, float]:
    """(root pitch class, scale label, fraction) of the best-fitting scale, pitch classes mod 12."""
    if not pitches:
        return (0, "major", 0.0)
    classes = np.bincount(np.asarray(pitches) % 12, minlength=12)
    best = (0, "major", -1.0)
    for root in range(12):
        for label, steps in SCALES.items():
            inside = sum(int(classes[(root + s) % 12]) for s in steps)
            fraction = inside / len(pitches)
            if fraction > best[2]:
                best = (root, label, fraction)
    return best


def in_scale_fraction(pitches: Sequence[int], root: int, label: str) -> float:
    """Fraction of pitches whose pitch class is in `label` built on `root`."""
    if not pitches:
        return 0.0
    members = {(root + s) % 12 for s in SCALES[label]}
    return sum(1 for p in pitches if p % 12 in members) / len(pitches)


def continuation_fit(call: Phrase, answer: Phrase, range_margin: int = 2) -> dict[str, float] | None:
    """How the answer agrees with the call: key (in_scale), range (in_range) and mean pitch distance.

    None when the call or the answer has no notes."""
    call_pitches, answer_pitches = tones(call), tones(answer)
    if not call_pitches or not answer_pitches:
        return None
    root, label, _ = estimate_scale(call_pitches)
    low, high = min(call_pitches) - range_margin, max(call_pitches) + range_margin
    return {
        "in_scale": in_scale_fraction(answer_pitches, root, label),
        "in_range": sum(1 for p in answer_pitches if low <= p <= high) / len(answer_pitches),
        "mean_pitch_distance": abs(float(np.mean(answer_pitches)) - float(np.mean(call_pitches))),
    }


def mean_fit(pairs: Iterable[tuple[Phrase, Phrase]]) -> dict[str, float]:
    """continuation_fit averaged over (call, answer) pairs; `pairs` counts the usable ones."""
    rows = [f for f in (continuation_fit(c, a) for c, a in pairs) if f is not None]
    out: dict[str, float] = {"pairs": float(len(rows))}
    if rows:
        for key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


# ---- `musebridge eval continue` ----------------------------------------------------------------------


def wavenet_scores(
    model, calls_and_answers: Sequence[tuple[Phrase, Phrase]], genres: Sequence[int] | None
) -> dict:
    """Teacher-forced NLL and accuracy of a WaveNet over whole call+answer windows, and over the answer
    steps only (each conditioned on its call). NLL per step (nats) is dominated by the easy hold steps;
    NLL per note (nats) is the same summed NLL divided by the note-ons among those steps: the cost of a
    note, rhythm included, comparable across step grids."""
    import torch
    import torch.nn.functional as F

    from musebridge.models.encoding import melody

    rows = []
    for call, answer in calls_and_answers:
        rows.append(np.concatenate([melody.encode_phrase(call), melody.encode_phrase(answer)]))
    tokens = torch.as_tensor(np.stack(rows))
    answer_from = melody.encode_phrase(calls_and_answers[0][0]).size
    steps_per_bar = melody.steps_per_bar(calls_and_answers[0][0].meter)
    genre = torch.as_tensor(list(genres)) if genres is not None and model.config.num_genres else None
    nll_sum = torch.zeros(tokens.shape[1])
    correct = torch.zeros(tokens.shape[1])
    onsets = (tokens >= melody.FIRST_NOTE_TOKEN).sum(0).float()  # note-ons per step position
    with torch.no_grad():
        for begin in range(0, tokens.shape[0], 64):
            batch = tokens[begin : begin + 64]
            inputs, positions = model.teacher_forced_inputs(batch, steps_per_bar)
            logits = model(inputs, positions, genre[begin : begin + 64] if genre is not None else None)
            nll = F.cross_entropy(logits.transpose(1, 2), batch, reduction="none")  # [B, T]
            nll_sum += nll.sum(0)
            correct += (logits.argmax(-1) == batch).float().sum(0)
    n = tokens.shape[0]
    return {
        "nll": float(nll_sum.sum() / (n * tokens.shape[1])),
        "accuracy": float(correct.sum() / (n * tokens.shape[1])),
        "answer_nll": float(nll_sum[answer_from:].sum() / (n * (tokens.shape[1] - answer_from))),
        "answer_accuracy": float(correct[answer_from:].sum() / (n * (tokens.shape[1] - answer_from))),
        "nll_per_note": float(nll_sum.sum() / onsets.sum().clamp(min=1)),
        "answer_nll_per_note": float(nll_sum[answer_from:].sum() / onsets[answer_from:].sum().clamp(min=1)),
        "windows": n,
    }


def _spread(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def evaluate(
    models: dict[str, Any],
    pairs: Sequence[tuple[Phrase, Phrase]],
    genres: Sequence[str],
    answer_bars: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> dict:
    """All metrics for (call, real answer) pairs and ContinuePhraseModels {name: model}."""
    from musebridge.core.model_protocol import ModelRequest

    real = mean_statistics(answer for _, answer in pairs)
    result: dict[str, Any] = {
        "real": real,
        "real_fit": mean_fit(pairs),
        "models": {},
    }
    for name, model in models.items():
        continuations, free = [], []
        for index, (call, _answer) in enumerate(pairs):
            request = ModelRequest(
                "continue", call, answer_bars, genre=genres[index], temperature=temperature, seed=seed + index
            )
            continuations.append(model.generate(request))
            empty = Phrase(notes=(), bars=call.bars, meter=call.meter)
            free.append(
                model.generate(
                    ModelRequest(
                        "continue",
                        empty,
                        answer_bars,
                        genre=genres[index],
                        temperature=temperature,
                        seed=seed + index,
                    )
                )
            )
        free_stats, cont_stats = mean_statistics(free), mean_statistics(continuations)
        entry: dict[str, Any] = {
            "kind": model.kind,
            "sampling": {"temperature": temperature * getattr(model, "temperature_scale", 1.0),
                         "top_p": getattr(model, "top_p", 1.0),
                         "copy_weight": getattr(model, "copy_weight", 0.0),
                         "copy_bars": list(getattr(model, "copy_bars", ()))},
            "free": free_stats,
            "free_gaps": relative_gaps(free_stats, real),
            "continuation": cont_stats,
            "continuation_gaps": relative_gaps(cont_stats, real),
            "fit": mean_fit(zip([c for c, _ in pairs], continuations, strict=True)),
        }
        if model.kind == "wavenet":
            genre_ids = [model.genres.index(g) if g in model.genres else 0 for g in genres]
            entry["likelihood"] = wavenet_scores(model.model, pairs, genre_ids)
        goals = [
            g["within_10pct"]
            for part in ("free_gaps", "continuation_gaps")
            for g in entry[part].values()
            if g.get("defined", True)
        ]
        entry["goals_met"] = f"{sum(goals)}/{len(goals)}"
        entry["mean_gap"] = (mean_gap(entry["free_gaps"]) + mean_gap(entry["continuation_gaps"])) / 2
        result["models"][name] = entry
    return result


def format_report(result: dict) -> str:
    """A plain-text table of `evaluate`'s result."""
    lines = [f"{'':40s}" + "".join(f"{k:>19s}" for k in STAT_KEYS)]

    def row(label: str, stats: dict, gaps: dict | None = None) -> str:
        cells = []
        for key in STAT_KEYS:
            value = stats.get(key, float("nan"))
            gap = ""
            if gaps and key in gaps:
                shown = gaps[key].get("signed_gap")
                gap = f" ({shown * 100:+.0f}%)" if shown is not None else " (n/d)"
            cells.append(f"{value:>11.3f}{gap:>8s}")
        return f"{label:40s}" + "".join(cells)

    lines.append(row("real answers", result["real"]))
    for name, entry in result["models"].items():
        lines.append(row(f"{name} free", entry["free"], entry["free_gaps"]))
        lines.append(row(f"{name} continuation", entry["continuation"], entry["continuation_gaps"]))
    lines.append("(%) = gap to the real value; goal: within 10%; n/d = not defined (monophonic answers)")
    lines.append("")
    fit = result["real_fit"]
    lines.append(
        "continuation fit (fraction of answer notes in the call's scale / range, mean pitch distance)"
    )
    lines.append(
        f"  real answers: in_scale {fit.get('in_scale', 0):.3f}  in_range {fit.get('in_range', 0):.3f}"
        f"  distance {fit.get('mean_pitch_distance', 0):.2f}"
    )
    for name, entry in result["models"].items():
        f = entry["fit"]
        lines.append(
            f"  {name}: in_scale {f.get('in_scale', 0):.3f}  in_range {f.get('in_range', 0):.3f}"
            f"  distance {f.get('mean_pitch_distance', 0):.2f}   goals met {entry['goals_met']}"
            f"  mean gap {entry['mean_gap'] * 100:.0f}%"
        )
        if "likelihood" in entry:
            s = entry["likelihood"]
            lines.append(
                f"  {name}: NLL {s['nll']:.3f} nats/step ({s['nll_per_note']:.2f} nats/note), accuracy "
                f"{s['accuracy']:.3f}; answer steps NLL {s['answer_nll']:.3f} ({s['answer_nll_per_note']:.2f}"
                f" nats/note), accuracy {s['answer_accuracy']:.3f}"
            )
    return "\n".join(lines)


def latency_report(models: dict[str, Any], call: Phrase, bars: int = 2, runs: int = 50) -> dict:
    """p50 / p99 milliseconds of a `bars`-bar answer to `call` for each ContinuePhraseModel; for WaveNets
    also the naive (uncached) path on the same tokens, one intra-op thread, and the speedup."""
    import time

    import torch

    from musebridge.core.model_protocol import ModelRequest
    from musebridge.models.encoding import melody

    def timed(function) -> dict[str, float]:
        function()  # warm-up
        samples = []
        for _ in range(runs):
            begin = time.perf_counter()
            function()
            samples.append((time.perf_counter() - begin) * 1e3)
        return {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}

    report: dict[str, Any] = {"call_bars": call.bars, "answer_bars": bars, "runs": runs}
    for name, model in models.items():
        request = ModelRequest("continue", call, bars, seed=1)
        entry = {"adapter": timed(lambda model=model, request=request: model.generate(request))}
        if model.kind == "wavenet":
            steps_per_bar = melody.steps_per_bar(call.meter)
            tokens = torch.as_tensor(melody.encode_phrase(call)).unsqueeze(0)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for path in ("generate", "generate_naive"):
                    method = getattr(model.model, path)
                    entry[path] = timed(
                        lambda method=method, tokens=tokens, k=steps_per_bar: method(tokens, bars * k, k)
                    )
            finally:
                torch.set_num_threads(threads)
            entry["cached_speedup"] = entry["generate_naive"]["p50_ms"] / entry["generate"]["p50_ms"]
        report[name] = entry
    return report


def call_answer_pairs(
    data, split: str | None, genres: Sequence[str] | None, call_bars: int, bars: int, count: int
) -> tuple[list[tuple[Phrase, Phrase]], list[str]]:
    """Up to `count` (call, real answer) pairs from non-overlapping 4/4 windows of call_bars + bars bars,
    spread evenly over the split (None: the whole collection), and each pair's genre."""
    from musebridge.core.music import Meter

    total = call_bars + bars
    windows = _spread(data.windows(total, split, genres, Meter(4, 4), total, 4, True), count)
    pairs, names = [], []
    for window in windows:
        phrase = data.window_phrase(window)
        split_at = call_bars * phrase.meter.beats_per_bar
        call = Phrase(tuple(n for n in phrase.notes if n.start < split_at), call_bars, phrase.meter).clipped()
        answer = Phrase(
            tuple(n.shifted(-split_at) for n in phrase.notes if n.start >= split_at), bars, phrase.meter
        )
        pairs.append((call, answer))
        names.append(data.tunes[window.tune_index].genre)
    return pairs, names


def run(args) -> int:
    """`musebridge eval continue` (options in bridge/commands/continue_.py)."""
    import json

    import torch

    from musebridge.commands.train import command_line
    from musebridge.core.music import Meter
    from musebridge.errors import UserError
    from musebridge.models.continuation.phrase_model import (
        DEFAULT_CHECKPOINTS,
        ContinuePhraseModel,
        store_sampling,
        update_card_metrics,
    )
    from musebridge.models.data.dataset import TuneDataset

    torch.set_num_threads(1)  # small models on shared cores: extra threads only contend
    paths = list(args.checkpoint or [p for p in DEFAULT_CHECKPOINTS.values() if p.is_file()])
    if not paths:
        raise UserError("no checkpoints: pass --checkpoint X.pt (none shipped yet)")
    models = {}
    for path in paths:
        try:
            model = ContinuePhraseModel.from_checkpoint(path)
        except ValueError as error:
            raise UserError(str(error)) from error
        if model.kind == "wavenet":
            if getattr(args, "sampling_temperature", None) is not None:
                model.temperature_scale = args.sampling_temperature
            if getattr(args, "top_p", None) is not None:
                model.top_p = args.top_p
            if getattr(args, "copy_weight", None) is not None:
                model.copy_weight = args.copy_weight
            if getattr(args, "copy_bars", None):
                model.copy_bars = tuple(args.copy_bars)
        models[f"{model.kind}:{Path(path).stem}"] = model
    if getattr(args, "store_sampling", False):
        for path, model in zip(paths, models.values(), strict=True):
            if model.kind == "wavenet":
                stored = store_sampling(
                    path, model.temperature_scale, model.top_p, model.copy_weight, model.copy_bars
                )
                print(f"{path}: sampling {stored}")
    if getattr(args, "latency", False):
        import json as json_module

        notes = tuple(Note(60 + (i * 5) % 12, 90, i * 0.5, 0.5) for i in range(32))
        report = latency_report(models, Phrase(notes, 4, Meter(4, 4)), bars=2, runs=args.latency_runs)
        print(json_module.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json_module.dumps(report, indent=2))
        return 0
    try:
        data = TuneDataset.load(args.data)
        wanted = args.genres or sorted({g for m in models.values() for g in m.genres} & set(data.in_domain))
        pairs, genres = call_answer_pairs(
            data, args.split, wanted or None, args.call_bars, args.bars, args.windows
        )
        ood_names = [] if args.no_ood else list(args.ood_genres or data.out_of_domain)
        wrong = [g for g in ood_names if g not in data.out_of_domain]
        if wrong:
            raise ValueError(f"not held-out genres of this dataset: {', '.join(wrong)}")
        ood_pairs: list[tuple[Phrase, Phrase]] = []
        ood_genres: list[str] = []
        for name in ood_names:  # an equal share of the windows per held-out collection
            share = max(1, args.windows // len(ood_names))
            found = call_answer_pairs(data, None, [name], args.call_bars, args.bars, share)
            ood_pairs += found[0]
            ood_genres += found[1]
    except ValueError as error:
        raise UserError(str(error)) from error
    if not pairs:
        raise UserError(f"no {args.call_bars + args.bars}-bar windows in the {args.split} split")
    result = evaluate(models, pairs, genres, args.bars, args.temperature, args.seed)
    result.update(
        split=args.split,
        windows=len(pairs),
        call_bars=args.call_bars,
        answer_bars=args.bars,
        genres=sorted(set(genres)),
        command=command_line(),
    )
    if ood_pairs:
        # a held-out genre is unknown to a genre-conditioned model: it gets the model's first genre
        ood = evaluate(models, ood_pairs, ood_genres, args.bars, args.temperature, args.seed)
        ood.update(windows=len(ood_pairs), genres=sorted(set(ood_genres)),
                   windows_per_genre={g: ood_genres.count(g) for g in sorted(set(ood_genres))})
        result["out_of_domain"] = ood
    print(f"in domain: {args.split} split of {', '.join(result['genres'])}, {len(pairs)} windows")
    print(format_report(result))
    if "out_of_domain" in result:
        ood = result["out_of_domain"]
        print(f"\nout of domain (never trained on): {', '.join(ood['genres'])}, {ood['windows']} windows")
        print(format_report(ood))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    if args.update_card:
        for (name, _model), path in zip(models.items(), paths, strict=True):
            shared = {
                k: result[k]
                for k in (
                    "split",
                    "windows",
                    "call_bars",
                    "answer_bars",
                    "genres",
                    "command",
                    "real",
                    "real_fit",
                )
            }
            metrics = {**shared, **result["models"][name]}
            if "out_of_domain" in result:
                ood = result["out_of_domain"]
                metrics["out_of_domain"] = {
                    **{k: ood[k] for k in ("windows", "genres", "windows_per_genre", "real", "real_fit")},
                    **ood["models"][name],
                }
            card = update_card_metrics(path, metrics)
            print(f"updated {card}")
    return 0
