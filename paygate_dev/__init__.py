"""Development tools: DynamoDB Local, the template reader, sample signing and in-process invocation.

None of this ships to AWS; the tests, the local runner and the benchmarks use it.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER_DIR = ROOT / "layers" / "paygate"
EVENTS_DIR = ROOT / "events"
