"""Clerk session tokens: how a verified token's claims become the caller and what they hold.

This is Clerk's claim format (session tokens v2 first-class, v1 understood), as ``@clerk/shared``
reads it (see docs/reference/clerk-session-tokens.md). The signature and the registered claims
(``exp``, ``iss``, ``azp`` ...) are checked before, by :mod:`paygate.infra.tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.domain.gate import Grants, Scoped


class ClaimError(ValueError):
    """The session claims cannot be read (e.g. no ``sub``); the caller is treated as signed out."""


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session token, read the way Clerk's SDK reads it."""

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
    plans = split_by_scope(claims.get("pla"))
    features = split_by_scope(claims.get("fea"))
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


def split_by_scope(claim: Any) -> Scoped:
    """Clerk's ``splitByScope``: ``o:x`` org, ``u:x`` user, ``ou:x`` / ``uo:x`` both, other scopes dropped.

    An empty or absent claim is empty; a malformed one (an element without ``:``, which makes
    the SDK throw) is empty too, so every check against it fails.
    """
    if not isinstance(claim, str) or not claim.strip():
        return Scoped()
    org: list[str] = []
    user: list[str] = []
    for element in claim.split(","):
        scope, colon, value = element.strip().partition(":")
        if not colon:
            return Scoped()
        if scope in ("o", "ou", "uo"):
            org.append(value)
        if scope in ("u", "ou", "uo"):
            user.append(value)
    return Scoped(tuple(org), tuple(user))


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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
