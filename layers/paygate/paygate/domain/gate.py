"""Clerk's ``has()`` over session-token claims, and the gates routes declare in the catalog.

The semantics follow ``@clerk/shared`` (see docs/reference/clerk-session-tokens.md):

* ``plan`` / ``feature``: ``x`` matches a user or an organization entry, ``user:x`` / ``u:x`` only a user
  entry, ``org:x`` / ``o:x`` / ``organization:x`` only an organization entry.
* ``role`` / ``permission``: ``org:`` is added when missing; both need an active organization, and a
  permission only exists when the organization's plan has the feature it belongs to.
* Several keys in one check are ANDed; a check that asks nothing is ``False``.

Where the SDK has quirks (``org:a:b`` queries, ``org:`` with an empty id) paygate answers ``False``.

A *gate* is that vocabulary combined with ``all`` / ``any``, as written in ``paygate.toml``. It is
evaluated against :class:`Grants`: what one source (the token, or the store) says the caller holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from paygate.domain.catalog import Plan, PlanScope
from paygate.domain.state import PayerKind

ORG_SCOPES = frozenset({"o", "org", "organization"})
USER_SCOPES = frozenset({"u", "user"})

_ORG_PREFIX = re.compile(r"^(org:)*")
_SLUG = re.compile(r"^[A-Za-z0-9_.\-]+$")


class ClaimError(ValueError):
    """The session claims cannot be read (e.g. no ``sub``); the caller is treated as signed out."""


class GateError(ValueError):
    """A gate in the catalog is wrong; the message names where."""


# -- what a source grants ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scoped:
    """Plans or features split into Clerk's organization and user buckets, in claim order."""

    org: tuple[str, ...] = ()
    user: tuple[str, ...] = ()

    @classmethod
    def parse(cls, claim: Any) -> Scoped:
        """Clerk's ``splitByScope``: ``o:x`` org, ``u:x`` user, ``ou:x`` / ``uo:x`` both, other scopes dropped.

        An empty or absent claim is empty; a malformed one (an element without ``:``, which makes
        the SDK throw) is empty too, so every check against it fails.
        """
        if not isinstance(claim, str) or not claim.strip():
            return cls()
        org: list[str] = []
        user: list[str] = []
        for element in claim.split(","):
            part = element.strip()
            scope, colon, value = part.partition(":")
            if not colon:
                return cls()
            if scope in ("o", "ou", "uo"):
                org.append(value)
            if scope in ("u", "ou", "uo"):
                user.append(value)
        return cls(tuple(org), tuple(user))

    @classmethod
    def of(cls, org: Iterable[str] = (), user: Iterable[str] = ()) -> Scoped:
        return cls(tuple(sorted(set(org))), tuple(sorted(set(user))))

    def holds(self, query: Any) -> bool:
        """``checkForFeatureOrPlan``: does ``query`` (``x``, ``user:x``, ``org:x`` ...) match?"""
        parsed = _scoped_query(query)
        if parsed is None:
            return False
        scope, ident = parsed
        if scope is None:
            return ident in self.org or ident in self.user
        return ident in (self.org if scope is PayerKind.ORGANIZATION else self.user)

    def encode(self) -> str:
        """Back to Clerk's claim form (``u:pro,o:team``), for the authorizer context."""
        return ",".join([f"u:{v}" for v in self.user] + [f"o:{v}" for v in self.org])

    def __bool__(self) -> bool:
        return bool(self.org or self.user)


@dataclass(frozen=True, slots=True)
class Grants:
    """The inputs of Clerk's ``has()``: who is calling and what one source says they hold."""

    user_id: str | None
    org_id: str | None = None
    org_role: str | None = None
    org_permissions: frozenset[str] = frozenset()
    plans: Scoped = field(default_factory=Scoped)
    features: Scoped = field(default_factory=Scoped)

    def without_billing(self) -> Grants:
        """The same caller holding no plan, feature or (feature-tied) permission."""
        return replace(self, org_permissions=frozenset(), plans=Scoped(), features=Scoped())


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session token, read the way Clerk's SDK reads it (v2 first-class, v1 understood)."""

    grants: Grants
    session_id: str | None = None
    org_slug: str | None = None
    #: ``sts == "pending"``: signed in with unfinished session tasks; Clerk treats it as signed out.
    pending: bool = False
    version: int = 1

    @property
    def user_id(self) -> str:
        return self.grants.user_id or ""

    @property
    def org_id(self) -> str | None:
        return self.grants.org_id


