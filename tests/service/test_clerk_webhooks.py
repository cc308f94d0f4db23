"""Clerk Billing webhooks through the pipeline and the apply rules, on the in-memory store."""

import json
import random
import time

import pytest

from paygate.domain.access import AccessPolicy, access_window
from paygate.domain.records import SubscriptionItem
from paygate.service.apply import ApplyService
from paygate.settings import MAX_WEBHOOK_BODY_BYTES
from paygate_dev.memory_store import InMemoryStateStore
from paygate_dev.signing import new_secret
from tests.conftest import body_of, converging, sample, sample_json, sample_names

SUBS = "ClerkSubscriptionsFunction"
ATTEMPTS = "ClerkPaymentAttemptsFunction"
USER = "user:user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"
PRO_ITEM_SK = "item#clerk:csub_item_3KBw9TnR5mZ1vQx7Lc4YpH2dGs8"


def function_for(name: str) -> str:
    return ATTEMPTS if "/paymentAttempt." in name else SUBS


def state(store, payer=USER):
    """A payer's records without the bookkeeping that differs between deliveries."""
    return {r["sk"]: {k: v for k, v in converging(r).items() if k != "event_id"} for r in store.payer_items(payer)}


@pytest.mark.parametrize("name", sample_names("clerk"))
def test_every_sample_is_applied_and_recorded_with_its_raw_body(sender, store, name):
    answer = sender.post(function_for(name), sample(name), msg_id="msg_sample")
    assert answer.status == 200
    assert answer.body == {"received": True, "event_id": "msg_sample", "outcome": "applied"}
    event = sample_json(name)
    family = "clerk.payment_attempts" if function_for(name) == ATTEMPTS else "clerk.subscriptions"
    kept = store.event(family, "msg_sample")
    assert kept["outcome"] == "applied"
    assert kept["event_type"] == event["type"]
    assert json.loads(kept["body"]) == event
    payer = "org:" + event["data"]["payer"]["organization_id"] if event["data"]["payer"]["organization_id"] else USER
    assert set(kept["applied"]) <= set(state(store, payer))
    assert kept["applied"]


@pytest.mark.parametrize("style", ["svix", "standard"])
def test_both_header_styles_are_accepted(sender, style):
    assert sender.post(SUBS, sample("clerk/subscription.created.json"), style=style).body["outcome"] == "applied"


def test_a_redelivery_is_a_duplicate_and_changes_nothing(sender, store):
    body = sample("clerk/subscription.active.json")
    assert sender.post(SUBS, body, msg_id="msg_1").body["outcome"] == "applied"
    before = state(store)
    assert sender.post(SUBS, body, msg_id="msg_1").body["outcome"] == "duplicate"
    assert state(store) == before


def test_an_older_event_never_rolls_state_back(sender, store):
    newer = sample_json("clerk/subscriptionItem.canceled.json")
    older = sample_json("clerk/subscriptionItem.pastDue.json")
    assert older["data"]["updated_at"] < newer["data"]["updated_at"]
    assert sender.post(SUBS, body_of(newer)).body["outcome"] == "applied"
    answer = sender.post(SUBS, body_of(older), msg_id="msg_old")
    assert answer.status == 200 and answer.body["outcome"] == "stale"
    assert state(store)[PRO_ITEM_SK]["status"] == "canceled"
    assert store.event("clerk.subscriptions", "msg_old")["outcome"] == "stale"


def test_a_partly_stale_event_applies_only_its_newer_parts(sender, store):
    # The item was canceled after the subscription.active snapshot was taken.
    assert sender.post(SUBS, sample("clerk/subscriptionItem.canceled.json")).body["outcome"] == "applied"
    answer = sender.post(SUBS, sample("clerk/subscription.active.json"), msg_id="msg_snapshot")
    assert answer.body["outcome"] == "applied"
    records = state(store)
    assert records[PRO_ITEM_SK]["status"] == "canceled"
    assert records["subscription#clerk:csub_3K7fQmA1cZ8rTn5vLx2WpE9bGs4"]["status"] == "active"
    assert PRO_ITEM_SK not in store.event("clerk.subscriptions", "msg_snapshot")["applied"]


