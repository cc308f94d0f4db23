"""The reconcile function's handler: a scheduled run over everything, and a payer's refresh.

One function serves both triggers, so the providers' API keys are readable by it alone:

* an EventBridge schedule: every provider with a key is read whole (``trigger = "schedule"``); the run
  is recorded, logged and counted in metrics, and its summary returned;
* ``POST /me/subscription/refresh`` behind the authorizer: the caller's own state is read again (the
  user, and the active organization when the catalog's ``[account] organization_billing`` lets the
  caller see its billing), at most once per payer every ``RECONCILE_REFRESH_SECONDS``; more often is
  answered 429 with ``Retry-After``. Its optional JSON body names what a Dodo checkout returned
  (``dodo_subscription_id``, ``dodo_payment_id``): read by id and applied only if its metadata names
  the caller, so a refresh right after checkout finds a customer whose webhook has not arrived yet.

The providers' SDKs are imported only when a run is made (``paygate.providers.clerk_api`` /
``dodo_api``): they ship with this function (``functions/reconcile/requirements.txt``), not the layer.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from paygate import settings
from paygate.clock import Clock, system_clock
from paygate.domain.access import DAY_MS
from paygate.domain.catalog import Catalog
from paygate.domain.state import Payer, PayerKind
from paygate.http import error_response, json_response, request_body
from paygate.infra.catalog_file import load_catalog
from paygate.infra.dynamodb_store import container_store
from paygate.providers.dodo import PROVIDER as DODO
from paygate.service.apply import ApplyService
from paygate.service.context import caller_from_event
from paygate.service.ports import StateStore, StoreUnavailable
from paygate.service.provider_api import Fetcher, NotFound, Retriever, Scope, Snapshot
from paygate.service.reconcile import ReconcileService, RunReport
from paygate.settings import ReconcileSettings


def build_fetchers(
    config: ReconcileSettings, catalog: Catalog, *, refresh: bool = False, clock: Clock = system_clock
) -> list[Fetcher]:
    """A fetcher per provider with an API key. A refresh (someone is waiting) retries briefly; a
    scheduled run rides out a provider's rate limit or outage for up to a minute per request."""
    keys = settings.provider_keys(config)
    fetchers: list[Fetcher] = []
    if "clerk" in keys:
        from paygate.providers.clerk_api import ClerkFetcher, retry_config

        retries = retry_config(max_elapsed_ms=2_000 if refresh else 60_000)
        fetchers.append(ClerkFetcher(keys["clerk"], config.clerk_api_url, clock=clock, retries=retries))
    if "dodo" in keys:
        from paygate.providers.dodo_api import DodoFetcher

        # A refresh follows a checkout: its payments are today's. A scheduled run reads the history window.
        days = 1 if refresh else config.history_days
        since = clock() - days * DAY_MS if days else None
        fetchers.append(
            DodoFetcher(
                keys["dodo"],
                config.dodo_base_url,
                catalog,
                clock=clock,
                max_retries=1 if refresh else 2,
                history_since_ms=since,
            )
        )
    return fetchers


def publish_metrics(report: RunReport) -> None:
    """One EMF line per run (``EphemeralMetrics``, as the webhook functions do)."""
    metrics = EphemeralMetrics(namespace="paygate", service="paygate")
    metrics.add_dimension(name="trigger", value=report.trigger)
    for name, value in report.totals().items():
        metrics.add_metric(name=f"reconcile_{name}", unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="reconcile_failed", unit=MetricUnit.Count, value=0 if report.ok else 1)
    metrics.flush_metrics()


