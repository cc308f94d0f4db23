"""Each function's DynamoDB permissions in template.yaml are exactly what its code uses.

Every webhook sample of a function's provider is delivered through the real handlers, on DynamoDB
Local, in several orders (so links, moves, refunds before their payment and a payer conflict all
happen), while a botocore hook records, per function, each IAM action a request needs (a
transaction needs the action of each of its items) and the partition key it names. The template must
allow each of those actions on those partitions (``dynamodb:LeadingKeys``), and nothing more: an
action the code never uses, or a partition pattern it never writes, is a permission to remove.
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from bench.instrument import instrumented_store_clients
from paygate_dev import template as cfn
from paygate_dev.fake_providers import dodo_payment, dodo_subscription
from paygate_dev.invoke import invoke
from tests.conftest import WebhookSender, body_of, sample_json, sample_names
from tests.integration.test_authorizer import gateway, signing_key
from tests.integration.test_reconcile_handlers import fake

CLERK_FUNCTIONS = {"subscription": "ClerkSubscriptionsFunction", "subscriptionItem": "ClerkSubscriptionsFunction"}
CLERK_FUNCTIONS["paymentAttempt"] = "ClerkPaymentAttemptsFunction"
DODO_FUNCTIONS = {
    "subscription": "DodoSubscriptionsFunction",
    "dunning": "DodoSubscriptionsFunction",
    "payment": "DodoPaymentsFunction",
    "refund": "DodoPaymentsFunction",
    "dispute": "DodoPaymentsFunction",
    "credit": "DodoCreditsFunction",
}
DODO_CUSTOMER = "cus_8fK2mQ9xLp3RtV7wZ1nB"
UNLINKED_CUSTOMER = "cus_0Unlinked000000000000"
__all__ = ["fake", "gateway", "signing_key"]  # fixtures used below
WRITERS = sorted({*CLERK_FUNCTIONS.values(), *DODO_FUNCTIONS.values()})

#: The IAM action each item of a transaction needs, and each single request.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
SINGLE_ACTIONS = {"PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query", "Scan"}


class Recorder:
    """``(action, partition key)`` pairs per function, from the parameters of each store request."""

    def __init__(self) -> None:
        self.used: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.function = threading.local()
        #: The function when no delivery set one in this thread (a reconcile run reads in worker threads).
        self.default_function = "ReconcileFunction"

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.dynamodb.*", self._record)
        return client

    def _record(self, params: dict, model: Any, **_: Any) -> None:
        function = getattr(self.function, "name", self.default_function)
        for action, pk in needed(model.name, params):
            self.used[function].add((action, pk))


def needed(operation: str, params: dict) -> Iterator[tuple[str, str | None]]:
    if operation == "TransactWriteItems":
        for item in params["TransactItems"]:
            ((kind, request),) = item.items()
            yield TRANSACT_ACTIONS[kind], partition(request)
    elif operation == "ExecuteStatement":
        yield "PartiQLSelect", None
    elif operation in SINGLE_ACTIONS:
        yield operation, partition(params)
    else:
        raise AssertionError(f"a request this test does not know the permission of: {operation}")


def partition(request: dict) -> str | None:
    if "IndexName" in request:
        return None  # an index's own key, which dynamodb:LeadingKeys does not name
    if "KeyConditionExpression" not in request and "Key" not in request and "Item" not in request:
        return None  # a scan: of the whole table, which no partition condition can scope
    if "Item" in request:
        return request["Item"]["pk"]["S"]
    if "Key" in request:
        return request["Key"]["pk"]["S"]
    (placeholder,) = re.findall(r"\bpk = (:\w+)", request["KeyConditionExpression"])
    return request["ExpressionAttributeValues"][placeholder]["S"]


class Deliveries(WebhookSender):
    def __init__(self, monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> None:
        super().__init__(monkeypatch)
        self.recorder = recorder

    def handle(self, function: str, event: dict[str, Any], secrets: str) -> dict[str, Any]:
        self.recorder.function.name = function
        return super().handle(function, event, secrets)


def as_organization(envelope: dict[str, Any]) -> dict[str, Any]:
    """The same event paid for by an organization (through another Dodo customer)."""
    envelope = json.loads(json.dumps(envelope).replace(DODO_CUSTOMER, "cus_0Organization0000000"))
    data = envelope["data"]
    if isinstance(data.get("payer"), dict):
        data["payer"].update(user_id="", organization_id="org_0Paying")
    if isinstance(data.get("metadata"), dict) and data["metadata"]:
        data["metadata"] = {"organization_id": "org_0Paying"}
    return envelope


def unlinked(envelope: dict[str, Any]) -> dict[str, Any]:
    """The same event from a Dodo customer no metadata has named yet: kept under the customer."""
    envelope = json.loads(json.dumps(envelope).replace(DODO_CUSTOMER, UNLINKED_CUSTOMER))
    if isinstance(envelope["data"].get("metadata"), dict):
        envelope["data"]["metadata"] = {}
    return envelope


def deliveries(provider: str, functions: dict[str, str], seed: int) -> list[tuple[str, bytes]]:
    samples = [sample_json(name) for name in sample_names(provider)]
    envelopes = samples + [as_organization(e) for e in samples]
    if provider == "dodo":
        envelopes += [unlinked(e) for e in samples]
    found = [
        (functions[e["type"].split(".")[0]], body_of(e)) for e in envelopes if e["type"].split(".")[0] in functions
    ]
    if seed == 0:
        return found
    if seed == 1:
        return found[::-1]
    random.Random(seed).shuffle(found)
    return found


def linking(function_kind: str) -> tuple[str, bytes]:
    """The first event naming the payer of the customer whose events were kept under it."""
    envelope = sample_json(f"dodo/{function_kind}.json")
    envelope = json.loads(json.dumps(envelope).replace(DODO_CUSTOMER, UNLINKED_CUSTOMER))
    if not envelope["data"].get("metadata"):  # the credit samples name no one
        envelope["data"]["metadata"] = {"user_id": "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"}
    return DODO_FUNCTIONS[function_kind.split(".")[0]], body_of(envelope)


def takeover() -> tuple[str, bytes]:
    """A Dodo subscription naming another user for an already linked customer (a payer conflict)."""
    envelope = sample_json("dodo/subscription.active.json")
    envelope["data"].update(subscription_id="sub_0Takeover00000000000", metadata={"user_id": "user_0Other"})
    return DODO_FUNCTIONS["subscription"], body_of(envelope)


@pytest.fixture(scope="module")
def recorded(dynamodb_local: Any) -> dict[str, set[tuple[str, str]]]:
    recorder = Recorder()
    monkeypatch = pytest.MonkeyPatch()
    sender = Deliveries(monkeypatch, recorder)
    try:
        with instrumented_store_clients(recorder.attach):
            for seed in range(6):
                name = f"paygate-iam-{uuid.uuid4().hex[:12]}"
                dynamodb_local.create_table(name)
                monkeypatch.setenv("TABLE_NAME", name)
                plan = deliveries("clerk", CLERK_FUNCTIONS, seed) + deliveries("dodo", DODO_FUNCTIONS, seed)
                # The customer kept apart is linked by a subscription, a payment or a credit entry (each moves it).
                link = linking(("payment.succeeded", "subscription.active", "credit.deducted")[seed % 3])
                for function, body in [*plan, link, takeover()]:
                    answer = sender.post(function, body, style="standard" if "Dodo" in function else "svix")
                    assert answer.status in (200, 409), (function, answer.body)
                dynamodb_local.client().delete_table(TableName=name)
    finally:
        monkeypatch.undo()
    return recorder.used


def statements(function: str) -> list[dict[str, Any]]:
    """A function's policy statements: inline, and of the managed policies it names."""
    resources = cfn.load()["Resources"]
    found = []
    for policy in resources[function]["Properties"].get("Policies") or []:
        if isinstance(policy, dict) and "Ref" in policy:
            policy = resources[policy["Ref"]]["Properties"]["PolicyDocument"]
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if "Effect" in statement:  # not a conditional (Fn::If) secret grant
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                found.append({**statement, "Action": actions})
    return found