@pytest.mark.parametrize(
    ("function", "name"),
    [(ATTEMPTS, "clerk/subscription.created.json"), (SUBS, "clerk/paymentAttempt.updated.json")],
)
def test_an_event_of_another_family_is_kept_and_ignored(sender, store, function, name):
    answer = sender.post(function, sample(name), msg_id="msg_other")
    assert answer.status == 200 and answer.body["outcome"] == "ignored"
    assert state(store) == {}
    family = "clerk.payment_attempts" if function == ATTEMPTS else "clerk.subscriptions"
    assert store.event(family, "msg_other")["outcome"] == "ignored"


def test_an_unknown_event_type_is_kept_and_ignored(sender, store):
    envelope = {"type": "subscription.teleported", "object": "event", "timestamp": 1, "data": {"id": "x"}}
    answer = sender.post(SUBS, body_of(envelope), msg_id="msg_unknown")
    assert answer.body["outcome"] == "ignored"
    assert store.event("clerk.subscriptions", "msg_unknown")["event_type"] == "subscription.teleported"


def test_the_same_message_sent_to_both_endpoints_is_handled_by_each(sender, store):
    body = sample("clerk/paymentAttempt.updated.json")
    assert sender.post(SUBS, body, msg_id="msg_both").body["outcome"] == "ignored"
    assert sender.post(ATTEMPTS, body, msg_id="msg_both").body["outcome"] == "applied"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (
            json.dumps(
                {"type": "subscriptionItem.active", "object": "event", "timestamp": 1, "data": {"id": "x"}}
            ).encode(),
            "data.status",
        ),
    ],
)
def test_a_verified_but_invalid_body_is_quarantined_and_named(sender, store, body, field):
    answer = sender.post(SUBS, body, msg_id="msg_bad")
    assert answer.status == 400
    assert answer.body["error"] == "invalid_event" and answer.body["field"] == field
    kept = store.event("clerk.subscriptions", "msg_bad")
    assert kept["outcome"] == "quarantined"
    assert kept["body"] == body.decode()
    assert field in kept["error"]
    assert "expires_at" not in kept  # kept until replayed
    assert state(store) == {}


def test_a_quarantined_event_is_applied_when_redelivered_after_a_fix(sender, store):
    good = sample_json("clerk/subscriptionItem.canceled.json")
    bad = json.loads(json.dumps(good))
    bad["data"]["status"] = "paused"  # a status this version does not know
    assert sender.post(SUBS, body_of(bad), msg_id="msg_q").status == 400
    # The provider retries the same message id; after a fix it reads (here: the body it would have been).
    answer = sender.post(SUBS, body_of(good), msg_id="msg_q")
    assert answer.body["outcome"] == "applied"
    assert store.event("clerk.subscriptions", "msg_q")["outcome"] == "applied"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda a: a.update(secret=new_secret()), "no signature matches"),
        (lambda a: a.update(timestamp=int(time.time()) - 600), "outside the 5 minute tolerance"),
        (lambda a: a.update(timestamp=int(time.time()) + 600), "outside the 5 minute tolerance"),
        (lambda a: a.update(headers={"svix-signature": "v1,AAAA"}), "no signature matches"),
        (lambda a: a.update(headers={"svix-signature": "v1"}), "malformed"),
        (lambda a: a.update(headers={"svix-id": ""}), "missing signature headers"),
    ],
)
def test_unverified_requests_are_refused_and_leave_no_trace(sender, memory, tamper, reason):
    kwargs = {}
    tamper(kwargs)
    answer = sender.post(SUBS, sample("clerk/subscription.created.json"), **kwargs)
    assert answer.status == 401
    assert answer.body["error"] == "invalid_signature" and reason in answer.body["message"]
    assert memory.items() == [] and memory.requests == []


def test_a_rotated_secret_still_verifies(sender):
    old, new = new_secret(), new_secret()
    for secret in (old, new):
        answer = sender.post(SUBS, sample("clerk/subscription.created.json"), secret=secret, configured=f"{new},{old}")
        assert answer.status == 200


