"""Credit balances from the provider's own figures, whatever order they arrive in (pure)."""

from __future__ import annotations

import itertools
from dataclasses import asdict

import pytest

from paygate.domain.credits import ALERT_SOURCE, BalanceFigure, LowBalanceAlert, is_low, merge_balance
from paygate.domain.records import CreditBalance
from paygate.domain.state import version_key


def figure(at_ms: int, balance: str, overage: str = "0") -> BalanceFigure:
    return BalanceFigure(balance, overage, at_ms, version_key(at_ms, at_ms, f"msg_{at_ms}"), f"cdl_{at_ms}")


def alert(at_ms: int, available: str = "180", threshold: str = "200") -> LowBalanceAlert:
    return LowBalanceAlert(available, threshold, 20, "1000", "sub_1", at_ms, version_key(at_ms, at_ms, f"msg_{at_ms}"))


def apply_all(updates) -> dict | None:
    stored: CreditBalance | None = None
    for update in updates:
        kwargs = {"figure": update} if isinstance(update, BalanceFigure) else {"alert": update}
        merged = merge_balance(stored, credit_entitlement_id="cde_1", customer_id="cus_1", **kwargs)
        if merged is not None:
            stored = merged
    return None if stored is None else {**asdict(stored), "version": stored.version}


HISTORY = [figure(1_000, "1000"), figure(2_000, "975"), alert(3_000), figure(4_000, "1150"), figure(5_000, "0", "40")]


def test_the_newest_figure_wins_in_every_arrival_order():
    expected = apply_all(HISTORY)
    assert (expected["balance"], expected["overage"], expected["low_balance"]) == ("0", "40", True)
    for order in itertools.permutations(HISTORY):
        assert apply_all(order) == expected


def test_an_older_figure_is_stale():
    stored = CreditBalance.from_fields(apply_all([figure(2_000, "975")]))
    assert (
        merge_balance(stored, credit_entitlement_id="cde_1", customer_id="cus_1", figure=figure(1_000, "1000")) is None
    )


def test_a_redelivered_alert_is_stale():
    stored = CreditBalance.from_fields(apply_all([alert(3_000)]))
    assert merge_balance(stored, credit_entitlement_id="cde_1", customer_id="cus_1", alert=alert(3_000)) is None


def test_a_late_alert_keeps_the_newer_ledger_balance_but_records_its_facts():
    stored = apply_all([figure(4_000, "1150"), alert(3_000)])
    assert stored["balance"] == "1150" and stored["low_balance"] is False
    assert stored["low_balance_alert_at"] == 3_000 and stored["low_balance_threshold"] == "200"
    assert stored["version"] == stored["balance_version"]


def test_an_alert_newer_than_every_ledger_entry_is_the_balance():
    stored = apply_all([figure(2_000, "975"), alert(3_000)])
    assert (stored["balance"], stored["balance_source"], stored["low_balance"]) == ("180", ALERT_SOURCE, True)
    assert stored["changed_at"] == 3_000


@pytest.mark.parametrize(
    ("balance", "source", "low"),
    [("199.5", "cdl_1", True), ("200", "cdl_1", False), ("200", ALERT_SOURCE, True), ("1e3", "cdl_1", False)],
)
def test_low_means_below_the_threshold_or_the_alert_is_the_newest_figure(balance, source, low):
    assert is_low(CreditBalance("cde_1", balance=balance, balance_source=source, low_balance_threshold="200")) is low


def test_without_an_alert_nothing_is_low():
    assert apply_all([figure(1_000, "0")])["low_balance"] is False


def test_quantities_stay_exact_decimal_strings():
    stored = apply_all([figure(1_000, "0.1000000000000000055511151231257827")])
    assert stored["balance"] == "0.1000000000000000055511151231257827"
