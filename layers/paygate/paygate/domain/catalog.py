"""The catalog: plans and the features they grant, provider products, and each route's gate.

It is read from one human-edited file (``paygate.toml``, see README) by :mod:`paygate.config`;
this module is the pure model of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PlanScope(StrEnum):
    """Who can hold a plan, as Clerk distinguishes user plans from organization plans."""

    USER = "user"
    ORG = "org"


@dataclass(frozen=True, slots=True)
class Plan:
    slug: str
    name: str
    scope: PlanScope
    features: frozenset[str] = frozenset()
    limits: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Catalog:
    plans: Mapping[str, Plan]
    #: Provider product id (Dodo ``pdt_...``) to the plan slug it sells.
    products: Mapping[str, str] = field(default_factory=dict)
    #: Route key as API Gateway names it (``"GET /pro/{proxy+}"``) to its gate, as written in the file.
    routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

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
