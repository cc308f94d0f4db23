"""The authorizer's decision line, and its cache of verified tokens through the handler.

The decision line: one line per decision that is both its log line and a CloudWatch
metric in the Embedded Metric Format, with the names alarms are written against.

The shape is checked against the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
a root ``_aws`` member with ``Timestamp`` (milliseconds since the epoch) and ``CloudWatchMetrics``
(directives of ``Namespace``, ``Dimensions`` - arrays of at most 30 names - and ``Metrics``), and every
name a directive refers to present at the root: a dimension as a string, a metric as a number.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from paygate.domain.gate import AnyOf
from paygate.service.authorizer import (
    METRIC_DIMENSIONS,
    METRIC_NAME,
    METRIC_NAMESPACE,
    Decision,
    Reason,
    authorizer_handler,
    container_authorizer,
    decision_line,
)
from paygate.service.context import Source
from paygate.service.payers import PayerReader
from paygate_dev.apigw import LambdaContext, http_event
from tests.conftest import sample

ISSUER = "https://clerk.paygate.test"
T0 = 1_797_100_000_000
USER = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"  # holds pro in events/clerk/subscription.active.json
ROUTE = "GET /pro/dashboard"  # any = [plan pro, plan org:team]
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def assert_emf(document: dict[str, Any]) -> None:
    """``document`` is an EMF document CloudWatch Logs will turn into metrics."""
    meta = document["_aws"]
    assert set(meta) == {"Timestamp", "CloudWatchMetrics"}
    assert type(meta["Timestamp"]) is int and meta["Timestamp"] > 1_000_000_000_000  # milliseconds
    assert isinstance(meta["CloudWatchMetrics"], list) and meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and 1 <= len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(document[name], str) and document[name], name
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"} and metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]
            assert isinstance(value, int | float) and not isinstance(value, bool)


def assert_decision_line(line: dict[str, Any], decision: str, reason: str, source: str) -> None:
    assert_emf(line)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    # The names CloudWatch alarms are written against.
    assert directive["Namespace"] == METRIC_NAMESPACE == "paygate"
    assert directive["Metrics"] == [{"Name": METRIC_NAME, "Unit": "Count"}] and METRIC_NAME == "authorizer_decisions"
    assert directive["Dimensions"] == [["decision"], ["decision", "reason"], ["decision", "source"]]
    assert line[METRIC_NAME] == 1
    assert (line["decision"], line["reason"], line["source"]) == (decision, reason, source)
    assert line["allowed"] is (decision == "allow")
    for name in ("route_key", "detail", "user_id", "correlation_id", "function_request_id"):
        assert name in line
    assert line["message"] == "authorizer decided" and line["service"] == "paygate"


# -- through the handler -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, pem.decode()


class Authorizer:
    """The real handler on the in-memory store, with stdout captured."""

    def __init__(self, monkeypatch, capsys, signing_key, memory) -> None:
        self.private, public = signing_key
        self.capsys = capsys
        # A table name of its own: the container's authorizer is bound to this test's store.
        monkeypatch.setenv("TABLE_NAME", f"decision-line-{uuid.uuid4().hex}")
        monkeypatch.setenv("CLERK_JWT_KEY", public)
        monkeypatch.setenv("CLERK_ISSUER", ISSUER)
        monkeypatch.setenv("PAYGATE_STORE_CACHE_SECONDS", "0")
        for name in ("CLERK_AUTHORIZED_PARTIES", "CLERK_JWKS_URL", "STORE_AUTHORITATIVE", "PAYGATE_CONFIG"):
            monkeypatch.delenv(name, raising=False)
        self.bound = container_authorizer(lambda _: PayerReader(memory))
        self.now = T0
        self.handler = authorizer_handler(clock=lambda: self.now)

    def token(self, plans: str = "") -> str:
        now_s = T0 // 1000
        claims = {"iss": ISSUER, "sub": USER, "sid": "sess_1", "iat": now_s, "exp": now_s + 60, "v": 2, "pla": plans}
        return jwt.encode(claims, self.private, algorithm="RS256")

    def decide(self, route_key: str = ROUTE, headers: Any = None, **event: Any) -> tuple[dict, list[dict], str]:
        request = http_event("GET", "/pro/dashboard", route_key=route_key, headers={})
        request["headers"] = {} if headers is None else headers
        request.update(event)
        self.capsys.readouterr()
        answer = self.handler(request, LambdaContext(function_name="AuthorizerFunction"))
        out = self.capsys.readouterr().out
        assert out.endswith("\n")
        return answer, [json.loads(line) for line in out.splitlines()], out


@pytest.fixture
def authorizer(monkeypatch, capsys, signing_key, memory) -> Authorizer:
    return Authorizer(monkeypatch, capsys, signing_key, memory)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_an_allow_by_the_token(authorizer):
    token = authorizer.token("u:pro")
    answer, lines, out = authorizer.decide(headers=bearer(token))
    assert answer["isAuthorized"] is True
    (line,) = lines
    assert_decision_line(line, "allow", "granted", "token")
    assert (line["level"], line["user_id"], line["route_key"]) == ("INFO", USER, ROUTE)
    assert line["_aws"]["Timestamp"] == T0
    assert token.split(".")[1] not in out and token.split(".")[2] not in out


def test_an_allow_by_the_store(authorizer, sender):
    answer = sender.post("ClerkSubscriptionsFunction", sample("clerk/subscription.active.json"))
    assert answer.body["outcome"] == "applied"
    answer, (line,), _ = authorizer.decide(headers=bearer(authorizer.token()))
    assert answer["isAuthorized"] is True
    assert_decision_line(line, "allow", "granted", "store")


@pytest.mark.parametrize(
    ("case", "reason", "level"),
    [
        ("no token", Reason.NO_TOKEN, "INFO"),
        ("expired token", Reason.INVALID_TOKEN, "INFO"),
        ("not granted", Reason.NOT_GRANTED, "INFO"),
        ("no gate", Reason.NO_GATE, "ERROR"),
        ("unexpected", Reason.ERROR, "ERROR"),
    ],
)
def test_denials(authorizer, case, reason, level):
    token = authorizer.token()
    event = {
        "no token": {},
        "expired token": {
            "headers": bearer(jwt.encode({"iss": ISSUER, "sub": USER, "exp": 1}, authorizer.private, "RS256"))
        },
        "not granted": {"headers": bearer(token)},  # nothing stored, no plan on the token
        "no gate": {"headers": bearer(token), "route_key": "GET /nowhere"},
        "unexpected": {"headers": ["not", "a", "mapping"]},
    }[case]
    answer, (line,), out = authorizer.decide(**event)
    assert answer == {"isAuthorized": False}
    assert_decision_line(line, "deny", reason, "none")
    assert line["level"] == level and line["user_id"] is None
    assert token.split(".")[2] not in out


def test_a_misconfigured_authorizer_still_writes_its_line(authorizer, monkeypatch):
    monkeypatch.delenv("CLERK_ISSUER")
    answer, (line,), _ = authorizer.decide(headers=bearer(authorizer.token("u:pro")))
    assert answer == {"isAuthorized": False}
    assert_decision_line(line, "deny", Reason.MISCONFIGURED, "none")
    assert line["level"] == "ERROR" and "CLERK_ISSUER" in line["detail"]


def test_fields_from_the_request_cannot_break_the_line(authorizer):
    hostile = 'GET /x"}\n{"decision":"allow","_aws":null}\u2028é' + "x" * 500
    answer, lines, out = authorizer.decide(route_key=hostile, requestContext={"requestId": 12345})
    assert answer == {"isAuthorized": False} and out.count("\n") == 1
    (line,) = lines
    assert_decision_line(line, "deny", Reason.NO_GATE, "none")
    assert line["route_key"] == hostile[:200] and line["correlation_id"] == "12345"


# -- verified tokens, kept per container ------------------------------------------------------


def test_a_token_is_verified_once_per_container(authorizer):
    headers = bearer(authorizer.token("u:pro"))
    for _ in range(3):
        assert authorizer.decide(headers=headers)[0]["isAuthorized"] is True
    assert authorizer.bound.sessions.verifications == 1


def test_an_allow_by_the_claims_is_kept_with_the_token(authorizer, monkeypatch):
    """The same token on the same route: the gate is evaluated once, and the line is still written."""
    evaluated = []
    allows = AnyOf.allows
    monkeypatch.setattr(AnyOf, "allows", lambda gate, grants: evaluated.append(gate) or allows(gate, grants))
    headers = bearer(authorizer.token("u:pro"))
    for n in range(3):
        answer, (line,), _ = authorizer.decide(headers=headers, requestContext={"requestId": f"r{n}"})
        assert answer["isAuthorized"] is True and answer["context"]["plans"] == "u:pro"
        assert_decision_line(line, "allow", "granted", "token")
        assert line["correlation_id"] == f"r{n}"
    assert len(evaluated) == 1


def test_an_allow_by_the_store_is_never_kept(authorizer, sender, memory):
    """The store is read for every decision: a token's next request sees what the store says then."""
    applied = sender.post("ClerkSubscriptionsFunction", sample("clerk/subscription.active.json"))
    assert applied.body["outcome"] == "applied"
    headers = bearer(authorizer.token())  # no plan on the token
    assert authorizer.decide(headers=headers)[0]["isAuthorized"] is True
    memory.fail_next("read_partitions")
    answer, (line,), _ = authorizer.decide(headers=headers)
    assert answer == {"isAuthorized": False} and line["reason"] == Reason.STORE_UNAVAILABLE


