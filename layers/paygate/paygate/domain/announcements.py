"""What paygate announces when a payer's grants change: the snapshot it compares, and the events.

Pure. A :class:`Snapshot` is what a payer is granted at one instant, reduced to what an application
acts on: plans, features and the access windows that grant them (plus which credit balances are low).
Comparing the snapshot last announced with the one after a change gives the announcements:

* ``Entitlements Changed``: plans, features or access windows differ (a window's end counts: a
  cancellation at period end changes no plan yet, but says when it goes).
* ``Grace Period Started``: an item is in a grace period it was not in before (a payment failed).
* ``Credits Low``: a credit balance the provider flags as low was not low before.
* ``Payment Failed``: a payment or payment attempt recorded as failed (from the records written, not
  from the snapshot: payments are history).

How the snapshot is kept and the events are written and published lives in
:mod:`paygate.service.outbox`; the published form is described in docs/events.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paygate.domain.entitlements import PayerEntitlements
from paygate.domain.records import ItemStatus
from paygate.domain.state import RecordKind

#: The EventBridge ``source`` of every event paygate publishes.
SOURCE = "paygate"
ENTITLEMENTS_CHANGED = "Entitlements Changed"
PAYMENT_FAILED = "Payment Failed"
GRACE_PERIOD_STARTED = "Grace Period Started"
CREDITS_LOW = "Credits Low"
DETAIL_TYPES = (ENTITLEMENTS_CHANGED, PAYMENT_FAILED, GRACE_PERIOD_STARTED, CREDITS_LOW)

#: The namespace of event ids (UUID version 5 of what the event is about): the same on every redelivery.
EVENT_ID_NAMESPACE = uuid.UUID("6f1b0f3e-3c1a-5d4e-9a57-5b2f0c1d7e21")
_GRACE = frozenset({ItemStatus.PAST_DUE.value, ItemStatus.ON_HOLD.value})


@dataclass(frozen=True, slots=True)
class Window:
    """One item granting one plan, until ``ends_at`` (exclusive; ``None`` while it renews)."""

    plan: str
    provider: str | None
    subscription_id: str | None
    item_id: str | None
    status: str
    ends_at: int | None

    @property
    def in_grace(self) -> bool:
        return self.status in _GRACE

    @property
    def grant(self) -> tuple[Any, ...]:
        """What the comparison sees: the plan, the item granting it, and until when (not the status
        word, so a change of wording with the same access announces nothing)."""
        return (self.plan, self.provider or "", self.subscription_id or "", self.item_id or "", self.ends_at or 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "provider": self.provider,
            "subscription_id": self.subscription_id,
            "item_id": self.item_id,
            "status": self.status,
            "ends_at": self.ends_at,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Window:
        return cls(
            raw["plan"],
            raw.get("provider"),
            raw.get("subscription_id"),
            raw.get("item_id"),
            raw["status"],
            raw.get("ends_at"),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a payer is granted at one instant, as announced."""

    plans: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    windows: tuple[Window, ...] = ()
    #: Credit entitlements whose balance the provider flags as low.
    credits_low: tuple[str, ...] = ()

    @property
    def grants(self) -> tuple[Any, ...]:
        return (self.plans, self.features, tuple(sorted(w.grant for w in self.windows)))

    @property
    def next_change_at(self) -> int | None:
        """The instant the clock alone changes these grants: the earliest end of a window."""
        ends = [w.ends_at for w in self.windows if w.ends_at is not None]
        return min(ends) if ends else None

    def to_fields(self) -> dict[str, Any]:
        return {
            "plans": list(self.plans),
            "features": list(self.features),
            "windows": [w.to_json() for w in self.windows],
            "credits_low": list(self.credits_low),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Snapshot:
        return cls(
            tuple(fields.get("plans") or ()),
            tuple(fields.get("features") or ()),
            tuple(Window.from_json(w) for w in fields.get("windows") or ()),
            tuple(fields.get("credits_low") or ()),
        )


def snapshot_of(held: PayerEntitlements) -> Snapshot:
    windows = tuple(
        Window(v.plan, v.provider, v.subscription_id, v.item_id, v.status, v.access_until)
        for v in held.subscriptions
        if v.active and v.plan is not None and v.plan in held.plans
    )
    return Snapshot(
        plans=tuple(sorted(held.plans)),
        features=tuple(sorted(held.features)),
        windows=tuple(sorted(windows, key=lambda w: w.grant)),
        credits_low=tuple(sorted(c.credit_entitlement_id for c in held.credits if c.low_balance)),
    )


@dataclass(frozen=True, slots=True)
class Announcement:
    """One event to publish: its detail type, what it is about and its type-specific detail."""

    detail_type: str
    #: What the event is about (an item, a credit entitlement, a payment); part of its id.
    subject: str
    detail: Mapping[str, Any]
    #: The same fact announced twice (a provider repeating that a payment failed) keeps one id, so
    #: consumers deduplicate it too; other events are numbered by the payer's sequence.
    once_per_subject: bool = False

    def event_id(self, payer_key: str, sequence: int) -> str:
        name = (
            f"{payer_key}/{self.detail_type}/{self.subject}"
            if self.once_per_subject
            else f"{payer_key}/{sequence}/{self.detail_type}/{self.subject}"
        )
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def changes(before: Snapshot, after: Snapshot, held: PayerEntitlements) -> list[Announcement]:
    """What to announce when ``before`` (last announced) becomes ``after`` (``held``'s snapshot)."""
    found: list[Announcement] = []
    in_grace = {w.item_id for w in before.windows if w.in_grace}
    for window in after.windows:
        if window.in_grace and window.item_id not in in_grace:
            found.append(
                Announcement(
                    GRACE_PERIOD_STARTED,
                    f"item:{window.item_id}",
                    {
                        "plan": window.plan,
                        "provider": window.provider,
                        "subscription_id": window.subscription_id,
                        "item_id": window.item_id,
                        "status": window.status,
                        "grace_ends_at": window.ends_at,
                    },
                )
            )
    if before.grants != after.grants:
        found.insert(
            0,
            Announcement(
                ENTITLEMENTS_CHANGED,
                "grants",
                {
                    "plans": _difference(before.plans, after.plans),
                    "features": _difference(before.features, after.features),
                    "access_windows": [w.to_json() for w in after.windows],
                    "previous_access_windows": [w.to_json() for w in before.windows],
                },
            ),
        )
    low_before = set(before.credits_low)
    for credit in held.credits:
        if credit.low_balance and credit.credit_entitlement_id not in low_before:
            found.append(
                Announcement(
                    CREDITS_LOW,
                    f"credit:{credit.credit_entitlement_id}",
                    {
                        "credit_entitlement_id": credit.credit_entitlement_id,
                        "name": credit.name,
                        "balance": credit.balance,
                    },
                )
            )
    return found


#: Records of money asked for, and the status both providers give a failed one.
_PAYMENT_KINDS = frozenset({RecordKind.PAYMENT, RecordKind.PAYMENT_ATTEMPT})


def payment_failed(kind: RecordKind, record_id: str, fields: Mapping[str, Any]) -> Announcement | None:
    """``Payment Failed`` for a payment (Dodo) or payment attempt (Clerk) record written as failed."""
    if kind not in _PAYMENT_KINDS or fields.get("status") != "failed":
        return None
    subscriptions = fields.get("subscription_ids") or (
        [fields["subscription_id"]] if fields.get("subscription_id") else []
    )
    return Announcement(
        PAYMENT_FAILED,
        f"{kind.value}:{record_id}",
        {
            "provider": fields.get("provider"),
            "payment_id": fields.get("payment_id"),
            "payment_attempt_id": fields.get("payment_attempt_id"),
            "subscription_ids": list(subscriptions),
            "item_ids": list(fields.get("item_ids") or []),
            "amount": fields.get("amount"),
            "currency": fields.get("currency"),
            "reason": fields.get("failed_reason") or fields.get("error_code"),
            "message": fields.get("error_message"),
            "failed_at": fields.get("failed_at") or fields.get("changed_at"),
        },
        once_per_subject=True,
    )


def _difference(before: tuple[str, ...], after: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "current": sorted(after),
    }
