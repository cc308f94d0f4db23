"""Each webhook function's log lines name its own family, even when one process serves them all
(the local runner does). A fresh interpreter, so no earlier test has configured the shared logger."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from paygate_dev import LAYER_DIR, ROOT

SCRIPT = textwrap.dedent(
    """
    from paygate.providers import clerk, dodo
    from paygate.service.entry import webhook_handler
    from paygate_dev.apigw import LambdaContext, http_event

    for family in (clerk.SUBSCRIPTIONS, dodo.PAYMENTS, clerk.PAYMENT_ATTEMPTS):
        handler = webhook_handler(family)
        # Unsigned: answered 401 before any store access, and logged.
        answer = handler(http_event("POST", "/webhook", body="{}", headers={}), LambdaContext())
        assert answer["statusCode"] == 401, answer
    """
)


def test_log_lines_name_the_family_of_the_function_that_wrote_them():
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{LAYER_DIR}:{ROOT}",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": "paygate",
        "TABLE_NAME": "paygate-logging",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if '"webhook answered"' in line]
    assert [line["function_family"] for line in lines] == [
        "clerk.subscriptions",
        "dodo.payments",
        "clerk.payment_attempts",
    ]
