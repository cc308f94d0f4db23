"""Clerk's ``has()`` and the gates routes declare in the catalog.

The semantics follow ``@clerk/shared`` (see docs/reference/clerk-session-tokens.md):

* ``plan`` / ``feature``: ``x`` matches a user or an organization entry, ``user:x`` / ``u:x`` only a user
  entry, ``org:x`` / ``o:x`` / ``organization:x`` only an organization entry.
* ``role`` / ``permission``: ``org:`` is added when missing; both need an active organization, and a
  permission only exists when the organization's plan has the feature it belongs to.
* ``reverification``: a preset (``strict_mfa``, ``strict``, ``moderate``, ``lax``) or a level and a
  number of minutes: the session's factors were verified recently enough (the token's ``fva``).
* Several keys in one check are ANDed; a check that asks nothing is ``False``.

Where the SDK has quirks (``org:a:b`` queries, ``org:`` with an empty id) paygate answers ``False``.

A *gate* is that vocabulary combined with ``all`` / ``any``, as written in ``paygate.toml``. It is
parsed once, when the catalog is read, and evaluated against :class:`Grants`: what one source (the
token, or the store) says the caller holds. How a session token's claims become :class:`Grants` is
Clerk's format and lives with the Clerk provider (:mod:`paygate.providers.clerk_session`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

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
    #: Minutes since the session's first and second factor were verified (``-1``: not enabled).
    factor_verification_age: tuple[float, float] | None = None

    def without_billing(self) -> Grants:
        """The same caller holding no plan, feature or (feature-tied) permission."""
        return replace(self, org_permissions=frozenset(), plans=Scoped(), features=Scoped())


# -- one has() key -----------------------------------------------------------------------------


class CheckKind(StrEnum):
    PLAN = "plan"
    FEATURE = "feature"
    PERMISSION = "permission"
    ROLE = "role"
    REVERIFICATION = "reverification"


type FactorLevel = Literal["first_factor", "second_factor", "multi_factor"]
_LEVELS = ("first_factor", "second_factor", "multi_factor")


@dataclass(frozen=True, slots=True)
class Reverification:
    """Clerk's reverification config: which factors, verified within how many minutes."""

    level: FactorLevel
    after_minutes: float

    @classmethod
    def parse(cls, config: Any) -> Reverification | None:
        """Clerk's ``validateReverificationConfig``: a preset name, or a level and minutes (> 0)."""
        if isinstance(config, str):
            preset = _PRESETS.get(config)
            return cls(*preset) if preset else None
        if isinstance(config, Mapping):
            level = config.get("level")
            minutes = config.get("after_minutes", config.get("afterMinutes"))
            if level in _LEVELS and _is_number(minutes) and minutes > 0:
                return cls(level, float(minutes))
        return None

    def fresh(self, age: tuple[float, float] | None) -> bool:
        """Clerk's ``checkReverificationAuthorization`` over the token's ``fva``."""
        if age is None:
            return False
        first, second = age
        if first == -1 and second == -1:
            return False

        def recent(minutes: float) -> bool:
            return minutes != -1 and self.after_minutes > minutes

        match self.level:
            case "first_factor":
                return recent(first)
            case "second_factor":
                return recent(first) if second == -1 else recent(second)
            case _:  # multi_factor: both, or the first when no second factor is enabled
                if second == -1:
                    return recent(first)
                return first != -1 and recent(first) and recent(second)


_PRESETS: dict[str, tuple[FactorLevel, float]] = {
    "strict_mfa": ("multi_factor", 10),
    "strict": ("second_factor", 10),
    "moderate": ("second_factor", 60),
    "lax": ("second_factor", 1440),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


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
    #: The parsed config of a reverification check.
    reverification: Reverification | None = None

    @classmethod
    def parse(cls, kind: CheckKind, value: Any) -> Check | None:
        """The check ``has({kind: value})`` makes, or ``None`` for a query Clerk can never match."""
        if kind is CheckKind.REVERIFICATION:
            config = Reverification.parse(value)
            return cls(kind, str(value), None, "", config) if config else None
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
            case CheckKind.REVERIFICATION:
                return self.reverification is not None and self.reverification.fresh(grants.factor_verification_age)

    def checks(self) -> Iterable[Check]:
        yield self


def has(
    grants: Grants,
    *,
    plan: str | None = None,
    feature: str | None = None,
    role: str | None = None,
    permission: str | None = None,
    reverification: str | Mapping[str, Any] | None = None,
) -> bool:
    """Clerk's ``has()``: every asked key must hold; asking nothing is ``False``; no user is ``False``."""
    asked = {
        CheckKind.PLAN: plan,
        CheckKind.FEATURE: feature,
        CheckKind.ROLE: role,
        CheckKind.PERMISSION: permission,
        CheckKind.REVERIFICATION: reverification,
    }
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


_GATE_KEYS = ("plan", "feature", "permission", "role", "reverification", "all", "any", "signed_in")


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
    if kind is CheckKind.REVERIFICATION:
        check = Check.parse(kind, value)
        if check is None:
            raise GateError(
                f"{at}: {value!r} is not a reverification: one of {', '.join(_PRESETS)}, or "
                "{ level = first_factor | second_factor | multi_factor, after_minutes = <minutes> }"
            )
        return check
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
    if check.kind in (CheckKind.ROLE, CheckKind.REVERIFICATION):
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
