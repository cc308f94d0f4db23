"""The apply rules, on the in-memory store: exactly once, stale never rolls back, links, merges.

These are the rules :mod:`paygate.service.apply` states once for every event, replay and repair.
"""

from __future__ import annotations

import pytest

from paygate.domain.links import customer_payer, link_record
from paygate.domain.records import CreditBalance
from paygate.domain.state import Effect, MergedRecord, Outcome, Payer, PayerKind, RecordKind, StateRecord, version_key
from paygate.service.apply import MAX_ATTEMPTS, ApplyService, PayerConflict
from paygate.service.layout import InboxEntry, payer_pk, record_sk
from paygate.service.outbox import HEAD_SK
from paygate.service.ports import Key, Put, StoreUnavailable, Update, WriteRejected
from paygate_dev.memory_store import InMemoryStateStore

PAYER = Payer(PayerKind.USER, "user_1")
CUSTOMER = customer_payer("cus_1")
NOW = 1_795_000_000_000


def entry(event_id: str, received_at: int = NOW) -> InboxEntry:
    return InboxEntry("test.family", "test", event_id, '{"type":"x"}', received_at, event_type="x")


def item(version: int, status: str = "active", payer: Payer = PAYER, record_id: str = "test:item_1", **extra):
    return StateRecord(
        payer,
        RecordKind.ITEM,
        record_id,
        version_key(version, version, f"msg_{version}"),
        {"status": status, "plan_slug": "pro", **extra},
    )


@pytest.fixture
def memory() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def service(memory) -> ApplyService:
    return ApplyService(memory, sleep=lambda _: None)


def stored(service: ApplyService, payer: Payer = PAYER) -> dict[str, dict]:
    """The payer's records (without their outbox item, see tests/service/test_outbox.py)."""
    return {r["sk"]: r for r in service.payer_items(payer.key) if r["sk"] != HEAD_SK}


# -- exactly once ----------------------------------------------------------------------------------


def test_an_event_and_its_effect_are_written_together(service, memory):
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(1),))) is Outcome.APPLIED
    # One read (the inbox item and the payer's partition, for the outbox), one atomic write.
    assert memory.requests == ["read_partitions", "write"]
    kept = service.event("test.family", "msg_1")
    assert kept["outcome"] == "applied" and kept["applied"] == ["item#test:item_1"] and kept["payer"] == PAYER.key


def test_an_event_is_applied_once_whatever_its_outcome_was(service):
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(5),))) is Outcome.APPLIED
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(6, "ended"),))) is Outcome.DUPLICATE
    assert service.keep(entry("msg_1"), Outcome.IGNORED) is Outcome.DUPLICATE
    assert stored(service)["item#test:item_1"]["status"] == "active"


def test_a_failed_write_leaves_nothing_half_written(service, memory):
    too_big = item(2, blob="x" * 450_000, record_id="test:item_2")
    with pytest.raises(StoreUnavailable):
        service.apply(entry("msg_1"), Effect(PAYER, (item(1), too_big)))
    assert memory.items() == []
    # The provider retries after the fault: the event was never recorded, so it is not a duplicate.
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(1),))) is Outcome.APPLIED


def test_an_outage_is_raised_for_a_5xx_and_records_nothing(service, memory):
    memory.fail_next("write")
    with pytest.raises(StoreUnavailable):
        service.apply(entry("msg_1"), Effect(PAYER, (item(1),)))
    assert memory.items() == []


def test_an_event_past_its_retention_is_no_longer_a_duplicate(memory):
    service = ApplyService(memory, retention_days=1)
    long_ago = NOW - 2 * 86_400_000
    assert service.keep(entry("msg_old", received_at=long_ago), Outcome.IGNORED) is Outcome.IGNORED
    # DynamoDB deletes expired items lazily (DynamoDB Local never): the inbox must treat it as gone.
    assert service.keep(entry("msg_old", received_at=NOW), Outcome.IGNORED) is Outcome.IGNORED
    assert service.event("test.family", "msg_old")["received_at"] == NOW


def test_a_quarantined_event_can_be_recorded_again_and_never_expires(service):
    assert service.keep(entry("msg_q"), Outcome.QUARANTINED) is Outcome.QUARANTINED
    assert "expires_at" not in service.event("test.family", "msg_q")
    assert service.apply(entry("msg_q"), Effect(PAYER, (item(1),))) is Outcome.APPLIED
    assert "expires_at" in service.event("test.family", "msg_q")


