"""Dodo access windows at their edges: one millisecond before and after each boundary (pure)."""

from __future__ import annotations

import pytest

from paygate.domain.access import DAY_MS, AccessPolicy, access_window, grants_access
from paygate.domain.records import SubscriptionItem
from paygate.infra.catalog_file import load_catalog
from paygate.providers import dodo
from paygate.providers.base import Delivery
from tests.conftest import sample_json

POLICY = AccessPolicy()
CATALOG = load_catalog()


def item(name: str, **data) -> SubscriptionItem:
    envelope = sample_json(f"dodo/{name}.json")
    envelope["data"].update(data)
    effect = dodo.map_subscription(envelope, Delivery("msg_1", 0), CATALOG)
    (record,) = [r for r in effect.records if r.kind.value == "item"]
    return record.body


def edges(plan_item: SubscriptionItem, boundary: int, policy: AccessPolicy = POLICY) -> tuple[bool, bool, bool]:
    return tuple(grants_access(plan_item, boundary + d, policy) for d in (-1, 0, 1))  # type: ignore[return-value]


def test_active_grants_with_no_end():
    active = item("subscription.active")
    assert access_window(active, POLICY).end_ms is None
    assert grants_access(active, active.period_end + 10 * 365 * DAY_MS, POLICY)


def test_a_trial_grants_like_active():
    assert access_window(item("subscription.active", trial_period_days=30), POLICY).end_ms is None


def test_cancel_at_period_end_grants_until_next_billing_date():
    scheduled = item("subscription.updated")
    assert edges(scheduled, scheduled.period_end) == (True, False, False)
    cancelled = item("subscription.cancelled")
    assert edges(cancelled, cancelled.period_end) == (True, False, False)


def test_an_immediate_cancellation_grants_nothing():
    assert access_window(item("subscription.cancelled", cancel_at_next_billing_date=False), POLICY) is None


@pytest.mark.parametrize("name", ["subscription.on_hold", "subscription.past_due"])
def test_a_failed_payment_keeps_access_for_the_grace_period(name):
    held = item(name)
    assert edges(held, held.past_due_at + 7 * DAY_MS) == (True, False, False)


def test_the_grace_period_follows_the_policy():
    held = item("subscription.on_hold")
    short = AccessPolicy(grace_period_ms=DAY_MS)
    assert edges(held, held.past_due_at + DAY_MS, short) == (True, False, False)
    assert access_window(held, AccessPolicy(grace_period_ms=0)).contains(held.past_due_at) is False


@pytest.mark.parametrize("name", ["subscription.failed", "subscription.expired", "subscription.paused"])
def test_failed_expired_and_paused_grant_nothing(name):
    assert access_window(item(name), POLICY) is None


def test_a_product_without_a_plan_never_grants_even_when_active():
    assert access_window(item("subscription.active", product_id="pdt_unknown"), POLICY) is None


def test_a_plan_change_grants_the_new_plan():
    changed = item("subscription.plan_changed")
    assert changed.plan_slug == "team" and access_window(changed, POLICY).end_ms is None


def test_renewal_moves_the_period_end_of_a_scheduled_cancellation():
    before = item("subscription.updated")
    after = item("subscription.renewed", cancel_at_next_billing_date=True)
    assert after.period_end > before.period_end
    assert edges(after, after.period_end) == (True, False, False)
    assert grants_access(after, before.period_end + 1, POLICY)
