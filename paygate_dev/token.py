"""Mints a Clerk-style (v2) session token signed with the local key, for the locally running authorizer.

    python -m paygate_dev.token --user user_123
    python -m paygate_dev.token --user user_123 --plan pro --feature export --ttl 600
    python -m paygate_dev.token --user user_123 --org org_456 --plan team --role admin \\
        --permission org:settings:manage

The token goes to stdout alone, so ``TOKEN=$(python -m paygate_dev.token ...)`` works. A plan or feature
without a scope is the organization's when ``--org`` is given, else the user's; write ``u:pro`` / ``o:team``
to choose. A plan's features come from the catalog, as Clerk puts an active plan's features in ``fea``; a
plan the catalog does not know is minted with a warning. ``--expired`` mints a token that has expired.
A permission ``org:<feature>:<action>`` is encoded as Clerk does (``o.per`` + ``o.fpm``) and
needs its feature among the organization's features: it is added there if missing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt

from paygate_dev import LAYER_DIR
from paygate_dev.local_env import LOCAL_AUTHORIZED_PARTY, LOCAL_ISSUER, LocalSetupError, load_state

if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))

from paygate.domain.catalog import Catalog, CatalogError, PlanScope
from paygate.infra.catalog_file import DEFAULT_PATH, load_catalog

#: Clerk's dashboard default is about a minute; local tokens last an hour unless told otherwise.
DEFAULT_TTL_S = 3600


def _scoped(values: Sequence[str], org: str | None) -> list[tuple[str, str]]:
    scoped = []
    for value in values:
        scope, sep, slug = value.partition(":")
        if not sep:
            scope, slug = ("o" if org else "u"), value
        scope = {"org": "o", "organization": "o", "user": "u"}.get(scope, scope)
        if scope not in ("o", "u", "ou", "uo") or not slug:
            raise ValueError(f"{value!r}: write <slug>, u:<slug> or o:<slug>")
        scoped.append((scope, slug))
    return scoped


def session_claims(
    user: str,
    *,
    plans: Sequence[str] = (),
    features: Sequence[str] = (),
    org: str | None = None,
    org_slug: str | None = None,
    role: str | None = None,
    permissions: Sequence[str] = (),
    ttl_s: int = DEFAULT_TTL_S,
    now_s: int,
    issuer: str = LOCAL_ISSUER,
    authorized_party: str | None = LOCAL_AUTHORIZED_PARTY,
    status: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of a v2 session token (``pla``, ``fea`` and the compact ``o`` object)."""
    if (role or permissions) and not org:
        raise ValueError("a role or a permission needs an active organization (--org)")
    plan_claim = _scoped(plans, org)
    feature_claim = _scoped(features, org)
    actions: list[str] = []
    grants: dict[str, set[str]] = {}
    for permission in permissions:
        parts = permission.removeprefix("org:").split(":")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{permission!r}: a permission is org:<feature>:<action>")
        feature, action = parts
        if action not in actions:
            actions.append(action)
        grants.setdefault(feature, set()).add(action)
        if not any(slug == feature and "o" in scope for scope, slug in feature_claim):
            feature_claim.append(("o", feature))
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": user,
        "sid": f"sess_local_{secrets.token_hex(8)}",
        "jti": secrets.token_hex(10),
        "iat": now_s,
        "nbf": now_s - 5,
        "exp": now_s + ttl_s,
        "v": 2,
        "fva": [0, -1],
        "pla": ",".join(f"{s}:{p}" for s, p in plan_claim),
        "fea": ",".join(f"{s}:{f}" for s, f in feature_claim),
    }
    if authorized_party:
        claims["azp"] = authorized_party
    if status:
        claims["sts"] = status
    if org:
        organization: dict[str, Any] = {"id": org, "slg": org_slug or org}
        if role:
            organization["rol"] = role.removeprefix("org:")
        if actions:
            # One bitmask per org-scoped feature, in claim order; bit j grants actions[j].
            org_features = [f for s, f in feature_claim if "o" in s]
            masks = [sum(1 << j for j, a in enumerate(actions) if a in grants.get(f, ())) for f in org_features]
            organization["per"] = ",".join(actions)
            organization["fpm"] = ",".join(str(m) for m in masks)
        claims["o"] = organization
    claims.update(extra or {})
    return claims


