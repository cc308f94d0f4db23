"""Signing secrets and API keys from AWS Secrets Manager, cached five minutes.

Read with a botocore client made like paygate's DynamoDB client (the same session and budget: two
attempts in all, 1 s to connect, 2 s to read, up to 1 s between), so a Secrets Manager that does
not answer costs a webhook at most 7 s, inside its 10 s timeout, and the delivery is answered 500 for the provider to
retry. Not Powertools Parameters: its import brings boto3 and s3transfer, about a tenth of a second
of every webhook function's first request (see :mod:`paygate.infra.dynamodb`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from paygate.infra import dynamodb
from paygate.infra.dynamodb_store import client_config

#: Seconds a secret is used before it is read again (a rotation is seen within this).
MAX_AGE_S = 300

_cache: dict[str, tuple[float, str]] = {}
_client: Any = None
_lock = threading.Lock()


def secret_value(arn: str, clock: Callable[[], float] = time.monotonic) -> str:
    """The secret's string, read at most once every :data:`MAX_AGE_S` seconds per container."""
    cached = _cache.get(arn)
    if cached is not None and clock() - cached[0] < MAX_AGE_S:
        return cached[1]
    answer = _secrets_client().get_secret_value(SecretId=arn)
    if not isinstance(answer.get("SecretString"), str):
        # Never the value: only that it is not text (a SecretBinary).
        raise ValueError(f"the secret {arn} holds no text (SecretString); store the value as text")
    value = answer["SecretString"]
    _cache[arn] = (clock(), value)
    return value


def _secrets_client() -> Any:
    global _client
    with _lock:
        if _client is None:
            # AWS_ENDPOINT_URL_SECRETS_MANAGER (the AWS SDK's own setting) points it elsewhere (the tests).
            _client = dynamodb.new_client("secretsmanager", client_config())
        return _client
