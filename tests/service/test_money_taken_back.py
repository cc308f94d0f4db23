"""Money taken back ends what it bought: a full refund, a dispute lost or accepted end the access the
payment bought, in any delivery order; a later successful payment restores it; a partial refund does
not. What revokes is the catalog's ``[revoke_on]`` policy (these are its defaults)."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from paygate.domain.access import AccessPolicy
from paygate.domain.catalog import parse_catalog
from paygate.domain.entitlements import entitlements_of
from paygate.domain.state import Payer, PayerKind
from paygate.infra.catalog_file import load_catalog
from paygate.providers.dodo import ms
from paygate.service.layout import payer_state
from tests.conftest import body_of, sample_json
from tests.service.test_dodo_webhooks import PAYMENTS, SUBS

USER = Payer(PayerKind.USER, "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d")
SUBSCRIPTION = "sub_0NjR5tW8xKq2Lm9Vb4Hd7"
REFUNDED_AT = "2026-11-09T17:42:05.604219Z"
LATER = ms(datetime.fromisoformat("2026-11-20T00:00:00Z"))


def at(iso: str) -> int:
    return ms(datetime.fromisoformat(iso))


def event(name: str, **data) -> dict:
    envelope = sample_json(f"dodo/{name}.json")
    envelope["data"].update(data)
    return envelope


SUBSCRIBED = event("subscription.active")
PAID = event("payment.succeeded")
FULL_REFUND = event("refund.succeeded", is_partial=False, amount=2207)
PARTIAL_REFUND = event("refund.succeeded", is_partial=True, amount=1000)
LATER_PAYMENT = event(
    "payment.succeeded",
    payment_id="pay_0NkF1rT6Wz3Lm8Qx2Vb5J",
    created_at="2026-12-01T09:14:29.000000Z",
    updated_at="2026-12-01T09:14:40.000000Z",
)
LATER_PAYMENT["timestamp"] = "2026-12-01T09:14:41.000000Z"


def deliver(sender, *envelopes: dict) -> None:
    for envelope in envelopes:
        function = SUBS if envelope["type"].startswith("subscription.") else PAYMENTS
        answer = sender.post(function, body_of(envelope), style="standard")
        assert answer.status == 200, answer.body


def held(store, now: int = LATER, catalog=None):
    state = payer_state(store.payer_items(USER.key), now)
    return entitlements_of(USER, state, catalog or load_catalog(), AccessPolicy(), now)


def test_without_money_taken_back_the_plan_is_held(sender, store):
    deliver(sender, SUBSCRIBED, PAID)
    assert held(store).plans == {"pro"}


def test_a_full_refund_ends_access_from_the_refund_in_any_order(sender, store):
    for order in itertools.permutations((SUBSCRIBED, PAID, FULL_REFUND)):
        sender.use(type(store)(type(store.store)()))
        deliver(sender, *order)
        assert held(sender.store).plans == set(), [e["type"] for e in order]
        (view,) = held(sender.store).subscriptions
        assert (view.access_until, view.revoked_by) == (at(REFUNDED_AT), "full_refund")
        # Before the money was taken back, the plan was held.
        assert held(sender.store, now=at(REFUNDED_AT) - 1).plans == {"pro"}


def test_a_partial_refund_does_not_end_access(sender, store):
    deliver(sender, SUBSCRIBED, PAID, PARTIAL_REFUND)
    assert held(store).plans == {"pro"}


def partial_refund(refund_id: str, amount: int, created_at: str) -> dict:
    envelope = event("refund.succeeded", refund_id=refund_id, is_partial=True, amount=amount, created_at=created_at)
    envelope["timestamp"] = created_at
    return envelope


def test_partial_refunds_that_add_up_to_the_payment_end_access_from_the_last_one(sender, store):
    first = partial_refund("ref_0Part1", 1100, "2026-11-09T17:42:05Z")
    last = partial_refund("ref_0Part2", 1107, "2026-11-12T08:00:00Z")
    for order in itertools.permutations((SUBSCRIBED, PAID, first, last)):
        sender.use(type(store)(type(store.store)()))
        deliver(sender, *order)
        (view,) = held(sender.store).subscriptions
        assert (view.access_until, view.revoked_by) == (at("2026-11-12T08:00:00Z"), "full_refund"), order
        assert held(sender.store, now=at("2026-11-12T08:00:00Z") - 1).plans == {"pro"}


def test_partial_refunds_in_another_currency_are_not_added_up(sender, store):
    other = partial_refund("ref_0Part2", 1107, "2026-11-12T08:00:00Z")
    other["data"]["currency"] = "INR"
    deliver(sender, SUBSCRIBED, PAID, partial_refund("ref_0Part1", 1100, "2026-11-09T17:42:05Z"), other)
    assert held(store).plans == {"pro"}


def test_a_broken_refund_record_is_skipped_not_fatal():
    from paygate.service.layout import payer_state

    # A partial refund with amounts but no payment id (written by hand, or by an older version).
    broken = {"kind": "refund", "refund_id": "ref_1", "status": "succeeded", "is_partial": True, "created_at": 1}
    broken |= {"amount": 5, "payment_amount": 5, "currency": "USD", "payment_currency": "USD"}
    assert payer_state([{"pk": "PAYER#user:u", "sk": "refund#dodo:ref_1", **broken}], LATER).items == ()


def test_partial_refunds_short_of_the_payment_leave_access(sender, store):
    deliver(
        sender,
        SUBSCRIBED,
        PAID,
        partial_refund("ref_0Part1", 1100, "2026-11-09T17:42:05Z"),
        partial_refund("ref_0Part2", 1106, "2026-11-12T08:00:00Z"),
    )
    assert held(store).plans == {"pro"}


@pytest.mark.parametrize(
    ("status", "revokes"),
    [
        ("dispute_lost", True),
        ("dispute_accepted", True),
        ("dispute_opened", False),
        ("dispute_challenged", False),
        ("dispute_expired", False),
        ("dispute_won", False),
        ("dispute_cancelled", False),
    ],
)
def test_a_dispute_lost_or_accepted_ends_access(sender, store, status, revokes):
    dispute = event("dispute.lost", dispute_status=status)
    dispute["timestamp"] = "2026-11-15T00:00:00Z"
    deliver(sender, SUBSCRIBED, PAID, dispute)
    assert held(store).plans == (set() if revokes else {"pro"})


def test_a_later_successful_payment_restores_access(sender, store):
    deliver(sender, SUBSCRIBED, PAID, FULL_REFUND)
    assert held(store).plans == set()
    deliver(sender, LATER_PAYMENT)
    assert held(store, now=at("2026-12-02T00:00:00Z")).plans == {"pro"}


def test_a_later_charge_that_only_changes_the_card_restores_nothing(sender, store):
    card_change = event(
        "payment.succeeded",
        payment_id="pay_0NkF1rT6Wz3Lm8Qx2Vb5K",
        created_at="2026-12-01T09:14:29.000000Z",
        updated_at="2026-12-01T09:14:40.000000Z",
        total_amount=0,
        tax=0,
        is_update_payment_method=True,
    )
    card_change["timestamp"] = "2026-12-01T09:14:41.000000Z"
    deliver(sender, SUBSCRIBED, PAID, FULL_REFUND, card_change)
    assert held(store, now=at("2026-12-02T00:00:00Z")).plans == set()


def test_a_refund_delivered_after_the_later_payment_still_leaves_access(sender, store):
    deliver(sender, SUBSCRIBED, PAID, LATER_PAYMENT, FULL_REFUND)
    assert held(store, now=at("2026-12-02T00:00:00Z")).plans == {"pro"}


def catalog_with(revoke_on: dict) -> object:
    return parse_catalog(
        {"plans": {"pro": {}}, "products": {"pdt_pro_monthly_7Hq2Lx9Vb4": "pro"}, "revoke_on": revoke_on}
    )


def test_what_revokes_is_the_catalogs_policy(sender, store):
    deliver(sender, SUBSCRIBED, PAID, PARTIAL_REFUND)
    assert held(store, catalog=catalog_with({})).plans == {"pro"}
    assert held(store, catalog=catalog_with({"partial_refund": True})).plans == set()
    deliver(sender, {**FULL_REFUND, "data": {**FULL_REFUND["data"], "refund_id": "ref_full"}})
    assert held(store, catalog=catalog_with({})).plans == set()
    assert held(store, catalog=catalog_with({"full_refund": False})).plans == {"pro"}
