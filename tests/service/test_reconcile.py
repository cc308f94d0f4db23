"""Reconciliation on the in-memory store: the providers' real SDK clients read a local server that serves
their documented shapes (each validated with the SDK's own response models, see paygate_dev.fake_providers),
and what they read is applied through the same versioned path as webhooks."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from paygate.domain.state import Payer, PayerKind
from paygate.infra.catalog_file import load_catalog
from paygate.providers.clerk_api import ClerkFetcher, api_url, retry_config
from paygate.providers.dodo_api import DodoFetcher
from paygate.service.apply import ApplyService
from paygate.service.layout import history_pk, payer_pk
from paygate.service.ports import StoreUnavailable
from paygate.service.reconcile import ReconcileService, Scope
from paygate_dev.fake_providers import (
    FakeProviders,
    clerk_item,
    clerk_subscription,
    dodo_credit_balance,
    dodo_credit_entitlement,
    dodo_credit_ledger_entry,
    dodo_dispute,
    dodo_payment,
    dodo_refund,
    dodo_subscription,
)
from paygate_dev.memory_store import InMemoryStateStore
from tests.conftest import body_of, sample_json
from tests.service.conftest import ServiceSender

USER_ID = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"
USER = f"user:{USER_ID}"
ITEM = "csub_item_3KBw9TnR5mZ1vQx7Lc4YpH2dGs8"
ITEM_SK = f"item#clerk:{ITEM}"
T0 = 1793700000000  # when the sample item changed
READ = T0 + 3_600_000  # when the reconcile run reads the provider
SUBS = "ClerkSubscriptionsFunction"
DODO_SUBS = "DodoSubscriptionsFunction"
DODO_CREDITS = "DodoCreditsFunction"
DODO_SUB = "sub_0NjR5tW8xKq2Lm9Vb4Hd7"


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    providers = FakeProviders().start()
    yield providers
    providers.stop()
    assert providers.drift == [], "a canned response no longer matches the SDK's model"


@pytest.fixture
def memory() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def applier(memory) -> ApplyService:
    return ApplyService(memory, sleep=lambda _: None)


@pytest.fixture
def sender(applier) -> ServiceSender:
    return ServiceSender(applier)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(READ)


@pytest.fixture
def reconciler(applier, clock) -> ReconcileService:
    return ReconcileService(applier, clock=clock)


def clerk(fake: FakeProviders, clock: Clock, page_size: int = 100) -> ClerkFetcher:
    retries = retry_config(max_elapsed_ms=3_000, initial_interval_ms=10)
    return ClerkFetcher(fake.clerk_key, fake.clerk_url, clock=clock, retries=retries, page_size=page_size)


def dodo(fake: FakeProviders, clock: Clock, page_size: int = 100) -> DodoFetcher:
    return DodoFetcher(fake.dodo_key, fake.dodo_url, load_catalog(), clock=clock, page_size=page_size)


def item_webhook(status: str, at: int, **data) -> bytes:
    """``subscriptionItem.*`` for the sample item, its change and the event both at ``at``."""
    event = copy.deepcopy(sample_json("clerk/subscriptionItem.active.json"))
    event["data"].update(status=status, updated_at=at, is_free_trial=False, **data)
    event.update(timestamp=at, type=f"subscriptionItem.{'pastDue' if status == 'past_due' else status}")
    return body_of(event)


def stored(memory: InMemoryStateStore, sk: str = ITEM_SK, payer: str = USER) -> dict | None:
    return next((i for i in memory.query(payer_pk(payer)) if i["sk"] == sk), None)


def provider_item(fake: FakeProviders, status: str, updated_at: int, **fields) -> dict:
    return fake.add_clerk_item(clerk_item(ITEM, user_id=USER_ID, status=status, updated_at=updated_at, **fields))


# -- repair, and the version guard both ways ----------------------------------------------------------


def test_a_missed_webhook_is_repaired_and_a_second_run_changes_nothing(fake, clock, reconciler, sender, memory):
    assert sender.post(SUBS, item_webhook("incomplete", T0), msg_id="msg_1").body["outcome"] == "applied"
    # subscriptionItem.active (T0 + 1 s) was never delivered; the provider has the item active.
    provider_item(fake, "active", T0 + 1_000)

    report = reconciler.run([clerk(fake, clock)])

    assert report.ok
    assert report.totals() | {} == {
        "read": 1,
        "unchanged": 0,
        "created": 0,
        "repaired": 1,
        "missing": 0,
        "unreadable": 0,
        "conflicts": 0,
    }
    item = stored(memory)
    assert (item["status"], item["plan_slug"], item["provider"]) == ("active", "pro", "clerk")
    assert item["subscription_id"] == "csub_3K7fQmA1cZ8rTn5vLx2WpE9bGs4"  # the API names none: the webhook's stays
    repair = reconciler.applier.event("reconcile.clerk", item["event_id"])
    assert repair["event_type"] == "snapshot.subscription_item" and repair["outcome"] == "applied"
    assert json.loads(repair["body"])["id"] == ITEM

    clock.now += 60_000
    again = reconciler.run([clerk(fake, clock)])
    assert (again.totals()["unchanged"], again.totals()["repaired"]) == (1, 0)
    assert stored(memory)["version"] == item["version"]


def test_a_newer_webhook_is_left_alone(fake, clock, reconciler, sender, memory):
    # The run read the item at READ (active); a cancellation made after that was delivered first.
    provider_item(fake, "active", T0)
    assert sender.post(SUBS, item_webhook("canceled", READ + 60_000, canceled_at=READ + 60_000)).status == 200
    before = stored(memory)

    report = reconciler.run([clerk(fake, clock)])

    assert report.totals()["unchanged"] == 1
    assert stored(memory) == before


@pytest.mark.parametrize("snapshot_first", [True, False])
def test_a_later_webhook_wins_over_an_older_snapshot_in_either_order(
    fake, clock, reconciler, sender, memory, snapshot_first
):
    provider_item(fake, "active", T0)
    later = item_webhook("canceled", READ + 60_000, canceled_at=READ + 60_000)
    if snapshot_first:
        reconciler.run([clerk(fake, clock)])
        assert stored(memory)["status"] == "active"
        assert sender.post(SUBS, later).body["outcome"] == "applied"
    else:
        sender.post(SUBS, later)
        reconciler.run([clerk(fake, clock)])
    assert stored(memory)["status"] == "canceled"


@pytest.mark.parametrize("snapshot_first", [True, False])
def test_a_snapshot_wins_over_an_earlier_webhook_in_either_order(
    fake, clock, reconciler, sender, memory, snapshot_first
):
    provider_item(fake, "active", T0 + 1_000)
    earlier = item_webhook("incomplete", T0)  # e.g. a retry of an old delivery, arriving late
    if snapshot_first:
        assert reconciler.run([clerk(fake, clock)]).totals()["created"] == 1
        assert sender.post(SUBS, earlier).body["outcome"] == "stale"
    else:
        sender.post(SUBS, earlier)
        assert reconciler.run([clerk(fake, clock)]).totals()["repaired"] == 1
    assert stored(memory)["status"] == "active"


def test_a_payer_who_subscribed_before_paygate_is_created(fake, clock, reconciler, memory):
    provider_item(fake, "active", T0)
    assert reconciler.run([clerk(fake, clock)]).totals()["created"] == 1
    assert stored(memory)["status"] == "active"


# -- pages, rate limits and outages ---------------------------------------------------------------------


def test_clerk_items_over_several_pages_are_all_read(fake, clock, reconciler, memory):
    for n in range(25):
        fake.add_clerk_item(clerk_item(f"csubi_{n:02d}", user_id=f"user_{n:02d}"))
    report = reconciler.run([clerk(fake, clock, page_size=10)])
    assert report.totals()["created"] == 25
    offsets = [q["offset"] for _, path, q in fake.requests if path.endswith("/subscription_items")]
    assert offsets == ["0", "10", "20"]
    assert all(stored(memory, f"item#clerk:csubi_{n:02d}", f"user:user_{n:02d}") for n in range(25))


def test_dodo_subscriptions_over_several_pages_are_all_read_page_one_included(fake, clock, reconciler, memory):
    for n in range(25):
        fake.add_dodo(
            "subscriptions", dodo_subscription(f"sub_{n:02d}", customer_id=f"cus_{n:02d}", user_id=f"user_{n:02d}")
        )
    report = reconciler.run([dodo(fake, clock, page_size=10)])
    assert report.totals()["created"] == 25
    pages = [q["page_number"] for _, path, q in fake.requests if path == "/dodo/subscriptions"]
    assert pages == ["0", "1", "2", "3"]  # the SDK's own iteration would go 0, 2, 3 and lose page 1
    assert all(stored(memory, f"item#dodo:sub_{n:02d}", f"user:user_{n:02d}") for n in range(25))


def test_rate_limits_and_server_errors_are_retried(fake, clock, reconciler):
    for n in range(3):
        fake.add_clerk_item(clerk_item(f"csubi_{n}", user_id=f"user_{n}"))
        fake.add_dodo("subscriptions", dodo_subscription(f"sub_{n}", customer_id=f"cus_{n}", user_id=f"user_{n}"))
    fake.fail("/clerk/v1/billing/subscription_items", 429, times=2, retry_after="0.01")
    fake.fail("/clerk/v1/billing/subscription_items", 503, retry_after="0.01")
    fake.fail("/dodo/subscriptions", 429, retry_after="0.01")
    fake.fail("/dodo/subscriptions", 500, retry_after="0.01")

    report = reconciler.run([clerk(fake, clock, page_size=2), dodo(fake, clock, page_size=2)])

    assert report.ok
    assert report.providers["clerk"].created == 3 and report.providers["dodo"].created == 3
    clerk_requests = [p for _, p, _ in fake.requests if p.endswith("/subscription_items")]
    assert len(clerk_requests) == 2 + 3  # two pages, three answered with a fault first
    assert len([p for _, p, _ in fake.requests if p == "/dodo/subscriptions"]) == 3 + 2


def test_a_provider_that_stays_down_fails_its_part_only_and_reports_nothing_missing(
    fake, clock, reconciler, sender, memory
):
    sender.post(SUBS, item_webhook("active", T0))  # stored, and not listed: yet the listing never completed
    fake.add_dodo("subscriptions", dodo_subscription("sub_1", customer_id="cus_1", user_id="user_1"))
    fake.fail("/clerk/v1/billing/subscription_items", 503, times=1_000, retry_after="0.05")
    fast = ClerkFetcher(fake.clerk_key, fake.clerk_url, clock=clock, retries=retry_config(300, 10))

    report = reconciler.run([fast, dodo(fake, clock)])

    assert not report.ok
    assert "503" in report.providers["clerk"].error
    assert report.providers["clerk"].missing == 0 and report.findings == []
    assert report.providers["dodo"].created == 1
    run = memory.query("RECONCILE#all")[0]
    assert run["status"] == "failed" and run["created"] == 1


def test_our_own_store_failing_stops_the_run_and_is_not_blamed_on_the_provider(fake, clock, reconciler, memory):
    provider_item(fake, "active", T0 + 1_000)
    memory.fail_next("get")  # the first read of what is stored, while comparing clerk's item
    with pytest.raises(StoreUnavailable, match="injected get fault"):
        reconciler.run([clerk(fake, clock)])
    (run,) = memory.query("RECONCILE#all")
    assert run["status"] == "failed" and "injected get fault" in run["error"]  # not left "running"


# -- what the provider no longer has ---------------------------------------------------------------------


def test_records_the_provider_no_longer_has_are_reported_not_deleted(fake, clock, reconciler, sender, memory):
    sender.post(SUBS, item_webhook("active", T0))
    ended = item_webhook("ended", T0, id="csubi_old_ended")
    sender.post(SUBS, ended)
    fake.add_clerk_item(clerk_item("csubi_other", user_id="user_other"))

    report = reconciler.run([clerk(fake, clock)])

    assert report.totals()["missing"] == 1
    (finding,) = report.findings
    assert finding == {
        "provider": "clerk",
        "verdict": "missing",
        "payer": USER,
        "record_id": f"clerk:{ITEM}",
        "status": "active",
        "version": stored(memory)["version"],
    }
    assert stored(memory)["status"] == "active"  # kept as it was
    run = memory.query("RECONCILE#all")[0]
    assert (run["missing"], run["findings"]) == (1, [finding])


def test_an_object_paygate_cannot_read_is_reported(fake, clock, reconciler):
    item = clerk_item("csubi_nopayer", user_id="user_x")
    item.pop("payer")
    fake.add_clerk_item(item)
    report = reconciler.run([clerk(fake, clock)])
    assert report.totals()["unreadable"] == 1
    assert report.findings[0]["object_id"] == "csubi_nopayer"
    assert "payer" in report.findings[0]["error"]


# -- one payer ---------------------------------------------------------------------------------------------


def test_a_payer_scope_reads_only_that_payers_subscription(fake, clock, reconciler, memory):
    mine = provider_item(fake, "active", T0)
    fake.set_clerk_subscription(USER, clerk_subscription("csub_mine", [mine]))
    fake.add_clerk_item(clerk_item("csubi_other", user_id="user_other"))

    report = reconciler.run([clerk(fake, clock)], Scope(Payer(PayerKind.USER, USER_ID)))

    assert report.totals()["created"] == 1
    paths = {p for _, p, _ in fake.requests}
    assert paths == {f"/clerk/v1/users/{USER_ID}/billing/subscription"}
    assert stored(memory)["subscription_id"] == "csub_mine"
    assert stored(memory, "subscription#clerk:csub_mine")["item_ids"] == [ITEM]
    assert memory.query(f"RECONCILE#{USER}")[0]["scope"] == USER
    # A payer Clerk has no subscription for (404) has nothing to repair.
    nobody = reconciler.run([clerk(fake, clock)], Scope(Payer(PayerKind.USER, "user_nobody")))
    assert nobody.ok and nobody.totals()["read"] == 0


def test_a_payer_refresh_claim_is_granted_once_per_interval(clock, reconciler):
    payer = Payer(PayerKind.USER, USER_ID)
    assert reconciler.claim_refresh(payer, 60) is None
    assert reconciler.claim_refresh(payer, 60) == 61
    clock.now += 30_000
    assert reconciler.claim_refresh(payer, 60) == 31
    clock.now += 31_000
    assert reconciler.claim_refresh(payer, 60) is None


# -- Dodo Payments ---------------------------------------------------------------------------------------


def iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def test_a_missed_dodo_hold_is_repaired_and_what_the_list_lacks_stays(fake, reconciler, sender, memory):
    active = sample_json("dodo/subscription.active.json")
    sender.post(DODO_SUBS, body_of(active), style="standard")
    # The renewal of 2026-12-01 failed; subscription.on_hold was never delivered.
    held = dodo_subscription(DODO_SUB, status="on_hold", next_billing_date="2026-12-01T09:14:27.318402Z")
    fake.add_dodo("subscriptions", held)
    clock = Clock(iso_ms("2026-12-02T00:00:00+00:00"))
    reconciler._clock = clock

    report = reconciler.run([dodo(fake, clock)])

    assert report.providers["dodo"].repaired == 1
    item = stored(memory, f"item#dodo:{DODO_SUB}")
    assert item["status"] == "on_hold"
    assert item["past_due_at"] == iso_ms("2026-12-01T09:14:27.318402+00:00")  # due then, as the webhook reads it
    subscription = stored(memory, f"subscription#dodo:{DODO_SUB}")
    # Not in SubscriptionListResponse: the webhook's value stays.
    assert subscription["term_ends_at"] == iso_ms(active["data"]["expires_at"])


def test_dodo_payments_refunds_and_disputes_are_read_whole_and_filed_under_the_payer(fake, clock, reconciler, memory):
    fake.add_dodo("subscriptions", dodo_subscription(DODO_SUB))
    fake.add_dodo("payments", dodo_payment("pay_1", DODO_SUB, user_id=USER_ID))
    fake.add_dodo("refunds", dodo_refund("ref_1", "pay_1"))
    fake.add_dodo("disputes", dodo_dispute("dsp_1", "pay_1", dispute_status="dispute_lost"))

    report = reconciler.run([dodo(fake, clock)])

    assert report.ok and report.providers["dodo"].created == 4
    assert ("GET", "/dodo/payments/pay_1", {}) in fake.requests
    assert ("GET", "/dodo/refunds/ref_1", {}) in fake.requests
    refund = stored(memory, "refund#dodo:ref_1")
    assert refund["subscription_id"] == DODO_SUB  # learned through the payment's link
    assert stored(memory, "dispute#dodo:dsp_1")["status"] == "dispute_lost"


def test_the_clerk_sdk_is_given_the_v1_path():
    assert api_url("https://api.clerk.com") == "https://api.clerk.com/v1"
    assert api_url("http://127.0.0.1:9/clerk/") == "http://127.0.0.1:9/clerk/v1"
    assert api_url("https://api.clerk.com/v1") == "https://api.clerk.com/v1"


def test_an_object_naming_another_payer_for_a_linked_customer_is_left_for_an_operator(
    fake, clock, reconciler, sender, memory
):
    sender.post(
        DODO_SUBS, body_of(sample_json("dodo/subscription.active.json")), style="standard"
    )  # links the customer
    fake.add_dodo("subscriptions", dodo_subscription("sub_other", user_id="user_someone_else"))

    report = reconciler.run([dodo(fake, clock)])

    assert report.providers["dodo"].conflicts == 1
    (finding,) = [f for f in report.findings if f["verdict"] == "conflict"]
    assert finding["object_id"] == "sub_other" and "cus_8fK2mQ9xLp3RtV7wZ1nB" in finding["error"]
    assert stored(memory, "item#dodo:sub_other", "user:user_someone_else") is None


# -- Dodo credit balances ---------------------------------------------------------------------------------

CDE = "cde_0NhU2kP7Wm4Xr9Tq3Zv6L"
BALANCE_SK = f"credit_balance#dodo:{CDE}"
ADDED = "2026-11-01T09:14:41.927304Z"  # credit.added: balance 1000
DEDUCTED = "2026-11-06T16:09:33.348211Z"  # credit.deducted: balance 975


def credit_webhook(sender: ServiceSender, name: str) -> str:
    """Delivers a credit.* sample; its outcome."""
    return sender.post(DODO_CREDITS, body_of(sample_json(f"dodo/{name}.json")), style="standard").body["outcome"]


def linked_with_credits(fake: FakeProviders, sender: ServiceSender, balance: str, changed: str) -> None:
    """The sample customer linked to the sample user, and the provider's balance of AI Credits."""
    sender.post(DODO_SUBS, body_of(sample_json("dodo/subscription.active.json")), style="standard")
    fake.add_credit_entitlement(dodo_credit_entitlement(CDE))
    fake.set_credit_balance(dodo_credit_balance(CDE, balance=balance, last_transaction_at=changed))


