"""Loads and validates the catalog file (``paygate.toml``) once per container.

The path is ``PAYGATE_CONFIG`` if set, else the ``paygate.toml`` shipped beside the package in the
layer. A bad entry fails the cold start with a :class:`CatalogError` that names it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from paygate.domain.catalog import Catalog, Plan, PlanScope
from paygate.domain.gate import GateError, parse_gate

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "paygate.toml"
#: ``METHOD /path`` as API Gateway names a route (``ANY`` included), or its ``$default`` route.
ROUTE_KEY = re.compile(r"^(?:(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) /\S*|\$default)$")


class CatalogError(ValueError):
    """The catalog file is missing or wrong; the message names the file and the entry."""


def catalog_path() -> Path:
    return Path(os.environ.get("PAYGATE_CONFIG") or DEFAULT_PATH)


@lru_cache(maxsize=4)
def load_catalog(path: Path | None = None) -> Catalog:
    path = path or catalog_path()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: the catalog file does not exist (set PAYGATE_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    return parse_catalog(raw, source=str(path))


def parse_catalog(raw: Mapping[str, Any], source: str = "paygate.toml") -> Catalog:
    def fail(where: str, why: str) -> CatalogError:
        return CatalogError(f"{source}: {where}: {why}")

    unknown = set(raw) - {"plans", "products", "routes"}
    if unknown:
        raise fail(", ".join(sorted(unknown)), "unknown section (expected plans, products, routes)")
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

    routes = raw.get("routes") or {}
    for route_key, gate in routes.items():
        if not isinstance(gate, Mapping):
            raise fail(f"routes.{route_key!r}", "must be a table describing the gate")
        if not ROUTE_KEY.match(route_key):
            raise fail(f"routes.{route_key!r}", "is not a route key as API Gateway names it, e.g. 'GET /pro/{proxy+}'")
        try:
            parse_gate(gate, plans)
        except GateError as exc:
            raise fail(f"routes.{route_key!r}", str(exc)) from None
    return Catalog(plans=plans, products=products, routes=dict(routes))
