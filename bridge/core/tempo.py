"""Mapping between wall-clock seconds and song beats, as given by whichever clock leads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TempoMap:
    """Linear beat<->time map from one anchor: at `anchor_time` the song was at `anchor_beat`.

    While stopped, the song position stays at anchor_beat.
    """

    anchor_time: float
    anchor_beat: float
    bpm: float
    playing: bool = True

    def beat_at(self, time: float) -> float:
        if not self.playing:
            return self.anchor_beat
        return self.anchor_beat + (time - self.anchor_time) * self.bpm / 60.0

    def time_at(self, beat: float) -> float:
        """Wall time at which `beat` will sound (only meaningful while playing)."""
        return self.anchor_time + (beat - self.anchor_beat) * 60.0 / self.bpm

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm
