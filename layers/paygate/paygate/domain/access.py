"""When a subscription item grants access: derived from stored facts at check time.

No scheduled job revokes access. A cancellation at period end, a grace period after a failed
payment, or the end of a period is evaluated against ``now_ms`` when the gate asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from paygate.domain.records import ItemStatus, SubscriptionItem

DAY_MS = 86_400_000

__all__ = ["DAY_MS", "AccessPolicy", "AccessWindow", "ItemStatus", "access_window", "grants_access"]


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


def access_window(item: SubscriptionItem, policy: AccessPolicy) -> AccessWindow | None:
    """The window in which ``item`` grants its plan, or ``None`` if it grants nothing."""
    if not item.plan_slug:
        return None
    match item.status:
        case ItemStatus.ACTIVE | ItemStatus.TRIALING:
            if item.cancel_at_period_end and item.period_end is not None:
                return AccessWindow(end_ms=item.period_end)
            return AccessWindow()
        case ItemStatus.CANCELED:
            # Canceled at period end keeps what was paid for; an immediate cancellation ends it now.
            if item.cancel_at_period_end and item.period_end is not None:
                return AccessWindow(end_ms=item.period_end)
            return None
        case ItemStatus.PAST_DUE | ItemStatus.ON_HOLD:
            # A failed payment is not a cancellation: keep access for the grace period.
            if item.past_due_at is None:
                return None
            return AccessWindow(end_ms=item.past_due_at + policy.grace_period_ms)
        case _:
            return None


def grants_access(item: SubscriptionItem, now_ms: int, policy: AccessPolicy) -> bool:
    window = access_window(item, policy)
    return window is not None and window.contains(now_ms)
