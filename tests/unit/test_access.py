"""Access windows, at each boundary: one millisecond before and after."""

import pytest

from paygate.domain.access import DAY_MS, AccessPolicy, access_window, grants_access
from paygate.domain.records import ItemStatus, SubscriptionItem

POLICY = AccessPolicy(grace_period_ms=7 * DAY_MS)
PERIOD_END = 1_800_000_000_000
FAILED_AT = 1_799_000_000_000


def item(status: ItemStatus, **kw) -> SubscriptionItem:
    return SubscriptionItem("csubi_1", status, plan_slug="pro", **kw)


@pytest.mark.parametrize("status", [ItemStatus.ACTIVE, ItemStatus.TRIALING])
def test_active_and_trialing_grant_access_with_no_end(status):
    assert access_window(item(status, period_end=PERIOD_END), POLICY).end_ms is None
    assert grants_access(item(status, period_end=PERIOD_END), PERIOD_END + DAY_MS, POLICY)


def test_canceled_at_period_end_keeps_access_until_the_last_millisecond():
    canceled = item(ItemStatus.CANCELED, period_end=PERIOD_END, cancel_at_period_end=True)
    assert grants_access(canceled, PERIOD_END - 1, POLICY)
    assert not grants_access(canceled, PERIOD_END, POLICY)
    assert not grants_access(canceled, PERIOD_END + 1, POLICY)


def test_an_immediate_cancellation_grants_nothing():
    assert access_window(item(ItemStatus.CANCELED, period_end=PERIOD_END), POLICY) is None


def test_active_with_a_scheduled_cancellation_ends_at_period_end():
    scheduled = item(ItemStatus.ACTIVE, period_end=PERIOD_END, cancel_at_period_end=True)
    assert grants_access(scheduled, PERIOD_END - 1, POLICY)
    assert not grants_access(scheduled, PERIOD_END, POLICY)


@pytest.mark.parametrize("status", [ItemStatus.PAST_DUE, ItemStatus.ON_HOLD])
def test_a_failed_payment_keeps_access_for_the_grace_period_only(status):
    failing = item(status, past_due_at=FAILED_AT)
    end = FAILED_AT + 7 * DAY_MS
    assert grants_access(failing, FAILED_AT, POLICY)
    assert grants_access(failing, end - 1, POLICY)
    assert not grants_access(failing, end, POLICY)
    assert not grants_access(failing, end + 1, POLICY)


def test_the_grace_period_is_configurable():
    failing = item(ItemStatus.PAST_DUE, past_due_at=FAILED_AT)
    assert not grants_access(failing, FAILED_AT, AccessPolicy(grace_period_ms=0))
    assert grants_access(failing, FAILED_AT + 10 * DAY_MS - 1, AccessPolicy(grace_period_ms=10 * DAY_MS))


def test_past_due_without_a_known_start_grants_nothing():
    assert access_window(item(ItemStatus.PAST_DUE), POLICY) is None


@pytest.mark.parametrize(
    "status",
    [
        ItemStatus.ENDED,
        ItemStatus.EXPIRED,
        ItemStatus.ABANDONED,
        ItemStatus.INCOMPLETE,
        ItemStatus.UPCOMING,
        ItemStatus.FAILED,
        ItemStatus.PENDING,
    ],
)
def test_other_statuses_grant_nothing(status):
    assert access_window(item(status, period_end=PERIOD_END, past_due_at=FAILED_AT), POLICY) is None


def test_an_item_reads_its_stored_record():
    fields = {
        "item_id": "csubi_1",
        "plan_slug": "pro",
        "status": "canceled",
        "period_end": PERIOD_END,
        "cancel_at_period_end": True,
    }
    assert SubscriptionItem.from_fields(fields) == item(
        ItemStatus.CANCELED, period_end=PERIOD_END, cancel_at_period_end=True
    )
