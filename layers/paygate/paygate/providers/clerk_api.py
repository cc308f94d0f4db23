"""Clerk Billing read from Clerk's Backend API with Clerk's own SDK (``clerk-backend-api``).

Only the reconcile function imports this module; its ``requirements.txt`` installs the SDK, which the
shared layer does not ship. Each object becomes the same records its webhook makes
(:func:`paygate.providers.clerk.snapshot_item`, :func:`~paygate.providers.clerk.snapshot_subscription`).

SDK notes (clerk-backend-api 7.0.0): ``server_url`` must carry the ``/v1`` path (the SDK's own default
is ``https://api.clerk.com/v1``); its default retry covers 5xx only, for up to an hour, so the client
here is given a bounded :class:`RetryConfig` that also retries 429 and honours ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from clerk_backend_api import Clerk, models
from clerk_backend_api.utils import BackoffStrategy, RetryConfig

from paygate.clock import Clock, system_clock
from paygate.domain.state import Effect, Payer, PayerKind
from paygate.providers.clerk import PROVIDER, snapshot_item, snapshot_subscription
from paygate.service.provider_api import Scope, Snapshot, snapshot_of

#: The most items ``GET /billing/subscription_items`` is asked for per page.
PAGE_SIZE = 100


def retry_config(max_elapsed_ms: int = 60_000, initial_interval_ms: int = 500) -> RetryConfig:
    """429 and 5xx retried with backoff (``Retry-After`` when sent), for at most ``max_elapsed_ms``."""
    backoff = BackoffStrategy(initial_interval_ms, 10_000, 2.0, max_elapsed_ms, jitter_ms=initial_interval_ms)
    return RetryConfig("backoff", backoff, True, status_codes_override=["429", "5XX"])


def api_url(base: str) -> str:
    """The SDK's ``server_url``: the API's origin with the ``/v1`` the Backend API's paths sit under."""
    base = base.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


class ClerkFetcher:
    provider = PROVIDER

    def __init__(
        self,
        secret_key: str,
        base_url: str,
        *,
        clock: Clock = system_clock,
        retries: RetryConfig | None = None,
        timeout_ms: int = 10_000,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = Clerk(
            bearer_auth=secret_key,
            server_url=api_url(base_url),
            retry_config=retries or retry_config(),
            timeout_ms=timeout_ms,
        )
        self._clock = clock
        self.page_size = page_size

    def snapshots(self, scope: Scope, run_id: str) -> Iterator[Snapshot]:
        if scope.payer is None:
            yield from self._every_item(run_id)
        elif scope.payer.kind in (PayerKind.USER, PayerKind.ORGANIZATION):
            yield from self._payer(scope.payer, run_id)

    def _every_item(self, run_id: str) -> Iterator[Snapshot]:
        """``GET /billing/subscription_items``, by offset. Newest first: an item created during the run
        shifts the rest one place on, so one may be read twice, never skipped."""
        offset = 0
        while True:
            read_at = self._clock()
            page = self.client.billing.list_subscription_items(
                paginated=True, limit=self.page_size, offset=offset, include_free=True
            )
            for item in page.data:
                yield _snapshot(
                    "subscription_item", item, lambda data, sid, at=read_at: snapshot_item(data, at, sid), run_id
                )
            offset += len(page.data)
            if not page.data or offset >= page.total_count:
                return

    def _payer(self, payer: Payer, run_id: str) -> Iterator[Snapshot]:
        """The payer's subscription with its items (``GET /users/{id}/billing/subscription`` or the
        organization's); a 404 means the payer has none."""
        read_at = self._clock()
        try:
            if payer.kind is PayerKind.USER:
                subscription = self.client.users.get_billing_subscription(user_id=payer.id)
            else:
                subscription = self.client.organizations.get_billing_subscription(organization_id=payer.id)
        except models.ClerkErrors as exc:
            if exc.status_code == 404:
                return
            raise
        yield _snapshot(
            "subscription",
            subscription,
            lambda data, sid: snapshot_subscription(data, payer, read_at, sid),
            run_id,
        )


def _snapshot(kind: str, obj: Any, mapper: Callable[[dict[str, Any], str], Effect], run_id: str) -> Snapshot:
    data = obj.model_dump(mode="json", by_alias=True)
    object_id = str(data.get("id"))
    return snapshot_of(kind, object_id, data, lambda: mapper(data, f"{run_id}:{object_id}"))
