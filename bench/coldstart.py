"""Cold start: the import time of each function's module in a fresh interpreter (``-X importtime``).

Each function in template.yaml is imported as Lambda imports it (the layer and the function's own
folder on the path) by a new ``python -X importtime`` process; the figure is the cumulative import
time of the handler module, which includes running its top-level code. The baseline module
(``bench/baseline_handler.py``) imports Powertools' Logger and creates a boto3 DynamoDB client.
Functions that create their DynamoDB client on the first request instead (webhooks, the account
API, the authorizer's store path unless ``STORE_AUTHORITATIVE=true``) pay that on their first
request: it is measured in the same process, right after the import, as the first request makes
it (``container_store(TABLE_NAME).client``), and shown as "first request's client".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.report import Figure, Section, Series
from bench.timing import progress
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
    import os, time
    from paygate.infra.dynamodb_store import container_store
    t = time.perf_counter_ns()
    container_store(os.environ["TABLE_NAME"]).client
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


def _series(name: str, runs: list[tuple[float, dict]], with_client: bool = False) -> Series:
    return Series.of(name, [ms + (seen["client_us"] / 1000 if with_client else 0) for ms, seen in runs], "ms")


def run(samples: int, extra_env: dict[str, str]) -> Section:
    """``extra_env``: what the functions need to start (the authorizer's issuer and key)."""
    section = Section(
        "Cold start",
        "Import time of each function's handler module in a fresh `python -X importtime` process "
        f"({samples} processes each, after one discarded run that warms the bytecode cache). "
        "Lambda's own init (runtime start, layer mount) is the same for every function and not included. "
        '"First request\'s client": what the first request that reads or writes the store pays when the '
        "client was not made during init (botocore's import and the client's creation).",
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
        uses_store = is_webhook or is_authorizer or "Account" in function.logical_id
        progress(f"cold start: {function.logical_id}")
        try:
            import_once(function.code_dir, module, extra_env, with_client=uses_store)
        except RuntimeError as exc:
            section.extra.append(f"- {function.logical_id}: not measured ({str(exc).splitlines()[0]})")
            continue
        runs = [import_once(function.code_dir, module, extra_env, with_client=uses_store) for _ in range(samples)]
        ours = _series(function.logical_id, runs)
        loaded = runs[-1][1]
        yes_no = ["yes" if loaded[sdk] else "no" for sdk in ("boto3", "botocore")]
        loaded_rows.append(f"| {function.logical_id} | {' | '.join(yes_no)} |")
        if is_authorizer:
            _authorizer_rows(section, function, module, runs, baseline, extra_env, samples)
        elif is_webhook:
            section.add(Figure(f"{function.logical_id} import", ours, baseline))
            section.add(
                Figure(
                    f"{function.logical_id} import + first request's client",
                    _series("import + client", runs, with_client=True),
                    baseline,
                    "<= 1.0x baseline",
                    met=_series("", runs, True).median <= baseline.median,
                )
            )
        elif uses_store:
            section.add(Figure(f"{function.logical_id} import", ours, baseline))
            section.add(
                Figure(
                    f"{function.logical_id} import + first request's client",
                    _series("import + client", runs, with_client=True),
                    baseline,
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


def _authorizer_rows(
    section: Section,
    function: Any,
    module: str,
    runs: list[tuple[float, dict]],
    baseline: Series,
    extra_env: dict[str, str],
    samples: int,
) -> None:
    """Claims first (the default) against ``STORE_AUTHORITATIVE=true``, whose client is made during init."""
    name = function.logical_id
    claims_first = _series(f"{name} import", runs)
    loaded = runs[-1][1]
    section.add(
        Figure(
            f"{name} import (claims first)",
            claims_first,
            baseline,
            "claims path imports no boto3, and < 0.5x baseline",
            met=not loaded["boto3"] and not loaded["botocore"] and claims_first.median < 0.5 * baseline.median,
        )
    )
    deferred = Series.of("first store-path request's client", [seen["client_us"] / 1000 for _, seen in runs], "ms")
    section.add(Figure(f"{name} (claims first): first store-path request's client", deferred, baseline))
    authoritative_env = {**extra_env, "STORE_AUTHORITATIVE": "true"}
    authoritative = [
        import_once(function.code_dir, module, authoritative_env, with_client=True) for _ in range(samples)
    ]
    at_init = Series.of(
        "first request's client (made during init)", [s["client_us"] / 1000 for _, s in authoritative], "ms"
    )
    section.add(
        Figure(
            f"{name} (STORE_AUTHORITATIVE=true): first store-path request's client",
            at_init,
            deferred,
            "reduced (ratio < 1)",
            met=at_init.median < deferred.median,
            note="the baseline is the same cost when the client is made on the first request (claims first)",
        )
    )
    section.add(
        Figure(
            f"{name} (STORE_AUTHORITATIVE=true) import, client made during init",
            _series("import", authoritative),
            baseline,
            note="init pays what the first request no longer does",
        )
    )
