"""Dodo Payments: wire models of its webhook payloads and the state change each event makes.

Every field paygate reads is declared here with the name, type, requiredness and nullability of the
``dodopayments`` Python SDK's own webhook types (``dodopayments/types/*_webhook_event.py``; the version
is pinned in requirements-dev.txt, and tests/contract compares each model with the SDK's, field by
field). Fields paygate does not read are tolerated, not declared. ISO 8601 UTC timestamps are stored
as epoch milliseconds, money as integer minor units with a currency code, credit quantities as exact
decimal strings. An unknown *status* fails validation and the event is quarantined.

Dodo objects carry no ``updated_at``, so versions are ordered by the envelope's ``timestamp`` (when
the event happened). A retry delivers the object's state *at delivery time* under the original
timestamp; ordering by event time keeps the newest event's state whatever order they arrive in.

Who pays: checkout metadata ``organization_id`` (wins) or ``user_id`` names the payer and links the
Dodo customer to it; an event without them is kept under the customer (see :mod:`paygate.domain.links`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

from paygate.domain.access import DAY_MS
from paygate.domain.catalog import Catalog
from paygate.domain.credits import SNAPSHOT_SOURCE, BalanceFigure, LowBalanceAlert, is_decimal, merge_balance
from paygate.domain.links import customer_payer, link_record
from paygate.domain.records import CreditBalance, ItemStatus, SubscriptionItem
from paygate.domain.state import (
    Effect,
    MergedRecord,
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

PROVIDER = "dodo"

#: The checkout / subscription metadata keys that name who pays (see docs/dodo.md).
METADATA_USER_ID = "user_id"
METADATA_ORGANIZATION_ID = "organization_id"

#: The event types of the SDK's ``WebhookEventType`` that paygate applies, by family.
SUBSCRIPTION_EVENTS = (
    "subscription.active",
    "subscription.updated",
    "subscription.on_hold",
    "subscription.renewed",
    "subscription.plan_changed",
    "subscription.cancelled",
    "subscription.failed",
    "subscription.expired",
    "subscription.paused",
    "subscription.unpaused",
    "subscription.past_due",
    "subscription.update_payment_method",
)
DUNNING_EVENTS = ("dunning.started", "dunning.recovered")
PAYMENT_EVENTS = ("payment.succeeded", "payment.failed", "payment.processing", "payment.cancelled")
REFUND_EVENTS = ("refund.succeeded", "refund.failed")
DISPUTE_EVENTS = (
    "dispute.opened",
    "dispute.challenged",
    "dispute.accepted",
    "dispute.cancelled",
    "dispute.expired",
    "dispute.won",
    "dispute.lost",
)
CREDIT_LEDGER_EVENTS = (
    "credit.added",
    "credit.deducted",
    "credit.expired",
    "credit.rolled_over",
    "credit.rollover_forfeited",
    "credit.overage_charged",
    "credit.overage_reset",
    "credit.manual_adjustment",
)
CREDIT_BALANCE_LOW_EVENTS = ("credit.balance_low",)

#: The SDK's other event types, kept and answered ``ignored`` when delivered, and why.
IGNORED_EVENTS: dict[str, str] = {
    **dict.fromkeys(
        ("license_key.created",),
        "a license key is Dodo's own entitlement for a product; paygate grants plans and features from the catalog",
    ),
    **dict.fromkeys(
        (
            "entitlement_grant.created",
            "entitlement_grant.delivered",
            "entitlement_grant.failed",
            "entitlement_grant.revoked",
        ),
        "Dodo's delivery of its own integrations (files, license keys, Discord, GitHub ...) to a customer; "
        "paygate's features come from the plans the catalog maps products to",
    ),
    **dict.fromkeys(
        ("abandoned_checkout.detected", "abandoned_checkout.recovered"),
        "no payment was taken for an abandoned checkout; a recovery arrives as payment and subscription events",
    ),
    **dict.fromkeys(
        ("payout.created", "payout.on_hold", "payout.in_progress", "payout.failed", "payout.success"),
        "a payout moves the merchant's balance to the merchant's bank: it says nothing about a payer",
    ),
}

SubscriptionStatus = Literal["pending", "active", "on_hold", "paused", "cancelled", "failed", "expired", "past_due"]
IntentStatus = Literal[
    "succeeded",
    "failed",
    "cancelled",
    "processing",
    "requires_customer_action",
    "requires_merchant_action",
    "requires_payment_method",
    "requires_confirmation",
    "requires_capture",
    "partially_captured",
    "partially_captured_and_capturable",
]
RefundStatus = Literal["succeeded", "failed", "pending", "review"]
DisputeStatus = Literal[
    "dispute_opened",
    "dispute_expired",
    "dispute_accepted",
    "dispute_cancelled",
    "dispute_challenged",
    "dispute_won",
    "dispute_lost",
]
DisputeStage = Literal["pre_dispute", "dispute", "pre_arbitration"]
TimeInterval = Literal["Day", "Week", "Month", "Year"]
LedgerEntryType = Literal[
    "credit_added",
    "credit_deducted",
    "credit_expired",
    "credit_rolled_over",
    "rollover_forfeited",
    "overage_charged",
    "overage_reset",
    "auto_top_up",
    "manual_adjustment",
    "refund",
]
CancellationFeedback = Literal[
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "low_quality",
    "too_complex",
    "other",
]
ChargeType = Literal["new", "renewal", "plan_change", "on_demand"]
DunningStatus = Literal["recovering", "recovered", "exhausted"]
DunningTrigger = Literal["on_hold", "cancelled", "past_due"]
#: The SDK's ``Metadata``: string keys to strings, numbers or booleans.
Metadata = dict[str, str | int | float | bool]


def _decimal_string(value: str) -> str:
    if not is_decimal(value):
        raise ValueError("must be a decimal number in a string")
    return value


#: A credit quantity: an exact decimal string, kept as sent.
Credits = Annotated[str, AfterValidator(_decimal_string)]


# -- wire models -----------------------------------------------------------------------------


class DodoCustomer(WireModel):
    """``CustomerLimitedDetails``."""

    customer_id: str
    email: str
    name: str
    metadata: Metadata | None = None
    phone_number: str | None = None


class DodoSubscription(WireModel):
    """The ``data`` of ``subscription.*`` (``Subscription`` plus the webhook's ``past_due_ends_at`` and
    ``payment_id``)."""

    subscription_id: str
    status: SubscriptionStatus
    product_id: str
    quantity: int
    customer: DodoCustomer
    metadata: Metadata
    #: The SDK types it as an ISO 4217 ``Literal``; a code paygate does not know still applies.
    currency: str
    recurring_pre_tax_amount: int
    tax_inclusive: bool
    payment_frequency_count: int
    payment_frequency_interval: TimeInterval
    subscription_period_count: int
    subscription_period_interval: TimeInterval
    previous_billing_date: datetime
    next_billing_date: datetime
    created_at: datetime
    cancel_at_next_billing_date: bool
    on_demand: bool
    trial_period_days: int
    has_payment_method: bool
    cancelled_at: datetime | None = None
    cancellation_feedback: CancellationFeedback | None = None
    cancellation_comment: str | None = None
    expires_at: datetime | None = None
    paused_at: datetime | None = None
    trial_amount: int | None = None
    past_due_ends_at: datetime | None = None
    payment_method_id: str | None = None
    payment_id: str | None = None


class DodoRefundSummary(WireModel):
    """``RefundListItem``: one entry of a payment's ``refunds``."""

    refund_id: str
    payment_id: str
    status: RefundStatus
    is_partial: bool
    created_at: datetime
    amount: int | None = None
    currency: str | None = None


