"""The authorizer context: what a route behind the authorizer learns about its caller.

The authorizer hands each allowed request a flat map of strings (API Gateway's simple-response
context, at ``requestContext.authorizer.lambda``); a route rebuilds the :class:`Caller` from it and
can ask finer ``has()`` questions of what the authorizer granted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from paygate.domain.gate import Grants, Scoped, has


class Source(StrEnum):
    """Which source granted access: the token's own claims, or the stored subscriptions."""

    TOKEN = "token"  # noqa: S105 - a source name, not a secret
    STORE = "store"


def route_context(
    user_id: str, session_id: str | None, org_slug: str | None, grants: Grants, source: Source
) -> dict[str, str]:
    """The authorizer context a route gets (all strings)."""
    return {
        "user_id": user_id,
        "session_id": session_id or "",
        "org_id": grants.org_id or "",
        "org_slug": org_slug or "",
        "org_role": grants.org_role or "",
        "org_permissions": ",".join(sorted(grants.org_permissions)),
        "plans": _encode(grants.plans),
        "features": _encode(grants.features),
        "factor_verification_age": ",".join(f"{a:g}" for a in grants.factor_verification_age or ()),
        "source": source.value,
    }


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller as a route handler sees it, rebuilt from the authorizer context."""

    user_id: str
    grants: Grants
    source: Source
    session_id: str | None = None
    org_slug: str | None = None

    @property
    def org_id(self) -> str | None:
        return self.grants.org_id

    def has(
        self,
        *,
        plan: str | None = None,
        feature: str | None = None,
        role: str | None = None,
        permission: str | None = None,
        reverification: str | Mapping[str, Any] | None = None,
    ) -> bool:
        """``has()`` over what the authorizer granted, for finer checks inside a route."""
        return has(
            self.grants, plan=plan, feature=feature, role=role, permission=permission, reverification=reverification
        )

    def plan_slugs(self) -> list[str]:
        return self.grants.plans.all()

    def feature_slugs(self) -> list[str]:
        return self.grants.features.all()


def caller_from_context(context: Mapping[str, Any] | None) -> Caller | None:
    """The :class:`Caller` in an authorizer context, or ``None`` when there is none (no authorizer ran)."""
    if not isinstance(context, Mapping):
        return None
    user_id = _text(context.get("user_id"))
    try:
        source = Source(context.get("source"))
    except ValueError:
        return None
    if user_id is None:
        return None
    permissions = context.get("org_permissions") or ""
    grants = Grants(
        user_id=user_id,
        org_id=_text(context.get("org_id")),
        org_role=_text(context.get("org_role")),
        org_permissions=frozenset(p for p in str(permissions).split(",") if p),
        plans=_decode(context.get("plans")),
        features=_decode(context.get("features")),
        factor_verification_age=_ages(context.get("factor_verification_age")),
    )
    return Caller(user_id, grants, source, _text(context.get("session_id")), _text(context.get("org_slug")))


def caller_from_event(event: Mapping[str, Any]) -> Caller | None:
    """The caller of a route behind the authorizer: ``requestContext.authorizer.lambda`` (payload 2.0)."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return caller_from_context(authorizer.get("lambda") if isinstance(authorizer, Mapping) else None)


def _encode(scoped: Scoped) -> str:
    """``u:pro,o:team``: Clerk's claim form, which a reader of the context already knows."""
    return ",".join([f"u:{v}" for v in scoped.user] + [f"o:{v}" for v in scoped.org])


def _decode(text: Any) -> Scoped:
    org: list[str] = []
    user: list[str] = []
    for element in str(text or "").split(","):
        scope, _, value = element.partition(":")
        if value and scope in ("u", "o"):
            (user if scope == "u" else org).append(value)
    return Scoped(tuple(org), tuple(user))


def _ages(text: Any) -> tuple[float, float] | None:
    try:
        first, second = (float(part) for part in str(text or "").split(","))
    except ValueError:
        return None
    return (first, second)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
