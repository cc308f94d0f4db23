"""Session token verification: the happy path, every token attack, clock skew edges, PEM and JWKS keys.

Keys are generated per test session; nothing here is a real secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from paygate.infra.tokens import (
    JwksCache,
    KeyUnavailable,
    TokenError,
    TokenSettings,
    TokenVerifier,
    load_pem_key,
    parse_jwks,
)

ISSUER = "https://clerk.example.test"
PARTY = "https://app.example.test"
NOW_S = 1_760_000_000
NOW_MS = NOW_S * 1000


@pytest.fixture(scope="module")
def keypair() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public_pem


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims(**overrides) -> dict:
    base = {
        "iss": ISSUER,
        "sub": "user_1",
        "sid": "sess_1",
        "azp": PARTY,
        "iat": NOW_S - 10,
        "nbf": NOW_S - 15,
        "exp": NOW_S + 50,
        "v": 2,
        "pla": "u:pro",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(private, payload: dict, kid: str = "k1", **headers) -> str:
    return jwt.encode(payload, private, algorithm="RS256", headers={"kid": kid, **headers})


def pem_verifier(public_pem: str, **settings) -> TokenVerifier:
    options = {"issuer": ISSUER, "authorized_parties": (PARTY,), "pem_key": public_pem, **settings}
    return TokenVerifier(TokenSettings(**options))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_token_is_verified(keypair):
    private, public_pem = keypair
    verified = pem_verifier(public_pem).verify(sign(private, claims()), NOW_MS)
    assert verified["sub"] == "user_1" and verified["pla"] == "u:pro"


def test_one_line_escaped_pem_is_accepted(keypair):
    private, public_pem = keypair
    escaped = public_pem.strip().replace("\n", "\\n")
    assert pem_verifier(escaped).verify(sign(private, claims()), NOW_MS)["sub"] == "user_1"


# -- attacks ---------------------------------------------------------------------------------


def test_expired(keypair):
    private, public_pem = keypair
    with pytest.raises(TokenError, match="expired"):
        pem_verifier(public_pem).verify(sign(private, claims(exp=NOW_S - 60)), NOW_MS)


def test_not_yet_valid(keypair):
    private, public_pem = keypair
    with pytest.raises(TokenError, match="not valid yet"):
        pem_verifier(public_pem).verify(sign(private, claims(nbf=NOW_S + 60)), NOW_MS)


def test_issued_in_the_future(keypair):
    private, public_pem = keypair
    with pytest.raises(TokenError, match="future"):
        pem_verifier(public_pem).verify(sign(private, claims(iat=NOW_S + 60)), NOW_MS)


def test_wrong_issuer(keypair):
    private, public_pem = keypair
    with pytest.raises(TokenError, match="issuer"):
        pem_verifier(public_pem).verify(sign(private, claims(iss="https://evil.example.test")), NOW_MS)
    with pytest.raises(TokenError, match="issuer"):
        pem_verifier(public_pem).verify(sign(private, claims(iss=None)), NOW_MS)


def test_unlisted_authorized_party(keypair):
    private, public_pem = keypair
    with pytest.raises(TokenError, match="azp"):
        pem_verifier(public_pem).verify(sign(private, claims(azp="https://evil.example.test")), NOW_MS)


def test_a_missing_authorized_party_is_refused_once_parties_are_configured(keypair):
    # @clerk/backend 3.11.1 (assertAuthorizedPartiesClaim; its assertions.test.ts): with authorized parties
    # set, a token without azp, or with an empty one, is refused.
    private, public_pem = keypair
    for azp in (None, ""):
        with pytest.raises(TokenError, match="azp"):
            pem_verifier(public_pem).verify(sign(private, claims(azp=azp)), NOW_MS)
    # Without configured parties azp is not looked at (development).
    assert pem_verifier(public_pem, authorized_parties=()).verify(sign(private, claims(azp=None)), NOW_MS)


@pytest.mark.parametrize(
    ("cat", "accepted"),
    [
        (None, True),  # tokens minted before the categories
        ("cl_B7d4PD111AAA", True),  # a session token
        ("cl_I7d4PD111III", True),  # an instance that marks every token "ignore"
        ("cl_B7d4PD222AAA", False),  # a JWT template: its claims are whatever the template says
        ("cl_B7d4PD333AAA", False),  # machine to machine
        ("cl_unknown", False),
        ("", False),
    ],
)
def test_only_session_token_categories_are_accepted(keypair, cat, accepted):
    # @clerk/backend tokens/jwtCategories.ts and request.ts: a present cat other than session or
    # ignore is signed out (token-type-mismatch).
    private, public_pem = keypair
    headers = {} if cat is None else {"cat": cat}
    token = sign(private, claims(), **headers)
    if accepted:
        assert pem_verifier(public_pem).verify(token, NOW_MS)["sub"] == "user_1"
    else:
        with pytest.raises(TokenError, match="not a session token"):
            pem_verifier(public_pem).verify(token, NOW_MS)


def test_a_machine_subject_is_not_a_session(keypair):
    # @clerk/backend tokens/machine.ts isM2MJwt: a subject starting mch_ is a machine.
    private, public_pem = keypair
    with pytest.raises(TokenError, match="machine token"):
        pem_verifier(public_pem).verify(sign(private, claims(sub="mch_2x")), NOW_MS)


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_a_null_nbf_or_iat_is_refused(keypair, name):
    # @clerk/backend jwt/assertions.ts: only an absent nbf / iat is skipped; null is not a number.
    private, public_pem = keypair
    payload = {**claims(), name: None}
    with pytest.raises(TokenError, match=name):
        pem_verifier(public_pem).verify(sign(private, payload), NOW_MS)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
def test_times_must_be_finite(keypair, name):
    # JSON's 1e400 is infinity in Python: an exp that never expires.
    private, public_pem = keypair
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    body = json.dumps(claims()).replace(f'"{name}": ', f'"{name}": 1e400, "_{name}": ')
    payload = b64(body.encode())
    signing_input = f"{header}.{payload}".encode()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = b64(private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))
    with pytest.raises(TokenError, match="finite"):
        pem_verifier(public_pem).verify(f"{header}.{payload}.{signature}", NOW_MS)


@pytest.mark.parametrize(
    ("claim", "value", "accepted"),
    [
        ("exp", NOW_S - 4, True),  # inside the 5 s skew
        ("exp", NOW_S - 4.5, False),  # cut to whole seconds, as Clerk does: now - 5, expired
        ("exp", NOW_S - 5, False),  # exactly the skew: expired (<=)
        ("nbf", NOW_S + 5, True),  # exactly the skew: accepted
        ("nbf", NOW_S + 5.9, True),  # cut to now + 5
        ("nbf", NOW_S + 6, False),
    ],
)
def test_times_are_whole_seconds_with_clerks_skew_edges(keypair, claim, value, accepted):
    # @clerk/backend jwt/assertions.ts (and its tests): new Date(0).setUTCSeconds(x) drops the fraction.
    private, public_pem = keypair
    token = sign(private, claims(**{claim: value}))
    if accepted:
        assert pem_verifier(public_pem).verify(token, NOW_MS)
    else:
        with pytest.raises(TokenError):
            pem_verifier(public_pem).verify(token, NOW_MS)


def test_alg_none(keypair):
    _, public_pem = keypair
    token = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims()).encode())}."
    with pytest.raises(TokenError, match="algorithm"):
        pem_verifier(public_pem).verify(token, NOW_MS)


def test_hs256_signed_with_the_public_key(keypair):
    # The classic confusion attack: HMAC keyed with the (public) PEM text.
    _, public_pem = keypair
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims()).encode())}"
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError, match="algorithm"):
        pem_verifier(public_pem).verify(f"{signing_input}.{b64(mac)}", NOW_MS)


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256"])
def test_other_rsa_algorithms_are_refused(keypair, alg):
    private, public_pem = keypair
    token = jwt.encode(claims(), private, algorithm=alg)
    with pytest.raises(TokenError, match="algorithm"):
        pem_verifier(public_pem).verify(token, NOW_MS)


def test_tampered_payload(keypair):
    private, public_pem = keypair
    header, _, signature = sign(private, claims()).split(".")
    forged = b64(json.dumps(claims(pla="u:enterprise")).encode())
    with pytest.raises(TokenError, match="signature"):
        pem_verifier(public_pem).verify(f"{header}.{forged}.{signature}", NOW_MS)


def test_signed_by_another_key(keypair, other_key):
    _, public_pem = keypair
    with pytest.raises(TokenError, match="signature"):
        pem_verifier(public_pem).verify(sign(other_key, claims()), NOW_MS)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.???.###", "x" * 20_000],
)
def test_garbage(keypair, token):
    _, public_pem = keypair
    with pytest.raises(TokenError):
        pem_verifier(public_pem).verify(token, NOW_MS)


def test_wrong_typ(keypair):
    private, public_pem = keypair
    with pytest.raises(TokenError, match="typ"):
        pem_verifier(public_pem).verify(sign(private, claims(), typ="at+jwt"), NOW_MS)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"sub": None}, "subject"),
        ({"sub": 7}, "subject"),
        ({"exp": None}, "expiry"),
        ({"exp": "soon"}, "expiry"),
        ({"nbf": "now"}, "nbf"),
    ],
)
def test_malformed_claims(keypair, override, message):
    private, public_pem = keypair
    with pytest.raises(TokenError, match=message):
        pem_verifier(public_pem).verify(sign(private, claims(**override)), NOW_MS)


# -- clock skew edges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exp_offset_ms", "valid"),
    [(-5000, False), (-4999, True), (0, True), (1, True)],
)
def test_expiry_skew_edge(keypair, exp_offset_ms, valid):
    # Rejected when exp <= now - skew (Clerk's rule): with a 5 s skew, exactly 5 s late is too late.
    private, public_pem = keypair
    token = sign(private, claims(exp=NOW_S, iat=NOW_S - 30, nbf=NOW_S - 30))
    verifier = pem_verifier(public_pem, clock_skew_s=5)
    now = NOW_MS - exp_offset_ms
    if valid:
        assert verifier.verify(token, now)["sub"] == "user_1"
    else:
        with pytest.raises(TokenError, match="expired"):
            verifier.verify(token, now)


@pytest.mark.parametrize(("nbf_ahead_ms", "valid"), [(5000, True), (5001, False)])
def test_not_before_skew_edge(keypair, nbf_ahead_ms, valid):
    # Rejected when nbf > now + skew: a token up to 5 s "early" is accepted.
    private, public_pem = keypair
    token = sign(private, claims(nbf=NOW_S, iat=None, exp=NOW_S + 60))
    verifier = pem_verifier(public_pem, clock_skew_s=5)
    now = NOW_MS - nbf_ahead_ms
    if valid:
        assert verifier.verify(token, now)["sub"] == "user_1"
    else:
        with pytest.raises(TokenError, match="not valid yet"):
            verifier.verify(token, now)


def test_zero_skew(keypair):
    private, public_pem = keypair
    token = sign(private, claims(exp=NOW_S))
    with pytest.raises(TokenError, match="expired"):
        pem_verifier(public_pem, clock_skew_s=0).verify(token, NOW_MS)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"issuer": "", "pem_key": "x"}, "CLERK_ISSUER"),
        ({"issuer": ISSUER}, "neither CLERK_JWT_KEY nor CLERK_JWKS_URL"),
        ({"issuer": ISSUER, "jwks_url": "ftp://x"}, "http"),
        ({"issuer": ISSUER, "jwks_url": "https://x", "clock_skew_s": -1}, "SKEW"),
        ({"issuer": ISSUER, "pem_key": "not a key"}, "PEM"),
    ],
)
def test_unusable_configuration(settings, message):
    with pytest.raises(KeyUnavailable, match=message):
        TokenVerifier(TokenSettings(**settings))


def test_non_rsa_or_small_keys_are_refused():
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(KeyUnavailable, match="RSA"):
        load_pem_key(ec_pem)
    small = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(KeyUnavailable, match="2048"):
        load_pem_key(small)


# -- JWKS ------------------------------------------------------------------------------------


def jwk(private, kid: str, **extra) -> dict:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key())), "kid": kid, **extra}


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS that the test can change, counting requests."""

    def __init__(self) -> None:
        self.document: dict = {"keys": []}
        self.requests = 0
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps(outer.document).encode()
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def jwks_verifier(url: str) -> TokenVerifier:
    return TokenVerifier(TokenSettings(issuer=ISSUER, authorized_parties=(PARTY,), jwks_url=url))