class DodoServicePeriod(WireModel):
    """``SubscriptionServicePeriod``: what a succeeded payment paid for."""

    subscription_id: str
    starts_at: datetime
    ends_at: datetime


class DodoPayment(WireModel):
    """``Payment``."""

    payment_id: str
    customer: DodoCustomer
    metadata: Metadata
    total_amount: int
    currency: str
    settlement_amount: int
    settlement_currency: str
    created_at: datetime
    refunds: list[DodoRefundSummary]
    retry_attempt: int
    is_update_payment_method: bool
    #: The subscriptions this payment is for; ``subscription_id`` is null when there are several.
    subscription_ids: list[str]
    is_multi_subscription: bool
    service_periods: list[DodoServicePeriod]
    status: IntentStatus | None = None
    subscription_id: str | None = None
    tax: int | None = None
    settlement_tax: int | None = None
    updated_at: datetime | None = None
    refund_status: Literal["partial", "full"] | None = None
    charge_type: ChargeType | None = None
    error_code: str | None = None
    error_message: str | None = None
    payment_method: str | None = None
    payment_method_type: str | None = None
    card_last_four: str | None = None
    card_network: str | None = None
    checkout_session_id: str | None = None
    invoice_id: str | None = None


class DodoRefund(WireModel):
    """``Refund``."""

    refund_id: str
    payment_id: str
    status: RefundStatus
    is_partial: bool
    created_at: datetime
    customer: DodoCustomer
    metadata: Metadata
    amount: int | None = None
    currency: str | None = None
    reason: str | None = None


