"""Credit balances: the provider's own figures, newest first, never a sum of deltas.

Credit events arrive out of order and more than once, so adding up their amounts would drift. Each
ledger entry states the balance after it (``balance_after``) and a low-balance alert states the
balance when it fired: the stored balance is simply the newest such figure. Credits are not money:
quantities stay the provider's exact decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from paygate.domain.records import CreditBalance

#: ``balance_source`` of a balance taken from a low-balance alert rather than a ledger entry.
ALERT_SOURCE = "balance_low"
#: ``balance_source`` of a balance read from the provider's API (reconcile) rather than delivered.
SNAPSHOT_SOURCE = "snapshot"


def is_decimal(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


@dataclass(frozen=True, slots=True)
class BalanceFigure:
    """A balance as the provider stated it at ``at_ms`` (from a ledger entry, or read from its API)."""

    balance: str
    overage: str | None
    at_ms: int
    version: str
    entry_id: str


@dataclass(frozen=True, slots=True)
class LowBalanceAlert:
    """The provider's alert that a balance fell below the entitlement's threshold."""

    available_balance: str
    threshold_amount: str
    threshold_percent: int
    subscription_credits_amount: str
    subscription_id: str
    at_ms: int
    version: str


def merge_balance(
    current: CreditBalance | None,
    *,
    credit_entitlement_id: str,
    customer_id: str,
    figure: BalanceFigure | None = None,
    alert: LowBalanceAlert | None = None,
    credit_entitlement_name: str | None = None,
) -> CreditBalance | None:
    """The balance after ``figure`` or ``alert``; ``None`` if the stored one is as new or newer.

    The ledger's figures and the alerts' facts are versioned separately (``balance_version``,
    ``alert_version``), so a late alert never hides a newer ledger balance and vice versa.
    """
    balance = current or CreditBalance(credit_entitlement_id)
    balance = replace(
        balance, credit_entitlement_id=credit_entitlement_id, customer_id=balance.customer_id or customer_id
    )
    changed = False
    if figure is not None and _newer(figure.version, balance.balance_version):
        balance = replace(
            balance,
            balance=figure.balance,
            overage=figure.overage if figure.overage is not None else balance.overage,
            balance_at=figure.at_ms,
            balance_version=figure.version,
            balance_source=figure.entry_id,
        )
        changed = True
    if alert is not None and _newer(alert.version, balance.alert_version):
        balance = replace(
            balance,
            low_balance_threshold=alert.threshold_amount,
            low_balance_threshold_percent=alert.threshold_percent,
            low_balance_alert_at=alert.at_ms,
            low_balance_alert_balance=alert.available_balance,
            subscription_credits_amount=alert.subscription_credits_amount,
            subscription_id=alert.subscription_id,
            alert_version=alert.version,
        )
        changed = True
        # The alert's available balance is a provider figure too: the newest figure wins.
        if _newer(alert.version, balance.balance_version):
            balance = replace(
                balance,
                balance=alert.available_balance,
                balance_at=alert.at_ms,
                balance_version=alert.version,
                balance_source=ALERT_SOURCE,
            )
    if not changed:
        return None
    if credit_entitlement_name:
        balance = replace(balance, credit_entitlement_name=credit_entitlement_name)
    times = [t for t in (balance.balance_at, balance.low_balance_alert_at) if t is not None]
    return replace(balance, low_balance=is_low(balance), changed_at=max(times))


def is_low(balance: CreditBalance) -> bool:
    """Low while the newest figure is the alert itself, or is under the alert's threshold."""
    if balance.low_balance_threshold is None or balance.balance is None:
        return False
    if balance.balance_source == ALERT_SOURCE:
        return True
    return Decimal(balance.balance) < Decimal(balance.low_balance_threshold)


def _newer(version: str, stored: str | None) -> bool:
    return stored is None or version > stored
