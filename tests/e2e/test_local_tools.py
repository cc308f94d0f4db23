"""The local tools without a server: generated state, session tokens, route selection."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from paygate.infra.tokens import TokenSettings, TokenVerifier
from paygate_dev.local_env import LOCAL_AUTHORIZED_PARTY, LOCAL_ISSUER, function_environment, load_state
from paygate_dev.serve import Target, match_path, select_route
from paygate_dev.template import Function, Route, functions, load, with_parameters
from paygate_dev.token import mint, session_claims

NOW_S = 1_800_000_000


def test_state_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_state(tmp_path, create=True)
    assert set(first.webhook_secrets) == {
        lid for lid, f in functions().items() if "WEBHOOK_SECRET_ARN" in f.environment
    }
    assert first.created
    again = load_state(tmp_path, create=True)
    assert again.webhook_secrets == first.webhook_secrets
    assert again.private_key_pem == first.private_key_pem
    assert again.created == []


def test_a_secret_set_by_hand_is_kept_and_the_first_one_signs(tmp_path: Path) -> None:
    name = next(iter(load_state(tmp_path, create=True).webhook_secrets))
    secrets = json.loads((tmp_path / "webhook-secrets.json").read_text())
    secrets[name] = "whsec_Zmlyc3Q=, whsec_c2Vjb25k"
    (tmp_path / "webhook-secrets.json").write_text(json.dumps(secrets))
    state = load_state(tmp_path, create=True)
    assert state.secret_of(name) == "whsec_Zmlyc3Q=, whsec_c2Vjb25k"
    assert state.signing_secret(name) == "whsec_Zmlyc3Q="


def test_the_authorizer_environment_trusts_the_local_key(tmp_path: Path) -> None:
    state = load_state(tmp_path, create=True)
    webhook = next(f for f in functions().values() if "WEBHOOK_SECRET_ARN" in f.environment)
    env = function_environment(webhook, state, "http://127.0.0.1:1")
    assert env["TABLE_NAME"] == "paygate-local"
    assert env["WEBHOOK_SECRET"] == state.secret_of(webhook.logical_id)
    assert env["GRACE_PERIOD_DAYS"] == "7"
    assert "CLERK_JWT_KEY" not in env
    assert not any(isinstance(v, dict) for v in env.values())


def test_a_minted_token_passes_paygates_own_verification(tmp_path: Path) -> None:
    state = load_state(tmp_path, create=True)
    claims = session_claims("user_1", plans=["pro"], features=["export"], now_s=NOW_S, ttl_s=60)
    token = mint(claims, state.private_key_pem, state.public_key_pem)
    settings = TokenSettings(
        issuer=LOCAL_ISSUER, authorized_parties=(LOCAL_AUTHORIZED_PARTY,), pem_key=state.public_key_pem
    )
    verified = TokenVerifier(settings).verify(token, NOW_S * 1000)
    assert verified["sub"] == "user_1"
    assert (verified["pla"], verified["fea"], verified["v"]) == ("u:pro", "u:export", 2)
    assert verified["exp"] - verified["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


def test_org_claims_use_clerks_compact_encoding() -> None:
    claims = session_claims(
        "user_1",
        org="org_1",
        plans=["team"],
        features=["dashboard", "teams"],
        role="org:admin",
        permissions=["org:dashboard:manage", "org:dashboard:read", "teams:read"],
        now_s=NOW_S,
    )
    assert claims["pla"] == "o:team"
    assert claims["fea"] == "o:dashboard,o:teams"
    # Clerk's own worked example: per "manage,read", fpm "3,2".
    assert claims["o"] == {"id": "org_1", "slg": "org_1", "rol": "admin", "per": "manage,read", "fpm": "3,2"}


def test_a_permission_brings_its_feature_and_scopes_can_be_explicit() -> None:
    claims = session_claims(
        "user_1", org="org_1", plans=["u:pro"], features=["u:export"], permissions=["org:settings:manage"], now_s=NOW_S
    )
    assert claims["pla"] == "u:pro"
    assert claims["fea"] == "u:export,o:settings"
    assert (claims["o"]["per"], claims["o"]["fpm"]) == ("manage", "1")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"role": "admin"}, "needs an active organization"),
        ({"org": "org_1", "permissions": ["manage"]}, "org:<feature>:<action>"),
        ({"plans": ["team:x"]}, "u:<slug> or o:<slug>"),
    ],
)
def test_bad_token_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        session_claims("user_1", now_s=NOW_S, **options)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/a/{id}", "/a/1", {"id": "1"}),
        ("/a/{id}", "/a/", None),
        ("/a/{id}", "/a/1/2", None),
        ("/a/{proxy+}", "/a", None),
        ("/a/{proxy+}", "/a/x/y%2Fz", {"proxy": "x/y/z"}),
        ("/a/b", "/a/b/", None),
    ],
)
def test_path_matching(pattern: str, path: str, expected: dict | None) -> None:
    assert match_path(pattern, path) == expected


def test_route_selection_prefers_method_then_literal_then_variable_then_greedy() -> None:
    fn = Function("F", Path("."), "app.handler")
    routes = [Route("ANY", "/r/{x}", None), Route("GET", "/r/{proxy+}", None), Route("GET", "/r/{x}", None)]
    routes += [Route("GET", "/r/fixed", None), Route("ANY", "$default", None)]
    targets = [Target(r, fn) for r in routes]
    assert select_route(targets, "GET", "/r/fixed").target.route.path == "/r/fixed"
    assert select_route(targets, "GET", "/r/1").target.route == Route("GET", "/r/{x}", None)
    assert select_route(targets, "GET", "/r/1/2").target.route.path == "/r/{proxy+}"
    assert select_route(targets, "POST", "/r/1").target.route.method == "ANY"
    assert select_route(targets, "POST", "/elsewhere").target.route.path == "$default"


def test_reserved_concurrency_is_read_as_deployed_from_the_templates_conditions() -> None:
    webhook, authorizer = "ClerkSubscriptionsFunction", "AuthorizerFunction"
    # Both parameters default to 0, which the template's conditions turn into no reservation at all.
    assert functions()[webhook].reserved_concurrency is None
    assert functions()[authorizer].reserved_concurrency is None
    limited = functions(
        with_parameters(load(), {"WebhookConcurrencyLimit": "10", "AuthorizerReservedConcurrency": "100"})
    )
    assert limited[webhook].reserved_concurrency == 10
    assert limited[authorizer].reserved_concurrency == 100
    assert limited["AccountFunction"].reserved_concurrency is None