def balance_of(memory: InMemoryStateStore) -> dict:
    found = stored(memory, BALANCE_SK)
    assert found is not None
    return found


def test_a_missed_credit_webhook_is_repaired_and_a_late_older_one_changes_nothing(fake, reconciler, sender, memory):
    linked_with_credits(fake, sender, "975", DEDUCTED)
    assert credit_webhook(sender, "credit.added") == "applied"  # credit.deducted was never delivered
    clock = Clock(iso_ms("2026-11-07T00:00:00+00:00"))
    reconciler._clock = clock

    report = reconciler.run([dodo(fake, clock)])

    assert report.ok and report.providers["dodo"].repaired == 1
    balance = balance_of(memory)
    assert (balance["balance"], balance["overage"], balance["balance_source"]) == ("975", "0", "snapshot")
    assert balance["balance_at"] == iso_ms(DEDUCTED.replace("Z", "+00:00"))  # when it changed, not when read
    assert balance["credit_entitlement_name"] == "AI Credits"
    repair = reconciler.applier.event("reconcile.dodo", balance["event_id"])
    assert repair["event_type"] == "snapshot.credit_balance"

    clock.now += 60_000
    assert reconciler.run([dodo(fake, clock)]).providers["dodo"].unchanged == 1
    assert balance_of(memory)["version"] == balance["version"]
    # The missed entry's own delivery, days late: the snapshot already holds its balance and is newer.
    assert credit_webhook(sender, "credit.deducted") == "applied"  # its ledger line is new
    assert balance_of(memory)["balance_version"] == balance["balance_version"]


