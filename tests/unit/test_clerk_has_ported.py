"""Clerk's own test cases for has() and the claims parser, ported (clerk/javascript at
e21ae9a4cf189ed20cb04bee94497533cd9d4dbe):

* ``packages/shared/src/__tests__/authorization.spec.ts`` (createCheckAuthorization, splitByScope),
* ``packages/shared/src/__tests__/jwtPayloadParser.spec.ts``,
* ``packages/backend/src/tokens/__tests__/authObjects.test.ts`` (signedInAuthObject from claims),
* ``packages/clerk-js/src/core/resources/__tests__/Session.test.ts`` (reverification).

Clerk passes options straight to createCheckAuthorization in the first file; here they are built as
the token claims that carry them. Queries with JavaScript ``null`` values have no Python form (``None``
means "not asked") and are left out.
"""

from __future__ import annotations

import pytest

from paygate.domain.gate import Grants, Scoped, has
from paygate.providers.clerk_session import ClaimError, session_from_claims, split_by_scope

BASE = {"sub": "sub", "sid": "sid", "iss": "https://api.clerk.com", "azp": "azp"}


def v2(fea: str = "", pla: str = "", org: dict | None = None, **extra) -> Grants:
    claims = {**BASE, "v": 2, "fea": fea, "pla": pla, **extra}
    if org is not None:
        claims["o"] = org
    return session_from_claims(claims).grants


def v1(**org_claims) -> Grants:
    return session_from_claims({**BASE, **org_claims}).grants


# -- authorization.spec.ts ---------------------------------------------------------------------------

SPEC = Grants(
    user_id="user_1",
    org_id="org_123",
    org_role="admin",  # unprefixed, as the spec passes it
    org_permissions=frozenset({"org:read"}),
    plans=Scoped(user=()),
    features=split_by_scope("o:reservations,u:dashboard"),
    factor_verification_age=(1000, 2000),
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [  # authorization.spec.ts:6-25
        ({"feature": "o:reservations"}, True),
        ({"feature": "org:reservations"}, True),
        ({"feature": "organization:reservations"}, True),
        ({"feature": "reservations"}, True),
        ({"feature": "u:dashboard"}, True),
        ({"feature": "user:dashboard"}, True),
        ({"feature": "dashboard"}, True),
        ({"feature": "lol:dashboard"}, False),
        ({}, False),  # :79-90
    ],
)
def test_feature_scopes(query, expected):
    assert has(SPEC, **query) is expected


def test_a_role_that_is_not_a_string_fails():  # :27-38 (orgRole 123)
    assert has(v2(org={"id": "org_1", "rol": 123}), role="org:admin") is False


def test_every_asked_dimension_must_pass():
    grants = Grants(
        "user_1",
        "org_123",
        "org:admin",
        frozenset({"org:sys_memberships:read"}),
        split_by_scope("u:plus"),
        split_by_scope("o:reservations"),
        (0, 0),
    )
    assert has(grants, permission="org:sys_profile:delete", feature="org:reservations") is False  # :157-171
    assert has(grants, permission="org:sys_memberships:read", feature="org:reservations") is True
    assert has(grants, role="org:admin", permission="org:sys_profile:delete") is False  # :173-187
    assert has(grants, role="org:admin", permission="org:sys_memberships:read") is True
    assert has(grants, feature="org:reservations", plan="u:plus") is True  # :189-202
    assert has(grants, feature="org:reservations", plan="u:free") is False
    assert has(grants, feature="org:missing", plan="u:plus") is False
    assert has(grants, role="org:member", permission="org:sys_memberships:read") is False  # :263-275
    assert has(grants, role="org:admin", feature="org:missing") is False  # :277-293
    assert has(grants, role="org:admin", plan="u:free") is False
    assert has(grants, role="org:admin", feature="org:reservations") is True  # :321-332
    assert has(grants, permission="org:sys_memberships:read", reverification="strict") is True  # :308-319
    assert has(grants, permission="org:sys_memberships:read", feature="org:reservations", reverification="strict")


def test_reverification_with_no_organization_or_no_ages_fails():
    no_org = Grants("user_1", factor_verification_age=(0, 0))
    assert has(no_org, permission="org:sys_profile:delete", reverification="strict") is False  # :92-116
    assert has(no_org, role="org:admin", reverification="strict") is False
    no_age = Grants("user_1", "org_1", "org:admin", frozenset({"org:a:b"}))
    assert has(no_age, permission="org:a:b", reverification="strict") is False  # :118-129


@pytest.mark.parametrize(
    ("fva", "config", "expected"),
    [
        (["0", "0"], "strict_mfa", False),  # :131-142
        ([0, 0], "invalid-value", False),  # :144-155
        ([-0.5, 0], "strict", False),  # :217-228
        ([0, 0], {"level": "multi_factor"}, False),  # :248-261
        ([0, 0], {"level": "multi_factor", "afterMinutes": 0}, False),
        ([0, 0], {"level": "multi_factor", "afterMinutes": -1}, False),
        ([0, -1], "strict_mfa", True),  # :353-364
        ([-1, -1], "strict", False),  # :366-377
    ],
)
def test_reverification_configs_and_ages(fva, config, expected):
    grants = v2(org={"id": "org_1", "rol": "admin"}, fva=fva)
    assert has(grants, reverification=config) is expected