#: The refresh body's fields: what a Dodo checkout's redirect returned, by the kind of object it names.
CHECKOUT_FIELDS = {"dodo_subscription_id": "subscription", "dodo_payment_id": "payment"}
#: A provider id: letters, digits, ``_`` and ``-`` (Dodo's are ``sub_...``, ``pay_...``).
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class Refusal(Exception):
    """A refresh answered without a run: the response says why."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.response = error_response(status, error, message, **extra)
        if "retry_after_s" in extra:
            self.response["headers"]["retry-after"] = str(extra["retry_after_s"])


def checkout_return(event: Mapping[str, Any]) -> dict[str, str]:
    """The objects the refresh body names, ``{kind: id}``; none for an empty body."""
    raw = request_body(event).strip()
    if not raw:
        return {}
    expected = " and/or ".join(CHECKOUT_FIELDS)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refusal(400, "invalid_request", f"the body must be a JSON object with {expected}") from None
    if not isinstance(body, dict):
        raise Refusal(400, "invalid_request", f"the body must be a JSON object with {expected}")
    unknown = sorted(set(body) - set(CHECKOUT_FIELDS))
    if unknown:
        raise Refusal(400, "invalid_request", f"unknown field {unknown[0]}; expected {expected}")
    named: dict[str, str] = {}
    for field, kind in CHECKOUT_FIELDS.items():
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not _PROVIDER_ID.fullmatch(value):
            raise Refusal(400, "invalid_request", f"{field} must be a provider id (letters, digits, _ and -)")
        named[kind] = value
    return named


class RefreshService:
    """``POST /me/subscription/refresh``: the caller's payers read again from the providers."""

    def __init__(
        self,
        reconciler: ReconcileService,
        catalog: Catalog,
        fetchers: Callable[[], list[Fetcher]],
        interval_s: int,
    ) -> None:
        self.reconciler = reconciler
        self.catalog = catalog
        self._fetchers = fetchers
        self.interval_s = interval_s

    def handle(self, event: Mapping[str, Any]) -> tuple[dict, list[RunReport]]:
        caller = caller_from_event(event)
        if caller is None:
            return error_response(401, "unauthenticated", "this route needs the paygate authorizer's context"), []
        payers = [Payer(PayerKind.USER, caller.user_id)]
        if caller.org_id and self.catalog.organization_billing.allows(caller.grants):
            payers.append(Payer(PayerKind.ORGANIZATION, caller.org_id))
        try:
            wanted = checkout_return(event)
            fetchers = self._fetchers()
            if not fetchers:
                raise Refusal(503, "not_configured", "no billing provider's API key is configured")
            dodo = next((f for f in fetchers if f.provider == DODO), None)
            if wanted and dodo is None:
                raise Refusal(503, "not_configured", "Dodo Payments' API key is not configured")
            waits = {p.key: self.reconciler.claim_refresh(p, self.interval_s) for p in payers}
            granted = [p for p in payers if waits[p.key] is None]
            if not granted:
                raise _too_many(min(w for w in waits.values() if w is not None))
            named = self._checkout_objects(cast(Retriever, dodo), wanted, payers, waits) if wanted else []
            reports = [
                self.reconciler.run(
                    fetchers,
                    Scope(p, self.reconciler.linked_customers(p)),
                    trigger="refresh",
                    named=[(DODO, s) for s in named if s.effect and s.effect.payer == p],
                )
                for p in granted
            ]
        except Refusal as refusal:
            return refusal.response, []
        except StoreUnavailable:
            return error_response(
                503, "store_unavailable", "subscriptions cannot be refreshed right now; retry later"
            ), []
        body = {
            "refreshed": [r.scope for r in reports],
            "rate_limited": {key: wait for key, wait in waits.items() if wait is not None},
            "runs": [_summary(r) for r in reports],
        }
        named_ids = set(wanted.values())
        if any(f["verdict"] == "conflict" and f.get("object_id") in named_ids for r in reports for f in r.findings):
            # The first link stays (see ApplyService.apply); the payer it names is not disclosed.
            return error_response(
                409,
                "payer_conflict",
                "the checkout's Dodo customer already belongs to another user or organization; nothing was changed",
                **body,
            ), reports
        if not all(r.ok for r in reports):
            # The providers could not be read: what is stored stays as it was.
            failed = sorted({p for r in reports for p, c in r.providers.items() if c.error})
            return error_response(
                503, "provider_unavailable", f"{', '.join(failed)} could not be read; retry later", **body
            ), reports
        return json_response(200, body), reports

    def _checkout_objects(
        self, dodo: Retriever, wanted: Mapping[str, str], payers: list[Payer], waits: Mapping[str, int | None]
    ) -> list[Snapshot]:
        """The objects a checkout return names, read now by id, each bought for one of the caller's payers.

        Only the object's own metadata decides whose it is (the webhook mapper's rule): an id the caller
        merely supplies never links a customer to the caller."""
        read_id = f"checkout-{uuid.uuid4().hex[:8]}"
        snapshots = []
        for kind, object_id in wanted.items():
            try:
                snapshot = dodo.retrieve(kind, object_id, read_id)
            except NotFound as exc:
                raise Refusal(404, "not_found", str(exc)) from None
            except Exception:  # noqa: BLE001 - the SDK's errors after its retries: nothing changes
                raise Refusal(503, "provider_unavailable", "dodo could not be read; retry later") from None
            if snapshot.effect is None:
                raise Refusal(502, "unreadable", f"Dodo's {kind} {object_id} cannot be read: {snapshot.error}")
            owner = snapshot.effect.payer
            if owner not in payers:
                raise Refusal(
                    403,
                    "not_yours",
                    f"Dodo's {kind} {object_id} was not bought for you or your active organization "
                    "(its metadata names neither); nothing was changed",
                )
            wait = waits[owner.key]
            if wait is not None:
                raise _too_many(wait)  # bought for the organization, refreshed moments ago
            snapshots.append(snapshot)
        return snapshots


def _too_many(wait: int) -> Refusal:
    return Refusal(
        429,
        "too_many_refreshes",
        f"subscriptions were refreshed moments ago; try again in {wait} s",
        retry_after_s=wait,
    )


def _summary(report: RunReport) -> dict[str, Any]:
    return {"run_id": report.run_id, "scope": report.scope, **report.totals()}


def reconcile_handler(clock: Clock = system_clock, store: Callable[[str], StateStore] = container_store):
    """The ``handler`` of the reconcile function (scheduled runs and the refresh route)."""
    logger = Logger(service="paygate", function_family="reconcile")
    load_catalog(settings.reconcile_settings().catalog_path)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict, context: Any) -> dict:
        config = settings.reconcile_settings()
        catalog = load_catalog(config.catalog_path)
        applier = ApplyService(store(config.table_name), config.retention_days, catalog=catalog, policy=config.policy)
        reconciler = ReconcileService(applier, clock=clock)
        if "routeKey" in event:  # an API Gateway request: a payer's refresh
            refresh = RefreshService(
                reconciler,
                catalog,
                lambda: build_fetchers(config, catalog, refresh=True, clock=clock),
                config.refresh_interval_s,
            )
            response, reports = refresh.handle(event)
            for report in reports:
                _log(logger, report)
                publish_metrics(report)
            logger.info("refresh answered", extra={"status": response["statusCode"]})
            return response
        report = reconciler.run(build_fetchers(config, catalog, clock=clock), trigger="schedule")
        _log(logger, report)
        publish_metrics(report)
        return _summary(report) | {"status": "finished" if report.ok else "failed"}

    return handler


def _log(logger: Logger, report: RunReport) -> None:
    # Under one key: names such as "created" are LogRecord attributes.
    extra = {"run": report.to_json()}
    if report.ok:
        logger.info("reconcile finished", extra=extra)
    else:
        logger.error("reconcile failed", extra=extra)
