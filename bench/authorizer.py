"""Authorizer decision, warm, in-process, through the real Lambda handler.

The handler is the function's own ``app.handler`` (loaded as Lambda loads it), called directly with
an API Gateway payload 2.0 REQUEST event shaped like a browser's request and a Lambda context, at
the template's log level; its decision line is written and flushed to /dev/null.

* **claims path, new token**: each sample is a token the container has not seen (all different).
* **claims path, token seen before**: the same token again, as a session token's minute of requests.
* **store path**: the token carries no plan; the user's items are read from DynamoDB Local (the
  per-container read cache is off, so every decision reads).

Baselines, timed in pairs with our figure (``bench.timing.paired``):

* **one RS256 verification** of the same token with ``cryptography`` (signature and signing input
  already split): the floor any verifier pays.
* **clerk-backend-api** (Clerk's Python SDK): ``authenticate_request``'s steps with the PEM key
  loaded once, then the same gate check on its payload. The SDK's ``authenticate_request`` passes
  its ``jwt_key`` string to PyJWT, which parses the PEM on every call; the baseline calls the same
  SDK functions in the same order (``_get_session_token``, ``get_token_type``,
  ``_build_verify_token_options``, ``_decode_token``, ``_process_payload``, ``RequestState``) with the
  loaded key instead, so it is not slowed by a parse a careful user would avoid. The SDK as shipped
  is reported too.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bench.instrument import DynamoDBMeter, instrumented_dynamodb_clients
from bench.report import Figure, Section, Series
from bench.timing import paired, progress, sink, timed
from paygate_dev.apigw import LambdaContext, http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import invoke, load_handler
from paygate_dev.local_env import new_key_pair
from paygate_dev.signing import new_secret, signed_headers
from paygate_dev.template import functions

ISSUER = "https://clerk.bench.example"
PARTY = "https://app.bench.example"
ROUTE = "GET /pro/dashboard"
#: The user of the Clerk samples, who holds an active ``pro`` item in ``subscription.active.json``.
USER = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"


@dataclass
class AuthorizerFigures:
    """What the cost model needs (CPU medians on this machine, ms)."""

    new_token_cpu_ms: float
    seen_token_cpu_ms: float
    store_cpu_ms: float
    #: Characters the handler writes per decision (its one decision line).
    log_chars: float
    store_requests: float
    #: Response bytes of the store path's one read (for read units).
    store_read_bytes: float
    extra: dict[str, float] = field(default_factory=dict)


def authorizer_event(route_key: str, token: str) -> dict[str, Any]:
    """API Gateway's REQUEST authorizer event (payload 2.0) for a browser's call with a bearer token."""
    method, _, path = route_key.partition(" ")
    headers = {
        "accept": "application/json",
        "accept-encoding": "gzip, deflate, br",
        "accept-language": "en-US,en;q=0.9",
        "authorization": f"Bearer {token}",
        "content-length": "0",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "origin": PARTY,
        "referer": f"{PARTY}/",
        "user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
        "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    request = http_event(method, path, route_key=route_key, headers=headers)
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:us-east-1:123456789012:abc123/$default/{method}{path}",
        "identitySource": [headers["authorization"], route_key],
        **{k: request[k] for k in ("routeKey", "rawPath", "rawQueryString", "headers", "requestContext")},
    }


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _mint(private: str, public: str, plans: list[str], count: int, user: str = USER) -> list[str]:
    """``count`` different session tokens, as ``paygate_dev.token`` mints them, with the key loaded once."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from paygate_dev.token import key_id, session_claims

    key, headers = load_pem_private_key(private.encode(), password=None), {"kid": key_id(public)}
    now_s = int(time.time())
    return [
        jwt.encode(
            session_claims(
                user, plans=plans, now_s=now_s, ttl_s=3600, issuer=ISSUER, authorized_party=PARTY, extra={"n": n}
            ),
            key,
            algorithm="RS256",
            headers=headers,
        )
        for n in range(count)
    ]


def _clerk_baselines(public: str, gate: Any) -> tuple[Any, Any]:
    """(key loaded once, as shipped): each ``(token) -> allowed`` through clerk-backend-api."""
    from clerk_backend_api.security import authenticate_request, verifytoken
    from clerk_backend_api.security import authenticaterequest as sdk
    from clerk_backend_api.security.types import AuthenticateRequestOptions, AuthStatus, RequestState

    from paygate.providers.clerk_session import session_from_claims

    options = AuthenticateRequestOptions(jwt_key=public, authorized_parties=[PARTY])
    key = load_pem_public_key(public.encode())

    class Request:
        def __init__(self, token: str) -> None:
            self.headers = {"Authorization": f"Bearer {token}"}

    def loaded_once(token: str) -> bool:
        request = Request(token)
        session_token = sdk._get_session_token(request)
        if not (sdk.get_token_type(session_token).value in options.accepts_token or "any" in options.accepts_token):
            return False
        verify_options = sdk._build_verify_token_options(options, session_token)
        verifytoken.get_token_type(session_token)
        payload = verifytoken._decode_token(session_token, key, verify_options)
        sdk._process_payload(payload)
        state = RequestState(status=AuthStatus.SIGNED_IN, token=session_token, payload=payload)
        return state.is_signed_in and gate.allows(session_from_claims(state.payload).grants)

    def as_shipped(token: str) -> bool:
        state = authenticate_request(Request(token), options)
        return state.is_signed_in and gate.allows(session_from_claims(state.payload).grants)

    return loaded_once, as_shipped


