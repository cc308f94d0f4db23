"""The reconcile function through its handler: the scheduled run and ``POST /me/subscription/refresh``.

The providers' real SDK clients read a local server serving their documented shapes
(paygate_dev.fake_providers). The scheduled run and the refresh behind the real authorizer run on
DynamoDB Local; the refresh route's answers are stated on the in-memory store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from paygate.service.layout import PAYER_PREFIX, payer_pk
from paygate.service.reconcile_entry import reconcile_handler
from paygate_dev.apigw import LambdaContext, http_event
from paygate_dev.fake_providers import FakeProviders, clerk_item, clerk_subscription, dodo_payment, dodo_subscription
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


def refresh(
    handler, org_role: str | None = None, context: bool = True, body: object = None, user: str = USER
) -> tuple[int, dict, dict]:
    raw = body if body is None or isinstance(body, str) else json.dumps(body)
    event = http_event("POST", "/me/subscription/refresh", route_key=ROUTE, body=raw)
    if context:
        event["requestContext"]["authorizer"] = {
            "lambda": {
                "user_id": user,
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


# -- a refresh naming what a Dodo checkout returned ------------------------------------------------------

NEW_CUSTOMER = "cus_0NewCheckout000000000"


def items_of(memory: InMemoryStateStore, payer: str) -> set[str]:
    return {i["sk"] for i in memory.query(payer_pk(payer))}


def test_a_checkout_return_links_the_callers_new_customer_before_its_webhook(handler, fake, memory):
    fake.add_dodo("subscriptions", dodo_subscription("sub_new", customer_id=NEW_CUSTOMER, user_id=USER))

    status, body, _ = refresh(handler, body={"dodo_subscription_id": "sub_new"})

    assert status == 200, body
    assert {"item#dodo:sub_new", f"customer_link#dodo:{NEW_CUSTOMER}"} <= items_of(memory, f"user:{USER}")
    (run,) = body["runs"]
    assert run["created"] == 1 and run["unchanged"] == 1  # then read again as the linked customer's
    assert ("GET", "/dodo/subscriptions", {"page_number": "0", "page_size": "100", "customer_id": NEW_CUSTOMER}) in [
        (m, p, q) for m, p, q in fake.requests if p == "/dodo/subscriptions"
    ]


def test_without_the_checkout_return_the_unlinked_customer_is_not_found(handler, fake, memory):
    fake.add_dodo("subscriptions", dodo_subscription("sub_new", customer_id=NEW_CUSTOMER, user_id=USER))
    status, body, _ = refresh(handler)
    assert status == 200 and body["runs"][0]["read"] == 0
    assert items_of(memory, f"user:{USER}") == set()


def test_a_checkout_payment_is_read_whole_and_applied(handler, fake, memory):
    fake.add_dodo("payments", dodo_payment("pay_new", "sub_new", customer_id=NEW_CUSTOMER, user_id=USER))
    status, body, _ = refresh(handler, body={"dodo_payment_id": "pay_new"})
    assert status == 200, body
    assert f"customer_link#dodo:{NEW_CUSTOMER}" in items_of(memory, f"user:{USER}")
    assert ("GET", "/dodo/payments/pay_new", {}) in fake.requests


def test_an_organizations_checkout_needs_the_right_to_see_its_billing(handler, fake, memory):
    bought = dodo_subscription("sub_team", customer_id=NEW_CUSTOMER, user_id=USER, organization_id=ORG)
    fake.add_dodo("subscriptions", bought)

    status, body, _ = refresh(handler, org_role="org:member", body={"dodo_subscription_id": "sub_team"})
    assert (status, body["error"]) == (403, "not_yours")
    assert memory.query(payer_pk(f"org:{ORG}")) == []

    status, body, _ = refresh(handler, org_role="org:admin", body={"dodo_subscription_id": "sub_team"})
    assert status == 200, body
    assert "item#dodo:sub_team" in items_of(memory, f"org:{ORG}")


@pytest.mark.parametrize(
    "metadata",
    [{"user_id": "user_someone_else"}, {"organization_id": "org_not_mine"}, {}],
    ids=["another user", "another organization", "no one"],
)
def test_a_checkout_object_bought_for_someone_else_is_refused_and_not_applied(handler, fake, memory, metadata):
    sub = dodo_subscription("sub_theirs", customer_id=NEW_CUSTOMER, user_id=None)
    fake.add_dodo("subscriptions", {**sub, "metadata": metadata})

    status, body, _ = refresh(handler, org_role="org:admin", body={"dodo_subscription_id": "sub_theirs"})

    assert (status, body["error"]) == (403, "not_yours")
    assert "sub_theirs" in body["message"] and "user_someone_else" not in body["message"]
    assert list(memory.scan(PAYER_PREFIX)) == []  # no state, no link


def test_an_id_the_provider_does_not_know_is_404(handler, fake):
    status, body, _ = refresh(handler, body={"dodo_payment_id": "pay_unknown"})
    assert (status, body["error"]) == (404, "not_found")
    assert "pay_unknown" in body["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("{not json", "JSON object"),
        ('["sub_1"]', "JSON object"),
        ({"subscription_id": "sub_1"}, "unknown field subscription_id"),
        ({"dodo_subscription_id": 42}, "dodo_subscription_id"),
        ({"dodo_payment_id": "../customers/cus_1"}, "dodo_payment_id"),
        ({"dodo_payment_id": ""}, "dodo_payment_id"),
    ],
)
def test_a_malformed_refresh_body_is_400_and_reads_nothing(handler, fake, body, named):
    status, answer, _ = refresh(handler, body=body)
    assert (status, answer["error"]) == (400, "invalid_request")
    assert named in answer["message"]
    assert fake.requests == []


def test_a_checkout_customer_already_linked_to_another_user_is_a_409_and_the_first_link_stays(handler, fake, memory):
    fake.add_dodo("subscriptions", dodo_subscription("sub_first", customer_id=NEW_CUSTOMER, user_id="user_first"))
    assert refresh(handler, user="user_first", body={"dodo_subscription_id": "sub_first"})[0] == 200
    fake.add_dodo("subscriptions", dodo_subscription("sub_second", customer_id=NEW_CUSTOMER, user_id=USER))

    status, body, _ = refresh(handler, body={"dodo_subscription_id": "sub_second"})

    assert (status, body["error"]) == (409, "payer_conflict")
    assert "user_first" not in body["message"]
    assert "item#dodo:sub_second" not in items_of(memory, f"user:{USER}")
    assert f"customer_link#dodo:{NEW_CUSTOMER}" in items_of(memory, "user:user_first")


def test_a_checkout_return_without_a_dodo_key_says_so(handler, fake, monkeypatch):
    monkeypatch.delenv("DODO_PAYMENTS_API_KEY")
    status, body, _ = refresh(handler, body={"dodo_subscription_id": "sub_1"})
    assert (status, body["error"]) == (503, "not_configured")
