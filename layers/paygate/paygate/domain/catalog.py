"""The catalog: plans and the features they grant, provider products, and each route's gate.

It is written by hand in one file (``paygate.toml``, see docs/gate.md) and read by
:mod:`paygate.infra.catalog_file`; this module is its pure model and its validation. Every gate is
parsed once here, so the authorizer evaluates parsed checks and never re-reads the file's strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paygate.domain.access import DEFAULT_REVOKE_ON
from paygate.domain.gate import AnyOf, Check, CheckKind, Gate, GateError, parse_gate
from paygate.domain.plans import Plan, PlanScope
from paygate.domain.records import ReversalKind

__all__ = ["Catalog", "CatalogError", "Plan", "PlanScope", "parse_catalog"]

#: ``METHOD /path`` as API Gateway names a route (``ANY`` included), or its ``$default`` route.
ROUTE_KEY = re.compile(r"^(?:(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) /\S*|\$default)$")


#: Who may see an organization's subscriptions, next payments and credits on the account API, unless
#: the catalog says otherwise: an admin, or a member with Clerk's billing system permissions (the ones
#: Clerk's own organization billing views require).
DEFAULT_ORGANIZATION_BILLING: Gate = AnyOf(
    tuple(
        check
        for kind, value in (
            (CheckKind.ROLE, "org:admin"),
            (CheckKind.PERMISSION, "org:sys_billing:read"),
            (CheckKind.PERMISSION, "org:sys_billing:manage"),
        )
        if (check := Check.parse(kind, value)) is not None
    )
)


class CatalogError(ValueError):
    """The catalog is wrong; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Catalog:
    plans: Mapping[str, Plan]
    #: A provider's product (or price) id, e.g. Dodo's ``pdt_...``, to the plan slug it sells.
    products: Mapping[str, str] = field(default_factory=dict)
    #: Route key as API Gateway names it (``"GET /pro/{proxy+}"``) to its parsed gate.
    routes: Mapping[str, Gate] = field(default_factory=dict)
    #: Which ways of taking money back end the access the payment bought (``[revoke_on]``).
    revoke_on: frozenset[ReversalKind] = DEFAULT_REVOKE_ON
    #: Who may see an organization's billing on the account API (``[account] organization_billing``).
    organization_billing: Gate = DEFAULT_ORGANIZATION_BILLING

    def plan_for_product(self, product_id: str) -> str | None:
        return self.products.get(product_id)

    def features_of(self, plans: Iterable[str]) -> frozenset[str]:
        """Every feature the given plans grant; a plan the catalog does not know grants none."""
        granted: set[str] = set()
        for slug in plans:
            plan = self.plans.get(slug)
            if plan is not None:
                granted |= plan.features
        return frozenset(granted)


def parse_catalog(raw: Mapping[str, Any], source: str = "paygate.toml") -> Catalog:
    """The catalog a parsed TOML document describes; :class:`CatalogError` names the first bad entry."""

    def fail(where: str, why: str) -> CatalogError:
        return CatalogError(f"{source}: {where}: {why}")

    unknown = set(raw) - {"plans", "products", "routes", "revoke_on", "account"}
    if unknown:
        raise fail(", ".join(sorted(unknown)), "unknown section (expected plans, products, routes, revoke_on, account)")
    plans: dict[str, Plan] = {}
    for slug, entry in (raw.get("plans") or {}).items():
        where = f"plans.{slug}"
        if not isinstance(entry, Mapping):
            raise fail(where, "must be a table")
        extra = set(entry) - {"name", "scope", "features", "limits"}
        if extra:
            raise fail(where, f"unknown key(s) {sorted(extra)}")
        try:
            scope = PlanScope(entry.get("scope", "user"))
        except ValueError:
            raise fail(f"{where}.scope", "must be 'user' or 'org'") from None
        features = entry.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) and f and ":" not in f for f in features):
            raise fail(f"{where}.features", "must be a list of feature slugs (no ':' - scope comes from the plan)")
        limits = entry.get("limits", {})
        if not isinstance(limits, Mapping) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in limits.values()
        ):
            raise fail(f"{where}.limits", "must map names to whole numbers")
        plans[slug] = Plan(slug, str(entry.get("name", slug)), scope, frozenset(features), dict(limits))

    products: dict[str, str] = {}
    for product_id, slug in (raw.get("products") or {}).items():
        if slug not in plans:
            raise fail(f"products.{product_id}", f"names unknown plan {slug!r}")
        products[product_id] = slug

    routes: dict[str, Gate] = {}
    for route_key, gate in (raw.get("routes") or {}).items():
        if not isinstance(gate, Mapping):
            raise fail(f"routes.{route_key!r}", "must be a table describing the gate")
        if not ROUTE_KEY.match(route_key):
            raise fail(f"routes.{route_key!r}", "is not a route key as API Gateway names it, e.g. 'GET /pro/{proxy+}'")
        try:
            routes[route_key] = parse_gate(gate, plans)
        except GateError as exc:
            raise fail(f"routes.{route_key!r}", str(exc)) from None
    revoke_on = set(DEFAULT_REVOKE_ON)
    for name, revokes in (raw.get("revoke_on") or {}).items():
        try:
            kind = ReversalKind(name)
        except ValueError:
            known = ", ".join(k.value for k in ReversalKind)
            raise fail(f"revoke_on.{name}", f"unknown way of taking money back (expected {known})") from None
        if not isinstance(revokes, bool):
            raise fail(f"revoke_on.{name}", "must be true or false")
        (revoke_on.add if revokes else revoke_on.discard)(kind)
    account = raw.get("account") or {}
    if not isinstance(account, Mapping) or set(account) - {"organization_billing"}:
        raise fail("account", "only organization_billing may be set, as a gate")
    organization_billing = DEFAULT_ORGANIZATION_BILLING
    if "organization_billing" in account:
        try:
            # Any role or permission may be named here (Clerk's system permissions are not plan features).
            organization_billing = parse_gate(account["organization_billing"], None)
        except GateError as exc:
            raise fail("account.organization_billing", str(exc)) from None
    return Catalog(
        plans=plans,
        products=products,
        routes=routes,
        revoke_on=frozenset(revoke_on),
        organization_billing=organization_billing,
    )
