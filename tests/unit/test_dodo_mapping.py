"""Dodo Payments wire models and their mapping to state (pure: no store, no clock)."""

from __future__ import annotations

from datetime import datetime

import pytest

from paygate.domain.links import LINKED_PAYER
from paygate.domain.state import MergedRecord, Payer, PayerKind, RecordKind, body_fields
from paygate.infra.catalog_file import load_catalog
from paygate.providers import dodo
from paygate.providers.base import Delivery, InvalidEvent
from tests.conftest import body_of, sample, sample_json, sample_names
from tests.conftest import decode as decode_body

DELIVERY = Delivery("msg_unit", 1_795_000_000)
CATALOG = load_catalog()
USER = Payer(PayerKind.USER, "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d")
FAMILIES = (dodo.SUBSCRIPTIONS, dodo.PAYMENTS, dodo.CREDITS)

#: Every event type the SDK defines (tests/contract checks this list against the SDK itself).
APPLIED_TYPES = {t for family in FAMILIES for t in family.mappers}
REFERENCE_TYPES = APPLIED_TYPES | set(dodo.IGNORED_EVENTS)


def effect_of(name: str, **data):
    envelope = sample_json(f"dodo/{name}.json")
    envelope["data"].update(data)
    for family in FAMILIES:
        _, effect = decode_body(family, body_of(envelope), DELIVERY)
        if effect is not None:
            return effect
    raise AssertionError(f"no family applies {name}")


def records_by_kind(effect) -> dict[RecordKind, list]:
    found: dict[RecordKind, list] = {}
    for record in effect.records:
        found.setdefault(record.kind, []).append(record)
    return found


def item_of(name: str, **data) -> dict:
    (item,) = records_by_kind(effect_of(name, **data))[RecordKind.ITEM]
    return dict(body_fields(item.body))


# -- families --------------------------------------------------------------------------------


def test_every_reference_type_has_a_sample():
    assert {sample_json(n)["type"] for n in sample_names("dodo")} == REFERENCE_TYPES


def test_each_applied_type_belongs_to_exactly_one_family_and_ignored_ones_to_none():
    for event_type in REFERENCE_TYPES:
        owners = [f.name for f in FAMILIES if event_type in f.mappers]
        assert len(owners) == (0 if event_type in dodo.IGNORED_EVENTS else 1), event_type
    assert {f.name for f in FAMILIES} == {"dodo.subscriptions", "dodo.payments", "dodo.credits"}


@pytest.mark.parametrize("name", [n for n in sample_names("dodo") if sample_json(n)["type"] in APPLIED_TYPES])
def test_every_sample_maps_to_versioned_records(name):
    effect = effect_of(name.removeprefix("dodo/").removesuffix(".json"))
    assert effect.records
    for record in effect.records:
        assert record.record_id.startswith("dodo:")
        assert isinstance(record, MergedRecord) or record.version.endswith(".msg_unit")


@pytest.mark.parametrize("name", [n for n in sample_names("dodo") if sample_json(n)["type"] in dodo.IGNORED_EVENTS])
def test_ignored_types_are_not_applied_by_any_family(name):
    for family in FAMILIES:
        assert decode_body(family, sample(name), DELIVERY) == (sample_json(name)["type"], None)


# -- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2026-11-01T09:14:39.118254Z", 1_793_524_479_118),
        ("2026-11-01T09:14:39.118254+00:00", 1_793_524_479_118),
        ("2026-11-01T09:14:39.118Z", 1_793_524_479_118),
        ("2026-11-01T09:14:39.999999Z", 1_793_524_479_999),
        ("2026-11-01T09:14:39Z", 1_793_524_479_000),
        ("2026-11-01T10:14:39.118+01:00", 1_793_524_479_118),
        ("2026-11-01T09:14:39.118254", 1_793_524_479_118),  # no offset: UTC
    ],
)
def test_iso_timestamps_become_exact_epoch_milliseconds(wire, expected):
    assert dodo.ms(datetime.fromisoformat(wire)) == expected


def test_versions_order_by_the_envelope_time_not_arrival():
    early = effect_of("subscription.active").records[0].version
    late = effect_of("subscription.renewed").records[0].version
    assert early < late


