"""Every Clerk event type: its sample parses into the wire model and maps to the expected state."""

import copy

import pytest

from paygate.domain.state import Payer, PayerKind, RecordKind, body_fields
from paygate.providers.base import Delivery, InvalidEvent
from paygate.providers.clerk import (
    ITEM_EVENTS,
    PAYMENT_ATTEMPT_EVENTS,
    PAYMENT_ATTEMPTS,
    SUBSCRIPTION_EVENTS,
    SUBSCRIPTIONS,
)
from tests.conftest import body_of, sample, sample_json
from tests.conftest import decode as decode_body

USER = Payer(PayerKind.USER, "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d")
ORG = Payer(PayerKind.ORGANIZATION, "org_2xYb7Rk4Nq1WmT9cLz3VpH6sJd8")
DELIVERY = Delivery("msg_test", 1_795_000_000)
PRO_ITEM = "clerk:csub_item_3KBw9TnR5mZ1vQx7Lc4YpH2dGs8"

# event type -> (record kind of the item, its normalized status, plan) for each item event sample
ITEM_SAMPLES = {
    "subscriptionItem.updated": ("active", "pro"),
    "subscriptionItem.active": ("trialing", "pro"),
    "subscriptionItem.canceled": ("canceled", "pro"),
    "subscriptionItem.upcoming": ("upcoming", "free_user"),
    "subscriptionItem.ended": ("ended", "free_user"),
    "subscriptionItem.abandoned": ("abandoned", "free_user"),
    "subscriptionItem.incomplete": ("incomplete", "pro"),
    "subscriptionItem.pastDue": ("past_due", "pro"),
    "subscriptionItem.freeTrialEnding": ("trialing", "pro"),
}


def decode(family, body):
    return decode_body(family, body, DELIVERY)


def test_every_documented_event_type_is_applied_by_exactly_one_family():
    applied = set(SUBSCRIPTIONS.mappers) | set(PAYMENT_ATTEMPTS.mappers)
    assert applied == set(SUBSCRIPTION_EVENTS) | set(ITEM_EVENTS) | set(PAYMENT_ATTEMPT_EVENTS)
    assert not set(SUBSCRIPTIONS.mappers) & set(PAYMENT_ATTEMPTS.mappers)


@pytest.mark.parametrize("event_type", sorted(ITEM_SAMPLES))
def test_item_events_map_to_one_normalized_item(event_type):
    status, plan = ITEM_SAMPLES[event_type]
    got_type, effect = decode(SUBSCRIPTIONS, sample(f"clerk/{event_type}.json"))
    assert got_type == event_type
    assert effect.payer == USER
    (record,) = effect.records
    assert record.kind is RecordKind.ITEM
    assert body_fields(record.body)["status"] == status
    assert body_fields(record.body)["plan_slug"] == plan
    assert body_fields(record.body)["subscription_id"] == "csub_3K7fQmA1cZ8rTn5vLx2WpE9bGs4"
    assert record.record_id.startswith("clerk:csub_item_")


@pytest.mark.parametrize(
    "event_type", ["subscription.created", "subscription.updated", "subscription.active", "subscription.pastDue"]
)
def test_subscription_events_map_the_subscription_and_every_item(event_type):
    envelope = sample_json(f"clerk/{event_type}.json")
    _, effect = decode(SUBSCRIPTIONS, body_of(envelope))
    kinds = [r.kind for r in effect.records]
    assert kinds == [RecordKind.SUBSCRIPTION] + [RecordKind.ITEM] * len(envelope["data"]["items"])
    subscription = effect.records[0]
    assert body_fields(subscription.body)["status"] == envelope["data"]["status"]
    # Nested items have no subscription id of their own on the wire: it comes from the parent.
    assert {body_fields(r.body)["subscription_id"] for r in effect.records[1:]} == {envelope["data"]["id"]}


def test_an_organization_payer_keys_the_state_by_organization():
    _, effect = decode(SUBSCRIPTIONS, sample("clerk/subscription.active.org.json"))
    assert effect.payer == ORG
    assert {r.payer for r in effect.records} == {ORG}


