"""``GET /me/subscription``: what the caller (and their active organization) has, for a billing page.

Behind the authorizer (gate ``signed_in = true``): the caller comes from the authorizer context.
Effective plans and features are what the stored subscriptions grant at this instant, plus what
the session token carried (unless ``STORE_AUTHORITATIVE=true``, in which case the authorizer hands
on no token plans). Each subscription shows its provider, status, plan, period, next payment,
cancel-at-period-end and the instant access ends; credit balances come last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from paygate import settings
from paygate.clock import Clock, system_clock
from paygate.domain.access import AccessPolicy
from paygate.domain.catalog import Catalog
from paygate.domain.entitlements import PayerEntitlements, entitlements_of
from paygate.domain.state import Payer, PayerKind
from paygate.http import error_response, json_response
from paygate.infra.catalog_file import load_catalog
from paygate.infra.dynamodb_store import container_store
from paygate.service.context import Caller, caller_from_event
from paygate.service.payers import PayerReader
from paygate.service.ports import StoreUnavailable
from paygate.settings import AccountSettings


class AccountService:
    def __init__(self, catalog: Catalog, reader: PayerReader, policy: AccessPolicy) -> None:
        self.catalog = catalog
        self.reader = reader
        self.policy = policy

    def handle(self, event: Mapping[str, Any], now_ms: int) -> dict:
        caller = caller_from_event(event)
        if caller is None:
            # Only reachable when the route is deployed without the authorizer.
            return error_response(401, "unauthenticated", "this route needs the paygate authorizer's context")
        user = Payer(PayerKind.USER, caller.user_id)
        org = Payer(PayerKind.ORGANIZATION, caller.org_id) if caller.org_id else None
        try:
            states = self.reader.read([p.key for p in (user, org) if p], now_ms)
        except StoreUnavailable:
            return error_response(503, "store_unavailable", "subscriptions cannot be read right now; retry later")
        held_user = entitlements_of(user, states[user.key], self.catalog, self.policy, now_ms)
        held_org = entitlements_of(org, states[org.key], self.catalog, self.policy, now_ms) if org else None
        return json_response(200, account_view(caller, held_user, held_org, self.catalog, now_ms))


def account_view(
    caller: Caller,
    user: PayerEntitlements,
    org: PayerEntitlements | None,
    catalog: Catalog,
    now_ms: int,
) -> dict[str, Any]:
    """The response body: effective plans and features, then each payer's details."""
    token_plans = caller.grants.plans
    token_features = caller.grants.features
    user_part = _payer_view(user, token_plans.user, token_features.user, catalog)
    org_part = None
    if org is not None:
        # An organization's subscriptions, next payments and credits are its billing: shown only to the
        # roles and permissions the catalog names (Clerk's own billing views refuse other members).
        visible = catalog.organization_billing.allows(caller.grants)
        org_part = {
            **_payer_view(org, token_plans.org, token_features.org, catalog, billing=visible),
            "slug": caller.org_slug,
            "role": caller.grants.org_role,
            "billing_visible": visible,
        }
    parts = [user_part, *([org_part] if org_part else [])]
    return {
        "user_id": caller.user_id,
        "org_id": caller.org_id,
        "plans": sorted({p for part in parts for p in part["plans"]}),
        "features": sorted({f for part in parts for f in part["features"]}),
        "user": user_part,
        "organization": org_part,
        "as_of": now_ms,
    }


def _payer_view(
    held: PayerEntitlements,
    token_plans: tuple[str, ...],
    token_features: tuple[str, ...],
    catalog: Catalog,
    billing: bool = True,
) -> dict[str, Any]:
    plans = set(held.plans) | set(token_plans)
    return {
        "id": held.payer.id,
        "plans": sorted(plans),
        "features": sorted(set(held.features) | set(token_features) | catalog.features_of(token_plans)),
        "subscriptions": [s.to_json() for s in held.subscriptions] if billing else [],
        "credits": [c.to_json() for c in held.credits] if billing else [],
    }


def account_handler(clock: Clock = system_clock) -> Callable[[dict, Any], dict]:
    logger = Logger(service="paygate", function_family="account")
    bound: dict[AccountSettings, AccountService] = {}

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict, context: Any) -> dict:
        config = settings.account_settings()
        service = bound.get(config)
        if service is None:
            # Fresh reads for a billing page: no cache.
            reader = PayerReader(container_store(config.table_name))
            service = bound[config] = AccountService(load_catalog(config.catalog_path), reader, config.policy)
        response = service.handle(event, clock())
        logger.info("account answered", extra={"status": response["statusCode"]})
        return response

    return handler
