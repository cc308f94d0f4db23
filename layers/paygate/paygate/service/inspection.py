"""One payer as an operator asks about it: "why does this payer have (or lack) this plan?"

Everything stored for the payer (what it holds now, and its history, paged), what those records grant
at this instant with each access window and the reason for it (the rules of
:mod:`paygate.domain.access` and :mod:`paygate.domain.entitlements`, not restated here), its credit
balances, the provider customers linked to it, and the timeline of the events that touched it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paygate.domain.access import AccessPolicy
from paygate.domain.catalog import Catalog
from paygate.domain.entitlements import PayerEntitlements, SubscriptionView, entitlements_of
from paygate.domain.links import LINKED_PAYER
from paygate.domain.state import Payer, PayerKind, RecordKind, StateRecord
from paygate.providers.base import Delivery, InvalidEvent, WebhookFamily, load_json_object
from paygate.service.apply import resolve
from paygate.service.inbox import Inbox
from paygate.service.layout import history_pk, payer_pk, payer_state, record_sk
from paygate.service.ports import Item, ScanningStore

#: How an operator names a payer: Clerk's user and organization ids, a provider's customer id, or a key.
_ID_PREFIXES = {"user_": PayerKind.USER, "org_": PayerKind.ORGANIZATION, "cus_": PayerKind.CUSTOMER}


def payer_of(reference: str) -> Payer:
    """``user_…``, ``org_…``, ``cus_…``, or a stored payer key (``user:…``, ``org:…``, ``customer:…``)."""
    kind, sep, ident = reference.partition(":")
    if sep and ident and kind in {k.value for k in PayerKind}:
        return Payer(PayerKind(kind), ident)
    for prefix, payer_kind in _ID_PREFIXES.items():
        if reference.startswith(prefix) and len(reference) > len(prefix):
            return Payer(payer_kind, reference)
    raise ValueError(f"{reference!r}: expected user_…, org_…, cus_… or a payer key such as user:user_123")


def why(view: SubscriptionView) -> str:
    """The reason an item grants (or does not grant) its plan now, in an operator's words."""
    if view.revoked_by is not None and not view.active:
        return f"ended by {view.revoked_by.replace('_', ' ')}"
    if not view.active:
        return "no access" if view.plan else "no plan: the catalog maps no plan to this product"
    if view.status in ("past_due", "on_hold"):
        return "grace period after a failed payment"
    if view.cancel_at_period_end:
        return "canceled at period end"
    return "trial" if view.status == "trialing" else "active"


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    item: Item
    #: The version the event's records carry, as the current code reads its body (``None`` if unreadable).
    version: str | None


@dataclass(frozen=True, slots=True)
class PayerReport:
    asked: str
    payer: Payer
    #: The provider customer asked about, when it led to ``payer`` through its link.
    via: Payer | None
    as_of: int
    entitlements: PayerEntitlements
    records: list[Item]
    history: list[Item]
    #: Provider customers linked to the payer, and what is still kept under them (normally only the link).
    customers: dict[str, list[Item]]
    events: list[TimelineEvent]

    @property
    def found(self) -> bool:
        return bool(self.records or self.history or self.events or any(self.customers.values()))


class PayerInspection:
    def __init__(
        self,
        store: ScanningStore,
        catalog: Catalog,
        policy: AccessPolicy,
        families: Mapping[str, WebhookFamily],
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.policy = policy
        self.families = families
        self.inbox = Inbox(store, families)

    def report(self, reference: str, now_ms: int, *, history_limit: int | None = None) -> PayerReport:
        asked = payer_of(reference)
        payer, via = self._resolve(asked), None
        if payer != asked:
            via = asked
        records = self.store.query(payer_pk(payer.key))
        history = self.store.query(history_pk(payer.key))
        if history_limit is not None:
            history = history[-history_limit:] if history_limit > 0 else []
        held = entitlements_of(payer, payer_state(records, now_ms), self.catalog, self.policy, now_ms)
        customer_ids = {
            r["customer_id"]
            for r in records
            if r.get("kind") == RecordKind.CUSTOMER_LINK.value and isinstance(r.get("customer_id"), str)
        }
        if via is not None:
            customer_ids.add(via.id)
        if payer.kind is PayerKind.CUSTOMER:
            customer_ids.add(payer.id)
        customers = {
            cid: self.store.query(payer_pk(Payer(PayerKind.CUSTOMER, cid).key))
            for cid in sorted(customer_ids)
            if cid != payer.id or payer.kind is not PayerKind.CUSTOMER
        }
        keys = {payer.key, *(Payer(PayerKind.CUSTOMER, c).key for c in customer_ids)}
        written_by = {r.get("event_id") for r in [*records, *history]}
        events = [
            TimelineEvent(item, self._version(item))
            for item in self.inbox.list(now_ms=now_ms, with_body=True)
            if item.get("payer") in keys or item.get("event_id") in written_by
        ]
        return PayerReport(reference, payer, via, now_ms, held, records, history, customers, events)

    def _resolve(self, payer: Payer) -> Payer:
        if payer.kind is not PayerKind.CUSTOMER:
            return payer
        links = self.store.query(payer_pk(payer.key), record_sk(RecordKind.CUSTOMER_LINK, ""))
        if not links or not isinstance(links[0].get(LINKED_PAYER), str):
            return payer
        return resolve(self.store, links[0]["provider"], payer).payer or payer

    def _version(self, item: Item) -> str | None:
        """The newest version among the records the event carries, read by the current code."""
        family = self.families.get(item.get("family") or "")
        if family is None or not isinstance(item.get("body"), str):
            return None
        try:
            envelope = load_json_object(item["body"].encode())
            _, effect = family.decode(envelope, Delivery(item["event_id"], 0), self.catalog)
        except InvalidEvent:
            return None
        versions = [r.version for r in (effect.records if effect else ()) if isinstance(r, StateRecord)]
        return max(versions, default=None)


def view_json(view: SubscriptionView) -> dict[str, Any]:
    return {**view.to_json(), "why": why(view)}