def test_past_due_keeps_clerks_time_or_the_change_time():
    envelope = sample_json("clerk/subscription.pastDue.json")
    _, effect = decode(SUBSCRIPTIONS, body_of(envelope))
    pro = next(r for r in effect.records if r.record_id == PRO_ITEM)
    assert body_fields(pro.body)["status"] == "past_due"
    assert body_fields(pro.body)["past_due_at"] == envelope["data"]["past_due_at"]

    item_event = sample_json("clerk/subscriptionItem.pastDue.json")
    _, effect = decode(SUBSCRIPTIONS, body_of(item_event))
    assert body_fields(effect.records[0].body)["past_due_at"] == item_event["data"]["updated_at"]


def test_canceled_means_cancel_at_period_end():
    envelope = sample_json("clerk/subscriptionItem.canceled.json")
    _, effect = decode(SUBSCRIPTIONS, body_of(envelope))
    fields = body_fields(effect.records[0].body)
    assert fields["cancel_at_period_end"] is True
    assert fields["period_end"] == envelope["data"]["period_end"]


@pytest.mark.parametrize("event_type", PAYMENT_ATTEMPT_EVENTS)
def test_payment_attempts_keep_integer_minor_units_and_the_items_they_pay_for(event_type):
    envelope = sample_json(f"clerk/{event_type}.json")
    _, effect = decode(PAYMENT_ATTEMPTS, body_of(envelope))
    (record,) = effect.records
    assert record.kind is RecordKind.PAYMENT_ATTEMPT
    assert body_fields(record.body)["status"] == envelope["data"]["status"]
    assert body_fields(record.body)["amount"] == envelope["data"]["totals"]["grand_total"]["amount"]
    assert isinstance(body_fields(record.body)["amount"], int)
    assert body_fields(record.body)["currency"] == "USD"
    assert body_fields(record.body)["item_ids"] == [i["id"] for i in envelope["data"]["subscription_items"]]


def test_legacy_snake_case_past_due_names_are_applied():
    envelope = sample_json("clerk/subscriptionItem.pastDue.json")
    envelope["type"] = "subscriptionItem.past_due"
    _, effect = decode(SUBSCRIPTIONS, body_of(envelope))
    assert body_fields(effect.records[0].body)["status"] == "past_due"


def test_an_envelope_timestamp_in_seconds_is_read_as_milliseconds():
    envelope = sample_json("clerk/subscriptionItem.updated.json")
    in_ms = envelope["timestamp"]
    envelope["timestamp"] = in_ms // 1000
    _, from_seconds = decode(SUBSCRIPTIONS, body_of(envelope))
    assert from_seconds.records[0].version.split(".")[1] == f"{(in_ms // 1000) * 1000:015d}"


def test_a_type_of_another_family_is_not_applied():
    event_type, effect = decode(SUBSCRIPTIONS, sample("clerk/paymentAttempt.created.json"))
    assert (event_type, effect) == ("paymentAttempt.created", None)
    assert decode(PAYMENT_ATTEMPTS, sample("clerk/subscription.created.json"))[1] is None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["data"].__setitem__("status", "paused"), "data.status"),
        (lambda e: e["data"].pop("id"), "data.id"),
        (lambda e: e["data"].__setitem__("period_end", "tomorrow"), "data.period_end"),
        (lambda e: e.pop("timestamp"), "timestamp"),
        (lambda e: e["data"].pop("period_start"), "data.period_start"),
        (lambda e: e["data"].pop("payer"), "data.payer"),
        (lambda e: e["data"]["payer"].update(user_id="", organization_id=""), "data.payer"),
    ],
)
def test_a_malformed_item_names_the_field(mutate, field):
    envelope = copy.deepcopy(sample_json("clerk/subscriptionItem.active.json"))
    mutate(envelope)
    with pytest.raises(InvalidEvent) as raised:
        decode(SUBSCRIPTIONS, body_of(envelope))
    assert raised.value.field == field
    assert raised.value.event_type == "subscriptionItem.active"


@pytest.mark.parametrize(("body", "field"), [(b"{not json", "body"), (b"[1,2]", "body"), (b'{"data":{}}', "type")])
def test_bodies_that_are_not_events_name_what_is_wrong(body, field):
    with pytest.raises(InvalidEvent) as raised:
        decode(SUBSCRIPTIONS, body)
    assert raised.value.field == field


def test_unknown_extra_fields_are_tolerated():
    envelope = sample_json("clerk/subscriptionItem.active.json")
    envelope["data"]["brand_new_field"] = {"nested": True}
    envelope["another"] = 1
    _, effect = decode(SUBSCRIPTIONS, body_of(envelope))
    assert body_fields(effect.records[0].body)["status"] == "trialing"