def test_split_by_scope():  # :381-395
    assert split_by_scope("o:reservations,u:dashboard") == Scoped(("reservations",), ("dashboard",))
    both = split_by_scope("o:reservations,u:dashboard,ou:support-chat,uo:billing")
    assert both == Scoped(("reservations", "support-chat", "billing"), ("dashboard", "support-chat", "billing"))
    with pytest.raises(ClaimError, match="missing colon"):
        split_by_scope("reservations,dashboard", strict=True)


# -- jwtPayloadParser.spec.ts ------------------------------------------------------------------------


def permissions(fea: str, per: str, fpm: str) -> frozenset[str]:
    return v2(
        fea=fea, org={"id": "org_xxxxxxx", "rol": "admin", "slg": "org_test", "per": per, "fpm": fpm}
    ).org_permissions


def test_v2_without_an_organization_has_no_organization():  # :45-60
    grants = v2(fea="u:impersonation,u:memberships")
    assert (grants.org_id, grants.org_role, grants.org_permissions) == (None, None, frozenset())


@pytest.mark.parametrize(
    ("fea", "per", "fpm", "expected"),
    [
        ("o:impersonation", "read,manage", "3", {"org:impersonation:read", "org:impersonation:manage"}),  # :62-84
        (
            "o:impersonation,o:memberships",
            "read,manage",
            "1,3",
            {"org:impersonation:read", "org:memberships:read", "org:memberships:manage"},
        ),  # :86-103
        (
            "o:impersonation,o:memberships,o:feature3",
            "read,manage",
            "1,3,0",
            {"org:impersonation:read", "org:memberships:read", "org:memberships:manage"},
        ),  # :105-122
        (
            "uo:impersonation,o:memberships,uo:feature3",
            "read,manage",
            "1,3,1",
            {"org:impersonation:read", "org:memberships:read", "org:memberships:manage", "org:feature3:read"},
        ),  # :124-141
        (
            "ou:memberships,u:impersonation",
            "read,manage",
            "3,0",
            {"org:memberships:read", "org:memberships:manage"},
        ),  # :173-190
        (
            "o:repositories,o:projects",
            "read,create,update,delete,revoke",
            "7,21",
            {
                "org:repositories:read",
                "org:repositories:create",
                "org:repositories:update",
                "org:projects:read",
                "org:projects:update",
                "org:projects:revoke",
            },
        ),  # :221-245
        (
            "o:repositories,o:projects,o:webhooks,o:impersonation",
            "read,manage",
            "1,2,3,0",
            {"org:repositories:read", "org:projects:manage", "org:webhooks:read", "org:webhooks:manage"},
        ),  # :247-264
        (
            "o:repositories,o:impersonation,o:billing",
            "manage,read,update",
            "6,0,3",
            {"org:repositories:read", "org:repositories:update", "org:billing:manage", "org:billing:read"},
        ),  # :321-351
    ],
)
def test_permission_masks(fea, per, fpm, expected):
    assert permissions(fea, per, fpm) == expected


def test_no_per_or_fpm_means_no_permissions_and_the_role_is_prefixed():  # :143-171
    grants = v2(fea="o:impersonation", org={"id": "org_1", "rol": "admin"})
    assert grants.org_permissions == frozenset() and grants.org_role == "org:admin"


def test_masks_are_exact_beyond_two_to_the_53():  # :292-319
    names = ",".join(f"permission_{i}" for i in range(54))
    assert permissions("o:feature", names, "9007199254740993") == {
        "org:feature:permission_0",
        "org:feature:permission_53",
    }
    assert permissions("o:feature", names, "9007199254740995") == {
        "org:feature:permission_0",
        "org:feature:permission_1",
        "org:feature:permission_53",
    }
    assert permissions("o:feature", names, "18014398509481984") == frozenset()  # bit 54: past the names


@pytest.mark.parametrize("mask", ["1invalid", "-1", "1.5"])
def test_a_mask_that_is_not_digits_grants_nothing(mask):  # :368-373
    assert permissions("o:feature", "permission_0", mask) == frozenset()


@pytest.mark.parametrize(("mask", "bits"), [("1", [0]), ("3", [0, 1]), ("7", [0, 1, 2]), ("21", [0, 2, 4])])
def test_mask_bits(mask, bits):  # :353-366
    names = ",".join(f"p{i}" for i in range(5))
    assert permissions("o:f", names, mask) == {f"org:f:p{i}" for i in bits}


# -- authObjects.test.ts -------------------------------------------------------------------------------


def test_v1_without_an_organization():  # :81-99
    grants = v1()
    for query in ({"role": "org:admin"}, {"role": "admin"}, {"permission": "org:f1:read"}, {"feature": "org:x"}):
        assert has(grants, **query) is False


