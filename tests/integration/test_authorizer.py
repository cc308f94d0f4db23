"""The authorizer through its real handler, on DynamoDB Local, with state written by the real webhook handlers.

``Gateway`` plays API Gateway for one request: the identity source check, the payload 2.0 REQUEST
event for the authorizer, then the route's function with the simple response's context at
``requestContext.authorizer.lambda``. Tokens are RS256, signed with a key generated for the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from paygate.service.authorizer import container_authorizer
from paygate_dev import LAYER_DIR, ROOT
from paygate_dev.apigw import http_event
from paygate_dev.invoke import invoke
from paygate_dev.template import functions
from tests.conftest import sample, sample_json
from tests.unit.test_tokens import jwk, jwks_server

__all__ = ["jwks_server"]  # a fixture used below

ISSUER = "https://clerk.paygate.test"
PARTY = "https://app.paygate.test"
#: A fixed instant shortly after the Clerk samples' events (their times are in late 2026).
T0 = 1_797_100_000_000
USER = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"  # the payer of events/clerk/subscription.active.json
ORG = "org_2xYb7Rk4Nq1WmT9cLz3VpH6sJd8"  # the payer of events/clerk/subscription.active.org.json
DAY_MS = 86_400_000


@pytest.fixture(scope="session")
def signing_key() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public_pem


def route_functions() -> dict[str, str]:
    return {r.route_key: f.logical_id for f in functions().values() for r in f.routes if r.authorizer}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Gateway:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, signing_key: tuple[rsa.RSAPrivateKey, str]) -> None:
        self.monkeypatch = monkeypatch
        self.private, public_pem = signing_key
        self.now = T0
        monkeypatch.setattr("paygate.clock.now_ms", lambda: self.now)
        monkeypatch.setenv("CLERK_JWT_KEY", public_pem)
        monkeypatch.setenv("CLERK_ISSUER", ISSUER)
        monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", f"{PARTY},http://localhost:3000")
        monkeypatch.setenv("PAYGATE_STORE_CACHE_SECONDS", "0")
        for name in ("CLERK_JWKS_URL", "STORE_AUTHORITATIVE", "CLERK_ALLOW_PENDING_SESSIONS", "PAYGATE_CONFIG"):
            monkeypatch.delenv(name, raising=False)
        self.routes = route_functions()

    # -- tokens ---------------------------------------------------------------------------------

    def claims(
        self,
        user: str = USER,
        *,
        pla: str = "",
        fea: str = "",
        org: dict | None = None,
        **extra: Any,
    ) -> dict:
        now_s = self.now // 1000
        claims = {
            "iss": ISSUER,
            "sub": user,
            "sid": "sess_test",
            "azp": PARTY,
            "iat": now_s,
            "nbf": now_s - 5,
            "exp": now_s + 60,
            "v": 2,
            "fva": [0, -1],
            "pla": pla,
            "fea": fea,
        }
        if org is not None:
            claims["o"] = org
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, user: str = USER, **options: Any) -> str:
        return self.sign(self.claims(user, **options))

    def sign(self, claims: dict, **headers: Any) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": "test", **headers})

    # -- requests -------------------------------------------------------------------------------

    def authorizer_event(self, route_key: str, headers: dict[str, str]) -> dict:
        method, _, path = route_key.partition(" ")
        request = http_event(method, path, route_key=route_key, headers=headers)
        identity = [v for v in (request["headers"].get("authorization"), route_key) if v]
        return {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": f"arn:aws:execute-api:us-east-1:000000000000:local/$default/{method}{path}",
            "identitySource": identity,
            **{k: request[k] for k in ("routeKey", "rawPath", "rawQueryString", "headers", "requestContext")},
            **({"cookies": request["cookies"]} if "cookies" in request else {}),
        }

    def authorize(self, route_key: str, token: str | None = None, headers: dict[str, str] | None = None) -> dict:
        headers = dict(headers or {})
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return invoke("AuthorizerFunction", self.authorizer_event(route_key, headers))

    def request(
        self,
        route_key: str,
        token: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Reply:
        headers = dict(headers or {})
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if "authorization" not in {k.lower() for k in headers}:
            # The identity source ($request.header.Authorization) is missing: API Gateway answers itself.
            return Reply(401, {"message": "Unauthorized"}, {})
        decision = invoke("AuthorizerFunction", self.authorizer_event(route_key, headers))
        if decision.get("isAuthorized") is not True:
            return Reply(403, {"message": "Forbidden"}, {})
        method, _, path = route_key.partition(" ")
        event = http_event(method, path, route_key=route_key, headers=headers, body=body)
        event["requestContext"]["authorizer"] = {"lambda": decision["context"]}
        response = invoke(self.routes[route_key], event)
        content_type = response.get("headers", {}).get("content-type", "")
        parsed = json.loads(response["body"]) if content_type.startswith("application/json") else response["body"]
        return Reply(response["statusCode"], parsed, response.get("headers", {}))

    def store_requests(self) -> int:
        return container_authorizer().reader.requests


@pytest.fixture
def gateway(table: str, monkeypatch: pytest.MonkeyPatch, signing_key) -> Gateway:
    return Gateway(monkeypatch, signing_key)


def applied(sender, name: str) -> None:
    answer = sender.post("ClerkSubscriptionsFunction", sample(name))
    assert answer.status == 200 and answer.body["outcome"] == "applied", answer.body


def stored_item(store, payer: str, plan: str) -> dict:
    (item,) = [r for r in store.payer_items(payer) if r["kind"] == "item" and r["plan_slug"] == plan]
    return item


# -- the claims path ---------------------------------------------------------------------------


def test_claims_allow_without_reading_the_store(gateway):
    answer = gateway.authorize("GET /pro/export", gateway.token(pla="u:pro", fea="u:export,u:analytics"))
    assert answer["isAuthorized"] is True
    context = answer["context"]
    assert context["source"] == "token"
    assert context["user_id"] == USER
    assert context["features"] == "u:export,u:analytics"
    assert gateway.store_requests() == 0


def test_claims_path_does_not_import_boto3(signing_key, tmp_path):
    # A fresh interpreter, as a cold Lambda container: load the handler, allow one request on claims alone.
    private, public_pem = signing_key
    now_s = T0 // 1000
    token = jwt.encode(
        {"iss": ISSUER, "sub": USER, "iat": now_s, "exp": now_s + 60, "v": 2, "pla": "u:pro", "fea": "u:export"},
        private,
        algorithm="RS256",
    )
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:0] = [{str(LAYER_DIR)!r}, {str(ROOT / "functions" / "authorizer")!r}, {str(ROOT)!r}]
        from paygate_dev.apigw import LambdaContext
        import paygate.clock
        paygate.clock.now_ms = lambda: {T0}
        import app
        event = {{"type": "REQUEST", "routeKey": "GET /pro/export", "headers": {{"authorization": "Bearer {token}"}}}}
        answer = app.handler(event, LambdaContext())
        print(json.dumps({{"allowed": answer["isAuthorized"], "boto3": "boto3" in sys.modules,
                          "botocore_client": "botocore.client" in sys.modules}}))
        """
    )
    env = {
        "PATH": os.environ["PATH"],
        "CLERK_JWT_KEY": public_pem,
        "CLERK_ISSUER": ISSUER,
        "TABLE_NAME": "unused",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "allowed": True,
        "boto3": False,
        "botocore_client": False,
    }


