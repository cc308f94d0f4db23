"""Timing helpers: paired samples, so a figure and its baseline see the same machine load.

The machine may be shared: a figure timed for a minute and its baseline timed the next minute can
differ by the load alone. ``paired`` alternates one call of each (which goes first alternates too),
so both series are taken under the same conditions and their ratio means something.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial

_started = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr (the figures go to stdout)."""
    print(f"[{time.perf_counter() - _started:5.0f} s] {message}", file=sys.stderr, flush=True)


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one call.

    The CPU clock is read outside the wall clock's window: reading it is a system call (about 0.5 µs
    here), which would otherwise be added to every wall figure, ours and the baseline's alike.
    """
    c = time.process_time_ns()
    t = time.perf_counter_ns()
    call()
    wall = time.perf_counter_ns() - t
    return wall / 1e6, (time.process_time_ns() - c) / 1e6


def paired(
    ours: Callable[[int], object], baseline: Callable[[int], object], samples: int, warmup: int = 50
) -> tuple[list[float], list[float], list[float]]:
    """(our wall ms, our CPU ms, baseline wall ms), one call of each per sample ``i`` (``ours(i)``,
    ``baseline(i)``), alternating which goes first."""
    for i in range(min(warmup, samples)):
        ours(i)
        baseline(i)
    wall, cpu, base = [], [], []
    for i in range(samples):
        if i % 2:
            b, _ = timed(partial(baseline, i))
            w, c = timed(partial(ours, i))
        else:
            w, c = timed(partial(ours, i))
            b, _ = timed(partial(baseline, i))
        wall.append(w)
        cpu.append(c)
        base.append(b)
    return wall, cpu, base


class LogSink:
    """What the handlers print (their log lines), counted and written to /dev/null.

    Installed as ``sys.stdout`` for the whole run, before any handler is loaded (Powertools' Logger
    keeps the stream it found when it was made). Each write reaches the file as on Lambda, and the
    counts give the log volume per request for the cost model.
    """

    def __init__(self) -> None:
        self._file = open(os.devnull, "w")
        self.chars = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        self.lines += text.count("\n")
        return self._file.write(text)

    def flush(self) -> None:
        self._file.flush()

    def take(self) -> tuple[int, int]:
        """(characters, lines) written since the last call."""
        taken = (self.chars, self.lines)
        self.chars = self.lines = 0
        return taken

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def handler_output() -> Iterator[LogSink]:
    """``sys.stdout`` is a :class:`LogSink` inside the block; the report prints to the real stdout."""
    saved = sys.stdout
    sink = LogSink()
    sys.stdout = sink  # type: ignore[assignment]
    try:
        yield sink
    finally:
        sys.stdout = saved


def sink() -> LogSink:
    """The current :class:`LogSink` (inside :func:`handler_output`)."""
    if not isinstance(sys.stdout, LogSink):
        raise RuntimeError("run inside bench.timing.handler_output()")
    return sys.stdout
