"""The clock seam: the only place that reads the wall clock.

Everything else takes ``now_ms`` as a parameter or a :data:`Clock` to call, so tests (and the
reliability suite) can put any instant in its place.
"""

import time
from collections.abc import Callable

#: Returns the current instant in integer milliseconds since the epoch (UTC).
type Clock = Callable[[], int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def system_clock() -> int:
    """The default :data:`Clock`: reads :func:`now_ms` when called, so replacing ``paygate.clock.now_ms``
    (as the tests and the local runner's time travel do) moves every default clock at once."""
    return now_ms()
