"""DynamoDB failing at every request a webhook makes: 5xx, nothing half-written, a redelivery converges.

For each scenario a clean run first records which requests the store makes and the state it ends
in. Then, on a fresh table, each of those requests is broken in each way a store can break; the
answer must be a 503 JSON error (or a 200 when botocore's retry absorbed the fault), the table must
hold either the state before the delivery or the complete state after it, and the provider's
redelivery must end in exactly the clean state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.conftest import sample
from tests.reliability.conftest import Answer, Harness
from tests.reliability.faults import Fault

SUBS = "ClerkSubscriptionsFunction"
ATTEMPTS = "ClerkPaymentAttemptsFunction"


@dataclass(frozen=True)
class Scenario:
    """A delivery (``function``, ``body``) made after ``setup`` deliveries already applied."""

    name: str
    function: str
    body: bytes
    setup: tuple[tuple[str, bytes], ...] = ()
    style: str = "svix"


def _invalid_item() -> bytes:
    body = json.loads(sample("clerk/subscriptionItem.canceled.json"))
    body["data"]["status"] = "paused"  # not a Clerk status: quarantined
    return json.dumps(body).encode()


CLERK_SCENARIOS = [
    Scenario("clerk subscription (3 records)", SUBS, sample("clerk/subscription.active.json")),
    Scenario("clerk payment attempt", ATTEMPTS, sample("clerk/paymentAttempt.updated.json")),
    Scenario("clerk event of another family (ignored)", SUBS, sample("clerk/paymentAttempt.created.json")),
    Scenario("clerk unreadable event (quarantined)", SUBS, _invalid_item()),
    Scenario(
        "clerk stale event",
        SUBS,
        sample("clerk/subscriptionItem.pastDue.json"),
        setup=((SUBS, sample("clerk/subscriptionItem.canceled.json")),),
    ),
]


DODO_SCENARIOS = [
    Scenario(
        "dodo subscription", "DodoSubscriptionsFunction", sample("dodo/subscription.active.json"), style="standard"
    ),
    Scenario("dodo payment", "DodoPaymentsFunction", sample("dodo/payment.succeeded.json"), style="standard"),
    Scenario("dodo credit", "DodoCreditsFunction", sample("dodo/credit.added.json"), style="standard"),
]


@dataclass
class CleanRun:
    requests: list[str]
    before: dict
    after: dict
    first: Answer
    again: Answer


def _prepare(harness: Harness, scenario: Scenario) -> dict:
    harness.fresh_table()
    for i, (function, body) in enumerate(scenario.setup):
        assert harness.send(function, body, f"msg_setup_{i}", scenario.style).status == 200
    return harness.snapshot()


def settled(snapshot: dict) -> dict:
    return {key: {k: v for k, v in item.items() if k not in ("moved", "moving")} for key, item in snapshot.items()}


def _deliver(harness: Harness, scenario: Scenario) -> Answer:
    return harness.send(scenario.function, scenario.body, "msg_under_test", scenario.style)


def clean_run(harness: Harness, scenario: Scenario) -> CleanRun:
    before = _prepare(harness, scenario)
    harness.meter.take()
    first = _deliver(harness, scenario)
    requests = [r.operation for r in harness.meter.take()]
    after = harness.snapshot()
    again = _deliver(harness, scenario)
    assert harness.snapshot() == after
    return CleanRun(requests, before, after, first, again)


def check_fault(harness: Harness, scenario: Scenario, clean: CleanRun, at: int, fault: Fault) -> None:
    before = _prepare(harness, scenario)
    assert before == clean.before
    harness.meter.take()
    harness.faults.arm(fault, at)
    try:
        answer = _deliver(harness, scenario)
    finally:
        harness.faults.disarm()
    middle = harness.snapshot()
    where = f"{scenario.name}: {fault} at request {at} ({clean.requests[at - 1]})"
    # The fault did hit the request it was aimed at (the store made the same requests up to it).
    hit = harness.meter.take()[at - 1]
    assert hit.operation == clean.requests[at - 1], where
    assert hit.attempts > 1, f"{where}: botocore did not retry"
    if not fault.transient:
        assert hit.error is not None, where

    # A new provider link moves what was kept under the provider id after the atomic write: that second
    # step's bookkeeping (the link's `moved`, the inbox item's `moving`) may be left for the
    # redelivery to finish, which the end of this check requires. The state itself is never half-written.
    assert settled(middle) in (settled(before), settled(clean.after)), f"{where}: half-written"
    if fault.transient:
        assert (answer.status, middle) == (clean.first.status, clean.after), where
    else:
        assert answer.status == 503, where
        assert answer.body["error"] == "store_unavailable" and answer.body["message"], where
        assert answer.headers["content-type"] == "application/json"

    redelivered = _deliver(harness, scenario)
    assert harness.snapshot() == clean.after, f"{where}: the redelivery did not converge"
    expected = clean.again if settled(middle) == settled(clean.after) else clean.first
    assert (redelivered.status, redelivered.body.get("outcome")) == (
        expected.status,
        expected.body.get("outcome"),
    ), where


@pytest.mark.parametrize("scenario", CLERK_SCENARIOS + DODO_SCENARIOS, ids=lambda s: s.name)
def test_a_store_fault_at_any_request_is_retried_into_the_clean_state(harness: Harness, scenario: Scenario) -> None:
    clean = clean_run(harness, scenario)
    assert clean.requests, "the scenario made no DynamoDB request"
    for at in range(1, len(clean.requests) + 1):
        for fault in Fault:
            check_fault(harness, scenario, clean, at, fault)
    harness.drop_tables()


# -- the authorizer under a store outage ---------------------------------------------------------


def test_the_authorizer_denies_on_a_store_outage_but_claims_still_allow(harness: Harness) -> None:
    import os
    import time
    import uuid

    from paygate_dev.apigw import http_event
    from paygate_dev.dynamodb_local import free_port
    from paygate_dev.invoke import invoke
    from paygate_dev.local_env import new_key_pair
    from paygate_dev.token import mint, session_claims

    private, public = new_key_pair()
    issuer, party = "https://clerk.outage.example", "https://app.outage.example"
    user = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"  # holds an active pro item in subscription.active.json
    harness.fresh_table()
    assert harness.send(SUBS, sample("clerk/subscription.active.json"), "msg_pro").body["outcome"] == "applied"

    def decide(plans: list[str]) -> dict:
        claims = session_claims(user, plans=plans, now_s=int(time.time()), issuer=issuer, authorized_party=party)
        token = mint(claims, private, public)
        event = http_event(
            "GET", "/pro/dashboard", route_key="GET /pro/dashboard", headers={"authorization": f"Bearer {token}"}
        )
        return invoke("AuthorizerFunction", event)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLERK_JWT_KEY", public)
        mp.setenv("CLERK_ISSUER", issuer)
        mp.setenv("CLERK_AUTHORIZED_PARTIES", party)
        mp.setenv("PAYGATE_STORE_CACHE_SECONDS", "0")
        # With the store up, the stored subscription allows a token that carries no plan.
        assert decide([])["isAuthorized"] is True
        # A table name of its own builds a new container authorizer, whose client dials a port nobody listens on.
        mp.setenv("TABLE_NAME", f"paygate-outage-{uuid.uuid4().hex[:8]}")
        mp.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] != harness.ddb.endpoint
        # The token's plan is enough: no store read, allowed.
        assert decide(["pro"])["isAuthorized"] is True
        # The store must be asked and cannot answer: denied.
        assert decide([]) == {"isAuthorized": False}
