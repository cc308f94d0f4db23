"""Clerk session tokens: how a verified token's claims become the caller and what they hold.

This is Clerk's claim format, read exactly as ``@clerk/shared`` reads it
(``__experimental_JWTPayloadToAuthObjectProperties`` in ``packages/shared/src/jwtPayloadParser.ts`` and
``splitByScope`` in ``authorization.ts``; docs/reference/clerk-session-tokens.md cites each rule):

* Session tokens v2 (``v == 2``) carry the organization in ``o`` and permissions as ``o.per`` names with
  ``o.fpm`` bitmasks, one per organization feature of ``fea``; v1 tokens carry ``org_*`` claims.
* Where Clerk cannot build the auth object from the claims (v2 with an active organization and a
  malformed ``fea``, ``o.per`` or ``o.fpm``), it refuses the token: :class:`ClaimError`, and everything
  is denied.
* Claim elements are trimmed with JavaScript's ``String.prototype.trim`` (not Python's ``strip``);
  permission masks are ASCII decimal digits of any length.

The signature and the registered claims (``exp``, ``iss``, ``azp`` ...) are checked before, by
:mod:`paygate.infra.tokens`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.domain.gate import Grants, Scoped

#: What JavaScript's ``String.prototype.trim`` removes (ECMAScript WhiteSpace and LineTerminator):
#: unlike ``str.strip()`` it removes U+FEFF and keeps U+0085 and U+001C-U+001F.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_ASCII_DIGITS = re.compile(r"[0-9]+")


class ClaimError(ValueError):
    """Clerk cannot build an auth object from these claims; the caller is denied everything."""


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
    """The session a verified token describes; :class:`ClaimError` where Clerk builds no auth object."""
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise ClaimError("the token has no subject (sub)")
    org_id = org_slug = org_role = None
    permissions: frozenset[str] = frozenset()
    version = 2 if _is_two(claims.get("v")) else 1
    org = claims.get("o")
    if version == 2 and _js_truthy(org):
        # Clerk builds the organization's part here, and throws on malformed claims: no auth object.
        org_features = split_by_scope(claims.get("fea"), strict=True).org
        fields = org if isinstance(org, Mapping) else {}
        org_id = _text(fields.get("id"))
        org_slug = _text(fields.get("slg"))
        role = _text(fields.get("rol"))
        org_role = f"org:{role}" if role else None
        permissions = expand_permissions(org_features, fields.get("per"), fields.get("fpm"))
    elif version == 1 and _text(claims.get("org_id")):
        # v1: the organization claims are taken as they are (v2 ignores them, and v1 ignores "o").
        org_id = claims["org_id"]
        org_slug = _text(claims.get("org_slug"))
        org_role = _text(claims.get("org_role"))
        raw = claims.get("org_permissions")
        if isinstance(raw, list):
            permissions = frozenset(p for p in raw if isinstance(p, str))
    grants = Grants(
        user_id,
        org_id,
        org_role,
        permissions,
        # Outside the organization's part a malformed claim does not stop the auth object; Clerk's
        # has() then fails every plan (or feature) check against it.
        split_by_scope(claims.get("pla")),
        split_by_scope(claims.get("fea")),
        factor_verification_age(claims.get("fva")),
    )
    return Session(
        grants=grants,
        session_id=_text(claims.get("sid")),
        org_slug=org_slug,
        pending=claims.get("sts") == "pending",
        version=version,
    )


def split_by_scope(claim: Any, strict: bool = False) -> Scoped:
    """Clerk's ``splitByScope``: ``o:x`` org, ``u:x`` user, ``ou:x`` / ``uo:x`` both, other scopes dropped.

    A falsy claim is empty. A malformed one - a non-string, or an element without ``:`` once trimmed
    (an empty element too) - makes Clerk throw: with ``strict`` that is a :class:`ClaimError`;
    otherwise the claim matches nothing, as every check Clerk makes against it fails.
    """
    if not _js_truthy(claim):
        return Scoped()
    try:
        if not isinstance(claim, str):
            raise ClaimError("a plan or feature claim is not a string")
        org: list[str] = []
        user: list[str] = []
        for element in claim.split(","):
            part = element.strip(JS_WHITESPACE)
            scope, colon, value = part.partition(":")
            if not colon:
                raise ClaimError(f"invalid claim element (missing colon): {part[:40]!r}")
            if scope in ("o", "ou", "uo"):
                org.append(value)
            if scope in ("u", "ou", "uo"):
                user.append(value)
        return Scoped(tuple(org), tuple(user))
    except ClaimError:
        if strict:
            raise
        return Scoped()


def expand_permissions(org_features: Sequence[str], per: Any, fpm: Any) -> frozenset[str]:
    """Clerk's ``parsePermissions`` + ``buildOrgPermissions``: ``o.per`` names and ``o.fpm`` masks into
    ``org:<feature>:<permission>`` keys.

    ``fpm[i]`` is a bitmask over ``per`` for the i-th organization feature of ``fea`` (least significant
    bit = first name). A mask that is not ASCII decimal digits grants nothing for its feature (and keeps
    its place); bits past the end of ``per`` grant nothing. A non-string ``per`` or ``fpm`` makes Clerk
    throw (:class:`ClaimError`).
    """
    if not _js_truthy(per) or not _js_truthy(fpm):
        return frozenset()
    if not isinstance(per, str) or not isinstance(fpm, str):
        raise ClaimError("the permission claims (o.per, o.fpm) are not strings")
    names = [p.strip(JS_WHITESPACE) for p in per.split(",")]
    granted: set[str] = set()
    for feature, raw_mask in zip(org_features, fpm.split(","), strict=False):
        mask = _low_bits(raw_mask.strip(JS_WHITESPACE), len(names))
        for bit, name in enumerate(names):
            if mask >> bit & 1:
                granted.add(f"org:{feature}:{name}")
    return frozenset(granted)


def factor_verification_age(fva: Any) -> tuple[float, float] | None:
    """``fva``: minutes since the first and second factor were last verified (``-1``: that factor is not
    enabled), or ``None`` when the claim is absent or not of that shape (a reverification check fails)."""
    if not isinstance(fva, list) or len(fva) != 2:
        return None
    if not all(_is_number(v) and math.isfinite(v) and (v == -1 or v >= 0) for v in fva):
        return None
    return (float(fva[0]), float(fva[1]))


def _low_bits(digits: str, count: int) -> int:
    """The ``count`` low bits of a decimal mask, exactly at any length (Clerk decodes the string): a
    number's value modulo 2**k depends only on its last k decimal digits, since 10**k is a multiple of 2**k."""
    if not _ASCII_DIGITS.fullmatch(digits) or count == 0:
        return 0
    low = digits[-count:]
    value = 0
    for start in range(0, len(low), _CHUNK):  # Python refuses to read more than 4,300 digits at once
        chunk = low[start : start + _CHUNK]
        value = value * 10 ** len(chunk) + int(chunk)
    return value & ((1 << count) - 1)


_CHUNK = 4000


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value (an empty object or array is truthy)."""
    if value is None or value is False or value == "":
        return False
    if _is_number(value):
        return value != 0 and not math.isnan(value)
    return True


def _is_two(value: Any) -> bool:
    return _is_number(value) and value == 2


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
