"""Dodo Payments webhooks through the pipeline and the apply rules, on the in-memory store."""

from __future__ import annotations

import copy
import json
import random

import pytest

from paygate.domain.access import DAY_MS, AccessPolicy, access_window
from paygate.domain.records import SubscriptionItem
from paygate.providers import dodo
from paygate.providers.dodo import ms
from paygate.service.apply import ApplyService
from paygate_dev.memory_store import InMemoryStateStore
from tests.conftest import body_of, sample, sample_json, sample_names

SUBS = "DodoSubscriptionsFunction"
PAYMENTS = "DodoPaymentsFunction"
CREDITS = "DodoCreditsFunction"
FAMILY = {SUBS: "dodo.subscriptions", PAYMENTS: "dodo.payments", CREDITS: "dodo.credits"}

USER_ID = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"
USER = f"user:{USER_ID}"
ORG = "org:org_2xY7kQ4mN9pR3vT8wZ1aB5cD6e"
CUSTOMER_ID = "cus_8fK2mQ9xLp3RtV7wZ1nB"
CUSTOMER = f"customer:{CUSTOMER_ID}"
PAYMENT_ID = "pay_0NjR5uA3Lp8Qx2Wz6Tn4K"
SUB_ID = "sub_0NjR5tW8xKq2Lm9Vb4Hd7"
ITEM_SK = f"item#dodo:{SUB_ID}"
BALANCE_SK = "credit_balance#dodo:cde_0NhU2kP7Wm4Xr9Tq3Zv6L"
POLICY = AccessPolicy()


FUNCTION_BY_KIND = {
    "subscription": SUBS,
    "dunning": SUBS,
    "payment": PAYMENTS,
    "refund": PAYMENTS,
    "dispute": PAYMENTS,
    "credit": CREDITS,
}


def function_for_type(event_type: str) -> str | None:
    return FUNCTION_BY_KIND.get(event_type.split(".")[0])


def function_for(name: str) -> str | None:
    """The function a sample (``dodo/<type>.json``) is posted to."""
    return function_for_type(name.removeprefix("dodo/").removesuffix(".json"))


def state(store: ApplyService, payer: str = USER) -> dict[str, dict]:
    return {r["sk"]: r for r in store.payer_items(payer)}


def post(sender, name_or_event: str | dict, msg_id: str | None = None, function: str | None = None):
    if isinstance(name_or_event, str):
        body, function = sample(name_or_event), function or function_for(name_or_event)
    else:
        body = body_of(name_or_event)
        function = function or function_for_type(name_or_event["type"])
    return sender.post(function, body, style="standard", msg_id=msg_id)


def event(name: str, **data) -> dict:
    """A sample's envelope with some ``data`` fields replaced."""
    envelope = sample_json(f"dodo/{name}.json")
    envelope["data"].update(data)
    return envelope


def at(envelope: dict, timestamp: str) -> dict:
    envelope = copy.deepcopy(envelope)
    envelope["timestamp"] = timestamp
    return envelope


def window(record: dict):
    return access_window(SubscriptionItem.from_fields(record), POLICY)


# -- every event type ------------------------------------------------------------------------


APPLIED_SAMPLES = [n for n in sample_names("dodo") if function_for(n)]


@pytest.mark.parametrize("name", APPLIED_SAMPLES)
def test_every_sample_is_applied_recorded_and_then_a_duplicate(sender, store, name):
    function = function_for(name)
    first = post(sender, name, msg_id="msg_sample")
    assert first.status == 200
    assert first.body == {"received": True, "event_id": "msg_sample", "outcome": "applied"}
    kept = store.event(FAMILY[function], "msg_sample")
    assert kept["event_type"] == sample_json(name)["type"]
    assert json.loads(kept["body"]) == sample_json(name)
    assert kept["applied"]
    # Every record the inbox names, but links kept under provider ids, is in the partition it names.
    state_sks = {sk for sk in kept["applied"] if not sk.startswith("customer_link#")}
    assert state_sks and state_sks <= set(state(store, kept["payer"]))
    again = post(sender, name, msg_id="msg_sample")
    assert again.status == 200 and again.body["outcome"] == "duplicate"


def test_every_sample_type_belongs_to_exactly_one_function_but_the_ignored_ones():
    names = sample_names("dodo")
    unapplied = {n for n in names if function_for(n) is None}
    assert {sample_json(n)["type"] for n in unapplied} == set(dodo.IGNORED_EVENTS)
    assert len(APPLIED_SAMPLES) == 36


