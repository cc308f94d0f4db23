"""A plan and the features it grants, as the catalog declares them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


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
