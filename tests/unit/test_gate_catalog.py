"""Route gates are validated when the catalog loads: a bad one fails the cold start, naming the route."""

from __future__ import annotations

import pytest

from paygate.domain.catalog import CatalogError, parse_catalog
from paygate.domain.gate import AnyOf, Check, CheckKind, parse_gate
from paygate.domain.state import PayerKind
from paygate.infra.catalog_file import load_catalog

PLANS = {
    "pro": {"features": ["export", "analytics"]},
    "team": {"scope": "org", "features": ["export", "settings"]},
}


def catalog_with(routes: dict) -> dict:
    return {"plans": PLANS, "routes": routes}


def test_the_shipped_catalog_holds_parsed_gates():
    gates = load_catalog().routes
    assert gates["GET /pro/dashboard"] == AnyOf(
        (
            Check(CheckKind.PLAN, "pro", None, "pro"),
            Check(CheckKind.PLAN, "org:team", PayerKind.ORGANIZATION, "team"),
        )
    )
    assert gates["PUT /org/settings"] == Check(
        CheckKind.PERMISSION, "org:settings:manage", PayerKind.ORGANIZATION, "org:settings:manage"
    )


@pytest.mark.parametrize(
    "gate",
    [
        {"plan": "pro"},
        {"plan": "user:pro"},
        {"plan": "org:team"},
        {"feature": "export"},
        {"feature": "org:export"},
        {"feature": "u:analytics"},
        {"permission": "org:settings:manage"},
        {"permission": "settings:read"},
        {"role": "admin"},
        {"all": [{"role": "org:admin"}, {"any": [{"plan": "team"}, {"feature": "analytics"}]}]},
        {"signed_in": True},
    ],
)
def test_valid_gates(gate):
    assert parse_catalog(catalog_with({"GET /x": gate})).routes["GET /x"] == parse_gate(gate)


@pytest.mark.parametrize(
    ("route_key", "gate", "message"),
    [
        ("GET /x", {"plan": "prp"}, "unknown plan 'prp'"),
        ("GET /x", {"plan": "org:pro"}, "'pro' is a user plan"),
        ("GET /x", {"plan": "user:team"}, "'team' is an organization plan"),
        ("GET /x", {"feature": "exports"}, "no plan in the catalog has the feature 'exports'"),
        ("GET /x", {"feature": "org:analytics"}, "no organization plan in the catalog has the feature 'analytics'"),
        ("GET /x", {"permission": "org:analytics:read"}, "no organization plan in the catalog has the feature"),
        ("GET /x", {"any": [{"plan": "pro"}, {"plan": "nope"}]}, r"any\[1\]\.plan"),
        ("GET /x", {}, "empty gate"),
        ("GET /x", {"plan": "org:team:x"}, "is not <slug>"),
        ("get /x", {"plan": "pro"}, "not a route key"),
        ("GET x", {"plan": "pro"}, "not a route key"),
        ("/x", {"plan": "pro"}, "not a route key"),
    ],
)
def test_bad_gates_fail_naming_the_route(route_key, gate, message):
    with pytest.raises(CatalogError, match=message) as raised:
        parse_catalog(catalog_with({route_key: gate}))
    assert f"routes.{route_key!r}" in str(raised.value)


def test_default_route_and_any_method_are_route_keys():
    routes = {"$default": {"signed_in": True}, "ANY /pro/{proxy+}": {"plan": "pro"}}
    assert set(parse_catalog(catalog_with(routes)).routes) == set(routes)
