"""The store's guarantees, on DynamoDB Local: atomic, exactly-once, never rolled back."""

import threading

import pytest

from paygate.domain.state import Effect, Outcome, Payer, PayerKind, RecordKind, StateRecord, version_key
from paygate.infra.store import InboxEntry, Store, StoreUnavailable

PAYER = Payer(PayerKind.USER, "user_1")
NOW = 1_795_000_000_000


def entry(event_id: str, received_at: int = NOW) -> InboxEntry:
    return InboxEntry("test.family", "test", event_id, '{"type":"x"}', received_at, event_type="x")


def item(version: int, status: str = "active", **extra) -> StateRecord:
    return StateRecord(
        PAYER,
        RecordKind.ITEM,
        "test:item_1",
        version_key(version, version, f"msg_{version}"),
        {"status": status, "plan_slug": "pro", **extra},
    )


def test_a_failed_transaction_writes_nothing_at_all(store, dynamodb_local, table):
    fine = StateRecord(PAYER, RecordKind.SUBSCRIPTION, "test:sub_1", version_key(1, 1, "m"), {"status": "active"})
    too_big = item(1, blob="x" * 450_000)  # over DynamoDB's 400 KB item limit: the whole transaction fails
    with pytest.raises(StoreUnavailable):
        store.apply(entry("msg_1"), Effect(PAYER, (fine, too_big)))
    assert dynamodb_local.client().scan(TableName=table)["Count"] == 0


def test_only_a_newer_version_replaces_a_record(store):
    assert store.apply(entry("msg_2"), Effect(PAYER, (item(2, "canceled"),))) is Outcome.APPLIED
    assert store.apply(entry("msg_1"), Effect(PAYER, (item(1, "active"),))) is Outcome.STALE
    assert store.apply(entry("msg_3"), Effect(PAYER, (item(3, "ended"),))) is Outcome.APPLIED
    (record,) = store.payer_records(PAYER.key)
    assert record["status"] == "ended" and record["event_id"] == "msg_3"
    assert store.event("test.family", "msg_1")["outcome"] == "stale"


def test_an_event_is_applied_once_whatever_its_outcome_was(store):
    assert store.apply(entry("msg_1"), Effect(PAYER, (item(5),))) is Outcome.APPLIED
    assert store.apply(entry("msg_1"), Effect(PAYER, (item(6, "ended"),))) is Outcome.DUPLICATE
    assert store.keep(entry("msg_1"), Outcome.IGNORED) is Outcome.DUPLICATE
    assert store.payer_records(PAYER.key)[0]["status"] == "active"


def test_an_event_past_its_retention_is_no_longer_a_duplicate(table):
    store = Store(table, retention_days=1)
    long_ago = NOW - 2 * 86_400_000
    assert store.keep(entry("msg_old", received_at=long_ago), Outcome.IGNORED) is Outcome.IGNORED
    # DynamoDB Local never deletes expired items; the store must still treat it as gone.
    assert store.keep(entry("msg_old", received_at=NOW), Outcome.IGNORED) is Outcome.IGNORED
    assert store.event("test.family", "msg_old")["received_at"] == NOW


def test_a_quarantined_event_can_be_recorded_again(store):
    assert store.keep(entry("msg_q"), Outcome.QUARANTINED) is Outcome.QUARANTINED
    assert store.apply(entry("msg_q"), Effect(PAYER, (item(1),))) is Outcome.APPLIED


def test_concurrent_writers_of_one_record_end_with_the_newest(store):
    versions = list(range(1, 25))
    outcomes: list[Outcome] = []
    barrier = threading.Barrier(8)

    def write(chunk: list[int]) -> None:
        barrier.wait()
        for v in chunk:
            outcomes.append(store.apply(entry(f"msg_{v}"), Effect(PAYER, (item(v, f"s{v}"),))))

    threads = [threading.Thread(target=write, args=(versions[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == len(versions)
    assert store.payer_records(PAYER.key)[0]["status"] == "s24"
    assert outcomes.count(Outcome.APPLIED) >= 1
    assert set(outcomes) <= {Outcome.APPLIED, Outcome.STALE}
