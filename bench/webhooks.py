"""Webhook throughput and DynamoDB cost: the real handler, in-process, into DynamoDB Local.

Events are synthetic but wire-valid Clerk events, and Dodo subscription and payment events for the
request counts (see ``bench.synthetic``), signed with the real
``svix`` library before the clock starts. Every DynamoDB request the store makes is seen through
botocore hooks on its own client (``bench.instrument``), which also ask DynamoDB for
``ReturnConsumedCapacity=TOTAL``. The baseline is the least any durable webhook receiver does: one
``PutItem`` of the raw body, with the same client configuration.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import boto3

from bench.instrument import DynamoDBMeter, Request, instrumented_store_clients
from bench.report import Figure, Section, Series
from bench.synthetic import Message, clerk_story, dodo_story
from paygate.infra.dynamodb_store import client_config
from paygate_dev.apigw import http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import invoke
from paygate_dev.signing import new_secret


@dataclass
class Run:
    """Per-event wall time, CPU time and DynamoDB requests of one kind of delivery."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    requests: list[list[Request]] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass
class WebhookFigures:
    """What the cost model needs."""

    cpu_ms_applied: float
    cpu_ms_duplicate: float
    wcu_applied: float
    requests_applied: float


def _deliver(messages: list[Message], secret: str, meter: DynamoDBMeter) -> Run:
    events = [(m.function, http_event("POST", "/webhook", body=m.body, headers=m.headers(secret))) for m in messages]
    run = Run()
    meter.take()
    started = time.perf_counter()
    for function, event in events:
        t, c = time.perf_counter_ns(), time.process_time_ns()
        response = invoke(function, event)
        run.cpu_ms.append((time.process_time_ns() - c) / 1e6)
        run.wall_ms.append((time.perf_counter_ns() - t) / 1e6)
        run.requests.append(meter.take())
        run.outcomes[json.loads(response["body"]).get("outcome", response["statusCode"])] += 1
    run.seconds = time.perf_counter() - started
    return run


def _baseline(ddb: DynamoDBLocal, table: str, bodies: list[str]) -> tuple[list[float], list[float]]:
    client = boto3.client("dynamodb", endpoint_url=ddb.endpoint, config=client_config())
    wall, wcu = [], []
    for i, body in enumerate(bodies):
        t = time.perf_counter_ns()
        got = client.put_item(
            TableName=table,
            Item={"pk": {"S": f"BASELINE#{i}"}, "sk": {"S": "EVENT"}, "body": {"S": body}},
            ReturnConsumedCapacity="TOTAL",
        )
        wall.append((time.perf_counter_ns() - t) / 1e6)
        wcu.append(got["ConsumedCapacity"]["CapacityUnits"])
    return wall, wcu


def _stale_pairs(count: int, rng: random.Random) -> tuple[list[Message], list[Message]]:
    """(newer, older) item events of the same items: delivering the older second makes it stale."""
    newer, older = [], []
    for n in range(count):
        first, second = clerk_story(1_000_000 + n, 2, rng, only=("subscriptionItem.active",))
        older.append(first)
        newer.append(second)
    return newer, older


def _dodo_figures(section: Section, applied: Run, duplicate: Run, ones: Series) -> None:
    """Dodo events that name their payer also write the customer link and then move anything kept
    under the customer (a read of the link, a Query of the customer's partition): counted apart."""
    writes = [float(sum(q.operation == "TransactWriteItems" for q in r)) for r in applied.requests]
    section.add(
        Figure(
            "Dodo: write requests per applied event",
            Series.of("requests", writes, "requests"),
            ones,
            "exactly 1 write request",
            met=set(writes) == {1.0},
            note=f"outcomes: {dict(applied.outcomes)}",
        )
    )
    section.add(
        Figure(
            "Dodo: all requests per applied event",
            Series.of("requests", [float(len(r)) for r in applied.requests], "requests"),
            ones,
            note="by operation: " + str(dict(Counter(q.operation for r in applied.requests for q in r))),
        )
    )
    section.add(
        Figure(
            "Dodo: requests per duplicate",
            Series.of("requests", [float(len(r)) for r in duplicate.requests], "requests"),
            ones,
            "1 request, a failed conditional check",
            met={len(r) for r in duplicate.requests} == {1},
            note="by operation: " + str(dict(Counter(q.operation for r in duplicate.requests for q in r))),
        )
    )