@pytest.mark.parametrize("name", [n for n in sample_names("dodo") if sample_json(n)["type"] in dodo.IGNORED_EVENTS])
def test_every_ignored_type_is_kept_and_answered_ignored(sender, store, name):
    for function in (SUBS, PAYMENTS, CREDITS):
        answer = post(sender, name, msg_id=f"msg_{function}", function=function)
        assert (answer.status, answer.body["outcome"]) == (200, "ignored")
        assert store.event(FAMILY[function], f"msg_{function}")["outcome"] == "ignored"


@pytest.mark.parametrize(
    ("function", "name"),
    [
        (SUBS, "dodo/credit.added.json"),
        (CREDITS, "dodo/payment.succeeded.json"),
        (PAYMENTS, "dodo/subscription.active.json"),
        (PAYMENTS, "dodo/license_key.created.json"),
        (SUBS, "dodo/license_key.created.json"),
    ],
)
def test_a_type_another_function_applies_is_kept_and_ignored(sender, store, function, name):
    answer = sender.post(function, sample(name), style="standard", msg_id="msg_other")
    assert answer.status == 200 and answer.body["outcome"] == "ignored"
    assert store.event(FAMILY[function], "msg_other")["outcome"] == "ignored"
    assert store.payer_items(USER) == []


def test_an_unknown_dodo_type_is_kept_and_ignored(sender, store):
    unknown = event("subscription.active")
    unknown["type"] = "subscription.teleported"
    answer = sender.post(SUBS, body_of(unknown), style="standard", msg_id="msg_unknown")
    assert answer.body["outcome"] == "ignored"
    assert store.event("dodo.subscriptions", "msg_unknown")["event_type"] == "subscription.teleported"


# -- bad requests ----------------------------------------------------------------------------


def test_a_bad_signature_is_401_and_nothing_is_kept(sender, store):
    answer = sender.post(SUBS, sample("dodo/subscription.active.json"), style="standard", secret=_other_secret())
    assert answer.status == 401 and answer.body["error"] == "invalid_signature"
    assert store.payer_items(USER) == []


def test_missing_signature_headers_are_401(sender):
    blank = {"webhook-id": "", "webhook-timestamp": "", "webhook-signature": ""}
    answer = sender.post(PAYMENTS, sample("dodo/payment.failed.json"), style="standard", headers=blank)
    assert answer.status == 401 and answer.body["error"] == "invalid_signature"


@pytest.mark.parametrize(
    ("function", "envelope", "field"),
    [
        (SUBS, event("subscription.active", status="suspended"), "data.status"),
        (SUBS, event("subscription.active", next_billing_date="soon"), "data.next_billing_date"),
        (SUBS, event("subscription.active", metadata={"user_id": True}), "data.metadata.user_id"),
        (PAYMENTS, event("payment.succeeded", total_amount="22.07"), "data.total_amount"),
        (PAYMENTS, event("dispute.opened", amount="22.07"), "data.amount"),
        (CREDITS, event("credit.deducted", balance_after="a lot"), "data.balance_after"),
        (CREDITS, {"business_id": "bus_1", "type": "credit.added", "timestamp": "2026-11-01T09:14:42Z"}, "data"),
    ],
)
def test_a_verified_but_invalid_body_is_quarantined_with_a_400_naming_the_field(
    sender, store, function, envelope, field
):
    answer = sender.post(function, body_of(envelope), style="standard", msg_id="msg_bad")
    assert answer.status == 400
    assert answer.body["error"] == "invalid_event"
    assert answer.body["field"] == field
    assert answer.body["outcome"] == "quarantined"
    assert store.event(FAMILY[function], "msg_bad")["outcome"] == "quarantined"


def test_a_body_that_is_not_json_is_quarantined(sender, store):
    answer = sender.post(CREDITS, b"not json", style="standard", msg_id="msg_garbage")
    assert answer.status == 400 and answer.body["field"] == "body"


# -- who pays --------------------------------------------------------------------------------


def test_metadata_names_the_payer_and_links_the_customer(sender, store):
    post(sender, "dodo/subscription.active.json")
    records = state(store)
    assert records[ITEM_SK]["plan_slug"] == "pro"
    assert records[f"customer_link#dodo:{CUSTOMER_ID}"]["customer_id"] == CUSTOMER_ID
    link = state(store, CUSTOMER)[f"customer_link#dodo:{CUSTOMER_ID}"]
    assert link["linked_payer"] == USER


