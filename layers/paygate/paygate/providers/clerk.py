"""Clerk Billing: wire models of its webhook payloads and the state change each event makes.

Clerk publishes two descriptions of these payloads that disagree in places: the TypeScript types of
``@clerk/backend`` (``packages/backend/src/api/resources/JSON.ts`` and ``Webhooks.ts`` in
``clerk/javascript``) and the webhooks OpenAPI spec (``webhooks/2025-04-15.yml`` in
``clerk/openapi-specs``). Each model below is their union, field by field (docs/reference/clerk-billing.md
cites both for every field): a field is required only where both require it, nullable where either
allows null. Timestamps are epoch milliseconds, money integer minor units with a currency code.

Unknown extra fields are tolerated; an unknown *status* is not - it fails validation and the event is
quarantined, rather than being guessed at. A field an event does not carry never erases what another
event stored (``SubscriptionItem.not_carried``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from pydantic import field_validator

from paygate.domain.catalog import Catalog
from paygate.domain.records import ItemStatus, SubscriptionItem
from paygate.domain.state import (
    Effect,
    Payer,
    PayerKind,
    RecordKind,
    StateRecord,
    snapshot_moment,
    snapshot_version,
    version_key,
)
from paygate.infra.signature import StandardWebhooks
from paygate.providers.base import Delivery, InvalidEvent, WebhookFamily, WireModel, parse

PROVIDER = "clerk"

#: ``Webhooks.ts`` ``BillingSubscriptionWebhookEvent``. ``subscription.past_due`` was the spelling of
#: Clerk's first typing and docs page (corrected to ``pastDue`` in @clerk/backend 2.12.0 and the same
#: day in the docs); nothing shows it on the wire, but it is accepted in case an early sender used it.
SUBSCRIPTION_EVENTS = (
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.pastDue",
    "subscription.past_due",
)
#: ``Webhooks.ts`` ``BillingSubscriptionItemWebhookEvent`` (``subscriptionItem.created`` is still in the
#: TypeScript union, though the webhooks spec dropped it). ``expired`` is an item *status*, not an event.
ITEM_EVENTS = (
    "subscriptionItem.created",
    "subscriptionItem.updated",
    "subscriptionItem.active",
    "subscriptionItem.canceled",
    "subscriptionItem.upcoming",
    "subscriptionItem.ended",
    "subscriptionItem.abandoned",
    "subscriptionItem.incomplete",
    "subscriptionItem.pastDue",
    "subscriptionItem.freeTrialEnding",
    "subscriptionItem.past_due",
)
#: ``Webhooks.ts`` ``BillingPaymentAttemptWebhookEvent``.
PAYMENT_ATTEMPT_EVENTS = ("paymentAttempt.created", "paymentAttempt.updated")
#: Spellings accepted although no current Clerk source defines them (see above).
EARLY_SPELLINGS = frozenset({"subscription.past_due", "subscriptionItem.past_due"})

#: ``JSON.ts`` ``BillingSubscriptionItemStatus``; the spec's item-event enum omits ``expired``.
ClerkStatus = Literal["active", "past_due", "canceled", "ended", "abandoned", "incomplete", "upcoming", "expired"]
PaymentAttemptStatus = Literal["pending", "paid", "failed"]


# -- wire models -----------------------------------------------------------------------------


class ClerkMoney(WireModel):
    """``BillingMoneyAmountJSON`` / spec ``BillingAmount``: every field required in both."""

    amount: int
    amount_formatted: str
    currency: str
    currency_symbol: str


class ClerkPayer(WireModel):
    """``BillingPayerJSON`` / spec ``BillingPayerEventPayload``."""

    id: str
    email: str
    image_url: str
    object: str | None = None
    instance_id: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organization_name: str | None = None
    created_at: int | None = None
    updated_at: int | None = None

    def payer(self) -> Payer:
        # Webhooks send "" for the side that does not apply (the Backend API sends null).
        if self.organization_id:
            return Payer(PayerKind.ORGANIZATION, self.organization_id)
        if self.user_id:
            return Payer(PayerKind.USER, self.user_id)
        raise InvalidEvent("data.payer", "the payer has neither user_id nor organization_id")


class ClerkPlan(WireModel):
    """The plan inside an item: the inline type of ``JSON.ts`` / spec ``BillingSubscriptionItemEventPlan``."""

    id: str
    slug: str
    name: str
    is_recurring: bool
    amount: int
    currency: str
    instance_id: str | None = None
    product_id: str | None = None
    description: str | None = None
    is_default: bool | None = None
    period: str | None = None
    interval: int | None = None
    has_base_fee: bool | None = None
    annual_monthly_amount: int | None = None
    publicly_visible: bool | None = None
    unit_prices: list[Any] | None = None


class ClerkSubscriptionItem(WireModel):
    """``BillingSubscriptionItemWebhookEventJSON`` / spec ``BillingSubscriptionItemEventPayload``.

    The two disagree on shape (the TypeScript type carries ``credit``, ``plan_period`` and the next
    payment as flat numbers; the spec carries ``is_free_trial``, ``interval``, ``subscription_id``
    and the item's own times): only what both require is required. Neither carries ``ended_at``.
    """

    id: str
    status: ClerkStatus
    period_start: int
    period_end: int | None
    plan: ClerkPlan | None = None
    plan_id: str | None = None
    payer: ClerkPayer | None = None
    object: str | None = None
    # @clerk/backend (JSON.ts) only
    credit: dict[str, Any] | None = None
    proration_date: str | None = None
    plan_period: str | None = None
    canceled_at: int | None = None
    past_due_at: int | None = None
    lifetime_paid: int | None = None
    next_payment_amount: int | None = None
    next_payment_date: int | None = None
    amount: ClerkMoney | None = None
    # the webhooks spec only
    is_free_trial: bool | None = None
    created_at: int | None = None
    updated_at: int | None = None
    interval: str | None = None
    subscription_id: str | None = None
    seats: dict[str, Any] | None = None


class ClerkSubscription(WireModel):
    """``BillingSubscriptionWebhookEventJSON`` / spec ``SubscriptionEventPayload``."""

    id: str
    status: ClerkStatus
    created_at: int
    updated_at: int
    payer_id: str
    payer: ClerkPayer
    items: list[ClerkSubscriptionItem]
    latest_payment_id: str | None
    payment_source_id: str | None
    object: str | None = None
    active_at: int | None = None
    canceled_at: int | None = None
    past_due_at: int | None = None
    ended_at: int | None = None


class ClerkPaymentTotals(WireModel):
    subtotal: ClerkMoney
    tax_total: ClerkMoney
    grand_total: ClerkMoney
    per_unit_totals: list[Any] | None = None


class ClerkPayee(WireModel):
    id: str
    gateway_type: str
    gateway_external_id: str
    gateway_status: str


class ClerkPaymentSource(WireModel):
    id: str
    gateway: str
    gateway_external_id: str
    payment_method: str
    status: str
    gateway_external_account_id: str | None = None
    card_type: str | None = None
    last4: str | None = None


class ClerkFailedReason(WireModel):
    code: str
    decline_code: str


class ClerkPaymentAttempt(WireModel):
    """``BillingPaymentAttemptWebhookEventJSON`` / spec ``PaymentAttemptEventPayload``."""

    id: str
    instance_id: str
    payment_id: str
    statement_id: str
    gateway_external_id: str
    status: PaymentAttemptStatus
    created_at: int
    updated_at: int
    billing_date: int
    charge_type: Literal["checkout", "recurring"]
    payee: ClerkPayee
    payer: ClerkPayer
    totals: ClerkPaymentTotals
    payment_source: ClerkPaymentSource
    subscription_items: list[ClerkSubscriptionItem]
    object: str | None = None
    invoice_id: str | None = None
    paid_at: int | None = None
    failed_at: int | None = None
    failed_reason: ClerkFailedReason | None = None


class _Envelope(WireModel):
    """Spec ``WebhookEventPayload`` (the TypeScript ``Webhook`` type has no ``timestamp``; the docs
    state it, in milliseconds)."""

    type: str
    object: str
    timestamp: int
    instance_id: str | None = None
    event_attributes: dict[str, Any] | None = None

    @field_validator("timestamp")
    @classmethod
    def _milliseconds(cls, value: int) -> int:
        # The docs say milliseconds; the spec's examples show seconds: keep milliseconds.
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
#: Statuses after which an item grants nothing again; their end time is when the item changed to them.
_ENDED = frozenset({ItemStatus.ENDED, ItemStatus.EXPIRED})


def subscription_item(
    item: ClerkSubscriptionItem,
    subscription_id: str | None,
    event_ts: int,
    subscription_past_due_at: int | None = None,
    *,
    becomes_past_due: bool = False,
) -> SubscriptionItem:
    """The normalized item record: what the gate reads to decide access.

    ``becomes_past_due``: the event reports the change to past due (``*.pastDue``)."""
    status = _STATUS[item.status]
    if status is ItemStatus.ACTIVE and item.is_free_trial:
        status = ItemStatus.TRIALING
    changed_at = item.updated_at or event_ts
    # What this event does not carry is not written, so what another event stored stays.
    not_carried = {"subscription_id"} if subscription_id is None else set()
    past_due_at = None
    if status is ItemStatus.PAST_DUE:
        # Clerk's own time when it sends one; else when the item changed to past due, which only the
        # event reporting that change tells: a later update of an item still past due (or a read of it)
        # keeps the stored time, or the grace period would start again with every update.
        past_due_at = item.past_due_at or subscription_past_due_at
        if past_due_at is None and becomes_past_due:
            past_due_at = changed_at
        elif past_due_at is None:
            not_carried.add("past_due_at")
    plan = item.plan
    sent = item.model_fields_set
    # The plan's price per period: the item's own amount, else its plan's.
    amount, currency = (item.amount.amount, item.amount.currency) if item.amount else (None, None)
    if amount is None and plan is not None:
        amount, currency = plan.amount, plan.currency
    # JSON.ts types both as required numbers, also for items that will not renew: 0 means none.
    next_at = item.next_payment_date or None
    if "next_payment_date" not in sent:
        not_carried |= {"next_payment_at", "next_payment_amount", "next_payment_currency"}
    if amount is None:
        not_carried |= {"amount", "currency"}
    if "plan" not in sent:
        not_carried |= {"plan_slug", "plan_name"} | ({"plan_id"} if "plan_id" not in sent else set())
    not_carried |= {name for name in ("canceled_at", "is_free_trial") if name not in sent}
    period = item.plan_period or item.interval or (plan.period if plan else None)
    if period is None:
        not_carried.add("plan_period")
    return SubscriptionItem(
        item_id=item.id,
        status=status,
        subscription_id=subscription_id,
        plan_id=item.plan_id or (plan.id if plan else None),
        plan_slug=plan.slug if plan else None,
        plan_name=plan.name if plan else None,
        plan_period=period,
        provider_status=item.status,
        period_start=item.period_start,
        period_end=item.period_end,
        is_free_trial=bool(item.is_free_trial),
        # Clerk keeps a canceled item's plan until the end of the period that was paid for.
        cancel_at_period_end=status is ItemStatus.CANCELED,
        canceled_at=item.canceled_at,
        past_due_at=past_due_at,
        # No webhook carries an item's end: it ended when it changed to ended (as for past due).
        ended_at=changed_at if status in _ENDED else None,
        amount=amount,
        currency=currency,
        next_payment_at=next_at,
        next_payment_amount=item.next_payment_amount if next_at else None,
        next_payment_currency=currency if next_at else None,
        changed_at=changed_at,
        not_carried=frozenset(not_carried),
    )


def _item_record(
    payer: Payer,
    item: ClerkSubscriptionItem,
    subscription_id: str | None,
    event: _Envelope,
    delivery: Delivery,
    subscription_past_due_at: int | None = None,
) -> StateRecord:
    body = subscription_item(
        item, subscription_id, event.timestamp, subscription_past_due_at, becomes_past_due=event.type in _PAST_DUE
    )
    return StateRecord(
        payer,
        RecordKind.ITEM,
        f"{PROVIDER}:{item.id}",
        version_key(body.changed_at or event.timestamp, event.timestamp, delivery.event_id),
        body,
    )


#: The events that report the change to past due.
_PAST_DUE = frozenset({"subscription.pastDue", "subscriptionItem.pastDue"})


def map_subscription(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(SubscriptionEvent, envelope)
    sub = event.data
    payer = sub.payer.payer()
    changed_at = sub.updated_at or event.timestamp
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
        # Optional in both sources, which describe it as set on standalone item events: without it
        # nothing says whose item this is.
        raise InvalidEvent("data.payer", "a subscription item event must carry its payer")
    payer = item.payer.payer()
    return Effect(payer, (_item_record(payer, item, item.subscription_id, event, delivery),))


def map_payment_attempt(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(PaymentAttemptEvent, envelope)
    attempt = event.data
    payer = attempt.payer.payer()
    total = attempt.totals.grand_total
    changed_at = attempt.updated_at or event.timestamp
    reason = attempt.failed_reason
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
            "failed_reason": (reason.decline_code or reason.code) if reason else None,
            "item_ids": [i.id for i in attempt.subscription_items],
            "plan_slugs": [i.plan.slug for i in attempt.subscription_items if i.plan],
            "created_at": attempt.created_at,
            "changed_at": changed_at,
        },
    )
    return Effect(payer, (record,))


# -- snapshots read from the Backend API ------------------------------------------------------
#
# The reconcile run reads items and subscriptions with Clerk's Backend API (``clerk-backend-api``'s
# ``CommerceSubscriptionItem`` and ``CommerceSubscription``, dumped to JSON by alias). They are shaped
# apart from the webhook's: the plan's price is a ``fee`` object, the next payment an object, the
# lifetime paid a money object, and they carry the item's own ``updated_at`` and ``ended_at``. Below they
# are renamed to the webhook item's fields and read by the same :func:`subscription_item`; the version
# is the moment of the read (:func:`~paygate.domain.state.snapshot_version`).

#: Fields of ``CommerceSubscriptionItem`` that the webhook item carries under the same name and meaning.
_API_ITEM_SAME = (
    "id",
    "object",
    "status",
    "plan_id",
    "plan_period",
    "is_free_trial",
    "period_start",
    "period_end",
    "canceled_at",
    "past_due_at",
    "amount",
    "created_at",
    "updated_at",
)


def api_item_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """A Backend API subscription item as the webhook item's fields (:class:`ClerkSubscriptionItem`)."""
    fields = {name: item[name] for name in _API_ITEM_SAME if name in item}
    if "plan" in item:
        plan = item["plan"]
        fee = (plan or {}).get("fee") or {}
        amount = item.get("amount") or {}
        fields["plan"] = plan and {
            **{k: plan[k] for k in ("id", "slug", "name", "is_recurring", "product_id", "description") if k in plan},
            **{k: plan[k] for k in ("is_default", "has_base_fee", "publicly_visible") if k in plan},
            # ``fee`` is null for a plan that charges nothing.
            "amount": fee.get("amount", 0),
            "currency": fee.get("currency") or amount.get("currency") or "",
        }
    if "next_payment" in item:
        # Null when nothing will be charged: the webhook's 0 for "none".
        next_payment = item["next_payment"] or {}
        fields["next_payment_date"] = next_payment.get("date") or 0
        fields["next_payment_amount"] = (next_payment.get("amount") or {}).get("amount") or 0
    return fields


def api_payer(payer: Mapping[str, Any] | None) -> Payer:
    """The payer of a Backend API object (``CommercePayerResponse``): its organization, else its user."""
    payer = payer or {}
    if payer.get("organization_id"):
        return Payer(PayerKind.ORGANIZATION, payer["organization_id"])
    if payer.get("user_id"):
        return Payer(PayerKind.USER, payer["user_id"])
    raise InvalidEvent("payer", "the payer has neither user_id nor organization_id")


def _snapshot_item_record(
    payer: Payer,
    item: Mapping[str, Any],
    subscription_id: str | None,
    read_at_ms: int,
    snapshot_id: str,
    subscription_past_due_at: int | None = None,
) -> StateRecord:
    wire = parse(ClerkSubscriptionItem, api_item_fields(item))
    version = snapshot_version(read_at_ms, snapshot_id)
    body = subscription_item(wire, subscription_id, snapshot_moment(read_at_ms), subscription_past_due_at)
    if item.get("ended_at") is not None and body.ended_at is not None:
        body = replace(body, ended_at=item["ended_at"])  # the API states it; a webhook never does
    return StateRecord(payer, RecordKind.ITEM, f"{PROVIDER}:{wire.id}", version, body)


def snapshot_item(item: Mapping[str, Any], read_at_ms: int, snapshot_id: str, payer: Payer | None = None) -> Effect:
    """One ``CommerceSubscriptionItem`` of ``GET /billing/subscription_items``: the item's state as read.
    It names no subscription, so the stored one is kept."""
    payer = payer or api_payer(item.get("payer"))
    return Effect(payer, (_snapshot_item_record(payer, item, None, read_at_ms, snapshot_id),))


def snapshot_subscription(subscription: Mapping[str, Any], payer: Payer, read_at_ms: int, snapshot_id: str) -> Effect:
    """A payer's ``CommerceSubscription`` (``GET /users/{id}/billing/subscription`` or the organization's):
    the subscription record and each of its items. Fields the API does not carry (``canceled_at``,
    ``ended_at``, ``latest_payment_id``) are not written, so what a webhook stored stays."""
    sub_id = subscription["id"]
    items = subscription.get("subscription_items") or []
    record = StateRecord(
        payer,
        RecordKind.SUBSCRIPTION,
        f"{PROVIDER}:{sub_id}",
        snapshot_version(read_at_ms, snapshot_id),
        {
            "subscription_id": sub_id,
            "status": subscription["status"],
            "active_at": subscription.get("active_at"),
            "past_due_at": subscription.get("past_due_at"),
            "created_at": subscription.get("created_at"),
            "item_ids": [item["id"] for item in items],
            "changed_at": subscription.get("updated_at") or read_at_ms,
        },
    )
    past_due_at = subscription.get("past_due_at")
    records = [_snapshot_item_record(payer, i, sub_id, read_at_ms, snapshot_id, past_due_at) for i in items]
    return Effect(payer, (record, *records))


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
