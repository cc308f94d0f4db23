"""Signing secrets from AWS Secrets Manager, cached five minutes (Powertools Parameters).

The client has the same budget as paygate's DynamoDB client (two attempts in all, 1 s to connect,
2 s to read), so a Secrets Manager that does not answer costs a webhook at most 6 s, inside its
10 s timeout, and the delivery is answered 500 for the provider to retry.
"""

from __future__ import annotations

from typing import Any

from paygate.infra.dynamodb_store import client_config

_provider: Any = None


def secret_value(arn: str) -> str:
    global _provider
    # Imported here: only functions deployed with Secrets Manager pay for it.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    if _provider is None:
        _provider = SecretsProvider(boto_config=client_config())
    return str(_provider.get(arn, max_age=300))
