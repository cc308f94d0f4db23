"""The template's alarms and dashboard watch metrics the code really emits.

A custom metric exists only once a function prints an EMF line for it: an alarm on a name or a
dimension the code never writes stays silent forever. The functions are run through the outcomes the
alarms are about and their EMF lines are read back; every alarm (and every dashboard graph) on the
``paygate`` namespace must name one of the metrics found, with exactly its dimensions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from paygate_dev import template as cfn
from tests.conftest import body_of, sample, sample_json
from tests.integration.test_authorizer import gateway, signing_key

__all__ = ["gateway", "signing_key"]  # fixtures used below

NAMESPACE = "paygate"
Metric = tuple[str, frozenset[tuple[str, str]]]

WEBHOOK_FUNCTIONS = {
    "ClerkSubscriptionsFunction": ("clerk/subscription.created.json", "svix"),
    "ClerkPaymentAttemptsFunction": ("clerk/paymentAttempt.created.json", "svix"),
    "DodoSubscriptionsFunction": ("dodo/subscription.active.json", "standard"),
    "DodoPaymentsFunction": ("dodo/payment.succeeded.json", "standard"),
    "DodoCreditsFunction": ("dodo/credit.added.json", "standard"),
}


def emitted(output: str) -> set[Metric]:
    """Every (metric, dimensions) an EMF document in ``output`` publishes."""
    found: set[Metric] = set()
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if directive["Namespace"] != NAMESPACE:
                continue
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((key, str(document[key])) for key in dimension_set)
                found |= {(metric["Name"], dimensions) for metric in directive["Metrics"]}
    return found


def watched_by_alarms() -> dict[str, set[Metric]]:
    found: dict[str, set[Metric]] = {}
    for name, resource in cfn.load()["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if "MetricName" in props:
            stats.append(props)
        found[name] = {
            (m["MetricName"], frozenset((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
            for m in stats
            if m["Namespace"] == NAMESPACE
        }
    return found


def watched_by_dashboard() -> set[Metric]:
    (dashboard,) = [r for r in cfn.load()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    found: set[Metric] = set()
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            fields = [f for f in metric if isinstance(f, str)]
            if fields[0] == NAMESPACE:
                pairs = fields[2:]
                found.add((fields[1], frozenset(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


@pytest.fixture(scope="module")
def webhook_metrics(dynamodb_local: Any) -> set[Metric]:
    """The EMF lines of every webhook function: applied, duplicate, quarantined, store unavailable."""
    import contextlib
    import io
    import uuid

    from tests.conftest import WebhookSender

    monkeypatch = pytest.MonkeyPatch()
    output = io.StringIO()
    try:
        table = f"paygate-alarms-{uuid.uuid4().hex[:12]}"
        dynamodb_local.create_table(table)
        monkeypatch.setenv("TABLE_NAME", table)
        sender = WebhookSender(monkeypatch)
        with contextlib.redirect_stdout(output):
            for function, (name, style) in WEBHOOK_FUNCTIONS.items():
                for msg_id in ("msg_once", "msg_once"):
                    sender.post(function, sample(name), style=style, msg_id=f"{msg_id}_{function}")
                unreadable = sample_json(name)
                unreadable["data"] = "not an object"
                assert sender.post(function, body_of(unreadable), style=style).status == 400
            monkeypatch.setenv("TABLE_NAME", "paygate-table-that-does-not-exist")
            for function, (name, style) in WEBHOOK_FUNCTIONS.items():
                assert sender.post(function, sample(name), style=style).status == 503
        dynamodb_local.client().delete_table(TableName=table)
    finally:
        monkeypatch.undo()
    return emitted(output.getvalue())


def test_the_webhook_functions_emit_one_metric_per_outcome(webhook_metrics):
    names = {name for name, _ in webhook_metrics}
    assert {"webhook_applied", "webhook_duplicate", "webhook_quarantined", "webhook_503"} <= names


@pytest.mark.parametrize("alarm", ["QuarantinedEventsAlarm", "WebhookStoreUnavailableAlarm"])
def test_a_webhook_alarm_watches_what_every_webhook_function_emits(webhook_metrics, alarm):
    watched = watched_by_alarms()[alarm]
    assert len(watched) == len(WEBHOOK_FUNCTIONS)
    assert watched <= webhook_metrics, sorted(watched - webhook_metrics)


def test_every_webhook_graph_of_the_dashboard_is_emitted_or_an_outcome(webhook_metrics):
    webhook_graphs = {m for m in watched_by_dashboard() if m[0].startswith("webhook_")}
    families = {dict(dims)["family"] for _, dims in webhook_metrics}
    assert {dict(dims)["family"] for _, dims in webhook_graphs} == families
    assert {name for name, _ in webhook_metrics} <= {name for name, _ in webhook_graphs}


# -- the authorizer ---------------------------------------------------------------------------------


@pytest.fixture
def authorizer_metrics(gateway, monkeypatch, capsys) -> set[Metric]:
    """The decision lines of the outcomes the authorizer alarms are about (and an allow)."""
    gateway.authorize("GET /pro/export", gateway.token(pla="u:pro", fea="u:export"))  # allowed by the token
    gateway.authorize("GET /pro/export")  # no token
    gateway.authorize("GET /pro/export", gateway.token(exp=1))  # invalid (expired)
    gateway.authorize("GET /pro/export", gateway.token(pla="u:free_user"))  # not granted, store read
    monkeypatch.setenv("TABLE_NAME", "paygate-table-that-does-not-exist")
    gateway.authorize("GET /pro/export", gateway.token(pla="u:free_user"))  # store unavailable
    monkeypatch.setenv("CLERK_ISSUER", "")
    gateway.authorize("GET /pro/export", gateway.token())  # misconfigured
    return emitted(capsys.readouterr().out)


def test_the_authorizer_emits_a_decision_metric_per_reason(authorizer_metrics):
    reasons = {dict(d).get("reason") for name, d in authorizer_metrics if name == "authorizer_decisions"}
    provoked = {"granted", "no_token", "invalid_token", "not_granted", "store_unavailable", "misconfigured"}
    assert provoked <= reasons, reasons


@pytest.mark.parametrize("alarm", ["AuthorizerFailedClosedAlarm", "DenialSpikeAlarm", "InvalidTokenSpikeAlarm"])
def test_an_authorizer_alarm_watches_a_metric_the_authorizer_emits(authorizer_metrics, alarm):
    from paygate.service.authorizer import Reason

    known = {v for k, v in vars(Reason).items() if k.isupper()}
    for name, dimensions in watched_by_alarms()[alarm]:
        found = {(n, d) for n, d in authorizer_metrics if n == name and {k for k, _ in d} == {k for k, _ in dimensions}}
        assert found, f"{alarm}: nothing emits {name} by {sorted(k for k, _ in dimensions)}"
        # Reasons this test cannot provoke (a JWKS outage, an unexpected error) must still be real ones.
        assert (name, dimensions) in authorizer_metrics or dict(dimensions)["reason"] in known, (alarm, dimensions)


def test_every_authorizer_graph_of_the_dashboard_names_a_real_dimension(authorizer_metrics):
    from paygate.service.authorizer import Reason

    known = {v for k, v in vars(Reason).items() if k.isupper()}
    keys = {frozenset(k for k, _ in d) for n, d in authorizer_metrics if n == "authorizer_decisions"}
    for name, dimensions in watched_by_dashboard():
        if name == "authorizer_decisions":
            assert frozenset(k for k, _ in dimensions) in keys, dimensions
            assert dict(dimensions).get("reason", "granted") in known
            assert dict(dimensions).get("source", "token") in {"token", "store", "none"}


def watched_aws_metrics() -> set[tuple[str, str, str]]:
    """(namespace, metric, the resource its one dimension names) of every alarm's AWS metric."""
    found = set()
    for resource in cfn.load()["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for query in resource["Properties"].get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric", {})
            for dimension in metric.get("Dimensions", []):
                value = dimension["Value"]
                named = value.get("Ref") or value.get("Fn::GetAtt", [None])[0] if isinstance(value, dict) else value
                found.add((metric["Namespace"], metric["MetricName"], named))
    return found


@pytest.mark.parametrize(
    "watched",
    [
        ("AWS/Lambda", "IteratorAge", "EventsPublisherFunction"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "EventsPublisherFailures"),
        ("AWS/Lambda", "Errors", "EntitlementsSweeperFunction"),
    ],
)
def test_events_that_do_not_get_out_raise_an_alarm(watched):
    # Nothing answers a caller when an announcement fails: only an alarm says so.
    assert watched in watched_aws_metrics()