# -- who pays --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "payer"),
    [
        ({"user_id": "user_1"}, Payer(PayerKind.USER, "user_1")),
        ({"organization_id": "org_1", "user_id": "user_1"}, Payer(PayerKind.ORGANIZATION, "org_1")),
        ({"organization_id": "", "user_id": "user_1"}, Payer(PayerKind.USER, "user_1")),
        ({"user_id": 42}, Payer(PayerKind.USER, "42")),
        ({"plan": "pro"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_metadata_names_the_payer(metadata, payer):
    assert dodo.payer_from_metadata(metadata, "data.metadata") == payer


@pytest.mark.parametrize("value", [True, {"id": "user_1"}, ["user_1"], 1.5])
def test_a_metadata_id_that_is_not_an_id_is_refused_naming_the_key(value):
    with pytest.raises(InvalidEvent) as caught:
        dodo.payer_from_metadata({"user_id": value}, "data.metadata")
    assert caught.value.field == "data.metadata.user_id"


def test_metadata_links_the_customer_to_the_payer_in_the_same_effect():
    effect = effect_of("subscription.active")
    assert effect.payer == USER
    links = records_by_kind(effect)[RecordKind.CUSTOMER_LINK]
    by_partition = {link.payer.key: link for link in links}
    assert body_fields(by_partition["customer:cus_8fK2mQ9xLp3RtV7wZ1nB"].body)[LINKED_PAYER] == USER.key
    assert body_fields(by_partition[USER.key].body)["customer_id"] == "cus_8fK2mQ9xLp3RtV7wZ1nB"


def test_without_metadata_state_is_kept_under_the_dodo_customer():
    effect = effect_of("subscription.active", metadata={})
    assert effect.payer == Payer(PayerKind.CUSTOMER, "cus_8fK2mQ9xLp3RtV7wZ1nB")
    assert RecordKind.CUSTOMER_LINK not in records_by_kind(effect)


def test_refunds_and_disputes_are_filed_through_their_payment():
    assert effect_of("refund.succeeded").payer == Payer(PayerKind.CUSTOMER, "pay_0NjR5uA3Lp8Qx2Wz6Tn4K")
    assert effect_of("dispute.lost").payer == Payer(PayerKind.CUSTOMER, "pay_0NjR5uA3Lp8Qx2Wz6Tn4K")
    (link,) = [r for r in effect_of("payment.succeeded").records if r.payer.id.startswith("pay_")]
    assert body_fields(link.body)[LINKED_PAYER] == "customer:cus_8fK2mQ9xLp3RtV7wZ1nB"
    assert body_fields(link.body)["inherit"] == {
        "subscription_id": "sub_0NjR5tW8xKq2Lm9Vb4Hd7",
        "subscription_ids": ["sub_0NjR5tW8xKq2Lm9Vb4Hd7"],
        "payment_at": dodo.ms(datetime.fromisoformat(sample_json("dodo/payment.succeeded.json")["data"]["created_at"])),
        "payment_amount": 2207,
        "payment_currency": "USD",
    }


# -- subscriptions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("subscription.active", "active"),
        ("subscription.updated", "active"),
        ("subscription.renewed", "active"),
        ("subscription.plan_changed", "active"),
        ("subscription.unpaused", "active"),
        ("subscription.update_payment_method", "active"),
        ("subscription.on_hold", "on_hold"),
        ("subscription.past_due", "past_due"),
        ("subscription.paused", "paused"),
        ("subscription.cancelled", "canceled"),
        ("subscription.failed", "failed"),
        ("subscription.expired", "expired"),
    ],
)
def test_subscription_status_maps_to_the_normalized_item_status(name, status):
    item = item_of(name)
    assert item["status"] == status
    assert item["provider_status"] == sample_json(f"dodo/{name}.json")["data"]["status"]


def test_the_item_has_the_normalized_fields_the_gate_reads():
    item = item_of("subscription.active")
    assert item["subscription_id"] == item["item_id"] == "sub_0NjR5tW8xKq2Lm9Vb4Hd7"
    assert (item["plan_id"], item["plan_slug"], item["plan_name"]) == ("pdt_pro_monthly_7Hq2Lx9Vb4", "pro", "Pro")
    assert (item["amount"], item["currency"], item["plan_period"]) == (2000, "USD", "month")
    assert item["period_start"] == dodo.ms(datetime.fromisoformat("2026-11-01T09:14:27.318402Z"))
    assert item["period_end"] == item["next_payment_at"] == dodo.ms(datetime.fromisoformat("2026-12-01T09:14:27.318Z"))
    assert item["cancel_at_period_end"] is False and item["past_due_at"] is None and item["ended_at"] is None


def test_cancel_at_next_billing_date_is_cancel_at_period_end_and_stops_the_next_payment():
    item = item_of("subscription.updated")
    assert item["cancel_at_period_end"] is True and item["next_payment_at"] is None


def test_on_hold_since_is_the_unpaid_renewal_or_the_event_whichever_is_earlier():
    renewal = item_of("subscription.on_hold")
    assert renewal["past_due_at"] == renewal["period_end"]
    mid_period = item_of("subscription.on_hold", next_billing_date="2026-12-20T00:00:00Z")
    assert mid_period["past_due_at"] == dodo.ms(datetime.fromisoformat("2026-12-01T09:15:02.381547Z"))


def test_a_trial_is_trialing_until_it_ends():
    trial = item_of("subscription.active", trial_period_days=14)
    assert trial["status"] == "trialing" and trial["is_free_trial"] is True
    paid_trial = item_of("subscription.active", trial_period_days=14, trial_amount=100)
    assert paid_trial["status"] == "trialing" and paid_trial["is_free_trial"] is False
    # The renewal happens a month after creation: a 14-day trial is over by then.
    assert item_of("subscription.renewed", trial_period_days=14)["status"] == "active"


def test_an_unknown_product_keeps_the_record_without_a_plan():
    item = item_of("subscription.active", product_id="pdt_elsewhere")
    assert item["plan_id"] == "pdt_elsewhere" and item["plan_slug"] is None and item["plan_name"] is None


def test_an_unknown_subscription_status_is_refused():
    with pytest.raises(InvalidEvent) as caught:
        effect_of("subscription.active", status="frozen")
    assert caught.value.field == "data.status" and caught.value.event_type == "subscription.active"


def test_several_billing_intervals_read_naturally():
    assert dodo.plan_period(1, "Year") == "year"
    assert dodo.plan_period(3, "Month") == "3 months"


# -- payments, refunds, disputes -------------------------------------------------------------


def test_a_payment_is_recorded_in_minor_units_with_its_subscription():
    (payment,) = records_by_kind(effect_of("payment.succeeded"))[RecordKind.PAYMENT]
    assert (
        body_fields(payment.body)["amount"],
        body_fields(payment.body)["tax"],
        body_fields(payment.body)["currency"],
    ) == (2207, 207, "USD")
    assert body_fields(payment.body)["subscription_id"] == "sub_0NjR5tW8xKq2Lm9Vb4Hd7"
    (failed,) = records_by_kind(effect_of("payment.failed"))[RecordKind.PAYMENT]
    assert body_fields(failed.body)["status"] == "failed" and body_fields(failed.body)["error_code"]


def test_a_refund_leaves_its_subscription_to_be_filled_from_the_payment():
    (refund,) = effect_of("refund.succeeded").records
    assert (
        body_fields(refund.body)["amount"],
        body_fields(refund.body)["currency"],
        body_fields(refund.body)["is_partial"],
    ) == (1000, "USD", True)
    assert (
        body_fields(refund.body)["subscription_id"] is None
        and body_fields(refund.body)["payment_id"] == "pay_0NjR5uA3Lp8Qx2Wz6Tn4K"
    )


def test_a_refund_without_its_customer_is_quarantined_naming_it():
    # The SDK's Refund requires customer (and metadata).
    envelope = sample_json("dodo/refund.failed.json")
    del envelope["data"]["customer"]
    with pytest.raises(InvalidEvent) as caught:
        decode_body(dodo.PAYMENTS, body_of(envelope), DELIVERY)
    assert caught.value.field == "data.customer"


def test_a_numeric_dispute_amount_is_refused_as_the_sdk_refuses_it():
    envelope = sample_json("dodo/dispute.opened.json")
    envelope["data"]["amount"] = 400
    with pytest.raises(InvalidEvent) as caught:
        decode_body(dodo.PAYMENTS, body_of(envelope), DELIVERY)
    assert caught.value.field == "data.amount"


@pytest.mark.parametrize(("wire", "amount"), [("2207", 2207), (" 15 ", 15)])
def test_dispute_amounts_are_whole_minor_units(wire, amount):
    assert dodo.dispute_amount(wire) == amount


@pytest.mark.parametrize("wire", ["22.07", "", "twenty", "\u0663"])
def test_a_fractional_or_unreadable_dispute_amount_is_refused(wire):
    with pytest.raises(InvalidEvent) as caught:
        dodo.dispute_amount(wire)
    assert caught.value.field == "data.amount"


# -- credits ---------------------------------------------------------------------------------


def test_a_ledger_entry_is_a_ledger_line_and_a_merged_balance():
    kinds = records_by_kind(effect_of("credit.deducted"))
    (line,) = kinds[RecordKind.CREDIT_LEDGER]
    assert line.record_id == "dodo:cdl_0NjW8bR2Xq6Lt9Kz4Vm7C"
    fields = body_fields(line.body)
    assert (fields["amount"], fields["is_credit"], fields["balance_after"]) == ("25", False, "975")
    (balance,) = kinds[RecordKind.CREDIT_BALANCE]
    assert isinstance(balance, MergedRecord) and balance.record_id == "dodo:cde_0NhU2kP7Wm4Xr9Tq3Zv6L"
    _, merged = balance.merge(None)
    assert (merged.balance, merged.overage, merged.low_balance) == ("975", "0", False)


def test_balance_low_is_a_merged_balance_with_the_alert_facts():
    (balance,) = effect_of("credit.balance_low").records
    _, merged = balance.merge(None)
    assert merged.low_balance is True
    assert (merged.balance, merged.low_balance_threshold, merged.credit_entitlement_name) == (
        "180",
        "200",
        "AI Credits",
    )


def test_credit_quantities_must_be_decimal_strings():
    with pytest.raises(InvalidEvent) as caught:
        effect_of("credit.added", amount="1e")
    assert caught.value.field == "data.amount"
