"""MusicVAE metrics: reconstruction accuracy (teacher-forced and sampled, per step), interpolation
quality (Hamming curves, monotonicity, plausibility), prior samples and attribute vectors.

Conventions (stated so that the numbers can be compared):
- Reconstruction uses z = the posterior mean; "sampled" accuracy decodes autoregressively with argmax,
  feeding back its own tokens (MusicVAE Table 1's "sampling" column), "teacher-forced" feeds the true
  previous tokens. Accuracy is the share of steps whose predicted token equals the target token,
  hold steps included (Magenta's metrics/accuracy over all steps of fixed-length sequences).
- Interpolation: endpoints are the original sequences A and B; normalised Hamming distance is the
  share of steps whose tokens differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from musebridge.models.musicvae.model import FIRST_PITCH_TOKEN, MusicVAE, MusicVAEConfig, slerp

ATTRIBUTES = ("note_density", "pitch_range")


def note_density(tokens: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    """Note-ons per bar of each row of (N, T) tokens."""
    tokens = np.atleast_2d(tokens)
    bars = tokens.shape[1] / steps_per_bar
    return (tokens >= FIRST_PITCH_TOKEN).sum(axis=1) / bars


def pitch_range(tokens: np.ndarray) -> np.ndarray:
    """Highest minus lowest note-on pitch (semitones) of each row; 0 without notes."""
    tokens = np.atleast_2d(tokens)
    notes = tokens >= FIRST_PITCH_TOKEN
    high = np.where(notes, tokens, -1).max(axis=1)
    low = np.where(notes, tokens, 10_000).min(axis=1)
    return np.where(notes.any(axis=1), high - low, 0)


def attribute_values(name: str, tokens: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    if name == "note_density":
        return note_density(tokens, steps_per_bar)
    if name == "pitch_range":
        return pitch_range(tokens).astype(float)
    raise KeyError(f"unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)})")


@torch.no_grad()
def encode_means(model: MusicVAE, tokens: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """Posterior means (N, z) of token rows (N, T)."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(tokens), batch_size):
        batch = torch.as_tensor(np.asarray(tokens[start : start + batch_size]), device=device)
        out.append(model.encode(batch)[0])
    return torch.cat(out)


