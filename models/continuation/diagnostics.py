"""Why the continuations miss the real answers' statistics: figures behind the model cards.

    python -m musebridge.models.continuation.diagnostics --data melodic.npz --split valid --windows 200

- WaveNet **copy rates**: of the note-ons in the 4-bar answers, the share that repeat the token exactly
  `lag` steps earlier (16 = one bar back, 32 = two bars, 64 = the call's same bar), for the real
  answers and for sampled ones at each setting. The receptive field (127 steps) covers every lag here,
  so a model that copies less than the music does at lag 16 or 32 is not short of context.
- WaveNet **copy likelihood**: teacher-forced probability the model gives the real next token on the
  answer note-ons that copy the token one or two bars back, against the other note-ons: whether the
  model knows that a repeat is coming (then sampling loses it) or not (then training / data do).
- C-RNN-GAN **pitch lattice**: the generator's frequency output as a continuous MIDI pitch; the share
  of generated tones within a quarter tone of a semitone, and the mean distance to the nearest one
  (real data: all on the lattice, distance 0). Tones off the lattice round to neighbours at random,
  out of key: the reason its scale consistency stays far from the real answers'.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np
import torch

from musebridge.core.music import Phrase
from musebridge.models.encoding import melody

LAGS = (16, 32, 48, 64)


def copy_rates(tokens: np.ndarray, answer_from: int, lags: Sequence[int] = LAGS) -> dict[int, float]:
    """{lag: share of answer note-ons equal to the token `lag` steps earlier}, call+answer tokens [N, T]."""
    tokens = np.asarray(tokens)
    out = {}
    for lag in lags:
        begin = max(answer_from, lag)
        now, before = tokens[:, begin:], tokens[:, begin - lag : tokens.shape[1] - lag]
        onsets = now >= melody.FIRST_NOTE_TOKEN
        out[lag] = float((now == before)[onsets].mean()) if onsets.any() else 0.0
    return out


def _call_answer_tokens(pairs: Sequence[tuple[Phrase, Phrase]]) -> tuple[np.ndarray, int]:
    rows = [np.concatenate([melody.encode_phrase(c), melody.encode_phrase(a)]) for c, a in pairs]
    return np.stack(rows), melody.encode_phrase(pairs[0][0]).size


@torch.no_grad()
def wavenet_copy_study(
    model, pairs: Sequence[tuple[Phrase, Phrase]], genre_ids: Sequence[int] | None,
    settings: Sequence[tuple[float, float]], seed: int = 0,
) -> dict:
    """Copy rates of the real answers and of answers sampled at each (temperature, top_p), and the
    teacher-forced copy likelihood (see the module doc). model: a MelodyWaveNet."""
    real, answer_from = _call_answer_tokens(pairs)
    steps_per_bar = melody.steps_per_bar(pairs[0][0].meter)
    tokens = torch.as_tensor(real)
    genre = torch.as_tensor(list(genre_ids)) if genre_ids is not None and model.config.num_genres else None
    inputs, positions = model.teacher_forced_inputs(tokens, steps_per_bar)
    probs = torch.softmax(model(inputs, positions, genre), -1)
    chosen = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).numpy()  # p(real token) [N, T]
    onsets = real >= melody.FIRST_NOTE_TOKEN
    copies = np.zeros_like(onsets)
    copies[:, 32:] = (real[:, 32:] == real[:, 16:-16]) | (real[:, 32:] == real[:, :-32])
    in_answer = np.zeros_like(onsets)
    in_answer[:, answer_from:] = True
    copy_notes, other_notes = onsets & copies & in_answer, onsets & ~copies & in_answer
    result = {
        "windows": len(pairs),
        "real": copy_rates(real, answer_from),
        "copy_likelihood": {
            "copying_note_ons": int(copy_notes.sum()),
            "p_real_token_on_copies": float(chosen[copy_notes].mean()),
            "p_real_token_on_other_note_ons": float(chosen[other_notes].mean()),
        },
        "sampled": {},
    }
    for temperature, top_p in settings:
        generator = torch.Generator().manual_seed(seed)
        answers = []
        for index in range(len(pairs)):
            one_genre = genre[index : index + 1] if genre is not None else None
            call = tokens[index : index + 1, :answer_from]
            answers.append(model.generate(call, real.shape[1] - answer_from, steps_per_bar, temperature,
                                          one_genre, generator, top_p=top_p)[0])
        sampled = np.concatenate([real[:, :answer_from], torch.stack(answers).numpy()], axis=1)
        notes = float((sampled[:, answer_from:] >= melody.FIRST_NOTE_TOKEN).sum(1).mean())
        result["sampled"][f"T={temperature:g} top_p={top_p:g}"] = {
            "copy_rates": copy_rates(sampled, answer_from), "note_ons_per_answer": notes}
    real_notes = (real[:, answer_from:] >= melody.FIRST_NOTE_TOKEN).sum(1)
    result["real_note_ons_per_answer"] = float(real_notes.mean())
    return result


@torch.no_grad()
def crnngan_pitch_lattice(model, calls: Sequence[Phrase], steps: int = 24, seed: int = 0) -> dict:
    """How far the generator's pitches fall from the semitone lattice after each call (model: CRNNGAN)."""
    from musebridge.models.continuation.crnngan import _FREQUENCY, _INTENSITY, SILENCE_BELOW, to_model_space
    from musebridge.models.encoding import tones as tone_encoding

    config = model.config
    deviations = []
    for index, call in enumerate(calls):
        call_tones = tone_encoding.encode_notes(call.notes, config.tones_per_step)
        scaled = torch.from_numpy(to_model_space(call_tones, config.tones_per_step)).unsqueeze(0)
        generator = torch.Generator().manual_seed(seed + index)
        out = model.generator.continue_call(scaled, steps, generator)[0].numpy()  # [steps, F]
        values = out.reshape(steps, config.tones_per_step, tone_encoding.N_FEATURES)
        sounding = values[..., _INTENSITY] >= SILENCE_BELOW  # the decoder's silence threshold
        pitch = 12.0 * values[..., _FREQUENCY][sounding]  # octaves above A4 -> semitones
        deviations.append(np.abs(pitch - np.round(pitch)))
    every = np.concatenate(deviations) if deviations else np.zeros(0)
    return {
        "tones": int(every.size),
        "within_quarter_tone": float((every <= 0.25).mean()) if every.size else 0.0,
        "mean_distance_semitones": float(every.mean()) if every.size else 0.0,
        "uniform_would_give": {"within_quarter_tone": 0.5, "mean_distance_semitones": 0.25},
    }


