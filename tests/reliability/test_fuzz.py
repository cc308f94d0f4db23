"""Property-based fuzzing of bodies, headers and tokens through the real handlers.

Whatever arrives: never a 5xx, never a stored effect (not even a DynamoDB request) from a request
that is not verified, and every rejection is a JSON error with its documented status.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate_dev.apigw import http_event
from paygate_dev.invoke import invoke
from paygate_dev.signing import signed_headers
from paygate_dev.template import functions
from tests.reliability.conftest import Harness

WEBHOOK_FUNCTIONS = sorted(
    f.logical_id for f in functions().values() if any(k.startswith("WEBHOOK_SECRET") for k in f.environment)
)
SIGNING_HEADERS = [
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
]
DOCUMENTED = {200: None, 400: "invalid_event", 401: "invalid_signature", 413: "body_too_large"}

header_values = st.one_of(
    st.text(max_size=80),
    st.integers().map(str),
    st.lists(st.text(alphabet="v1,=/+abcXYZ0123 ", max_size=30), max_size=3).map(" ".join),
    st.builds(lambda: str(int(time.time()))),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "subscription.active",
                "subscriptionItem.canceled",
                "paymentAttempt.updated",
                "payment.succeeded",
                "credit.added",
                "subscription.on_hold",
            ]
        )
        | st.text(max_size=20),
        "timestamp": st.integers() | st.text(max_size=30),
        "data": json_values,
        "business_id": st.text(max_size=10),
        "object": st.just("event"),
    },
)


def check_answer(status: int, body: dict) -> None:
    assert status in DOCUMENTED, status
    if status == 200:
        assert body["received"] is True and body["outcome"] in {"applied", "duplicate", "stale", "ignored"}
    else:
        assert body["error"] == DOCUMENTED[status] and isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize("function", WEBHOOK_FUNCTIONS)
@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=2048) | json_values.map(lambda v: json.dumps(v).encode()),
    headers=st.dictionaries(st.sampled_from(SIGNING_HEADERS) | st.text(max_size=20), header_values, max_size=6),
    base64_body=st.booleans(),
)
def test_unverified_requests_are_refused_without_touching_the_store(
    harness: Harness, function: str, body: bytes, headers: dict, base64_body: bool
) -> None:
    harness.meter.take()
    answer = harness.post(function, body, headers, base64_body=base64_body)
    assert answer.status == 401, answer
    check_answer(answer.status, answer.body)
    assert harness.meter.take() == []


@pytest.mark.parametrize("function", WEBHOOK_FUNCTIONS)
@settings(max_examples=40, deadline=None)
@given(envelope=envelopes, style=st.sampled_from(["svix", "standard"]), tamper=st.booleans())
def test_verified_bodies_of_any_shape_get_a_documented_answer(
    harness: Harness, function: str, envelope: dict, style: str, tamper: bool
) -> None:
    body = json.dumps(envelope)
    headers = signed_headers(harness.secret, body, style=style)
    harness.meter.take()
    answer = harness.post(function, body + (" " if tamper else ""), headers)
    check_answer(answer.status, answer.body)
    if tamper:
        assert answer.status == 401 and harness.meter.take() == []


@settings(max_examples=40, deadline=None)
@given(secret_bytes=st.binary(min_size=1, max_size=40))
def test_a_body_signed_with_another_secret_leaves_no_trace(harness: Harness, secret_bytes: bytes) -> None:
    import base64

    other = "whsec_" + base64.b64encode(secret_bytes).decode()
    body = json.dumps({"type": "subscription.active", "timestamp": 1, "data": {}})
    harness.meter.take()
    answer = harness.post(WEBHOOK_FUNCTIONS[0], body, signed_headers(other, body))
    assert answer.status == 401 or other == harness.secret
    assert harness.meter.take() == [] or other == harness.secret


# -- the authorizer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authorizer_env(harness: Harness):
    from paygate_dev.local_env import new_key_pair

    private, public = new_key_pair()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLERK_JWT_KEY", public)
        mp.setenv("CLERK_ISSUER", "https://clerk.fuzz.example")
        mp.setenv("CLERK_AUTHORIZED_PARTIES", "https://app.fuzz.example")
        yield private, public


@settings(max_examples=80, deadline=None)
@given(
    token=st.text(max_size=300) | st.lists(st.text(alphabet="abcXYZ09-_=", max_size=60), max_size=4).map(".".join),
    route=st.sampled_from(["GET /pro/dashboard", "GET /team", "PUT /org/settings", "GET /nope"]) | st.text(max_size=20),
    scheme=st.sampled_from(["Bearer ", "bearer ", "", "Basic "]),
)
def test_the_authorizer_denies_any_garbage_token(authorizer_env, token: str, route: str, scheme: str) -> None:
    event = http_event("GET", "/x", route_key=route, headers={"authorization": scheme + token})
    assert invoke("AuthorizerFunction", event) == {"isAuthorized": False}


@settings(max_examples=40, deadline=None)
@given(
    claims=st.dictionaries(
        st.sampled_from(["sub", "iss", "exp", "nbf", "azp", "pla", "fea", "o", "v", "sts"]), json_values, max_size=10
    )
)
def test_the_authorizer_never_fails_open_on_forged_claims(authorizer_env, claims: dict) -> None:
    """Correctly signed tokens with arbitrary claims: a decision, never an exception; expired or foreign denied."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    # Signed by hand: PyJWT refuses to encode some of these claims, a forger would not.
    key = serialization.load_pem_private_key(authorizer_env[0].encode(), password=None)
    signing_input = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    event = http_event(
        "GET", "/pro/dashboard", route_key="GET /pro/dashboard", headers={"authorization": f"Bearer {token}"}
    )
    decision = invoke("AuthorizerFunction", event)
    assert set(decision) <= {"isAuthorized", "context"}
    if claims.get("iss") != "https://clerk.fuzz.example" or not isinstance(claims.get("exp"), int):
        assert decision == {"isAuthorized": False}