def test_an_oversize_body_is_refused_before_anything_else(sender, memory):
    envelope = sample_json("clerk/subscription.created.json")
    envelope["padding"] = "x" * MAX_WEBHOOK_BODY_BYTES
    answer = sender.post(SUBS, body_of(envelope))
    assert answer.status == 413 and answer.body["error"] == "body_too_large"
    assert memory.items() == [] and memory.requests == []


def test_a_store_outage_answers_503_so_the_provider_retries(sender, memory):
    memory.fail_next("write")
    answer = sender.post(SUBS, sample("clerk/subscription.created.json"))
    assert answer.status == 503 and answer.body["error"] == "store_unavailable"
    assert memory.items() == []


def test_no_secret_configured_is_our_fault_and_says_so(sender):
    answer = sender.post(SUBS, sample("clerk/subscription.created.json"), configured="")
    assert answer.status == 500 and answer.body["error"] == "misconfigured"


def story() -> list[tuple[str, bytes]]:
    """Every subscription-family sample, as (message id, body), in the order Clerk sent them."""
    names = [n for n in sample_names("clerk") if function_for(n) == SUBS and ".org." not in n]
    events = sorted((sample_json(n)["timestamp"], n) for n in names)
    return [(f"msg_{i:02d}", sample(n)) for i, (_, n) in enumerate(events)]


def test_shuffled_delivery_with_duplicates_ends_in_the_in_order_state(sender, store):
    in_order = story()
    for msg_id, body in in_order:
        sender.post(SUBS, body, msg_id=msg_id)
    expected = state(store)
    assert expected[PRO_ITEM_SK]["status"] in {"active", "canceled", "past_due", "trialing"}

    rng = random.Random(20261123)
    for _ in range(3):
        shuffled = ApplyService(InMemoryStateStore())
        sender.use(shuffled)
        deliveries = [d for d in in_order for _ in range(rng.randint(1, 3))]
        rng.shuffle(deliveries)
        outcomes = [sender.post(SUBS, body, msg_id=msg_id).body["outcome"] for msg_id, body in deliveries]
        assert state(shuffled) == expected
        assert outcomes.count("duplicate") == len(deliveries) - len(in_order)


# -- faithful to Clerk's own types (docs/reference/clerk-billing.md) ------------------------------


def item_event(name: str, **changes) -> dict:
    envelope = sample_json(f"clerk/{name}.json")
    envelope["data"].update(changes)
    return envelope


@pytest.mark.parametrize("plan", ["null", "absent"])
def test_an_item_without_a_plan_is_applied_and_grants_nothing(sender, store, plan):
    # JSON.ts: plan?: ... | null, plan_id?: string | null; the spec: required, nullable.
    envelope = item_event("subscriptionItem.ended")
    for key in ("plan", "plan_id"):
        if plan == "null":
            envelope["data"][key] = None
        else:
            envelope["data"].pop(key)
    answer = sender.post(SUBS, body_of(envelope))
    assert (answer.status, answer.body["outcome"]) == (200, "applied")


def test_one_item_without_a_plan_does_not_quarantine_its_subscription(sender, store):
    envelope = sample_json("clerk/subscription.active.json")
    envelope["data"]["items"][0].update(plan=None, plan_id=None)
    answer = sender.post(SUBS, body_of(envelope))
    assert (answer.status, answer.body["outcome"]) == (200, "applied")
    items = {sk: r for sk, r in state(store).items() if sk.startswith("item#")}
    assert sorted(r["plan_slug"] is None for r in items.values()) == [False, True]


def test_the_next_payment_is_read_from_the_flat_fields_webhooks_carry(sender, store):
    # JSON.ts BillingSubscriptionItemWebhookEventJSON: next_payment_amount, next_payment_date (numbers).
    envelope = item_event("subscriptionItem.updated", next_payment_amount=2500, next_payment_date=1_800_000_000_000)
    sender.post(SUBS, body_of(envelope))
    record = state(store)[PRO_ITEM_SK]
    assert (record["next_payment_at"], record["next_payment_amount"], record["next_payment_currency"]) == (
        1_800_000_000_000,
        2500,
        "USD",
    )