def test_claims_and_store_both_deny(gateway):
    answer = gateway.authorize("GET /pro/export", gateway.token(pla="u:free_user"))
    assert answer == {"isAuthorized": False}
    assert gateway.store_requests() == 1


# -- the store path: an upgrade before the token refreshes -------------------------------------


def test_upgrade_with_a_stale_token_is_allowed_by_the_store(gateway, sender):
    stale = gateway.token(pla="u:free_user")
    assert gateway.authorize("GET /pro/export", stale)["isAuthorized"] is False
    applied(sender, "clerk/subscription.active.json")  # the user now pays for pro
    answer = gateway.authorize("GET /pro/export", stale)
    assert answer["isAuthorized"] is True
    assert answer["context"]["source"] == "store"
    assert answer["context"]["plans"] == "u:pro"
    assert set(answer["context"]["features"].split(",")) == {"u:export", "u:analytics", "u:priority_support"}


def test_organization_upgrade_is_read_from_the_active_organization(gateway, sender):
    applied(sender, "clerk/subscription.active.org.json")  # the organization now pays for team
    in_org = gateway.token(pla="o:free_org", org={"id": ORG, "slg": "acme", "rol": "member"})
    other_org = gateway.token(pla="o:free_org", org={"id": "org_other", "rol": "member"})
    no_org = gateway.token(pla="u:free_user")
    assert gateway.authorize("GET /team", in_org)["context"]["source"] == "store"
    assert gateway.authorize("GET /team", other_org)["isAuthorized"] is False
    assert gateway.authorize("GET /team", no_org)["isAuthorized"] is False


