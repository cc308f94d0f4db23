"""Dodo Payments read from its API with Dodo's own SDK (``dodopayments``).

Only the reconcile function imports this module; its ``requirements.txt`` installs the SDK, which the
shared layer does not ship. Each object becomes the same records its webhook makes (the
``snapshot_*`` functions of :mod:`paygate.providers.dodo`).

SDK notes (dodopayments 1.123.0): list endpoints are paged by a 0-based ``page_number``; the SDK's own
auto-pagination asks for page 2 after page 0 and so skips page 1, so pages are requested here one by
one until an empty page. The client retries 429, 408, 409 and 5xx itself (``max_retries``), honouring
``Retry-After`` up to 60 s. The list models lack fields the records keep (a payment's refunds and
settlement, a refund's customer): those objects are read whole with ``retrieve``. Credit balances are
listed per credit entitlement (``credit_entitlements.balances.list``), so the entitlements are listed
first; each balance's ledger entries per customer and entitlement (``balances.list_ledger``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from dodopayments import DodoPayments, NotFoundError

from paygate.clock import Clock, system_clock
from paygate.domain.catalog import Catalog
from paygate.domain.state import Effect
from paygate.providers.dodo import (
    PROVIDER,
    snapshot_credit_balance,
    snapshot_credit_ledger_entry,
    snapshot_dispute,
    snapshot_payment,
    snapshot_refund,
    snapshot_subscription,
)
from paygate.service.provider_api import NotFound, Scope, Snapshot, snapshot_of

#: The SDK's documented maximum ``page_size``.
PAGE_SIZE = 100
#: ``DODO_PAYMENTS_BASE_URL``'s default: the SDK's ``live_mode`` environment.
LIVE_MODE = "https://live.dodopayments.com"

Mapper = Callable[[dict[str, Any], int, str, Catalog], Effect]


class DodoFetcher:
    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        base_url: str,
        catalog: Catalog,
        *,
        clock: Clock = system_clock,
        max_retries: int = 2,
        timeout_s: float = 10.0,
        page_size: int = PAGE_SIZE,
        history_since_ms: int | None = None,
    ) -> None:
        # base_url is always given, so the SDK never reads DODO_PAYMENTS_BASE_URL itself (settings does).
        self.client = DodoPayments(bearer_token=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s)
        self.catalog = catalog
        self._clock = clock
        self.page_size = page_size
        #: Payments, refunds and disputes created before this are not read again (``None``: all of them).
        self.history_since_ms = history_since_ms

    def snapshots(self, scope: Scope, run_id: str) -> Iterator[Snapshot]:
        if scope.payer is None:
            filters: list[dict[str, Any]] = [{}]
        else:
            filters = [{"customer_id": c} for c in scope.customers.get(PROVIDER, ())]
        since = {}
        if self.history_since_ms is not None:
            since = {"created_at_gte": datetime.fromtimestamp(self.history_since_ms / 1000, UTC).isoformat()}
        for where in filters:
            for sub, read_at in self._pages(self.client.subscriptions.list, **where):
                yield self._snapshot("subscription", sub.subscription_id, sub, read_at, run_id, snapshot_subscription)
            for listed, _ in self._pages(self.client.payments.list, **where, **since):
                read_at = self._clock()
                payment = self.client.payments.retrieve(listed.payment_id)
                yield self._snapshot("payment", listed.payment_id, payment, read_at, run_id, snapshot_payment)
            for listed, _ in self._pages(self.client.refunds.list, **where, **since):
                read_at = self._clock()
                refund = self.client.refunds.retrieve(listed.refund_id)
                yield self._snapshot("refund", listed.refund_id, refund, read_at, run_id, snapshot_refund)
            for dispute, read_at in self._pages(self.client.disputes.list, **where, **since):
                yield self._snapshot("dispute", dispute.dispute_id, dispute, read_at, run_id, snapshot_dispute)
        yield from self._credit_balances(filters, run_id)

    def retrieve(self, kind: str, object_id: str, read_id: str) -> Snapshot:
        """A subscription or payment a checkout return named, read whole by id (``GET /subscriptions/{id}``,
        ``GET /payments/{id}``). Raises :class:`NotFound` when Dodo has none."""
        read, mapper = {
            "subscription": (self.client.subscriptions.retrieve, snapshot_subscription),
            "payment": (self.client.payments.retrieve, snapshot_payment),
        }[kind]
        read_at = self._clock()
        try:
            obj = read(object_id)
        except NotFoundError as exc:
            raise NotFound(f"Dodo Payments has no {kind} {object_id}") from exc
        return self._snapshot(kind, object_id, obj, read_at, read_id, mapper)

    def _credit_balances(self, filters: list[dict[str, Any]], run_id: str) -> Iterator[Snapshot]:
        """Every customer's balance of every credit entitlement (or those of the scope's customers), each
        followed by its ledger entries of the history window."""
        if not filters:
            return  # a payer with no linked customer: no entitlement needs listing
        since = {}
        if self.history_since_ms is not None:
            since = {"start_date": datetime.fromtimestamp(self.history_since_ms / 1000, UTC)}
        api = self.client.credit_entitlements
        for entitlement, _ in self._pages(api.list):
            mapper = partial(snapshot_credit_balance, credit_entitlement_name=entitlement.name)
            for where in filters:
                try:
                    for balance, read_at in self._pages(partial(api.balances.list, entitlement.id), **where):
                        object_id = f"{entitlement.id}:{balance.customer_id}"
                        yield self._snapshot("credit_balance", object_id, balance, read_at, run_id, mapper)
                        ledger = partial(
                            api.balances.list_ledger, balance.customer_id, credit_entitlement_id=entitlement.id
                        )
                        for entry, entry_read_at in self._pages(ledger, **since):
                            yield self._snapshot(
                                "credit_ledger_entry",
                                entry.id,
                                entry,
                                entry_read_at,
                                run_id,
                                snapshot_credit_ledger_entry,
                            )
                except NotFoundError:
                    continue  # the entitlement was deleted since it was listed: it has no balances to read

    def _pages(self, list_page: Callable[..., Any], **filters: Any) -> Iterator[tuple[Any, int]]:
        """Every item of a list endpoint with the moment its page was requested: pages 0, 1, 2 ...
        until an empty one (the only end the API signals)."""
        page_number = 0
        while True:
            read_at = self._clock()
            page = list_page(page_number=page_number, page_size=self.page_size, **filters)
            if not page.items:
                return
            for item in page.items:
                yield item, read_at
            page_number += 1

    def _snapshot(self, kind: str, object_id: str, obj: Any, read_at: int, run_id: str, mapper: Mapper) -> Snapshot:
        data = obj.model_dump(mode="json", exclude_unset=True)
        return snapshot_of(kind, object_id, data, lambda: mapper(data, read_at, f"{run_id}:{object_id}", self.catalog))
