"""`GET /me/subscription` through the authorizer and the real account handler, on DynamoDB Local."""

from __future__ import annotations

import pytest

from bench.instrument import DynamoDBMeter, instrumented_store_clients
from paygate.domain.records import CreditBalance
from paygate.domain.state import Effect, Payer, PayerKind, RecordKind, StateRecord
from paygate.service.layout import InboxEntry
from tests.integration.test_authorizer import ORG, USER, Gateway, applied, gateway, signing_key, stored_item

__all__ = ["gateway", "signing_key"]  # fixtures used below

ROUTE = "GET /me/subscription"


def test_user_and_organization_subscriptions(gateway: Gateway, sender, store):
    applied(sender, "clerk/subscription.active.json")
    applied(sender, "clerk/subscription.active.org.json")
    token = gateway.token(pla="u:free_user,o:free_org", org={"id": ORG, "slg": "acme", "rol": "admin"})
    reply = gateway.request(ROUTE, token)
    assert reply.status == 200
    body = reply.body
    assert body["user_id"] == USER and body["org_id"] == ORG
    assert body["plans"] == ["free_org", "free_user", "pro", "team"]
    assert body["features"] == ["analytics", "export", "priority_support", "settings", "team_seats"]
    assert body["as_of"] == gateway.now

    user = body["user"]
    assert user["id"] == USER and user["plans"] == ["free_user", "pro"]
    (pro,) = user["subscriptions"]  # the ended free_user item is history, not shown
    item = stored_item(store, f"user:{USER}", "pro")
    assert pro == {
        "provider": "clerk",
        "subscription_id": item["subscription_id"],
        "item_id": item["item_id"],
        "plan": "pro",
        "plan_name": item["plan_name"],
        "status": "active",
        "plan_period": item["plan_period"],
        "period_start": item["period_start"],
        "period_end": item["period_end"],
        "next_payment": pro["next_payment"],
        "cancel_at_period_end": False,
        "access_until": None,
        "revoked_by": None,
        "active": True,
    }
    # Webhook items carry the next payment as flat numbers (next_payment_amount, next_payment_date).
    assert pro["next_payment"] == {"at": item["next_payment_at"], "amount": 2000, "currency": "USD"}
    assert isinstance(item["next_payment_at"], int)

    org = body["organization"]
    assert (org["id"], org["slug"], org["role"]) == (ORG, "acme", "org:admin")
    assert org["plans"] == ["free_org", "team"]
    assert [s["plan"] for s in org["subscriptions"]] == ["team"]


def test_a_canceled_plan_shows_when_access_ends(gateway: Gateway, sender, store):
    applied(sender, "clerk/subscription.active.json")
    applied(sender, "clerk/subscriptionItem.canceled.json")
    period_end = stored_item(store, f"user:{USER}", "pro")["period_end"]
    (pro,) = gateway.request(ROUTE, gateway.token()).body["user"]["subscriptions"]
    assert (pro["status"], pro["cancel_at_period_end"], pro["access_until"], pro["active"]) == (
        "canceled",
        True,
        period_end,
        True,
    )
    gateway.now = period_end
    body = gateway.request(ROUTE, gateway.token()).body
    assert body["plans"] == [] and body["user"]["subscriptions"] == []


def test_past_due_shows_the_grace_end(gateway: Gateway, sender, store, monkeypatch):
    monkeypatch.setenv("GRACE_PERIOD_DAYS", "3")
    applied(sender, "clerk/subscriptionItem.pastDue.json")
    past_due_at = stored_item(store, f"user:{USER}", "pro")["past_due_at"]
    gateway.now = past_due_at + 1
    (pro,) = gateway.request(ROUTE, gateway.token()).body["user"]["subscriptions"]
    assert (pro["status"], pro["access_until"], pro["active"]) == ("past_due", past_due_at + 3 * 86_400_000, True)


def test_without_an_active_organization(gateway: Gateway, sender):
    applied(sender, "clerk/subscription.active.org.json")  # the organization pays, but is not active
    body = gateway.request(ROUTE, gateway.token()).body
    assert body["organization"] is None and body["org_id"] is None
    assert body["plans"] == [] and body["user"]["subscriptions"] == []


def test_token_plans_count_unless_the_store_is_authoritative(gateway: Gateway, monkeypatch):
    token = gateway.token(pla="u:pro", fea="u:export")
    body = gateway.request(ROUTE, token).body
    assert body["plans"] == ["pro"]
    assert body["features"] == ["analytics", "export", "priority_support"]  # the token's, plus the catalog's for pro
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    body = gateway.request(ROUTE, token).body
    assert body["plans"] == [] and body["features"] == []


def test_credit_balances(gateway: Gateway, store):
    payer = Payer(PayerKind.USER, USER)
    entry = InboxEntry("dodo.credits", "dodo", "evt_credit_1", "{}", gateway.now)
    record = StateRecord(
        payer,
        RecordKind.CREDIT_BALANCE,
        "dodo:cde_test",
        "000000000000001.000000000000001.evt_credit_1",
        CreditBalance("cde_test", credit_entitlement_name="AI Credits", balance="12.5", low_balance=True),
    )

    store.apply(entry, Effect(payer, (record,)))
    credits = gateway.request(ROUTE, gateway.token()).body["user"]["credits"]
    assert credits == [
        {"credit_entitlement_id": "cde_test", "name": "AI Credits", "balance": "12.5", "low_balance": True}
    ]


def test_both_payers_are_read_in_one_request(gateway: Gateway, sender):
    meter = DynamoDBMeter()
    with instrumented_store_clients(meter.attach):
        reply = gateway.request(ROUTE, gateway.token(org={"id": ORG, "rol": "member"}))
    assert reply.status == 200
    assert [r.operation for r in meter.take()] == ["ExecuteStatement"]


@pytest.mark.parametrize("pla", ["", "u:pro"])
def test_store_outage_answers_503(gateway: Gateway, monkeypatch, pla):
    monkeypatch.setenv("TABLE_NAME", "paygate-table-that-does-not-exist")
    reply = gateway.request(ROUTE, gateway.token(pla=pla))
    assert (reply.status, reply.body["error"]) == (503, "store_unavailable")


def test_no_token_is_denied(gateway: Gateway):
    assert gateway.request(ROUTE).status == 401
    assert gateway.request(ROUTE, headers={"authorization": "Bearer not-a-jwt"}).status == 403


@pytest.mark.parametrize(
    ("org", "visible"),
    [
        ({"id": ORG, "rol": "member"}, False),
        ({"id": ORG, "rol": "admin"}, True),
        # Clerk's billing system permission, tied to its sys_billing feature in the token.
        ({"id": ORG, "rol": "billing_manager", "per": "read", "fpm": "1"}, True),
    ],
)
def test_organization_billing_is_shown_only_to_billing_roles_and_permissions(gateway: Gateway, sender, org, visible):
    applied(sender, "clerk/subscription.active.org.json")
    fea = "o:sys_billing" if "per" in org else ""
    body = gateway.request(ROUTE, gateway.token(org=org, fea=fea)).body
    organization = body["organization"]
    assert organization["billing_visible"] is visible
    assert bool(organization["subscriptions"]) is visible
    assert organization["plans"] == ["team"]  # what the organization holds is not billing