def test_a_newer_credit_webhook_balance_is_left_alone(fake, reconciler, sender, memory):
    # The run reads 1000 on 5 November; the deduction of 6 November was delivered first.
    linked_with_credits(fake, sender, "1000", ADDED)
    credit_webhook(sender, "credit.added")
    credit_webhook(sender, "credit.deducted")
    before = balance_of(memory)
    clock = Clock(iso_ms("2026-11-05T00:00:00+00:00"))
    reconciler._clock = clock

    report = reconciler.run([dodo(fake, clock)])

    assert report.providers["dodo"].unchanged == 1 and report.providers["dodo"].repaired == 0
    assert balance_of(memory) == before and before["balance"] == "975"


@pytest.mark.parametrize("snapshot_first", [True, False])
def test_a_later_credit_webhook_wins_over_an_older_balance_snapshot_in_either_order(
    fake, reconciler, sender, memory, snapshot_first
):
    linked_with_credits(fake, sender, "1000", ADDED)
    clock = Clock(iso_ms("2026-11-05T00:00:00+00:00"))
    reconciler._clock = clock
    if snapshot_first:
        assert reconciler.run([dodo(fake, clock)]).providers["dodo"].created == 1
        assert balance_of(memory)["balance"] == "1000"
        credit_webhook(sender, "credit.deducted")
    else:
        credit_webhook(sender, "credit.deducted")
        assert reconciler.run([dodo(fake, clock)]).providers["dodo"].unchanged == 1
    assert balance_of(memory)["balance"] == "975"
    assert balance_of(memory)["balance_source"] == sample_json("dodo/credit.deducted.json")["data"]["id"]


