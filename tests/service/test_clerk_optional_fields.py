"""Every field Clerk types as optional or nullable, delivered null and absent: the event applies, or,
where it truly cannot, is quarantined naming the field.

Optionality is the union of Clerk's two sources as the wire models state it (and tests/contract
checks the samples against the published TypeScript types): see docs/reference/clerk-billing.md.
"""

from __future__ import annotations

import json

import pytest

from paygate.providers.clerk import PaymentAttemptEvent, SubscriptionEvent, SubscriptionItemEvent
from tests.conftest import optional_field_variants, sample_json, sample_names

MODELS = {
    "subscription": SubscriptionEvent,
    "subscriptionItem": SubscriptionItemEvent,
    "paymentAttempt": PaymentAttemptEvent,
}


def cannot_apply(family: str, changed: dict) -> str | None:
    """The field a quarantine must name when the change leaves the event impossible to apply."""
    payer = changed["data"].get("payer")
    if payer is None:
        # An item event's payer says whose item it is (both sources describe it as set on standalone
        # item events): without it there is nobody to file the item under.
        return "data.payer" if family == "subscriptionItem" else None
    # A payer is a user or an organization: without either id, nobody to file it under.
    return None if payer.get("user_id") or payer.get("organization_id") else "data.payer"


def cases():
    for name in sample_names("clerk"):
        envelope = sample_json(name)
        family = envelope["type"].split(".")[0]
        for where, how, changed in optional_field_variants(MODELS[family], envelope):
            yield pytest.param(name, family, where, changed, id=f"{name}:{where}:{how}")


@pytest.mark.parametrize(("name", "family", "where", "changed"), list(cases()))
def test_an_optional_field_null_or_absent(sender, name, family, where, changed):
    function = "ClerkPaymentAttemptsFunction" if family == "paymentAttempt" else "ClerkSubscriptionsFunction"
    answer = sender.post(function, json.dumps(changed))
    cannot = cannot_apply(family, changed)
    if cannot:
        assert (answer.status, answer.body.get("field")) == (400, cannot), answer.body
    else:
        assert (answer.status, answer.body.get("outcome")) == (200, "applied"), answer.body


def test_every_family_has_optional_fields_under_test():
    assert {c.values[1] for c in cases()} == set(MODELS)
    assert len(list(cases())) > 100