def test_jwks_fetched_once_and_cached(keypair, jwks_server):
    private, _ = keypair
    jwks_server.document = {"keys": [jwk(private, "k1")]}
    verifier = jwks_verifier(jwks_server.url)
    for i in range(3):
        assert verifier.verify(sign(private, claims(), kid="k1"), NOW_MS + i)["sub"] == "user_1"
    assert jwks_server.requests == 1


def test_jwks_refreshed_on_an_unknown_kid_after_a_rotation(keypair, other_key, jwks_server):
    private, _ = keypair
    jwks_server.document = {"keys": [jwk(private, "k1")]}
    verifier = jwks_verifier(jwks_server.url)
    verifier.verify(sign(private, claims(), kid="k1"), NOW_MS)
    jwks_server.document = {"keys": [jwk(private, "k1"), jwk(other_key, "k2")]}
    later = NOW_MS + verifier.jwks.min_refresh_ms
    assert verifier.verify(sign(other_key, claims(), kid="k2"), later)["sub"] == "user_1"
    assert jwks_server.requests == 2


def test_unknown_kid_is_refused_and_refetches_are_rate_limited(keypair, jwks_server):
    private, _ = keypair
    jwks_server.document = {"keys": [jwk(private, "k1")]}
    verifier = jwks_verifier(jwks_server.url)
    verifier.verify(sign(private, claims(), kid="k1"), NOW_MS)
    for i in range(5):
        with pytest.raises(TokenError, match="kid"):
            verifier.verify(sign(private, claims(), kid=f"forged-{i}"), NOW_MS + 1 + i)
    assert jwks_server.requests == 1  # within the minimum refresh interval: no refetch


