"""Every webhook function through its real handler, on DynamoDB Local: the wiring the service tests
(tests/service, on the in-memory store) do not see - settings from the environment, the DynamoDB
adapter, Secrets Manager-less secrets, and the answers a misconfigured function gives."""

from __future__ import annotations

import json

import pytest

from paygate_dev.apigw import http_event
from paygate_dev.invoke import invoke
from paygate_dev.samples import HEADER_STYLE, endpoint_for
from paygate_dev.signing import new_secret, signed_headers
from tests.conftest import sample, sample_json, sample_names


def _endpoint(name: str):
    provider = name.split("/")[0]
    return provider, endpoint_for(provider, sample_json(name)["type"])


APPLIED = [n for n in sample_names("clerk") + sample_names("dodo") if _endpoint(n)[1] is not None]


@pytest.mark.parametrize("name", APPLIED)
def test_every_sample_is_applied_by_its_function_then_a_duplicate(sender, store, name):
    provider, endpoint = _endpoint(name)
    style = HEADER_STYLE[provider]
    first = sender.post(endpoint.function, sample(name), style=style, msg_id="msg_handler")
    assert first.status == 200 and first.body["outcome"] == "applied", first.body
    kept = store.event(endpoint.family, "msg_handler")
    assert kept["outcome"] == "applied" and json.loads(kept["body"]) == sample_json(name)
    assert {r["sk"] for r in store.payer_items(kept["payer"])} >= {
        sk for sk in kept["applied"] if not sk.startswith("customer_link#")
    }
    again = sender.post(endpoint.function, sample(name), style=style, msg_id="msg_handler")
    assert again.body["outcome"] == "duplicate"


def test_a_tampered_body_is_refused_and_nothing_is_written(sender, dynamodb_local, table, monkeypatch):
    body = sample("clerk/subscription.created.json").decode()
    headers = signed_headers(sender.secret, body)
    monkeypatch.setenv("WEBHOOK_SECRET", sender.secret)
    tampered = body.replace('"free_user"', '"pro"')
    function = "ClerkSubscriptionsFunction"
    response = invoke(function, http_event("POST", "/webhooks/clerk/subscriptions", body=tampered, headers=headers))
    assert response["statusCode"] == 401
    assert dynamodb_local.client().scan(TableName=table)["Count"] == 0


def test_secrets_in_rotation_come_from_the_environment(sender):
    old, new = new_secret(), new_secret()
    for secret in (old, new):
        answer = sender.post(
            "DodoPaymentsFunction",
            sample("dodo/payment.succeeded.json"),
            style="standard",
            secret=secret,
            configured=f"{new},{old}",
        )
        assert answer.status == 200


def test_a_store_outage_answers_503_so_the_provider_retries(sender, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "paygate-table-that-does-not-exist")
    answer = sender.post("ClerkSubscriptionsFunction", sample("clerk/subscription.created.json"))
    assert answer.status == 503 and answer.body["error"] == "store_unavailable"


def test_a_missing_secret_is_our_fault_and_says_so(table, monkeypatch):
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    response = invoke("ClerkSubscriptionsFunction", http_event("POST", "/x", body="{}", headers={}))
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"] == "misconfigured"


def test_a_bad_secret_in_the_environment_fails_the_cold_start_naming_its_position(tmp_path):
    import subprocess
    import sys

    from paygate_dev import LAYER_DIR, ROOT

    script = (
        f"import sys; sys.path[:0] = [{str(LAYER_DIR)!r}, {str(ROOT / 'functions' / 'dodo_payments')!r}]\nimport app\n"
    )
    good = new_secret()
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "t",
        "WEBHOOK_SECRET": f"{good},whsec_AA==",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "webhook signing secret 2 of 2 is 1 bytes long" in done.stderr
    assert good not in done.stderr and "AA==" not in done.stderr


def test_a_bad_secret_from_secrets_manager_answers_500_naming_its_position(sender):
    answer = sender.post(
        "ClerkSubscriptionsFunction", sample("clerk/subscription.created.json"), configured=f"{sender.secret},whsec_"
    )
    assert (answer.status, answer.body["error"]) == (500, "misconfigured")
    assert "secret 2 of 2" in answer.body["message"]
