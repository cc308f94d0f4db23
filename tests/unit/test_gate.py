"""Clerk's has() over hand-built claims, and gates built from the catalog's vocabulary.

The expected answers are the worked examples of docs/reference/clerk-session-tokens.md §4.
"""

from __future__ import annotations

import pytest

from paygate.domain.gate import (
    AllOf,
    AnyOf,
    Check,
    CheckKind,
    Grants,
    Scoped,
    SignedIn,
    has,
    needs_billing,
    parse_gate,
    payer_kinds,
)
from paygate.domain.state import PayerKind
from paygate.providers.clerk_session import ClaimError, expand_permissions, session_from_claims
from paygate.service.context import Source, caller_from_context, route_context


def check(kind: CheckKind, value: str) -> Check:
    parsed = Check.parse(kind, value)
    assert parsed is not None
    return parsed


B2C = {"v": 2, "sub": "user_123", "sid": "sess_1", "pla": "u:pro", "fea": "u:export,u:analytics"}
ORG_MEMBER = {
    "v": 2,
    "sub": "user_123",
    "sid": "sess_1",
    "pla": "o:team",
    "fea": "o:dashboard,o:teams,u:export",
    "o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "manage,read", "fpm": "3,2"},
}
LEGACY_V1 = {
    "sub": "user_9",
    "sid": "sess_9",
    "org_id": "org_9",
    "org_slug": "x",
    "org_role": "org:admin",
    "org_permissions": ["org:teams:manage"],
}


def grants(claims: dict) -> Grants:
    return session_from_claims(claims).grants


# -- example A: B2C user, no active organization --------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"plan": "pro"}, True),
        ({"plan": "user:pro"}, True),
        ({"plan": "u:pro"}, True),
        ({"plan": "org:pro"}, False),
        ({"plan": "o:pro"}, False),
        ({"feature": "export"}, True),
        ({"feature": "org:export"}, False),
        ({"feature": "user:analytics"}, True),
        ({"permission": "org:export:read"}, False),
        ({"role": "admin"}, False),
        ({}, False),
    ],
)
def test_b2c_user_without_organization(query, expected):
    assert has(grants(B2C), **query) is expected


# -- example B: organization member with billing -------------------------------------------------


def test_org_member_derived_values():
    session = session_from_claims(ORG_MEMBER)
    assert session.version == 2
    assert session.org_id == "org_1"
    assert session.org_slug == "acme"
    assert session.grants.org_role == "org:admin"
    assert session.grants.org_permissions == {"org:dashboard:manage", "org:dashboard:read", "org:teams:read"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"role": "admin"}, True),
        ({"role": "org:admin"}, True),
        ({"role": "org:org:admin"}, True),
        ({"role": "org:member"}, False),
        ({"permission": "org:teams:read"}, True),
        ({"permission": "teams:read"}, True),
        ({"permission": "org:teams:manage"}, False),
        ({"permission": "org:dashboard:manage"}, True),
        ({"feature": "teams"}, True),
        ({"feature": "org:teams"}, True),
        ({"feature": "organization:teams"}, True),
        ({"feature": "user:teams"}, False),
        ({"feature": "export"}, True),
        ({"feature": "u:export"}, True),
        ({"feature": "org:export"}, False),
        ({"plan": "team"}, True),
        ({"plan": "org:team"}, True),
        ({"plan": "user:team"}, False),
        ({"role": "admin", "permission": "org:teams:read"}, True),
        ({"role": "member", "permission": "org:teams:read"}, False),
        ({"feature": "teams", "plan": "org:team"}, True),
        ({"feature": "teams", "plan": "user:team"}, False),
        ({"feature": "bogus:teams"}, False),
    ],
)
def test_org_member_with_billing(query, expected):
    assert has(grants(ORG_MEMBER), **query) is expected


# -- example C: legacy v1 token ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"permission": "teams:manage"}, True),
        ({"permission": "org:teams:manage"}, True),
        ({"role": "admin"}, True),
        ({"feature": "teams"}, False),
        ({"plan": "x"}, False),
    ],
)
def test_legacy_v1_token(query, expected):
    assert has(grants(LEGACY_V1), **query) is expected