def test_organization_id_wins_over_user_id(sender, store):
    org_and_user = {"organization_id": "org_2xY7kQ4mN9pR3vT8wZ1aB5cD6e", "user_id": USER_ID}
    post(sender, event("subscription.plan_changed", metadata=org_and_user))
    assert state(store, ORG)[ITEM_SK]["plan_slug"] == "team"
    assert ITEM_SK not in state(store, USER)


def test_credits_before_any_link_are_kept_under_the_customer_then_move_to_the_user(sender, store):
    post(sender, "dodo/credit.added.json")
    post(sender, "dodo/credit.balance_low.json")
    kept = state(store, CUSTOMER)
    assert kept[BALANCE_SK]["balance"] == "180" and kept[BALANCE_SK]["low_balance"] is True
    assert store.payer_items(USER) == []

    post(sender, "dodo/subscription.active.json")  # carries user_id: links the customer
    assert set(state(store, CUSTOMER)) == {f"customer_link#dodo:{CUSTOMER_ID}"}
    mine = state(store)
    assert mine[BALANCE_SK]["balance"] == "180"
    assert mine[BALANCE_SK]["payer"] == USER
    assert "credit_ledger#dodo:cdl_0NjR5zQ8Wt3Lk7Xv2Mb9N" in mine

    post(sender, "dodo/credit.deducted.json")  # after the link: straight to the user
    assert "credit_ledger#dodo:cdl_0NjW8bR2Xq6Lt9Kz4Vm7C" in state(store)
    assert set(state(store, CUSTOMER)) == {f"customer_link#dodo:{CUSTOMER_ID}"}


def test_a_subscription_without_metadata_becomes_the_users_once_a_payment_links_the_customer(sender, store):
    post(sender, event("subscription.active", metadata={}))
    assert state(store, CUSTOMER)[ITEM_SK]["status"] == "active"
    assert ITEM_SK not in state(store)

    post(sender, "dodo/payment.succeeded.json")
    assert state(store)[ITEM_SK]["plan_slug"] == "pro"
    assert ITEM_SK not in state(store, CUSTOMER)


def test_a_dispute_before_its_payment_is_filed_once_the_payment_arrives(sender, store):
    post(sender, "dodo/dispute.opened.json")
    kept = state(store, f"customer:{PAYMENT_ID}")
    assert kept["dispute#dodo:dsp_0NlC7hJ3Vx5Nq1Wk9Tm2R"]["subscription_id"] is None

    post(sender, "dodo/payment.succeeded.json")
    dispute = state(store)["dispute#dodo:dsp_0NlC7hJ3Vx5Nq1Wk9Tm2R"]
    assert dispute["amount"] == 2207 and dispute["currency"] == "USD"
    assert dispute["subscription_id"] == SUB_ID  # known through the payment
    assert set(state(store, f"customer:{PAYMENT_ID}")) == {f"customer_link#dodo:{PAYMENT_ID}"}


# -- access windows at their edges -----------------------------------------------------------


def test_active_grants_without_end_and_renewal_moves_the_period_end(sender, store):
    post(sender, "dodo/subscription.active.json")
    item = state(store)[ITEM_SK]
    assert window(item).end_ms is None and window(item).contains(item["period_end"] + 365 * DAY_MS)
    post(sender, "dodo/subscription.renewed.json")
    renewed = state(store)[ITEM_SK]
    assert renewed["period_start"] == ms_of("2026-12-01T09:14:27.318402Z")
    assert renewed["period_end"] == ms_of("2027-01-01T09:14:27.318402Z")
    assert renewed["next_payment_at"] == renewed["period_end"]


def test_cancel_at_period_end_keeps_access_until_next_billing_date(sender, store):
    post(sender, "dodo/subscription.active.json")
    post(sender, "dodo/subscription.updated.json")  # active, cancel_at_next_billing_date
    end = ms_of("2026-12-01T09:14:27.318402Z")
    assert_edge(state(store)[ITEM_SK], end)
    post(sender, "dodo/subscription.cancelled.json")  # cancelled, still at period end
    item = state(store)[ITEM_SK]
    assert item["status"] == "canceled" and item["ended_at"] == end
    assert_edge(item, end)


