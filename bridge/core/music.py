"""Musical values shared by every layer: meters, notes and phrases, all counted in beats.

A beat is a quarter note everywhere in musebridge (MIDI clock counts 24 per quarter note),
so a 6/8 bar lasts 3 beats and a 7/8 bar 3.5 beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Meter:
    """A time signature, e.g. Meter(7, 8)."""

    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if self.numerator < 1 or self.numerator > 64:
            raise ValueError(f"meter numerator must be 1..64, got {self.numerator}")
        if self.denominator not in (1, 2, 4, 8, 16, 32):
            raise ValueError(f"meter denominator must be a power of two 1..32, got {self.denominator}")

    @property
    def beats_per_bar(self) -> float:
        """Length of one bar in quarter-note beats."""
        return self.numerator * 4.0 / self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True, slots=True)
class Note:
    """One note: MIDI pitch and velocity, start and duration in beats."""

    pitch: int
    velocity: int
    start: float
    duration: float

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"pitch must be 0..127, got {self.pitch}")
        if not 1 <= self.velocity <= 127:
            raise ValueError(f"velocity must be 1..127, got {self.velocity}")
        if self.duration <= 0:
            raise ValueError(f"duration must be > 0 beats, got {self.duration}")

    @property
    def end(self) -> float:
        return self.start + self.duration

    def shifted(self, beats: float) -> Note:
        return replace(self, start=self.start + beats)


def _sort_key(note: Note) -> tuple[float, int]:
    return (note.start, note.pitch)


@dataclass(frozen=True, slots=True)
class Phrase:
    """A run of whole bars; note starts are in beats from the phrase's first downbeat."""

    notes: tuple[Note, ...] = ()
    bars: int = 1
    meter: Meter = field(default_factory=Meter)

    def __post_init__(self) -> None:
        if self.bars < 1:
            raise ValueError(f"a phrase has at least one bar, got {self.bars}")
        object.__setattr__(self, "notes", tuple(sorted(self.notes, key=_sort_key)))

    @property
    def length_beats(self) -> float:
        return self.bars * self.meter.beats_per_bar

    def transposed(self, semitones: int) -> Phrase:
        """The phrase moved by semitones; notes pushed outside 0..127 are dropped."""
        moved = tuple(
            replace(n, pitch=n.pitch + semitones) for n in self.notes if 0 <= n.pitch + semitones <= 127
        )
        return replace(self, notes=moved)

    def clipped(self) -> Phrase:
        """Notes starting past the phrase end are dropped; notes ringing past it are cut at the end."""
        length = self.length_beats
        kept = []
        for n in self.notes:
            if n.start < 0 or n.start >= length:
                continue
            kept.append(replace(n, duration=min(n.duration, length - n.start)))
        return replace(self, notes=tuple(kept))