# -- stale never rolls back ---------------------------------------------------------------------------


def test_only_a_newer_version_replaces_a_record(service):
    assert service.apply(entry("msg_2"), Effect(PAYER, (item(2, "canceled"),))) is Outcome.APPLIED
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(1, "active"),))) is Outcome.STALE
    assert service.apply(entry("msg_3"), Effect(PAYER, (item(3, "ended"),))) is Outcome.APPLIED
    (record,) = stored(service).values()
    assert record["status"] == "ended" and record["event_id"] == "msg_3"
    assert service.event("test.family", "msg_1")["outcome"] == "stale"


def test_a_partly_stale_event_applies_only_its_newer_part(service):
    service.apply(entry("msg_5"), Effect(PAYER, (item(5, "canceled"),)))
    other = item(1, "active", record_id="test:item_2")
    assert service.apply(entry("msg_1"), Effect(PAYER, (item(1, "active"), other))) is Outcome.APPLIED
    assert stored(service)["item#test:item_1"]["status"] == "canceled"
    assert stored(service)["item#test:item_2"]["status"] == "active"
    assert service.event("test.family", "msg_1")["applied"] == ["item#test:item_2"]


def test_a_field_the_event_does_not_carry_is_kept(service):
    service.apply(entry("msg_1"), Effect(PAYER, (item(1, subscription_id="sub_1"),)))
    without = StateRecord(PAYER, RecordKind.ITEM, "test:item_1", version_key(2, 2, "msg_2"), {"status": "ended"})
    service.apply(entry("msg_2"), Effect(PAYER, (without,)))
    record = stored(service)["item#test:item_1"]
    assert (record["status"], record["subscription_id"]) == ("ended", "sub_1")


def test_an_event_that_changes_nothing_is_stale_not_applied(service):
    assert service.apply(entry("msg_1"), Effect(PAYER, ())) is Outcome.STALE


# -- links -----------------------------------------------------------------------------------------------


def link(version: int) -> StateRecord:
    return link_record("test", "cus_1", PAYER, version_key(version, version, f"msg_{version}"))


def test_state_of_an_unlinked_customer_is_kept_under_it_then_moves_with_the_link(service):
    kept = item(1, payer=CUSTOMER)
    assert service.apply(entry("msg_1"), Effect(CUSTOMER, (kept,))) is Outcome.APPLIED
    assert "item#test:item_1" in stored(service, CUSTOMER)
    assert service.apply(entry("msg_2"), Effect(PAYER, (link(2),))) is Outcome.APPLIED
    assert "item#test:item_1" in stored(service) and "item#test:item_1" not in stored(service, CUSTOMER)
    # A later event that names only the customer follows the link.
    assert service.apply(entry("msg_3"), Effect(CUSTOMER, (item(3, "ended", payer=CUSTOMER),))) is Outcome.APPLIED
    assert stored(service)["item#test:item_1"]["status"] == "ended"
    assert service.event("test.family", "msg_3")["payer"] == PAYER.key


def test_a_move_never_rolls_the_payers_newer_record_back(service):
    service.apply(entry("msg_1"), Effect(CUSTOMER, (item(1, payer=CUSTOMER),)))
    service.apply(entry("msg_5"), Effect(PAYER, (item(5, "canceled"),)))
    service.apply(entry("msg_6"), Effect(PAYER, (link(6),)))
    assert stored(service)["item#test:item_1"]["status"] == "canceled"
    assert "item#test:item_1" not in stored(service, CUSTOMER)  # the obsolete copy is gone