def test_a_renewal_after_a_scheduled_cancellation_was_undone_moves_the_end(sender, store):
    post(sender, "dodo/subscription.updated.json")
    post(sender, "dodo/subscription.renewed.json")
    item = state(store)[ITEM_SK]
    assert item["cancel_at_period_end"] is False and window(item).end_ms is None


def test_an_immediate_cancellation_ends_access_at_once(sender, store):
    post(sender, "dodo/subscription.active.json")
    immediate = at(
        event("subscription.cancelled", cancel_at_next_billing_date=False, cancelled_at="2026-11-20T10:00:00.000000Z"),
        "2026-11-20T10:00:00.250000Z",
    )
    post(sender, immediate)
    item = state(store)[ITEM_SK]
    assert item["status"] == "canceled" and item["ended_at"] == ms_of("2026-11-20T10:00:00Z")
    assert window(item) is None


def test_on_hold_keeps_access_for_the_grace_period_from_the_failed_renewal(sender, store):
    post(sender, "dodo/subscription.on_hold.json")
    item = state(store)[ITEM_SK]
    failed_at = ms_of("2026-12-01T09:14:27.318402Z")  # the renewal that was not paid
    assert item["past_due_at"] == failed_at
    assert_edge(item, failed_at + 7 * DAY_MS)
    # A later event of the same hold does not restart the grace period.
    post(
        sender,
        at(event("subscription.updated", status="on_hold", cancel_at_next_billing_date=False), "2026-12-03T12:00:00Z"),
    )
    assert state(store)[ITEM_SK]["past_due_at"] == failed_at


def test_the_grace_period_is_configurable(sender, store):
    post(sender, "dodo/subscription.on_hold.json")
    item = SubscriptionItem.from_fields(state(store)[ITEM_SK])
    assert access_window(item, AccessPolicy(grace_period_ms=2 * DAY_MS)).end_ms == item.past_due_at + 2 * DAY_MS


def test_recovery_from_on_hold_restores_access(sender, store):
    post(sender, "dodo/subscription.on_hold.json")
    post(sender, at(event("subscription.active"), "2026-12-02T08:00:00Z"))
    item = state(store)[ITEM_SK]
    assert item["status"] == "active" and item["past_due_at"] is None and window(item).end_ms is None


@pytest.mark.parametrize("name", ["failed", "expired", "paused"])
def test_failed_expired_and_paused_grant_nothing(sender, store, name):
    post(sender, f"dodo/subscription.{name}.json")
    item = state(store)[ITEM_SK]
    assert window(item) is None


def test_a_product_missing_from_the_catalog_is_kept_but_grants_no_plan(sender, store):
    post(sender, event("subscription.active", product_id="pdt_not_in_catalog"))
    item = state(store)[ITEM_SK]
    assert item["plan_id"] == "pdt_not_in_catalog" and item["plan_slug"] is None and item["status"] == "active"
    assert window(item) is None


# -- plan change -----------------------------------------------------------------------------


def test_a_plan_change_swaps_the_plan_from_the_events_time_and_an_older_event_never_undoes_it(sender, store):
    post(sender, "dodo/subscription.active.json")
    changed = event("subscription.plan_changed", metadata={"user_id": USER_ID})
    post(sender, changed)
    item = state(store)[ITEM_SK]
    assert item["plan_slug"] == "team" and item["plan_id"] == "pdt_team_monthly_3Zn8Kc5Wr1" and item["amount"] == 5000
    assert item["changed_at"] == ms_of(changed["timestamp"])
    # The update_payment_method event happened before the change: stale, whatever its arrival.
    answer = post(sender, "dodo/subscription.update_payment_method.json", msg_id="msg_old")
    assert answer.body["outcome"] == "stale"
    assert state(store)[ITEM_SK]["plan_slug"] == "team"


# -- payments and refunds --------------------------------------------------------------------


def test_payments_are_recorded_in_minor_units_and_linked_to_their_subscription(sender, store):
    post(sender, "dodo/payment.processing.json")
    post(sender, "dodo/payment.succeeded.json")
    payment = state(store)[f"payment#dodo:{PAYMENT_ID}"]
    assert payment["status"] == "succeeded"
    assert (payment["amount"], payment["tax"], payment["currency"]) == (2207, 207, "USD")
    assert payment["subscription_id"] == SUB_ID
    # processing arrives late: stale, the payment stays succeeded
    assert post(sender, "dodo/payment.processing.json", msg_id="msg_late").body["outcome"] == "stale"
    assert state(store)[f"payment#dodo:{PAYMENT_ID}"]["status"] == "succeeded"