def test_an_item_event_without_a_subscription_id_keeps_the_stored_link(sender, store):
    sender.post(SUBS, sample("clerk/subscription.active.json"))
    subscription_id = state(store)[PRO_ITEM_SK]["subscription_id"]
    assert subscription_id == "csub_3K7fQmA1cZ8rTn5vLx2WpE9bGs4"
    for later, carried in enumerate(("absent", "null"), start=1):
        envelope = item_event("subscriptionItem.updated", updated_at=1_799_000_000_000 + later)
        if carried == "absent":
            envelope["data"].pop("subscription_id")
        else:
            envelope["data"]["subscription_id"] = None
        assert sender.post(SUBS, body_of(envelope)).body["outcome"] == "applied"
        assert state(store)[PRO_ITEM_SK]["subscription_id"] == subscription_id


def test_an_ended_item_ends_when_it_changed_to_ended(sender, store):
    # No webhook item carries ended_at (neither JSON.ts nor the spec): the change time is the end.
    envelope = sample_json("clerk/subscriptionItem.ended.json")
    sender.post(SUBS, body_of(envelope))
    (record,) = [r for sk, r in state(store).items() if sk.startswith("item#")]
    assert record["ended_at"] == envelope["data"]["updated_at"]


def test_expired_is_a_status_not_an_event(sender, store):
    # No Clerk source defines subscriptionItem.expired; an item whose status is expired is applied
    # from the events that carry it.
    expired = item_event("subscriptionItem.updated", status="expired")
    assert sender.post(SUBS, body_of(expired)).body["outcome"] == "applied"
    assert state(store)[PRO_ITEM_SK]["status"] == "expired"
    unknown = dict(expired, type="subscriptionItem.expired")
    assert sender.post(SUBS, body_of(unknown), msg_id="msg_expired").body["outcome"] == "ignored"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"type": "subscription.created", "timestamp": ' + b"9" * 5000 + b"}", "number too long"),
    ],
)
def test_signed_pathological_json_is_quarantined_not_crashed_on(sender, store, body, message):
    answer = sender.post(SUBS, body, msg_id="msg_pathological")
    assert (answer.status, answer.body["error"], answer.body["field"]) == (400, "invalid_event", "body")
    assert message in answer.body["message"]
    kept = store.event("clerk.subscriptions", "msg_pathological")
    assert kept["outcome"] == "quarantined" and kept["body"] == body.decode()


def past_due_update(updated_at: int) -> dict:
    """A later ``subscriptionItem.updated`` of the item that is still past due (no time of its own)."""
    envelope = sample_json("clerk/subscriptionItem.pastDue.json")
    envelope["type"] = "subscriptionItem.updated"
    envelope["data"]["updated_at"] = updated_at
    envelope["timestamp"] = updated_at + 1_000
    return envelope


def test_an_update_of_an_item_still_past_due_keeps_when_it_became_past_due(sender, store):
    became = sample_json("clerk/subscriptionItem.pastDue.json")
    assert sender.post(SUBS, body_of(became)).body["outcome"] == "applied"
    first = state(store)[PRO_ITEM_SK]["past_due_at"]
    assert first == became["data"]["updated_at"]
    later = past_due_update(became["data"]["updated_at"] + 3 * 86_400_000)
    assert sender.post(SUBS, body_of(later)).body["outcome"] == "applied"
    item = state(store)[PRO_ITEM_SK]
    # The grace period still runs from the failure, not from the update three days later.
    assert (item["status"], item["past_due_at"]) == ("past_due", first)


def test_a_past_due_item_whose_change_was_missed_counts_from_the_update(sender, store):
    updated_at = sample_json("clerk/subscriptionItem.pastDue.json")["data"]["updated_at"] + 86_400_000
    assert sender.post(SUBS, body_of(past_due_update(updated_at))).body["outcome"] == "applied"
    (stored,) = [r for r in store.payer_items(USER) if r["sk"] == PRO_ITEM_SK]
    policy = AccessPolicy()
    window = access_window(SubscriptionItem.from_fields(stored), policy)
    assert window is not None and window.end_ms == updated_at + policy.grace_period_ms
