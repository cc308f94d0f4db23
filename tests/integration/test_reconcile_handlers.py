"""The reconcile function through its handler: the scheduled run and ``POST /me/subscription/refresh``.

The providers' real SDK clients read a local server serving their documented shapes
(paygate_dev.fake_providers). The scheduled run and the refresh behind the real authorizer run on
DynamoDB Local; the refresh route's answers are stated on the in-memory store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from paygate.service.layout import payer_pk
from paygate.service.reconcile_entry import reconcile_handler
from paygate_dev.apigw import LambdaContext, http_event
from paygate_dev.fake_providers import FakeProviders, clerk_item, clerk_subscription, dodo_subscription
from paygate_dev.invoke import invoke
from paygate_dev.memory_store import InMemoryStateStore
from tests.integration.test_authorizer import ORG, USER, Gateway, gateway, signing_key

__all__ = ["gateway", "signing_key"]  # fixtures used below

ROUTE = "POST /me/subscription/refresh"
NOW = 1_797_100_000_000


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    providers = FakeProviders().start()
    monkeypatch.setenv("CLERK_API_URL", providers.clerk_url)
    monkeypatch.setenv("CLERK_SECRET_KEY", providers.clerk_key)
    monkeypatch.setenv("DODO_PAYMENTS_BASE_URL", providers.dodo_url)
    monkeypatch.setenv("DODO_PAYMENTS_API_KEY", providers.dodo_key)
    for name in ("CLERK_SECRET_KEY_ARN", "DODO_PAYMENTS_API_KEY_ARN", "RECONCILE_REFRESH_SECONDS", "PAYGATE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    yield providers
    providers.stop()
    assert providers.drift == []


def scheduled_event() -> dict:
    """What EventBridge Scheduler's ``Schedule`` event hands the function."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2026-12-11T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/paygate-reconcile"],
        "detail": {},
    }


def with_user_and_org(fake: FakeProviders) -> None:
    pro = fake.add_clerk_item(clerk_item("csubi_pro", user_id=USER))
    fake.set_clerk_subscription(f"user:{USER}", clerk_subscription("csub_user", [pro]))
    team = fake.add_clerk_item(clerk_item("csubi_team", organization_id=ORG, plan="team", amount=9900))
    fake.set_clerk_subscription(f"org:{ORG}", clerk_subscription("csub_org", [team]))


# -- DynamoDB Local ---------------------------------------------------------------------------------


def test_the_scheduled_run_repairs_every_payer_and_records_the_run(table, fake, store):
    with_user_and_org(fake)
    fake.add_dodo("subscriptions", dodo_subscription("sub_dodo_1", customer_id="cus_1", user_id="user_dodo"))

    summary = invoke("ReconcileFunction", scheduled_event())

    assert summary["status"] == "finished"
    assert (summary["read"], summary["created"], summary["missing"]) == (3, 3, 0)
    assert {i["sk"] for i in store.payer_items(f"user:{USER}")} >= {"item#clerk:csubi_pro"}
    assert {i["sk"] for i in store.payer_items(f"org:{ORG}")} >= {"item#clerk:csubi_team"}
    assert "item#dodo:sub_dodo_1" in {i["sk"] for i in store.payer_items("user:user_dodo")}
    (run,) = store.store.query("RECONCILE#all")
    assert (run["status"], run["created"], run["trigger"]) == ("finished", 3, "schedule")
    assert run["started_at"] <= run["finished_at"]

    again = invoke("ReconcileFunction", scheduled_event())
    assert (again["unchanged"], again["created"], again["repaired"]) == (3, 0, 0)


