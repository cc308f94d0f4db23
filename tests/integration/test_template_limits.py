"""Limits on the public routes, as template.yaml declares them (checked against the routes it serves)."""

from __future__ import annotations

import json
import re

import pytest

from paygate_dev import template as cfn


@pytest.fixture(scope="module")
def resources() -> dict:
    return cfn.load()["Resources"]


def api(resources: dict) -> dict:
    (http_api,) = [r for r in resources.values() if r["Type"] == "AWS::Serverless::HttpApi"]
    return http_api["Properties"]


def webhook_routes() -> dict[str, str]:
    return {
        r.route_key: f.logical_id
        for f in cfn.functions().values()
        for r in f.routes
        if r.authorizer is None and r.path.startswith("/webhooks/")
    }


def test_every_route_is_throttled_and_each_webhook_route_on_its_own_limit(resources):
    props = api(resources)
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    assert set(props["RouteSettings"]) == set(webhook_routes())
    for settings in props["RouteSettings"].values():
        assert settings == {
            "ThrottlingRateLimit": {"Ref": "WebhookThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "WebhookThrottlingBurstLimit"},
        }


def test_each_webhook_function_is_capped_and_the_authorizer_has_its_own_concurrency(resources):
    for function in set(webhook_routes().values()):
        assert resources[function]["Properties"]["ReservedConcurrentExecutions"] == {
            "Fn::If": ["HasWebhookConcurrencyLimit", {"Ref": "WebhookConcurrencyLimit"}, {"Ref": "AWS::NoValue"}]
        }, function
    assert resources["AuthorizerFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasAuthorizerReservedConcurrency",
            {"Ref": "AuthorizerReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }


def test_access_logs_are_json_without_any_header(resources):
    settings = api(resources)["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert resources[group]["Type"] == "AWS::Logs::LogGroup"
    line = json.loads(re.sub(r"\$context\.[\w.]+", "x", settings["Format"]))
    assert {"requestId", "routeKey", "status", "authorizerError"} <= set(line)
    # The session token travels in a header or a cookie: an access log line never names either.
    assert "header" not in settings["Format"] and "cookie" not in settings["Format"].lower()


def test_every_function_and_the_api_log_to_a_group_with_retention(resources):
    groups = {name: r for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Fn::If": ["IsProd", 365, 30]}
    named = {g["Properties"].get("LogGroupName", {}).get("Fn::Sub", "") for g in groups.values()}
    for function in cfn.functions():
        assert f"/aws/lambda/${{{function}}}" in named, f"{function} has no log group with retention"


def test_the_table_takes_a_warm_throughput_only_when_asked(resources):
    (table,) = [r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert table["Properties"]["WarmThroughput"]["Fn::If"][0] == "HasWarmThroughput"


def test_webhook_secret_parameters_refuse_what_the_functions_would_refuse():
    parameters = cfn.load()["Parameters"]
    secrets = [p for name, p in parameters.items() if name.endswith("WebhookSecret")]
    assert len(secrets) == 5
    good = "whsec_" + "A" * 32
    for parameter in secrets:
        pattern = re.compile(parameter["AllowedPattern"])
        assert pattern.fullmatch(good) and pattern.fullmatch(f"{good}, {good}")
        for bad in ("whsec_AA", "", "whsec_", f"{good},whsec_", "whsec_" + "A" * 31 + "!"):
            assert not pattern.fullmatch(bad), bad


def test_prod_cannot_be_deployed_without_authorized_parties():
    rule = cfn.load()["Rules"]["ProdNeedsAuthorizedParties"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ClerkAuthorizedParties"}, ""]}]}