@torch.no_grad()
def compute_attribute_vectors(
    model: MusicVAE, tokens: np.ndarray, attributes: tuple[str, ...] = ATTRIBUTES
) -> dict[str, torch.Tensor]:
    """Per attribute: mean z of the top quartile minus mean z of the bottom quartile (Roberts 2018)."""
    means = encode_means(model, tokens).cpu()
    vectors = {}
    for name in attributes:
        values = attribute_values(name, tokens, model.config.steps_per_bar)
        order = np.argsort(values, kind="stable")
        quarter = max(len(order) // 4, 1)
        bottom, top = order[:quarter], order[-quarter:]
        vectors[name] = means[top].mean(0) - means[bottom].mean(0)
    return vectors


@torch.no_grad()
def reconstruction_accuracy(model: MusicVAE, tokens: np.ndarray, batch_size: int = 512) -> dict[str, Any]:
    """Teacher-forced and sampled (argmax) accuracy, overall and per step, with z = posterior mean."""
    model.eval()
    device = next(model.parameters()).device
    steps = model.config.steps
    forced_hits = torch.zeros(steps)
    sampled_hits = torch.zeros(steps)
    exact = 0
    for start in range(0, len(tokens), batch_size):
        batch = torch.as_tensor(np.asarray(tokens[start : start + batch_size]), device=device)
        mu, _ = model.encode(batch)
        forced = model.teacher_forced_logits(mu, batch).argmax(-1)
        sampled = model.decode(mu)
        forced_hits += (forced == batch).float().sum(0).cpu()
        sampled_hits += (sampled == batch).float().sum(0).cpu()
        exact += int((sampled == batch).all(dim=1).sum())
    count = max(len(tokens), 1)
    return {
        "sequences": len(tokens),
        "teacher_forced": float(forced_hits.sum() / (count * steps)),
        "sampled": float(sampled_hits.sum() / (count * steps)),
        "sampled_exact_sequences": exact / count,
        "per_step_teacher_forced": [round(float(v), 4) for v in forced_hits / count],
        "per_step_sampled": [round(float(v), 4) for v in sampled_hits / count],
    }


def data_ranges(
    tokens: np.ndarray, steps_per_bar: int = 16, low_q: float = 1.0, high_q: float = 99.0
) -> dict:
    """The data's 1st..99th percentile of note density and pitch range: what counts as plausible."""
    density = note_density(tokens, steps_per_bar)
    span = pitch_range(tokens)
    return {
        "note_density": [float(np.percentile(density, low_q)), float(np.percentile(density, high_q))],
        "pitch_range": [float(np.percentile(span, low_q)), float(np.percentile(span, high_q))],
    }


def plausible(tokens: np.ndarray, ranges: dict, steps_per_bar: int = 16) -> np.ndarray:
    """Bool per row: note density and pitch range both inside the data's ranges."""
    density = note_density(tokens, steps_per_bar)
    span = pitch_range(tokens)
    (d_low, d_high), (r_low, r_high) = ranges["note_density"], ranges["pitch_range"]
    return (density >= d_low) & (density <= d_high) & (span >= r_low) & (span <= r_high)


def _monotone(values: np.ndarray, increasing: bool, tolerance: float = 1e-9) -> bool:
    steps = np.diff(values)
    return bool(np.all(steps >= -tolerance) if increasing else np.all(steps <= tolerance))


@torch.no_grad()
def interpolation_quality(
    model: MusicVAE, tokens: np.ndarray, ranges: dict, pairs: int = 64, points: int = 11, seed: int = 0
) -> dict[str, Any]:
    """Slerp A->B for random test pairs: Hamming curves to A and B, monotonicity, plausibility."""
    model.eval()
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    alphas = torch.linspace(0.0, 1.0, points, device=device)
    to_a, to_b, plausible_rows = [], [], []
    monotone_a = monotone_b = 0
    for _ in range(pairs):
        a_index, b_index = rng.choice(len(tokens), size=2, replace=False)
        a, b = np.asarray(tokens[a_index]), np.asarray(tokens[b_index])
        mu = encode_means(model, np.stack([a, b]))
        decoded = model.decode(slerp(mu[0], mu[1], alphas)).cpu().numpy()  # (points, T)
        distance_a = (decoded != a).mean(axis=1)
        distance_b = (decoded != b).mean(axis=1)
        to_a.append(distance_a)
        to_b.append(distance_b)
        monotone_a += _monotone(distance_a, increasing=True)
        monotone_b += _monotone(distance_b, increasing=False)
        plausible_rows.append(plausible(decoded[1:-1], ranges, model.config.steps_per_bar))
    mean_a = np.mean(to_a, axis=0)
    mean_b = np.mean(to_b, axis=0)
    return {
        "pairs": pairs,
        "alphas": [round(float(a), 3) for a in alphas.cpu()],
        "hamming_to_a": [round(float(v), 4) for v in mean_a],
        "hamming_to_b": [round(float(v), 4) for v in mean_b],
        "mean_curve_monotone": _monotone(mean_a, True) and _monotone(mean_b, False),
        "pairs_monotone_to_a": monotone_a / pairs,
        "pairs_monotone_to_b": monotone_b / pairs,
        "intermediate_plausible": float(np.concatenate(plausible_rows).mean()),
    }


@torch.no_grad()
def prior_samples(model: MusicVAE, ranges: dict, count: int = 256, temperature: float = 1.0,
                  seed: int = 0) -> dict[str, Any]:
    """Plausibility and statistics of samples from the prior."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    samples = model.sample(count, temperature=temperature, generator=generator).cpu().numpy()
    return {
        "count": count,
        "temperature": temperature,
        "plausible": float(plausible(samples, ranges, model.config.steps_per_bar).mean()),
        "mean_note_density": float(note_density(samples, model.config.steps_per_bar).mean()),
        "mean_pitch_range": float(pitch_range(samples).mean()),
    }


@torch.no_grad()
def attribute_effect(model: MusicVAE, tokens: np.ndarray, amounts: tuple[float, ...] = (-2, -1, 0, 1, 2),
                     count: int = 256, seed: int = 0) -> dict[str, Any]:
    """Mean attribute value after decoding mu + amount * vector, for each stored attribute vector,
    over a seeded random pick of `count` sequences (neighbouring windows share a tune)."""
    model.eval()
    tokens = np.asarray(tokens)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(tokens), size=min(count, len(tokens)), replace=False))
    means = encode_means(model, tokens[pick])
    out: dict[str, Any] = {}
    for name in model.attribute_vectors:
        curve = []
        for amount in amounts:
            decoded = model.decode(model.shift_attribute(means, name, amount)).cpu().numpy()
            curve.append(round(float(attribute_values(name, decoded, model.config.steps_per_bar).mean()), 3))
        out[name] = {"amounts": list(amounts), "mean_value": curve,
                     "monotone": _monotone(np.array(curve), increasing=True)}
    return out


def paper_reference(config: MusicVAEConfig) -> dict[str, Any]:
    """The MusicVAE paper's reconstruction figures (Table 1) closest to this model's shape."""
    if config.hierarchical:
        return {"figure": "16-bar melody, hierarchical (the paper gives no 4-bar melody figure)",
                "teacher_forced": 0.919, "sampled": 0.812}
    return {"figure": "2-bar melody, flat", "teacher_forced": 0.986, "sampled": 0.951}


def evaluate(model: MusicVAE, test_tokens: np.ndarray, *, reference_tokens: np.ndarray | None = None,
             pairs: int = 64, seed: int = 0) -> dict[str, Any]:
    """All metrics on the test split; plausibility ranges come from `reference_tokens` (default: test)."""
    test_tokens = np.asarray(test_tokens, dtype=np.int64)
    if test_tokens.ndim != 2 or test_tokens.shape[1] != model.config.steps or len(test_tokens) < 2:
        raise ValueError(
            f"need at least 2 test sequences of {model.config.steps} steps, got {test_tokens.shape}"
        )
    reference = test_tokens if reference_tokens is None else np.asarray(reference_tokens, dtype=np.int64)
    ranges = data_ranges(reference, model.config.steps_per_bar)
    return {
        "reconstruction": reconstruction_accuracy(model, test_tokens),
        "paper_reference": paper_reference(model.config),
        "data_ranges": ranges,
        "interpolation": interpolation_quality(model, test_tokens, ranges, pairs=pairs, seed=seed),
        "prior_samples": prior_samples(model, ranges, seed=seed),
        "attributes": attribute_effect(model, test_tokens, seed=seed),
    }


def format_report(metrics: dict[str, Any]) -> str:
    """A few human-readable lines of `evaluate` output."""
    rec = metrics["reconstruction"]
    inter = metrics["interpolation"]
    paper = metrics["paper_reference"]
    lines = [
        f"reconstruction accuracy on {rec['sequences']} test sequences: "
        f"teacher-forced {rec['teacher_forced']:.4f}, sampled (argmax) {rec['sampled']:.4f} "
        f"(MusicVAE paper, {paper['figure']}: {paper['teacher_forced']} / {paper['sampled']}); "
        f"exact sequences {rec['sampled_exact_sequences']:.3f}",
        f"interpolation over {inter['pairs']} pairs, alphas {inter['alphas'][0]}..{inter['alphas'][-1]}:",
        "  hamming to A: " + " ".join(f"{v:.3f}" for v in inter["hamming_to_a"]),
        "  hamming to B: " + " ".join(f"{v:.3f}" for v in inter["hamming_to_b"]),
        f"  mean curves monotone: {inter['mean_curve_monotone']}; pairs monotone to A "
        f"{inter['pairs_monotone_to_a']:.2f}, to B {inter['pairs_monotone_to_b']:.2f}; "
        f"intermediates plausible {inter['intermediate_plausible']:.3f}",
        f"  plausible = note density in {metrics['data_ranges']['note_density']} notes/bar and pitch "
        f"range in {metrics['data_ranges']['pitch_range']} semitones (data 1st..99th percentile)",
    ]
    prior = metrics["prior_samples"]
    lines.append(
        f"prior samples (T={prior['temperature']}): plausible {prior['plausible']:.3f}, "
        f"density {prior['mean_note_density']:.2f} notes/bar, range {prior['mean_pitch_range']:.1f} semitones"
    )
    for name, effect in metrics["attributes"].items():
        lines.append(f"attribute {name}: amounts {effect['amounts']} -> mean {effect['mean_value']} "
                     f"(monotone {effect['monotone']})")
    return "\n".join(lines)


def time_interpolation(
    vae: Any, steps: int = 8, repeats: int = 50, warmup: int = 5, bars: int | None = None
) -> dict[str, float]:
    """Wall time of one interpolation of `steps` phrases between two phrases (MusicVAEPhraseModel):
    encode A and B, slerp, one batched decode, tokens back to phrases. p50/p90/max in milliseconds."""
    import time

    from musebridge.core.music import Meter, Note, Phrase

    bars = bars or vae.model.config.bars
    clip_a = Phrase(tuple(Note(60 + (i * 3) % 12, 80, i * 0.5, 0.5) for i in range(bars * 8)), bars, Meter())
    clip_b = Phrase(tuple(Note(72 - (i * 5) % 12, 100, i * 1.0, 1.0) for i in range(bars * 4)), bars, Meter())
    positions = [(i + 1) / (steps + 1) for i in range(steps)]
    samples = []
    for index in range(warmup + repeats):
        began = time.perf_counter()
        vae.interpolate_phrases(clip_a, clip_b, positions, bars)
        if index >= warmup:
            samples.append((time.perf_counter() - began) * 1000.0)
    values = np.array(samples)
    return {
        "steps": steps,
        "bars": bars,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "max_ms": float(values.max()),
    }


def evaluate_out_of_domain(
    model: MusicVAE, sets: dict[str, np.ndarray], *, pairs: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Reconstruction and interpolation on held-out collections {genre: tokens (N, T)}, each measured
    whole; "pooled" over all their windows, "macro" = the mean of the per-collection accuracies (a
    collection of 30 windows counts as much as one of 3,000). Sets with fewer than 2 windows are skipped.
    """
    out: dict[str, Any] = {"collections": {}}
    pooled = []
    for name, tokens in sorted(sets.items()):
        tokens = np.asarray(tokens, dtype=np.int64)
        if len(tokens) < 2:
            continue
        pooled.append(tokens)
        rec = reconstruction_accuracy(model, tokens)
        ranges = data_ranges(tokens, model.config.steps_per_bar)
        inter = interpolation_quality(model, tokens, ranges, pairs=pairs, seed=seed)
        out["collections"][name] = {
            "windows": len(tokens),
            "teacher_forced": round(rec["teacher_forced"], 4),
            "sampled": round(rec["sampled"], 4),
            "sampled_exact_sequences": round(rec["sampled_exact_sequences"], 4),
            "interpolation_monotone": inter["mean_curve_monotone"],
            "intermediate_plausible": round(inter["intermediate_plausible"], 4),
        }
    if not pooled:
        return out
    everything = np.concatenate(pooled)
    rec = reconstruction_accuracy(model, everything)
    rows = out["collections"].values()
    out["pooled"] = {"windows": len(everything), "teacher_forced": round(rec["teacher_forced"], 4),
                     "sampled": round(rec["sampled"], 4)}
    out["macro"] = {key: round(float(np.mean([r[key] for r in rows])), 4)
                    for key in ("teacher_forced", "sampled")}
    return out


def format_side_by_side(in_domain: dict[str, Any], out_of_domain: dict[str, Any], label: str) -> str:
    """Reconstruction in-domain (test split) beside each held-out collection, one line each."""
    rec = in_domain["reconstruction"]
    lines = [f"{'set':<34}{'windows':>8}{'teacher-forced':>16}{'sampled':>10}",
             f"{label:<34}{rec['sequences']:>8}{rec['teacher_forced']:>16.4f}{rec['sampled']:>10.4f}"]
    for name, row in out_of_domain.get("collections", {}).items():
        lines.append(f"{'out of domain: ' + name:<34}{row['windows']:>8}{row['teacher_forced']:>16.4f}"
                     f"{row['sampled']:>10.4f}")
    if "pooled" in out_of_domain:
        pooled, macro = out_of_domain["pooled"], out_of_domain["macro"]
        lines.append(f"{'out of domain, pooled':<34}{pooled['windows']:>8}{pooled['teacher_forced']:>16.4f}"
                     f"{pooled['sampled']:>10.4f}")
        lines.append(f"{'out of domain, mean of collections':<34}{'':>8}{macro['teacher_forced']:>16.4f}"
                     f"{macro['sampled']:>10.4f}")
    return "\n".join(lines)
