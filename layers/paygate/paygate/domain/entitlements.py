"""What a payer's stored records grant at one instant: plans, features, subscriptions, credits.

Pure: the payer's records come in typed (:class:`PayerState`), ``now_ms`` is a parameter. Access follows
the windows of :mod:`paygate.domain.access` (trials, grace periods, cancel at period end); a plan's
features come from the catalog. A plan is granted only in its own scope: a user plan from the
user's partition, an organization plan from the organization's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from paygate.domain.access import AccessPolicy, access_window, revocation
from paygate.domain.catalog import Catalog, PlanScope
from paygate.domain.gate import Grants, Scoped
from paygate.domain.records import ItemStatus, NextPayment, PayerState, SubscriptionItem
from paygate.domain.state import Payer, PayerKind

#: Items worth showing on a billing page even when they grant nothing right now.
_SHOWN_WITHOUT_ACCESS = frozenset(
    {ItemStatus.UPCOMING, ItemStatus.PAST_DUE, ItemStatus.ON_HOLD, ItemStatus.PENDING, ItemStatus.PAUSED}
)
_LIVE = frozenset({ItemStatus.ACTIVE, ItemStatus.TRIALING})
#: Items that will be charged again (a payment is retried, or an upcoming plan starts).
_RENEWS = _LIVE | {ItemStatus.PAST_DUE, ItemStatus.ON_HOLD, ItemStatus.UPCOMING}
_SCOPE_OF_PAYER = {PayerKind.USER: PlanScope.USER, PayerKind.ORGANIZATION: PlanScope.ORG}


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """One plan on one subscription, as a pricing or billing page shows it."""

    provider: str | None
    subscription_id: str | None
    item_id: str | None
    plan: str | None
    plan_name: str | None
    status: str
    plan_period: str | None
    period_start: int | None
    period_end: int | None
    next_payment_at: int | None
    next_payment_amount: int | None
    next_payment_currency: str | None
    cancel_at_period_end: bool
    #: When access ends (exclusive, epoch ms); ``None`` while it renews with no end in sight.
    access_until: int | None
    #: Why access ended early, when money paid for it was taken back (``full_refund``, ``dispute_lost`` ...).
    revoked_by: str | None
    #: Whether the item is inside its access window at the instant the view was made (its plan,
    #: if the catalog maps one, is then granted).
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "subscription_id": self.subscription_id,
            "item_id": self.item_id,
            "plan": self.plan,
            "plan_name": self.plan_name,
            "status": self.status,
            "plan_period": self.plan_period,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "next_payment": (
                {
                    "at": self.next_payment_at,
                    "amount": self.next_payment_amount,
                    "currency": self.next_payment_currency,
                }
                if self.next_payment_at is not None
                else None
            ),
            "cancel_at_period_end": self.cancel_at_period_end,
            "access_until": self.access_until,
            "revoked_by": self.revoked_by,
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class CreditView:
    credit_entitlement_id: str
    name: str | None
    #: A decimal string, as the provider counts credits (never a float).
    balance: str
    low_balance: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "credit_entitlement_id": self.credit_entitlement_id,
            "name": self.name,
            "balance": self.balance,
            "low_balance": self.low_balance,
        }


@dataclass(frozen=True, slots=True)
class PayerEntitlements:
    payer: Payer
    plans: frozenset[str] = frozenset()
    features: frozenset[str] = frozenset()
    subscriptions: tuple[SubscriptionView, ...] = ()
    credits: tuple[CreditView, ...] = field(default=())


def entitlements_of(
    payer: Payer,
    state: PayerState,
    catalog: Catalog,
    policy: AccessPolicy,
    now_ms: int,
) -> PayerEntitlements:
    """What ``payer``'s stored ``state`` grants at ``now_ms``."""
    scope = _SCOPE_OF_PAYER.get(payer.kind)
    plans: set[str] = set()
    views: list[SubscriptionView] = []
    for item in state.items:
        next_payment = state.next_payments.get(item.subscription_id) if item.subscription_id else None
        view = _item_view(item, next_payment, state, catalog, policy, now_ms)
        if view.active and view.plan is not None and _in_scope(catalog, view.plan, scope):
            plans.add(view.plan)
        elif not view.active and not _worth_showing(item) and view.revoked_by is None:
            continue
        views.append(view)
    views.sort(key=lambda v: (not v.active, v.plan or "", v.item_id or ""))
    credits = sorted(
        (
            CreditView(c.credit_entitlement_id, c.credit_entitlement_name, c.balance or "0", c.low_balance)
            for c in state.credits
        ),
        key=lambda c: c.credit_entitlement_id,
    )
    return PayerEntitlements(
        payer=payer,
        plans=frozenset(plans),
        features=catalog.features_of(plans),
        subscriptions=tuple(views),
        credits=tuple(credits),
    )


