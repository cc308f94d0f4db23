"""The example premium routes behind the authorizer: who gets in, and what each route reads from the context."""

from __future__ import annotations

import csv
import io

import pytest

from paygate.infra.catalog_file import load_catalog
from paygate_dev.invoke import invoke
from paygate_dev.template import functions
from tests.integration.test_authorizer import ORG, USER, Gateway, applied, gateway, route_functions, signing_key

__all__ = ["gateway", "signing_key"]  # fixtures used below

ORG_ADMIN = {"id": ORG, "slg": "acme", "rol": "admin", "per": "manage", "fpm": "1"}


def test_every_route_behind_the_authorizer_has_a_gate_and_every_gate_a_route():
    gated = set(load_catalog().routes)
    assert set(route_functions()) == gated


def test_webhook_routes_stay_open_to_the_providers():
    open_routes = [r for f in functions().values() for r in f.routes if r.authorizer is None]
    assert {r.route_key for r in open_routes} >= {"POST /webhooks/clerk/subscriptions"}
    assert all(r.path.startswith("/webhooks/") for r in open_routes)


def test_no_authorization_header_is_answered_by_api_gateway(gateway: Gateway):
    assert gateway.request("GET /pro/dashboard").status == 401


# -- plan-gated dashboard ----------------------------------------------------------------------


def test_dashboard_for_a_pro_user(gateway: Gateway):
    reply = gateway.request("GET /pro/dashboard", gateway.token(pla="u:pro", fea="u:export"))
    assert reply.status == 200
    assert reply.body["dashboard"] == {"user_id": USER, "org_id": None, "plans": ["pro"]}
    assert reply.body["limits"] == {"projects": 100}
    assert reply.body["granted_by"] == "token"


def test_dashboard_for_a_team_organization_via_the_store(gateway: Gateway, sender):
    applied(sender, "clerk/subscription.active.org.json")
    reply = gateway.request("GET /pro/dashboard", gateway.token(org={"id": ORG, "rol": "member"}))
    assert reply.status == 200
    assert reply.body["granted_by"] == "store"
    assert reply.body["limits"] == {"seats": 25}


@pytest.mark.parametrize("pla", ["u:free_user", "u:team", "u:pro_plus", ""])
def test_dashboard_denied(gateway: Gateway, pla):
    assert gateway.request("GET /pro/dashboard", gateway.token(pla=pla)).status == 403


# -- feature-gated export and analytics --------------------------------------------------------


def test_export_for_a_user_feature(gateway: Gateway):
    reply = gateway.request("GET /pro/export", gateway.token(pla="u:pro", fea="u:export,u:analytics"))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(reply.body)))
    assert rows == [["owner", "feature", "granted_by"], [USER, "analytics", "token"], [USER, "export", "token"]]


def test_export_for_an_organization_feature_exports_the_organization(gateway: Gateway):
    reply = gateway.request("GET /pro/export", gateway.token(pla="o:team", fea="o:export", org=ORG_ADMIN))
    assert reply.status == 200
    assert list(csv.reader(io.StringIO(reply.body)))[1][0] == ORG


@pytest.mark.parametrize("fea", ["", "u:analytics", "u:exports"])
def test_export_denied_without_the_feature(gateway: Gateway, fea):
    assert gateway.request("GET /pro/export", gateway.token(pla="u:pro", fea=fea)).status == 403


def test_analytics_scope_follows_the_grant(gateway: Gateway):
    user = gateway.request("GET /pro/analytics", gateway.token(fea="u:analytics"))
    org = gateway.request("GET /pro/analytics", gateway.token(fea="o:analytics", org=ORG_ADMIN))
    assert user.body["analytics"] == {"scope": "user", "subject": USER}
    assert org.body["analytics"] == {"scope": "organization", "subject": ORG}
    assert gateway.request("GET /pro/analytics", gateway.token(fea="u:export")).status == 403


# -- organization-plan-gated team page ---------------------------------------------------------


def test_team_page(gateway: Gateway):
    reply = gateway.request("GET /team", gateway.token(pla="o:team", org=ORG_ADMIN))
    assert reply.status == 200
    assert reply.body["team"] == {"org_id": ORG, "org_slug": "acme", "role": "org:admin"}
    assert reply.body["seats"] == 25


@pytest.mark.parametrize(
    ("pla", "org"),
    [("u:team", None), ("u:team", ORG_ADMIN), ("o:free_org", ORG_ADMIN)],
)
def test_team_page_denied(gateway: Gateway, pla, org):
    assert gateway.request("GET /team", gateway.token(pla=pla, org=org)).status == 403


def test_team_page_with_an_organization_plan_but_no_active_organization(gateway: Gateway):
    # has() reads pla as Clerk's SDK does (no organization check); Clerk never mints such a token,
    # and the route itself refuses it.
    reply = gateway.request("GET /team", gateway.token(pla="o:team"))
    assert (reply.status, reply.body["error"]) == (403, "no_active_organization")


# -- permission-gated organization setting -----------------------------------------------------


def test_org_settings_with_the_permission(gateway: Gateway):
    token = gateway.token(pla="o:team", fea="o:settings", org=ORG_ADMIN)
    reply = gateway.request("PUT /org/settings", token, body='{"display_name": " Acme Inc "}')
    assert reply.status == 200
    assert reply.body == {"org_id": ORG, "settings": {"display_name": "Acme Inc"}, "updated_by": USER}


@pytest.mark.parametrize(
    ("fea", "org"),
    [
        ("o:settings", {**ORG_ADMIN, "fpm": "0"}),  # the member lacks the permission
        ("o:teams", ORG_ADMIN),  # the permission's feature is not on the organization's plan
        ("u:settings", {**ORG_ADMIN}),  # a user feature does not carry organization permissions
        ("o:settings", None),  # no active organization
    ],
)
def test_org_settings_denied(gateway: Gateway, fea, org):
    token = gateway.token(pla="o:team", fea=fea, org=org)
    assert gateway.request("PUT /org/settings", token, body='{"display_name": "x"}').status == 403


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("not json", 400, "invalid_json"),
        ("[1, 2]", 400, "invalid_settings"),
        ('{"display_name": ""}', 400, "invalid_settings"),
        ('{"display_name": 7}', 400, "invalid_settings"),
        ('{"display_name": "' + "x" * 101 + '"}', 400, "invalid_settings"),
        ('{"display_name": "ok", "owner": "me"}', 400, "invalid_settings"),
        ('{"display_name": "' + "x" * 9000 + '"}', 413, "body_too_large"),
    ],
)
def test_org_settings_bad_input(gateway: Gateway, body, status, error):
    token = gateway.token(pla="o:team", fea="o:settings", org=ORG_ADMIN)
    reply = gateway.request("PUT /org/settings", token, body=body)
    assert (reply.status, reply.body["error"]) == (status, error)
    assert reply.body["message"]


# -- routes deployed without the authorizer ----------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        "PremiumDashboardFunction",
        "PremiumExportFunction",
        "PremiumAnalyticsFunction",
        "PremiumTeamFunction",
        "PremiumOrgSettingsFunction",
        "AccountFunction",
    ],
)
def test_a_route_without_authorizer_context_answers_401(table, function):
    from paygate_dev.apigw import http_event

    response = invoke(function, http_event("GET", "/x"))
    assert response["statusCode"] == 401
    assert '"error":"unauthenticated"' in response["body"]
