"""Folders of the user's own .mid files -> Tune records (one file, one tune), through musebridge.smf.

The same reader as the offline commands (`musebridge.smf.read_midi`), so a model is trained on what a
user's file holds: tempo and meter events from any track, bars following the meter changes (4/4 from
the start when there is none, as the SMF spec says), overlapping same-pitch notes paired first-in
first-out, a note still sounding at the end of its track ended there. Times are converted to beats
through the file's tick grid (ticks / PPQN), so tempo changes do not bend the bars. Drum parts
(channel 10) are left out; all other parts are merged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musebridge.smf import NOTE_TICKS, MidiScore, read_midi

from .tunes import NOTE_DTYPE, Tune, regular_bars

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".rmi")
READER_VERSION = 2  # part of a MIDI file's cache key: bump when the reading rules change


def midi_files(folder: Path) -> list[Path]:
    """Every MIDI file under `folder` (recursively), sorted; ValueError if the folder does not exist."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"MIDI folder {folder} does not exist")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)


def score_tune(score: MidiScore, collection: str, source_id: str, title: str) -> Tune:
    """The pitched notes of a read MIDI file as a Tune (beats, bars from its meter changes)."""
    parts = score.parts(pitched_only=True)
    ticks = np.concatenate([p.notes for p in parts]) if parts else np.zeros(0, NOTE_TICKS)
    ticks = ticks[np.argsort(ticks["start"] * 128 + ticks["pitch"], kind="stable")]
    notes = np.empty(ticks.size, NOTE_DTYPE)
    notes["pitch"], notes["velocity"] = ticks["pitch"], ticks["velocity"]
    notes["start"] = ticks["start"] / score.ticks_per_beat
    notes["duration"] = (ticks["end"] - ticks["start"]) / score.ticks_per_beat
    total = float((notes["start"] + notes["duration"]).max()) if notes.size else 0.0
    tempo = score.bpm_at(0) if score.tempos else None
    return Tune(
        source_id=source_id,
        collection=collection,
        title=title,
        key=score.key_name(),
        tempo_bpm=tempo,
        notes=notes,
        bars=regular_bars(total, score.meter_changes()),
    )


def parse_midi_file(path: Path, collection: str, source_id: str) -> Tune:
    """One MIDI file as a Tune; musebridge.smf.MidiFileError (a ValueError, one line naming the cause)
    when it cannot be read."""
    return score_tune(read_midi(path), collection, source_id, Path(path).stem)
