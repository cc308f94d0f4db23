"""Configuration read from the environment (and, in AWS, signing secrets from Secrets Manager)."""

from __future__ import annotations

import os

from paygate.domain.access import DAY_MS, AccessPolicy

#: Larger bodies are refused with 413 before verification; real billing events are a few KB.
MAX_WEBHOOK_BODY_BYTES = 256 * 1024


def table_name() -> str:
    return os.environ["TABLE_NAME"]


def event_retention_days() -> int:
    return int(os.environ.get("EVENT_RETENTION_DAYS", "90"))


def access_policy() -> AccessPolicy:
    return AccessPolicy(grace_period_ms=int(os.environ.get("GRACE_PERIOD_DAYS", "7")) * DAY_MS)


def webhook_secrets() -> list[str]:
    """The function's signing secrets, several during a rotation.

    ``WEBHOOK_SECRET`` (comma-separated ``whsec_...`` values) wins, for local runs and tests; in
    AWS the template passes ``WEBHOOK_SECRET_ARN`` and the value is read from Secrets Manager,
    cached for five minutes by Powertools Parameters.
    """
    raw = os.environ.get("WEBHOOK_SECRET")
    if not raw and os.environ.get("WEBHOOK_SECRET_ARN"):
        raw = _secret_value(os.environ["WEBHOOK_SECRET_ARN"])
    return [s.strip() for s in (raw or "").split(",") if s.strip()]


def _secret_value(arn: str) -> str:
    # Imported here: only functions deployed with Secrets Manager pay for it.
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(arn, max_age=300))