def main(argv: Sequence[str] | None = None) -> int:
    from musebridge.models.continuation.eval import call_answer_pairs
    from musebridge.models.continuation.phrase_model import DEFAULT_CHECKPOINTS, load_checkpoint
    from musebridge.models.data.dataset import TuneDataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", "--data", dest="data", default=None,
                        help="dataset .npz (default: the built cache)")
    parser.add_argument("--split", default="valid", help="train/valid/test, or 'whole' for held-out genres")
    parser.add_argument("--genres", nargs="*", default=["celtic", "folk"])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--wavenet", default=str(DEFAULT_CHECKPOINTS["wavenet"]))
    parser.add_argument("--crnngan", default=str(DEFAULT_CHECKPOINTS["crnngan"]))
    parser.add_argument("--settings", nargs="*", default=["1.0:1.0", "0.8:1.0", "1.0:0.9", "1.0:0.8"],
                        metavar="T:P", help="WaveNet (temperature, top_p) pairs to sample at")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = TuneDataset.load(args.data)
    split = None if args.split == "whole" else args.split
    pairs, genres = call_answer_pairs(data, split, args.genres, 4, 4, args.windows)
    _, wavenet, wavenet_ckpt = load_checkpoint(args.wavenet)
    names = list(wavenet_ckpt.get("genres", ()))
    settings = [tuple(float(v) for v in text.split(":")) for text in args.settings]
    report = {
        "split": args.split, "genres": args.genres,
        "wavenet": wavenet_copy_study(wavenet, pairs, [names.index(g) if g in names else 0 for g in genres],
                                      settings),
    }
    _, crnngan, _ = load_checkpoint(args.crnngan)
    report["crnngan"] = crnngan_pitch_lattice(crnngan, [c for c, _ in pairs])
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