def test_a_redelivery_completes_a_move_a_crash_interrupted(service, memory):
    service.apply(entry("msg_1"), Effect(CUSTOMER, (item(1, payer=CUSTOMER),)))
    real_read = memory.read_partitions

    def crash_on_the_move(pks, *args, **kwargs):
        if any(pk.startswith("HISTORY#customer:") for pk in pks):  # the move reads both of the source's partitions
            raise StoreUnavailable("crashed before the move")
        return real_read(pks, *args, **kwargs)

    memory.read_partitions = crash_on_the_move  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        service.apply(entry("msg_2"), Effect(PAYER, (link(2),)))
    memory.read_partitions = real_read  # type: ignore[method-assign]
    assert "item#test:item_1" in stored(service, CUSTOMER)  # kept, not lost
    # The inbox item names the move it started: the provider's redelivery (a duplicate) finishes it.
    assert service.apply(entry("msg_2"), Effect(PAYER, (link(2),))) is Outcome.DUPLICATE
    assert "item#test:item_1" in stored(service) and "item#test:item_1" not in stored(service, CUSTOMER)
    assert service.event("test.family", "msg_2")["moving"] == []


def test_a_move_left_unmarked_by_contention_is_unavailable_then_finished_by_the_redelivery(service, memory):
    service.apply(entry("msg_1"), Effect(CUSTOMER, (item(1, payer=CUSTOMER),)))
    real_write = memory.write

    def contended_when_marking_moves(writes):
        if any(isinstance(w, Update) and "moving" in w.fields for w in writes):
            raise WriteRejected(writes, [], contended=True)
        return real_write(writes)

    memory.write = contended_when_marking_moves  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable, match="redelivery finishes them"):
        service.apply(entry("msg_2"), Effect(PAYER, (link(2),)))
    memory.write = real_write  # type: ignore[method-assign]
    assert service.event("test.family", "msg_2")["moving"] == [CUSTOMER.key]
    assert service.apply(entry("msg_2"), Effect(PAYER, (link(2),))) is Outcome.DUPLICATE
    assert "item#test:item_1" in stored(service) and "item#test:item_1" not in stored(service, CUSTOMER)
    assert service.event("test.family", "msg_2")["moving"] == []


def test_a_link_whose_move_is_not_recorded_is_completed_by_the_next_event(service, memory):
    # A link written without the moved flag (before links recorded their move) is checked once.
    service.apply(entry("msg_1"), Effect(CUSTOMER, (item(1, payer=CUSTOMER),)))
    key = Key("PAYER#customer:cus_1", "customer_link#test:cus_1")
    memory.write([Put({"pk": key.pk, "sk": key.sk, "kind": "customer_link", "linked_payer": PAYER.key, "inherit": {}})])
    assert service.apply(entry("msg_3"), Effect(PAYER, (link(3),))) is Outcome.STALE
    assert "item#test:item_1" in stored(service) and "item#test:item_1" not in stored(service, CUSTOMER)
    memory.requests.clear()
    service.apply(entry("msg_4"), Effect(PAYER, (link(4), item(4))))
    assert memory.requests == ["read_partitions", "write"]


def test_a_known_link_costs_a_read_and_a_write_and_a_duplicate_one_read(service, memory):
    service.apply(entry("msg_1"), Effect(PAYER, (link(1), item(1))))
    memory.requests.clear()
    assert service.apply(entry("msg_2"), Effect(PAYER, (link(2), item(2)))) is Outcome.APPLIED
    assert memory.requests == ["read_partitions", "write"]
    memory.requests.clear()
    # The read finds the inbox item: a duplicate writes nothing.
    assert service.apply(entry("msg_2"), Effect(PAYER, (link(2), item(2)))) is Outcome.DUPLICATE
    assert memory.requests == ["read_partitions"]


def test_a_new_provider_id_linked_to_a_known_payer_costs_five_requests(service, memory):
    """Every renewal links a new payment id: the first read shows the link is new, so the write creates
    it at once; then what is kept under the id is looked for (after the link is written, so nothing
    kept meanwhile is missed) and the move is marked done with the inbox item, in one write."""
    service.apply(entry("msg_1"), Effect(PAYER, (link(1), item(1))))
    payment = link_record("test", "pay_2", PAYER, version_key(2, 2, "msg_2"))
    memory.requests.clear()
    assert service.apply(entry("msg_2"), Effect(PAYER, (link(2), payment, item(2)))) is Outcome.APPLIED
    assert memory.requests == ["read_partitions", "write", "get", "read_partitions", "write"]
    stored_link = memory.get(Key("PAYER#customer:pay_2", "customer_link#test:pay_2"))
    assert stored_link["moved"] is True and service.event("test.family", "msg_2")["moving"] == []