def test_credit_entitlements_and_balances_over_several_pages_are_all_read(fake, clock, reconciler, memory):
    for n in range(3):
        fake.add_credit_entitlement(dodo_credit_entitlement(f"cde_{n}", name=f"Credits {n}"))
    for n in range(5):
        fake.set_credit_balance(dodo_credit_balance("cde_0", f"cus_{n}", balance=str(100 * n)))

    report = reconciler.run([dodo(fake, clock, page_size=2)])

    assert report.ok and report.providers["dodo"].created == 5
    entitlement_pages = [q["page_number"] for _, path, q in fake.requests if path == "/dodo/credit-entitlements"]
    assert entitlement_pages == ["0", "1", "2"]
    balance_pages = [q["page_number"] for _, p, q in fake.requests if p == "/dodo/credit-entitlements/cde_0/balances"]
    assert balance_pages == ["0", "1", "2", "3"]
    for n in range(5):  # no checkout has named a payer: kept under the customer until one does
        kept = stored(memory, "credit_balance#dodo:cde_0", f"customer:cus_{n}")
        assert kept is not None and kept["balance"] == str(100 * n)


def test_a_payer_refresh_reads_only_its_customers_balances(fake, reconciler, sender, memory, clock):
    linked_with_credits(fake, sender, "1000", ADDED)
    fake.set_credit_balance(dodo_credit_balance(CDE, "cus_someone_else", balance="5"))
    payer = Payer(PayerKind.USER, USER_ID)

    report = reconciler.run([dodo(fake, clock)], Scope(payer, reconciler.linked_customers(payer)))

    assert report.providers["dodo"].created == 1 and balance_of(memory)["balance"] == "1000"
    queries = [q for _, p, q in fake.requests if p == f"/dodo/credit-entitlements/{CDE}/balances"]
    assert [q.get("customer_id") for q in queries] == ["cus_8fK2mQ9xLp3RtV7wZ1nB"] * 2  # a page, then an empty one