def plan_features(plans: Sequence[str], org: str | None, catalog: Catalog) -> tuple[list[str], list[str]]:
    """The features Clerk would list in ``fea`` for these plans (each in its plan's scope), and a warning
    for each plan the catalog does not describe or that is minted in a scope the catalog does not give it."""
    features: list[str] = []
    warnings: list[str] = []
    for scope, slug in _scoped(plans, org):
        plan = catalog.plans.get(slug)
        if plan is None:
            known = ", ".join(sorted(catalog.plans)) or "none"
            warnings.append(f"plan {slug!r} is not in the catalog (known: {known}): minted without features")
            continue
        wanted = "o" if plan.scope is PlanScope.ORG else "u"
        if wanted not in scope:
            where = "an organization (add --org)" if wanted == "o" else "a user (write u:" + slug + ")"
            warnings.append(f"plan {slug!r} is {plan.scope.value}-scoped in the catalog: Clerk grants it to {where}")
        features += [f"{scope}:{feature}" for feature in sorted(plan.features)]
    return features, warnings


def key_id(public_key_pem: str) -> str:
    return "local-" + hashlib.sha256(public_key_pem.encode()).hexdigest()[:16]


def mint(claims: dict[str, Any], private_key_pem: str, public_key_pem: str) -> str:
    """``claims`` signed RS256 with the local key, its ``kid`` naming the key as a JWKS would."""
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers={"kid": key_id(public_key_pem)})


def mint_local(user: str, *, now_s: int | None = None, **options: Any) -> str:
    """A token for ``user`` signed with the key the local server's authorizer trusts."""
    state = load_state()
    if not state.private_key_pem:
        raise LocalSetupError("no local signing key yet: start the server once (`make run`)")
    claims = session_claims(user, now_s=int(time.time()) if now_s is None else now_s, **options)
    return mint(claims, state.private_key_pem, state.public_key_pem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", required=True, help="the user id (sub), e.g. user_123")
    parser.add_argument("--plan", action="append", default=[], help="an active plan; repeatable")
    parser.add_argument("--feature", action="append", default=[], help="an enabled feature; repeatable")
    parser.add_argument("--org", help="the active organization's id, e.g. org_456")
    parser.add_argument("--org-slug", help="its slug (default: the id)")
    parser.add_argument("--role", help="the user's role in the organization, e.g. admin")
    parser.add_argument("--permission", action="append", default=[], help="org:<feature>:<action>; repeatable")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_S, help=f"lifetime in seconds (default {DEFAULT_TTL_S})")
    parser.add_argument("--pending", action="store_true", help="a pending session (sts=pending)")
    parser.add_argument("--no-azp", action="store_true", help="leave out the authorized party (azp)")
    parser.add_argument("--expired", action="store_true", help="a token that expired a minute ago (to test refusal)")
    parser.add_argument(
        "--no-plan-features", action="store_true", help="do not add the plans' features from the catalog"
    )
    parser.add_argument(
        "--catalog", type=Path, help="the catalog (default: PAYGATE_CONFIG, else the layer's paygate.toml)"
    )
    parser.add_argument("--show", action="store_true", help="print the claims to stderr too")
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    now_s = int(time.time())
    if args.expired:
        now_s -= args.ttl + 60  # issued long enough ago that it expired a minute ago
    try:
        features = list(args.feature)
        if args.plan and not args.no_plan_features:
            path = args.catalog or Path(os.environ.get("PAYGATE_CONFIG") or DEFAULT_PATH)
            extra, warnings = plan_features(args.plan, args.org, load_catalog(path.resolve()))
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            features += [f for f in extra if f not in features]
        claims = session_claims(
            args.user,
            plans=args.plan,
            features=features,
            org=args.org,
            org_slug=args.org_slug,
            role=args.role,
            permissions=args.permission,
            ttl_s=args.ttl,
            now_s=now_s,
            authorized_party=None if args.no_azp else LOCAL_AUTHORIZED_PARTY,
            status="pending" if args.pending else None,
        )
    except (ValueError, CatalogError) as exc:
        parser.error(str(exc))
    state = load_state()
    if not state.private_key_pem:
        print("no local signing key yet: start the server once (`make run`)", file=sys.stderr)
        return 1
    if args.show:
        import json

        print(json.dumps(claims, indent=2), file=sys.stderr)
    print(mint(claims, state.private_key_pem, state.public_key_pem))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
