"""Every event paygate publishes matches the JSON Schema of its detail type (docs/events/schemas/),
checked with the ``jsonschema`` library: the providers' own samples, and a payment that fails now."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from paygate.domain.announcements import DETAIL_TYPES, ENTITLEMENTS_CHANGED
from paygate.service.apply import ApplyService
from paygate.service.outbox import events_of
from paygate_dev import ROOT
from paygate_dev.demo import DAY_MS, dodo_subscription_event
from paygate_dev.memory_store import InMemoryStateStore
from tests.conftest import body_of, sample, sample_names
from tests.service.conftest import ServiceSender
from tests.service.test_clerk_webhooks import function_for as clerk_function
from tests.service.test_dodo_webhooks import function_for as dodo_function

SCHEMAS = ROOT / "docs" / "events" / "schemas"


def schema_file(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-") + ".json"


@cache
def validator(detail_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_file(detail_type)).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def published() -> tuple[dict[str, Any], ...]:
    """The events of every provider sample, then of a Dodo subscription whose renewal fails now."""
    memory = InMemoryStateStore()
    sender = ServiceSender(ApplyService(memory, sleep=lambda _: None))
    for n, name in enumerate(sample_names("clerk")):
        sender.post(clerk_function(name), sample(name), msg_id=f"msg_clerk_{n}")
    for n, name in enumerate(sample_names("dodo")):
        if (function := dodo_function(name)) is not None:
            sender.post(function, sample(name), style="standard", msg_id=f"msg_dodo_{n}")
    now = int(time.time() * 1000)
    ids = {
        "user": "user_s1",
        "customer": "cus_s1",
        "subscription_id": "sub_s1",
        "product_id": "pdt_pro_monthly_7Hq2Lx9Vb4",
    }
    for n, (kind, at) in enumerate([("active", now - 29 * DAY_MS), ("on_hold", now - 60_000)]):
        event = dodo_subscription_event(kind, at_ms=at, next_billing_ms=now - 3_600_000, **ids)
        sender.post("DodoSubscriptionsFunction", body_of(event), style="standard", msg_id=f"msg_hold_{n}")
    return tuple(e for image in memory.stream for e in events_of(image))


def test_every_detail_type_has_a_valid_schema():
    for detail_type in DETAIL_TYPES:
        assert validator(detail_type).schema["title"] == f"paygate {detail_type}"
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(schema_file(t) for t in DETAIL_TYPES)


def test_the_samples_and_a_failing_renewal_publish_every_detail_type():
    assert {e["detail_type"] for e in published()} == set(DETAIL_TYPES)


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_every_published_event_matches_its_schema(detail_type):
    events = [e for e in published() if e["detail_type"] == detail_type]
    assert events
    for event in events:
        assert event["source"] == "paygate"
        errors = sorted(validator(detail_type).iter_errors(event["detail"]), key=str)
        assert not errors, [e.message for e in errors]


def test_the_schemas_refuse_what_paygate_does_not_send():
    detail = dict(next(e for e in published() if e["detail_type"] == ENTITLEMENTS_CHANGED)["detail"])
    assert validator(ENTITLEMENTS_CHANGED).is_valid(detail)
    assert not validator(ENTITLEMENTS_CHANGED).is_valid({k: v for k, v in detail.items() if k != "id"})
    assert not validator(ENTITLEMENTS_CHANGED).is_valid({**detail, "id": "not-a-uuid"})
    assert not validator(ENTITLEMENTS_CHANGED).is_valid({**detail, "unexpected": 1})
