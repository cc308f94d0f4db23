"""Authorizer decision, warm, in-process: token verification + gate evaluation.

* **claims path**: the token's ``pla`` claim already satisfies the route's gate; no store read.
* **store path**: the token carries no plan; the user's subscription is read from DynamoDB Local
  (the per-container read cache is turned off, so every decision reads).

Both go through the real Lambda handler with an API Gateway payload 2.0 event. The baseline is
``clerk-backend-api``'s networkless ``authenticate_request`` (``jwt_key`` = the PEM public key) on the
same token, followed by the same gate check on its payload. The floor is one RS256 signature
verification (``cryptography``), which any verifier must pay.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from bench.instrument import DynamoDBMeter, instrumented_dynamodb_clients
from bench.report import Figure, Section, Series
from paygate_dev.apigw import http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import invoke
from paygate_dev.local_env import new_key_pair
from paygate_dev.signing import new_secret, signed_headers

ISSUER = "https://clerk.bench.example"
PARTY = "https://app.bench.example"
ROUTE = "GET /pro/dashboard"
#: The user of the Clerk samples, who holds an active ``pro`` item in ``subscription.active.json``.
USER = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"


@dataclass
class AuthorizerFigures:
    claims_cpu_ms: float
    store_cpu_ms: float
    store_rcu: float


def _time(call: Callable[[], object], samples: int) -> tuple[list[float], list[float]]:
    for _ in range(min(50, samples)):
        call()
    wall, cpu = [], []
    for _ in range(samples):
        t, c = time.perf_counter_ns(), time.process_time_ns()
        call()
        cpu.append((time.process_time_ns() - c) / 1e6)
        wall.append((time.perf_counter_ns() - t) / 1e6)
    return wall, cpu


def _token(private: str, public: str, plans: list[str]) -> str:
    from paygate_dev.token import mint, session_claims

    claims = session_claims(
        USER, plans=plans, now_s=int(time.time()), ttl_s=3600, issuer=ISSUER, authorized_party=PARTY
    )
    return mint(claims, private, public)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def run(ddb: DynamoDBLocal, samples: int) -> tuple[Section, AuthorizerFigures]:
    from clerk_backend_api.security import authenticate_request
    from clerk_backend_api.security.types import AuthenticateRequestOptions

    from paygate.infra.catalog_file import load_catalog
    from paygate.providers.clerk_session import session_from_claims

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
        "WEBHOOK_SECRET": new_secret(),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    meter = DynamoDBMeter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), instrumented_dynamodb_clients(meter.attach):
            body = (ddb_events_dir() / "clerk" / "subscription.active.json").read_text()
            applied = invoke(
                "ClerkSubscriptionsFunction",
                http_event("POST", "/webhook", body=body, headers=signed_headers(env["WEBHOOK_SECRET"], body)),
            )
            assert applied["statusCode"] == 200, applied

            with_plan = _token(private, public, ["pro"])
            without_plan = _token(private, public, [])

            def decide(token: str) -> Callable[[], dict]:
                event = http_event(
                    "GET", "/pro/dashboard", route_key=ROUTE, headers={"authorization": f"Bearer {token}"}
                )
                return lambda: invoke("AuthorizerFunction", event)

            claims_decision, store_decision = decide(with_plan)(), decide(without_plan)()
            assert claims_decision["isAuthorized"] and claims_decision["context"].get("source") in (None, "token"), (
                claims_decision
            )
            assert store_decision["isAuthorized"], store_decision
            from paygate.service.authorizer import container_authorizer

            authorizer = container_authorizer()
            claims_event = http_event(
                "GET", "/pro/dashboard", route_key=ROUTE, headers={"authorization": f"Bearer {with_plan}"}
            )
            assert authorizer.decide(claims_event, int(time.time() * 1000)).allowed
            decision_wall, _ = _time(lambda: authorizer.decide(claims_event, int(time.time() * 1000)), samples)
            claims_wall, claims_cpu = _time(decide(with_plan), samples)
            meter.take()
            store_wall, store_cpu = _time(decide(without_plan), samples)
            store_requests = meter.take()[-samples:]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        ddb.client().delete_table(TableName=table)

    gate = load_catalog().routes[ROUTE]
    options = AuthenticateRequestOptions(jwt_key=public, authorized_parties=[PARTY])

    class _Request:
        headers = {"Authorization": f"Bearer {with_plan}"}

    def baseline() -> bool:
        state = authenticate_request(_Request(), options)
        return state.is_signed_in and gate.allows(session_from_claims(state.payload).grants)

    assert baseline(), "the baseline must reach the same decision"
    base_wall, _ = _time(baseline, samples)

    header, payload, signature = with_plan.split(".")
    signing_input, sig = f"{header}.{payload}".encode(), _b64(signature)
    public_key = load_pem_public_key(public.encode())
    floor_wall, _ = _time(lambda: public_key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256()), samples)

    base = Series.of("clerk-backend-api authenticate_request + same gate check", base_wall, "ms")
    floor = Series.of("one RS256 verification", floor_wall, "ms")
    decision = Series.of("claims path decision", decision_wall, "ms")
    claims = Series.of("claims path, whole handler", claims_wall, "ms")
    section = Section(
        "Authorizer decision (warm, in-process)",
        f"{samples} decisions each, after a warm-up, through the real handler (`{ROUTE}`, gate "
        "`any = [plan pro, plan org:team]`).",
    )
    section.add(
        Figure(
            "claims path decision vs clerk-backend-api",
            decision,
            base,
            ">= 3x faster (ratio <= 0.33x)",
            met=decision.median * 3 <= base.median,
            note="Authorizer.decide(): route lookup, token verification, claims, gate - what the baseline does",
        )
    )
    section.add(
        Figure(
            "claims path decision vs the RS256 floor",
            decision,
            floor,
            "<= 2x the floor",
            met=decision.median <= 2 * floor.median,
        )
    )
    section.add(
        Figure(
            "claims path, whole Lambda handler",
            claims,
            base,
            note="adds the Lambda handler around decide(): the configuration lookup and one JSON log "
            "line per decision (stdlib logging)",
        )
    )
    store = Series.of("store path", store_wall, "ms")
    section.add(Figure("store path vs clerk-backend-api", store, base, note="includes a DynamoDB Local round trip"))
    section.add(Figure("baseline vs the RS256 floor", base, floor))
    rcu = [r.capacity or 0.0 for r in store_requests]
    ops = {r.operation for r in store_requests}
    section.extra.append(
        f"Store path: {len(store_requests)} DynamoDB requests for {samples} decisions ({', '.join(sorted(ops))}), "
        "DynamoDB Local reports no consumed capacity for ExecuteStatement; on AWS one eventually consistent "
        "read of a payer partition under 4 KB is 0.5 read request units. "
        f"CPU per decision (median): claims {sorted(claims_cpu)[len(claims_cpu) // 2]:.3f} ms, "
        f"store {sorted(store_cpu)[len(store_cpu) // 2]:.3f} ms."
    )
    figures = AuthorizerFigures(
        claims_cpu_ms=Series.of("c", claims_cpu, "ms").median,
        store_cpu_ms=Series.of("s", store_cpu, "ms").median,
        store_rcu=Series.of("r", rcu or [0.0], "RCU").median,
    )
    return section, figures


def ddb_events_dir():
    from paygate_dev import EVENTS_DIR

    return EVENTS_DIR
