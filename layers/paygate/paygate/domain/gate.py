"""Clerk's ``has()`` and the gates routes declare in the catalog.

The semantics follow ``@clerk/shared`` (see docs/reference/clerk-session-tokens.md):

* ``plan`` / ``feature``: ``x`` matches a user or an organization entry, ``user:x`` / ``u:x`` only a user
  entry, ``org:x`` / ``o:x`` / ``organization:x`` only an organization entry.
* ``role`` / ``permission``: ``org:`` is added when missing; both need an active organization, and a
  permission only exists when the organization's plan has the feature it belongs to.
* Several keys in one check are ANDed; a check that asks nothing is ``False``.

Where the SDK has quirks (``org:a:b`` queries, ``org:`` with an empty id) paygate answers ``False``.

A *gate* is that vocabulary combined with ``all`` / ``any``, as written in ``paygate.toml``. It is
parsed once, when the catalog is read, and evaluated against :class:`Grants`: what one source (the
token, or the store) says the caller holds. How a session token's claims become :class:`Grants` is
Clerk's format and lives with the Clerk provider (:mod:`paygate.providers.clerk_session`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from paygate.domain.plans import Plan, PlanScope
from paygate.domain.state import PayerKind

ORG_SCOPES = frozenset({"o", "org", "organization"})
USER_SCOPES = frozenset({"u", "user"})

_ORG_PREFIX = re.compile(r"^(org:)*")
_SLUG = re.compile(r"^[A-Za-z0-9_.\-]+$")


class GateError(ValueError):
    """A gate in the catalog is wrong; the message names where."""


# -- what a source grants ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scoped:
    """Plans or features split into Clerk's organization and user buckets."""

    org: tuple[str, ...] = ()
    user: tuple[str, ...] = ()

    @classmethod
    def of(cls, org: Iterable[str] = (), user: Iterable[str] = ()) -> Scoped:
        return cls(tuple(sorted(set(org))), tuple(sorted(set(user))))

    def holds(self, scope: PayerKind | None, ident: str) -> bool:
        """``checkForFeatureOrPlan`` on a parsed query: any bucket when ``scope`` is ``None``."""
        if scope is None:
            return ident in self.org or ident in self.user
        return ident in (self.org if scope is PayerKind.ORGANIZATION else self.user)

    def all(self) -> list[str]:
        return sorted(set(self.user) | set(self.org))

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


# -- one has() key -----------------------------------------------------------------------------


class CheckKind(StrEnum):
    PLAN = "plan"
    FEATURE = "feature"
    PERMISSION = "permission"
    ROLE = "role"


#: Checks whose answer depends on what the payer pays for (a role does not).
BILLING_CHECKS = frozenset({CheckKind.PLAN, CheckKind.FEATURE, CheckKind.PERMISSION})


@dataclass(frozen=True, slots=True)
class Check:
    """One ``has()`` key, parsed: e.g. ``feature = "org:export"`` is scope ORGANIZATION, key ``export``."""

    kind: CheckKind
    #: As written (for messages).
    value: str
    #: Plans and features: whose entries match (``None``: the user's or the organization's).
    #: Roles and permissions are always the organization's.
    scope: PayerKind | None
    #: The slug of a plan or feature; the ``org:``-prefixed key of a role or permission.
    key: str

    @classmethod
    def parse(cls, kind: CheckKind, value: Any) -> Check | None:
        """The check ``has({kind: value})`` makes, or ``None`` for a query Clerk can never match."""
        if not isinstance(value, str):
            return None
        if kind in (CheckKind.PLAN, CheckKind.FEATURE):
            parsed = _scoped_query(value)
            return cls(kind, value, parsed[0], parsed[1]) if parsed else None
        key = _role_query(value) if kind is CheckKind.ROLE else _permission_query(value)
        return cls(kind, value, PayerKind.ORGANIZATION, key) if key else None

    def allows(self, grants: Grants) -> bool:
        if not grants.user_id:
            return False
        match self.kind:
            case CheckKind.PLAN:
                return grants.plans.holds(self.scope, self.key)
            case CheckKind.FEATURE:
                return grants.features.holds(self.scope, self.key)
            case CheckKind.ROLE:
                return bool(grants.org_id and grants.org_role and _with_org(grants.org_role) == self.key)
            case CheckKind.PERMISSION:
                return bool(grants.org_id) and self.key in grants.org_permissions

    def checks(self) -> Iterable[Check]:
        yield self