def test_a_refund_after_cancellation_is_recorded_and_changes_no_access(sender, store):
    post(sender, "dodo/subscription.active.json")
    post(sender, "dodo/payment.succeeded.json")
    immediate = at(
        event("subscription.cancelled", cancel_at_next_billing_date=False, cancelled_at="2026-11-09T17:00:00Z"),
        "2026-11-09T17:00:01Z",
    )
    post(sender, immediate)
    post(sender, "dodo/refund.succeeded.json")
    records = state(store)
    refund = records["refund#dodo:ref_0NkX2pG6Tw9Lm4Qz8Rb3V"]
    assert (refund["amount"], refund["currency"], refund["status"]) == (1000, "USD", "succeeded")
    assert refund["payment_id"] == PAYMENT_ID and refund["subscription_id"] == SUB_ID
    assert records[ITEM_SK]["status"] == "canceled" and window(records[ITEM_SK]) is None


def test_dispute_states_follow_the_newest_event(sender, store):
    post(sender, "dodo/payment.succeeded.json")
    for name in ("opened", "challenged", "won"):
        post(sender, f"dodo/dispute.{name}.json")
    post(sender, "dodo/dispute.opened.json", msg_id="msg_late_open")
    assert state(store)["dispute#dodo:dsp_0NlC7hJ3Vx5Nq1Wk9Tm2R"]["status"] == "dispute_won"


# -- credits ---------------------------------------------------------------------------------

LEDGER = [
    "credit.added",
    "credit.deducted",
    "credit.manual_adjustment",
    "credit.overage_charged",
    "credit.rollover_forfeited",
    "credit.rolled_over",
    "credit.overage_reset",
]


def test_credits_delivered_out_of_order_keep_the_newest_provider_balance(sender, store):
    post(sender, "dodo/subscription.active.json")
    order = sorted(LEDGER, key=lambda n: sample_json(f"dodo/{n}.json")["data"]["created_at"])
    newest = sample_json(f"dodo/{order[-1]}.json")["data"]
    for name in reversed(order):
        post(sender, f"dodo/{name}.json")
    records = state(store)
    balance = records[BALANCE_SK]
    assert balance["balance"] == newest["balance_after"] and balance["overage"] == newest["overage_after"]
    assert balance["balance_source"] == newest["id"]
    lines = [r for r in records.values() if r["kind"] == "credit_ledger"]
    assert len(lines) == len(LEDGER)
    assert all(isinstance(line["amount"], str) for line in lines)


def test_balance_low_is_recorded_and_cleared_by_a_newer_balance_above_the_threshold(sender, store):
    post(sender, "dodo/subscription.active.json")
    post(sender, "dodo/credit.balance_low.json")
    balance = state(store)[BALANCE_SK]
    assert balance["low_balance"] is True
    assert (balance["low_balance_threshold"], balance["low_balance_threshold_percent"]) == ("200", 20)
    assert balance["credit_entitlement_name"] == "AI Credits"
    post(sender, "dodo/credit.rolled_over.json")  # later, balance 1150
    balance = state(store)[BALANCE_SK]
    assert balance["balance"] == "1150" and balance["low_balance"] is False
    assert balance["low_balance_alert_at"] == ms_of("2026-11-24T19:51:46.305921Z")
    # an older ledger line arriving late changes neither
    post(sender, "dodo/credit.deducted.json")
    assert state(store)[BALANCE_SK]["balance"] == "1150"


# -- shuffled, with duplicates, converges on the in-order state ------------------------------

HISTORY = [
    ("dodo/subscription.active.json", None),
    ("dodo/payment.processing.json", None),
    ("dodo/payment.succeeded.json", None),
    ("dodo/credit.added.json", None),
    ("dodo/credit.deducted.json", None),
    ("dodo/refund.succeeded.json", None),
    ("dodo/dispute.opened.json", None),
    ("dodo/dispute.challenged.json", None),
    ("dodo/credit.manual_adjustment.json", None),
    ("dodo/subscription.plan_changed.json", None),
    ("dodo/subscription.updated.json", {"product_id": "pdt_team_monthly_3Zn8Kc5Wr1"}),
    ("dodo/credit.balance_low.json", None),
    ("dodo/credit.overage_charged.json", None),
    ("dodo/dispute.won.json", None),
    ("dodo/subscription.cancelled.json", {"product_id": "pdt_team_monthly_3Zn8Kc5Wr1"}),
    ("dodo/credit.rollover_forfeited.json", None),
    ("dodo/credit.rolled_over.json", None),
]


