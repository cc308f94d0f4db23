"""Clerk Billing: wire models of its webhook payloads and the state change each event makes.

Field names, types and nullability follow Clerk's webhook JSON (see docs/reference/clerk-billing.md):
snake_case, timestamps in epoch milliseconds, money as integer minor units with a currency code.
Unknown extra fields are tolerated; an unknown *status* is not - it fails validation and the
event is quarantined, rather than being guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import field_validator

from paygate.domain.catalog import Catalog
from paygate.domain.records import ItemStatus, SubscriptionItem
from paygate.domain.state import Effect, Payer, PayerKind, RecordKind, StateRecord, version_key
from paygate.infra.signature import StandardWebhooks
from paygate.providers.base import Delivery, InvalidEvent, WebhookFamily, WireModel, parse

PROVIDER = "clerk"

# Clerk renamed the past-due events to camelCase in 2025; the old spellings are still accepted.
SUBSCRIPTION_EVENTS = (
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.pastDue",
    "subscription.past_due",
)
ITEM_EVENTS = (
    "subscriptionItem.created",
    "subscriptionItem.updated",
    "subscriptionItem.active",
    "subscriptionItem.canceled",
    "subscriptionItem.upcoming",
    "subscriptionItem.ended",
    "subscriptionItem.abandoned",
    "subscriptionItem.expired",
    "subscriptionItem.incomplete",
    "subscriptionItem.pastDue",
    "subscriptionItem.freeTrialEnding",
    "subscriptionItem.past_due",
)
PAYMENT_ATTEMPT_EVENTS = ("paymentAttempt.created", "paymentAttempt.updated")

# Subscriptions and their items share one status vocabulary on the wire.
ClerkStatus = Literal["active", "past_due", "canceled", "ended", "abandoned", "incomplete", "upcoming", "expired"]
PaymentAttemptStatus = Literal["pending", "paid", "failed"]


# -- wire models -----------------------------------------------------------------------------


class ClerkMoney(WireModel):
    amount: int
    currency: str
    amount_formatted: str | None = None
    currency_symbol: str | None = None


class ClerkPayer(WireModel):
    id: str
    user_id: str | None = None
    organization_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organization_name: str | None = None

    def payer(self) -> Payer:
        # Clerk sends "" rather than null for the side that does not apply.
        if self.organization_id:
            return Payer(PayerKind.ORGANIZATION, self.organization_id)
        if self.user_id:
            return Payer(PayerKind.USER, self.user_id)
        raise InvalidEvent("data.payer", "the payer has neither user_id nor organization_id")


class ClerkPlan(WireModel):
    id: str
    slug: str
    name: str | None = None
    amount: int | None = None
    currency: str | None = None
    period: str | None = None
    is_recurring: bool | None = None


class ClerkNextPayment(WireModel):
    amount: ClerkMoney | int | None = None
    date: int | None = None


class ClerkSubscriptionItem(WireModel):
    id: str
    status: ClerkStatus
    plan_id: str | None = None
    plan: ClerkPlan | None = None
    plan_period: str | None = None
    interval: str | None = None
    period_start: int | None = None
    period_end: int | None = None
    is_free_trial: bool = False
    canceled_at: int | None = None
    past_due_at: int | None = None
    ended_at: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    subscription_id: str | None = None
    payer: ClerkPayer | None = None
    amount: ClerkMoney | None = None
    next_payment: ClerkNextPayment | None = None


class ClerkSubscription(WireModel):
    id: str
    status: ClerkStatus
    payer_id: str | None = None
    payer: ClerkPayer
    items: list[ClerkSubscriptionItem]
    active_at: int | None = None
    canceled_at: int | None = None
    past_due_at: int | None = None
    ended_at: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    next_payment: ClerkNextPayment | None = None
    latest_payment_id: str | None = None
    payment_source_id: str | None = None


class ClerkPaymentTotals(WireModel):
    grand_total: ClerkMoney
    subtotal: ClerkMoney | None = None
    tax_total: ClerkMoney | None = None


class ClerkPaidItem(WireModel):
    id: str
    plan_id: str | None = None
    plan: ClerkPlan | None = None


class ClerkPaymentAttempt(WireModel):
    id: str
    status: PaymentAttemptStatus
    payer: ClerkPayer
    totals: ClerkPaymentTotals
    payment_id: str | None = None
    charge_type: str | None = None
    billing_date: int | None = None
    paid_at: int | None = None
    failed_at: int | None = None
    failed_reason: Any = None
    created_at: int | None = None
    updated_at: int | None = None
    subscription_items: list[ClerkPaidItem] = []


class _Envelope(WireModel):
    type: str
    timestamp: int
    object: str | None = None
    instance_id: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _milliseconds(cls, value: int) -> int:
        # Clerk's spec examples show seconds, real deliveries milliseconds: keep milliseconds.
        return value * 1000 if value < 10**12 else value


class SubscriptionEvent(_Envelope):
    data: ClerkSubscription


class SubscriptionItemEvent(_Envelope):
    data: ClerkSubscriptionItem


class PaymentAttemptEvent(_Envelope):
    data: ClerkPaymentAttempt


# -- mapping to state ------------------------------------------------------------------------

_STATUS = {
    "active": ItemStatus.ACTIVE,
    "past_due": ItemStatus.PAST_DUE,
    "canceled": ItemStatus.CANCELED,
    "ended": ItemStatus.ENDED,
    "abandoned": ItemStatus.ABANDONED,
    "incomplete": ItemStatus.INCOMPLETE,
    "upcoming": ItemStatus.UPCOMING,
    "expired": ItemStatus.EXPIRED,
}


def subscription_item(
    item: ClerkSubscriptionItem, subscription_id: str | None, event_ts: int, subscription_past_due_at: int | None = None
) -> SubscriptionItem:
    """The normalized item record: what the gate reads to decide access."""
    status = _STATUS[item.status]
    if status is ItemStatus.ACTIVE and item.is_free_trial:
        status = ItemStatus.TRIALING
    changed_at = item.updated_at or event_ts
    past_due_at = None
    if status is ItemStatus.PAST_DUE:
        # Clerk's own time when it sends one; else when the item changed to past due.
        past_due_at = item.past_due_at or subscription_past_due_at or changed_at
    plan = item.plan
    next_payment = item.next_payment
    return SubscriptionItem(
        item_id=item.id,
        status=status,
        subscription_id=subscription_id,
        plan_id=item.plan_id or (plan.id if plan else None),
        plan_slug=plan.slug if plan else None,
        plan_name=plan.name if plan else None,
        plan_period=item.plan_period or item.interval or (plan.period if plan else None),
        provider_status=item.status,
        period_start=item.period_start,
        period_end=item.period_end,
        is_free_trial=item.is_free_trial,
        # Clerk keeps a canceled item's plan until the end of the period that was paid for.
        cancel_at_period_end=status is ItemStatus.CANCELED,
        canceled_at=item.canceled_at,
        past_due_at=past_due_at,
        ended_at=item.ended_at,
        amount=item.amount.amount if item.amount else (plan.amount if plan else None),
        currency=item.amount.currency if item.amount else (plan.currency if plan else None),
        next_payment_at=next_payment.date if next_payment else None,
        changed_at=changed_at,
    )


def _item_record(
    payer: Payer,
    item: ClerkSubscriptionItem,
    subscription_id: str | None,
    event: _Envelope,
    delivery: Delivery,
    subscription_past_due_at: int | None = None,
) -> StateRecord:
    if item.plan is None:
        raise InvalidEvent("data.plan", "a subscription item must carry its plan")
    body = subscription_item(item, subscription_id, event.timestamp, subscription_past_due_at)
    return StateRecord(
        payer,
        RecordKind.ITEM,
        f"{PROVIDER}:{item.id}",
        version_key(body.changed_at or event.timestamp, event.timestamp, delivery.event_id),
        body,
    )


def map_subscription(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(SubscriptionEvent, envelope)
    sub = event.data
    payer = sub.payer.payer()
    changed_at = sub.updated_at or event.timestamp
    next_payment = sub.next_payment
    next_amount = next_payment.amount if next_payment else None
    subscription = StateRecord(
        payer,
        RecordKind.SUBSCRIPTION,
        f"{PROVIDER}:{sub.id}",
        version_key(changed_at, event.timestamp, delivery.event_id),
        {
            "subscription_id": sub.id,
            "status": sub.status,
            "active_at": sub.active_at,
            "canceled_at": sub.canceled_at,
            "past_due_at": sub.past_due_at,
            "ended_at": sub.ended_at,
            "created_at": sub.created_at,
            "next_payment_at": next_payment.date if next_payment else None,
            "next_payment_amount": next_amount.amount if isinstance(next_amount, ClerkMoney) else next_amount,
            "next_payment_currency": next_amount.currency if isinstance(next_amount, ClerkMoney) else None,
            "latest_payment_id": sub.latest_payment_id,
            "item_ids": [item.id for item in sub.items],
            "changed_at": changed_at,
        },
    )
    items = tuple(_item_record(payer, item, sub.id, event, delivery, sub.past_due_at) for item in sub.items)
    return Effect(payer, (subscription, *items))


def map_subscription_item(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(SubscriptionItemEvent, envelope)
    item = event.data
    if item.payer is None:
        raise InvalidEvent("data.payer", "a subscription item event must carry its payer")
    payer = item.payer.payer()
    return Effect(payer, (_item_record(payer, item, item.subscription_id, event, delivery),))


def map_payment_attempt(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(PaymentAttemptEvent, envelope)
    attempt = event.data
    payer = attempt.payer.payer()
    total = attempt.totals.grand_total
    changed_at = attempt.updated_at or event.timestamp
    record = StateRecord(
        payer,
        RecordKind.PAYMENT_ATTEMPT,
        f"{PROVIDER}:{attempt.id}",
        version_key(changed_at, event.timestamp, delivery.event_id),
        {
            "payment_attempt_id": attempt.id,
            "payment_id": attempt.payment_id,
            "status": attempt.status,
            "amount": total.amount,
            "currency": total.currency,
            "charge_type": attempt.charge_type,
            "billing_date": attempt.billing_date,
            "paid_at": attempt.paid_at,
            "failed_at": attempt.failed_at,
            "failed_reason": _reason(attempt.failed_reason),
            "item_ids": [i.id for i in attempt.subscription_items],
            "plan_slugs": [i.plan.slug for i in attempt.subscription_items if i.plan],
            "created_at": attempt.created_at,
            "changed_at": changed_at,
        },
    )
    return Effect(payer, (record,))


def _reason(reason: Any) -> str | None:
    if reason is None or isinstance(reason, str):
        return reason
    if isinstance(reason, Mapping):
        return str(reason.get("code") or reason.get("decline_code") or reason)
    return str(reason)


#: Clerk delivers through Svix: Standard Webhooks with ``svix-*`` headers, the ``svix-id`` as event id.
SCHEME = StandardWebhooks()

SUBSCRIPTIONS = WebhookFamily(
    name="clerk.subscriptions",
    provider=PROVIDER,
    scheme=SCHEME,
    mappers={
        **dict.fromkeys(SUBSCRIPTION_EVENTS, map_subscription),
        **dict.fromkeys(ITEM_EVENTS, map_subscription_item),
    },
)

PAYMENT_ATTEMPTS = WebhookFamily(
    name="clerk.payment_attempts",
    provider=PROVIDER,
    scheme=SCHEME,
    mappers=dict.fromkeys(PAYMENT_ATTEMPT_EVENTS, map_payment_attempt),
)
