"""The music21 corpus (shipped with music21, offline) -> Tune records.

A multi-tune .abc file (Essen, O'Neill's) parses as an Opus: each score in it is its own tune with its
own source id ("<collection>/<file>#<X number or index>"). Polyphonic scores (Bach, Palestrina) keep
all parts merged; ties are joined first so a tied note is one note. Offsets are quarter-note beats.
"""

from __future__ import annotations

from pathlib import Path

from musebridge.core.music import Meter

from .tunes import DEFAULT_VELOCITY, Tune, make_bars, make_notes

CORPUS_SUFFIXES = (".abc", ".mxl", ".xml", ".musicxml", ".krn", ".mid", ".midi")


def corpus_root() -> Path:
    """Folder of the corpus shipped inside the installed music21 package."""
    from music21 import common

    return Path(common.getCorpusFilePath())


def corpus_files(collection: str) -> list[Path]:
    """Score files of a music21 corpus collection (e.g. "essenFolksong", "bach"), sorted.

    Analyses (.rntxt) and other non-score formats are left out. Unknown names raise ValueError.
    """
    from music21 import corpus

    paths = [Path(p) for p in corpus.getComposer(collection)]
    files = sorted(p for p in paths if p.suffix.lower() in CORPUS_SUFFIXES)
    if not files:
        raise ValueError(f"no score files in the music21 corpus collection {collection!r}")
    return files


def source_prefix(path: Path) -> str:
    """Source id of a file: its path inside the corpus when it is there, else its file name."""
    try:
        return path.resolve().relative_to(corpus_root().resolve()).as_posix()
    except ValueError:
        return path.name


def _meter_of(time_signature) -> Meter | None:
    try:
        return Meter(int(time_signature.numerator), int(time_signature.denominator))
    except (ValueError, TypeError, AttributeError):
        return None


def _key_name(score) -> str:
    from music21 import key

    for found in score.recurse().getElementsByClass(key.KeySignature):
        if isinstance(found, key.Key):
            return f"{found.tonic.name} {found.mode}"
        return f"{found.sharps:+d} sharps"
    return ""


def _tempo(score) -> float | None:
    from music21 import tempo

    for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
        bpm = mark.getQuarterBPM()
        if bpm:
            return float(bpm)
    return None


def _bars(score) -> list[tuple[float, float, int, int]]:
    """Measures of the first part (or the score itself): start, length, meter."""
    from music21 import stream

    holder = score.parts[0] if score.parts else score
    rows = []
    current: Meter | None = None
    for measure in holder.getElementsByClass(stream.Measure):
        if measure.timeSignature is not None:
            current = _meter_of(measure.timeSignature) or current
        if current is None:
            found = measure.getContextByClass("TimeSignature")
            current = _meter_of(found) if found is not None else Meter(4, 4)
        length = float(measure.duration.quarterLength)
        if length > 0:
            start = float(holder.elementOffset(measure))
            rows.append((start, length, current.numerator, current.denominator))
    return rows


def top_part(score):
    """The part with the highest mean pitch among those with notes (soprano, cantus, first violin, a
    piano's right hand), or the score itself when it has no parts. Chord symbols do not count."""
    from music21 import harmony

    best, best_mean = score, None
    for part in score.parts:
        pitches = [
            p.midi
            for element in part.flatten().notes
            if not isinstance(element, harmony.Harmony)
            for p in element.pitches
        ]
        if pitches:
            mean = sum(pitches) / len(pitches)
            if best_mean is None or mean > best_mean:
                best, best_mean = part, mean
    return best


def _note_rows(score, voice: str = "all") -> list[list]:
    """[pitch, velocity, start, duration] rows; a tie joins a note only to the same pitch starting at its end.

    voice="top" reads only top_part(score) and leaves chord symbols out. (music21's stripTies also
    joins notes of different pitches that an .abc slur-like tie links.)
    """
    from music21 import harmony

    holder = top_part(score) if voice == "top" else score
    flat = holder.flatten()
    rows: list[list] = []
    open_ties: dict[int, int] = {}
    for element in flat.notes:
        if voice == "top" and isinstance(element, harmony.Harmony):
            continue
        start = float(element.getOffsetBySite(flat))
        duration = float(element.quarterLength)
        velocity = element.volume.velocity if element.hasVolumeInformation() else None
        velocity = max(1, min(127, int(velocity))) if velocity else DEFAULT_VELOCITY
        members = element.notes if element.isChord else (element,)
        for member in members:
            midi = int(member.pitch.midi)
            if not 0 <= midi <= 127:
                continue
            tie = member.tie.type if member.tie is not None else None
            held = open_ties.pop(midi, None)
            if held is not None and tie in ("stop", "continue") and abs(sum(rows[held][2:]) - start) < 1e-6:
                rows[held][3] += duration
                if tie == "continue":
                    open_ties[midi] = held
                continue
            rows.append([midi, velocity, start, duration])
            if tie in ("start", "continue"):
                open_ties[midi] = len(rows) - 1
    return rows


def score_to_tune(score, source_id: str, collection: str, voice: str = "all") -> Tune:
    """One music21 Score as a Tune (all parts merged, or the top part only with voice="top"; ties
    joined, chords split into notes)."""
    rows = [tuple(row) for row in _note_rows(score, voice)]
    title = ""
    if score.metadata is not None and score.metadata.title:
        title = str(score.metadata.title)
    return Tune(
        source_id=source_id,
        collection=collection,
        title=title,
        key=_key_name(score),
        tempo_bpm=_tempo(score),
        notes=make_notes(rows),
        bars=make_bars(_bars(score)),
    )


def parse_score_file(
    path: Path, collection: str, source: str | None = None, voice: str = "all"
) -> tuple[list[Tune], list[str]]:
    """Every tune of one file, and one failure line per tune inside it that could not be read.
    voice: "all" parts merged, or the "top" part only (see top_part).

    A file that music21 cannot open at all raises (the builder logs it); a bad tune inside an Opus
    is reported and the others are kept.
    """
    from music21 import converter, stream

    source = source or source_prefix(path)
    parsed = converter.parse(str(path), forceSource=True, storePickle=False)
    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
    else:
        scores = [parsed]
    tunes: list[Tune] = []
    failures: list[str] = []
    used: set[str] = set()
    for index, score in enumerate(scores):
        number = score.metadata.number if (len(scores) > 1 and score.metadata is not None) else None
        tag = f"#{number}" if number not in (None, "") else (f"#{index}" if len(scores) > 1 else "")
        if f"{source}{tag}" in used:
            tag = f"#{index}"
        source_id = f"{source}{tag}"
        used.add(source_id)
        try:
            tunes.append(score_to_tune(score, source_id, collection, voice))
        except Exception as error:  # noqa: BLE001 - one bad tune must not lose the file
            failures.append(f"{source_id}: {type(error).__name__}: {error}")
    return tunes, failures