def has(
    grants: Grants,
    *,
    plan: str | None = None,
    feature: str | None = None,
    role: str | None = None,
    permission: str | None = None,
) -> bool:
    """Clerk's ``has()``: every asked key must hold; asking nothing is ``False``; no user is ``False``."""
    asked = {CheckKind.PLAN: plan, CheckKind.FEATURE: feature, CheckKind.ROLE: role, CheckKind.PERMISSION: permission}
    checks = [Check.parse(kind, value) for kind, value in asked.items() if value is not None]
    return bool(checks) and all(c is not None and c.allows(grants) for c in checks)


def _with_org(value: str) -> str:
    return _ORG_PREFIX.sub("org:", value, count=1)


def _role_query(role: str) -> str | None:
    key = _with_org(role)
    return key if key != "org:" and ":" not in key[4:] else None


def _permission_query(permission: str) -> str | None:
    key = _with_org(permission)
    feature, colon, action = key[4:].partition(":")
    return key if feature and colon and action and ":" not in action else None


def _scoped_query(query: str) -> tuple[PayerKind | None, str] | None:
    """``x`` / ``user:x`` / ``org:x``, or ``None`` for what paygate refuses (``a:b:c``, ``org:``, ``foo:x``)."""
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


# -- gates -------------------------------------------------------------------------------------


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
        if check.kind not in BILLING_CHECKS:
            continue
        kinds.update((check.scope,) if check.scope else (PayerKind.USER, PayerKind.ORGANIZATION))
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
            check = _parse_check(CheckKind(key), value, at)
            if plans is not None:
                _check_catalog(check, plans, at)
            parts.append(check)
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _parse_check(kind: CheckKind, value: Any, at: str) -> Check:
    if not isinstance(value, str) or not value:
        raise GateError(f"{at}: must be a non-empty string")
    check = Check.parse(kind, value)
    if kind in (CheckKind.PLAN, CheckKind.FEATURE):
        if check is None or not _SLUG.match(check.key):
            raise GateError(f"{at}: {value!r} is not <slug>, user:<slug> or org:<slug>")
    elif kind is CheckKind.ROLE:
        if check is None or not _SLUG.match(check.key[4:]):
            raise GateError(f"{at}: {value!r} is not a role such as 'admin' or 'org:admin'")
    elif check is None:
        raise GateError(f"{at}: {value!r} is not a permission such as 'org:<feature>:<action>'")
    return check


def _check_catalog(check: Check, plans: Mapping[str, Plan], at: str) -> None:
    if check.kind is CheckKind.ROLE:
        return
    if check.kind is CheckKind.PERMISSION:
        feature = check.key[4:].partition(":")[0]
        if not any(p.scope is PlanScope.ORG and feature in p.features for p in plans.values()):
            raise GateError(
                f"{at}: no organization plan in the catalog has the feature {feature!r}, "
                "and a permission only counts when the organization's plan has its feature"
            )
        return
    wanted = {PayerKind.ORGANIZATION: PlanScope.ORG, PayerKind.USER: PlanScope.USER}.get(check.scope)  # type: ignore[arg-type]
    if check.kind is CheckKind.PLAN:
        plan = plans.get(check.key)
        if plan is None:
            raise GateError(f"{at}: names unknown plan {check.key!r} (known: {', '.join(sorted(plans)) or 'none'})")
        if wanted is not None and plan.scope is not wanted:
            kind = "an organization" if plan.scope is PlanScope.ORG else "a user"
            raise GateError(f"{at}: plan {check.key!r} is {kind} plan, so {check.value!r} never matches")
        return
    holders = [p for p in plans.values() if check.key in p.features and (wanted is None or p.scope is wanted)]
    if not holders:
        scope_text = {PlanScope.ORG: "organization ", PlanScope.USER: "user "}.get(wanted, "")  # type: ignore[arg-type]
        raise GateError(f"{at}: no {scope_text}plan in the catalog has the feature {check.key!r}")
