"""Build MIDI files for tests with mido, event by event, in absolute ticks (no musebridge code involved)."""

from __future__ import annotations

import io

import mido

TPB = 480


def message(kind: str, **fields):
    return mido.Message(kind, **fields)


def meta(kind: str, **fields):
    return mido.MetaMessage(kind, **fields)


def smf(tracks, ticks_per_beat: int = TPB, file_format: int = 1) -> bytes:
    """tracks: lists of (tick, mido message) in any order (sorted stably by tick), end of track added."""
    midi = mido.MidiFile(type=file_format, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, event in sorted(events, key=lambda item: item[0]):
            track.append(event.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def notes_track(notes, channel: int = 0, program: int | None = None, name: str | None = None):
    """Events of (pitch, velocity, start tick, end tick) notes on one channel."""
    events = []
    if name is not None:
        events.append((0, meta("track_name", name=name)))
    if program is not None:
        events.append((0, message("program_change", channel=channel, program=program)))
    for pitch, velocity, start, end in notes:
        events.append((start, message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((end, message("note_off", channel=channel, note=pitch, velocity=0)))
    return events


def conductor(tempos=((0, 120.0),), meters=((0, 4, 4),)):
    """Events of tempo changes (tick, BPM) and time signatures (tick, numerator, denominator)."""
    events = [(tick, meta("set_tempo", tempo=mido.bpm2tempo(bpm))) for tick, bpm in tempos]
    events += [(t, meta("time_signature", numerator=n, denominator=d)) for t, n, d in meters]
    return events


def chunk_bodies(data: bytes) -> list[bytes]:
    """The MTrk bodies of a file, read by hand (to compare tracks byte for byte)."""
    bodies, position = [], 8 + int.from_bytes(data[4:8], "big")
    while position + 8 <= len(data):
        length = int.from_bytes(data[position + 4 : position + 8], "big")
        if data[position : position + 4] == b"MTrk":
            bodies.append(data[position + 8 : position + 8 + length])
        position += 8 + length
    return bodies
