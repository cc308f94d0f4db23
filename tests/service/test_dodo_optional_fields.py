"""Every field the ``dodopayments`` SDK types as optional or nullable (as paygate's wire models declare
them, checked against the SDK in tests/contract), delivered null and absent: the event applies."""

from __future__ import annotations

import json

import pytest

from paygate.providers import dodo
from tests.conftest import optional_field_variants, sample_json, sample_names
from tests.service.test_dodo_webhooks import function_for

MODELS = {
    "subscription": dodo.SubscriptionEvent,
    "dunning": dodo.DunningEvent,
    "payment": dodo.PaymentEvent,
    "refund": dodo.RefundEvent,
    "dispute": dodo.DisputeEvent,
    "credit": dodo.CreditLedgerEvent,
    "credit.balance_low": dodo.CreditBalanceLowEvent,
}


def model_of(event_type: str):
    return MODELS.get(event_type) or MODELS.get(event_type.split(".")[0])


def cases():
    for name in sample_names("dodo"):
        envelope = sample_json(name)
        model = model_of(envelope["type"])
        if model is None:
            continue  # an ignored type: nothing is read from it
        for where, how, changed in optional_field_variants(model, envelope):
            yield pytest.param(name, changed, id=f"{name}:{where}:{how}")


@pytest.mark.parametrize(("name", "changed"), list(cases()))
def test_an_optional_field_null_or_absent_still_applies(sender, name, changed):
    answer = sender.post(function_for(name), json.dumps(changed), style="standard")
    assert (answer.status, answer.body.get("outcome")) == (200, "applied"), answer.body


def test_every_applied_family_has_optional_fields_under_test():
    assert len(list(cases())) > 300
