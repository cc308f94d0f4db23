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

A Clerk session token lives about a minute and comes with every request of that minute:
:class:`VerifiedTokens` keeps what each verified token yielded, by its exact text, for as long as a
fresh verification would still accept it (never past its ``exp``, nor past its JWKS key's removal).
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from paygate.settings import TokenSettings, is_secure_url

__all__ = [
    "JwksCache",
    "KeyUnavailable",
    "TokenError",
    "TokenSettings",
    "TokenVerifier",
    "VerifiedTokens",
    "parse_jwks",
]

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
_MAX_CACHED_HEADERS = 64
#: Verified tokens kept per container. A token lives about a minute, so this covers the callers of a
#: busy container's last minute; past it the oldest entry is dropped (a miss only costs a verification).
MAX_CACHED_TOKENS = 1024
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
    if not is_secure_url(url):
        raise KeyUnavailable("the JWKS URL must be https:// (http:// only to this machine)")
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
    """Strict unpadded base64url; ``ValueError`` for anything else.

    The URL-safe alphabet is mapped onto the standard one, and ``+``, ``/`` and ``=`` onto a byte no
    alphabet has, so binascii's strict mode refuses every character base64url does not allow.
    """
    data = segment.encode("ascii").translate(_URLSAFE_TO_STANDARD)
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except binascii.Error:
        raise ValueError("not base64url") from None


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")


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
        return self.verify_with_key(token, now_ms)[0]

    def verify_with_key(self, token: str, now_ms: int) -> tuple[dict[str, Any], RSAPublicKey]:
        """The verified claims and the key that verified them (see :meth:`key_is_current`)."""
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
        return claims, key

    def key_is_current(self, key: RSAPublicKey) -> bool:
        """Whether ``key`` still verifies tokens: always for the PEM key; for a JWKS, while the last
        fetch still holds this very key object (a refetch that drops or replaces it ends its tokens)."""
        if self._pem is not None:
            return key is self._pem
        return any(k is key for k in self.jwks.keys.values())  # type: ignore[union-attr]

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


class VerifiedTokens[T]:
    """``read(claims)`` of each verified token, kept by the token's exact text while it stays valid.

    An entry is used only inside the window in which :meth:`TokenVerifier.verify` would accept the
    token again (from its ``nbf`` / ``iat`` less the skew to its ``exp``, never the skew past it),
    and while the key that verified it is current. Only successes are kept: a token that fails
    verification, or whose claims ``read`` refuses, is verified afresh every time, so the cache can
    only repeat an answer the verifier gave; it never turns a refusal into an acceptance. At most
    ``size`` entries, the oldest dropped first.
    """

    def __init__(self, verifier: TokenVerifier, read: Callable[[dict[str, Any]], T], size: int = MAX_CACHED_TOKENS):
        self.verifier = verifier
        self._read = read
        self.size = size
        #: token -> (what read() made of its claims, usable from (ms), usable until (ms, excluded), key)
        self._entries: dict[str, tuple[T, int, int, RSAPublicKey]] = {}
        #: Verifications made (cache misses), for tests and the benchmarks.
        self.verifications = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now_ms: int) -> T:
        """``read`` of the token's verified claims; raises what the verifier or ``read`` raise."""
        entry = self._entries.get(token)
        if entry is not None:
            value, usable_from, usable_until, key = entry
            if usable_from <= now_ms < usable_until and self.verifier.key_is_current(key):
                return value
            self._entries.pop(token, None)
        self.verifications += 1
        claims, key = self.verifier.verify_with_key(token, now_ms)
        value = self._read(claims)
        self._remember(token, value, claims, key, now_ms)
        return value

    def _remember(self, token: str, value: T, claims: Mapping[str, Any], key: RSAPublicKey, now_ms: int) -> None:
        skew_ms = self.verifier.settings.clock_skew_s * 1000
        # The verifier accepted these as finite numbers (exp required, nbf / iat optional).
        usable_until = math.trunc(claims["exp"]) * 1000
        usable_from = max((math.trunc(claims[n]) * 1000 - skew_ms for n in ("nbf", "iat") if n in claims), default=0)
        if self.size <= 0 or not usable_from <= now_ms < usable_until:
            return
        while len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[token] = (value, usable_from, usable_until, key)
