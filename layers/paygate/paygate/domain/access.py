"""When a subscription item grants access: derived from stored facts at check time.

No scheduled job revokes access. A cancellation at period end, a grace period after a failed
payment, the end of a period, or money taken back is evaluated against ``now_ms`` when the gate asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from paygate.domain.records import ItemStatus, PaymentStanding, Reversal, ReversalKind, SubscriptionItem

DAY_MS = 86_400_000

__all__ = [
    "DAY_MS",
    "DEFAULT_REVOKE_ON",
    "AccessPolicy",
    "AccessWindow",
    "ItemStatus",
    "access_window",
    "grants_access",
    "revocation",
]

#: Money taken back that ends what the payment bought, unless the catalog says otherwise: a full
#: refund, and a dispute the merchant lost or accepted (the cardholder got the money back).
DEFAULT_REVOKE_ON = frozenset({ReversalKind.FULL_REFUND, ReversalKind.DISPUTE_LOST, ReversalKind.DISPUTE_ACCEPTED})


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


def access_window(
    item: SubscriptionItem, policy: AccessPolicy, standing: PaymentStanding | None = None
) -> AccessWindow | None:
    """The window in which ``item`` grants its plan, or ``None`` if it grants nothing."""
    if not item.plan_slug:
        return None
    match item.status:
        case ItemStatus.ACTIVE | ItemStatus.TRIALING:
            return _until_period_end_if_canceled(item)
        case ItemStatus.CANCELED:
            # Canceled at period end keeps what was paid for; an immediate cancellation ends it now.
            if item.cancel_at_period_end and item.period_end is not None:
                return AccessWindow(end_ms=item.period_end)
            return None
        case ItemStatus.PAST_DUE | ItemStatus.ON_HOLD:
            # A failed payment is not a cancellation: keep access for the grace period.
            # Without a stated time (the event reporting the change was missed), the change's own time.
            failed_at = item.past_due_at or (standing.dunning_started_at if standing else None) or item.changed_at
            if failed_at is None:
                return None
            if standing is not None and max(standing.dunning_recovered_at or 0, standing.last_paid_at or 0) > failed_at:
                # The failed payment was collected since (a recovery, a payment that succeeded): the
                # subscription event that says so may still be on its way.
                return _until_period_end_if_canceled(item)
            # The provider's own end of its past-due window, when it states one and it is later.
            end = max(failed_at + policy.grace_period_ms, item.past_due_ends_at or 0)
            return AccessWindow(end_ms=end)
        case _:
            return None


def revocation(
    item: SubscriptionItem,
    standing: PaymentStanding | None,
    reversals: Iterable[Reversal],
    revoke_on: frozenset[ReversalKind] = DEFAULT_REVOKE_ON,
) -> Reversal | None:
    """The money taken back that ends ``item``'s access, if any: the earliest reversal of a kind in
    ``revoke_on`` of a payment for its subscription, when no payment for it succeeded after that one
    (a later payment or renewal restores access)."""
    last_paid_at = standing.last_paid_at if standing else None
    found = [
        r
        for r in reversals
        if r.kind in revoke_on
        and item.subscription_id in r.subscription_ids
        and r.payment_at is not None
        and (last_paid_at is None or last_paid_at <= r.payment_at)
    ]
    return min(found, key=lambda r: (r.at, r.source_id), default=None)


def _until_period_end_if_canceled(item: SubscriptionItem) -> AccessWindow:
    if item.cancel_at_period_end and item.period_end is not None:
        return AccessWindow(end_ms=item.period_end)
    return AccessWindow()


def grants_access(
    item: SubscriptionItem, now_ms: int, policy: AccessPolicy, standing: PaymentStanding | None = None
) -> bool:
    window = access_window(item, policy, standing)
    return window is not None and window.contains(now_ms)