class DodoDispute(WireModel):
    """``Dispute`` (the webhook's; the API's ``GetDispute`` adds ``customer`` and ``reason``)."""

    dispute_id: str
    payment_id: str
    #: A string "to accommodate precision": integer minor units.
    amount: str
    currency: str
    dispute_status: DisputeStatus
    dispute_stage: DisputeStage
    created_at: datetime
    is_resolved_by_rdr: bool | None = None
    remarks: str | None = None


class DodoCreditLedgerEntry(WireModel):
    """``CreditLedgerEntry``. Quantities are ``str`` in the SDK; paygate also requires them decimal,
    since the balance is kept exact."""

    id: str
    credit_entitlement_id: str
    customer_id: str
    transaction_type: LedgerEntryType
    amount: Credits
    is_credit: bool
    balance_before: Credits
    balance_after: Credits
    overage_before: Credits
    overage_after: Credits
    created_at: datetime
    metadata: Metadata
    grant_id: str | None = None
    description: str | None = None
    reference_type: str | None = None
    reference_id: str | None = None


class DodoCreditBalanceLow(WireModel):
    """The ``data`` of ``credit.balance_low``."""

    customer_id: str
    subscription_id: str
    credit_entitlement_id: str
    credit_entitlement_name: str
    available_balance: Credits
    subscription_credits_amount: Credits
    threshold_percent: int
    threshold_amount: Credits


class DodoCreditBalance(WireModel):
    """``CustomerCreditBalance`` (``types/credit_entitlements/customer_credit_balance.py``): one customer's
    balance of one credit entitlement, as the API states it now (read by reconcile, never delivered)."""

    id: str
    credit_entitlement_id: str
    customer_id: str
    balance: Credits
    overage: Credits
    created_at: datetime
    updated_at: datetime
    last_transaction_at: datetime | None = None


class DodoDunning(WireModel):
    """The ``data`` of ``dunning.started`` / ``dunning.recovered`` (Dodo's docs: a "DunningAttempt")."""

    subscription_id: str
    customer_id: str
    status: DunningStatus
    trigger_state: DunningTrigger
    created_at: datetime
    payment_id: str | None = None


class _Envelope(WireModel):
    business_id: str
    type: str
    timestamp: datetime


class SubscriptionEvent(_Envelope):
    data: DodoSubscription


class PaymentEvent(_Envelope):
    data: DodoPayment


class RefundEvent(_Envelope):
    data: DodoRefund


class DisputeEvent(_Envelope):
    data: DodoDispute


class CreditLedgerEvent(_Envelope):
    data: DodoCreditLedgerEntry


class CreditBalanceLowEvent(_Envelope):
    data: DodoCreditBalanceLow


class DunningEvent(_Envelope):
    data: DodoDunning


# -- who pays --------------------------------------------------------------------------------


def payer_from_metadata(metadata: Mapping[str, Any] | None, where: str) -> Payer | None:
    """The payer the application named in checkout metadata; the organization wins, as in Clerk."""
    ids: dict[str, str] = {}
    for key in (METADATA_ORGANIZATION_ID, METADATA_USER_ID):
        value = (metadata or {}).get(key)
        if value is None or value == "":
            continue
        # Newer senders may widen metadata values to numbers; an id is never a boolean or an object.
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidEvent(f"{where}.{key}", "must be a string id")
        ids[key] = str(value)
    if METADATA_ORGANIZATION_ID in ids:
        return Payer(PayerKind.ORGANIZATION, ids[METADATA_ORGANIZATION_ID])
    if METADATA_USER_ID in ids:
        return Payer(PayerKind.USER, ids[METADATA_USER_ID])
    return None


def _owner(customer_id: str, metadata: Mapping[str, Any] | None, where: str, version: str) -> tuple[Payer, list]:
    """The payer to file under, and the link records to write (customer -> payer) when metadata names it."""
    payer = payer_from_metadata(metadata, where)
    if payer is None:
        return customer_payer(customer_id), []
    links = [
        link_record(PROVIDER, customer_id, payer, version, customer_id=customer_id),
        # The payer's own copy, so the account page can list its provider customers.
        StateRecord(
            payer, RecordKind.CUSTOMER_LINK, f"{PROVIDER}:{customer_id}", version, {"customer_id": customer_id}
        ),
    ]
    return payer, links