def session_from_claims(claims: Mapping[str, Any]) -> Session:
    """The session a verified token describes. Raises :class:`ClaimError` without a string ``sub``."""
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise ClaimError("the token has no subject (sub)")
    plans = Scoped.parse(claims.get("pla"))
    features = Scoped.parse(claims.get("fea"))
    org_id = org_slug = org_role = None
    permissions: frozenset[str] = frozenset()
    version = 2 if claims.get("v") == 2 else 1
    if version == 2:
        # v2: the organization lives only in the compact ``o`` claim; org_* claims are ignored.
        org = claims.get("o")
        if isinstance(org, Mapping) and _text(org.get("id")):
            org_id = org["id"]
            org_slug = _text(org.get("slg"))
            role = _text(org.get("rol"))
            org_role = f"org:{role}" if role else None
            permissions = expand_permissions(features.org, org.get("per"), org.get("fpm"))
    elif _text(claims.get("org_id")):
        org_id = claims["org_id"]
        org_slug = _text(claims.get("org_slug"))
        org_role = _text(claims.get("org_role"))
        raw = claims.get("org_permissions")
        if isinstance(raw, list):
            permissions = frozenset(p for p in raw if isinstance(p, str) and p)
    grants = Grants(user_id, org_id, org_role, permissions, plans, features)
    return Session(
        grants=grants,
        session_id=_text(claims.get("sid")),
        org_slug=org_slug,
        pending=claims.get("sts") == "pending",
        version=version,
    )


def expand_permissions(org_features: Sequence[str], per: Any, fpm: Any) -> frozenset[str]:
    """Clerk's ``o.per`` + ``o.fpm`` expansion into ``org:<feature>:<permission>`` keys.

    ``fpm[i]`` is a bitmask over ``per`` for the i-th organization feature of ``fea`` (least
    significant bit = first name). Bits past the end of ``per`` and entries that are not
    non-negative integers grant nothing, where the SDK would produce ``undefined`` or ``NaN``.
    """
    if not isinstance(per, str) or not isinstance(fpm, str) or not per.strip() or not fpm.strip():
        return frozenset()
    names = [p.strip() for p in per.split(",")]
    granted: set[str] = set()
    for feature, raw_mask in zip(org_features, fpm.split(","), strict=False):
        mask_text = raw_mask.strip()
        if not mask_text.isdigit():
            continue
        mask = int(mask_text)
        for bit, name in enumerate(names):
            if name and mask >> bit & 1:
                granted.add(f"org:{feature}:{name}")
    return frozenset(granted)


# -- has() -------------------------------------------------------------------------------------


def has(
    grants: Grants,
    *,
    plan: str | None = None,
    feature: str | None = None,
    role: str | None = None,
    permission: str | None = None,
) -> bool:
    """Clerk's ``has()``: every asked key must hold; asking nothing is ``False``; no user is ``False``."""
    if not grants.user_id:
        return False
    asked = False
    if role is not None or permission is not None:
        asked = True
        if not grants.org_id:
            return False
        if role is not None and (grants.org_role is None or _with_org(grants.org_role) != _role_query(role)):
            return False
        if permission is not None and _permission_query(permission) not in grants.org_permissions:
            return False
    if feature is not None:
        asked = True
        if not grants.features.holds(feature):
            return False
    if plan is not None:
        asked = True
        if not grants.plans.holds(plan):
            return False
    return asked


def _with_org(value: str) -> str:
    return _ORG_PREFIX.sub("org:", value, count=1)


def _role_query(role: Any) -> str | None:
    if not isinstance(role, str):
        return None
    key = _with_org(role)
    return key if key != "org:" and ":" not in key[4:] else None


def _permission_query(permission: Any) -> str | None:
    if not isinstance(permission, str):
        return None
    key = _with_org(permission)
    feature, colon, action = key[4:].partition(":")
    return key if feature and colon and action and ":" not in action else None


def _scoped_query(query: Any) -> tuple[PayerKind | None, str] | None:
    """``x`` / ``user:x`` / ``org:x``, or ``None`` for what paygate refuses (``a:b:c``, ``org:``, ``foo:x``)."""
    if not isinstance(query, str):
        return None
    parts = query.split(":")
    if len(parts) == 1:
        return (None, parts[0]) if parts[0] else None
    if len(parts) != 2 or not parts[1]:
        return None
    scope, ident = parts
    if scope in ORG_SCOPES:
        return PayerKind.ORGANIZATION, ident
    if scope in USER_SCOPES:
        return PayerKind.USER, ident
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- gates -------------------------------------------------------------------------------------