def test_a_user_and_an_organization_are_read_in_one_request(gateway, sender):
    applied(sender, "clerk/subscription.active.org.json")
    authorizer = container_authorizer()
    calls: list[str] = []
    authorizer.reader.store.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    # The dashboard's gate (any: pro, org:team) may be met by either payer: both partitions, one request.
    token = gateway.token(org={"id": ORG, "rol": "member"})
    assert gateway.authorize("GET /pro/dashboard", token)["isAuthorized"] is True
    assert calls == ["ExecuteStatement"]


def test_the_store_is_read_only_for_the_payer_the_gate_names(gateway, sender):
    applied(sender, "clerk/subscription.active.org.json")
    token = gateway.token(org={"id": ORG, "rol": "member"})
    # 'org:team' never looks at the user; with no active organization, nothing is read at all.
    assert gateway.authorize("GET /team", token)["isAuthorized"] is True
    assert gateway.authorize("GET /team", gateway.token())["isAuthorized"] is False
    assert gateway.store_requests() == 1


def test_store_reads_are_cached_for_a_few_seconds(gateway, sender, monkeypatch):
    monkeypatch.setenv("PAYGATE_STORE_CACHE_SECONDS", "5")
    token = gateway.token(pla="u:free_user")
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is False
    applied(sender, "clerk/subscription.active.json")
    gateway.now += 4_999
    token = gateway.token(pla="u:free_user")
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is False  # the cached read
    gateway.now += 1
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is True
    assert gateway.store_requests() == 2


# -- store-authoritative revocation ------------------------------------------------------------


def test_store_authoritative_revokes_while_the_token_still_carries_the_plan(gateway, sender, store, monkeypatch):
    applied(sender, "clerk/subscription.active.json")
    applied(sender, "clerk/subscriptionItem.canceled.json")  # canceled: access until the period ends
    period_end = stored_item(store, f"user:{USER}", "pro")["period_end"]
    gateway.now = period_end + 1000
    token = gateway.token(pla="u:pro", fea="u:export")  # an older session still says pro
    assert gateway.authorize("GET /pro/export", token)["context"]["source"] == "token"
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    assert gateway.authorize("GET /pro/export", token) == {"isAuthorized": False}


def test_store_authoritative_still_allows_what_the_store_grants(gateway, sender, monkeypatch):
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    applied(sender, "clerk/subscription.active.json")
    answer = gateway.authorize("GET /pro/export", gateway.token(pla="u:pro", fea="u:export"))
    assert answer["isAuthorized"] is True and answer["context"]["source"] == "store"


def test_store_authoritative_revokes_an_organization_permission(gateway, sender, monkeypatch):
    # The member's token carries org:settings:manage (the feature was on the organization's plan).
    org = {"id": ORG, "rol": "admin", "per": "manage", "fpm": "1"}
    token = gateway.token(pla="o:team", fea="o:settings", org=org)
    assert gateway.authorize("PUT /org/settings", token)["context"]["source"] == "token"
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    assert gateway.authorize("PUT /org/settings", token)["isAuthorized"] is False  # nothing stored
    applied(sender, "clerk/subscription.active.org.json")  # team has the settings feature
    assert gateway.authorize("PUT /org/settings", token)["context"]["source"] == "store"


