"""What paygate keeps: versioned records of each payer's billing state.

A provider event becomes an :class:`Effect`: a set of record upserts. Each record carries a
*version* so that an older event can never overwrite a newer one, whatever order the provider
delivers them in. How an effect is applied exactly once lives in :mod:`paygate.service.apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


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
    #: The newest payment that succeeded for a subscription (what money taken back is compared with).
    PAID = "paid"
    #: A subscription's collection of a failed payment (Dodo's dunning).
    DUNNING = "dunning"

    @property
    def history(self) -> bool:
        """Records that accumulate with every payment or usage: kept apart from the payer's current
        state, so reading what a payer holds stays constant as their history grows."""
        return self in _HISTORY


_HISTORY = frozenset({RecordKind.PAYMENT, RecordKind.PAYMENT_ATTEMPT, RecordKind.CREDIT_LEDGER})


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


class TypedBody(Protocol):
    """A record body the domain reads as a type (a subscription item, a credit balance)."""

    def to_fields(self) -> dict[str, Any]: ...


#: What a record holds: a typed body, or plain fields for records the domain never reads.
Body = TypedBody | Mapping[str, Any]


def body_fields(body: Body) -> dict[str, Any]:
    """The stored form of a body: only the storage edge calls this."""
    to_fields = getattr(body, "to_fields", None)
    return to_fields() if to_fields is not None else dict(body)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One versioned piece of a payer's state (a subscription, an item, a payment ...)."""

    payer: Payer
    kind: RecordKind
    #: Unique within the payer, provider-scoped, e.g. ``clerk:csubi_123``.
    record_id: str
    version: str
    body: Body


#: Given the stored body (decoded, ``None`` if absent), the version and body to write, or ``None``
#: when the update is stale (changes nothing).
Merge = Callable[[Any], tuple[str, Body] | None]


@dataclass(frozen=True, slots=True)
class MergedRecord:
    """A record whose new state depends on what is stored (e.g. a credit balance fed by two kinds of
    event): the stored record is read and decoded, ``merge`` computes the new one, and it is written
    only if the stored record has not changed meanwhile."""

    payer: Payer
    kind: RecordKind
    record_id: str
    merge: Merge
    #: Stored fields to the body ``merge`` expects.
    decode: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Effect:
    """The state changes one event asks for. Empty records means the event changes nothing."""

    payer: Payer | None
    records: tuple[StateRecord | MergedRecord, ...] = ()


def version_key(changed_at_ms: int, event_ts_ms: int, event_id: str) -> str:
    """A totally ordered version for last-writer-wins by *provider* time, not arrival time.

    Ordered by when the provider says the object changed, then by when the event was sent, then
    by event id - so any two distinct events compare the same way whatever order they arrive in,
    and a shuffled delivery converges on the state of in-order delivery.
    """
    return f"{changed_at_ms:015d}.{event_ts_ms:015d}.{event_id}"


#: How far before the moment of a provider read a snapshot's version is placed. Covers a webhook whose
#: timestamp is rounded down to the second (Clerk's are in seconds) and clock skew between the provider
#: and us, so a change made just after the read always sorts after the snapshot (see docs/reconcile.md).
SNAPSHOT_MARGIN_MS = 2_000


def snapshot_moment(read_at_ms: int) -> int:
    """The provider time a snapshot read at ``read_at_ms`` (taken before the request was sent) speaks for."""
    return read_at_ms - SNAPSHOT_MARGIN_MS


def snapshot_version(read_at_ms: int, snapshot_id: str) -> str:
    """The version of a record read from a provider's API rather than delivered by a webhook.

    A read returns the object as of some instant after the request was sent, so it includes every change
    made before ``read_at_ms``: it wins over each event of an earlier change and loses to each event of a
    later one, ordered on the same axis as :func:`version_key` (provider time of the change or event).
    """
    moment = snapshot_moment(read_at_ms)
    return version_key(moment, moment, snapshot_id)
