"""The per-container cache of verified tokens: it repeats only answers the verifier gave, inside the
window the verifier would give them again, keyed by the token's exact text, and it stays bounded."""

from __future__ import annotations

import json

import pytest

from paygate.infra.tokens import JwksCache, KeyUnavailable, TokenError, TokenVerifier, VerifiedTokens
from paygate.providers.clerk_session import ClaimError, session_from_claims
from paygate.settings import TokenSettings
from tests.unit.test_tokens import (
    ISSUER,
    NOW_MS,
    NOW_S,
    PARTY,
    b64,
    claims,
    jwk,
    keypair,
    other_key,
    pem_verifier,
    sign,
)

__all__ = ["keypair", "other_key"]  # fixtures used below

SKEW_MS = 5_000
JWKS_URL = "https://clerk.example.test/.well-known/jwks.json"


def cache(public_pem: str, **options) -> VerifiedTokens:
    return VerifiedTokens(pem_verifier(public_pem), session_from_claims, **options)


def test_a_token_seen_before_is_not_verified_again(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem)
    token = sign(private, claims())
    first = tokens.get(token, NOW_MS)
    assert tokens.get(token, NOW_MS + 1_000) is first
    assert tokens.verifications == 1 and first.user_id == "user_1"


def test_a_different_token_string_misses(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem)
    token = sign(private, claims())
    tokens.get(token, NOW_MS)
    # The same claims signed again (PKCS#1 v1.5 is deterministic, so change one claim) is another entry.
    tokens.get(sign(private, claims(sid="sess_2")), NOW_MS)
    assert tokens.verifications == 2


def test_a_token_with_its_signature_altered_is_verified_and_refused(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem)
    token = sign(private, claims())
    tokens.get(token, NOW_MS)
    head, payload, signature = token.split(".")
    altered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(TokenError, match="signature"):
        tokens.get(altered, NOW_MS)
    forged = f"{head}.{b64(b'{}')}.{signature}"
    with pytest.raises(TokenError):
        tokens.get(forged, NOW_MS)


def test_never_used_past_exp(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem)
    token = sign(private, claims(exp=NOW_S + 50))
    tokens.get(token, NOW_MS)
    tokens.get(token, NOW_S * 1000 + 49_999)
    assert tokens.verifications == 1
    # At exp the cache steps aside; the verifier itself still accepts the token for the skew ...
    tokens.get(token, NOW_S * 1000 + 50_000)
    assert tokens.verifications == 2
    # ... and refuses it after.
    with pytest.raises(TokenError, match="expired"):
        tokens.get(token, NOW_S * 1000 + 50_000 + SKEW_MS)
    assert len(tokens) == 0


def test_never_used_before_nbf_or_iat(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem)
    token = sign(private, claims(nbf=NOW_S, iat=NOW_S + 2))
    tokens.get(token, NOW_MS)  # iat is 2 s ahead, inside the 5 s skew: accepted
    tokens.get(token, NOW_MS - 3_000)  # iat - skew: still what the verifier would accept
    assert tokens.verifications == 1
    with pytest.raises(TokenError, match="future"):
        tokens.get(token, NOW_MS - 3_001)  # a clock that went back: verified afresh, and refused


def test_refusals_are_never_kept(keypair, other_key):
    private, public_pem = keypair
    tokens = cache(public_pem)
    for token in (sign(other_key, claims()), sign(private, claims(exp=NOW_S - 60)), "not.a.token"):
        for _ in range(2):
            with pytest.raises(TokenError):
                tokens.get(token, NOW_MS)
    assert tokens.verifications == 6 and len(tokens) == 0


def test_claims_the_reader_refuses_are_never_kept(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem)
    # v2 with an active organization and a malformed fea: Clerk builds no auth object.
    token = sign(private, claims(o={"id": "org_1", "rol": "admin"}, fea=7))
    for _ in range(2):
        with pytest.raises(ClaimError):
            tokens.get(token, NOW_MS)
    assert tokens.verifications == 2 and len(tokens) == 0


def test_the_cache_is_bounded_and_drops_the_oldest(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem, size=3)
    signed = [sign(private, claims(sid=f"sess_{i}")) for i in range(4)]
    for token in signed:
        tokens.get(token, NOW_MS)
    assert len(tokens) == 3
    tokens.get(signed[0], NOW_MS)  # dropped first: verified again
    tokens.get(signed[3], NOW_MS)  # still kept
    assert tokens.verifications == 5 and len(tokens) == 3


def test_size_zero_keeps_nothing(keypair):
    private, public_pem = keypair
    tokens = cache(public_pem, size=0)
    token = sign(private, claims())
    tokens.get(token, NOW_MS)
    tokens.get(token, NOW_MS)
    assert tokens.verifications == 2 and len(tokens) == 0


def test_a_token_whose_jwks_key_was_removed_is_verified_again_and_refused(keypair, other_key):
    private, _ = keypair
    document = {"keys": [jwk(private, "k1")]}
    tokens = jwks_tokens(lambda _: json.dumps(document).encode())
    old = sign(private, claims(), kid="k1")
    tokens.get(old, NOW_MS)
    tokens.get(old, NOW_MS + 1_000)
    assert tokens.verifications == 1
    # The instance rotates: k1 is removed. A token naming the new key makes the JWKS be fetched again.
    document["keys"] = [jwk(other_key, "k2")]
    tokens.get(sign(other_key, claims(), kid="k2"), NOW_MS + 40_000)
    with pytest.raises(TokenError, match="kid"):
        tokens.get(old, NOW_MS + 41_000)


def test_a_cached_token_survives_a_refetch_only_while_its_key_object_is_current(keypair):
    """A refetch builds new key objects: entries verified with the old ones are verified again (safe,
    and rare: a refetch happens only for an unknown kid, at most every 30 s)."""
    private, _ = keypair
    document = {"keys": [jwk(private, "k1")]}
    tokens = jwks_tokens(lambda _: json.dumps(document).encode())
    token = sign(private, claims(), kid="k1")
    tokens.get(token, NOW_MS)
    with pytest.raises(TokenError, match="kid"):
        tokens.get(sign(private, claims(), kid="unknown"), NOW_MS + 40_000)  # refetch
    tokens.get(token, NOW_MS + 41_000)
    assert tokens.verifications == 3


def test_a_jwks_outage_never_turns_into_an_allow_for_new_tokens(keypair):
    private, _ = keypair

    def down(_: str) -> bytes:
        raise OSError("down")

    tokens = jwks_tokens(down)
    with pytest.raises(KeyUnavailable):
        tokens.get(sign(private, claims(), kid="k1"), NOW_MS)
    assert len(tokens) == 0


def jwks_tokens(fetch) -> VerifiedTokens:
    settings = TokenSettings(issuer=ISSUER, authorized_parties=(PARTY,), jwks_url=JWKS_URL)
    return VerifiedTokens(TokenVerifier(settings, jwks=JwksCache(JWKS_URL, fetch=fetch)), session_from_claims)


@pytest.mark.parametrize("segment", ["a+b", "ab/c", "abc=", "ab=c", "a b", "é"])
def test_token_segments_are_strict_unpadded_base64url(keypair, segment):
    private, public_pem = keypair
    head, payload, signature = sign(private, claims()).split(".")
    with pytest.raises(TokenError):
        pem_verifier(public_pem).verify(f"{head}.{payload}.{segment}", NOW_MS)
    with pytest.raises(TokenError):
        pem_verifier(public_pem).verify(f"{head}.{segment}.{signature}", NOW_MS)