def test_the_first_link_stays_and_a_conflicting_event_is_refused(service, memory):
    service.apply(entry("msg_1"), Effect(PAYER, (link(1), item(1))))
    other = Payer(PayerKind.USER, "user_2")
    hijack = link_record("test", "cus_1", other, version_key(5, 5, "msg_5"))
    before = memory.items()
    with pytest.raises(PayerConflict) as caught:
        service.apply(entry("msg_5"), Effect(other, (hijack, item(5, payer=other))))
    assert (caught.value.linked, caught.value.wanted) == (PAYER.key, other.key)
    assert "cus_1" in str(caught.value) and "msg_1" in str(caught.value)
    assert memory.items() == before  # nothing written: the event is the pipeline's to quarantine


def test_a_link_written_between_resolving_and_writing_is_followed(service, memory):
    # The write checks the customer is still unlinked; if a link appeared meanwhile, it resolves again.
    real_write = memory.write
    raced = []

    def write_after_a_link_appears(writes):
        if not raced and any(w.key.pk == "PAYER#customer:cus_1" for w in writes):
            raced.append(True)
            service.apply(entry("msg_link"), Effect(PAYER, (link(2),)))
        return real_write(writes)

    memory.write = write_after_a_link_appears  # type: ignore[method-assign]
    assert service.apply(entry("msg_3"), Effect(CUSTOMER, (item(3, payer=CUSTOMER),))) is Outcome.APPLIED
    assert "item#test:item_1" in stored(service)
    assert stored(service, CUSTOMER).keys() <= {"customer_link#test:cus_1"}


# -- merged records ------------------------------------------------------------------------------------


def balance(at: int, value: str) -> MergedRecord:
    def merge(current: CreditBalance | None):
        version = version_key(at, at, f"msg_{at}")
        if current is not None and current.balance_version and current.balance_version >= version:
            return None
        merged = CreditBalance("cde_1", balance=value, balance_version=version, balance_at=at)
        return version, merged

    return MergedRecord(PAYER, RecordKind.CREDIT_BALANCE, "test:cde_1", merge, CreditBalance.from_fields)


def test_a_merged_record_is_read_merged_and_written(service):
    assert service.apply(entry("msg_2"), Effect(PAYER, (balance(2, "10"),))) is Outcome.APPLIED
    assert service.apply(entry("msg_1"), Effect(PAYER, (balance(1, "99"),))) is Outcome.STALE
    assert stored(service)["credit_balance#test:cde_1"]["balance"] == "10"


def test_a_merged_record_changed_since_it_was_read_is_merged_again(service, memory):
    service.apply(entry("msg_1"), Effect(PAYER, (balance(1, "1"),)))
    real_write = memory.write
    interleaved = []

    def another_writer_first(writes):
        if not interleaved:
            interleaved.append(True)
            service.apply(entry("msg_3"), Effect(PAYER, (balance(3, "3"),)))
        return real_write(writes)

    memory.write = another_writer_first  # type: ignore[method-assign]
    # msg_2 read version 1, but msg_3 wrote in between: the guarded write fails, msg_2 re-reads and is stale.
    assert service.apply(entry("msg_2"), Effect(PAYER, (balance(2, "2"),))) is Outcome.STALE
    assert stored(service)["credit_balance#test:cde_1"]["balance"] == "3"


def test_contention_is_retried_then_answered_as_unavailable(memory):
    slept: list[float] = []
    service = ApplyService(memory, sleep=slept.append)

    def contended(writes):
        raise WriteRejected(writes, [], contended=True)

    memory.write = contended  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable, match="concurrent writers"):
        service.apply(entry("msg_1"), Effect(PAYER, (item(1),)))
    # Exponential waits, spread by jitter (each between half and one and a half of 5 ms * 2^attempt).
    assert len(slept) == MAX_ATTEMPTS
    assert all(0.0025 * 2**n <= wait <= 0.0075 * 2**n for n, wait in enumerate(slept))


def test_keys_follow_the_documented_layout():
    assert payer_pk(PAYER.key) == "PAYER#user:user_1"
    assert record_sk(RecordKind.ITEM, "clerk:csubi_1") == "item#clerk:csubi_1"
    assert Key(payer_pk("org:o"), "x") == Key("PAYER#org:o", "x")