def test_store_authoritative_hands_on_no_token_plans_for_an_identity_only_gate(gateway, monkeypatch):
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    answer = gateway.authorize("GET /me/subscription", gateway.token(pla="u:pro", fea="u:export"))
    assert answer["isAuthorized"] is True
    assert answer["context"]["plans"] == "" and answer["context"]["features"] == ""
    assert gateway.store_requests() == 0


# -- access windows through the authorizer -----------------------------------------------------


@pytest.mark.parametrize(("offset_ms", "allowed"), [(-1, True), (0, False)])
def test_cancel_at_period_end_edge(gateway, sender, store, offset_ms, allowed):
    applied(sender, "clerk/subscription.active.json")
    applied(sender, "clerk/subscriptionItem.canceled.json")
    gateway.now = stored_item(store, f"user:{USER}", "pro")["period_end"] + offset_ms
    assert gateway.authorize("GET /pro/export", gateway.token())["isAuthorized"] is allowed


@pytest.mark.parametrize(("offset_ms", "allowed"), [(-1, True), (0, False)])
def test_grace_period_edge_after_a_failed_payment(gateway, sender, store, offset_ms, allowed, monkeypatch):
    monkeypatch.setenv("GRACE_PERIOD_DAYS", "3")
    applied(sender, "clerk/subscriptionItem.pastDue.json")
    past_due_at = stored_item(store, f"user:{USER}", "pro")["past_due_at"]
    gateway.now = past_due_at + 3 * DAY_MS + offset_ms
    assert gateway.authorize("GET /pro/export", gateway.token())["isAuthorized"] is allowed


@pytest.mark.parametrize(
    "name",
    [
        "clerk/subscriptionItem.ended.json",
        "clerk/subscriptionItem.incomplete.json",
        "clerk/subscriptionItem.upcoming.json",
    ],
)
def test_items_that_grant_nothing(gateway, sender, name):
    applied(sender, name)
    assert gateway.authorize("GET /pro/dashboard", gateway.token())["isAuthorized"] is False


# -- routes, tokens, sessions ------------------------------------------------------------------


def test_a_route_with_no_gate_is_denied(gateway):
    token = gateway.token(pla="u:pro", fea="u:export")
    assert gateway.authorize("GET /pro/unlisted", token) == {"isAuthorized": False}
    assert gateway.authorize("POST /pro/export", token) == {"isAuthorized": False}  # same path, other method


def test_a_bad_gate_in_the_catalog_denies_everything_and_names_the_route(gateway, tmp_path, monkeypatch, caplog):
    bad = tmp_path / "paygate.toml"
    bad.write_text('[plans.pro]\nfeatures = ["export"]\n\n[routes."GET /pro/export"]\nplan = "prp"\n')
    monkeypatch.setenv("PAYGATE_CONFIG", str(bad))
    assert gateway.authorize("GET /pro/export", gateway.token(pla="u:pro")) == {"isAuthorized": False}
    from paygate.infra.catalog_file import CatalogError, load_catalog

    with pytest.raises(CatalogError, match=r"routes\.'GET /pro/export'.*unknown plan 'prp'"):
        load_catalog(bad)