def history(memory: InMemoryStateStore, sk: str) -> dict | None:
    return next((i for i in memory.query(history_pk(USER)) if i["sk"] == sk), None)


def test_missed_ledger_entries_are_created_and_delivered_ones_left_as_they_are(fake, reconciler, sender, memory):
    linked_with_credits(fake, sender, "975", DEDUCTED)
    credit_webhook(sender, "credit.added")
    added, deducted = dodo_credit_ledger_entry("credit.added"), dodo_credit_ledger_entry("credit.deducted")
    fake.add_credit_ledger_entry(added)
    fake.add_credit_ledger_entry(deducted)
    clock = Clock(iso_ms("2026-11-07T00:00:00+00:00"))
    reconciler._clock = clock

    report = reconciler.run([dodo(fake, clock)])

    counts = report.providers["dodo"]
    assert (counts.read, counts.repaired, counts.created, counts.unchanged) == (3, 1, 1, 1)
    line = history(memory, f"credit_ledger#dodo:{deducted['id']}")
    assert line is not None
    assert (line["transaction_type"], line["amount"], line["balance_after"]) == ("credit_deducted", "25", "975")
    assert history(memory, f"credit_ledger#dodo:{added['id']}")["event_type"] == "credit.added"  # the webhook's
    assert balance_of(memory)["balance_source"] == "snapshot"  # the balance read is newer than either entry


