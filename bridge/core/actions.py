"""What the conductor asks the I/O edges to do. The conductor returns these; it performs no I/O.

Beats are song beats (quarter notes) in the leading clock's time line.
"""

from __future__ import annotations

from dataclasses import dataclass

from musebridge.core.model_protocol import ModelRequest
from musebridge.core.music import Note
from musebridge.core.tempo import TempoMap

OscArg = int | float | str


@dataclass(frozen=True, slots=True)
class SendMidi:
    """Send these MIDI bytes out of the MIDI port now (thru path, pass-through messages)."""

    data: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ScheduleNotes:
    """Play `notes` (absolute song beats) on `channel` (0..15) of the MIDI output.

    Everything already scheduled for `track` at or after `replace_from` is dropped first, and notes
    that the dropped part leaves open are closed at `replace_from`.
    """

    track: int
    channel: int
    notes: tuple[Note, ...]
    replace_from: float


@dataclass(frozen=True, slots=True)
class ClearOutput:
    """Drop scheduled output (one track, or every track when track is None) and release held notes.

    panic: close every note ever opened on the output, thru notes included, as many note-offs as
    note-ons per key, then sustain off and All Notes Off on every channel used (/musebridge/panic,
    shutdown)."""

    track: int | None = None
    panic: bool = False


@dataclass(frozen=True, slots=True)
class SendOsc:
    """Send an OSC message: to `target` (host, port), or to every registered client when None."""

    address: str
    args: tuple[OscArg, ...]
    target: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A model job. The result must be in hand before `deadline_beat`; it then plays from `land_beat`."""

    job_id: int
    track: int
    model: str
    request: ModelRequest
    deadline_beat: float
    land_beat: float


@dataclass(frozen=True, slots=True)
class SubmitJob:
    """Hand a job to the engine (never run on the realtime threads)."""

    job: Job


@dataclass(frozen=True, slots=True)
class PrepareModel:
    """A track switched to a mode that runs `model`: load it now, off the realtime path, so that its
    first job is not late for the load (the engine loads each model once)."""

    model: str


@dataclass(frozen=True, slots=True)
class LogWarning:
    """Something a user should read in the daemon's log (the clock was lost, say)."""

    text: str


@dataclass(frozen=True, slots=True)
class TempoChanged:
    """The beat<->time map changed (tempo, position, start or stop): the output scheduler follows it."""

    tempo_map: TempoMap


Action = (
    SendMidi | ScheduleNotes | ClearOutput | SendOsc | SubmitJob | TempoChanged | PrepareModel | LogWarning
)