# -- mapping to state ------------------------------------------------------------------------


def ms(moment: datetime) -> int:
    """Epoch milliseconds; a timestamp without an offset is UTC, as Dodo sends every time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Whole parts, not float seconds, which can round a microsecond timestamp the wrong way.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _opt_ms(moment: datetime | None) -> int | None:
    return None if moment is None else ms(moment)


_STATUS = {
    "pending": ItemStatus.PENDING,
    "active": ItemStatus.ACTIVE,
    "on_hold": ItemStatus.ON_HOLD,
    "paused": ItemStatus.PAUSED,
    "cancelled": ItemStatus.CANCELED,
    "failed": ItemStatus.FAILED,
    "expired": ItemStatus.EXPIRED,
    "past_due": ItemStatus.PAST_DUE,
}


def plan_period(count: int, interval: str) -> str:
    unit = interval.lower()
    return unit if count == 1 else f"{count} {unit}s"


def subscription_item(sub: DodoSubscription, event_ts: int, catalog: Catalog) -> SubscriptionItem:
    """The normalized item record (the same type as Clerk's): what the gate reads to decide access."""
    status = _STATUS[sub.status]
    created = ms(sub.created_at)
    period_start = ms(sub.previous_billing_date)
    period_end = ms(sub.next_billing_date)
    trial_ends = created + sub.trial_period_days * DAY_MS
    in_trial = sub.trial_period_days > 0 and event_ts < trial_ends
    if status is ItemStatus.ACTIVE and in_trial:
        status = ItemStatus.TRIALING
    past_due_at = None
    if status in (ItemStatus.ON_HOLD, ItemStatus.PAST_DUE):
        # Dodo sends no "on hold since". A failed renewal was due at next_billing_date (not advanced
        # while on hold), which every later event of the same hold repeats; a failed mid-period
        # plan-change charge is earlier than that, and then the event's own time is the best fact.
        past_due_at = min(period_end, event_ts)
    canceled_at = _opt_ms(sub.cancelled_at)
    ended_at = None
    if status is ItemStatus.CANCELED:
        ended_at = period_end if sub.cancel_at_next_billing_date else (canceled_at or event_ts)
    elif status is ItemStatus.EXPIRED:
        ended_at = _opt_ms(sub.expires_at) or event_ts
    elif status is ItemStatus.FAILED:
        ended_at = event_ts
    slug = catalog.plan_for_product(sub.product_id)
    plan = catalog.plans.get(slug) if slug else None
    renews = status in (ItemStatus.ACTIVE, ItemStatus.TRIALING) and not sub.cancel_at_next_billing_date
    return SubscriptionItem(
        item_id=sub.subscription_id,  # one product per Dodo subscription
        status=status,
        subscription_id=sub.subscription_id,
        plan_id=sub.product_id,
        # None for a product the catalog does not map: the record is kept, it grants no plan.
        plan_slug=slug,
        plan_name=plan.name if plan else None,
        plan_period=plan_period(sub.payment_frequency_count, sub.payment_frequency_interval),
        provider_status=sub.status,
        period_start=period_start,
        period_end=period_end,
        is_free_trial=in_trial and not sub.trial_amount,
        cancel_at_period_end=sub.cancel_at_next_billing_date,
        canceled_at=canceled_at,
        past_due_at=past_due_at,
        ended_at=ended_at,
        amount=sub.recurring_pre_tax_amount,  # per renewal, before tax, minor units
        currency=sub.currency,
        next_payment_at=period_end if renews else None,
        changed_at=event_ts,
        customer_id=sub.customer.customer_id,
        quantity=sub.quantity,
        past_due_ends_at=_opt_ms(sub.past_due_ends_at),
    )


def map_subscription(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(SubscriptionEvent, envelope)
    sub = event.data
    event_ts = ms(event.timestamp)
    version = version_key(event_ts, event_ts, delivery.event_id)
    payer, links = _owner(sub.customer.customer_id, sub.metadata, "data.metadata", version)
    body = subscription_item(sub, event_ts, catalog)
    item = StateRecord(payer, RecordKind.ITEM, f"{PROVIDER}:{sub.subscription_id}", version, body)
    subscription = StateRecord(
        payer,
        RecordKind.SUBSCRIPTION,
        f"{PROVIDER}:{sub.subscription_id}",
        version,
        {
            "subscription_id": sub.subscription_id,
            "status": sub.status,
            "product_id": sub.product_id,
            "plan_slug": body.plan_slug,
            "customer_id": sub.customer.customer_id,
            "quantity": sub.quantity,
            "created_at": ms(sub.created_at),
            "previous_billing_date": body.period_start,
            "next_billing_date": body.period_end,
            "cancel_at_next_billing_date": sub.cancel_at_next_billing_date,
            "cancelled_at": body.canceled_at,
            "cancellation_feedback": sub.cancellation_feedback,
            # Not `expires_at`: that name is the table's TTL attribute (seconds), reserved for the inbox.
            "term_ends_at": _opt_ms(sub.expires_at),
            "trial_period_days": sub.trial_period_days,
            "recurring_pre_tax_amount": sub.recurring_pre_tax_amount,
            "currency": sub.currency,
            "item_ids": [sub.subscription_id],
            "changed_at": event_ts,
        },
    )
    return Effect(payer, (subscription, item, *links))


def map_payment(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(PaymentEvent, envelope)
    pay = event.data
    event_ts = ms(event.timestamp)
    changed_at = _opt_ms(pay.updated_at) or event_ts
    version = version_key(changed_at, event_ts, delivery.event_id)
    customer_id = pay.customer.customer_id
    payer, links = _owner(customer_id, pay.metadata, "data.metadata", version)
    created_at = ms(pay.created_at)
    # The SDK: subscription_id is null for a payment of several subscriptions; subscription_ids lists them.
    subscription_ids = list(pay.subscription_ids) or ([pay.subscription_id] if pay.subscription_id else [])
    payment = StateRecord(
        payer,
        RecordKind.PAYMENT,
        f"{PROVIDER}:{pay.payment_id}",
        version,
        {
            "payment_id": pay.payment_id,
            "status": pay.status,
            "subscription_id": pay.subscription_id,
            "subscription_ids": subscription_ids,
            "customer_id": customer_id,
            "amount": pay.total_amount,  # charged, tax included, minor units
            "tax": pay.tax,
            "currency": pay.currency,
            "settlement_amount": pay.settlement_amount,
            "settlement_currency": pay.settlement_currency,
            "charge_type": pay.charge_type,
            "refund_status": pay.refund_status,
            "refund_ids": [r.refund_id for r in pay.refunds],
            "error_code": pay.error_code,
            "error_message": pay.error_message,
            "payment_method": pay.payment_method,
            "card_last_four": pay.card_last_four,
            "card_network": pay.card_network,
            "checkout_session_id": pay.checkout_session_id,
            "invoice_id": pay.invoice_id,
            "retry_attempt": pay.retry_attempt,
            "is_update_payment_method": pay.is_update_payment_method,
            "created_at": created_at,
            "changed_at": changed_at,
        },
    )
    # Refunds and disputes name only the payment: link it to its customer, with what it paid for.
    payment_link = link_record(
        PROVIDER,
        pay.payment_id,
        customer_payer(customer_id),
        version,
        inherit={
            "subscription_id": pay.subscription_id,
            "subscription_ids": subscription_ids,
            "payment_at": created_at,
            # Partial refunds that add up to it (in its currency) take back the whole payment.
            "payment_amount": pay.total_amount,
            "payment_currency": pay.currency,
        },
        customer_id=customer_id,
    )
    paid: list[StateRecord] = []
    # A charge made only to change the card (the SDK: "a zero-/setup-amount charge") pays for nothing:
    # it must not restore what a refund or a lost dispute ended, nor recover a failed renewal.
    pays_for_the_subscription = not pay.is_update_payment_method and pay.total_amount > 0
    if pay.status == "succeeded" and pays_for_the_subscription:
        # Money taken back later is compared with the newest payment that succeeded for the subscription.
        paid_version = version_key(created_at, event_ts, delivery.event_id)
        paid = [
            StateRecord(
                payer,
                RecordKind.PAID,
                f"{PROVIDER}:{subscription_id}",
                paid_version,
                {"subscription_id": subscription_id, "last_paid_at": created_at, "payment_id": pay.payment_id},
            )
            for subscription_id in subscription_ids
        ]
    return Effect(payer, (payment, payment_link, *paid, *links))


def map_refund(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(RefundEvent, envelope)
    refund = event.data
    event_ts = ms(event.timestamp)
    # Filed through the payment's link: its customer's payer, and what the payment paid for.
    payer = customer_payer(refund.payment_id)
    record = StateRecord(
        payer,
        RecordKind.REFUND,
        f"{PROVIDER}:{refund.refund_id}",
        version_key(event_ts, event_ts, delivery.event_id),
        {
            "refund_id": refund.refund_id,
            "payment_id": refund.payment_id,
            **_FOLLOWS_ITS_PAYMENT,
            "customer_id": refund.customer.customer_id,
            "status": refund.status,
            "amount": refund.amount,
            "currency": refund.currency,
            "is_partial": refund.is_partial,
            "reason": refund.reason,
            "created_at": ms(refund.created_at),
            "changed_at": event_ts,
        },
    )
    return Effect(payer, (record,))


#: Facts a refund or dispute learns from its payment's link (see paygate.domain.links).
_FOLLOWS_ITS_PAYMENT = {
    "subscription_id": None,
    "subscription_ids": None,
    "payment_at": None,
    "payment_amount": None,
    "payment_currency": None,
}


def dispute_amount(amount: str) -> int:
    """Integer minor units from Dodo's string amount; anything fractional is refused."""
    text = amount.strip()
    if not text.lstrip("-").isascii() or not text.lstrip("-").isdigit():
        raise InvalidEvent("data.amount", "must be a whole number of minor units")
    return int(text)


def map_dispute(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(DisputeEvent, envelope)
    dispute = event.data
    event_ts = ms(event.timestamp)
    payer = customer_payer(dispute.payment_id)
    record = StateRecord(
        payer,
        RecordKind.DISPUTE,
        f"{PROVIDER}:{dispute.dispute_id}",
        version_key(event_ts, event_ts, delivery.event_id),
        {
            "dispute_id": dispute.dispute_id,
            "payment_id": dispute.payment_id,
            **_FOLLOWS_ITS_PAYMENT,
            "status": dispute.dispute_status,
            "stage": dispute.dispute_stage,
            "amount": dispute_amount(dispute.amount),
            "currency": dispute.currency,
            "is_resolved_by_rdr": dispute.is_resolved_by_rdr,
            "remarks": dispute.remarks,
            "created_at": ms(dispute.created_at),
            # When the money was taken back, if it was: the event that says so.
            "changed_at": event_ts,
        },
    )
    return Effect(payer, (record,))


def map_dunning(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    """``dunning.started`` / ``dunning.recovered``: when collection of a failed payment began and ended.

    They say more than the subscription events where those are late or missing: a recovery (the
    customer's new payment method was charged) restores access at once, before ``subscription.active``.
    """
    event = parse(DunningEvent, envelope)
    dunning = event.data
    event_ts = ms(event.timestamp)
    at = ms(dunning.created_at)
    payer = customer_payer(dunning.customer_id)
    fields: dict[str, Any] = {
        "subscription_id": dunning.subscription_id,
        "status": dunning.status,
        "trigger_state": dunning.trigger_state,
        "payment_id": dunning.payment_id,
        "changed_at": event_ts,
    }
    # Each event sets only its own time, so a recovery never erases when the attempt started.
    if dunning.status == "recovered":
        fields["recovered_at"] = event_ts
    else:
        fields["started_at"] = at
    record = StateRecord(
        payer,
        RecordKind.DUNNING,
        f"{PROVIDER}:{dunning.subscription_id}",
        version_key(event_ts, event_ts, delivery.event_id),
        fields,
    )
    return Effect(payer, (record,))


def _balance_record(payer: Payer, entitlement_id: str, **update: Any) -> MergedRecord:
    # Every source of a balance (a ledger entry, an alert, a read of the API) goes through this merge.
    """The entitlement's balance, merged with what is stored (see :func:`merge_balance`)."""

    def merge(current: CreditBalance | None) -> tuple[str, CreditBalance] | None:
        merged = merge_balance(current, credit_entitlement_id=entitlement_id, **update)
        return None if merged is None else (merged.version, merged)

    return MergedRecord(
        payer, RecordKind.CREDIT_BALANCE, f"{PROVIDER}:{entitlement_id}", merge, CreditBalance.from_fields
    )


def map_credit_ledger(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(CreditLedgerEvent, envelope)
    entry = event.data
    event_ts = ms(event.timestamp)
    created = ms(entry.created_at)
    version = version_key(created, event_ts, delivery.event_id)
    payer, links = _owner(entry.customer_id, entry.metadata, "data.metadata", version)
    line = StateRecord(
        payer,
        RecordKind.CREDIT_LEDGER,
        f"{PROVIDER}:{entry.id}",
        version,
        {
            "entry_id": entry.id,
            "event_type": event.type,
            "credit_entitlement_id": entry.credit_entitlement_id,
            "customer_id": entry.customer_id,
            "grant_id": entry.grant_id,
            "transaction_type": entry.transaction_type,
            "amount": entry.amount,
            "is_credit": entry.is_credit,
            "balance_before": entry.balance_before,
            "balance_after": entry.balance_after,
            "overage_before": entry.overage_before,
            "overage_after": entry.overage_after,
            "description": entry.description,
            "reference_type": entry.reference_type,
            "reference_id": entry.reference_id,
            "created_at": created,
            "changed_at": created,
        },
    )
    figure = BalanceFigure(entry.balance_after, entry.overage_after, created, version, entry.id)
    balance = _balance_record(payer, entry.credit_entitlement_id, customer_id=entry.customer_id, figure=figure)
    return Effect(payer, (line, balance, *links))


def map_credit_balance_low(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    event = parse(CreditBalanceLowEvent, envelope)
    low = event.data
    event_ts = ms(event.timestamp)  # the alert has no time of its own
    alert = LowBalanceAlert(
        available_balance=low.available_balance,
        threshold_amount=low.threshold_amount,
        threshold_percent=low.threshold_percent,
        subscription_credits_amount=low.subscription_credits_amount,
        subscription_id=low.subscription_id,
        at_ms=event_ts,
        version=version_key(event_ts, event_ts, delivery.event_id),
    )
    payer = customer_payer(low.customer_id)
    balance = _balance_record(
        payer,
        low.credit_entitlement_id,
        customer_id=low.customer_id,
        alert=alert,
        credit_entitlement_name=low.credit_entitlement_name,
    )
    return Effect(payer, (balance,))


# -- snapshots read from the API ------------------------------------------------------------
#
# The reconcile run reads subscriptions, payments, refunds, disputes and credit balances with the
# ``dodopayments`` SDK and hands each object (dumped to JSON) to the webhook's own mapper (a balance, which
# no webhook carries whole, to the merge every credit event goes through), as the ``data`` of an event stamped
# with the moment of the read: Dodo objects carry no ``updated_at``, and a read includes every change
# made before it (see :func:`~paygate.domain.state.snapshot_version`).

#: Fields the list endpoints' models (``SubscriptionListResponse``) do not carry; left as stored.
_NOT_LISTED = {"expires_at": "term_ends_at", "cancellation_feedback": "cancellation_feedback"}


def _snapshot_envelope(event_type: str, data: Mapping[str, Any], moment: int) -> dict[str, Any]:
    at = datetime.fromtimestamp(moment / 1000, UTC).isoformat()
    return {"business_id": str(data.get("business_id") or ""), "type": event_type, "timestamp": at, "data": data}


def snapshot_subscription(item: Mapping[str, Any], read_at_ms: int, snapshot_id: str, catalog: Catalog) -> Effect:
    """A subscription read from ``GET /subscriptions`` (or ``/subscriptions/{id}``) as the state it is in.

    What the read cannot know is not written, so what a webhook stored stays: the fields the list model
    lacks, and the times the webhook mapper takes from the event when Dodo states none (when a failed or
    expired subscription ended, when a mid-period charge failed) - the read's moment is not that time.
    """
    moment = snapshot_moment(read_at_ms)
    effect = map_subscription(
        _snapshot_envelope("subscription.updated", item, moment), Delivery(snapshot_id, moment // 1000), catalog
    )
    records = []
    for record in effect.records:
        if record.kind is RecordKind.ITEM and isinstance(record.body, SubscriptionItem):
            body = record.body
            guessed = {name for name in ("past_due_at", "ended_at") if getattr(body, name) == moment}
            if "past_due_ends_at" not in item:
                guessed.add("past_due_ends_at")
            record = replace(record, body=replace(body, not_carried=body.not_carried | guessed))
        elif record.kind is RecordKind.SUBSCRIPTION and isinstance(record.body, Mapping):
            unlisted = {stored for wire, stored in _NOT_LISTED.items() if wire not in item}
            record = replace(record, body={k: v for k, v in record.body.items() if k not in unlisted})
        records.append(record)
    return replace(effect, records=tuple(records))


def snapshot_payment(payment: Mapping[str, Any], read_at_ms: int, snapshot_id: str, catalog: Catalog) -> Effect:
    """A ``Payment`` read from ``GET /payments/{id}`` (the list model lacks what the record keeps)."""
    moment = snapshot_moment(read_at_ms)
    return map_payment(
        _snapshot_envelope("payment.snapshot", payment, moment), Delivery(snapshot_id, moment // 1000), catalog
    )


def snapshot_refund(refund: Mapping[str, Any], read_at_ms: int, snapshot_id: str, catalog: Catalog) -> Effect:
    """A ``Refund`` read from ``GET /refunds/{id}`` (the list model lacks its customer)."""
    moment = snapshot_moment(read_at_ms)
    return map_refund(
        _snapshot_envelope("refund.snapshot", refund, moment), Delivery(snapshot_id, moment // 1000), catalog
    )


def snapshot_dispute(dispute: Mapping[str, Any], read_at_ms: int, snapshot_id: str, catalog: Catalog) -> Effect:
    """A dispute read from ``GET /disputes`` (``DisputeListResponse`` carries every field the record keeps)."""
    moment = snapshot_moment(read_at_ms)
    effect = map_dispute(
        _snapshot_envelope("dispute.snapshot", dispute, moment), Delivery(snapshot_id, moment // 1000), catalog
    )
    if "remarks" in dispute:
        return effect
    # The list model has no remarks: what a webhook stored stays.
    return replace(
        effect,
        records=tuple(replace(r, body={k: v for k, v in r.body.items() if k != "remarks"}) for r in effect.records),
    )


def snapshot_credit_balance(
    balance: Mapping[str, Any],
    read_at_ms: int,
    snapshot_id: str,
    catalog: Catalog,
    *,
    credit_entitlement_name: str | None = None,
) -> Effect:
    """A ``CustomerCreditBalance`` read from ``GET /credit-entitlements/{id}/balances`` as a balance figure.

    Merged like a ledger entry's ``balance_after`` (the newest figure wins), versioned by the moment of
    the read: a ledger entry created before it is included in the figure read, one created after it
    sorts after it and wins. The balance names only its customer: it is filed through the customer's
    link, as a low-balance alert is.
    """
    read = parse(DodoCreditBalance, balance)
    # When the balance last changed; the read's moment is only when it was seen.
    at = read.last_transaction_at or read.updated_at
    figure = BalanceFigure(
        read.balance, read.overage, ms(at), snapshot_version(read_at_ms, snapshot_id), SNAPSHOT_SOURCE
    )
    payer = customer_payer(read.customer_id)
    record = _balance_record(
        payer,
        read.credit_entitlement_id,
        customer_id=read.customer_id,
        figure=figure,
        credit_entitlement_name=credit_entitlement_name,
    )
    return Effect(payer, (record,))


def snapshot_credit_ledger_entry(
    entry: Mapping[str, Any], read_at_ms: int, snapshot_id: str, catalog: Catalog
) -> Effect:
    """A ``CreditLedgerEntry`` read from ``GET /credit-entitlements/{id}/balances/{customer_id}/ledger``.

    An entry never changes once written, so the read states exactly what its ``credit.*`` webhook did;
    it is mapped by the webhook's own mapper. Its ``balance_after`` sorts before a balance read later
    (an entry's figure is versioned by when it was created). The webhook's event type is not in it:
    what a webhook stored stays.
    """
    moment = snapshot_moment(read_at_ms)
    effect = map_credit_ledger(
        _snapshot_envelope("credit.snapshot", entry, moment), Delivery(snapshot_id, moment // 1000), catalog
    )
    records = tuple(
        replace(r, body={k: v for k, v in r.body.items() if k != "event_type"})
        if isinstance(r, StateRecord) and r.kind is RecordKind.CREDIT_LEDGER
        else r
        for r in effect.records
    )
    return replace(effect, records=records)


#: Dodo signs with Standard Webhooks (``webhook-*`` headers); the ``webhook-id`` is the event id.
SCHEME = StandardWebhooks()

SUBSCRIPTIONS = WebhookFamily(
    name="dodo.subscriptions",
    provider=PROVIDER,
    scheme=SCHEME,
    mappers={**dict.fromkeys(SUBSCRIPTION_EVENTS, map_subscription), **dict.fromkeys(DUNNING_EVENTS, map_dunning)},
)

PAYMENTS = WebhookFamily(
    name="dodo.payments",
    provider=PROVIDER,
    scheme=SCHEME,
    mappers={
        **dict.fromkeys(PAYMENT_EVENTS, map_payment),
        **dict.fromkeys(REFUND_EVENTS, map_refund),
        **dict.fromkeys(DISPUTE_EVENTS, map_dispute),
    },
)

CREDITS = WebhookFamily(
    name="dodo.credits",
    provider=PROVIDER,
    scheme=SCHEME,
    mappers={
        **dict.fromkeys(CREDIT_LEDGER_EVENTS, map_credit_ledger),
        **dict.fromkeys(CREDIT_BALANCE_LOW_EVENTS, map_credit_balance_low),
    },
)
