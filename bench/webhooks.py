"""Webhook throughput and DynamoDB cost: the real handler, in-process, into DynamoDB Local.

Events are synthetic but wire-valid Clerk events, and Dodo subscription and payment events for the
request counts (see ``bench.synthetic``), signed with the real
``svix`` library before the clock starts. Every DynamoDB request the store makes is seen through
botocore hooks on its own client (``bench.instrument``), which also ask DynamoDB for
``ReturnConsumedCapacity=TOTAL``. The baseline is the least any durable webhook receiver does: one
``PutItem`` of the raw body, with the same client configuration.
"""

from __future__ import annotations

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
from bench.timing import progress, sink
from paygate.infra.dynamodb_store import client_config
from paygate_dev.apigw import LambdaContext, http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import load_handler
from paygate_dev.signing import new_secret
from paygate_dev.template import functions


@dataclass
class Run:
    """Per-event wall time, CPU time and DynamoDB requests of one kind of delivery."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    requests: list[list[Request]] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    #: Characters the handlers printed (log and metric lines), all deliveries together.
    log_chars: int = 0
    #: The payer story and the event type of each delivery.
    payers: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    #: Whether each delivery is the first to carry its payment's id (Dodo links the id to the payer).
    new_payment: list[bool] = field(default_factory=list)


@dataclass
class ProviderFigures:
    """One provider's deliveries, for the cost model (means per delivery)."""

    cpu_ms_applied: float
    cpu_ms_duplicate: float
    wcu_applied: float
    wcu_duplicate: float
    rcu_applied: float
    requests_applied: float
    requests_duplicate: float
    log_chars: float
    #: Average stored size (bytes) of one inbox item (the raw body and its outcome).
    inbox_item_bytes: float = 0.0


@dataclass
class WebhookFigures:
    """What the cost model needs."""

    clerk: ProviderFigures
    dodo: ProviderFigures
    #: Average stored bytes of a payer's current partition, and of one history record.
    payer_partition_bytes: float = 0.0
    history_record_bytes: float = 0.0


def _deliver(messages: list[Message], secret: str, meter: DynamoDBMeter) -> Run:
    """Each message through its function's own handler, called directly, one at a time."""
    events = [
        (load_handler(functions()[m.function]), http_event("POST", "/webhook", body=m.body, headers=m.headers(secret)))
        for m in messages
    ]
    context = LambdaContext(function_name="webhook")
    bodies = [json.loads(m.body) for m in messages]
    run = Run(payers=[m.payer for m in messages], types=[b.get("type", "?") for b in bodies])
    seen: set[str] = set()
    for body in bodies:
        payment = (body.get("data") or {}).get("payment_id") if body.get("type", "").startswith("payment.") else None
        run.new_payment.append(bool(payment) and payment not in seen)
        seen.add(payment or "")
    meter.take()
    sink().take()
    started = time.perf_counter()
    for handler, event in events:
        t, c = time.perf_counter_ns(), time.process_time_ns()
        response = handler(event, context)
        run.cpu_ms.append((time.process_time_ns() - c) / 1e6)
        run.wall_ms.append((time.perf_counter_ns() - t) / 1e6)
        run.requests.append(meter.take())
        run.outcomes[json.loads(response["body"]).get("outcome", response["statusCode"])] += 1
    run.seconds = time.perf_counter() - started
    run.log_chars = sink().take()[0]
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
    """A Dodo event that names its payer links the customer the first time; later events of the same
    customer find the link known (the common case): a read and one transaction. A payment's first
    event also links the new payment id (so its refunds find the payer), which costs more: reported
    on its own."""
    seen: set[str] = set()
    first, known, new_payment, over = [], [], [], Counter()
    for payer, kind, requests, new in zip(
        applied.payers, applied.types, applied.requests, applied.new_payment, strict=True
    ):
        (new_payment if payer in seen and new else known if payer in seen else first).append(requests)
        if payer in seen and not new and len(requests) > 2:
            over[f"{kind} ({payer}): {'+'.join(q.operation for q in requests)}"] += 1
        seen.add(payer)
    known_counts = [float(len(r)) for r in known]
    section.add(
        Figure(
            "Dodo: requests per applied event, customer link known",
            Series.of("requests", known_counts, "requests"),
            ones,
            "<= 2 requests",
            met=max(known_counts) <= 2,
            note=f"outcomes: {dict(applied.outcomes)}; by operation: {_by_operation(known)}"
            + (f"; over 2: {dict(over)}" if over else ""),
        )
    )
    section.add(
        Figure(
            "Dodo: requests per applied event, a payment's first event (its id linked)",
            Series.of("requests", [float(len(r)) for r in new_payment], "requests"),
            ones,
            note="the new payment link is written with the event, then what was kept under the id is looked for "
            f"and the move marked done; by operation: {_by_operation(new_payment)}",
        )
    )
    section.add(
        Figure(
            "Dodo: requests per applied event, a customer's first event",
            Series.of("requests", [float(len(r)) for r in first], "requests"),
            ones,
            note=f"the link is written with the event; by operation: {_by_operation(first)}",
        )
    )
    section.add(
        Figure(
            "Dodo: requests per duplicate",
            Series.of("requests", [float(len(r)) for r in duplicate.requests], "requests"),
            ones,
            "1 request (the first read finds the event)",
            met={len(r) for r in duplicate.requests} == {1},
            note=f"outcomes: {dict(duplicate.outcomes)}; by operation: {_by_operation(duplicate.requests)}",
        )
    )
    wcu = [sum(q.capacity or 0.0 for q in r) for r in known]
    section.add(Figure("Dodo: write capacity per applied event, link known", Series.of("WCU", wcu, "WCU"), None))


