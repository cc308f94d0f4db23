"""The table's layout: how events and records are keyed and stored, and read back as types.

One table, four kinds of partition:

* ``pk = EVENT#<family>#<event_id>, sk = EVENT``: the inbox, every verified delivery with its raw
  body, type and outcome.
* ``pk = PAYER#<payer key>, sk = <record kind>#<record id>``: what a payer holds now (subscriptions,
  items, balances, refunds and disputes, links), so reading it is one request of a size that does
  not grow with the payer's history.
* ``pk = HISTORY#<payer key>``, same sort keys: what accumulates (payments, payment attempts, credit
  ledger entries), read only by the operator tools, paged.
* ``pk = RECONCILE#<scope>``: reconcile runs (``sk = RUN#<started>#<run id>``), the scope being ``all`` or
  a payer key, and a payer's last refresh (``sk = REFRESH``), which rate-limits refreshes.

This is the storage edge: typed records become stored fields here (``to_fields``) and stored items
become the types the domain reads (:func:`payer_state`), and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from paygate.domain.records import (
    CreditBalance,
    NextPayment,
    PayerState,
    PaymentStanding,
    Reversal,
    ReversalKind,
    SubscriptionItem,
    UnreadableRecord,
)
from paygate.domain.state import MergedRecord, Outcome, Payer, RecordKind, StateRecord, body_fields
from paygate.service.ports import EXPIRES_AT, VERSION, Item, Key

PAYER_PREFIX = "PAYER#"
HISTORY_PREFIX = "HISTORY#"
EVENT_PREFIX = "EVENT#"
INBOX_SK = "EVENT"
RECONCILE_PREFIX = "RECONCILE#"
#: The scope of a reconcile run over everything a provider has.
ALL_PAYERS = "all"
REFRESH_SK = "REFRESH"


def payer_pk(payer_key: str) -> str:
    return f"{PAYER_PREFIX}{payer_key}"


def history_pk(payer_key: str) -> str:
    return f"{HISTORY_PREFIX}{payer_key}"


def partition_of(payer_key: str, kind: RecordKind) -> str:
    return history_pk(payer_key) if kind.history else payer_pk(payer_key)


def record_sk(kind: RecordKind, record_id: str) -> str:
    return f"{kind.value}#{record_id}"


def record_key(record: StateRecord | MergedRecord) -> Key:
    return Key(partition_of(record.payer.key, record.kind), record_sk(record.kind, record.record_id))


def reconcile_run_key(scope: str, started_at_ms: int, run_id: str) -> Key:
    return Key(f"{RECONCILE_PREFIX}{scope}", f"RUN#{started_at_ms:015d}#{run_id}")


def refresh_key(payer_key: str) -> Key:
    return Key(f"{RECONCILE_PREFIX}{payer_key}", REFRESH_SK)


def event_pk(family: str, event_id: str) -> str:
    return f"{EVENT_PREFIX}{family}#{event_id}"


def inbox_key(family: str, event_id: str) -> Key:
    return Key(event_pk(family, event_id), INBOX_SK)


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A verified delivery, kept whatever becomes of it."""

    family: str
    provider: str
    event_id: str
    body: str
    received_at: int
    event_type: str | None = None
    error: str | None = None
    #: When an operator re-ran the stored body (``paygate replay``); retention counts from then.
    replayed_at: int | None = None

    @property
    def key(self) -> Key:
        return inbox_key(self.family, self.event_id)


def inbox_item(
    entry: InboxEntry, outcome: Outcome, payer: Payer | None, applied: Sequence[str], retention_s: int
) -> Item:
    item: Item = {
        "pk": entry.key.pk,
        "sk": entry.key.sk,
        "family": entry.family,
        "provider": entry.provider,
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "outcome": outcome.value,
        "received_at": entry.received_at,
        "body": entry.body,
        "payer": payer.key if payer else None,
        "applied": list(applied),
    }
    if entry.error:
        item["error"] = entry.error
    if entry.replayed_at is not None:
        item["replayed_at"] = entry.replayed_at
    if outcome is not Outcome.QUARANTINED:
        # Quarantined events stay until replayed; the rest expire after the retention period.
        item[EXPIRES_AT] = (entry.replayed_at or entry.received_at) // 1000 + retention_s
    return item


def record_fields(record: StateRecord, entry: InboxEntry) -> dict[str, Any]:
    """A record as stored: its body's fields, then what every record carries."""
    return {
        **body_fields(record.body),
        "kind": record.kind.value,
        "record_id": record.record_id,
        "payer": record.payer.key,
        VERSION: record.version,
        "event_id": entry.event_id,
        "provider": entry.provider,
    }


def expired(item: Mapping[str, Any], now_ms: int) -> bool:
    """DynamoDB deletes items past their TTL lazily (DynamoDB Local never): past it, an item is absent."""
    expires_at = item.get(EXPIRES_AT)
    return isinstance(expires_at, int) and expires_at * 1000 <= now_ms