def test_v1_and_v2_forms_of_one_session_are_the_same():
    v2 = {
        "v": 2,
        "sub": "u",
        "fea": "o:impersonation",
        "o": {"id": "org_1", "rol": "admin", "per": "read,manage", "fpm": "3"},
    }
    v1 = {
        "sub": "u",
        "fea": "o:impersonation",
        "org_id": "org_1",
        "org_role": "org:admin",
        "org_permissions": ["org:impersonation:read", "org:impersonation:manage"],
    }
    assert grants(v1) == grants(v2)


def test_v2_ignores_v1_org_claims():
    claims = {"v": 2, "sub": "u", "org_id": "org_1", "org_role": "org:admin", "org_permissions": ["org:a:b"]}
    assert grants(claims).org_id is None
    assert has(grants(claims), role="admin") is False


# -- the fpm expansion ---------------------------------------------------------------------------


def test_fpm_sdk_example():
    perms = expand_permissions(["repositories", "projects"], "read,create,update,delete,revoke", "7,21")
    assert perms == {
        "org:repositories:read",
        "org:repositories:create",
        "org:repositories:update",
        "org:projects:read",
        "org:projects:update",
        "org:projects:revoke",
    }


def test_fpm_indexes_only_organization_features_in_claim_order():
    claims = {
        "v": 2,
        "sub": "u",
        "fea": "o:repositories,uo:projects,u:goldprofileborder",
        "o": {"id": "org_1", "rol": "member", "per": "read,create,update,delete,revoke", "fpm": "7,21"},
    }
    perms = grants(claims).org_permissions
    assert "org:projects:revoke" in perms
    assert not any(p.startswith("org:goldprofileborder:") for p in perms)


@pytest.mark.parametrize(
    ("per", "fpm", "expected"),
    [
        ("read", "3", {"org:a:read"}),  # bit 1 has no name: ignored, not org:a:undefined
        ("read", "x", set()),  # not a number
        ("read", "-1", set()),
        ("read", "", set()),
        ("", "1", set()),
        (None, "1", set()),
        ("read", None, set()),
        ("read,write", "1", {"org:a:read"}),  # fewer masks than features: the rest get nothing
    ],
)
def test_fpm_edge_cases(per, fpm, expected):
    assert expand_permissions(["a", "b"], per, fpm) == expected


def test_permission_without_its_feature_in_the_plan_does_not_exist():
    # The member has the 'settings' permissions in Clerk, but the organization's plan lacks the feature:
    # Clerk sends no fpm entry for it, so has() is false "even if the user has the Custom Permission".
    claims = {"v": 2, "sub": "u", "fea": "o:teams", "o": {"id": "org_1", "rol": "admin", "per": "manage", "fpm": "1"}}
    assert has(grants(claims), permission="org:teams:manage") is True
    assert has(grants(claims), permission="org:settings:manage") is False


# -- quirks paygate refuses, malformed claims ----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"plan": "org:team:extra"},
        {"plan": "org:"},
        {"plan": ""},
        {"feature": "teams:"},
        {"feature": ":teams"},
        {"role": "org:"},
        {"role": ""},
        {"role": "org:admin:x"},
        {"permission": "org:"},
        {"permission": "org:teams"},
        {"permission": "org:teams:read:x"},
        {"permission": "org::read"},
    ],
)
def test_query_forms_that_never_match(query):
    assert has(grants(ORG_MEMBER), **query) is False


def test_a_claim_with_an_element_without_a_colon_grants_nothing():
    claims = {"v": 2, "sub": "u", "pla": "u:pro", "fea": "u:export,broken"}
    assert has(grants(claims), feature="export") is False
    assert has(grants(claims), plan="pro") is True


def test_claim_elements_are_trimmed_and_unknown_scopes_dropped():
    claims = {"v": 2, "sub": "u", "fea": " u:export , x:secret ,ou:both"}
    g = grants(claims)
    assert has(g, feature="export") and has(g, feature="user:both") and has(g, feature="org:both")
    assert has(g, feature="secret") is False


def test_matching_is_case_sensitive():
    assert has(grants(B2C), plan="Pro") is False