_READS = frozenset({"GetItem", "Query", "Scan", "ExecuteStatement", "BatchGetItem", "TransactGetItems"})


def _units(requests: list[Request], writes: bool) -> float:
    """Capacity units DynamoDB reported for the write (or the read) requests of one delivery."""
    return sum(q.capacity or 0.0 for q in requests if (q.operation not in _READS) == writes)


def _by_operation(requests: list[list[Request]]) -> dict[str, int]:
    return dict(Counter(q.operation for r in requests for q in r))


def _provider(applied: Run, duplicate: Run, bodies: list[str]) -> ProviderFigures:
    """Means, not medians: a month's bill is the sum over every delivery, the costly ones included."""

    def median(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return ProviderFigures(
        cpu_ms_applied=median(applied.cpu_ms),
        cpu_ms_duplicate=median(duplicate.cpu_ms),
        wcu_applied=median([_units(r, writes=True) for r in applied.requests]),
        wcu_duplicate=median([_units(r, writes=True) for r in duplicate.requests]),
        rcu_applied=median([_units(r, writes=False) for r in applied.requests]),
        requests_applied=median([float(len(r)) for r in applied.requests]),
        requests_duplicate=median([float(len(r)) for r in duplicate.requests]),
        log_chars=(applied.log_chars + duplicate.log_chars) / max(1, len(applied.cpu_ms) + len(duplicate.cpu_ms)),
        inbox_item_bytes=sum(len(b) for b in bodies) / max(1, len(bodies)),
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
        with instrumented_store_clients(meter.attach):
            progress(f"webhooks: {len(messages)} Clerk events, again as duplicates, then stale ones; Dodo events")
            _deliver(warmup, secret, meter)
            applied = _deliver(messages, secret, meter)
            duplicate = _deliver(messages, secret, meter)
            _deliver(newer, secret, meter)
            stale = _deliver(older, secret, meter)
            dodo_applied = _deliver(dodo_messages, secret, meter)
            dodo_duplicate = _deliver(dodo_messages, secret, meter)
        base_wall, base_wcu = _baseline(ddb, table, [m.body for m in messages])
        sizes = stored_sizes(ddb.client(), table)
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
            "a read and one write (the read finds duplicates and gives the outbox its before-state)",
            met=set(per_applied) == {2.0} and all(r[1].error is None for r in applied.requests),
        )
    )
    section.add(
        Figure(
            "DynamoDB requests per duplicate",
            Series.of("requests", per_duplicate, "requests"),
            ones,
            "1 request (the first read finds the event)",
            met=set(per_duplicate) == {1.0} and all(r[0].operation == "ExecuteStatement" for r in duplicate.requests),
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
    clerk = _provider(applied, duplicate, [m.body for m in messages])
    dodo = _provider(dodo_applied, dodo_duplicate, [m.body for m in dodo_messages])
    # The inbox keeps each raw body plus its outcome and keys: the stored size, measured.
    clerk.inbox_item_bytes = sizes.get("inbox:clerk", clerk.inbox_item_bytes)
    dodo.inbox_item_bytes = sizes.get("inbox:dodo", dodo.inbox_item_bytes)
    section.extra.append(
        "Stored sizes (DynamoDB item size: names plus values), averages: "
        + ", ".join(f"{k} {v:,.0f} B" for k, v in sorted(sizes.items()))
        + ". Log output per delivery (Powertools log line and metric line): "
        f"Clerk {clerk.log_chars:,.0f} characters, Dodo {dodo.log_chars:,.0f}."
    )
    figures = WebhookFigures(
        clerk=clerk,
        dodo=dodo,
        payer_partition_bytes=sizes.get("payer partition", 0.0),
        history_record_bytes=sizes.get("history record", 0.0),
    )
    return section, figures


def stored_sizes(client: object, table: str) -> dict[str, float]:
    """Average stored sizes: an inbox item per provider, a payer's current partition, a history record."""
    totals: dict[str, list[int]] = {}
    partitions: Counter = Counter()
    start = None
    while True:
        page = client.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))  # type: ignore[attr-defined]
        for item in page["Items"]:
            pk, size = item["pk"]["S"], item_size(item)
            if pk.startswith("EVENT#"):
                provider = "dodo" if pk.startswith("EVENT#dodo") else "clerk"
                totals.setdefault(f"inbox:{provider}", []).append(size)
            elif pk.startswith("HISTORY#"):
                totals.setdefault("history record", []).append(size)
            elif pk.startswith("PAYER#"):
                partitions[pk] += size
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    sizes = {k: sum(v) / len(v) for k, v in totals.items()}
    if partitions:
        sizes["payer partition"] = sum(partitions.values()) / len(partitions)
    return sizes


def item_size(value: dict) -> int:
    """DynamoDB's size of an item (attribute names plus values), as its docs count it, roughly for numbers."""
    return sum(len(name.encode()) + _value_size(v) for name, v in value.items())


def _value_size(attribute: dict) -> int:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return len(value.lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in value.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in value)
    return len(str(value))