@pytest.mark.parametrize(
    ("claims", "headers"),
    [
        ({"exp": T0 // 1000 - 60}, {}),
        ({"nbf": T0 // 1000 + 60}, {}),
        ({"iss": "https://evil.test"}, {}),
        ({"azp": "https://evil.test"}, {}),
        ({"sub": None}, {}),
        ({}, {"kid": "other", "typ": "JOSE"}),
    ],
)
def test_invalid_tokens_are_denied(gateway, claims, headers):
    token = gateway.sign(gateway.claims(pla="u:pro", fea="u:export", **claims), **headers)
    assert gateway.authorize("GET /pro/export", token) == {"isAuthorized": False}


def test_a_token_signed_with_another_key_is_denied(gateway):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(gateway.claims(pla="u:pro", fea="u:export"), other, algorithm="RS256")
    assert gateway.authorize("GET /pro/export", token) == {"isAuthorized": False}


def test_the_session_cookie_is_read_when_there_is_no_authorization_header(gateway):
    token = gateway.token(pla="u:pro", fea="u:export")
    answer = gateway.authorize("GET /pro/export", headers={"cookie": f"theme=dark; __session={token}"})
    assert answer["isAuthorized"] is True


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer"])
def test_unusable_authorization_headers_are_denied(gateway, header):
    token = gateway.token(pla="u:pro", fea="u:export")
    # Another scheme does not fall back to the cookie: API Gateway caches on the header.
    answer = gateway.authorize("GET /pro/export", headers={"authorization": header, "cookie": f"__session={token}"})
    assert answer == {"isAuthorized": False}


@pytest.mark.parametrize("header", ["\u00a0", "\u3000", "\x85", "\u2028", "\x0b", "", " ", "\t"])
def test_a_present_authorization_header_never_lets_the_cookie_decide(gateway, header):
    # API Gateway sees the header as present and caches the decision under its value (with the route):
    # if the cookie decided, everyone sending the same header would get this user's decision.
    token = gateway.token(pla="u:pro", fea="u:export")
    answer = gateway.authorize("GET /pro/export", headers={"authorization": header, "cookie": f"__session={token}"})
    assert answer == {"isAuthorized": False}


def test_only_space_and_tab_are_trimmed_and_the_header_must_be_ascii(gateway):
    token = gateway.token(pla="u:pro", fea="u:export")
    assert gateway.authorize("GET /pro/export", headers={"authorization": f" \tBearer \t{token}\t "})["isAuthorized"]
    assert gateway.authorize("GET /pro/export", headers={"authorization": f"Bearer {token}\u00a0"}) == {
        "isAuthorized": False
    }


def test_a_bare_token_in_the_header_is_accepted(gateway):
    token = gateway.token(pla="u:pro", fea="u:export")
    assert gateway.authorize("GET /pro/export", headers={"authorization": token})["isAuthorized"] is True


def test_pending_sessions_are_denied_unless_allowed(gateway, monkeypatch):
    token = gateway.token(pla="u:pro", fea="u:export", sts="pending")
    assert gateway.authorize("GET /pro/export", token) == {"isAuthorized": False}
    assert gateway.authorize("GET /me/subscription", token) == {"isAuthorized": False}
    monkeypatch.setenv("CLERK_ALLOW_PENDING_SESSIONS", "true")
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is True


def test_v1_organization_claims_are_understood(gateway):
    token = gateway.sign(
        {
            **{k: v for k, v in gateway.claims().items() if k not in ("v", "pla", "fea")},
            "org_id": ORG,
            "org_role": "org:admin",
            "org_permissions": ["org:settings:manage"],
        }
    )
    assert gateway.authorize("PUT /org/settings", token)["context"]["org_id"] == ORG


# -- fail closed -------------------------------------------------------------------------------


def test_store_outage_denies(gateway, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "paygate-table-that-does-not-exist")
    assert gateway.authorize("GET /pro/export", gateway.token(pla="u:free_user")) == {"isAuthorized": False}
    # The claims path does not need the store at all.
    assert gateway.authorize("GET /pro/export", gateway.token(pla="u:pro", fea="u:export"))["isAuthorized"] is True


def test_unreachable_store_denies(gateway, monkeypatch, capsys):
    from paygate_dev.dynamodb_local import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GRACE_PERIOD_DAYS", "6")  # a fresh container, so a fresh client on the dead endpoint
    assert gateway.authorize("GET /pro/export", gateway.token(pla="u:free_user")) == {"isAuthorized": False}
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"authorizer_decisions"' in x]
    assert line["reason"] == "store_unavailable", line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLERK_ISSUER", ""),
        ("CLERK_JWT_KEY", "not a pem"),
        ("STORE_AUTHORITATIVE", "yes"),
        ("CLERK_CLOCK_SKEW_SECONDS", "five"),
    ],
)
def test_misconfiguration_denies(gateway, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert gateway.authorize("GET /pro/export", gateway.token(pla="u:pro", fea="u:export")) == {"isAuthorized": False}


def test_a_prod_authorizer_without_authorized_parties_denies_everything(gateway, monkeypatch):
    """Without CLERK_AUTHORIZED_PARTIES a token minted for any origin would pass: refused in prod only."""
    token = gateway.token(pla="u:pro", fea="u:export")
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "")
    monkeypatch.setenv("PAYGATE_STAGE", "dev")
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is True
    monkeypatch.setenv("PAYGATE_STAGE", "prod")
    assert gateway.authorize("GET /pro/export", token) == {"isAuthorized": False}
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", PARTY)
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is True


def test_denials_are_logged_as_json_without_the_token(gateway, capsys):
    token = gateway.token(pla="u:pro", fea="u:export", exp=T0 // 1000 - 3600)
    capsys.readouterr()
    gateway.authorize("GET /pro/export", token)
    logged = capsys.readouterr().out
    (line,) = [json.loads(x) for x in logged.splitlines() if '"authorizer decided"' in x]
    assert (line["level"], line["reason"], line["detail"], line["route_key"], line["decision"]) == (
        "INFO",
        "invalid_token",
        "the token has expired",
        "GET /pro/export",
        "deny",
    )
    assert line["correlation_id"] and line["service"] == "paygate"
    assert token.split(".")[1] not in logged and token.split(".")[2] not in logged


def test_jwks_keys_through_the_handler(gateway, monkeypatch, jwks_server):
    jwks_server.document = {"keys": [jwk(gateway.private, "test")]}
    monkeypatch.delenv("CLERK_JWT_KEY")
    monkeypatch.setenv("CLERK_JWKS_URL", jwks_server.url)
    token = gateway.token(pla="u:pro", fea="u:export")
    assert gateway.authorize("GET /pro/export", token)["isAuthorized"] is True
    gateway.now += 30_000  # past the minimum interval between two fetches
    assert gateway.authorize("GET /pro/export", gateway.sign(gateway.claims(), kid="rotated")) == {
        "isAuthorized": False
    }
    assert jwks_server.requests == 2  # the first use, then once for the unknown kid


def test_jwks_outage_denies_through_the_handler(gateway, monkeypatch, jwks_server):
    jwks_server.status = 500
    monkeypatch.delenv("CLERK_JWT_KEY")
    monkeypatch.setenv("CLERK_JWKS_URL", jwks_server.url)
    assert gateway.authorize("GET /pro/export", gateway.token(pla="u:pro", fea="u:export")) == {"isAuthorized": False}


# -- money taken back ends what it bought (Dodo) -------------------------------------------------


def dodo_applied(sender, name: str, **data) -> None:
    envelope = sample_json(f"dodo/{name}.json")
    envelope["data"].update(data)
    function = "DodoSubscriptionsFunction" if name.startswith("subscription.") else "DodoPaymentsFunction"
    answer = sender.post(function, json.dumps(envelope), style="standard")
    assert answer.status == 200 and answer.body["outcome"] == "applied", answer.body


REFUNDED_AT = 1_794_246_125_604  # events/dodo/refund.succeeded.json data.created_at


@pytest.mark.parametrize("authoritative", [False, True])
def test_a_full_refund_revokes_on_the_store_path_and_when_the_store_is_authoritative(
    gateway, sender, monkeypatch, authoritative
):
    for name in ("subscription.active", "payment.succeeded"):
        dodo_applied(sender, name)
    dodo_applied(sender, "refund.succeeded", is_partial=False, amount=2207)
    if authoritative:
        monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    # Without STORE_AUTHORITATIVE a token plan is trusted; a Dodo plan is never in a Clerk token, so
    # the store decides either way. With it, a token that still says pro is not trusted.
    token = lambda: gateway.token(pla="u:pro" if authoritative else "", fea="u:export" if authoritative else "")  # noqa: E731
    gateway.now = REFUNDED_AT - 1
    assert gateway.authorize("GET /pro/export", token())["isAuthorized"] is True
    gateway.now = REFUNDED_AT
    assert gateway.authorize("GET /pro/export", token()) == {"isAuthorized": False}


def test_a_partial_refund_keeps_access(gateway, sender):
    for name in ("subscription.active", "payment.succeeded", "refund.succeeded"):
        dodo_applied(sender, name)
    gateway.now = REFUNDED_AT + 1000
    assert gateway.authorize("GET /pro/export", gateway.token())["isAuthorized"] is True
