"""The records the domain reads, as types: a subscription item, a credit balance, a next payment.

Both providers map their events to these types and the access rules read them. ``to_fields`` and
``from_fields`` convert to and from the stored form and are called at the storage edge only.
Times are integer epoch milliseconds (UTC); money is integer minor units with a currency code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class ItemStatus(StrEnum):
    """Normalized status of a subscription item, across providers."""

    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"  # Clerk: a payment failed, retries under way
    ON_HOLD = "on_hold"  # Dodo: a renewal payment failed
    PAUSED = "paused"  # Dodo: paused by the merchant or customer; grants nothing until resumed
    CANCELED = "canceled"  # will end (at period end) or has ended (immediately)
    UPCOMING = "upcoming"  # scheduled to start at a later period
    INCOMPLETE = "incomplete"
    ABANDONED = "abandoned"
    ENDED = "ended"
    EXPIRED = "expired"
    FAILED = "failed"
    PENDING = "pending"


class UnreadableRecord(ValueError):
    """A stored record that is not of the expected shape; it grants nothing and is skipped."""


@dataclass(frozen=True, slots=True)
class SubscriptionItem:
    """One plan on one subscription, normalized across providers: what decides access."""

    item_id: str
    status: ItemStatus
    #: ``None`` when the plan is not known (a product the catalog does not map): it grants nothing.
    plan_slug: str | None = None
    plan_id: str | None = None
    plan_name: str | None = None
    plan_period: str | None = None
    subscription_id: str | None = None
    #: The status word the provider used, kept for display and diagnosis.
    provider_status: str | None = None
    period_start: int | None = None
    period_end: int | None = None
    is_free_trial: bool = False
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    #: When the payment failed (past due / on hold): the grace period counts from here.
    past_due_at: int | None = None
    ended_at: int | None = None
    #: The plan's price per period.
    amount: int | None = None
    currency: str | None = None
    next_payment_at: int | None = None
    next_payment_amount: int | None = None
    next_payment_currency: str | None = None
    changed_at: int | None = None
    #: Dodo: the customer, the quantity and the provider's own end of the past-due window.
    customer_id: str | None = None
    quantity: int | None = None
    past_due_ends_at: int | None = None
    #: Set by the store from the event that wrote the record (not a provider field).
    provider: str | None = field(default=None, compare=False)
    #: Fields the event did not carry: they are not written, so what another event stored stays.
    not_carried: frozenset[str] = field(default=frozenset(), compare=False)

    def to_fields(self) -> dict[str, Any]:
        stored = asdict(self)
        stored["status"] = self.status.value
        # Written by the store beside every record.
        for name in ("provider", "not_carried", *self.not_carried):
            stored.pop(name, None)
        return stored

    @classmethod
    def from_fields(cls, stored: Mapping[str, Any]) -> SubscriptionItem:
        try:
            status = ItemStatus(stored["status"])
            item_id = stored.get("item_id") or stored["record_id"]
        except (KeyError, ValueError):
            raise UnreadableRecord("a subscription item needs an id and a known status") from None
        values = {f.name: stored.get(f.name) for f in fields(cls) if f.name in stored}
        values.update(
            item_id=item_id,
            status=status,
            plan_slug=stored.get("plan_slug") if isinstance(stored.get("plan_slug"), str) else None,
            is_free_trial=bool(stored.get("is_free_trial")),
            cancel_at_period_end=bool(stored.get("cancel_at_period_end")),
        )
        return cls(**values)


@dataclass(frozen=True, slots=True)
class NextPayment:
    """When and how much the payer is charged next, as a subscription record states it."""

    at: int
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class CreditBalance:
    """A credit balance: the provider's own newest figure, never a sum of deltas (see domain.credits)."""

    credit_entitlement_id: str
    customer_id: str | None = None
    credit_entitlement_name: str | None = None
    #: A decimal string, as the provider counts credits (never a float).
    balance: str | None = None
    overage: str | None = None
    balance_at: int | None = None
    balance_version: str | None = None
    #: The ledger entry the balance was read from, or ``balance_low`` for an alert's figure.
    balance_source: str | None = None
    low_balance_threshold: str | None = None
    low_balance_threshold_percent: int | None = None
    low_balance_alert_at: int | None = None
    low_balance_alert_balance: str | None = None
    subscription_credits_amount: str | None = None
    subscription_id: str | None = None
    alert_version: str | None = None
    low_balance: bool = False
    changed_at: int | None = None

    @property
    def version(self) -> str:
        return max(v for v in (self.balance_version, self.alert_version, "") if v is not None)

    def to_fields(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_fields(cls, stored: Mapping[str, Any]) -> CreditBalance:
        entitlement = stored.get("credit_entitlement_id")
        if not isinstance(entitlement, str):
            raise UnreadableRecord("a credit balance needs its credit_entitlement_id")
        values = {f.name: stored.get(f.name) for f in fields(cls) if f.name in stored}
        values["low_balance"] = bool(stored.get("low_balance"))
        return cls(**values)


class ReversalKind(StrEnum):
    """How money paid for a subscription was taken back (or might be)."""

    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"
    DISPUTE_OPENED = "dispute_opened"  # the funds are held while the dispute runs
    DISPUTE_ACCEPTED = "dispute_accepted"
    DISPUTE_EXPIRED = "dispute_expired"
    DISPUTE_LOST = "dispute_lost"


@dataclass(frozen=True, slots=True)
class Reversal:
    """Money taken back from one payment (a refund, a dispute), for the subscriptions it paid for."""

    source_id: str
    kind: ReversalKind
    #: When the money was taken back.
    at: int
    #: From the payment's link: what it paid for and when it was made (``None`` until the payment is known).
    subscription_ids: tuple[str, ...] = ()
    payment_at: int | None = None


@dataclass(frozen=True, slots=True)
class PaymentStanding:
    """What payment events say of one subscription beyond its status."""

    #: When the newest payment that succeeded for it was made.
    last_paid_at: int | None = None
    #: When collection of a failed payment began, and when a failed payment was recovered.
    dunning_started_at: int | None = None
    dunning_recovered_at: int | None = None


@dataclass(frozen=True, slots=True)
class PayerState:
    """What the domain reads of one payer's stored records."""

    items: tuple[SubscriptionItem, ...] = ()
    #: By subscription id, from the subscription records.
    next_payments: Mapping[str, NextPayment] = field(default_factory=dict)
    credits: tuple[CreditBalance, ...] = ()
    #: By subscription id.
    standings: Mapping[str, PaymentStanding] = field(default_factory=dict)
    reversals: tuple[Reversal, ...] = ()