def test_the_refresh_route_behind_the_authorizer(gateway: Gateway, fake, store):
    with_user_and_org(fake)
    token = gateway.token(org={"id": ORG, "slg": "acme", "rol": "admin"})

    reply = gateway.request(ROUTE, token)

    assert reply.status == 200, reply.body
    assert reply.body["refreshed"] == [f"user:{USER}", f"org:{ORG}"]
    assert [r["created"] for r in reply.body["runs"]] == [1, 1]
    assert store.store.get(_key(f"org:{ORG}", "item#clerk:csubi_team"))["plan_slug"] == "team"
    account = gateway.request("GET /me/subscription", token)
    assert "team" in account.body["plans"] and "pro" in account.body["plans"]

    again = gateway.request(ROUTE, token)
    assert again.status == 429
    assert again.headers["retry-after"] == "61"
    assert again.body["error"] == "too_many_refreshes" and again.body["retry_after_s"] == 61


def _key(payer: str, sk: str):
    from paygate.service.ports import Key

    return Key(payer_pk(payer), sk)


# -- the refresh route's answers, on the in-memory store ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def memory() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def handler(fake, memory, clock):
    return reconcile_handler(clock=clock, store=lambda _table: memory)


def refresh(handler, org_role: str | None = None, context: bool = True) -> tuple[int, dict, dict]:
    event = http_event("POST", "/me/subscription/refresh", route_key=ROUTE)
    if context:
        event["requestContext"]["authorizer"] = {
            "lambda": {
                "user_id": USER,
                "source": "token",
                "org_id": ORG if org_role else "",
                "org_role": org_role or "",
                "org_permissions": "",
            }
        }
    response = handler(event, LambdaContext(function_name="ReconcileFunction"))
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def test_a_member_without_billing_rights_refreshes_only_their_own_subscriptions(handler, fake):
    with_user_and_org(fake)
    status, body, _ = refresh(handler, org_role="org:member")
    assert status == 200
    assert body["refreshed"] == [f"user:{USER}"]
    assert all(not p.startswith(f"/clerk/v1/organizations/{ORG}") for _, p, _ in fake.requests)


def test_refreshes_are_limited_per_payer(handler, fake, clock, monkeypatch):
    monkeypatch.setenv("RECONCILE_REFRESH_SECONDS", "30")
    with_user_and_org(fake)
    assert refresh(handler)[0] == 200
    clock.now += 10_000
    status, body, headers = refresh(handler)
    assert (status, headers["retry-after"], body["error"]) == (429, "21", "too_many_refreshes")
    assert "21 s" in body["message"]
    # The organization has its own allowance: an admin gets it refreshed, the user is named as limited.
    status, body, _ = refresh(handler, org_role="org:admin")
    assert status == 200
    assert body["refreshed"] == [f"org:{ORG}"] and body["rate_limited"] == {f"user:{USER}": 21}
    clock.now += 21_000
    assert refresh(handler)[0] == 200


def test_a_refresh_without_the_authorizer_context_is_refused(handler):
    status, body, _ = refresh(handler, context=False)
    assert (status, body["error"]) == (401, "unauthenticated")


def test_a_provider_that_cannot_be_read_answers_503_and_changes_nothing(handler, fake, memory):
    with_user_and_org(fake)
    fake.fail("/clerk/v1/users", 503, times=100, retry_after="0.5")
    status, body, _ = refresh(handler)
    assert (status, body["error"]) == (503, "provider_unavailable")
    assert "clerk" in body["message"]
    assert memory.query(payer_pk(f"user:{USER}")) == []


def test_a_refresh_with_no_provider_key_says_so(handler, monkeypatch):
    monkeypatch.delenv("CLERK_SECRET_KEY")
    monkeypatch.delenv("DODO_PAYMENTS_API_KEY")
    status, body, _ = refresh(handler)
    assert (status, body["error"]) == (503, "not_configured")


def test_a_bad_provider_url_fails_the_cold_start_naming_the_variable(monkeypatch):
    from paygate.settings import SettingsError

    monkeypatch.setenv("CLERK_API_URL", "api.clerk.com")
    with pytest.raises(SettingsError, match="CLERK_API_URL"):
        reconcile_handler()
