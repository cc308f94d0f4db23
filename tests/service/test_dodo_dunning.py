"""Dunning and the provider's own past-due window, where they say more than the subscription events."""

from __future__ import annotations

from paygate.domain.access import DAY_MS
from tests.conftest import body_of
from tests.service.test_money_taken_back import SUBSCRIBED, at, deliver, event, held

FAILED_AT = at("2026-12-01T09:14:27.318402Z")  # the renewal that failed was due then
ON_HOLD = event("subscription.on_hold")
AFTER_GRACE = FAILED_AT + 8 * DAY_MS


def test_on_hold_keeps_access_for_the_grace_period_only(sender, store):
    deliver(sender, SUBSCRIBED, ON_HOLD)
    assert held(store, now=FAILED_AT + 7 * DAY_MS - 1).plans == {"pro"}
    assert held(store, now=AFTER_GRACE).plans == set()


def test_a_dunning_recovery_restores_access_before_the_subscription_event(sender, store):
    deliver(sender, SUBSCRIBED, ON_HOLD)
    recovered = event("dunning.recovered")
    assert sender.post("DodoSubscriptionsFunction", body_of(recovered), style="standard").body["outcome"] == "applied"
    assert held(store, now=AFTER_GRACE).plans == {"pro"}


def test_a_dunning_attempt_that_is_still_recovering_changes_nothing(sender, store):
    deliver(sender, SUBSCRIBED, ON_HOLD)
    started = event("dunning.started")
    assert sender.post("DodoSubscriptionsFunction", body_of(started), style="standard").body["outcome"] == "applied"
    assert held(store, now=AFTER_GRACE).plans == set()


def test_a_recovery_of_an_earlier_failure_does_not_cover_a_later_one(sender, store):
    recovered = event("dunning.recovered")
    recovered["timestamp"] = "2026-11-20T00:00:00Z"
    deliver(sender, SUBSCRIBED)
    sender.post("DodoSubscriptionsFunction", body_of(recovered), style="standard")
    deliver(sender, ON_HOLD)
    assert held(store, now=AFTER_GRACE).plans == set()


def test_the_providers_past_due_window_counts_when_it_is_longer_than_the_grace_period(sender, store):
    past_due = event("subscription.past_due", past_due_ends_at="2026-12-20T00:00:00Z")
    deliver(sender, SUBSCRIBED, past_due)
    assert held(store, now=at("2026-12-19T23:59:59Z")).plans == {"pro"}
    assert held(store, now=at("2026-12-20T00:00:00Z")).plans == set()
