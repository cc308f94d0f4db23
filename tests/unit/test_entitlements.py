"""What stored records grant at an instant: every access window edge, scopes, views and credits."""

from __future__ import annotations

import pytest

from paygate.domain.access import DAY_MS, AccessPolicy
from paygate.domain.catalog import Catalog, Plan, PlanScope
from paygate.domain.entitlements import entitlements_of, store_grants
from paygate.domain.gate import Grants, Scoped, has, parse_gate
from paygate.domain.state import Payer, PayerKind
from paygate.service.layout import payer_state

NOW = 1_760_000_000_000
POLICY = AccessPolicy(grace_period_ms=7 * DAY_MS)
CATALOG = Catalog(
    plans={
        "pro": Plan("pro", "Pro", PlanScope.USER, frozenset({"export", "analytics"})),
        "team": Plan("team", "Team", PlanScope.ORG, frozenset({"export", "team_seats", "settings"})),
    }
)
USER = Payer(PayerKind.USER, "user_1")
ORG = Payer(PayerKind.ORGANIZATION, "org_1")


def item(plan: str | None = "pro", status: str = "active", **fields) -> dict:
    return {
        "kind": "item",
        "record_id": f"clerk:{plan}-{status}",
        "provider": "clerk",
        "subscription_id": "sub_1",
        "item_id": f"csubi_{plan}_{status}",
        "plan_slug": plan,
        "status": status,
        "cancel_at_period_end": False,
        **fields,
    }


def of(payer: Payer, records: list[dict], now: int = NOW):
    """What the stored records grant (read through the storage edge, as the services do)."""
    return entitlements_of(payer, payer_state(records, now), CATALOG, POLICY, now)


def granted(records, payer=USER, now=NOW) -> frozenset[str]:
    return of(payer, records, now).plans


# -- access windows --------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_active_and_trialing_grant(status):
    assert granted([item(status=status)]) == {"pro"}


@pytest.mark.parametrize(("now", "expected"), [(NOW - 1, {"pro"}), (NOW, set())])
@pytest.mark.parametrize("status", ["active", "trialing", "canceled"])
def test_cancel_at_period_end_keeps_access_until_the_period_ends(status, now, expected):
    record = item(status=status, cancel_at_period_end=True, period_end=NOW)
    assert granted([record], now=now) == expected


def test_immediate_cancellation_ends_access():
    assert granted([item(status="canceled", cancel_at_period_end=False, period_end=NOW + DAY_MS)]) == set()


@pytest.mark.parametrize(("offset", "expected"), [(-1, {"pro"}), (0, set())])
@pytest.mark.parametrize("status", ["past_due", "on_hold"])
def test_grace_period_edge_after_a_failed_payment(status, offset, expected):
    since = NOW - 7 * DAY_MS - offset
    assert granted([item(status=status, past_due_at=since)]) == expected


def test_past_due_without_a_time_grants_nothing():
    assert granted([item(status="past_due")]) == set()


@pytest.mark.parametrize("status", ["upcoming", "incomplete", "abandoned", "ended", "expired", "failed", "pending"])
def test_statuses_that_grant_nothing(status):
    assert granted([item(status=status)]) == set()


def test_unknown_status_or_broken_record_grants_nothing():
    assert granted([item(status="mystery")]) == set()
    assert granted([{"kind": "item", "plan_slug": "pro"}]) == set()


# -- scope, catalog, provider quirks ---------------------------------------------------------


def test_a_plan_is_granted_only_in_its_own_scope():
    assert granted([item("team")], payer=USER) == set()
    assert granted([item("pro")], payer=ORG) == set()
    assert granted([item("team")], payer=ORG) == {"team"}


def test_features_come_from_the_catalog():
    ent = of(ORG, [item("team")])
    assert ent.features == {"export", "team_seats", "settings"}


def test_a_plan_unknown_to_the_catalog_grants_its_slug_but_no_feature():
    ent = of(USER, [item("legacy_gold")])
    assert ent.plans == {"legacy_gold"} and ent.features == frozenset()


def test_an_unmapped_product_is_shown_but_grants_nothing():
    # A Dodo product the catalog does not map: plan_slug is null.
    ent = of(USER, [item(None, provider="dodo")])
    assert ent.plans == frozenset()
    assert [(v.plan, v.status, v.active) for v in ent.subscriptions] == [(None, "active", False)]


