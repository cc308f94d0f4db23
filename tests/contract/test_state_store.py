"""The store port's contract, run against both stores: the DynamoDB adapter on DynamoDB Local, and the
in-memory store the service tests use. Whatever passes here behaves the same on both, which is what
lets tests/service state the business rules on the in-memory store.
"""

from __future__ import annotations

import pytest

from paygate.infra.dynamodb_store import DynamoStateStore
from paygate.service.ports import (
    AnyOf,
    AtVersion,
    Delete,
    ExpiredBefore,
    FieldEquals,
    IsAbsent,
    Key,
    OlderThan,
    Put,
    Require,
    StoreUnavailable,
    Update,
    WriteRejected,
)
from paygate_dev.memory_store import InMemoryStateStore

A = Key("PAYER#user:a", "item#x:1")
B = Key("PAYER#user:a", "item#x:2")


def item(key: Key, **fields) -> dict:
    return {"pk": key.pk, "sk": key.sk, **fields}


@pytest.fixture(params=["memory", "dynamodb"])
def state_store(request: pytest.FixtureRequest):
    if request.param == "memory":
        return InMemoryStateStore()
    return DynamoStateStore(request.getfixturevalue("table"))


# -- reads and writes --------------------------------------------------------------------------


def test_what_is_put_is_read_back_exactly(state_store):
    stored = item(A, text="é", number=12, big=2**62, flag=False, nothing=None, nested={"l": [1, "2", {"k": True}]})
    state_store.write([Put(stored)])
    assert state_store.get(A) == stored
    assert state_store.get(B) is None


def test_floats_are_refused(state_store):
    with pytest.raises(TypeError):
        state_store.write([Put(item(A, amount=1.5))])
    assert state_store.get(A) is None


def test_an_update_sets_its_fields_and_keeps_the_others(state_store):
    state_store.write([Update(A, {"status": "active", "plan": "pro"})])
    state_store.write([Update(A, {"status": "canceled"})])
    assert state_store.get(A) == item(A, status="canceled", plan="pro")


def test_delete(state_store):
    state_store.write([Put(item(A, version="1"))])
    state_store.write([Delete(A)])
    assert state_store.get(A) is None
    state_store.write([Delete(B)])  # deleting what is not there is no error


# -- conditions ----------------------------------------------------------------------------------


def rejected(state_store, writes) -> WriteRejected:
    with pytest.raises(WriteRejected) as caught:
        state_store.write(writes)
    return caught.value


def test_is_absent(state_store):
    first = Put(item(A, n=1), IsAbsent())
    state_store.write([first])
    again = Put(item(A, n=2), IsAbsent())
    assert rejected(state_store, [again]).failed(again)
    assert state_store.get(A)["n"] == 1


@pytest.mark.parametrize(
    ("stored", "new", "lands"),
    [
        (None, "2", True),  # no item
        ({}, "2", True),  # an item without a version
        ({"version": "1"}, "2", True),
        ({"version": "2"}, "2", False),  # equal is not newer
        ({"version": "3"}, "2", False),
        ({"version": "000000000000010.1.b"}, "000000000000010.1.c", True),  # string order, as versions sort
    ],
)
def test_the_version_guard(state_store, stored, new, lands):
    if stored is not None:
        state_store.write([Put(item(A, **stored, mark="old"))])
    guarded = Update(A, {"version": new, "mark": "new"}, OlderThan(new))
    if lands:
        state_store.write([guarded])
        assert state_store.get(A)["mark"] == "new"
    else:
        assert rejected(state_store, [guarded]).failed(guarded)
        assert state_store.get(A)["mark"] == "old"


def test_at_version(state_store):
    absent = Put(item(A, version="1"), AtVersion("1"))
    assert rejected(state_store, [absent]).failed(absent)
    state_store.write([Put(item(A, version="1"))])
    state_store.write([Put(item(A, version="2"), AtVersion("1"))])
    stale = Put(item(A, version="3"), AtVersion("1"))
    assert rejected(state_store, [stale]).failed(stale)
    assert state_store.get(A)["version"] == "2"


def test_field_equals_expired_before_and_any_of(state_store):
    inbox = AnyOf((IsAbsent(), FieldEquals("outcome", "quarantined"), ExpiredBefore(1_000)))
    state_store.write([Put(item(A, outcome="applied", expires_at=2_000), inbox)])  # absent: lands
    blocked = Put(item(A, outcome="applied", expires_at=3_000), inbox)
    assert rejected(state_store, [blocked]).failed(blocked)  # present, not quarantined, not expired
    state_store.write([Put(item(A, outcome="quarantined"))])
    state_store.write([Put(item(A, outcome="applied", expires_at=999), inbox)])  # quarantined: lands
    later = AnyOf((IsAbsent(), FieldEquals("outcome", "quarantined"), ExpiredBefore(1_000)))
    state_store.write([Put(item(A, outcome="ignored", expires_at=5_000), later)])  # expired (999 < 1000): lands
    assert state_store.get(A)["outcome"] == "ignored"


# -- atomicity -------------------------------------------------------------------------------------


def test_a_write_is_all_or_nothing_and_names_the_failed_conditions(state_store):
    state_store.write([Put(item(A, version="5"))])
    fine = Put(item(B, version="1"), IsAbsent())
    stale = Update(A, {"version": "4"}, OlderThan("4"))
    caught = rejected(state_store, [fine, stale])
    assert caught.failed(stale) and not caught.failed(fine) and not caught.contended
    assert state_store.get(B) is None


