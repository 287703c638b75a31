"""JACK frame time <-> the daemon's clock (time.perf_counter).

The daemon counts wall time in `time.perf_counter()` seconds (CLOCK_MONOTONIC on Linux). JACK stamps
MIDI events with frames; `jack_get_cycle_times()` gives, inside the process callback, the frame at the
start of the current cycle and its time in JACK microseconds (`jack_get_time()`), which on Linux is
CLOCK_MONOTONIC_RAW: a different clock (another origin, and NTP slews one and not the other). So:

    frame -> JACK usecs      linear inside the cycle: usecs = current_usecs + (f - current_frames)
                             * (next_usecs - current_usecs) / nframes   (JACK's own DLL-filtered rate)
    JACK usecs -> perf       perf = usecs / 1e6 + offset, offset re-measured about once a second from
                             back-to-back readings of both clocks (the tightest of a few pairs).

A frame's time is JACK's convention: frames of the cycle now being processed are stamped from the
cycle's start, so an input event is stamped with the frame the JACK graph gives it, and an output event
written at frame f is seen by every downstream client at frame f (the same time on this clock).

JACK-Client (cffi) does not bind jack_get_cycle_times / jack_get_time, so they are called via ctypes
on the client pointer. Everything here that runs in the process callback allocates nothing per call
beyond small ints/floats.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from dataclasses import dataclass

import jack

_FRAME_WRAP = 1 << 32


def _load_libjack() -> ctypes.CDLL:
    name = ctypes.util.find_library("jack") or "libjack.so.0"
    lib = ctypes.CDLL(name)
    lib.jack_get_time.restype = ctypes.c_uint64
    lib.jack_get_time.argtypes = []
    lib.jack_get_cycle_times.restype = ctypes.c_int
    lib.jack_get_cycle_times.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.POINTER(ctypes.c_float),
    ]
    return lib


_LIB: ctypes.CDLL | None = None


def libjack() -> ctypes.CDLL:
    """The ctypes handle on libjack (loaded once)."""
    global _LIB
    if _LIB is None:
        _LIB = _load_libjack()
    return _LIB


@dataclass(slots=True)
class CycleTimes:
    """The current cycle: `frames` (64-bit, unwrapped) at its start, its span in JACK microseconds."""

    frames: int
    usecs: int
    next_usecs: int
    nframes: int

    def frame_to_usecs(self, frame: int) -> float:
        return self.usecs + (frame - self.frames) * (self.next_usecs - self.usecs) / self.nframes

    def usecs_to_frame(self, usecs: float) -> int:
        return self.frames + round((usecs - self.usecs) * self.nframes / (self.next_usecs - self.usecs))


class JackClock:
    """Frame <-> perf_counter conversion for one JACK client; `update()` is called once per cycle."""

    #: how often (seconds of perf time) the JACK-usecs -> perf offset is re-measured
    OFFSET_REFRESH_S = 1.0

    def __init__(self, client: jack.Client) -> None:
        self._lib = libjack()
        self._client_ptr = ctypes.c_void_p(int(jack._ffi.cast("uintptr_t", client._ptr)))
        self._cf = ctypes.c_uint32()
        self._cu = ctypes.c_uint64()
        self._nu = ctypes.c_uint64()
        self._pu = ctypes.c_float()
        self._last_raw_frames: int | None = None
        self._ext_frames = 0
        self.cycle = CycleTimes(0, 0, 1, 1)
        self.offset, self.offset_uncertainty = self.measure_offset(200)
        self._offset_at = time.perf_counter()

    #: a reading whose two perf_counter() calls are further apart than this was preempted: not used
    MAX_READING_SPAN_S = 50e-6

    def measure_offset(self, tries: int = 5) -> tuple[float, float]:
        """(perf_counter() - jack_get_time()/1e6, uncertainty) from the tightest of `tries` readings."""
        best_span = float("inf")
        best = 0.0
        get_time = self._lib.jack_get_time
        perf = time.perf_counter
        for _ in range(tries):
            before = perf()
            usecs = get_time()
            after = perf()
            if after - before < best_span:
                best_span = after - before
                best = (before + after) * 0.5 - usecs * 1e-6
        return best, best_span

    def update(self, nframes: int) -> CycleTimes:
        """Read the current cycle's times (process thread only); unwrap the 32-bit frame counter."""
        self._lib.jack_get_cycle_times(
            self._client_ptr, ctypes.byref(self._cf), ctypes.byref(self._cu), ctypes.byref(self._nu),
            ctypes.byref(self._pu),
        )
        raw = self._cf.value
        if self._last_raw_frames is None:
            self._ext_frames = raw
        else:
            self._ext_frames += (raw - self._last_raw_frames) % _FRAME_WRAP
        self._last_raw_frames = raw
        usecs = self._cu.value
        # a fresh object, swapped in whole, so other threads never see a half-updated cycle
        cycle = CycleTimes(self._ext_frames, usecs, max(self._nu.value, usecs + 1), nframes)
        self.cycle = cycle
        now = time.perf_counter()
        if now - self._offset_at >= self.OFFSET_REFRESH_S:
            offset, span = self.measure_offset(3)
            if span <= self.MAX_READING_SPAN_S:  # else keep the last good one and retry next cycle
                self.offset, self.offset_uncertainty = offset, span
                self._offset_at = now
        return cycle

    def frame_to_time(self, frame: int) -> float:
        """perf_counter seconds of an (unwrapped) frame, by the current cycle's rate."""
        return self.cycle.frame_to_usecs(frame) * 1e-6 + self.offset

    def time_to_frame(self, when: float) -> int:
        """The (unwrapped) frame that sounds at perf_counter time `when`."""
        return self.cycle.usecs_to_frame((when - self.offset) * 1e6)
