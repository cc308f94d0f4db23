"""Entitlement events end to end on DynamoDB Local: the outbox written with each change, the table's
stream read as Lambda's event source mapping reads it (the template's filter, partial-batch failures),
the publisher's own handler, and the sweeper on the real sparse index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from paygate.domain.announcements import ENTITLEMENTS_CHANGED
from paygate.domain.state import Effect, Outcome, Payer, PayerKind, RecordKind, StateRecord, version_key
from paygate.infra.dynamodb_store import DynamoStateStore
from paygate.service.apply import ApplyService
from paygate.service.layout import InboxEntry
from paygate.service.publisher import BusUnavailable, publisher_handler
from paygate.service.sweeper import Sweeper
from paygate_dev.bus import StreamReader, stream_filters, streams_client
from paygate_dev.demo import clerk_item_event
from tests.conftest import body_of
from tests.service.test_event_schemas import validator
from tests.service.test_outbox import DAY, NOW, Clock

USER = Payer(PayerKind.USER, "user_1")


class ListBus:
    """Keeps what it is given. ``refuse`` fails the next puts before publishing; ``lose_answer`` publishes
    the next put and then fails (a crash after EventBridge accepted it, before the checkpoint)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refuse = 0
        self.lose_answer = 0

    def put(self, events: Sequence[Mapping[str, Any]]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise BusUnavailable("refused")
        self.events.extend(json.loads(json.dumps(list(events))))
        if self.lose_answer:
            self.lose_answer -= 1
            raise BusUnavailable("published, but the answer was lost")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(table: str, clock: Clock) -> ApplyService:
    return ApplyService(DynamoStateStore(table), sleep=lambda _: None, clock=clock)


@pytest.fixture
def bus() -> ListBus:
    return ListBus()


@pytest.fixture
def reader(dynamodb_local, table: str, bus: ListBus) -> StreamReader:
    arn = dynamodb_local.client().describe_table(TableName=table)["Table"]["LatestStreamArn"]
    return StreamReader(streams_client(dynamodb_local.endpoint), arn, publisher_handler(bus), stream_filters())


def entry(event_id: str) -> InboxEntry:
    return InboxEntry("test.family", "test", event_id, "{}", NOW, event_type="subscriptionItem.updated")


def item(at: int, status: str = "active", payer: Payer = USER, **extra) -> StateRecord:
    body = {"status": status, "plan_slug": "pro", **extra}
    return StateRecord(payer, RecordKind.ITEM, "test:item_1", version_key(at, at, f"msg_{at}"), body)


def test_one_event_per_real_change_and_none_for_duplicates_or_stale_events(service, reader, bus):
    assert service.apply(entry("msg_2"), Effect(USER, (item(2),))) is Outcome.APPLIED
    assert service.apply(entry("msg_2"), Effect(USER, (item(2),))) is Outcome.DUPLICATE
    assert service.apply(entry("msg_1"), Effect(USER, (item(1, "canceled"),))) is Outcome.STALE
    assert service.apply(entry("msg_3"), Effect(USER, (item(3, amount=900),))) is Outcome.APPLIED  # same grants
    ends = NOW + 10 * DAY
    canceled = item(4, "canceled", cancel_at_period_end=True, period_end=ends)
    assert service.apply(entry("msg_4"), Effect(USER, (canceled,))) is Outcome.APPLIED

    # Of everything the stream carries (inbox items, records, outbox items), the filter lets only the two
    # announcing outbox items through.
    assert reader.poll() == 2
    assert [(e["detail_type"], e["detail"]["sequence"], e["detail"]["cause"]["event_id"]) for e in bus.events] == [
        (ENTITLEMENTS_CHANGED, 1, "msg_2"),
        (ENTITLEMENTS_CHANGED, 2, "msg_4"),
    ]
    assert bus.events[0]["detail"]["plans"]["added"] == ["pro"]
    assert bus.events[1]["detail"]["access_windows"][0]["ends_at"] == ends
    assert reader.poll() == 0  # read once: nothing is delivered twice


def test_a_webhook_announces_with_its_delivery_id_and_its_redelivery_announces_nothing(sender, dynamodb_local, table):
    bus = ListBus()
    arn = dynamodb_local.client().describe_table(TableName=table)["Table"]["LatestStreamArn"]
    reader = StreamReader(streams_client(dynamodb_local.endpoint), arn, publisher_handler(bus), stream_filters())
    now = int(time.time() * 1000)
    ids = {"user": "user_w1", "item_id": "csubi_w1", "subscription_id": "csub_w1"}
    body = body_of(clerk_item_event("active", now_ms=now - 1000, period_end_ms=now + 30 * DAY, **ids))
    assert sender.post("ClerkSubscriptionsFunction", body, msg_id="msg_w1").body["outcome"] == "applied"
    assert sender.post("ClerkSubscriptionsFunction", body, msg_id="msg_w1").body["outcome"] == "duplicate"
    reader.poll()
    (event,) = bus.events
    assert event["detail"]["payer"] == {"type": "user", "id": "user_w1"}
    assert event["detail"]["cause"]["event_id"] == "msg_w1"
    assert event["detail"]["cause"]["event_type"] == "subscriptionItem.active"
    assert event["detail"]["plans"]["added"] == ["pro"]


def test_nothing_is_lost_and_order_is_kept_when_the_publisher_fails_midway(service, reader, bus, dynamodb_local, table):
    payers = [Payer(PayerKind.USER, f"user_{n}") for n in range(3)]
    statuses = ["active", "past_due", "active", "canceled", "active"]
    for at, status in enumerate(statuses, start=1):
        for payer in payers:  # interleaved: the payers' changes alternate on the stream
            extra = {"past_due_at": NOW} if status == "past_due" else {}
            service.apply(entry(f"msg_{payer.id}_{at}"), Effect(payer, (item(at, status, payer, **extra),)))

    # The reference: the same stream read by a publisher that never fails.
    healthy = ListBus()
    arn = dynamodb_local.client().describe_table(TableName=table)["Table"]["LatestStreamArn"]
    StreamReader(streams_client(dynamodb_local.endpoint), arn, publisher_handler(healthy), stream_filters()).poll()
    assert len(healthy.events) >= 3 * len(statuses)

    bus.refuse = 1
    reader.poll()  # fails at once: nothing published, nothing skipped
    assert bus.events == []
    bus.lose_answer = 1
    reader.poll()  # publishes one record's events, loses the answer: that record comes again
    bus.refuse = 1
    for _ in range(5):
        reader.poll()
    assert reader.poll() == 0

    delivered_once = list({e["detail"]["id"]: e for e in bus.events}.values())
    assert delivered_once == healthy.events  # every event, in the same order, with the same ids
    assert all(validator(e["detail_type"]).is_valid(e["detail"]) for e in delivered_once)
    # The record whose answer was lost came again, with the same ids and the same content.
    redelivered = [e for e in bus.events if bus.events.count(e) > 1]
    assert redelivered == [healthy.events[0]] * 2
    for payer in payers:
        mine = [e["detail"]["sequence"] for e in delivered_once if e["detail"]["payer"]["id"] == payer.id]
        # In order, none missing (events announced together share their sequence: a grace period and its change).
        assert mine == sorted(mine) and sorted(set(mine)) == list(range(1, max(mine) + 1))


def test_a_window_end_is_published_once_the_clock_passes_it(service, reader, bus, clock):
    ends = NOW + 3 * DAY
    service.apply(entry("msg_1"), Effect(USER, (item(1),)))
    service.apply(entry("msg_2"), Effect(USER, (item(2, "canceled", cancel_at_period_end=True, period_end=ends),)))
    reader.poll()
    assert len(bus.events) == 2

    sweeper = Sweeper(service, clock, clock.sleep)
    clock.now = ends - 5 * 60_000
    assert sweeper.sweep() == []
    reader.poll()
    assert len(bus.events) == 2  # the plan is still paid for
    clock.now = ends - 20_000
    sweeper.sweep()  # ends within the minute: announced at the moment it ends
    reader.poll()
    ended = bus.events[-1]["detail"]
    assert (ended["plans"]["removed"], ended["cause"]["kind"], ended["cause"]["at"]) == (["pro"], "clock", ends)
    assert ended["occurred_at"] == ends and ended["sequence"] == 3
    clock.now = ends + DAY
    assert sweeper.sweep() == []
    reader.poll()
    assert len(bus.events) == 3


def test_the_sweeper_function_announces_a_window_that_ended(table, monkeypatch, reader, bus):
    """The deployed entry point (functions/entitlements_sweeper), on paygate's clock moved past the end."""
    import paygate.clock
    from paygate_dev.invoke import invoke

    monkeypatch.setattr(paygate.clock, "now_ms", lambda: NOW)
    service = ApplyService(DynamoStateStore(table), sleep=lambda _: None)  # the default clock: paygate's
    ends = NOW + DAY
    service.apply(entry("msg_1"), Effect(USER, (item(1, "canceled", cancel_at_period_end=True, period_end=ends),)))
    assert invoke("EntitlementsSweeperFunction", {}) == {"announced": 0}
    monkeypatch.setattr(paygate.clock, "now_ms", lambda: ends + 1000)
    assert invoke("EntitlementsSweeperFunction", {}) == {"announced": 1}
    reader.poll()
    assert [e["detail"]["plans"]["removed"] for e in bus.events] == [[], ["pro"]]