def test_a_failed_require_writes_nothing(state_store):
    write = Put(item(B, n=1))
    check = Require(A, FieldEquals("linked", "yes"))
    caught = rejected(state_store, [write, check])
    assert caught.failed(check) and not caught.failed(write)
    assert state_store.get(B) is None
    state_store.write([Put(item(A, linked="yes"))])
    state_store.write([write, check])
    assert state_store.get(B) == item(B, n=1)


def test_an_item_over_the_size_limit_fails_the_whole_write(state_store):
    fine = Put(item(B, status="active"))
    too_big = Put(item(A, blob="x" * 450_000))
    with pytest.raises(StoreUnavailable):
        state_store.write([fine, too_big])
    assert state_store.get(A) is None and state_store.get(B) is None


def test_one_write_may_not_touch_an_item_twice(state_store):
    with pytest.raises(StoreUnavailable):
        state_store.write([Put(item(A, n=1)), Update(A, {"n": 2})])
    assert state_store.get(A) is None


# -- queries ------------------------------------------------------------------------------------------


def test_query_by_partition_and_sort_key_prefix_in_sort_key_order(state_store):
    keys = [Key("PAYER#user:a", sk) for sk in ("item#b", "payment#1", "item#a", "credit_balance#1")]
    state_store.write([Put(item(k)) for k in keys] + [Put(item(Key("PAYER#user:b", "item#z")))])
    assert [i["sk"] for i in state_store.query("PAYER#user:a")] == [
        "credit_balance#1",
        "item#a",
        "item#b",
        "payment#1",
    ]
    assert [i["sk"] for i in state_store.query("PAYER#user:a", "item#", consistent=True)] == ["item#a", "item#b"]
    assert state_store.query("PAYER#user:nobody") == []


def test_read_partitions_returns_every_asked_partition(state_store):
    state_store.write(
        [
            Put(item(Key("PAYER#user:a", "item#1"))),
            Put(item(Key("PAYER#user:a", "payment#1"))),
            Put(item(Key("PAYER#org:o", "item#2"))),
        ]
    )
    got = state_store.read_partitions(["PAYER#user:a", "PAYER#org:o", "PAYER#user:none"], "item#")
    assert {pk: [i["sk"] for i in items] for pk, items in got.items()} == {
        "PAYER#user:a": ["item#1"],
        "PAYER#org:o": ["item#2"],
        "PAYER#user:none": [],
    }


def test_reads_past_one_page_see_everything(state_store):
    # DynamoDB pages a Query and a PartiQL SELECT at 1 MB: 30 items of ~40 KB take two pages or more.
    keys = [Key("PAYER#user:big", f"credit_ledger#{i:03d}") for i in range(30)]
    for key in keys:
        state_store.write([Put(item(key, blob="x" * 40_000))])
    assert len(state_store.query("PAYER#user:big")) == 30
    assert len(state_store.read_partitions(["PAYER#user:big"])["PAYER#user:big"]) == 30
    assert len(list(state_store.scan("PAYER#user:big", "credit_ledger#"))) == 30


def test_scan_finds_items_by_both_key_prefixes_across_partitions(state_store):
    state_store.write(
        [
            Put(item(Key("PAYER#user:a", "item#clerk:1"))),
            Put(item(Key("PAYER#user:a", "payment#1"))),
            Put(item(Key("PAYER#org:o", "item#dodo:2"))),
            Put(item(Key("EVENT#x#1", "EVENT"))),
        ]
    )
    assert sorted(i["sk"] for i in state_store.scan("PAYER#", "item#")) == ["item#clerk:1", "item#dodo:2"]
    assert sorted(i["pk"] for i in state_store.scan("PAYER#")) == ["PAYER#org:o", "PAYER#user:a", "PAYER#user:a"]
    assert list(state_store.scan("HISTORY#")) == []


def test_scan_reads_every_partition_with_the_prefix_past_one_page(state_store):
    events = [Key(f"EVENT#clerk.subscriptions#msg_{i:02d}", "EVENT") for i in range(30)]
    for key in events:
        state_store.write([Put(item(key, outcome="applied", body="x" * 40_000))])
    state_store.write([Put(item(A, status="active"))])
    found = list(state_store.scan("EVENT#"))
    assert sorted(i["pk"] for i in found) == sorted(k.pk for k in events)
    narrow = list(state_store.scan("EVENT#", attributes=["outcome"]))
    assert all(set(i) == {"pk", "sk", "outcome"} for i in narrow) and len(narrow) == 30
    assert len(list(state_store.scan())) == 31


def test_all_of_and_non_string_values(state_store):
    from paygate.service.ports import AllOf

    state_store.write([Put(item(A, linked_payer="user:a", moved=True))])
    same = Require(A, AllOf((FieldEquals("linked_payer", "user:a"), FieldEquals("moved", True))))
    state_store.write([same])
    for wrong in (
        Require(A, AllOf((FieldEquals("linked_payer", "user:b"), FieldEquals("moved", True)))),
        Require(A, AllOf((FieldEquals("linked_payer", "user:a"), FieldEquals("moved", False)))),
        Require(B, AllOf((FieldEquals("linked_payer", "user:a"), FieldEquals("moved", True)))),
    ):
        assert rejected(state_store, [wrong]).failed(wrong)


def test_a_failed_put_can_hand_back_the_item_it_failed_on(state_store):
    state_store.write([Put(item(A, outcome="applied", moving=["customer:cus_1"]))])
    for writes in (
        [Put(item(A), IsAbsent(), return_existing=True)],
        [Put(item(A), IsAbsent(), return_existing=True), Put(item(B))],
    ):
        caught = rejected(state_store, writes)
        assert caught.existing(writes[0]) == item(A, outcome="applied", moving=["customer:cus_1"])
    plain = Put(item(A), IsAbsent())
    assert rejected(state_store, [plain]).existing(plain) is None
