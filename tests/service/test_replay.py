"""Replay (paygate.service.replay): a stored event re-run through the current code.

A release that cannot read an event type quarantines it; the fixed release replays it and the state is
exactly what a delivery to the fixed release would have made. An applied event replayed changes
nothing. A dry run writes nothing and reports the very changes the replay then makes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from paygate.domain.catalog import Catalog
from paygate.domain.state import Effect, Outcome
from paygate.infra.catalog_file import load_catalog
from paygate.providers.base import Delivery, InvalidEvent, WebhookFamily
from paygate.providers.families import FAMILIES
from paygate.service.apply import ApplyService
from paygate.service.inbox import Inbox
from paygate.service.replay import ReplayService
from paygate.service.webhooks import WebhookService
from paygate_dev import EVENTS_DIR
from paygate_dev.apigw import http_event
from paygate_dev.memory_store import InMemoryStateStore
from paygate_dev.samples import HEADER_STYLE
from paygate_dev.send import endpoint_for_type
from paygate_dev.signing import new_secret, signed_headers
from tests.service.conftest import family_of

SECRET = new_secret()
NOW = 1_800_000_000_000
SAMPLES = sorted(p.relative_to(EVENTS_DIR).as_posix() for p in EVENTS_DIR.glob("[cd]*/*.json"))


def _refuse(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:
    raise InvalidEvent("data", "this release cannot read the event")


def broken(family: WebhookFamily) -> WebhookFamily:
    """The family as a faulty release had it: every type it applies is refused (quarantined)."""
    return dataclasses.replace(family, mappers=dict.fromkeys(family.mappers, _refuse))


def family_for(sample: str) -> WebhookFamily:
    provider = sample.split("/")[0]
    event_type = json.loads((EVENTS_DIR / sample).read_text())["type"]
    return family_of(endpoint_for_type(provider, event_type).function)


def deliver(memory: InMemoryStateStore, family: WebhookFamily, sample: str, msg_id: str) -> dict[str, Any]:
    body = (EVENTS_DIR / sample).read_bytes()
    headers = signed_headers(SECRET, body, style=HEADER_STYLE[family.provider], msg_id=msg_id)
    service = WebhookService(family, ApplyService(memory), load_catalog(), lambda: [SECRET], clock=lambda: NOW)
    return json.loads(service.handle(http_event("POST", "/webhook", body=body, headers=headers)).response["body"])


def replayer(memory: InMemoryStateStore, now: int = NOW + 60_000) -> ReplayService:
    return ReplayService(memory, load_catalog(), FAMILIES, clock=lambda: now)


def state(memory: InMemoryStateStore) -> list[dict[str, Any]]:
    return [i for i in memory.items() if not i["pk"].startswith("EVENT#")]


def stored_event(memory: InMemoryStateStore, family: WebhookFamily, msg_id: str) -> dict[str, Any]:
    (found,) = Inbox(memory, FAMILIES).find(msg_id, family.name)
    return found


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_quarantined_event_heals_exactly_as_a_delivery_to_the_fixed_release(sample: str) -> None:
    family = family_for(sample)
    healed, direct = InMemoryStateStore(), InMemoryStateStore()
    answer = deliver(healed, broken(family), sample, "msg_replayed")
    expected = deliver(direct, family, sample, "msg_replayed")
    if answer.get("outcome") != Outcome.QUARANTINED.value:
        # A type the family does not apply is kept as ignored by both releases: a replay is a duplicate.
        assert answer["outcome"] == expected["outcome"] == Outcome.IGNORED.value
        result = replayer(healed).replay(stored_event(healed, family, "msg_replayed"))
        assert result.outcome is Outcome.DUPLICATE and not result.changes
        return
    assert state(healed) == []

    before = healed.items()
    rehearsal = replayer(healed).replay(stored_event(healed, family, "msg_replayed"), dry_run=True)
    assert healed.items() == before, "a dry run writes nothing"

    result = replayer(healed).replay(stored_event(healed, family, "msg_replayed"))
    assert result.outcome.value == expected["outcome"]
    assert (result.previous, result.error, result.status) == ("quarantined", None, 200)
    assert state(healed) == state(direct)
    assert [c.to_json() for c in rehearsal.changes] == [c.to_json() for c in result.changes]
    inbox = stored_event(healed, family, "msg_replayed")
    assert inbox["outcome"] == expected["outcome"] and "error" not in inbox
    assert inbox["replayed_at"] == NOW + 60_000 and inbox["received_at"] == NOW

    again = replayer(healed).replay(inbox)
    assert (again.outcome, again.changes) == (Outcome.DUPLICATE, ())
    assert state(healed) == state(direct)


def test_a_replay_follows_links_made_since_the_event_was_quarantined() -> None:
    """A credit movement names only the Dodo customer; by the time it is replayed, a subscription event
    has linked the customer to its user: the replay (and its dry run) files the credit under the user."""
    memory = InMemoryStateStore()
    credits, subscriptions = FAMILIES["dodo.credits"], FAMILIES["dodo.subscriptions"]
    assert deliver(memory, broken(credits), "dodo/credit.added.json", "msg_credit")["outcome"] == "quarantined"
    assert deliver(memory, subscriptions, "dodo/subscription.active.json", "msg_sub")["outcome"] == "applied"
    payer = stored_event(memory, subscriptions, "msg_sub")["payer"]

    rehearsal = replayer(memory).replay(stored_event(memory, credits, "msg_credit"), dry_run=True)
    result = replayer(memory).replay(stored_event(memory, credits, "msg_credit"))
    assert result.outcome is Outcome.APPLIED
    assert [c.to_json() for c in rehearsal.changes] == [c.to_json() for c in result.changes]
    balances = [i for i in state(memory) if i["sk"].startswith("credit_balance#")]
    assert [b["pk"] for b in balances] == [f"PAYER#{payer}"]


def test_a_replay_still_refused_stays_quarantined_with_the_current_reason() -> None:
    memory = InMemoryStateStore()
    family = FAMILIES["clerk.subscriptions"]
    deliver(memory, broken(family), "clerk/subscriptionItem.active.json", "msg_1")
    result = ReplayService(memory, load_catalog(), {family.name: broken(family)}).replay(
        stored_event(memory, family, "msg_1")
    )
    assert (result.outcome, result.status) == (Outcome.QUARANTINED, 400)
    assert result.error == "data: this release cannot read the event"
    assert state(memory) == []


def test_the_inbox_lists_by_outcome_family_time_and_payer() -> None:
    memory = InMemoryStateStore()
    deliver(memory, broken(FAMILIES["clerk.subscriptions"]), "clerk/subscriptionItem.active.json", "msg_q")
    deliver(memory, FAMILIES["dodo.subscriptions"], "dodo/subscription.active.json", "msg_a")
    inbox = Inbox(memory, FAMILIES)
    assert [i["event_id"] for i in inbox.list(outcomes=["quarantined"])] == ["msg_q"]
    assert [i["event_id"] for i in inbox.list(families=["dodo.subscriptions"])] == ["msg_a"]
    assert inbox.list(since_ms=NOW + 1) == []
    assert "body" not in inbox.list()[0] and "body" in inbox.list(with_body=True)[0]
    payer = inbox.find("msg_a")[0]["payer"]
    assert [i["event_id"] for i in inbox.list(payers=[payer])] == ["msg_a"]
    assert inbox.find("msg_none") == []


def test_every_deployed_family_is_known_to_the_operator_tools() -> None:
    from paygate_dev.local_env import is_webhook_function
    from paygate_dev.template import functions

    deployed = {family_of(f.logical_id).name for f in functions().values() if is_webhook_function(f)}
    assert deployed == set(FAMILIES)


def test_samples_exist() -> None:
    assert len(SAMPLES) > 40 and all(Path(EVENTS_DIR / s).is_file() for s in SAMPLES)