def test_no_user_means_no_access():
    assert has(Grants(user_id=None, plans=Scoped(user=("pro",))), plan="pro") is False
    with pytest.raises(ClaimError):
        session_from_claims({"v": 2, "pla": "u:pro"})
    with pytest.raises(ClaimError):
        session_from_claims({"v": 2, "sub": 42})


def test_pending_session_is_flagged():
    assert session_from_claims({**B2C, "sts": "pending"}).pending is True
    assert session_from_claims({**B2C, "sts": "active"}).pending is False


def test_an_organization_without_id_is_no_organization():
    claims = {"v": 2, "sub": "u", "o": {"id": "", "rol": "admin"}}
    assert grants(claims).org_id is None
    assert has(grants(claims), role="admin") is False


# -- gates: parsing ------------------------------------------------------------------------------


def test_parse_leaf_and_combinations():
    assert parse_gate({"plan": "pro"}) == check(CheckKind.PLAN, "pro")
    gate = parse_gate({"any": [{"plan": "pro"}, {"all": [{"plan": "org:team"}, {"role": "admin"}]}]})
    assert gate == AnyOf(
        (check(CheckKind.PLAN, "pro"), AllOf((check(CheckKind.PLAN, "org:team"), check(CheckKind.ROLE, "admin"))))
    )
    # Several keys in one table are ANDed, as in one has() call.
    assert parse_gate({"role": "admin", "permission": "org:teams:read"}) == AllOf(
        (check(CheckKind.PERMISSION, "org:teams:read"), check(CheckKind.ROLE, "admin"))
    )