def test_a_kept_token_is_still_judged_by_each_route(authorizer):
    headers = bearer(authorizer.token("u:pro"))
    assert authorizer.decide(headers=headers)[0]["isAuthorized"] is True
    answer, (line,), _ = authorizer.decide(route_key="GET /team", headers=headers)
    assert answer == {"isAuthorized": False} and line["reason"] == Reason.NOT_GRANTED


def test_a_kept_token_is_denied_once_it_expires(authorizer):
    headers = bearer(authorizer.token("u:pro"))  # exp = T0 + 60 s
    assert authorizer.decide(headers=headers)[0]["isAuthorized"] is True
    authorizer.now = T0 + 65_000  # past exp and the 5 s skew
    answer, (line,), _ = authorizer.decide(headers=headers)
    assert answer == {"isAuthorized": False}
    assert (line["reason"], line["detail"]) == (Reason.INVALID_TOKEN, "the token has expired")


def test_a_changed_configuration_does_not_reuse_kept_tokens(authorizer, monkeypatch):
    headers = bearer(authorizer.token("u:pro"))
    assert authorizer.decide(headers=headers)[0]["isAuthorized"] is True
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "https://app.paygate.test")  # the token has no azp
    monkeypatch.setenv("STORE_AUTHORITATIVE", "true")
    answer, (line,), _ = authorizer.decide(headers=headers)
    assert answer == {"isAuthorized": False} and line["reason"] == Reason.INVALID_TOKEN


# -- the line on its own -----------------------------------------------------------------------


@pytest.mark.parametrize("reason", [v for k, v in vars(Reason).items() if k.isupper()])
def test_every_reason_makes_a_valid_document(reason):
    allowed = reason == Reason.GRANTED
    for source in (Source.TOKEN, Source.STORE) if allowed else (None,):
        decision = Decision(allowed, reason, 'a detail with "quotes" and\nnewlines', source, {"user_id": "user_1"})
        line = json.loads(decision_line(decision, {"routeKey": ROUTE}, None, T0))
        assert_decision_line(line, "allow" if allowed else "deny", reason, source.value if source else "none")
        assert line["function_request_id"] is None and line["correlation_id"] is None


def test_the_dimension_sets_are_the_documented_ones():
    assert METRIC_DIMENSIONS == (("decision",), ("decision", "reason"), ("decision", "source"))
