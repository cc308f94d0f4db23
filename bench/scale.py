"""The cost model: a month of 1 million subscribers and 100 million gated requests, from measured figures.

Every per-request figure (CPU time, DynamoDB requests and capacity units, log characters, stored
item sizes) comes from this run of the benchmarks; every volume and price is a named constant
below, printed with the tables. Prices are AWS's published us-east-1 list prices (arm64 Lambda,
HTTP API, DynamoDB on-demand, CloudWatch Logs and metrics, X-Ray) at the time of writing, free
tiers ignored: check the pricing pages before relying on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.authorizer import AuthorizerFigures
from bench.history import AccountFigures
from bench.webhooks import ProviderFigures, WebhookFigures
from paygate_dev.template import load

# -- prices (USD, us-east-1) ----------------------------------------------------------------------
LAMBDA_GB_SECOND = 0.0000133334  # arm64
LAMBDA_PER_MILLION = 0.20
HTTP_API_PER_MILLION = 1.00  # first 300 million a month
WRITE_UNIT_PER_MILLION = 0.625  # on-demand write request units
READ_UNIT_PER_MILLION = 0.125  # on-demand read request units
STORAGE_GB_MONTH = 0.25  # DynamoDB standard table class
PITR_GB_MONTH = 0.20  # continuous backups, by table size
LOGS_INGESTED_GB = 0.50  # CloudWatch Logs, standard class
LOGS_STORED_GB_MONTH = 0.03
CUSTOM_METRIC_MONTH = 0.30  # first 10,000 metrics
XRAY_PER_MILLION_TRACES = 5.00
EVENTBRIDGE_PER_MILLION = 1.00  # custom events put on a bus

# -- volumes and assumptions ---------------------------------------------------------------------
SUBSCRIBERS = 1_000_000
GATED_REQUESTS = 100_000_000
#: A Clerk renewal: payment attempt created and updated, subscription and item updated.
CLERK_EVENTS_PER_SUBSCRIBER = 4
#: A Dodo renewal: subscription renewed, payment succeeded, one credit grant.
DODO_EVENTS_PER_SUBSCRIBER = 3
#: Share of deliveries that are redeliveries of an event already applied.
DUPLICATE_SHARE = 0.10
#: Calls to GET /me/subscription a month (ten per subscriber); each passes the authorizer too.
ACCOUNT_CALLS = 10_000_000
#: "API Gateway cache on": AuthorizerCacheTtl > 0 answers this share of gated requests itself.
API_CACHE_HIT_SHARE = 0.50
#: Share of authorizer invocations whose token the container already verified (a token lives about a
#: minute and comes with every request of that minute; several containers share the traffic).
TOKEN_SEEN_SHARE = 0.50
#: Lambda gives a function CPU in proportion to memory: one full vCPU at 1769 MB.
FULL_VCPU_MB = 1769
#: In-region DynamoDB round trip on AWS (DynamoDB Local's is not representative).
DYNAMODB_ROUND_TRIP_MS = 5.0
#: Lambda's own START, END and REPORT lines per invocation (characters, with the X-Ray trace id).
PLATFORM_LOG_CHARS = 350
#: Log retention in production (template: 365 days in prod, 30 in dev); stored uncompressed (an upper bound).
LOG_RETENTION_MONTHS = 12
#: X-Ray's default sampling rule, per function: the first request each second, then 5% of the rest.
XRAY_RESERVOIR_PER_SECOND = 1
XRAY_RATE = 0.05
SECONDS_A_MONTH = 30 * 86_400
#: Metrics the decision line and the webhook metric lines create: authorizer 2 by decision, about
#: 10 by decision and reason, 3 by decision and source; webhooks about 6 outcomes for each of 5 families.
CUSTOM_METRICS = 15 + 30
#: History a subscriber adds a month (a payment or attempt, a credit ledger entry), kept: shown after a year.
HISTORY_RECORDS_PER_SUBSCRIBER_MONTH = 2
#: Entitlement events published per subscriber a month (a renewal changes nothing; an upgrade, a
#: cancellation's end, a failed payment, a low balance do). Estimated, not measured.
ANNOUNCED_EVENTS_PER_SUBSCRIBER_MONTH = 1
#: The publisher's billed time per stream record, and the sweeper's per invocation (it waits inside a
#: minute for the windows that end in it: with a million payers, about the whole minute). Estimated.
PUBLISHER_MS = 30
SWEEPER_MS = 60_000
HISTORY_MONTHS = 12
#: Inbox retention (template EventRetentionDays = 90).
INBOX_MONTHS = 3


@dataclass
class Line:
    name: str
    lam: float = 0.0
    api: float = 0.0
    ddb: float = 0.0
    logs: float = 0.0
    other: float = 0.0
    note: str = ""

    @property
    def total(self) -> float:
        return self.lam + self.api + self.ddb + self.logs + self.other


@dataclass
class CostModel:
    lines: list[Line] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)


def _memory_mb(logical_id: str) -> int:
    template = load()
    own = template["Resources"].get(logical_id, {}).get("Properties", {}).get("MemorySize")
    return int(own or template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))


def billed_ms(cpu_ms: float, memory_mb: int, round_trips: float) -> int:
    """CPU measured here, slowed to the function's CPU share, plus the store's round trips; Lambda bills
    whole milliseconds."""
    return max(1, math.ceil(cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + round_trips * DYNAMODB_ROUND_TRIP_MS))


def _lambda(invocations: float, ms: int, memory_mb: int) -> float:
    return invocations / 1e6 * LAMBDA_PER_MILLION + invocations * ms / 1000 * memory_mb / 1024 * LAMBDA_GB_SECOND


def _logs(invocations: float, chars: float) -> float:
    """Ingestion a month (characters are bytes: the lines are ASCII JSON)."""
    return invocations * (chars + PLATFORM_LOG_CHARS) / 1e9 * LOGS_INGESTED_GB


def _log_gb(invocations: float, chars: float) -> float:
    return invocations * (chars + PLATFORM_LOG_CHARS) / 1e9


def traces(invocations: float) -> float:
    """Traces X-Ray records a month for one function under the default sampling rule."""
    reservoir = min(invocations, XRAY_RESERVOIR_PER_SECOND * SECONDS_A_MONTH)
    return reservoir + XRAY_RATE * (invocations - reservoir)


def _read_units(response_bytes: float) -> float:
    """An eventually consistent read: 0.5 units per 4 KB read (at least one unit's half)."""
    return max(1, math.ceil(response_bytes / 4096)) * 0.5


def model(auth: AuthorizerFigures, hooks: WebhookFigures, account: AccountFigures) -> CostModel:
    out = CostModel()
    webhook_mb = _memory_mb("ClerkSubscriptionsFunction")
    auth_mb = _memory_mb("AuthorizerFunction")
    account_mb = _memory_mb("AccountFunction")
    log_gb = 0.0
    invocations: dict[str, float] = {}

    for provider, figures, events in (
        ("Clerk Billing", hooks.clerk, CLERK_EVENTS_PER_SUBSCRIBER),
        ("Dodo Payments", hooks.dodo, DODO_EVENTS_PER_SUBSCRIBER),
    ):
        line = _webhooks(provider, figures, events, webhook_mb)
        out.lines.append(line)
    # One deployment bills one provider's deliveries; the larger of the two is carried into the totals.
    webhook_line = max(out.lines, key=lambda x: x.total)
    deliveries = SUBSCRIBERS * max(CLERK_EVENTS_PER_SUBSCRIBER, DODO_EVENTS_PER_SUBSCRIBER) / (1 - DUPLICATE_SHARE)
    invocations["webhooks"] = deliveries
    log_gb += _log_gb(deliveries, max(hooks.clerk.log_chars, hooks.dodo.log_chars))

    cpu_mix = TOKEN_SEEN_SHARE * auth.seen_token_cpu_ms + (1 - TOKEN_SEEN_SHARE) * auth.new_token_cpu_ms
    store_units = _read_units(auth.store_read_bytes)
    for path, cpu_ms, trips, units in (
        ("claims first", cpu_mix, 0.0, 0.0),
        ("STORE_AUTHORITATIVE=true (every decision reads)", auth.store_cpu_ms, auth.store_requests, store_units),
    ):
        ms = billed_ms(cpu_ms, auth_mb, trips)
        for cache, share in (("API Gateway cache off", 1.0), ("API Gateway cache on", 1 - API_CACHE_HIT_SHARE)):
            calls = GATED_REQUESTS * share
            out.lines.append(
                Line(
                    f"gated requests, {path}, {cache}",
                    lam=_lambda(calls, ms, auth_mb),
                    api=GATED_REQUESTS / 1e6 * HTTP_API_PER_MILLION,
                    ddb=calls * units / 1e6 * READ_UNIT_PER_MILLION,
                    logs=_logs(calls, auth.log_chars),
                    note=f"{calls / 1e6:.0f} M authorizer calls, {ms} ms billed each",
                )
            )
    invocations["authorizer"] = GATED_REQUESTS + ACCOUNT_CALLS
    log_gb += _log_gb(GATED_REQUESTS + ACCOUNT_CALLS, auth.log_chars)

    account_ms = billed_ms(account.cpu_ms, account_mb, account.requests)
    auth_ms = billed_ms(cpu_mix, auth_mb, 0)
    out.lines.append(
        Line(
            "account API (GET /me/subscription), with its authorizer call",
            lam=_lambda(ACCOUNT_CALLS, account_ms, account_mb) + _lambda(ACCOUNT_CALLS, auth_ms, auth_mb),
            api=ACCOUNT_CALLS / 1e6 * HTTP_API_PER_MILLION,
            ddb=ACCOUNT_CALLS * account.requests * _read_units(account.read_bytes) / 1e6 * READ_UNIT_PER_MILLION,
            logs=_logs(ACCOUNT_CALLS, account.log_chars) + _logs(ACCOUNT_CALLS, auth.log_chars),
            note=f"{ACCOUNT_CALLS / 1e6:.0f} M calls, {account_ms} ms billed, {account.requests:g} read of "
            f"{account.read_bytes:,.0f} bytes",
        )
    )
    invocations["account"] = ACCOUNT_CALLS
    log_gb += _log_gb(ACCOUNT_CALLS, account.log_chars)

    # Entitlement events out: the stream's publisher, EventBridge, the sweeper every minute.
    announced = SUBSCRIBERS * ANNOUNCED_EVENTS_PER_SUBSCRIBER_MONTH
    sweeps = SECONDS_A_MONTH / 60
    publisher_mb, sweeper_mb = _memory_mb("EventsPublisherFunction"), _memory_mb("EntitlementsSweeperFunction")
    out.lines.append(
        Line(
            "entitlement events out (estimated volumes)",
            lam=_lambda(announced, PUBLISHER_MS, publisher_mb) + _lambda(sweeps, SWEEPER_MS, sweeper_mb),
            other=announced / 1e6 * EVENTBRIDGE_PER_MILLION,
            note=f"{announced / 1e6:g} M events ({ANNOUNCED_EVENTS_PER_SUBSCRIBER_MONTH} per subscriber), "
            f"{PUBLISHER_MS} ms each to publish; {sweeps:,.0f} sweeps of up to {SWEEPER_MS / 1000:g} s",
        )
    )
    invocations["events"] = announced + sweeps

    # Observability: log storage, the metrics the EMF lines create, traces.
    recorded = sum(traces(n) for n in invocations.values())
    out.lines.append(
        Line(
            "logs kept (production retention), metrics, traces",
            logs=log_gb * LOG_RETENTION_MONTHS * LOGS_STORED_GB_MONTH,
            other=CUSTOM_METRICS * CUSTOM_METRIC_MONTH + recorded / 1e6 * XRAY_PER_MILLION_TRACES,
            note=f"{log_gb:,.1f} GB of logs a month kept {LOG_RETENTION_MONTHS} months; {CUSTOM_METRICS} metrics; "
            f"{recorded / 1e6:,.1f} M traces (Tracing: Active)",
        )
    )

    # Storage: what every payer holds now, a year of history, the inbox's retention.
    current_gb = SUBSCRIBERS * hooks.payer_partition_bytes / 1e9
    history_gb = SUBSCRIBERS * HISTORY_RECORDS_PER_SUBSCRIBER_MONTH * HISTORY_MONTHS * hooks.history_record_bytes / 1e9
    inbox_bytes = max(
        CLERK_EVENTS_PER_SUBSCRIBER * hooks.clerk.inbox_item_bytes,
        DODO_EVENTS_PER_SUBSCRIBER * hooks.dodo.inbox_item_bytes,
    )
    inbox_gb = SUBSCRIBERS * inbox_bytes / (1 - DUPLICATE_SHARE) * INBOX_MONTHS / 1e9
    table_gb = current_gb + history_gb + inbox_gb
    out.lines.append(
        Line(
            "DynamoDB storage and point-in-time recovery",
            ddb=table_gb * STORAGE_GB_MONTH,
            other=table_gb * PITR_GB_MONTH,
            note=f"{table_gb:,.1f} GB: current state {current_gb:,.1f}, a year of history {history_gb:,.1f}, "
            f"inbox ({INBOX_MONTHS} months) {inbox_gb:,.1f}",
        )
    )

    def total(gated: str) -> float:
        chosen = [x for x in out.lines if x.name == gated]
        rest = [x for x in out.lines if not x.name.startswith(("gated requests", "webhooks"))]
        return webhook_line.total + sum(x.total for x in chosen + rest)

    for path in ("claims first", "STORE_AUTHORITATIVE=true (every decision reads)"):
        for cache in ("API Gateway cache off", "API Gateway cache on"):
            out.totals[f"{path}, {cache}"] = total(f"gated requests, {path}, {cache}")
    out.assumptions = [
        f"{SUBSCRIBERS:,} subscribers; {GATED_REQUESTS:,} gated requests and {ACCOUNT_CALLS:,} account calls a month",
        f"webhook events per subscriber a month: Clerk {CLERK_EVENTS_PER_SUBSCRIBER}, Dodo "
        f"{DODO_EVENTS_PER_SUBSCRIBER}; {DUPLICATE_SHARE:.0%} of deliveries are redeliveries (billed as applied)",
        f"API Gateway cache on: {API_CACHE_HIT_SHARE:.0%} of gated requests answered by API Gateway; "
        f"{TOKEN_SEEN_SHARE:.0%} of authorizer calls carry a token the container already verified",
        f"billed Lambda time = CPU measured here x {FULL_VCPU_MB}/memory MB + {DYNAMODB_ROUND_TRIP_MS:g} ms per "
        "DynamoDB round trip, rounded up to whole milliseconds",
        f"logs: the lines the handlers wrote here, plus {PLATFORM_LOG_CHARS} characters of Lambda's START/END/REPORT "
        f"lines per invocation, ${LOGS_INGESTED_GB}/GB ingested, ${LOGS_STORED_GB_MONTH}/GB-month kept",
        f"X-Ray: the default sampling rule per function ({XRAY_RESERVOIR_PER_SECOND}/s, then {XRAY_RATE:.0%}), "
        f"${XRAY_PER_MILLION_TRACES}/M traces; {CUSTOM_METRICS} custom metrics at ${CUSTOM_METRIC_MONTH}",
        f"history: {HISTORY_RECORDS_PER_SUBSCRIBER_MONTH} records per subscriber a month, kept (shown after "
        f"{HISTORY_MONTHS} months); DynamoDB ${STORAGE_GB_MONTH}/GB-month, PITR ${PITR_GB_MONTH}/GB-month",
        f"entitlement events: {ANNOUNCED_EVENTS_PER_SUBSCRIBER_MONTH} per subscriber a month, EventBridge "
        f"${EVENTBRIDGE_PER_MILLION}/M; the outbox item's write is in the webhook figures (measured); DynamoDB "
        "Streams reads by Lambda cost nothing",
        f"Lambda arm64 ${LAMBDA_GB_SECOND}/GB-s + ${LAMBDA_PER_MILLION}/M requests; HTTP API "
        f"${HTTP_API_PER_MILLION}/M; DynamoDB ${WRITE_UNIT_PER_MILLION}/M write and ${READ_UNIT_PER_MILLION}/M "
        "read request units",
    ]
    return out


def _webhooks(provider: str, figures: ProviderFigures, events: int, memory_mb: int) -> Line:
    deliveries = SUBSCRIBERS * events / (1 - DUPLICATE_SHARE)
    applied = deliveries * (1 - DUPLICATE_SHARE)
    duplicates = deliveries - applied
    ms = billed_ms(figures.cpu_ms_applied, memory_mb, figures.requests_applied)
    dup_ms = billed_ms(figures.cpu_ms_duplicate, memory_mb, figures.requests_duplicate)
    writes = applied * figures.wcu_applied + duplicates * max(figures.wcu_duplicate, figures.wcu_applied)
    return Line(
        f"webhooks, {provider}",
        lam=_lambda(applied, ms, memory_mb) + _lambda(duplicates, dup_ms, memory_mb),
        api=deliveries / 1e6 * HTTP_API_PER_MILLION,
        ddb=writes / 1e6 * WRITE_UNIT_PER_MILLION + applied * figures.rcu_applied / 1e6 * READ_UNIT_PER_MILLION,
        logs=_logs(deliveries, figures.log_chars),
        note=f"{deliveries / 1e6:.2f} M deliveries, {ms} ms billed, {figures.requests_applied:.2f} requests, "
        f"{figures.wcu_applied:.1f} WRU + {figures.rcu_applied:.1f} RRU each (means)",
    )


def markdown(cost: CostModel) -> str:
    rows = [
        "| month | Lambda | API Gateway | DynamoDB | CloudWatch Logs | other | total | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in cost.lines:
        rows.append(
            f"| {x.name} | ${x.lam:,.2f} | ${x.api:,.2f} | ${x.ddb:,.2f} | ${x.logs:,.2f} | ${x.other:,.2f} "
            f"| **${x.total:,.2f}** | {x.note} |"
        )
    totals = ["| deployment | a month |", "|---|---|"]
    totals += [f"| {name} | **${value:,.2f}** |" for name, value in cost.totals.items()]
    return "\n".join(
        [
            "\n".join(rows),
            "",
            "Totals: the larger provider's webhooks, the account API, observability, storage, and one of the "
            "gated-request lines:",
            "",
            "\n".join(totals),
            "",
            "Assumptions:",
            "",
            *(f"- {a}" for a in cost.assumptions),
        ]
    )


def as_json(cost: CostModel) -> dict:
    return {
        "lines": [
            {
                "name": x.name,
                "lambda": round(x.lam, 2),
                "api_gateway": round(x.api, 2),
                "dynamodb": round(x.ddb, 2),
                "logs": round(x.logs, 2),
                "other": round(x.other, 2),
                "total": round(x.total, 2),
                "note": x.note,
            }
            for x in cost.lines
        ],
        "totals": {k: round(v, 2) for k, v in cost.totals.items()},
        "assumptions": cost.assumptions,
    }
