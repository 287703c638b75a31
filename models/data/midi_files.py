"""Folders of the user's own .mid files -> Tune records (one file, one tune).

Times are converted to beats through the file's own tick grid (ticks / resolution), so tempo changes
do not bend the bars. Drum tracks are dropped; all other tracks are merged. Bars come from the file's
time-signature events (4/4 from the start when it has none, as the MIDI standard says).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from musebridge.core.music import Meter

from .tunes import Tune, make_notes, regular_bars

MIDI_SUFFIXES = (".mid", ".midi", ".kar")


def midi_files(folder: Path) -> list[Path]:
    """Every MIDI file under `folder` (recursively), sorted; ValueError if the folder does not exist."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"MIDI folder {folder} does not exist")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)


def parse_midi_file(path: Path, collection: str, source_id: str) -> Tune:
    """One MIDI file as a Tune; raises (ValueError, OSError, ...) when the file cannot be read."""
    import pretty_midi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        midi = pretty_midi.PrettyMIDI(str(path))
    resolution = float(midi.resolution)

    def beats(seconds: float) -> float:
        return midi.time_to_tick(seconds) / resolution

    rows = []
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        for note in instrument.notes:
            start = beats(note.start)
            rows.append((note.pitch, max(1, min(127, note.velocity)), start, beats(note.end) - start))
    notes = make_notes(rows)
    changes = []
    for signature in midi.time_signature_changes:
        try:
            changes.append((beats(signature.time), Meter(signature.numerator, signature.denominator)))
        except ValueError:
            continue  # an exotic denominator: the bars there become irregular, the notes stay
    total = float((notes["start"] + notes["duration"]).max()) if notes.size else 0.0
    _times, tempi = midi.get_tempo_changes()
    key = ""
    if midi.key_signature_changes:
        key = pretty_midi.key_number_to_key_name(midi.key_signature_changes[0].key_number)
    return Tune(
        source_id=source_id,
        collection=collection,
        title=path.stem,
        key=key,
        tempo_bpm=float(tempi[0]) if len(tempi) else None,
        notes=notes,
        bars=regular_bars(total, changes),
    )
