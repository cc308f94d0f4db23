"""Clerk session token verification: RS256 only, a PEM key or a cached JWKS.

The checks follow Clerk's ``verifyJwt`` (docs/reference/clerk-session-tokens.md §3), stricter where
paygate can be: only ``RS256`` (``none``, HMAC and every other algorithm are refused before a key is
looked at), ``iss`` pinned to the configured issuer, ``azp`` checked against an allow-list. Times
are checked against ``now_ms`` with a small clock skew, so the checks are testable.

Error messages say what was wrong; they never contain the token.

A JWS with one fixed algorithm is small enough to check directly with ``cryptography``: strict
base64url, the header's ``alg`` pinned, then one RSASSA-PKCS1-v1_5 SHA-256 verification. This is
the authorizer's hot path, where a general JWT library's generic checks cost several times the
signature itself (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from paygate.settings import TokenSettings

__all__ = ["JwksCache", "KeyUnavailable", "TokenError", "TokenSettings", "TokenVerifier", "parse_jwks"]

ALGORITHM = "RS256"
#: Clerk's JWT categories (header ``cat``) that are session tokens: a session, and "ignore" for instances
#: that mark every token so. A token without ``cat`` predates the categories and is a session token.
SESSION_CATEGORIES = frozenset({"cl_B7d4PD111AAA", "cl_I7d4PD111III"})
#: Clerk's machine-to-machine tokens have a machine as subject.
MACHINE_SUBJECT_PREFIX = "mch_"
#: Clerk tokens are well under 4 KB; refuse anything absurd before parsing it.
MAX_TOKEN_BYTES = 16 * 1024
#: A JWKS is refetched for an unknown ``kid`` at most this often, so forged kids cannot hammer it.
JWKS_MIN_REFRESH_MS = 30_000
JWKS_TIMEOUT_SECONDS = 3
_MAX_JWKS_BYTES = 512 * 1024
_MIN_RSA_BITS = 2048
#: Unpadded base64url (RFC 7515 §2): anything else in a segment is a malformed token.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_MAX_CACHED_HEADERS = 64
_PKCS1V15 = PKCS1v15()
_SHA256 = SHA256()


class TokenError(Exception):
    """The token is not a valid session token of this instance; ``reason`` is safe to log and return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyUnavailable(TokenError):
    """The signing keys could not be obtained (JWKS down, bad configuration): deny, and say so."""


