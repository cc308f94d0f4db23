"""The DynamoDB client and attribute-value codec, on botocore alone.

``boto3.client("dynamodb")`` is a botocore client; boto3 itself adds nothing paygate uses, but
importing any part of it (even ``boto3.dynamodb.types``) also imports s3transfer and
multiprocessing, the largest single cost of a webhook function's cold start (docs/benchmarks.md).
The client made here is the same object, resolved the same way: region, credentials and
``AWS_ENDPOINT_URL_DYNAMODB`` from the environment.

The codec covers what paygate stores: strings, integers, booleans, null, maps, lists and bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from botocore.config import Config
from botocore.session import Session, get_session

_session: Session | None = None
_session_lock = threading.Lock()


def new_client(service: str, config: Config) -> Any:
    """A low-level client of an AWS service (``dynamodb``, ``secretsmanager``, ``events``); one botocore
    session per process (sessions are not thread-safe)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = get_session()
        return _session.create_client(service, config=config)


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_attribute(value) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: from_attribute(value) for name, value in item.items()}


def to_attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: bool is an int
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    # Floats lose money and time; paygate keeps integers (minor units, milliseconds).
    raise TypeError(f"paygate does not store {type(value).__name__} values in DynamoDB")


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return _number(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "B":
        return bytes(value)
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {_number(v) for v in value}
    raise TypeError(f"unknown DynamoDB attribute type {kind!r}")


def _number(text: str) -> int | Decimal:
    """paygate writes integers; anything else a person put in the table stays exact."""
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else number