def test_ledger_entries_are_read_page_by_page_within_the_history_window(fake, clock, reconciler, memory):
    fake.add_credit_entitlement(dodo_credit_entitlement(CDE))
    fake.set_credit_balance(dodo_credit_balance(CDE, "cus_1", balance="10"))
    for n in range(3):
        fake.add_credit_ledger_entry(
            dodo_credit_ledger_entry(
                "credit.added", id=f"cdl_{n}", customer_id="cus_1", created_at=f"2026-11-0{n + 2}T00:00:00Z"
            )
        )
    fake.add_credit_ledger_entry(
        dodo_credit_ledger_entry("credit.added", id="cdl_old", customer_id="cus_1", created_at="2026-10-01T00:00:00Z")
    )
    since = iso_ms("2026-11-01T00:00:00+00:00")
    fetcher = DodoFetcher(
        fake.dodo_key, fake.dodo_url, load_catalog(), clock=clock, page_size=2, history_since_ms=since
    )

    report = reconciler.run([fetcher])

    assert report.ok and report.providers["dodo"].created == 1 + 3
    ledger = [q for _, p, q in fake.requests if p.endswith("/balances/cus_1/ledger")]
    assert [q["page_number"] for q in ledger] == ["0", "1", "2"]
    assert all(q["start_date"].startswith("2026-11-01T00:00:00") for q in ledger)  # cdl_old is not read
    assert {i["sk"] for i in memory.query(history_pk("customer:cus_1"))} == {
        f"credit_ledger#dodo:cdl_{n}" for n in range(3)
    }
