"""API Gateway HTTP API (payload format 2.0) request and response helpers."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any


def json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict:
    """A payload 2.0 response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), default=str),
    }


def error_response(status: int, error: str, message: str, **extra: Any) -> dict:
    """Every rejected request gets a machine-readable code and a human sentence."""
    return json_response(status, {"error": error, "message": message, **extra})


def request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Headers with lower-case names (API Gateway already lower-cases them for HTTP APIs)."""
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def request_body(event: Mapping[str, Any]) -> bytes:
    """The raw body bytes exactly as the client sent them (signatures are computed over these)."""
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def request_id(event: Mapping[str, Any]) -> str | None:
    return (event.get("requestContext") or {}).get("requestId")