def dynamodb_statements(function: str) -> list[dict[str, Any]]:
    """The Allow statements on DynamoDB of a function."""
    return [
        s
        for s in statements(function)
        if s["Effect"] == "Allow" and any(a.startswith("dynamodb:") for a in s["Action"])
    ]


def allowed_partitions(statement: dict[str, Any]) -> list[str] | None:
    """The ``dynamodb:LeadingKeys`` patterns of a statement (``None``: not scoped)."""
    condition = statement.get("Condition") or {}
    scoped = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
    return list(scoped) if scoped else None


def test_the_recording_saw_every_kind_of_request(recorded):
    actions = {action for used in recorded.values() for action, _ in used}
    assert {"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "GetItem"} <= actions, actions


def covers(pattern: str | None, pk: str | None) -> bool:
    """Whether a LeadingKeys pattern allows a partition (``None``: an unscoped grant, for a scan)."""
    if pattern is None or pk is None:
        return pattern is None and pk is None
    return fnmatch.fnmatchcase(pk, pattern)


def check_policy(function: str, used: set[tuple[str, str | None]]) -> None:
    statements = dynamodb_statements(function)
    granted: list[tuple[str, str | None]] = []
    for statement in statements:
        actions = [a.removeprefix("dynamodb:") for a in statement["Action"]]
        patterns = allowed_partitions(statement)
        if actions in (["Scan"], ["PartiQLSelect"]):
            # Neither names a partition IAM could check: a scan reads the table, a SELECT names its
            # partitions in its statement (and a full-table SELECT is denied next to it).
            assert patterns is None and (actions[0], None) in used, f"{function}: {statement}"
            granted.append((actions[0], None))
            continue
        assert patterns, f"{function}: {json.dumps(statement)} is not scoped with dynamodb:LeadingKeys"
        granted += [(a, p) for a in actions for p in patterns]
        # Nothing in a statement is there for nothing: each action is used on one of its partitions,
        # each partition by one of its actions.
        for action in actions:
            assert any(a == action and pk and fnmatch.fnmatchcase(pk, p) for a, pk in used for p in patterns), (
                f"{function}: {action} on {patterns} is allowed but never used"
            )
        for pattern in patterns:
            assert any(a in actions and pk and fnmatch.fnmatchcase(pk, pattern) for a, pk in used), (
                f"{function}: {pattern} is allowed to {actions} but never used"
            )
    for action, pk in sorted(used, key=str):
        assert any(a == action and covers(p, pk) for a, p in granted), (
            f"{function}: the code needs {action} on {pk}, which the template does not allow"
        )


@pytest.mark.parametrize("function", WRITERS)
def test_a_webhook_function_may_do_exactly_what_its_code_does_where_it_does_it(recorded, function):
    check_policy(function, recorded[function])


def test_the_reconcile_function_may_do_exactly_what_its_code_does_where_it_does_it(gateway, fake, table):
    """A scheduled run over both providers (a Dodo customer linked by it, one kept apart), a refresh."""
    from tests.integration.test_reconcile_handlers import ROUTE, scheduled_event, with_user_and_org

    recorder = Recorder()
    with_user_and_org(fake)
    fake.add_dodo("subscriptions", dodo_subscription("sub_dodo_1", customer_id="cus_1", user_id="user_dodo"))
    fake.add_dodo("subscriptions", dodo_subscription("sub_dodo_2", customer_id="cus_2", user_id=None))
    fake.add_dodo("payments", dodo_payment("pay_dodo_1", "sub_dodo_1", customer_id="cus_1", user_id="user_dodo"))
    # cus_2's subscription and first payment name nobody (kept under the customer); its second names a user.
    fake.add_dodo("payments", dodo_payment("pay_dodo_2", "sub_dodo_2", customer_id="cus_2", metadata={}))
    fake.add_dodo("payments", dodo_payment("pay_dodo_3", "sub_dodo_2", customer_id="cus_2", user_id="user_late"))
    with instrumented_store_clients(recorder.attach):
        assert invoke("ReconcileFunction", scheduled_event())["status"] == "finished"
        assert gateway.request(ROUTE, gateway.token()).status == 200
    check_policy("ReconcileFunction", recorder.used["ReconcileFunction"])


@pytest.mark.parametrize("function", ["AuthorizerFunction", "AccountFunction"])
def test_a_reader_may_only_select_from_named_partitions(function):
    (allow,) = dynamodb_statements(function)
    assert allow["Action"] == ["dynamodb:PartiQLSelect"]


@pytest.mark.parametrize("function", sorted(cfn.functions()))
def test_whoever_may_select_may_not_select_the_whole_table(function):
    if not any("dynamodb:PartiQLSelect" in s["Action"] for s in dynamodb_statements(function)):
        return
    denies = [s for s in statements(function) if s["Effect"] == "Deny" and "dynamodb:PartiQLSelect" in s["Action"]]
    assert any(d.get("Condition") == {"Bool": {"dynamodb:FullTableScan": "true"}} for d in denies), function


def test_the_sweeper_may_only_write_the_outbox_items_of_users_and_organizations(table, monkeypatch):
    """A window that ended announced by the deployed sweeper: its writes, and where its policy lets it write."""
    import paygate.clock
    from paygate.domain.state import Effect
    from paygate.infra.dynamodb_store import DynamoStateStore
    from paygate.service.apply import ApplyService
    from tests.integration.test_events import DAY, NOW, USER, entry, item

    recorder = Recorder()
    recorder.default_function = "EntitlementsSweeperFunction"
    ends = NOW + DAY
    monkeypatch.setattr(paygate.clock, "now_ms", lambda: NOW)
    service = ApplyService(DynamoStateStore(table), sleep=lambda _: None)
    service.apply(entry("msg_1"), Effect(USER, (item(1, "canceled", cancel_at_period_end=True, period_end=ends),)))
    monkeypatch.setattr(paygate.clock, "now_ms", lambda: ends + 1000)
    with instrumented_store_clients(recorder.attach):
        assert invoke("EntitlementsSweeperFunction", {}) == {"announced": 1}
    writes = {pk for action, pk in recorder.used["EntitlementsSweeperFunction"] if action == "PutItem"}
    assert writes == {f"PAYER#{USER.key}"}
    (put,) = [s for s in dynamodb_statements("EntitlementsSweeperFunction") if s["Action"] == ["dynamodb:PutItem"]]
    patterns = allowed_partitions(put)
    assert patterns, "the sweeper's writes are not scoped with dynamodb:LeadingKeys"
    assert all(any(fnmatch.fnmatchcase(pk, p) for p in patterns) for pk in writes)
    assert set(patterns) == {"PAYER#user:*", "PAYER#org:*"}  # announced payers only (service/outbox.py)
