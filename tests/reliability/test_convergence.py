"""At-least-once, any-order delivery converges: events delivered 1 to 3 times each, shuffled.

Every message of every payer's story is delivered 1 to 3 times, in one global random order, with
several workers delivering at once (so the same payer's events also race). It runs twice:

* **10,000 events on the in-memory store**, through the webhook pipeline of each function's family:
  the property at full size, in seconds (the in-memory store passes the DynamoDB adapter's contract
  tests, tests/contract);
* **1,000 events on DynamoDB Local, through the real handlers**: a run of realistic size against the
  real store, with real transaction conflicts between the workers.

The expected state is what in-order delivery leaves: in a story every event is newer than the one
before, so in order each event overwrites what it touches, and each record ends as the *last*
event that wrote it made it - but for a provider link, which the *first* event to name it creates
(and which names that event: the one part of the state that depends on arrival, not compared). That
model is checked against the real thing: a tenth of the payers are also delivered in order, once
each, into a separate store.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.synthetic import Message, available_providers, chunks, redeliveries, stories
from paygate.domain.links import is_link
from paygate.domain.state import StateRecord, body_fields
from paygate.infra.catalog_file import load_catalog
from paygate.providers.base import Delivery
from paygate.service.apply import ApplyService
from paygate.service.layout import record_key
from paygate.service.webhooks import WebhookService
from paygate_dev.apigw import http_event
from paygate_dev.memory_store import InMemoryStateStore
from paygate_dev.signing import new_secret
from tests.conftest import decode
from tests.reliability.conftest import Answer, Harness
from tests.service.conftest import family_of

MEMORY_EVENTS = int(os.environ.get("PAYGATE_CONVERGENCE_EVENTS", "10000"))
DYNAMODB_EVENTS = int(os.environ.get("PAYGATE_DYNAMODB_CONVERGENCE_EVENTS", "1000"))
EVENTS_PER_PAYER = 20
WORKERS = 4
SEED = 20261123
#: What the store adds to a record's fields; compared separately or not at all.
_BOOKKEEPING = {"pk", "sk", "kind", "record_id", "payer", "version", "event_id", "provider"}

Deliver = Callable[[Message], Answer]
Records = Callable[[], list[dict[str, Any]]]


class MemoryBackend:
    """Deliveries to each function's webhook pipeline over one in-memory store."""

    def __init__(self) -> None:
        self.secret = new_secret()
        self.store = InMemoryStateStore()
        applier = ApplyService(self.store)
        self.services: dict[str, WebhookService] = {}
        self._applier = applier

    def deliver(self, message: Message) -> Answer:
        service = self.services.get(message.function)
        if service is None:
            service = WebhookService(family_of(message.function), self._applier, load_catalog(), lambda: [self.secret])
            self.services[message.function] = service
        response = service.handle(
            http_event("POST", "/webhook", body=message.body, headers=message.headers(self.secret))
        )
        return Answer(response.response["statusCode"], json.loads(response.response["body"]), {})

    def records(self) -> list[dict[str, Any]]:
        return self.store.items()


def deliver_all(deliver: Deliver, lists: list[list[Message]]) -> list[tuple[Message, Answer]]:
    """Each list delivered in its own order, the lists concurrently."""

    def run(messages: list[Message]) -> list[tuple[Message, Answer]]:
        return [(m, deliver(m)) for m in messages]

    with ThreadPoolExecutor(WORKERS) as pool:
        return [pair for done in pool.map(run, lists) for pair in done]


