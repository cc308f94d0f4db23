"""Reads on a request path as one payer's history grows: ``GET /me/subscription`` and the authorizer's
store path at 10, 1,000 and 10,000 accumulated records, on DynamoDB Local.

Two users pay with Dodo Payments: a subscription, then payments and credit deductions (each adds a
record that stays: a payment or a credit ledger entry). The small one stops at 10 records; the big
one grows to 1,000 through the real webhook handlers, then to 10,000 by copying its own stored
history records under new ids (the same items the handlers wrote, so the table holds what 10,000
deliveries would leave, without spending minutes delivering them). At each size the big user's
calls are paired with the small user's, so the figure and its baseline see the same load.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import cycle, islice
from typing import Any

from bench.authorizer import ISSUER, PARTY, _mint, authorizer_event
from bench.instrument import DynamoDBMeter, Request, instrumented_store_clients
from bench.report import Figure, Section, Series
from bench.timing import paired, progress, sink
from paygate.service.layout import history_pk
from paygate_dev import EVENTS_DIR
from paygate_dev.apigw import LambdaContext, http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import load_handler
from paygate_dev.local_env import new_key_pair
from paygate_dev.signing import new_secret, signed_headers
from paygate_dev.template import functions

#: Ids that stay the same for one user (customer, subscription, the user) and ids new in every event.
_USER_IDS = re.compile(r"\b(sub|cus|user)_([A-Za-z0-9]{10,})\b")
_EVENT_IDS = re.compile(r"\b(pay|cdl|inv|pm|cks)_([A-Za-z0-9]{10,})\b")
SIZES = (10, 1_000, 10_000)


@dataclass
class AccountFigures:
    """What the cost model needs from the account API (medians)."""

    cpu_ms: float
    requests: float
    read_bytes: float
    log_chars: float


def _dodo(name: str, user_tag: str, event_no: int) -> tuple[str, str]:
    """(function, body) of a Dodo sample as one user's ``event_no``-th event."""
    function = {"subscription": "DodoSubscriptionsFunction", "payment": "DodoPaymentsFunction"}.get(
        name.split(".", 1)[0], "DodoCreditsFunction"
    )
    text = (EVENTS_DIR / "dodo" / f"{name}.json").read_text()
    text = _USER_IDS.sub(lambda m: f"{m.group(1)}_{m.group(2)}{user_tag}", text)
    text = _EVENT_IDS.sub(lambda m: f"{m.group(1)}_{m.group(2)}{user_tag}n{event_no}", text)
    envelope = json.loads(text)
    at = datetime.fromtimestamp(1_797_500_000 + event_no, UTC)
    envelope["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return function, json.dumps(envelope)


class Payer:
    """One user paying with Dodo, whose history the run grows."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.user_id = f"user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d{tag}"
        self.key = f"user:{self.user_id}"
        self.events = 0

    def next_events(self, count: int) -> list[tuple[str, str]]:
        """``count`` events that each add one history record (a payment or a ledger entry)."""
        made = []
        for _ in range(count):
            self.events += 1
            name = "payment.succeeded" if self.events % 2 else "credit.deducted"
            made.append(_dodo(name, self.tag, self.events))
        return made


def run(ddb: DynamoDBLocal, quick: bool) -> tuple[Section, AccountFigures]:
    table = f"paygate-bench-{uuid.uuid4().hex[:8]}"
    ddb.create_table(table)
    secret = new_secret()
    private, public = new_key_pair()
    env = {
        "TABLE_NAME": table,
        "AWS_ENDPOINT_URL_DYNAMODB": ddb.endpoint,
        "WEBHOOK_SECRET": secret,
        "CLERK_JWT_KEY": public,
        "CLERK_ISSUER": ISSUER,
        "CLERK_AUTHORIZED_PARTIES": PARTY,
        "PAYGATE_STORE_CACHE_SECONDS": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    client = ddb.client()
    meter = DynamoDBMeter()
    small, big = Payer("Hs"), Payer("Hb")
    samples = 10 if quick else 40
    delivered_up_to = 100 if quick else 1_000
    results: dict[int, dict[str, Any]] = {}
    try:
        with instrumented_store_clients(meter.attach):

            def deliver(messages: list[tuple[str, str]]) -> None:
                for function, body in messages:
                    handler = load_handler(functions()[function])
                    event = http_event(
                        "POST", "/webhook", body=body, headers=signed_headers(secret, body, style="standard")
                    )
                    answer = handler(event, LambdaContext(function_name=function))
                    assert answer["statusCode"] == 200, answer

            progress("history: two payers with 10 records each")
            for payer in (small, big):
                deliver([_dodo("subscription.active", payer.tag, 0), *payer.next_events(SIZES[0])])
            callers = {p.key: _caller(p, private, public) for p in (small, big)}
            sink().take()
            callers[small.key]["account"]()
            account_log_chars = sink().take()[0]
            for size in SIZES:
                have = _history_count(client, table, big.key)
                if have < size:
                    real = max(0, min(size, delivered_up_to) - have)
                    if real:
                        progress(f"history: delivering {real} events to grow one payer to {have + real} records")
                        deliver(big.next_events(real))
                    while (copies := size - _history_count(client, table, big.key)) > 0:
                        progress(f"history: copying {copies:,} stored history records to reach {size:,}")
                        _copy_history(client, table, big.key, copies)
                have = _history_count(client, table, big.key)
                assert have == size, (have, size)
                progress(f"history: measuring at {size:,} records")
                results[size] = _measure(callers[big.key], callers[small.key], meter, samples)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        client.delete_table(TableName=table)
    return _section(results, delivered_up_to), _account_figures(results, account_log_chars)


def _caller(payer: Payer, private: str, public: str) -> dict[str, Callable[[], dict]]:
    """The account call and a store-path authorizer decision of ``payer``, as the real handlers see them."""
    (token,) = _mint(private, public, [], 1, user=payer.user_id)
    authorizer = load_handler(functions()["AuthorizerFunction"])
    account = load_handler(functions()["AccountFunction"])
    context = LambdaContext(function_name="AuthorizerFunction")
    decision = authorizer(authorizer_event("GET /me/subscription", token), context)
    assert decision["isAuthorized"], decision
    request = http_event("GET", "/me/subscription", route_key="GET /me/subscription", headers={})
    request["requestContext"]["authorizer"] = {"lambda": decision["context"]}
    store_event = authorizer_event("GET /pro/dashboard", token)  # no plan on the token: the store decides
    account_context = LambdaContext(function_name="AccountFunction")
    return {
        "account": lambda: account(request, account_context),
        "authorizer": lambda: authorizer(store_event, context),
    }


def _measure(big: dict, small: dict, meter: DynamoDBMeter, samples: int) -> dict[str, Any]:
    answer = big["account"]()
    assert answer["statusCode"] == 200, answer
    out: dict[str, Any] = {"view_bytes": len(answer["body"])}
    for name in ("account", "authorizer"):
        requests: dict[str, list[list[Request]]] = {"big": [], "small": []}

        def call(which: str, fn: Callable[[], dict], into: dict = requests) -> None:
            meter.take()
            fn()
            into[which].append(meter.take())

        ours, theirs = big[name], small[name]
        wall, cpu, base = paired(
            lambda _, fn=ours: call("big", fn), lambda _, fn=theirs: call("small", fn), samples, warmup=5
        )
        out[name] = {"wall": wall, "cpu": cpu, "base": base, **{k: v[-samples:] for k, v in requests.items()}}
    return out


def _history_count(client: Any, table: str, payer_key: str) -> int:
    count, start = 0, None
    while True:
        page = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": history_pk(payer_key)}},
            Select="COUNT",
            **({"ExclusiveStartKey": start} if start else {}),
        )
        count += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return count


def _copy_history(client: Any, table: str, payer_key: str, copies: int) -> None:
    """``copies`` more history records of ``payer_key``: its stored ones again, under new sort keys."""
    stored, start = [], None
    while True:
        page = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": history_pk(payer_key)}},
            **({"ExclusiveStartKey": start} if start else {}),
        )
        stored += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    # A fresh random suffix per copy: a copy never overwrites a record or an earlier copy.
    made = [{**item, "sk": {"S": f"{item['sk']['S']}.{uuid.uuid4().hex}"}} for item in islice(cycle(stored), copies)]
    for i in range(0, len(made), 25):
        pending = [{"PutRequest": {"Item": item}} for item in made[i : i + 25]]
        while pending:
            answer = client.batch_write_item(RequestItems={table: pending})
            pending = answer.get("UnprocessedItems", {}).get(table, [])


def _section(results: dict[int, dict[str, Any]], delivered_up_to: int) -> Section:
    section = Section(
        "Reads on request paths as history grows",
        "One user's accumulated records (payments and credit ledger entries) grown to "
        f"{', '.join(f'{s:,}' for s in SIZES)}; up to {delivered_up_to:,} through the real Dodo webhook "
        "handlers, beyond that by copying the stored records. Each call is paired with the same call for "
        f"a user with {SIZES[0]} records. `GET /me/subscription` through the account function's handler, "
        "the store path through the authorizer's (a token without plans on `GET /pro/dashboard`).",
    )
    ms = "ms"
    for size in SIZES:
        result = results[size]
        for name, label in (("account", "GET /me/subscription"), ("authorizer", "authorizer store path")):
            part = result[name]
            big_requests = [float(len(r)) for r in part["big"]]
            small_requests = [float(len(r)) for r in part["small"]]
            big_items = [float(sum(q.items for q in r)) for r in part["big"]]
            small_items = [float(sum(q.items for q in r)) for r in part["small"]]
            big_bytes = [float(sum(q.response_bytes for q in r)) for r in part["big"]]
            small_bytes = [float(sum(q.response_bytes for q in r)) for r in part["small"]]
            last = size == SIZES[-1]
            wall = Series.of(f"{size:,} records", part["wall"], ms)
            base = Series.of(f"{SIZES[0]} records", part["base"], ms)
            if name == "account" or last:
                section.add(
                    Figure(
                        f"{label}, latency at {size:,} records",
                        wall,
                        base,
                        "within 1.5x of 10 records" if last else "",
                        met=(wall.median <= 1.5 * base.median) if last else None,
                        note=f"response {result['view_bytes']} bytes" if name == "account" else "",
                    )
                )
            if size == SIZES[0] or last:
                section.add(
                    Figure(
                        f"{label}, DynamoDB requests per call at {size:,} records",
                        Series.of("requests", big_requests, "requests"),
                        Series.of("requests", small_requests, "requests"),
                        "same as at 10 records" if last else "",
                        met=(max(big_requests) == max(small_requests)) if last else None,
                    )
                )
                section.add(
                    Figure(
                        f"{label}, items read per call at {size:,} records",
                        Series.of("items", big_items, "items"),
                        Series.of("items", small_items, "items"),
                        "same as at 10 records" if last else "",
                        met=(max(big_items) == max(small_items)) if last else None,
                        note=f"{Series.of('b', big_bytes, 'B').median:,.0f} bytes read (median) against "
                        f"{Series.of('b', small_bytes, 'B').median:,.0f}",
                    )
                )
    return section


def _account_figures(results: dict[int, dict[str, Any]], log_chars: int) -> AccountFigures:
    part = results[SIZES[0]]["account"]
    calls = part["small"]
    return AccountFigures(
        cpu_ms=Series.of("cpu", part["cpu"], "ms").median,
        requests=Series.of("r", [float(len(r)) for r in calls], "").median,
        read_bytes=Series.of("b", [float(sum(q.response_bytes for q in r)) for r in calls], "").median,
        log_chars=float(log_chars),
    )
