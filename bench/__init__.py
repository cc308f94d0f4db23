"""paygate's benchmarks: every figure against a named baseline measured in the same run.

    python -m bench            # everything, then writes docs/benchmarks.md
    python -m bench --quick    # fewer samples, for a smoke run (the docs are not rewritten)

Sections: authorizer decision (warm, in-process), cold start (import time in a fresh interpreter),
webhook throughput and DynamoDB cost per event, and a monthly cost model built from those figures.
"""

import sys as _sys
from pathlib import Path as _Path

# The shared layer, as Lambda mounts it, importable when run as ``python -m bench`` from the repository.
_LAYER = str(_Path(__file__).resolve().parent.parent / "layers" / "paygate")
if _LAYER not in _sys.path:
    _sys.path.insert(0, _LAYER)