def deliveries() -> list[tuple[str, bytes, str]]:
    out = []
    for i, (name, changes) in enumerate(HISTORY):
        envelope = sample_json(name)
        envelope["data"].update(changes or {})
        out.append((f"msg_h{i:02d}", body_of(envelope), function_for(name)))
    return out


@pytest.mark.parametrize("seed", [None, 42, 1234])
def test_a_shuffled_delivery_with_duplicates_converges_on_the_in_order_state(sender, seed):
    def run(sequence) -> dict[str, dict]:
        store = ApplyService(InMemoryStateStore())
        sender.use(store)
        for msg_id, body, function in sequence:
            assert sender.post(function, body, style="standard", msg_id=msg_id).status == 200

        # event_id names the delivery that wrote last: for a merged record (a balance) that depends on
        # arrival; a link keeps the version of the event that created it (the first to arrive).
        def comparable(record: dict) -> dict:
            arrival = {"event_id", "version"} if record["pk"].startswith("PAYER#customer:") else {"event_id"}
            return {k: v for k, v in record.items() if k not in arrival}

        return {
            p: {sk: comparable(r) for sk, r in state(store, p).items()}
            for p in (USER, CUSTOMER, f"customer:{PAYMENT_ID}", ORG)
        }

    in_order = run(deliveries())
    if seed is None:  # the worst order: everything newest first, credits before any link
        shuffled = [d for d in reversed(deliveries()) for _ in (1, 2)]
    else:
        shuffled = deliveries() + random.Random(seed).sample(deliveries(), 6)
        random.Random(seed).shuffle(shuffled)
    got = run(shuffled)
    for payer in in_order:
        for sk in set(in_order[payer]) | set(got[payer]):
            assert got[payer].get(sk) == in_order[payer].get(sk), (payer, sk)
    item = in_order[USER][ITEM_SK]
    assert (item["plan_slug"], item["status"], item["cancel_at_period_end"]) == ("team", "canceled", True)
    assert in_order[USER][BALANCE_SK]["balance"] == "1150"
    assert in_order[USER]["refund#dodo:ref_0NkX2pG6Tw9Lm4Qz8Rb3V"]["subscription_id"] == SUB_ID


# -- helpers ---------------------------------------------------------------------------------


def ms_of(iso: str) -> int:
    from datetime import datetime

    return ms(datetime.fromisoformat(iso))


def assert_edge(item: dict, end_ms: int) -> None:
    """Access one millisecond before ``end_ms``, none at it or one after."""
    found = window(item)
    assert found is not None and found.end_ms == end_ms
    assert found.contains(end_ms - 1)
    assert not found.contains(end_ms)
    assert not found.contains(end_ms + 1)


def _other_secret() -> str:
    from paygate_dev.signing import new_secret

    return new_secret()


def test_a_checkout_naming_another_payer_does_not_capture_the_customer(sender, store):
    """A customer linked to one payer is not re-pointed by a later event naming another: that event is
    quarantined with a 409 and the customer's metadata-less events keep going to the first payer."""
    assert post(sender, "dodo/subscription.active.json").status == 200
    other = "user_9zZzOtherPayer0000000000"
    takeover = event("subscription.active", subscription_id="sub_0Other0000000000000", metadata={"user_id": other})
    answer = post(sender, takeover, msg_id="msg_takeover")

    assert answer.status == 409
    assert answer.body["error"] == "payer_conflict" and answer.body["outcome"] == "quarantined"
    assert CUSTOMER_ID in answer.body["message"] and USER in answer.body["message"]
    kept = store.event("dodo.subscriptions", "msg_takeover")
    assert kept["outcome"] == "quarantined" and kept["error"].startswith("payer: ")
    assert store.payer_items(f"user:{other}") == []
    assert state(store, CUSTOMER)[f"customer_link#dodo:{CUSTOMER_ID}"]["linked_payer"] == USER

    assert post(sender, "dodo/credit.added.json").status == 200
    assert BALANCE_SK in state(store)
    # A redelivery of a quarantined event is processed afresh: refused again while the link stands.
    assert post(sender, takeover, msg_id="msg_takeover").status == 409
    assert store.payer_items(f"user:{other}") == []