def test_token_without_kid_is_refused_in_jwks_mode(keypair, jwks_server):
    private, _ = keypair
    jwks_server.document = {"keys": [jwk(private, "k1")]}
    token = jwt.encode(claims(), private, algorithm="RS256")
    with pytest.raises(TokenError, match="kid"):
        jwks_verifier(jwks_server.url).verify(token, NOW_MS)


def test_jwks_outage_denies(keypair, jwks_server):
    private, _ = keypair
    jwks_server.status = 503
    with pytest.raises(KeyUnavailable, match="could not be fetched"):
        jwks_verifier(jwks_server.url).verify(sign(private, claims(), kid="k1"), NOW_MS)


def test_jwks_unreachable_denies(keypair):
    private, _ = keypair
    verifier = jwks_verifier("http://127.0.0.1:9/.well-known/jwks.json")
    with pytest.raises(KeyUnavailable):
        verifier.verify(sign(private, claims(), kid="k1"), NOW_MS)


def test_parse_jwks_keeps_only_rs256_signing_keys(keypair, other_key):
    private, _ = keypair
    document = {
        "keys": [
            jwk(private, "good"),
            jwk(other_key, "enc", use="enc"),
            jwk(other_key, "ps", alg="PS256"),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "AA", "e": "AQAB"},
            "junk",
        ]
    }
    assert set(parse_jwks(json.dumps(document).encode())) == {"good"}
    with pytest.raises(KeyUnavailable):
        parse_jwks(b"not json")
    with pytest.raises(KeyUnavailable):
        parse_jwks(b'{"nokeys": []}')


