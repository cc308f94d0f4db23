"""The outbox on the in-memory store: what each change announces, written with the change, once.

The in-memory store keeps the new image of every write in order (``memory.stream``), as a DynamoDB
stream does; the events published are those of the outbox items in it. The same rules on DynamoDB
Local, with the real publisher reading the table's stream: tests/integration/test_events.py.
"""

from __future__ import annotations

import uuid

import pytest

from paygate.domain.announcements import (
    CREDITS_LOW,
    ENTITLEMENTS_CHANGED,
    EVENT_ID_NAMESPACE,
    GRACE_PERIOD_STARTED,
    PAYMENT_FAILED,
)
from paygate.domain.links import customer_payer, link_record
from paygate.domain.state import Effect, Outcome, Payer, PayerKind, RecordKind, StateRecord, version_key
from paygate.service.apply import ApplyService
from paygate.service.layout import InboxEntry
from paygate.service.outbox import DUE_INDEX, HEAD_SK, due_shard, events_of
from paygate.service.sweeper import Sweeper
from paygate_dev.memory_store import InMemoryStateStore

PAYER = Payer(PayerKind.USER, "user_1")
NOW = 1_795_000_000_000
DAY = 86_400_000
PRO_FEATURES = ["analytics", "export", "priority_support"]


class Clock:
    """An instant that moves only when told (or when the sweeper waits)."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def service(memory, clock) -> ApplyService:
    return ApplyService(memory, sleep=lambda _: None, clock=clock)


def entry(event_id: str, event_type: str = "subscriptionItem.updated") -> InboxEntry:
    return InboxEntry("test.family", "test", event_id, "{}", NOW, event_type=event_type)


def item(at: int, status: str = "active", plan: str = "pro", payer: Payer = PAYER, **extra) -> StateRecord:
    return StateRecord(
        payer,
        RecordKind.ITEM,
        "test:item_1",
        version_key(at, at, f"msg_{at}"),
        {"status": status, "plan_slug": plan, **extra},
    )


def published(memory: InMemoryStateStore) -> list[dict]:
    """Every event the outbox items in the stream announce, in stream order."""
    return [event for image in memory.stream for event in events_of(image)]


def head(memory: InMemoryStateStore, payer: Payer = PAYER) -> dict:
    (found,) = [i for i in memory.items() if i["pk"] == f"PAYER#{payer.key}" and i["sk"] == HEAD_SK]
    return found


def test_an_upgrade_announces_its_grants_in_the_same_write(service, memory):
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(1),))) is Outcome.APPLIED
    assert memory.requests == ["read_partitions", "write"]  # the outbox item is in the event's own write
    (event,) = published(memory)
    detail = event["detail"]
    assert (event["source"], event["detail_type"], event["time"]) == ("paygate", ENTITLEMENTS_CHANGED, NOW)
    assert detail["payer"] == {"type": "user", "id": "user_1"}
    assert detail["plans"] == {"added": ["pro"], "removed": [], "current": ["pro"]}
    assert detail["features"] == {"added": PRO_FEATURES, "removed": [], "current": PRO_FEATURES}
    assert detail["access_windows"] == [
        {
            "plan": "pro",
            "provider": "test",
            "subscription_id": None,
            "item_id": "test:item_1",
            "status": "active",
            "ends_at": None,
        }
    ]
    assert detail["cause"] == {
        "kind": "event",
        "provider": "test",
        "event_id": "msg_1",
        "event_type": "subscriptionItem.updated",
        "version": item(1).version,
        "at": None,
    }
    assert detail["sequence"] == 1
    assert detail["id"] == str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{PAYER.key}/1/{ENTITLEMENTS_CHANGED}/grants"))


def test_a_duplicate_or_a_stale_event_announces_nothing_and_leaves_the_outbox_alone(service, memory):
    service.apply(entry("msg_2"), Effect(PAYER, (item(2, "canceled"),)))
    before = head(memory)
    assert service.apply(entry("msg_2"), Effect(PAYER, (item(2, "canceled"),))) is Outcome.DUPLICATE
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(1, "active"),))) is Outcome.STALE
    assert head(memory) == before
    assert [i for i in memory.stream if i["sk"] == HEAD_SK] == [before]


def test_a_change_that_grants_the_same_announces_nothing(service, memory):
    service.apply(entry("msg_1"), Effect(PAYER, (item(1),)))
    assert service.apply(entry("msg_2"), Effect(PAYER, (item(2, amount=2000),))) is Outcome.APPLIED
    assert len(published(memory)) == 1
    # The outbox item still moved on (it serializes the payer's writers), announcing nothing.
    assert (head(memory)["revision"], head(memory)["announce"], head(memory)["sequence"]) == (2, False, 1)
    assert "events" not in head(memory)


def test_a_cancellation_announces_when_access_ends_and_the_clock_announces_the_end(service, memory, clock):
    period_end = NOW + DAY
    service.apply(entry("msg_1"), Effect(PAYER, (item(1),)))
    service.apply(
        entry("msg_2"), Effect(PAYER, (item(2, "canceled", cancel_at_period_end=True, period_end=period_end),))
    )
    cancelled = published(memory)[-1]["detail"]
    assert cancelled["plans"] == {"added": [], "removed": [], "current": ["pro"]}
    assert [w["ends_at"] for w in cancelled["access_windows"]] == [period_end]
    assert [w["ends_at"] for w in cancelled["previous_access_windows"]] == [None]
    # The payer is listed for the sweeper at the end of the window.
    assert memory.query_index(DUE_INDEX, due_shard(PAYER.key), period_end) == [
        {"pk": "PAYER#user:user_1", "sk": HEAD_SK, "due_shard": due_shard(PAYER.key), "due_at": period_end}
    ]

    sweeper = Sweeper(service, clock, clock.sleep)
    clock.now = period_end - 10 * 60_000
    assert sweeper.sweep() == []  # ten minutes early: nothing is due within the minute
    assert clock.now == period_end - 10 * 60_000
    clock.now = period_end - 30_000
    (ended,) = sweeper.sweep()  # due within the minute: handled at the moment it ends
    assert clock.now == period_end
    assert ended["detail_type"] == ENTITLEMENTS_CHANGED
    assert ended["detail"]["plans"] == {"added": [], "removed": ["pro"], "current": []}
    assert ended["detail"]["features"]["removed"] == PRO_FEATURES
    assert ended["detail"]["cause"] == {
        "kind": "clock",
        "provider": None,
        "event_id": None,
        "event_type": None,
        "version": None,
        "at": period_end,
    }
    assert ended["detail"]["occurred_at"] == period_end
    assert ended["detail"]["sequence"] == 3
    # Announced once: the payer leaves the index, and sweeping again finds nothing.
    assert "due_at" not in head(memory)
    assert sweeper.sweep() == []
    assert len(published(memory)) == 3


def test_a_failed_payment_announces_the_failure_and_the_grace_period(service, memory):
    service.apply(entry("msg_1"), Effect(PAYER, (item(1),)))
    attempt = StateRecord(
        PAYER,
        RecordKind.PAYMENT_ATTEMPT,
        "test:pa_1",
        version_key(2, 2, "msg_2"),
        {
            "payment_attempt_id": "pa_1",
            "status": "failed",
            "amount": 2000,
            "currency": "USD",
            "failed_at": NOW,
            "failed_reason": "card_declined",
            "item_ids": ["test:item_1"],
        },
    )
    past_due = item(2, "past_due", past_due_at=NOW)
    service.apply(entry("msg_2", "paymentAttempt.updated"), Effect(PAYER, (attempt, past_due)))
    types = [e["detail_type"] for e in published(memory)]
    assert types == [ENTITLEMENTS_CHANGED, PAYMENT_FAILED, ENTITLEMENTS_CHANGED, GRACE_PERIOD_STARTED]
    failed, changed, grace = (e["detail"] for e in published(memory)[1:])
    assert (failed["payment_attempt_id"], failed["amount"], failed["reason"]) == ("pa_1", 2000, "card_declined")
    assert changed["plans"]["current"] == ["pro"] and changed["access_windows"][0]["ends_at"] == NOW + 7 * DAY
    assert (grace["item_id"], grace["grace_ends_at"]) == ("test:item_1", NOW + 7 * DAY)
    assert failed["sequence"] == changed["sequence"] == grace["sequence"] == 2

    # The provider says again that the same attempt failed: announced with the same id, so consumers drop it.
    again = StateRecord(PAYER, RecordKind.PAYMENT_ATTEMPT, "test:pa_1", version_key(3, 3, "msg_3"), attempt.body)
    service.apply(entry("msg_3", "paymentAttempt.updated"), Effect(PAYER, (again,)))
    (repeated,) = [e for e in published(memory)[4:]]
    assert repeated["detail"]["id"] == failed["id"]


def test_a_balance_flagged_low_announces_credits_low_once(service, memory):
    def balance(at: int, value: str, low: bool) -> StateRecord:
        body = {
            "credit_entitlement_id": "cde_1",
            "credit_entitlement_name": "API calls",
            "balance": value,
            "low_balance": low,
        }
        return StateRecord(PAYER, RecordKind.CREDIT_BALANCE, "test:cde_1", version_key(at, at, f"msg_{at}"), body)

    service.apply(entry("msg_1"), Effect(PAYER, (balance(1, "500", False),)))
    service.apply(entry("msg_2"), Effect(PAYER, (balance(2, "40", True),)))
    service.apply(entry("msg_3"), Effect(PAYER, (balance(3, "30", True),)))
    (low,) = published(memory)
    assert low["detail_type"] == CREDITS_LOW
    assert {k: low["detail"][k] for k in ("credit_entitlement_id", "name", "balance")} == {
        "credit_entitlement_id": "cde_1",
        "name": "API calls",
        "balance": "40",
    }
    # Topped up, then low again: a new announcement.
    service.apply(entry("msg_4"), Effect(PAYER, (balance(4, "900", False),)))
    service.apply(entry("msg_5"), Effect(PAYER, (balance(5, "10", True),)))
    assert [e["detail_type"] for e in published(memory)] == [CREDITS_LOW, CREDITS_LOW]


def test_state_that_moves_with_a_new_link_is_announced(service, memory):
    customer = customer_payer("cus_1")
    service.apply(entry("msg_1"), Effect(customer, (item(1, payer=customer),)))
    assert published(memory) == []  # a customer not linked to a payer yet is nobody to announce to
    service.apply(entry("msg_2"), Effect(PAYER, (link_record("test", "cus_1", PAYER, version_key(2, 2, "msg_2")),)))
    (event,) = published(memory)
    assert event["detail"]["plans"]["added"] == ["pro"]
    assert event["detail"]["cause"]["kind"] == "link"


def test_one_payers_events_carry_increasing_sequences_in_stream_order(service, memory):
    for at, status in enumerate(["active", "past_due", "active", "canceled", "active"], start=1):
        extra = {"past_due_at": NOW} if status == "past_due" else {}
        service.apply(entry(f"msg_{at}"), Effect(PAYER, (item(at, status, **extra),)))
    sequences = [e["detail"]["sequence"] for e in published(memory)]
    assert sequences == sorted(sequences) and sequences[0] == 1 and sequences[-1] == head(memory)["sequence"]
    ids = [e["detail"]["id"] for e in published(memory)]
    assert len(set(ids)) == len(ids)
