"""Dodo Payments against its own SDK: the ``dodopayments`` package's webhook types (pinned in
requirements-dev.txt).

* Every sample in ``events/dodo/`` validates strictly (missing required fields, wrong types and unknown
  enum values all fail) against the SDK's webhook event union.
* Every event type the SDK defines is either applied by a family or on ``IGNORED_EVENTS`` with its
  reason, and has a sample.
* Every field paygate's wire models declare exists in the SDK's model with the same requiredness and
  nullability, and a compatible type.
"""

from __future__ import annotations

import datetime
import types
import typing
from typing import Annotated, Any, Literal, Union

import pytest
from pydantic import BaseModel, Field, TypeAdapter

from paygate.providers import dodo
from tests.conftest import sample, sample_json, sample_names

sdk_types = pytest.importorskip("dodopayments.types")
from dodopayments.types import (  # noqa: E402 - after the importorskip
    UnwrapWebhookEvent,
    credit_balance_low_webhook_event,
    customer_limited_details,
    dispute,
    dunning_started_webhook_event,
    payment,
    refund,
    refund_list_item,
    subscription_active_webhook_event,
    subscription_service_period,
    webhook_event_type,
)
from dodopayments.types.credit_entitlements import credit_ledger_entry, customer_credit_balance  # noqa: E402

EVENT_MODELS = typing.get_args(typing.get_args(UnwrapWebhookEvent)[0])
#: The SDK's union, with a real discriminator (its own ``PropertyInfo`` marker is invisible to pydantic).
STRICT_EVENT = TypeAdapter(Annotated[Union[EVENT_MODELS], Field(discriminator="type")])  # noqa: UP007
SDK_EVENT_TYPES = set(typing.get_args(webhook_event_type.WebhookEventType))
FAMILIES = (dodo.SUBSCRIPTIONS, dodo.PAYMENTS, dodo.CREDITS)

#: paygate's model -> the SDK's model it declares a subset of.
MODEL_PAIRS = [
    (dodo.DodoCustomer, customer_limited_details.CustomerLimitedDetails),
    (dodo.DodoSubscription, subscription_active_webhook_event.Data),
    (dodo.DodoPayment, payment.Payment),
    (dodo.DodoRefundSummary, refund_list_item.RefundListItem),
    (dodo.DodoServicePeriod, subscription_service_period.SubscriptionServicePeriod),
    (dodo.DodoRefund, refund.Refund),
    (dodo.DodoDispute, dispute.Dispute),
    (dodo.DodoCreditLedgerEntry, credit_ledger_entry.CreditLedgerEntry),
    (dodo.DodoCreditBalanceLow, credit_balance_low_webhook_event.Data),
    (dodo.DodoCreditBalance, customer_credit_balance.CustomerCreditBalance),
    (dodo.DodoDunning, dunning_started_webhook_event.Data),
    (dodo.SubscriptionEvent, subscription_active_webhook_event.SubscriptionActiveWebhookEvent),
]
#: Where paygate's type is deliberately wider or narrower than the SDK's, and why.
TYPE_DEVIATIONS = {
    # An ISO 4217 code the SDK's Literal does not list yet must not quarantine a payment.
    ("DodoSubscription", "currency"),
    ("DodoPayment", "currency"),
    ("DodoPayment", "settlement_currency"),
    ("DodoRefund", "currency"),
    ("DodoRefundSummary", "currency"),
    # One envelope model serves every type of a family; the family routes by type.
    ("SubscriptionEvent", "type"),
}


@pytest.mark.parametrize("name", sample_names("dodo"))
def test_every_sample_validates_strictly_against_the_sdk(name):
    event = STRICT_EVENT.validate_json(sample(name), strict=True)
    assert event.type == sample_json(name)["type"]


def test_every_sdk_event_type_is_applied_or_ignored_for_a_stated_reason():
    applied = {t for family in FAMILIES for t in family.mappers}
    ignored = set(dodo.IGNORED_EVENTS)
    assert not applied & ignored
    assert SDK_EVENT_TYPES - applied - ignored == set(), "an SDK event type is neither applied nor ignored"
    assert applied | ignored == SDK_EVENT_TYPES, "paygate names a type the SDK does not define"
    assert all(len(reason) > 20 for reason in dodo.IGNORED_EVENTS.values())


def test_every_sdk_event_type_has_a_sample():
    assert {sample_json(n)["type"] for n in sample_names("dodo")} == SDK_EVENT_TYPES


@pytest.mark.parametrize(("ours", "theirs"), MODEL_PAIRS, ids=lambda m: m.__name__)
def test_each_declared_field_matches_the_sdk(ours: type[BaseModel], theirs: type[BaseModel]):
    for name, field in ours.model_fields.items():
        assert name in theirs.model_fields, f"{ours.__name__}.{name} is not in the SDK's {theirs.__name__}"
        sdk = theirs.model_fields[name]
        where = f"{ours.__name__}.{name}"
        assert field.is_required() == sdk.is_required(), (
            f"{where}: required {field.is_required()}, SDK {sdk.is_required()}"
        )
        assert _nullable(field.annotation) == _nullable(sdk.annotation), f"{where}: nullability differs from the SDK"
        if (ours.__name__, name) not in TYPE_DEVIATIONS:
            assert _kind(field.annotation) == _kind(sdk.annotation), (
                f"{where}: {_kind(field.annotation)} where the SDK has {_kind(sdk.annotation)}"
            )


def _nullable(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _kind(annotation: Any) -> Any:
    """A comparable shape of a type: base types by name, Literals by their values, models as 'object'."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return frozenset(_kind(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is Literal:
        return ("literal", frozenset(typing.get_args(annotation)))
    if origin is Annotated:
        return _kind(typing.get_args(annotation)[0])
    if origin in (list, typing.List):  # noqa: UP006
        return ("list", _kind(typing.get_args(annotation)[0]))
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "mapping"  # Metadata: str keys, str/number/bool values (paygate keeps integers as integers)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if annotation in (int, float, str, bool, datetime.datetime):
        return annotation.__name__
    if isinstance(annotation, frozenset):
        return annotation
    raise AssertionError(f"no comparable shape for {annotation!r}")
