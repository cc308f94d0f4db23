"""At-least-once, any-order delivery converges: 10,000 events, each delivered 1 to 3 times, shuffled.

Every message of every payer's story goes through the real handlers, 1 to 3 times, in one global
random order, with several workers delivering at once (so the same payer's events also race).

The expected state is what in-order delivery leaves: in a story every event is newer than the one
before, so in order each event overwrites what it touches, and each record ends as the *last*
event that wrote it made it. That model is checked against the real thing: a tenth of the payers
are also delivered in order, once each, through the same handlers into a separate table.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.synthetic import Message, available_providers, chunks, redeliveries, stories
from paygate.domain.state import StateRecord
from paygate.infra.store import payer_pk, record_sk
from paygate.providers.base import Delivery
from paygate_dev.invoke import load_handler
from paygate_dev.template import functions
from tests.reliability.conftest import Answer, Harness

EVENTS = int(os.environ.get("PAYGATE_CONVERGENCE_EVENTS", "10000"))
EVENTS_PER_PAYER = 20
WORKERS = 4
SEED = 20261123
#: What the store adds to a record's fields; compared separately or not at all.
_BOOKKEEPING = {"pk", "sk", "kind", "record_id", "payer", "version", "event_id", "provider"}


def deliver_all(harness: Harness, lists: list[list[Message]]) -> list[tuple[Message, Answer]]:
    """Each list delivered in its own order, the lists concurrently."""

    def run(messages: list[Message]) -> list[tuple[Message, Answer]]:
        return [(m, harness.deliver(m)) for m in messages]

    with ThreadPoolExecutor(WORKERS) as pool:
        return [pair for done in pool.map(run, lists) for pair in done]


def in_order_model(messages: list[Message]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each record as the last event (in send order) that writes it leaves it."""
    families = {name: load_handler(f).family for name, f in functions().items() if hasattr(load_handler(f), "family")}
    state: dict[tuple[str, str], StateRecord] = {}
    writer: dict[tuple[str, str], str] = {}
    for message in messages:
        _, effect = families[message.function].decode(message.body.encode(), Delivery(message.msg_id, 0))
        for record in effect.records if effect else ():
            key = (payer_pk(record.payer.key), record_sk(record))
            state[key], writer[key] = record, message.msg_id
    return {key: {**record.fields, "version": record.version, "event_id": writer[key]} for key, record in state.items()}


def stored_records(harness: Harness, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        key: {k: v for k, v in item.items() if k not in _BOOKKEEPING or k in ("version", "event_id")}
        for key, item in harness.snapshot(table).items()
        if key[0].startswith("PAYER#")
    }


def test_shuffled_redelivered_events_end_in_the_in_order_state(harness: Harness) -> None:
    kinds = available_providers()
    payers = EVENTS // EVENTS_PER_PAYER // len(kinds)
    all_stories = stories(kinds, payers, EVENTS_PER_PAYER, SEED)
    messages = [m for story in all_stories for m in story]
    assert len(messages) == EVENTS
    started = time.perf_counter()

    shuffled_table = harness.fresh_table()
    deliveries = redeliveries(messages, random.Random(SEED))
    shuffled = deliver_all(harness, list(chunks(deliveries, WORKERS)))

    sampled = all_stories[::10]
    reference_table = harness.fresh_table()
    in_order = deliver_all(harness, [[m for story in dealt for m in story] for dealt in chunks(sampled, WORKERS)])
    elapsed = time.perf_counter() - started

    # Every delivery was received; exactly one delivery of each message had an effect.
    assert {a.status for _, a in shuffled + in_order} == {200}
    outcomes: dict[str, list[str]] = defaultdict(list)
    for message, answer in shuffled:
        outcomes[f"{message.function}/{message.msg_id}"].append(answer.body["outcome"])
    assert len(outcomes) == EVENTS
    assert Counter(sum(o != "duplicate" for o in seen) for seen in outcomes.values()) == {1: EVENTS}
    inbox = [key for key in harness.snapshot(shuffled_table) if key[0].startswith("EVENT#")]
    assert len(inbox) == EVENTS

    expected = in_order_model(messages)
    assert len(expected) >= payers * len(kinds)
    assert stored_records(harness, shuffled_table) == expected

    # The model is what in-order delivery really leaves.
    in_order_state = stored_records(harness, reference_table)
    assert in_order_state == {key: expected[key] for key in in_order_state}
    assert len(in_order_state) == len(in_order_model([m for story in sampled for m in story]))

    print(
        f"\nconvergence: {EVENTS} events, {len(deliveries)} shuffled deliveries "
        f"+ {len(in_order)} in order, {len(expected)} records, {elapsed:.1f} s"
    )