def run(ddb: DynamoDBLocal, events: int) -> tuple[Section, WebhookFigures]:
    table = f"paygate-bench-{uuid.uuid4().hex[:8]}"
    ddb.create_table(table)
    secret = new_secret()
    saved = {k: os.environ.get(k) for k in ("TABLE_NAME", "WEBHOOK_SECRET", "AWS_ENDPOINT_URL_DYNAMODB")}
    os.environ.update(TABLE_NAME=table, WEBHOOK_SECRET=secret, AWS_ENDPOINT_URL_DYNAMODB=ddb.endpoint)
    rng = random.Random(7)
    meter = DynamoDBMeter()
    messages = [m for n in range(events // 10) for m in clerk_story(n, 10, rng)]
    warmup = [m for n in range(20) for m in clerk_story(500_000 + n, 5, rng)]
    newer, older = _stale_pairs(max(events // 5, 20), rng)
    dodo_messages = [m for n in range(max(events // 50, 4)) for m in dodo_story(n, 10, rng)]
    try:
        # Metrics are printed as EMF lines on stdout; keep them out of the report.
        with instrumented_store_clients(meter.attach), contextlib.redirect_stdout(io.StringIO()):
            _deliver(warmup, secret, meter)
            applied = _deliver(messages, secret, meter)
            duplicate = _deliver(messages, secret, meter)
            _deliver(newer, secret, meter)
            stale = _deliver(older, secret, meter)
            dodo_applied = _deliver(dodo_messages, secret, meter)
            dodo_duplicate = _deliver(dodo_messages, secret, meter)
        base_wall, base_wcu = _baseline(ddb, table, [m.body for m in messages])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        ddb.client().delete_table(TableName=table)

    section = Section(
        "Webhook throughput and DynamoDB cost",
        f"{len(messages)} distinct Clerk events ({events // 10} payers x 10, in order) through the real "
        "handler, one at a time as one Lambda container serves them; then the same events again "
        f"(duplicates), then {len(older)} older item events after newer ones (stale). Outcomes: "
        f"applied {dict(applied.outcomes)}, duplicate {dict(duplicate.outcomes)}, stale {dict(stale.outcomes)}.",
    )
    baseline = Series.of("one PutItem of the raw body", base_wall, "ms")
    for label, result in (("applied", applied), ("duplicate", duplicate), ("stale", stale)):
        section.add(Figure(f"{label} event, handler time", Series.of(label, result.wall_ms, "ms"), baseline))
    section.add(
        Figure(
            "throughput, applied events (1 worker)",
            Series.of("events/s", [len(messages) / applied.seconds], "events/s"),
            Series.of("PutItem/s", [len(base_wall) / (sum(base_wall) / 1000)], "events/s"),
            note="single sample: events / total seconds",
        )
    )
    ones = Series.of("one PutItem", [1.0] * len(base_wall), "requests")
    per_applied = [float(len(r)) for r in applied.requests]
    per_duplicate = [float(len(r)) for r in duplicate.requests]
    duplicate_codes = Counter(req.error for reqs in duplicate.requests for req in reqs)
    section.add(
        Figure(
            "DynamoDB requests per applied event",
            Series.of("requests", per_applied, "requests"),
            ones,
            "exactly 1 write request",
            met=set(per_applied) == {1.0} and all(r[0].error is None for r in applied.requests),
        )
    )
    section.add(
        Figure(
            "DynamoDB requests per duplicate",
            Series.of("requests", per_duplicate, "requests"),
            ones,
            "1 request, a failed conditional check",
            met=set(per_duplicate) == {1.0}
            and set(duplicate_codes) <= {"TransactionCanceledException", "ConditionalCheckFailedException"},
            note=f"answers: {dict(duplicate_codes)}",
        )
    )
    section.add(
        Figure(
            "DynamoDB requests per stale event",
            Series.of("requests", [float(len(r)) for r in stale.requests], "requests"),
            ones,
            note="the cancelled transaction, then the inbox record alone (the event is kept, its state dropped)",
        )
    )
    wcu_applied = [sum(q.capacity or 0.0 for q in r) for r in applied.requests]
    wcu_stale = [sum(q.capacity or 0.0 for q in r) for r in stale.requests]
    base_wcu_series = Series.of("PutItem WCU", base_wcu, "WCU")
    section.add(Figure("write capacity per applied event", Series.of("WCU", wcu_applied, "WCU"), base_wcu_series))
    section.add(
        Figure(
            "write capacity per stale event (reported)",
            Series.of("WCU", wcu_stale, "WCU"),
            base_wcu_series,
            note="DynamoDB Local reports no capacity for a failed request; on AWS a failed conditional "
            "write is still billed for the item size it would have written",
        )
    )
    ops = Counter(q.operation for r in applied.requests for q in r)
    section.extra.append(f"Requests made for applied events, by operation: {dict(ops)}.")
    _dodo_figures(section, dodo_applied, dodo_duplicate, ones)
    figures = WebhookFigures(
        cpu_ms_applied=Series.of("cpu", applied.cpu_ms, "ms").median,
        cpu_ms_duplicate=Series.of("cpu", duplicate.cpu_ms, "ms").median,
        wcu_applied=Series.of("wcu", wcu_applied, "WCU").median,
        requests_applied=Series.of("req", per_applied, "requests").median,
    )
    return section, figures