def test_a_check_keeps_its_parsed_scope_and_key():
    assert check(CheckKind.PLAN, "o:team") == Check(CheckKind.PLAN, "o:team", PayerKind.ORGANIZATION, "team")
    assert check(CheckKind.FEATURE, "export") == Check(CheckKind.FEATURE, "export", None, "export")
    assert check(CheckKind.ROLE, "admin").key == "org:admin"
    assert check(CheckKind.PERMISSION, "org:org:teams:read").key == "org:teams:read"
    assert Check.parse(CheckKind.PLAN, "a:b:c") is None and Check.parse(CheckKind.ROLE, "org:") is None
    assert parse_gate({"signed_in": True}) == SignedIn()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "empty gate"),
        ("pro", "must be a table"),
        ({"plan": ""}, "non-empty string"),
        ({"plan": 3}, "non-empty string"),
        ({"plan": "org:team:x"}, "is not <slug>"),
        ({"plan": "bogus:team"}, "is not <slug>"),
        ({"feature": "org:"}, "is not <slug>"),
        ({"feature": "has space"}, "is not <slug>"),
        ({"role": "org:"}, "is not a role"),
        ({"permission": "org:settings"}, "is not a permission"),
        ({"any": []}, "non-empty list"),
        ({"all": {"plan": "pro"}}, "non-empty list"),
        ({"signed_in": False}, "must be true"),
        ({"plans": "pro"}, "unknown key"),
    ],
)
def test_parse_rejects(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_gate(raw)


def test_parse_error_names_the_nested_place():
    with pytest.raises(ValueError, match=r"any\[1\]\.plan"):
        parse_gate({"any": [{"plan": "pro"}, {"plan": "x:y:z"}]})


# -- gates: evaluation ---------------------------------------------------------------------------


def test_gate_evaluation_over_claims():
    member = grants(ORG_MEMBER)
    b2c = grants(B2C)
    team_or_pro = parse_gate({"any": [{"plan": "user:pro"}, {"plan": "org:team"}]})
    assert team_or_pro.allows(member) and team_or_pro.allows(b2c)
    admin_with_teams = parse_gate({"all": [{"role": "admin"}, {"feature": "org:teams"}]})
    assert admin_with_teams.allows(member) and not admin_with_teams.allows(b2c)
    assert parse_gate({"signed_in": True}).allows(b2c)
    assert not parse_gate({"signed_in": True}).allows(Grants(user_id=None))


def test_needs_billing_and_payer_kinds():
    assert not needs_billing(parse_gate({"role": "admin"}))
    assert not needs_billing(parse_gate({"signed_in": True}))
    assert needs_billing(parse_gate({"any": [{"role": "admin"}, {"feature": "x"}]}))
    assert payer_kinds(parse_gate({"plan": "pro"}), org_active=True) == {PayerKind.USER, PayerKind.ORGANIZATION}
    assert payer_kinds(parse_gate({"plan": "pro"}), org_active=False) == {PayerKind.USER}
    assert payer_kinds(parse_gate({"plan": "user:pro"}), org_active=True) == {PayerKind.USER}
    assert payer_kinds(parse_gate({"feature": "org:x"}), org_active=True) == {PayerKind.ORGANIZATION}
    assert payer_kinds(parse_gate({"feature": "org:x"}), org_active=False) == set()
    assert payer_kinds(parse_gate({"permission": "org:x:y"}), org_active=True) == {PayerKind.ORGANIZATION}
    assert payer_kinds(parse_gate({"role": "admin"}), org_active=True) == set()


# -- the route context ---------------------------------------------------------------------------


def test_route_context_round_trip():
    session = session_from_claims(ORG_MEMBER)
    context = route_context(session.user_id, session.session_id, session.org_slug, session.grants, Source.TOKEN)
    assert all(isinstance(v, str) for v in context.values())
    assert context["plans"] == "o:team"
    assert context["source"] == "token"
    caller = caller_from_context(context)
    assert caller is not None
    assert caller.grants == Grants(
        user_id="user_123",
        org_id="org_1",
        org_role="org:admin",
        org_permissions=session.grants.org_permissions,
        plans=Scoped(org=("team",)),
        features=Scoped(org=("dashboard", "teams"), user=("export",)),
    )
    assert caller.has(permission="teams:read") and caller.has(plan="org:team") and not caller.has(plan="user:team")
    assert caller.plan_slugs() == ["team"]


@pytest.mark.parametrize("context", [None, {}, {"user_id": "u"}, {"user_id": "", "source": "token"}, {"source": "x"}])
def test_no_caller_without_a_complete_context(context):
    assert caller_from_context(context) is None


def test_organization_entries_count_without_checking_the_organization_as_in_the_sdk():
    # Clerk only writes o: entries when an organization is active, and the SDK relies on that: has()
    # does not look at the organization for plans and features. paygate reads claims the same way.
    assert has(grants({"v": 2, "sub": "u", "pla": "o:team"}), plan="org:team") is True


# -- reverification in a gate ------------------------------------------------------------------


def test_a_reverification_gate_needs_a_fresh_enough_session():
    gate = parse_gate({"all": [{"role": "admin"}, {"reverification": "strict"}]})
    fresh = grants({**ORG_MEMBER, "fva": [3, 2]})
    stale = grants({**ORG_MEMBER, "fva": [3, 12]})
    assert gate.allows(fresh) and not gate.allows(stale)
    assert not gate.allows(grants(ORG_MEMBER))  # no fva: a reverification check fails
    custom = parse_gate({"reverification": {"level": "first_factor", "after_minutes": 5}})
    assert custom.allows(grants({**B2C, "fva": [4, -1]})) and not custom.allows(grants({**B2C, "fva": [5, -1]}))
    # Not a billing check: the store cannot change its answer.
    assert not needs_billing(parse_gate({"reverification": "strict"}))
    assert needs_billing(parse_gate({"all": [{"reverification": "strict"}, {"plan": "pro"}]}))


@pytest.mark.parametrize(
    "config", ["STRICT", "", {"level": "multiFactor", "after_minutes": 10}, {"level": "first_factor"}]
)
def test_a_bad_reverification_names_the_place(config):
    with pytest.raises(ValueError, match=r"any\[0\]\.reverification"):
        parse_gate({"any": [{"reverification": config}]})


def test_the_route_context_carries_the_factor_ages():
    session = session_from_claims({**ORG_MEMBER, "fva": [3, -1]})
    context = route_context(session.user_id, session.session_id, session.org_slug, session.grants, Source.TOKEN)
    assert context["factor_verification_age"] == "3,-1"
    caller = caller_from_context(context)
    assert caller.has(reverification="strict") and not caller.has(
        reverification={"level": "multi_factor", "afterMinutes": 1}
    )