def test_records_past_their_ttl_are_absent():
    ttl_s = NOW // 1000
    assert granted([item(expires_at=ttl_s)]) == set()
    assert granted([item(expires_at=ttl_s + 1)]) == {"pro"}


def test_other_record_kinds_grant_nothing():
    assert granted([{"kind": "payment_attempt", "plan_slugs": ["pro"], "status": "paid"}]) == set()


# -- views -----------------------------------------------------------------------------------


def test_subscription_view():
    records = [
        item(status="canceled", cancel_at_period_end=True, period_start=NOW - DAY_MS, period_end=NOW + DAY_MS),
        item(status="ended", period_end=NOW - DAY_MS),  # history: not shown
        item(status="upcoming", plan_name="Pro"),
        {
            "kind": "subscription",
            "subscription_id": "sub_1",
            "next_payment_at": NOW + 2 * DAY_MS,
            "next_payment_amount": 2000,
            "next_payment_currency": "USD",
        },
    ]
    views = of(USER, records).subscriptions
    assert [(v.status, v.active) for v in views] == [("canceled", True), ("upcoming", False)]
    current = views[0].to_json()
    assert current["access_until"] == NOW + DAY_MS
    assert current["cancel_at_period_end"] is True
    assert current["next_payment"] is None  # canceled at period end: nothing more is charged
    assert current["provider"] == "clerk"
    renewing = of(USER, [item(status="active"), *records[3:]]).subscriptions[0].to_json()
    assert renewing["next_payment"] == {"at": NOW + 2 * DAY_MS, "amount": 2000, "currency": "USD"}


def test_renewing_subscription_has_no_access_end_and_past_due_shows_the_grace_end():
    views = of(USER, [item(status="active"), item("pro", "past_due", past_due_at=NOW - DAY_MS)]).subscriptions
    by_status = {v.status: v for v in views}
    assert by_status["active"].access_until is None
    assert by_status["past_due"].access_until == NOW + 6 * DAY_MS


def test_credit_balances():
    records = [
        {"kind": "credit_balance", "credit_entitlement_id": "cde_2", "credit_entitlement_name": "B", "balance": "0.5"},
        {
            "kind": "credit_balance",
            "credit_entitlement_id": "cde_1",
            "credit_entitlement_name": "AI Credits",
            "balance": "1000",
            "low_balance": True,
        },
        {"kind": "credit_balance"},  # unreadable: skipped
    ]
    credits = of(USER, records).credits
    assert [c.to_json() for c in credits] == [
        {"credit_entitlement_id": "cde_1", "name": "AI Credits", "balance": "1000", "low_balance": True},
        {"credit_entitlement_id": "cde_2", "name": "B", "balance": "0.5", "low_balance": False},
    ]


# -- the store as a has() source -------------------------------------------------------------


def token_grants(**overrides) -> Grants:
    base = {
        "user_id": "user_1",
        "org_id": "org_1",
        "org_role": "org:admin",
        "org_permissions": frozenset({"org:settings:manage", "org:billing:read"}),
        "plans": Scoped(org=("team",)),
        "features": Scoped(org=("settings", "billing")),
    }
    return Grants(**{**base, **overrides})


def test_store_grants_replace_billing_facts_and_keep_identity():
    user = of(USER, [item("pro")])
    org = of(ORG, [item("team")])
    grants = store_grants(token_grants(), user, org)
    assert has(grants, plan="user:pro") and has(grants, plan="org:team") and has(grants, feature="org:team_seats")
    assert has(grants, role="admin")
    # A permission keeps counting only while the stored plan has its feature ('billing' is not in team).
    assert has(grants, permission="org:settings:manage") is True
    assert has(grants, permission="org:billing:read") is False


def test_store_revokes_permissions_when_the_organization_plan_is_gone():
    org = of(ORG, [item("team", "canceled")])
    grants = store_grants(token_grants(), None, org)
    assert has(grants, permission="org:settings:manage") is False
    assert has(grants, plan="team") is False


def test_store_ignores_the_organization_without_an_active_one_in_the_token():
    org = of(ORG, [item("team")])
    grants = store_grants(token_grants(org_id=None, org_role=None), None, org)
    assert has(grants, plan="team") is False


def test_gate_over_store_grants():
    org = of(ORG, [item("team")])
    gate = parse_gate({"any": [{"plan": "user:pro"}, {"all": [{"plan": "org:team"}, {"role": "admin"}]}]})
    assert gate.allows(store_grants(token_grants(), None, org))
    assert not gate.allows(store_grants(token_grants(org_role="org:member"), None, org))
