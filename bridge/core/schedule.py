"""OutputSchedule: the pure owner of note hygiene, used by the output thread.

Per track it keeps beat-stamped note-on/off events on a MIDI channel. Invariant: every note-on it
ever hands out gets exactly one note-off (at its time, when its phrase is replaced, on clear/all_off).

- `schedule(track, channel, notes, replace_from)` drops the track's events at/after `replace_from`
  and closes at `replace_from` the notes that this leaves open.
- `pop_due(beat)` hands out the due MIDI bytes in order: by beat, note-offs before note-ons at the
  same beat. A pitch re-struck on a channel while it sounds gets its note-off first; the older
  note's own off is then skipped (MIDI has one state per channel and pitch).
- Popped events are final (they may already be queued in a JACK buffer): a replacement never
  recalls them, and closing note-offs are placed no earlier than the latest beat popped so far.
- `all_off()` / `clear(track)` return note-offs for every open note (plus CC 123 per used channel
  from all_off) and drop the pending events.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from musebridge.core.midi_bytes import all_notes_off, note_off, note_on
from musebridge.core.music import Note

_OFF, _ON = 0, 1


@dataclass(order=True, slots=True)
class _Event:
    beat: float
    kind: int  # _OFF before _ON at the same beat
    seq: int
    note_id: int = field(compare=False)
    track: int = field(compare=False)
    channel: int = field(compare=False)
    pitch: int = field(compare=False)
    velocity: int = field(compare=False)
    dropped: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class DueEvent:
    """One MIDI message and the song beat it belongs to."""

    beat: float
    data: tuple[int, ...]
    track: int


class OutputSchedule:
    """Beat-stamped note output with guaranteed note-offs. Not thread-safe: one owner thread."""

    def __init__(self) -> None:
        self._heap: list[_Event] = []
        self._seq = 0
        self._next_note_id = 0
        # note_id -> its pending off event (note-on already popped or still pending)
        self._pending_off: dict[int, _Event] = {}
        self._pending_on: dict[int, _Event] = {}
        # (channel, pitch) -> (note_id, track) of the note that sounds now
        self._sounding: dict[tuple[int, int], tuple[int, int]] = {}
        self._used_channels: set[int] = set()
        self._horizon = float("-inf")  # latest beat handed to pop_due

    def _push(
        self, beat: float, kind: int, note_id: int, track: int, channel: int, pitch: int, vel: int
    ) -> _Event:
        self._seq += 1
        event = _Event(beat, kind, self._seq, note_id, track, channel, pitch, vel)
        heapq.heappush(self._heap, event)
        return event

    def schedule(self, track: int, channel: int, notes: Iterable[Note], replace_from: float) -> None:
        """Replace the track's output from `replace_from` on with `notes` (absolute song beats)."""
        if not 0 <= channel <= 15:
            raise ValueError(f"channel must be 0..15, got {channel}")
        close_at = max(replace_from, self._horizon)
        for note_id, on in list(self._pending_on.items()):
            if on.track == track and on.beat >= replace_from:
                on.dropped = True
                del self._pending_on[note_id]
                off = self._pending_off.pop(note_id, None)
                if off is not None:
                    off.dropped = True
        for note_id, off in list(self._pending_off.items()):
            if off.track == track and off.beat > close_at:
                off.dropped = True
                on_pending = self._pending_on.get(note_id)
                beat = close_at if on_pending is None else max(close_at, on_pending.beat)
                self._pending_off[note_id] = self._push(beat, _OFF, note_id, track, off.channel, off.pitch, 0)
        for note in notes:
            self._next_note_id += 1
            nid = self._next_note_id
            start = note.start
            self._pending_on[nid] = self._push(start, _ON, nid, track, channel, note.pitch, note.velocity)
            self._pending_off[nid] = self._push(
                start + note.duration, _OFF, nid, track, channel, note.pitch, 0
            )
        self._used_channels.add(channel)
        self._compact()

    def _compact(self) -> None:
        if len(self._heap) > 64 and sum(e.dropped for e in self._heap) * 2 > len(self._heap):
            self._heap = [e for e in self._heap if not e.dropped]
            heapq.heapify(self._heap)

    def next_beat(self) -> float | None:
        """Beat of the earliest pending event, or None."""
        while self._heap and self._heap[0].dropped:
            heapq.heappop(self._heap)
        return self._heap[0].beat if self._heap else None

    def pop_due_events(self, beat: float) -> list[DueEvent]:
        """Every event due at or before `beat`, in order, with its beat and track."""
        self._horizon = max(self._horizon, beat)
        out: list[DueEvent] = []
        while self._heap and self._heap[0].beat <= beat:
            event = heapq.heappop(self._heap)
            if event.dropped:
                continue
            key = (event.channel, event.pitch)
            if event.kind == _ON:
                self._pending_on.pop(event.note_id, None)
                current = self._sounding.get(key)
                if current is not None:
                    out.append(DueEvent(event.beat, note_off(event.channel, event.pitch), current[1]))
                self._sounding[key] = (event.note_id, event.track)
                out.append(
                    DueEvent(event.beat, note_on(event.channel, event.pitch, event.velocity), event.track)
                )
            else:
                self._pending_off.pop(event.note_id, None)
                current = self._sounding.get(key)
                if current is not None and current[0] == event.note_id:
                    del self._sounding[key]
                    out.append(DueEvent(event.beat, note_off(event.channel, event.pitch), event.track))
        return out

    def pop_due(self, beat: float) -> list[tuple[int, ...]]:
        """MIDI bytes of every event due at or before `beat`, in order."""
        return [e.data for e in self.pop_due_events(beat)]

    def open_notes(self) -> set[tuple[int, int]]:
        """(channel, pitch) of every note handed out and not yet closed."""
        return set(self._sounding)

    def pending(self, track: int | None = None) -> int:
        """Number of pending (not yet popped) events, for one track or all."""
        return sum(1 for e in self._heap if not e.dropped and (track is None or e.track == track))

    def clear(self, track: int) -> list[tuple[int, ...]]:
        """Drop the track's pending events; note-offs for its sounding notes (to send now)."""
        for table in (self._pending_on, self._pending_off):
            for note_id, event in list(table.items()):
                if event.track == track:
                    event.dropped = True
                    del table[note_id]
        offs = []
        for key, (_nid, owner) in sorted(self._sounding.items()):
            if owner == track:
                offs.append(note_off(*key))
                del self._sounding[key]
        self._compact()
        return offs

    def all_off(self) -> list[tuple[int, ...]]:
        """Drop everything pending; note-offs for every sounding note, then CC 123 per used channel."""
        offs = [note_off(*key) for key in sorted(self._sounding)]
        offs.extend(all_notes_off(ch) for ch in sorted(self._used_channels))
        self._heap.clear()
        self._pending_on.clear()
        self._pending_off.clear()
        self._sounding.clear()
        return offs

    def reset_horizon(self) -> None:
        """Forget the popped horizon (after a transport relocation, beats start over)."""
        self._horizon = float("-inf")
