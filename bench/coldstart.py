"""Cold start: the import time of each function's module in a fresh interpreter (``-X importtime``).

Each function in template.yaml is imported as Lambda imports it (the layer and the function's own
folder on the path) by a new ``python -X importtime`` process; the figure is the cumulative import
time of the handler module, which includes running its top-level code. The baseline module
(``bench/baseline_handler.py``) imports Powertools' Logger and creates a boto3 DynamoDB client.
Webhook and store-path functions create their DynamoDB client on the first request instead; that
deferred cost is measured in the same process, right after the import, and added for the webhook
verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.report import Figure, Section, Series
from paygate_dev import LAYER_DIR, ROOT
from paygate_dev.template import functions

BASELINE = Path(__file__).resolve().parent / "baseline_handler.py"

_PROBE = """
import sys
sys.path[:0] = [{layer!r}, {folder!r}]
import {module}
loaded = {{"boto3": "boto3" in sys.modules, "botocore": "botocore" in sys.modules}}
client_us = None
if {with_client}:
    import time
    from paygate.infra.dynamodb import new_client
    from paygate.infra.dynamodb_store import client_config
    t = time.perf_counter_ns()
    new_client(client_config())
    client_us = (time.perf_counter_ns() - t) // 1000
print(__import__("json").dumps({{**loaded, "client_us": client_us}}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_ENDPOINT"))}
    # What the template hands functions at run time, with harmless local values.
    env.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - DynamoDB Local only
        TABLE_NAME="paygate-bench",
        POWERTOOLS_SERVICE_NAME="paygate",
        POWERTOOLS_METRICS_NAMESPACE="paygate",
    )
    return env


def import_once(
    folder: Path, module: str, extra_env: dict[str, str] | None = None, with_client: bool = False
) -> tuple[float, dict]:
    """(cumulative import time in ms, what was loaded) of ``module`` in a fresh interpreter.

    ``with_client``: then also create the store's DynamoDB client, as the first request does, and
    report its cost as ``client_us``.
    """
    code = _PROBE.format(layer=str(LAYER_DIR), folder=str(folder), module=module, with_client=with_client)
    done = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env={**_env(), **(extra_env or {})},
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {folder}/{module} failed:\n{done.stderr[-2000:]}")
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:  # top level, not indented: the handler module
            return int(parts[1]) / 1000, json.loads(done.stdout.strip().splitlines()[-1])
    raise RuntimeError(f"no import time line for {module}")


def run(samples: int, extra_env: dict[str, str]) -> Section:
    section = Section(
        "Cold start",
        "Import time of each function's handler module in a fresh `python -X importtime` process "
        f"({samples} processes each, after one discarded run that warms the bytecode cache). "
        "Lambda's own init (runtime start, layer mount) is the same for every function and not included.",
    )
    import_once(BASELINE.parent, BASELINE.stem)
    baseline = Series.of(
        "Powertools Logger + boto3 DynamoDB client",
        [import_once(BASELINE.parent, BASELINE.stem)[0] for _ in range(samples)],
        "ms",
    )
    loaded_rows = []
    for function in sorted(functions().values(), key=lambda f: f.logical_id):
        module = function.handler.rsplit(".", 1)[0]
        is_authorizer = "CLERK_JWT_KEY" in function.environment or function.logical_id.lower().startswith("auth")
        is_webhook = any(k.startswith("WEBHOOK_SECRET") for k in function.environment)
        try:
            import_once(function.code_dir, module, extra_env, with_client=is_webhook)
        except RuntimeError as exc:
            section.extra.append(f"- {function.logical_id}: not measured ({str(exc).splitlines()[0]})")
            continue
        runs = [import_once(function.code_dir, module, extra_env, with_client=is_webhook) for _ in range(samples)]
        ours = Series.of(function.logical_id, [ms for ms, _ in runs], "ms")
        loaded = runs[-1][1]
        yes_no = ["yes" if loaded[sdk] else "no" for sdk in ("boto3", "botocore")]
        loaded_rows.append(f"| {function.logical_id} | {' | '.join(yes_no)} |")
        if is_authorizer:
            section.add(
                Figure(
                    f"{function.logical_id} import",
                    ours,
                    baseline,
                    "claims path imports no boto3, and < 0.5x baseline",
                    met=not loaded["boto3"] and ours.median < 0.5 * baseline.median,
                )
            )
        elif is_webhook:
            deferred = Series.of(
                f"{function.logical_id} import + first-request client",
                [ms + seen["client_us"] / 1000 for ms, seen in runs],
                "ms",
            )
            section.add(Figure(f"{function.logical_id} import", ours, baseline))
            section.add(
                Figure(
                    f"{function.logical_id} import + first-request client",
                    deferred,
                    baseline,
                    "<= 1.0x baseline",
                    met=deferred.median <= baseline.median,
                )
            )
        else:
            section.add(Figure(f"{function.logical_id} import", ours, baseline))
    section.extra.append(
        "AWS SDK loaded at import (the authorizer's claims path must not pay for it; paygate's store "
        "uses botocore's client directly, see `paygate/infra/dynamodb.py`):\n\n"
        "| function | boto3 imported | botocore imported |\n|---|---|---|\n" + "\n".join(loaded_rows)
    )
    return section
