"""The apply rules where only DynamoDB can show them: real transactions racing on one record.

The rules themselves are stated in tests/service/test_apply.py on the in-memory store, which passes
the same contract tests as the DynamoDB adapter (tests/contract); transaction conflicts between
concurrent writers are DynamoDB's own behaviour and are tested here.
"""

import threading

from paygate.domain.state import Effect, Outcome, Payer, PayerKind, RecordKind, StateRecord, version_key
from paygate.service.layout import InboxEntry

PAYER = Payer(PayerKind.USER, "user_1")
NOW = 1_795_000_000_000


def entry(event_id: str) -> InboxEntry:
    return InboxEntry("test.family", "test", event_id, '{"type":"x"}', NOW, event_type="x")


def item(version: int, status: str) -> StateRecord:
    return StateRecord(
        PAYER,
        RecordKind.ITEM,
        "test:item_1",
        version_key(version, version, f"msg_{version}"),
        {"status": status, "plan_slug": "pro"},
    )


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
    (record,) = [r for r in store.payer_items(PAYER.key) if r["sk"] == "item#test:item_1"]
    assert record["status"] == "s24"
    assert outcomes.count(Outcome.APPLIED) >= 1
    assert set(outcomes) <= {Outcome.APPLIED, Outcome.STALE}
    assert all(store.event("test.family", f"msg_{v}") for v in versions)
