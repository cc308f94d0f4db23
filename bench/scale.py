"""Scale on paper: a month of 1 million subscribers and 100 million gated requests, from measured figures.

Prices are AWS's published us-east-1 list prices (arm64 Lambda, HTTP API, DynamoDB on-demand) at the
time of writing - check the pricing pages before relying on them. Every assumption is a named
constant below and printed with the table.
"""

from __future__ import annotations

import math

from bench.authorizer import AuthorizerFigures
from bench.webhooks import WebhookFigures
from paygate_dev.template import load

LAMBDA_GB_SECOND = 0.0000133334  # arm64
LAMBDA_PER_MILLION = 0.20
HTTP_API_PER_MILLION = 1.00  # first 300 million a month
WRITE_UNIT_PER_MILLION = 0.625  # on-demand write request units
READ_UNIT_PER_MILLION = 0.125  # on-demand read request units

SUBSCRIBERS = 1_000_000
GATED_REQUESTS = 100_000_000
#: A renewal is about four Clerk events (payment attempt created/updated, subscription and item updated).
EVENTS_PER_SUBSCRIBER = 4
#: Share of deliveries that are redeliveries of an event already applied.
DUPLICATE_SHARE = 0.10
#: Share of gated requests answered from API Gateway's authorizer cache when it is on.
CACHE_HIT_SHARE = 0.50
#: Lambda gives a function CPU in proportion to memory: one full vCPU at 1769 MB.
FULL_VCPU_MB = 1769
#: In-region DynamoDB round trip assumed on AWS (DynamoDB Local's is not representative).
DYNAMODB_ROUND_TRIP_MS = 5.0
#: One eventually consistent read of a payer's items (under 4 KB).
READ_UNITS_PER_STORE_DECISION = 0.5


def _memory_mb(logical_id: str) -> int:
    template = load()
    own = template["Resources"].get(logical_id, {}).get("Properties", {}).get("MemorySize")
    return int(own or template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))


def _billed_ms(cpu_ms: float, memory_mb: int, round_trips: int) -> int:
    """Measured CPU time on this machine, slowed to the function's CPU share, plus the store's latency."""
    return max(1, math.ceil(cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + round_trips * DYNAMODB_ROUND_TRIP_MS))


def _lambda_cost(invocations: float, billed_ms: int, memory_mb: int) -> float:
    return invocations / 1e6 * LAMBDA_PER_MILLION + invocations * billed_ms / 1000 * memory_mb / 1024 * LAMBDA_GB_SECOND


def model(authorizer: AuthorizerFigures | None, webhooks: WebhookFigures) -> str:
    events = SUBSCRIBERS * EVENTS_PER_SUBSCRIBER
    deliveries = events / (1 - DUPLICATE_SHARE)
    webhook_mb = _memory_mb("ClerkSubscriptionsFunction")
    webhook_ms = _billed_ms(webhooks.cpu_ms_applied, webhook_mb, round(webhooks.requests_applied))
    webhook_lambda = _lambda_cost(deliveries, webhook_ms, webhook_mb)
    webhook_api = deliveries / 1e6 * HTTP_API_PER_MILLION
    # A failed conditional write is billed like the write it would have made: count duplicates at full price.
    webhook_ddb = deliveries * webhooks.wcu_applied / 1e6 * WRITE_UNIT_PER_MILLION

    lines = [
        "Assumptions: "
        f"{SUBSCRIBERS:,} subscribers x {EVENTS_PER_SUBSCRIBER} webhook events a month, "
        f"{DUPLICATE_SHARE:.0%} of deliveries are redeliveries; {GATED_REQUESTS:,} gated requests; "
        f"cache on = {CACHE_HIT_SHARE:.0%} of gated requests answered by API Gateway's authorizer cache; "
        f"billed Lambda time = CPU measured here x {FULL_VCPU_MB}/memory MB + {DYNAMODB_ROUND_TRIP_MS:.0f} ms "
        "per DynamoDB round trip; DynamoDB on-demand; list prices (USD, us-east-1): Lambda arm64 "
        f"${LAMBDA_GB_SECOND}/GB-s + ${LAMBDA_PER_MILLION}/M requests, HTTP API ${HTTP_API_PER_MILLION}/M, "
        f"writes ${WRITE_UNIT_PER_MILLION}/M WRU, reads ${READ_UNIT_PER_MILLION}/M RRU.",
        "",
        "| month | Lambda | API Gateway | DynamoDB | total |",
        "|---|---|---|---|---|",
        f"| webhooks ({deliveries / 1e6:.2f} M deliveries, {webhook_ms} ms billed, {webhooks.wcu_applied:g} WRU each) "
        f"| ${webhook_lambda:,.2f} | ${webhook_api:,.2f} | ${webhook_ddb:,.2f} "
        f"| ${webhook_lambda + webhook_api + webhook_ddb:,.2f} |",
    ]
    if authorizer is None:
        lines.append("| gated requests | authorizer not measured | | | |")
        return "\n".join(lines)
    auth_mb = _memory_mb("AuthorizerFunction")
    api = GATED_REQUESTS / 1e6 * HTTP_API_PER_MILLION
    for path, cpu_ms, trips, reads in (
        ("claims path", authorizer.claims_cpu_ms, 0, 0.0),
        ("store path (STORE_AUTHORITATIVE)", authorizer.store_cpu_ms, 1, READ_UNITS_PER_STORE_DECISION),
    ):
        billed = _billed_ms(cpu_ms, auth_mb, trips)
        for cache, share in (("cache off", 1.0), ("cache on", 1 - CACHE_HIT_SHARE)):
            calls = GATED_REQUESTS * share
            lam = _lambda_cost(calls, billed, auth_mb)
            ddb = calls * reads / 1e6 * READ_UNIT_PER_MILLION
            lines.append(
                f"| gated requests, {path}, {cache} ({calls / 1e6:.0f} M authorizer calls, {billed} ms billed) "
                f"| ${lam:,.2f} | ${api:,.2f} | ${ddb:,.2f} | ${lam + api + ddb:,.2f} |"
            )
    lines.append(
        "\nAPI Gateway's price for the gated requests is the same with or without paygate; the premium "
        "route functions behind the authorizer are the application's own cost and not counted."
    )
    return "\n".join(lines)
