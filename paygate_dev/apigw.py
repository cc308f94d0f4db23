"""Builds the API Gateway HTTP API (payload format 2.0) events a function receives in AWS."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and paygate read."""

    function_name: str = "paygate-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/paygate-local"
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def http_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    path_parameters: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """A payload 2.0 event. Binary-safe: a body that is not UTF-8 is sent base64-encoded."""
    raw = body.encode() if isinstance(body, str) else body
    encoded, is_b64 = None, False
    if raw is not None:
        try:
            encoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            encoded, is_b64 = base64.b64encode(raw).decode(), True
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    if cookies:
        event["cookies"] = cookies
    if encoded is not None:
        event["body"] = encoded
    if path_parameters:
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = query_parameters(query)
    return event


def query_parameters(query: str) -> dict[str, str]:
    """As API Gateway passes them: URL-decoded, a repeated name's values joined with commas."""
    joined: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        joined.setdefault(name, []).append(value)
    return {name: ",".join(values) for name, values in joined.items()}