def load_pem_key(pem: str) -> RSAPublicKey:
    """An RSA public key from PEM; accepts the ``\\n``-escaped one-line form environment variables often hold."""
    text = pem.strip().replace("\\n", "\n")
    try:
        key = load_pem_public_key(text.encode())
    except ValueError:
        raise KeyUnavailable("CLERK_JWT_KEY is not a PEM public key") from None
    if not isinstance(key, RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
        raise KeyUnavailable(f"CLERK_JWT_KEY must be an RSA public key of at least {_MIN_RSA_BITS} bits")
    return key


def fetch_url(url: str) -> bytes:
    """GET ``url`` with a short timeout (urllib: no extra dependency in the layer)."""
    if not url.startswith(("https://", "http://")):
        raise KeyUnavailable("the JWKS URL must be http(s)")
    import urllib.request  # here, not at the top: with a PEM key it is never needed (~70 ms of cold start)

    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "paygate"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked
        return response.read(_MAX_JWKS_BYTES + 1)


class JwksCache:
    """The keys of a JWKS URL, fetched on first use and again only when a token names an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        fetch: Callable[[str], bytes] = fetch_url,
        min_refresh_ms: int = JWKS_MIN_REFRESH_MS,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self.min_refresh_ms = min_refresh_ms
        self.keys: dict[str, RSAPublicKey] = {}
        self.fetched_at_ms: int | None = None
        #: When the last fetch failed (cleared by a successful one).
        self.failed_at_ms: int | None = None
        self.fetches = 0

    def key(self, kid: str, now_ms: int) -> RSAPublicKey:
        if kid not in self.keys and self._may_refresh(now_ms):
            self._refresh(now_ms)
        try:
            return self.keys[kid]
        except KeyError:
            if self.failed_at_ms is not None and not self.keys:
                raise KeyUnavailable("the JWKS could not be fetched recently; retrying later") from None
            raise TokenError("the token's key id (kid) is not in the JWKS") from None

    def _may_refresh(self, now_ms: int) -> bool:
        # A failed fetch counts as an attempt too: while the JWKS is down, forged kids cannot make every
        # request wait for a fetch that times out.
        last = max((t for t in (self.fetched_at_ms, self.failed_at_ms) if t is not None), default=None)
        return last is None or now_ms - last >= self.min_refresh_ms

    def _refresh(self, now_ms: int) -> None:
        self.fetches += 1
        try:
            raw = self._fetch(self.url)
            if len(raw) > _MAX_JWKS_BYTES:
                raise KeyUnavailable("the JWKS is too large")
            keys = parse_jwks(raw)
        except KeyUnavailable:
            self.failed_at_ms = now_ms
            raise
        except Exception as exc:  # noqa: BLE001 - any network fault is the same to the caller: no keys
            self.failed_at_ms = now_ms
            raise KeyUnavailable(f"the JWKS could not be fetched ({type(exc).__name__})") from None
        self.keys, self.fetched_at_ms, self.failed_at_ms = keys, now_ms, None


def parse_jwks(raw: bytes) -> dict[str, RSAPublicKey]:
    """The RS256 signing keys of a JWKS document, by ``kid``; other keys are skipped."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyUnavailable("the JWKS is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise KeyUnavailable("the JWKS has no 'keys' list")
    keys: dict[str, RSAPublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            key = RSAPublicNumbers(_jwk_int(entry, "e"), _jwk_int(entry, "n")).public_key()
        except (ValueError, TypeError):
            continue
        if key.key_size >= _MIN_RSA_BITS:
            keys[entry["kid"]] = key
    return keys


def _jwk_int(entry: Mapping[str, Any], name: str) -> int:
    """A JWK's unsigned big-endian base64url integer (``n``, ``e``)."""
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the JWK has no {name!r}")
    return int.from_bytes(_b64decode(value), "big")


def _b64decode(segment: str) -> bytes:
    """Strict unpadded base64url; ``ValueError`` for anything else."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity would slip through numeric time checks


_JSON = json.JSONDecoder(parse_constant=_no_constant)


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = _JSON.decode(_b64decode(segment).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise TokenError(f"the token {what} cannot be decoded") from None
    if not isinstance(value, dict):
        raise TokenError(f"the token {what} is not a JSON object")
    return value


class TokenVerifier:
    """Verifies Clerk session tokens against one instance's key(s) and claims."""

    def __init__(self, settings: TokenSettings, jwks: JwksCache | None = None) -> None:
        problems = settings.problems()
        if problems:
            raise KeyUnavailable("; ".join(problems))
        self.settings = settings
        self._pem = load_pem_key(settings.pem_key) if settings.pem_key else None
        self.jwks = None if self._pem else (jwks or JwksCache(settings.jwks_url or ""))
        self._headers: dict[str, dict[str, Any]] = {}

    def verify(self, token: str, now_ms: int) -> dict[str, Any]:
        """The verified claims, or :class:`TokenError` saying what is wrong."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise TokenError("the token is empty or too long")
        if token.count(".") != 2:
            raise TokenError("the token is not a JWT (three dot-separated parts)")
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = self._header(header_b64)
        if "typ" in header and header["typ"] != "JWT":
            raise TokenError("the token type (typ) is not JWT")
        alg = header.get("alg")
        if alg != ALGORITHM:
            # Before any key is touched: no 'none', no HS256 keyed with the public key, no surprises.
            raise TokenError(f"the token algorithm {str(alg)[:16]!r} is not accepted (only {ALGORITHM})")
        if "crit" in header:
            # RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
            raise TokenError("the token header has critical extensions (crit)")
        if "cat" in header and header["cat"] not in SESSION_CATEGORIES:
            # Clerk signs JWT templates and machine tokens with the same key; its SDK refuses them as
            # sessions (a template carries whatever claims it was given, and outlives the session).
            raise TokenError("the token is not a session token (its category, cat, is another kind)")
        key = self._key(header, now_ms)
        try:
            signature = _b64decode(signature_b64)
            key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"), _PKCS1V15, _SHA256)
        except (ValueError, InvalidSignature):
            raise TokenError("the token signature is invalid") from None
        # Only now, with the signature checked, is the payload read.
        claims = _json_object(payload_b64, "payload")
        self._check_claims(claims, now_ms)
        return claims

    def _header(self, header_b64: str) -> dict[str, Any]:
        """The decoded header. An instance signs every token with the same few headers, so the
        decoded form is kept by its exact text (a copy is returned: callers cannot alter the cache)."""
        header = self._headers.get(header_b64)
        if header is None:
            header = _json_object(header_b64, "header")
            if len(self._headers) >= _MAX_CACHED_HEADERS:
                self._headers.clear()
            self._headers[header_b64] = header
        return dict(header)

    def _key(self, header: Mapping[str, Any], now_ms: int) -> RSAPublicKey:
        if self._pem is not None:
            return self._pem
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("the token names no key id (kid)")
        return self.jwks.key(kid, now_ms)  # type: ignore[union-attr]

    def _check_claims(self, claims: Mapping[str, Any], now_ms: int) -> None:
        skew_ms = self.settings.clock_skew_s * 1000
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("the token has no subject (sub)")
        if sub.startswith(MACHINE_SUBJECT_PREFIX):
            raise TokenError("the token is a machine token, not a session token")
        exp = claims.get("exp")
        if not _is_time(exp):
            raise TokenError("the token has no finite numeric expiry (exp)")
        # As Clerk's SDK: times are whole seconds (a fraction is cut off), with the skew on both sides.
        if math.trunc(exp) * 1000 <= now_ms - skew_ms:
            raise TokenError("the token has expired")
        for name in ("nbf", "iat"):
            if name not in claims:
                continue
            value = claims[name]
            if not _is_time(value):  # null too: present, but not a time
                raise TokenError(f"the token's {name} is not a finite number")
            if math.trunc(value) * 1000 > now_ms + skew_ms:
                raise TokenError(
                    "the token is not valid yet" if name == "nbf" else "the token was issued in the future"
                )
        if claims.get("iss") != self.settings.issuer:
            raise TokenError("the token issuer (iss) is not the configured issuer")
        if self.settings.authorized_parties:
            # As Clerk's SDK (since @clerk/backend 3.11.1): once parties are configured, azp must be one.
            azp = claims.get("azp")
            if not isinstance(azp, str) or azp not in self.settings.authorized_parties:
                raise TokenError("the token's authorized party (azp) is missing or not allowed")


def _is_time(value: Any) -> bool:
    """A JSON number that is a time: finite (``1e400`` parses to infinity and would never expire)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