def in_order_model(messages: list[Message]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each record as the last event (in send order) that writes it leaves it."""
    state: dict[tuple[str, str], StateRecord] = {}
    writer: dict[tuple[str, str], str] = {}
    for message in messages:
        _, effect = decode(family_of(message.function), message.body, Delivery(message.msg_id, 0))
        for record in effect.records if effect else ():
            assert isinstance(record, StateRecord), "the stories hold no merged records (credits)"
            key = (record_key(record).pk, record_key(record).sk)
            if is_link(record):
                if key not in state:  # the first event that names a link creates it; it is never re-pointed
                    state[key], writer[key] = record, message.msg_id
                continue
            state[key], writer[key] = record, message.msg_id
    return {key: _comparable(key, record, writer[key]) for key, record in state.items()}


def _comparable(key: tuple[str, str], record: StateRecord, writer: str) -> dict[str, Any]:
    if is_link(record):
        return {**body_fields(record.body), "moved": True}
    return {**body_fields(record.body), "version": record.version, "event_id": writer}


def state_of(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    def compared(item: dict[str, Any]) -> dict[str, Any]:
        # Which event created a link depends on arrival (the first to name it); everything else does not.
        link = item["kind"] == "customer_link" and item["pk"].startswith("PAYER#customer:")
        kept = set() if link else {"version", "event_id"}
        return {k: v for k, v in item.items() if k not in _BOOKKEEPING or k in kept}

    # Outbox items are announcements, not records: tests/service/test_outbox.py checks they converge.
    return {
        (item["pk"], item["sk"]): compared(item)
        for item in items
        if item["pk"].startswith(("PAYER#", "HISTORY#")) and item["kind"] != "entitlements"
    }


def converge(events: int, fresh: Callable[[], tuple[Deliver, Records]]) -> None:
    kinds = available_providers()
    payers = events // EVENTS_PER_PAYER // len(kinds)
    all_stories = stories(kinds, payers, EVENTS_PER_PAYER, SEED)
    messages = [m for story in all_stories for m in story]
    assert len(messages) == events
    started = time.perf_counter()

    deliver, shuffled_records = fresh()
    deliveries = redeliveries(messages, random.Random(SEED))
    shuffled = deliver_all(deliver, list(chunks(deliveries, WORKERS)))

    sampled = all_stories[::10]
    deliver_in_order, in_order_records = fresh()
    in_order = deliver_all(
        deliver_in_order, [[m for story in dealt for m in story] for dealt in chunks(sampled, WORKERS)]
    )
    elapsed = time.perf_counter() - started

    # Every delivery was received; exactly one delivery of each message had an effect.
    assert {a.status for _, a in shuffled + in_order} == {200}
    outcomes: dict[str, list[str]] = defaultdict(list)
    for message, answer in shuffled:
        outcomes[f"{message.function}/{message.msg_id}"].append(answer.body["outcome"])
    assert len(outcomes) == events
    assert Counter(sum(o != "duplicate" for o in seen) for seen in outcomes.values()) == {1: events}
    stored = shuffled_records()
    assert sum(item["pk"].startswith("EVENT#") for item in stored) == events

    expected = in_order_model(messages)
    assert len(expected) >= payers * len(kinds)
    assert state_of(stored) == expected

    # The model is what in-order delivery really leaves.
    in_order_state = state_of(in_order_records())
    assert in_order_state == {key: expected[key] for key in in_order_state}
    assert len(in_order_state) == len(in_order_model([m for story in sampled for m in story]))

    print(
        f"\nconvergence: {events} events, {len(deliveries)} shuffled deliveries "
        f"+ {len(in_order)} in order, {len(expected)} records, {elapsed:.1f} s"
    )


def test_10000_shuffled_redelivered_events_end_in_the_in_order_state_on_the_in_memory_store() -> None:
    def fresh() -> tuple[Deliver, Records]:
        backend = MemoryBackend()
        return backend.deliver, backend.records

    converge(MEMORY_EVENTS, fresh)


@pytest.mark.integration
def test_shuffled_redelivered_events_end_in_the_in_order_state_on_dynamodb_local(harness: Harness) -> None:
    def fresh() -> tuple[Deliver, Records]:
        table = harness.fresh_table()
        return harness.deliver, lambda: harness.items(table)

    converge(DYNAMODB_EVENTS, fresh)
