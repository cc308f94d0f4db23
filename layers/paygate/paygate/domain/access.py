"""When a subscription item grants access: derived from stored facts at check time.

No scheduled job revokes access. A cancellation at period end, a grace period after a failed
payment, or the end of a period is evaluated against ``now_ms`` when the gate asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DAY_MS = 86_400_000


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


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    #: How long a payer keeps access after a payment fails (past due / on hold).
    grace_period_ms: int = 7 * DAY_MS


@dataclass(frozen=True, slots=True)
class AccessWindow:
    """Access from ``start_ms`` (inclusive) until ``end_ms`` (exclusive); ``None`` is unbounded."""

    start_ms: int | None = None
    end_ms: int | None = None

    def contains(self, now_ms: int) -> bool:
        if self.start_ms is not None and now_ms < self.start_ms:
            return False
        return self.end_ms is None or now_ms < self.end_ms


@dataclass(frozen=True, slots=True)
class PlanItem:
    """The facts about one item that decide access (a projection of a stored item record)."""

    #: ``None`` for a provider product the catalog does not map to a plan: it grants nothing.
    plan: str | None
    status: ItemStatus
    period_end_ms: int | None = None
    cancel_at_period_end: bool = False
    past_due_since_ms: int | None = None

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> PlanItem:
        return cls(
            plan=fields["plan_slug"],
            status=ItemStatus(fields["status"]),
            period_end_ms=fields.get("period_end"),
            cancel_at_period_end=bool(fields.get("cancel_at_period_end")),
            past_due_since_ms=fields.get("past_due_at"),
        )


def access_window(item: PlanItem, policy: AccessPolicy) -> AccessWindow | None:
    """The window in which ``item`` grants its plan, or ``None`` if it grants nothing."""
    if not item.plan:
        return None
    match item.status:
        case ItemStatus.ACTIVE | ItemStatus.TRIALING:
            if item.cancel_at_period_end and item.period_end_ms is not None:
                return AccessWindow(end_ms=item.period_end_ms)
            return AccessWindow()
        case ItemStatus.CANCELED:
            # Canceled at period end keeps what was paid for; an immediate cancellation ends it now.
            if item.cancel_at_period_end and item.period_end_ms is not None:
                return AccessWindow(end_ms=item.period_end_ms)
            return None
        case ItemStatus.PAST_DUE | ItemStatus.ON_HOLD:
            # A failed payment is not a cancellation: keep access for the grace period.
            if item.past_due_since_ms is None:
                return None
            return AccessWindow(end_ms=item.past_due_since_ms + policy.grace_period_ms)
        case _:
            return None


def grants_access(item: PlanItem, now_ms: int, policy: AccessPolicy) -> bool:
    window = access_window(item, policy)
    return window is not None and window.contains(now_ms)
