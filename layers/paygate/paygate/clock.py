"""The only place that reads the wall clock; everything else takes ``now_ms`` as a parameter."""

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
