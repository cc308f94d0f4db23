"""Each webhook invocation logs and publishes under its own family, even when one process serves
several functions at once (the local runner does). A fresh interpreter, so no earlier test has
configured Powertools' shared logger and metric state."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter

from paygate_dev import LAYER_DIR, ROOT

FAMILIES = ("clerk.subscriptions", "dodo.payments", "clerk.payment_attempts")
CALLS_PER_THREAD = 40

SCRIPT = textwrap.dedent(
    f"""
    from concurrent.futures import ThreadPoolExecutor
    from paygate.providers import clerk, dodo
    from paygate.service.entry import webhook_handler
    from paygate_dev.apigw import LambdaContext, http_event

    handlers = [webhook_handler(f) for f in (clerk.SUBSCRIPTIONS, dodo.PAYMENTS, clerk.PAYMENT_ATTEMPTS)]

    def call(handler):
        # Unsigned: answered 401 before any store access, logged and counted.
        return handler(http_event("POST", "/webhook", body="{{}}", headers={{}}), LambdaContext())["statusCode"]

    for handler in handlers:  # one at a time first: the order of the log lines is known
        assert call(handler) == 401
    with ThreadPoolExecutor(6) as pool:  # then all at once
        work = [h for h in handlers for _ in range({CALLS_PER_THREAD})] * 2
        assert set(pool.map(call, work)) == {{401}}
    """
)


def run_script() -> list[dict]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{LAYER_DIR}:{ROOT}",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "TABLE_NAME": "paygate-logging",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_log_lines_and_metrics_name_the_family_of_their_own_invocation():
    lines = run_script()
    logged = [line["function_family"] for line in lines if line.get("message") == "webhook answered"]
    assert logged[:3] == list(FAMILIES)
    assert Counter(logged) == {family: 1 + 2 * CALLS_PER_THREAD for family in FAMILIES}
    # One EMF line per invocation, each with its own family and exactly one count.
    published = [(line["family"], json.dumps(line["webhook_401"])) for line in lines if "_aws" in line]
    assert Counter(published) == {(family, "[1.0]"): 1 + 2 * CALLS_PER_THREAD for family in FAMILIES}
