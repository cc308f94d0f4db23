"""The benchmark's timer: a wall figure is the call's own time, not the timer's."""

from __future__ import annotations

import pytest

from bench import timing


class Clocks:
    """A wall clock that only moves when something spends time: the call, or a read of the CPU clock
    (a system call)."""

    def __init__(self) -> None:
        self.wall_ns = 0
        self.cpu_ns = 0

    def perf_counter_ns(self) -> int:
        return self.wall_ns

    def process_time_ns(self) -> int:
        self.wall_ns += 500
        return self.cpu_ns

    def spend(self, ns: int) -> None:
        self.wall_ns += ns
        self.cpu_ns += ns


def test_reading_the_cpu_clock_is_not_in_the_wall_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    clocks = Clocks()
    monkeypatch.setattr(timing.time, "perf_counter_ns", clocks.perf_counter_ns)
    monkeypatch.setattr(timing.time, "process_time_ns", clocks.process_time_ns)
    wall_ms, cpu_ms = timing.timed(lambda: clocks.spend(4_000))
    assert (wall_ms, cpu_ms) == (0.004, 0.004)
