"""What paygate keeps: versioned records of each payer's billing state.

A provider event becomes an :class:`Effect`: a set of :class:`StateRecord` upserts. Each record
carries a *version* so that the store can refuse to let an older event overwrite a newer one,
whatever order the provider delivers them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PayerKind(StrEnum):
    USER = "user"
    ORGANIZATION = "org"
    #: A provider customer not (yet) linked to an application user or organization.
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class Payer:
    kind: PayerKind
    id: str

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def from_key(cls, key: str) -> Payer:
        kind, _, ident = key.partition(":")
        return cls(PayerKind(kind), ident)


class RecordKind(StrEnum):
    SUBSCRIPTION = "subscription"
    ITEM = "item"  # one plan on a subscription: what grants access
    PAYMENT_ATTEMPT = "payment_attempt"
    PAYMENT = "payment"
    REFUND = "refund"
    DISPUTE = "dispute"
    CREDIT_BALANCE = "credit_balance"
    CREDIT_LEDGER = "credit_ledger"
    CUSTOMER_LINK = "customer_link"


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One versioned piece of a payer's state (a subscription, an item, a payment ...)."""

    payer: Payer
    kind: RecordKind
    #: Unique within the payer, provider-scoped, e.g. ``clerk:csubi_123``.
    record_id: str
    version: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Effect:
    """The state changes one event asks for. Empty records means the event changes nothing."""

    payer: Payer | None
    records: tuple[StateRecord, ...] = ()


def version_key(changed_at_ms: int, event_ts_ms: int, event_id: str) -> str:
    """A totally ordered version for last-writer-wins by *provider* time, not arrival time.

    Ordered by when the provider says the object changed, then by when the event was sent, then
    by event id - so any two distinct events compare the same way whatever order they arrive in,
    and a shuffled delivery converges on the state of in-order delivery.
    """
    return f"{changed_at_ms:015d}.{event_ts_ms:015d}.{event_id}"
