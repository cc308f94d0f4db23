"""The samples in events/ and the in-process invoker (``sam local invoke`` without Docker)."""

import json
import os
import subprocess
import sys

from paygate_dev import EVENTS_DIR, ROOT
from paygate_dev.samples import SAMPLE_SECRET, apigw_event, endpoint_for, raw_samples


def test_every_apigw_sample_is_generated_from_its_raw_body_and_up_to_date():
    for sample in raw_samples():
        made = apigw_event(sample)
        stored = EVENTS_DIR / "apigw" / sample.parent.name / sample.name
        if made is None:
            assert not stored.exists(), f"{stored} has no function that applies its type"
            continue
        endpoint, event = made
        assert stored.exists(), f"run `python -m paygate_dev.samples`: {stored} is missing"
        kept = json.loads(stored.read_text())
        assert kept["body"] == sample.read_text()
        assert kept["headers"] == event["headers"]
        assert kept["routeKey"] == f"{endpoint.method} {endpoint.path}"


def test_every_clerk_sample_has_a_function_that_applies_it():
    for sample in (EVENTS_DIR / "clerk").glob("*.json"):
        assert endpoint_for("clerk", json.loads(sample.read_text())["type"]) is not None, sample.name


def test_the_invoke_command_re_signs_and_runs_a_sample(dynamodb_local, table):
    env = {**os.environ, "TABLE_NAME": table, "WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"}
    event = EVENTS_DIR / "apigw" / "clerk" / "subscription.created.json"
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "paygate_dev.invoke", "ClerkSubscriptionsFunction", "-e", str(event)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["outcome"] == "applied"


def test_without_re_signing_a_stored_sample_is_refused_as_expired(dynamodb_local, table):
    env = {**os.environ, "TABLE_NAME": table, "WEBHOOK_SECRET": SAMPLE_SECRET}
    event = EVENTS_DIR / "apigw" / "clerk" / "subscription.created.json"
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "paygate_dev.invoke", "ClerkSubscriptionsFunction", "-e", str(event), "--no-sign"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    response = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert response["statusCode"] == 401
    assert "tolerance" in json.loads(response["body"])["message"]
