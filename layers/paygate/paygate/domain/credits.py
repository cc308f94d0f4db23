"""Credit balances: the provider's own figures, newest first, never a sum of deltas.

Credit events arrive out of order and more than once, so adding up their amounts would drift. Each
ledger entry states the balance after it (``balance_after``) and a low-balance alert states the
balance when it fired: the stored balance is simply the newest such figure. Credits are not money:
quantities stay the provider's exact decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

#: ``balance_source`` of a balance taken from a low-balance alert rather than a ledger entry.
ALERT_SOURCE = "balance_low"


def is_decimal(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


@dataclass(frozen=True, slots=True)
class BalanceFigure:
    """A balance as the provider stated it at ``at_ms`` (from a ledger entry)."""

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
    current: Mapping[str, Any] | None,
    *,
    credit_entitlement_id: str,
    customer_id: str,
    figure: BalanceFigure | None = None,
    alert: LowBalanceAlert | None = None,
    credit_entitlement_name: str | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The balance record after ``figure`` or ``alert``; ``None`` if the stored one is as new or newer.

    The ledger's figures and the alerts' facts are versioned separately (``balance_version``,
    ``alert_version``), so a late alert never hides a newer ledger balance and vice versa.
    """
    cur = dict(current or {})
    fields: dict[str, Any] = {
        "credit_entitlement_id": credit_entitlement_id,
        "credit_entitlement_name": cur.get("credit_entitlement_name"),
        "customer_id": cur.get("customer_id") or customer_id,
        "balance": cur.get("balance"),
        "overage": cur.get("overage"),
        "balance_at": cur.get("balance_at"),
        "balance_version": cur.get("balance_version"),
        "balance_source": cur.get("balance_source"),
        "low_balance_threshold": cur.get("low_balance_threshold"),
        "low_balance_threshold_percent": cur.get("low_balance_threshold_percent"),
        "low_balance_alert_at": cur.get("low_balance_alert_at"),
        "low_balance_alert_balance": cur.get("low_balance_alert_balance"),
        "subscription_credits_amount": cur.get("subscription_credits_amount"),
        "subscription_id": cur.get("subscription_id"),
        "alert_version": cur.get("alert_version"),
    }
    changed = False
    if figure is not None and _newer(figure.version, fields["balance_version"]):
        fields.update(
            balance=figure.balance,
            overage=figure.overage if figure.overage is not None else fields["overage"],
            balance_at=figure.at_ms,
            balance_version=figure.version,
            balance_source=figure.entry_id,
        )
        changed = True
    if alert is not None and _newer(alert.version, fields["alert_version"]):
        fields.update(
            low_balance_threshold=alert.threshold_amount,
            low_balance_threshold_percent=alert.threshold_percent,
            low_balance_alert_at=alert.at_ms,
            low_balance_alert_balance=alert.available_balance,
            subscription_credits_amount=alert.subscription_credits_amount,
            subscription_id=alert.subscription_id,
            alert_version=alert.version,
        )
        if credit_entitlement_name:
            fields["credit_entitlement_name"] = credit_entitlement_name
        changed = True
        # The alert's available balance is a provider figure too: the newest figure wins.
        if _newer(alert.version, fields["balance_version"]):
            fields.update(
                balance=alert.available_balance,
                balance_at=alert.at_ms,
                balance_version=alert.version,
                balance_source=ALERT_SOURCE,
            )
    if not changed:
        return None
    fields["low_balance"] = is_low(fields)
    fields["changed_at"] = max(t for t in (fields["balance_at"], fields["low_balance_alert_at"]) if t is not None)
    version = max(v for v in (fields["balance_version"], fields["alert_version"]) if v is not None)
    return version, fields


def is_low(fields: Mapping[str, Any]) -> bool:
    """Low while the newest figure is the alert itself, or is under the alert's threshold."""
    threshold = fields.get("low_balance_threshold")
    balance = fields.get("balance")
    if threshold is None or balance is None:
        return False
    if fields.get("balance_source") == ALERT_SOURCE:
        return True
    return Decimal(balance) < Decimal(threshold)


def _newer(version: str, stored: str | None) -> bool:
    return stored is None or version > stored
