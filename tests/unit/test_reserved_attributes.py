"""State records never carry the store's own attribute names.

``expires_at`` is the table's TTL attribute (epoch seconds, for the inbox); a provider field of the
same name (Dodo's subscription ``expires_at``) stored under it would read as a TTL. Every sample of
every family is mapped and checked.
"""

from __future__ import annotations

import json

import pytest

from paygate.domain.state import MergedRecord, body_fields
from paygate.providers import clerk, dodo
from paygate.providers.base import Delivery
from paygate_dev import EVENTS_DIR
from tests.conftest import decode as decode_body

FAMILIES = {
    "clerk": (clerk.SUBSCRIPTIONS, clerk.PAYMENT_ATTEMPTS),
    "dodo": (dodo.SUBSCRIPTIONS, dodo.PAYMENTS, dodo.CREDITS),
}
RESERVED = {"pk", "sk", "expires_at"}
SAMPLES = sorted(EVENTS_DIR.glob("clerk/*.json")) + sorted(EVENTS_DIR.glob("dodo/*.json"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_state_record_uses_a_reserved_attribute(path):
    applied = 0
    for family in FAMILIES[path.parent.name]:
        _, effect = decode_body(family, path.read_bytes(), Delivery("msg_reserved", 0))
        for record in effect.records if effect else ():
            applied += 1
            # A merged record (a balance) is checked as it would first be written.
            fields = body_fields(record.merge(None)[1] if isinstance(record, MergedRecord) else record.body)
            assert not RESERVED & set(fields), (record.kind, sorted(RESERVED & set(fields)))
    if json.loads(path.read_text())["type"] not in dodo.IGNORED_EVENTS:
        assert applied, "no family applied this sample"