def run(ddb: DynamoDBLocal, samples: int, log_level: str) -> tuple[Section, AuthorizerFigures]:
    import os

    from paygate.infra.catalog_file import load_catalog

    private, public = new_key_pair()
    table = f"paygate-bench-{uuid.uuid4().hex[:8]}"
    ddb.create_table(table)
    env = {
        "TABLE_NAME": table,
        "AWS_ENDPOINT_URL_DYNAMODB": ddb.endpoint,
        "CLERK_JWT_KEY": public,
        "CLERK_ISSUER": ISSUER,
        "CLERK_AUTHORIZED_PARTIES": PARTY,
        "PAYGATE_STORE_CACHE_SECONDS": "0",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "WEBHOOK_SECRET": new_secret(),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    meter = DynamoDBMeter()
    progress(f"authorizer: minting {2 * samples + 2} tokens")
    fresh = _mint(private, public, ["pro"], samples)  # paired with the RS256 floor
    fresh_for_clerk = _mint(private, public, ["pro"], samples)  # paired with Clerk's SDK
    without_plan, seen = _mint(private, public, [], 1)[0], _mint(private, public, ["pro"], 1)[0]
    gate = load_catalog().routes[ROUTE]
    clerk_once, clerk_shipped = _clerk_baselines(public, gate)
    public_key = load_pem_public_key(public.encode())
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    split = {t: (_b64(t.rsplit(".", 1)[1]), t.rsplit(".", 1)[0].encode()) for t in [*fresh, seen]}

    def rs256(token: str) -> None:
        signature, signing_input = split[token]
        public_key.verify(signature, signing_input, pkcs1, sha256)

    try:
        with instrumented_dynamodb_clients(meter.attach):
            body = (events_dir() / "clerk" / "subscription.active.json").read_text()
            applied = invoke(
                "ClerkSubscriptionsFunction",
                http_event("POST", "/webhook", body=body, headers=signed_headers(env["WEBHOOK_SECRET"], body)),
            )
            assert applied["statusCode"] == 200, applied
            handler = load_handler(functions()["AuthorizerFunction"])
            context = LambdaContext(function_name="AuthorizerFunction")
            new_events = [authorizer_event(ROUTE, t) for t in fresh]
            clerk_events = [authorizer_event(ROUTE, t) for t in fresh_for_clerk]
            seen_event = authorizer_event(ROUTE, seen)
            store_event = authorizer_event(ROUTE, without_plan)
            assert handler(seen_event, context)["context"]["source"] == "token"
            assert handler(store_event, context)["context"]["source"] == "store"
            assert clerk_once(seen) and clerk_shipped(seen), "the baselines must reach the same decision"
            sink().take()
            line_chars, _ = (handler(seen_event, context), sink().take())[1]

            progress(f"authorizer: {samples} paired samples per figure")
            new_wall, new_cpu, floor_new = paired(
                lambda i: handler(new_events[i], context), lambda i: rs256(fresh[i]), samples, warmup=0
            )
            seen_wall, seen_cpu, floor_seen = paired(
                lambda i: handler(seen_event, context), lambda i: rs256(seen), samples
            )
            new_vs_clerk, _, clerk_new = paired(
                lambda i: handler(clerk_events[i], context), lambda i: clerk_once(fresh_for_clerk[i]), samples, 0
            )
            seen_vs_clerk, _, clerk_seen = paired(
                lambda i: handler(seen_event, context), lambda i: clerk_once(seen), samples
            )
            shipped, _, once = paired(lambda i: clerk_shipped(fresh[i]), lambda i: clerk_once(fresh[i]), samples)
            store_samples = min(samples, 1000)
            meter.take()
            store_wall, store_cpu, clerk_store = paired(
                lambda i: handler(store_event, context), lambda i: clerk_once(seen), store_samples
            )
            store_requests = meter.take()
            store_calls = store_samples + min(50, store_samples)  # with the warm-up
            breakdown = _breakdown(seen_event, context)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        ddb.client().delete_table(TableName=table)

    ms = "ms"
    floor = Series.of("one RS256 verification (cryptography)", floor_new, ms)
    floor_s = Series.of("one RS256 verification (cryptography)", floor_seen, ms)
    clerk = Series.of("clerk-backend-api, key loaded once, + same gate check", clerk_new, ms)
    clerk_s = Series.of("clerk-backend-api, key loaded once, + same gate check", clerk_seen, ms)
    new = Series.of("claims path, new token", new_wall, ms)
    seen_series = Series.of("claims path, token seen before", seen_wall, ms)
    section = Section(
        "Authorizer decision (warm, in-process)",
        f"{samples} samples per figure through the function's own handler (`{ROUTE}`, gate "
        f"`any = [plan pro, plan org:team]`, log level {log_level} as in template.yaml, one decision line "
        f"of {line_chars} characters written and flushed per decision), each sample paired with one call of "
        "its baseline so both see the same load.",
    )
    section.add(
        Figure(
            "claims path, new token, whole handler vs one RS256 verification",
            new,
            floor,
            "<= 1.5x",
            met=new.median <= 1.5 * floor.median,
            note="every sample a token the container has not seen: verification, claims, gate, decision line",
        )
    )
    section.add(
        Figure(
            "claims path, token seen before, whole handler vs one RS256 verification",
            seen_series,
            floor_s,
            "<= 0.3x",
            met=seen_series.median <= 0.3 * floor_s.median,
            note="the session and its claims-only allow kept by the token's exact text; the decision line still runs",
        )
    )
    section.add(
        Figure(
            "claims path, new token vs clerk-backend-api",
            Series.of("claims path, new token", new_vs_clerk, ms),
            clerk,
            ">= 3x faster (ratio <= 0.33x)",
            met=median_of(new_vs_clerk) * 3 <= clerk.median,
        )
    )
    section.add(
        Figure(
            "claims path, token seen before vs clerk-backend-api",
            Series.of("claims path, token seen before", seen_vs_clerk, ms),
            clerk_s,
            ">= 3x faster (ratio <= 0.33x)",
            met=median_of(seen_vs_clerk) * 3 <= clerk_s.median,
        )
    )
    section.add(
        Figure(
            "clerk-backend-api as shipped vs with its key loaded once",
            Series.of("authenticate_request(jwt_key=PEM) + same gate check", shipped, ms),
            Series.of("key loaded once", once, ms),
            note="the SDK hands PyJWT the PEM string, which parses it on every call",
        )
    )
    section.add(Figure("clerk-backend-api (key loaded once) vs one RS256 verification", clerk, floor))
    store = Series.of("store path, whole handler", store_wall, ms)
    reads = [r for r in store_requests if r.operation == "ExecuteStatement"]
    section.add(
        Figure(
            "store path (DynamoDB Local), whole handler vs clerk-backend-api",
            store,
            Series.of("clerk-backend-api, key loaded once", clerk_store, ms),
            note=f"{len(store_requests)} DynamoDB requests for {store_calls} decisions "
            f"({', '.join(sorted({r.operation for r in store_requests}))}); includes a local round trip",
        )
    )
    section.extra.append(
        "Where a decision's time goes (medians, µs, token seen before): "
        + ", ".join(f"{name} {value:.1f}" for name, value in breakdown.items())
        + f". CPU per decision (median): new token {median_of(new_cpu):.3f} ms, token seen before "
        f"{median_of(seen_cpu):.3f} ms, store path {median_of(store_cpu):.3f} ms."
    )
    figures = AuthorizerFigures(
        new_token_cpu_ms=median_of(new_cpu),
        seen_token_cpu_ms=median_of(seen_cpu),
        store_cpu_ms=median_of(store_cpu),
        log_chars=float(line_chars),
        store_requests=len(store_requests) / store_calls,
        store_read_bytes=median_of([float(r.response_bytes or 0) for r in reads] or [0.0]),
        extra={"floor_ms": floor.median, "new_ms": new.median, "seen_ms": seen_series.median},
    )
    return section, figures


def _breakdown(event: dict, context: Any) -> dict[str, float]:
    """Medians (µs) of the parts of a decision for a token seen before."""
    from paygate.service.authorizer import container_authorizer, decision_line

    authorizer = container_authorizer()
    now = int(time.time() * 1000)
    decision = authorizer.decide(event, now)
    parts = {
        "authorizer lookup": lambda: container_authorizer(),
        "decide()": lambda: authorizer.decide(event, now),
        "decision line": lambda: decision_line(decision, event, context, now),
    }
    out = {}
    for name, call in parts.items():
        for _ in range(200):
            call()
        out[name] = median_of([timed(call)[0] * 1000 for _ in range(2000)])
    return out


def median_of(values: list[float]) -> float:
    return Series.of("m", values, "").median


def events_dir():
    from paygate_dev import EVENTS_DIR

    return EVENTS_DIR