@pytest.mark.parametrize("role", ["org:admin", "admin"])
def test_v1_roles_and_permissions(role):  # :101-155
    grants = v1(org_id="org_1", org_role=role, org_permissions=["org:f1:read", "org:f2:manage"])
    assert has(grants, role="org:admin") and has(grants, role="admin")
    assert has(grants, permission="org:f1:read") and has(grants, permission="f1:read")
    assert has(grants, permission="org:f2:manage")
    assert not has(grants, permission="org:f1") and not has(grants, permission="org:f2")
    assert not has(grants, feature="org:reservations")


def test_v2_roles_permissions_and_features():  # :159-260
    grants = v2(
        fea="o:reservations,o:impersonation", org={"id": "org_1", "rol": "admin", "per": "read,manage", "fpm": "3"}
    )
    assert has(grants, role="org:admin") and has(grants, role="admin")
    assert has(grants, permission="org:reservations:read") and has(grants, permission="reservations:read")
    assert has(grants, permission="org:reservations:manage")
    assert not has(grants, permission="org:impersonation:read")
    assert has(grants, feature="org:reservations") and has(grants, feature="org:impersonation")
    assert has(v2(org={"id": "org_1", "rol": "org:admin"}), role="admin")  # :196-219
    mixed = v2(
        fea="o:reservations,u:dashboard,uo:support-chat,o:impersonation",
        pla="u:pro,o:business",
        org={"id": "org_1", "rol": "member", "per": "read,manage", "fpm": "2,3"},
    )
    assert not has(mixed, permission="org:reservations:read") and has(mixed, permission="org:reservations:manage")
    assert has(mixed, permission="org:support-chat:read") and has(mixed, permission="org:support-chat:manage")
    assert has(mixed, feature="org:reservations") and not has(mixed, feature="user:reservations")
    assert has(mixed, feature="user:dashboard") and not has(mixed, feature="org:dashboard")
    assert has(mixed, feature="org:support-chat") and has(mixed, feature="user:support-chat")
    assert has(mixed, plan="u:pro") and has(mixed, plan="o:business") and not has(mixed, plan="o:pro")


# -- Session.test.ts (reverification) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fva", "config", "expected"),
    [
        ([0, 0], {"level": "multi_factor", "afterMinutes": 10}, True),
        ([0, 10], {"level": "multi_factor", "afterMinutes": 10}, False),
        ([10, 0], {"level": "multi_factor", "afterMinutes": 10}, False),
        ([0, -1], {"level": "multi_factor", "afterMinutes": 10}, True),
        ([11, -1], "strict", False),
        ([0, -1], "strict_mfa", True),
        ([11, -1], {"level": "multi_factor", "afterMinutes": 10}, False),
        ([0, 10], {"level": "multiFactor", "afterMinutes": 10}, False),
        ([10, 10], {"level": "multi_factor", "afterMinutes": 10}, False),
        (None, "strict", False),
        ([0, 0], {"level": "any level", "afterMinutes": 10}, False),
        ([0, 0], {"level": "first_factor", "afterMinutes": "some-value"}, False),
        ([0, 0], 123, False),
        ([0, 0], {"level": "first_factor", "afterMinutes": "10"}, False),
        ([-1, 0], {"level": "multi_factor", "afterMinutes": 10}, False),
        ([-1, 0], {"level": "first_factor", "afterMinutes": 10}, False),
        ([-1, 0], "strict", True),
    ],
)
def test_session_reverification(fva, config, expected):
    claims = {**BASE, "v": 2}
    if fva is not None:
        claims["fva"] = fva
    assert has(session_from_claims(claims).grants, reverification=config) is expected


def test_a_malformed_feature_claim_with_an_organization_refuses_the_session():
    # jwtPayloadParser.ts: splitByScope(fea) throws while building the organization's part.
    with pytest.raises(ClaimError):
        session_from_claims({**BASE, "v": 2, "fea": "o:a,,", "o": {"id": "org_1", "rol": "admin"}})
    with pytest.raises(ClaimError):
        session_from_claims({**BASE, "v": 2, "fea": "o:a", "o": {"id": "org_1", "per": 5, "fpm": "1"}})
    # Without an organization the session is built and only feature checks fail against it.
    grants = session_from_claims({**BASE, "v": 2, "fea": "o:a,,", "pla": "u:pro"}).grants
    assert has(grants, plan="pro") and not has(grants, feature="a")


def test_masks_beyond_pythons_digit_limit_decode_exactly():
    # Clerk decodes a mask string of any length; Python refuses int() of more than 4,300 digits at once.
    names = ",".join(f"p{i}" for i in range(4400))
    mask = "1" + "0" * 4500  # 10**4500: its low 4,400 bits are those of 10**4500 mod 2**4400
    granted = permissions("o:f", names, mask)
    expected = {f"org:f:p{i}" for i in range(4400) if (10**4500 >> i) & 1}
    assert granted == expected