def test_jwks_cache_with_an_injected_fetch(keypair):
    private, _ = keypair
    calls = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return json.dumps({"keys": [jwk(private, "k1")]}).encode()

    cache = JwksCache("https://clerk.example.test/.well-known/jwks.json", fetch=fetch)
    verifier = TokenVerifier(TokenSettings(issuer=ISSUER, jwks_url=cache.url), jwks=cache)
    verifier.verify(sign(private, claims(), kid="k1"), NOW_MS)
    assert calls == [cache.url]


def test_a_failed_jwks_fetch_is_remembered_so_forged_kids_cannot_hammer_it(keypair):
    private, _ = keypair
    calls: list[int] = []
    up = {"now": False}

    def fetch(url: str) -> bytes:
        calls.append(1)
        if not up["now"]:
            raise TimeoutError("the JWKS does not answer")
        return json.dumps({"keys": [jwk(private, "k1")]}).encode()

    cache = JwksCache("https://clerk.example.test/.well-known/jwks.json", fetch=fetch, min_refresh_ms=30_000)
    verifier = TokenVerifier(TokenSettings(issuer=ISSUER, jwks_url=cache.url), jwks=cache)
    for i in range(20):  # a burst of tokens naming made-up kids while the JWKS is down
        with pytest.raises(KeyUnavailable):
            verifier.verify(sign(private, claims(), kid=f"forged-{i}"), NOW_MS + i)
    assert len(calls) == 1
    up["now"] = True
    with pytest.raises(KeyUnavailable):  # still inside the interval: no new fetch yet
        verifier.verify(sign(private, claims(), kid="k1"), NOW_MS + 29_999)
    assert verifier.verify(sign(private, claims(), kid="k1"), NOW_MS + 30_000)["sub"] == "user_1"
    assert len(calls) == 2


def test_an_integer_time_too_large_for_a_float_is_read_without_crashing(keypair):
    private, public_pem = keypair
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    body = json.dumps(claims()).replace('"iat": ', '"iat": 1' + "0" * 400 + ', "_iat": ')
    payload = b64(body.encode())
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = b64(private.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()))
    with pytest.raises(TokenError, match="issued in the future"):
        pem_verifier(public_pem).verify(f"{header}.{payload}.{signature}", NOW_MS)
