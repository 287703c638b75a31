"""The soak's bookkeeping (musebridge bench --soak): hanging notes, memory growth, expected bars."""

from __future__ import annotations

import os

import pytest

from musebridge.bench.soak import _Plan, child_pids, growth_mb_per_hour, hanging, rss_mb


def test_hanging_counts_note_ons_left_open_per_key() -> None:
    events = [(0, (0x90, 60, 100)), (1, (0x90, 60, 100)), (2, (0x80, 60, 0)), (3, (0x91, 62, 90)),
              (4, (0x90, 64, 0))]
    assert hanging(events) == 2  # one 60 on channel 1, the 62 on channel 2
    assert hanging([*events, (5, (0xB0, 123, 0))]) == 1  # All Notes Off closes channel 1 only


def test_growth_is_a_least_squares_slope_in_mb_per_hour() -> None:
    samples = [(float(t), 100.0 + t / 360.0) for t in range(0, 1800, 60)]  # +10 MB per hour
    assert growth_mb_per_hour(samples) == pytest.approx(10.0)
    assert growth_mb_per_hour(samples[:2]) is None


def test_bars_next_to_a_switch_are_not_expected() -> None:
    plan = _Plan()
    assert plan.expected(5) == {1: "answer", 2: "answer", 4: "echo"}
    assert 4 not in plan.expected(8) and plan.expected(10)[4] == "answer"  # track 4 switched at bar 8
    assert plan.expected(32) == {} and plan.expected(33) == {} and plan.expected(34)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux /proc")
def test_memory_of_this_process_and_its_children() -> None:
    assert rss_mb(os.getpid()) > 1.0
    assert os.getpid() in child_pids(os.getppid())