class CheckKind(StrEnum):
    PLAN = "plan"
    FEATURE = "feature"
    PERMISSION = "permission"
    ROLE = "role"


#: Checks whose answer depends on what the payer pays for (a role does not).
BILLING_CHECKS = frozenset({CheckKind.PLAN, CheckKind.FEATURE, CheckKind.PERMISSION})


@dataclass(frozen=True, slots=True)
class Check:
    """One ``has()`` key, e.g. ``feature = "org:export"``."""

    kind: CheckKind
    value: str

    def allows(self, grants: Grants) -> bool:
        return has(grants, **{self.kind.value: self.value})

    def checks(self) -> Iterable[Check]:
        yield self


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Any verified, non-pending session (``signed_in = true``): the account API's gate."""

    def allows(self, grants: Grants) -> bool:
        return bool(grants.user_id)

    def checks(self) -> Iterable[Check]:
        return ()


@dataclass(frozen=True, slots=True)
class AllOf:
    gates: tuple[Gate, ...]

    def allows(self, grants: Grants) -> bool:
        return all(g.allows(grants) for g in self.gates)

    def checks(self) -> Iterable[Check]:
        for gate in self.gates:
            yield from gate.checks()


@dataclass(frozen=True, slots=True)
class AnyOf:
    gates: tuple[Gate, ...]

    def allows(self, grants: Grants) -> bool:
        return any(g.allows(grants) for g in self.gates)

    def checks(self) -> Iterable[Check]:
        for gate in self.gates:
            yield from gate.checks()


type Gate = Check | SignedIn | AllOf | AnyOf


def needs_billing(gate: Gate) -> bool:
    """Whether stored subscriptions could change the answer (a role or ``signed_in`` gate: no)."""
    return any(c.kind in BILLING_CHECKS for c in gate.checks())


def payer_kinds(gate: Gate, org_active: bool) -> frozenset[PayerKind]:
    """The payers whose stored subscriptions the gate can consult: the user's, the active organization's.

    An unscoped ``plan`` / ``feature`` looks at both; ``user:`` only the user; ``org:`` and
    permissions only the organization, and only when the token has an active organization.
    """
    kinds: set[PayerKind] = set()
    for check in gate.checks():
        if check.kind is CheckKind.PERMISSION:
            kinds.add(PayerKind.ORGANIZATION)
        elif check.kind in (CheckKind.PLAN, CheckKind.FEATURE):
            parsed = _scoped_query(check.value)
            if parsed is not None:
                kinds.update((parsed[0],) if parsed[0] else (PayerKind.USER, PayerKind.ORGANIZATION))
    if not org_active:
        kinds.discard(PayerKind.ORGANIZATION)
    return frozenset(kinds)


_GATE_KEYS = ("plan", "feature", "permission", "role", "all", "any", "signed_in")


def parse_gate(raw: Any, plans: Mapping[str, Plan] | None = None, where: str = "") -> Gate:
    """A gate from its catalog form, e.g. ``{any = [{plan = "pro"}, {plan = "org:team"}]}``.

    Keys in one table are ANDed, as in one ``has()`` call. With ``plans`` (the catalog's), a plan
    or feature the catalog does not know, or one in the wrong scope, is an error: such a gate
    could only ever deny.
    """

    def fail(why: str, at: str = "") -> GateError:
        return GateError(f"{where}{at}: {why}" if (where or at) else why)

    if not isinstance(raw, Mapping):
        raise fail('a gate must be a table, e.g. { plan = "pro" }')
    if not raw:
        raise fail(f"an empty gate allows no one; use one of {', '.join(_GATE_KEYS)}")
    unknown = sorted(set(raw) - set(_GATE_KEYS))
    if unknown:
        raise fail(f"unknown key(s) {unknown} (expected {', '.join(_GATE_KEYS)})")
    parts: list[Gate] = []
    for key in _GATE_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        at = f"{where}.{key}" if where else key
        if key == "signed_in":
            if value is not True:
                raise GateError(f"{at}: signed_in must be true (a route behind the authorizer needs a session)")
            parts.append(SignedIn())
        elif key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise GateError(f"{at}: must be a non-empty list of gates")
            children = tuple(parse_gate(child, plans, f"{at}[{i}]") for i, child in enumerate(value))
            parts.append(AllOf(children) if key == "all" else AnyOf(children))
        else:
            check = Check(CheckKind(key), _check_value(CheckKind(key), value, at))
            if plans is not None:
                _check_catalog(check, plans, at)
            parts.append(check)
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _check_value(kind: CheckKind, value: Any, at: str) -> str:
    if not isinstance(value, str) or not value:
        raise GateError(f"{at}: must be a non-empty string")
    if kind in (CheckKind.PLAN, CheckKind.FEATURE):
        parsed = _scoped_query(value)
        if parsed is None or not _SLUG.match(parsed[1]):
            raise GateError(f"{at}: {value!r} is not <slug>, user:<slug> or org:<slug>")
    elif kind is CheckKind.ROLE:
        query = _role_query(value)
        if query is None or not _SLUG.match(query[4:]):
            raise GateError(f"{at}: {value!r} is not a role such as 'admin' or 'org:admin'")
    elif _permission_query(value) is None:
        raise GateError(f"{at}: {value!r} is not a permission such as 'org:<feature>:<action>'")
    return value


