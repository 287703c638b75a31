"""`musebridge interpolate A.mid B.mid --steps N [--bars 2|4] -o OUT.mid`: a MusicVAE morph, offline.

The output plays A, then the N interpolated phrases, then B, one after another, each `bars` bars long.
A and B are read from the bar that holds their first note, looped if shorter than `bars`; their
velocities carry over into the morph. Also home of the small MIDI file helpers `sample` uses.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

from musebridge.core.music import Meter, Note, Phrase
from musebridge.errors import UserError

DEFAULT_TEMPO = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "interpolate",
        help="MusicVAE morph from A.mid to B.mid (A, the steps, B, one after another)",
        description="Encode A and B with MusicVAE, slerp in latent space, decode N steps between them "
        "in one batch, and write A, the steps and B into one MIDI file.",
    )
    parser.add_argument("clip_a", type=Path, metavar="A.mid")
    parser.add_argument("clip_b", type=Path, metavar="B.mid")
    parser.add_argument("--steps", type=int, default=5, help="phrases between A and B (default 5)")
    parser.add_argument("--bars", type=int, default=2, choices=(2, 4), help="bars per phrase (default 2)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mid")
    add_model_options(parser)
    parser.add_argument("--temperature", type=float, default=0.0, help="decoder temperature (0 = argmax)")
    parser.set_defaults(handler=run_interpolate)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, help="MusicVAE .pt (default: the shipped one for --bars)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--seed", type=int, default=0)


def load_vae(args: argparse.Namespace):
    """The MusicVAEPhraseModel for --checkpoint or the shipped checkpoint of --bars."""
    from musebridge.models.vae_phrase_model import load_phrase_model, shipped_checkpoint
    from musebridge.registry import require_checkpoint, resolve_device

    path = args.checkpoint or shipped_checkpoint(args.bars)
    if args.checkpoint is None and not path.is_file() and shipped_checkpoint(2).is_file():
        print(f"note: no shipped {args.bars}-bar MusicVAE; using the 2-bar model window by window",
              file=sys.stderr)
        path = shipped_checkpoint(2)
    path = require_checkpoint(path, model="musicvae")
    try:
        return load_phrase_model(path, resolve_device(args.device))
    except Exception as error:  # noqa: BLE001 - any load failure means an unusable file
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a usable MusicVAE checkpoint ({reason})") from error


def read_midi_clip(path: Path, bars: int) -> tuple[Phrase, float]:
    """(phrase of `bars` bars from the bar holding the first note, tempo in BPM); UserError if unusable."""
    import pretty_midi

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # noqa: BLE001 - any parser failure means a corrupt file
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a readable MIDI file ({reason})") from error
    resolution = float(midi.resolution)
    meter = Meter()
    if midi.time_signature_changes:
        first = midi.time_signature_changes[0]
        try:
            meter = Meter(first.numerator, first.denominator)
        except ValueError:
            meter = Meter()
    notes = []
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        for note in instrument.notes:
            start = midi.time_to_tick(note.start) / resolution
            end = midi.time_to_tick(note.end) / resolution
            if end - start > 1e-6:
                notes.append((start, end, note.pitch, max(1, min(127, note.velocity))))
    if not notes:
        raise UserError(f"{path}: no notes (an empty MIDI file, or drums only)")
    first_bar = math.floor(min(n[0] for n in notes) / meter.beats_per_bar + 1e-9)
    offset = first_bar * meter.beats_per_bar
    length = bars * meter.beats_per_bar
    kept = tuple(
        Note(pitch, velocity, start - offset, min(end, offset + length) - start)
        for start, end, pitch, velocity in notes
        if offset <= start < offset + length
    )
    _times, tempi = midi.get_tempo_changes()
    tempo = float(tempi[0]) if len(tempi) else DEFAULT_TEMPO
    return Phrase(kept, bars, meter), tempo


def write_phrases_midi(phrases: list[Phrase], path: Path, tempo: float = DEFAULT_TEMPO) -> None:
    """Write phrases one after another (one piano track) at `tempo`, with the first phrase's meter."""
    import pretty_midi

    if not phrases:
        raise UserError("nothing to write")
    seconds_per_beat = 60.0 / tempo
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    meter = phrases[0].meter
    midi.time_signature_changes.append(pretty_midi.TimeSignature(meter.numerator, meter.denominator, 0.0))
    track = pretty_midi.Instrument(program=0, name="musebridge")
    offset = 0.0
    for phrase in phrases:
        for note in phrase.clipped().notes:
            start = (offset + note.start) * seconds_per_beat
            end = start + note.duration * seconds_per_beat
            track.notes.append(pretty_midi.Note(note.velocity, note.pitch, start, end))
        offset += phrase.length_beats
    midi.instruments.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        midi.write(str(path))
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from error


def run_interpolate(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.steps > 256:
        raise UserError(f"--steps must be 1..256, got {args.steps}")
    clip_a, tempo = read_midi_clip(args.clip_a, args.bars)
    clip_b, _ = read_midi_clip(args.clip_b, args.bars)
    if clip_b.meter != clip_a.meter:
        clip_b = Phrase(clip_b.notes, clip_b.bars, clip_a.meter)
    vae = load_vae(args)
    positions = [(i + 1) / (args.steps + 1) for i in range(args.steps)]
    morph = vae.interpolate_phrases(
        clip_a, clip_b, positions, args.bars, clip_a.meter, temperature=args.temperature, seed=args.seed
    )
    write_phrases_midi([clip_a, *morph, clip_b], args.output, tempo)
    print(f"wrote {args.output}: A, {args.steps} steps, B ({args.steps + 2} x {args.bars} bars)")
    return 0