def store_grants(token: Grants, user: PayerEntitlements | None, org: PayerEntitlements | None) -> Grants:
    """The token's caller holding what the store grants instead of what the token carries.

    Identity (user, organization, role, factor verification) stays the token's. A permission keeps counting only while
    the organization's stored plans have its feature: the store can take a permission away
    (a canceled plan) but cannot add one, since which permissions a member has lives in the token.
    """
    org_ent = org if token.org_id else None
    org_features = org_ent.features if org_ent else frozenset()
    # org:<feature>:<action> - the feature is the second part.
    permissions = frozenset(p for p in token.org_permissions if p.partition(":")[2].partition(":")[0] in org_features)
    return replace(
        token,
        org_permissions=permissions,
        plans=Scoped.of(org_ent.plans if org_ent else (), user.plans if user else ()),
        features=Scoped.of(org_features, user.features if user else ()),
    )


def _in_scope(catalog: Catalog, plan_slug: str, scope: PlanScope | None) -> bool:
    # A plan the catalog does not describe grants its slug (no features) wherever it is stored.
    plan = catalog.plans.get(plan_slug)
    return scope is not None and (plan is None or plan.scope is scope)


def _worth_showing(item: SubscriptionItem) -> bool:
    # A product the catalog does not map is paid for but grants nothing: show it, so it can be noticed.
    return item.status in _SHOWN_WITHOUT_ACCESS or (item.plan_slug is None and item.status in _LIVE)


def _item_view(
    item: SubscriptionItem,
    subscription_payment: NextPayment | None,
    state: PayerState,
    catalog: Catalog,
    policy: AccessPolicy,
    now_ms: int,
) -> SubscriptionView:
    standing = state.standings.get(item.subscription_id) if item.subscription_id else None
    window = access_window(item, policy, standing)
    revoked = revocation(item, standing, state.reversals, catalog.revoke_on) if window else None
    if window is not None and revoked is not None:
        # Money taken back ends what it bought, from the moment it was taken back.
        window = replace(window, end_ms=min(window.end_ms, revoked.at) if window.end_ms is not None else revoked.at)
    next_at, amount, currency = item.next_payment_at, item.next_payment_amount, item.next_payment_currency
    if next_at is None and subscription_payment is not None:
        next_at = subscription_payment.at
        amount, currency = subscription_payment.amount, subscription_payment.currency
    elif next_at is not None and amount is None:
        amount, currency = item.amount, item.currency
    if item.status not in _RENEWS or item.cancel_at_period_end:
        next_at = amount = currency = None  # nothing more will be charged for this item
    return SubscriptionView(
        provider=item.provider,
        subscription_id=item.subscription_id,
        item_id=item.item_id,
        plan=item.plan_slug,
        plan_name=item.plan_name,
        status=item.status.value,
        plan_period=item.plan_period,
        period_start=item.period_start,
        period_end=item.period_end,
        next_payment_at=next_at,
        next_payment_amount=amount,
        next_payment_currency=currency,
        cancel_at_period_end=item.cancel_at_period_end,
        access_until=window.end_ms if window else None,
        revoked_by=revoked.kind.value if revoked else None,
        active=window is not None and window.contains(now_ms),
    )