def _check_catalog(check: Check, plans: Mapping[str, Plan], at: str) -> None:
    if check.kind is CheckKind.ROLE:
        return
    if check.kind is CheckKind.PERMISSION:
        feature = _permission_query(check.value)[4:].partition(":")[0]  # type: ignore[index]
        if not any(p.scope is PlanScope.ORG and feature in p.features for p in plans.values()):
            raise GateError(
                f"{at}: no organization plan in the catalog has the feature {feature!r}, "
                "and a permission only counts when the organization's plan has its feature"
            )
        return
    scope, ident = _scoped_query(check.value)  # type: ignore[misc]
    wanted = {PayerKind.ORGANIZATION: PlanScope.ORG, PayerKind.USER: PlanScope.USER}.get(scope)  # type: ignore[arg-type]
    if check.kind is CheckKind.PLAN:
        plan = plans.get(ident)
        if plan is None:
            raise GateError(f"{at}: names unknown plan {ident!r} (known: {', '.join(sorted(plans)) or 'none'})")
        if wanted is not None and plan.scope is not wanted:
            kind = "an organization" if plan.scope is PlanScope.ORG else "a user"
            raise GateError(f"{at}: plan {ident!r} is {kind} plan, so {check.value!r} never matches")
        return
    holders = [p for p in plans.values() if ident in p.features and (wanted is None or p.scope is wanted)]
    if not holders:
        scope_text = {PlanScope.ORG: "organization ", PlanScope.USER: "user "}.get(wanted, "")  # type: ignore[arg-type]
        raise GateError(f"{at}: no {scope_text}plan in the catalog has the feature {ident!r}")


# -- what a route receives ---------------------------------------------------------------------


class Source(StrEnum):
    """Which source granted access: the token's own claims, or the stored subscriptions."""

    TOKEN = "token"  # noqa: S105 - a source name, not a secret
    STORE = "store"


def route_context(session: Session, grants: Grants, source: Source) -> dict[str, str]:
    """The authorizer context a route gets at ``requestContext.authorizer.lambda`` (all strings)."""
    return {
        "user_id": session.user_id,
        "session_id": session.session_id or "",
        "org_id": grants.org_id or "",
        "org_slug": session.org_slug or "",
        "org_role": grants.org_role or "",
        "org_permissions": ",".join(sorted(grants.org_permissions)),
        "plans": grants.plans.encode(),
        "features": grants.features.encode(),
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
    ) -> bool:
        """``has()`` over what the authorizer granted, for finer checks inside a route."""
        return has(self.grants, plan=plan, feature=feature, role=role, permission=permission)

    def plan_slugs(self) -> list[str]:
        return sorted(set(self.grants.plans.user) | set(self.grants.plans.org))

    def feature_slugs(self) -> list[str]:
        return sorted(set(self.grants.features.user) | set(self.grants.features.org))


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
        plans=Scoped.parse(context.get("plans")),
        features=Scoped.parse(context.get("features")),
    )
    return Caller(user_id, grants, source, _text(context.get("session_id")), _text(context.get("org_slug")))


def caller_from_event(event: Mapping[str, Any]) -> Caller | None:
    """The caller of a route behind the authorizer: ``requestContext.authorizer.lambda`` (payload 2.0)."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return caller_from_context(authorizer.get("lambda") if isinstance(authorizer, Mapping) else None)