def payer_state(items: Iterable[Mapping[str, Any]], now_ms: int) -> PayerState:
    """The typed state the domain reads, from a payer's stored items. Items past their TTL are absent;
    an unreadable item (an unknown status, a broken record) grants nothing and is skipped."""
    subscription_items: list[SubscriptionItem] = []
    next_payments: dict[str, NextPayment] = {}
    credits: list[CreditBalance] = []
    standings: dict[str, dict[str, Any]] = {}
    reversals: list[Reversal] = []
    partial_refunds: list[Mapping[str, Any]] = []
    for item in items:
        if expired(item, now_ms):
            continue
        kind = item.get("kind")
        try:
            if kind == RecordKind.ITEM.value:
                subscription_items.append(SubscriptionItem.from_fields(item))
            elif kind == RecordKind.CREDIT_BALANCE.value:
                credits.append(CreditBalance.from_fields(item))
            elif kind == RecordKind.SUBSCRIPTION.value:
                # Earlier versions kept Clerk's next payment on the subscription record; today's mappers
                # put it on each item. Read until such a record is written again.
                at = item.get("next_payment_at")
                if isinstance(item.get("subscription_id"), str) and isinstance(at, int):
                    amount = item.get("next_payment_amount")
                    next_payments[item["subscription_id"]] = NextPayment(
                        at, amount if isinstance(amount, int) else None, item.get("next_payment_currency")
                    )
            elif kind == RecordKind.PAID.value:
                standings.setdefault(item["subscription_id"], {})["last_paid_at"] = item.get("last_paid_at")
            elif kind == RecordKind.DUNNING.value:
                standing = standings.setdefault(item["subscription_id"], {})
                standing.update(
                    dunning_started_at=item.get("started_at"), dunning_recovered_at=item.get("recovered_at")
                )
            elif kind in (RecordKind.REFUND.value, RecordKind.DISPUTE.value):
                reversal = _reversal(item)
                if reversal is not None:
                    reversals.append(reversal)
                    if reversal.kind is ReversalKind.PARTIAL_REFUND:
                        partial_refunds.append(item)
        except (UnreadableRecord, TypeError, KeyError, ValueError):
            continue
    reversals.extend(_refunded_in_full(partial_refunds))
    return PayerState(
        tuple(subscription_items),
        next_payments,
        tuple(credits),
        {sid: PaymentStanding(**facts) for sid, facts in standings.items()},
        tuple(reversals),
    )


#: What a refund's or a dispute's stored status says was done with the money.
_DISPUTE_REVERSALS = {
    "dispute_opened": ReversalKind.DISPUTE_OPENED,
    "dispute_challenged": ReversalKind.DISPUTE_OPENED,
    "dispute_accepted": ReversalKind.DISPUTE_ACCEPTED,
    "dispute_expired": ReversalKind.DISPUTE_EXPIRED,
    "dispute_lost": ReversalKind.DISPUTE_LOST,
}


def _refunded_in_full(refunds: list[Mapping[str, Any]]) -> list[Reversal]:
    """Partial refunds of one payment that add up to its amount take the whole payment back: a full
    refund from the refund that completes the sum (the payment's amount and currency come with its
    link; a refund in another currency, or of a payment linked before links kept them, is not summed)."""
    by_payment: dict[str, list[Mapping[str, Any]]] = {}
    for refund in refunds:
        if (
            all(isinstance(refund.get(n), int) for n in ("amount", "payment_amount", "created_at"))
            and isinstance(refund.get("payment_id"), str)
            and isinstance(refund.get("refund_id"), str)
            and refund.get("currency") is not None
            and refund.get("currency") == refund.get("payment_currency")
        ):
            by_payment.setdefault(refund["payment_id"], []).append(refund)
    found = []
    for payment_id, parts in by_payment.items():
        refunded = 0
        for refund in sorted(parts, key=lambda r: (r["created_at"], r["refund_id"])):
            refunded += refund["amount"]
            if refunded >= refund["payment_amount"] > 0:
                whole = _reversal(refund)
                if whole is not None:
                    found.append(replace(whole, source_id=f"{payment_id}:refunds", kind=ReversalKind.FULL_REFUND))
                break
    return found


def _reversal(item: Mapping[str, Any]) -> Reversal | None:
    if item["kind"] == RecordKind.REFUND.value:
        if item.get("status") != "succeeded":
            return None
        kind = ReversalKind.PARTIAL_REFUND if item.get("is_partial") else ReversalKind.FULL_REFUND
        source, at = item["refund_id"], item.get("created_at")
    else:
        found = _DISPUTE_REVERSALS.get(item.get("status"))  # won and cancelled: the money stayed
        if found is None:
            return None
        kind, source, at = found, item["dispute_id"], item.get("changed_at")
    subscriptions = item.get("subscription_ids") or ([item["subscription_id"]] if item.get("subscription_id") else [])
    return Reversal(source, kind, int(at), tuple(subscriptions), item.get("payment_at"))
