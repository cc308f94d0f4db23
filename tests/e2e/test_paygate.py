"""paygate's own template served locally, driven over HTTP as a provider and a client would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from paygate_dev import ROOT
from paygate_dev.demo import DAY_MS, clerk_item_event, premium_path
from paygate_dev.samples import webhook_endpoints
from paygate_dev.send import endpoint_for_type, send
from paygate_dev.template import functions
from paygate_dev.token import mint, session_claims
from tests.e2e.conftest import Server

ACCOUNT_ROUTE = "GET /me/subscription"


def route_keys() -> dict[str, str | None]:
    return {r.route_key: r.authorizer for f in functions().values() for r in f.routes}


def token_for(server: Server, user: str, **claims) -> str:
    return mint(
        session_claims(user, now_s=int(time.time()), **claims),
        server.state.private_key_pem,
        server.state.public_key_pem,
    )


def subscribe(server: Server, user: str, *, msg_id: str | None = None, kind: str = "active"):
    now = int(time.time() * 1000)
    envelope = clerk_item_event(
        kind,
        user=user,
        item_id=f"csubi_{user}",
        subscription_id=f"csub_{user}",
        now_ms=now,
        period_end_ms=now + 30 * DAY_MS,
    )
    endpoint = endpoint_for_type("clerk", envelope["type"])
    body = json.dumps(envelope).encode()
    return send(server.url, endpoint, body, secret=server.state.signing_secret(endpoint.function), msg_id=msg_id), body


def new_user() -> str:
    return f"user_e2e_{secrets.token_hex(6)}"


def test_every_route_of_the_template_is_served(paygate_server: Server) -> None:
    keys = route_keys()
    assert keys, "template.yaml declares no routes"
    for key in keys:
        method, path = key.split(" ", 1)
        path = path.replace("{proxy+}", "a/b").replace("{", "").replace("}", "")
        status, body = paygate_server.call(method, path, body=b"{}" if method == "POST" else None)
        assert status != 404 or body != {"message": "Not Found"}, key
        # Unsigned webhooks and calls without a token are refused, each with a JSON answer.
        assert status in (400, 401, 403), (key, status, body)
        assert isinstance(body, dict)


def test_a_signed_clerk_webhook_is_applied_and_its_replay_is_a_duplicate(paygate_server: Server) -> None:
    user = new_user()
    first, body = subscribe(paygate_server, user)
    assert (first.status, first.body["outcome"]) == (200, "applied")
    endpoint = endpoint_for_type("clerk", "subscriptionItem.active")
    secret = paygate_server.state.signing_secret(endpoint.function)
    again = send(paygate_server.url, endpoint, body, secret=secret, msg_id=first.msg_id)
    assert (again.status, again.body["outcome"]) == (200, "duplicate")


def test_a_tampered_webhook_is_refused(paygate_server: Server) -> None:
    endpoint = endpoint_for_type("clerk", "subscriptionItem.active")
    body = (ROOT / "events" / "clerk" / "subscriptionItem.active.json").read_bytes()
    secret = paygate_server.state.signing_secret(endpoint.function)
    answer = send(paygate_server.url, endpoint, body, secret=secret, tamper=True)
    assert answer.status == 401
    assert answer.body["error"] == "invalid_signature"


def test_a_webhook_signed_with_another_functions_secret_is_refused(paygate_server: Server) -> None:
    endpoints = webhook_endpoints()
    if len(endpoints) < 2:
        pytest.skip("one webhook function only")
    target, other = endpoints[0], endpoints[1]
    answer = send(
        paygate_server.url, target, b'{"type": "x"}', secret=paygate_server.state.signing_secret(other.function)
    )
    assert answer.status == 401


@pytest.mark.parametrize("provider", ["clerk", "dodo"])
def test_each_providers_samples_reach_their_function(paygate_server: Server, provider: str) -> None:
    mine = [e for e in webhook_endpoints() if e.provider == provider]
    if not mine:
        pytest.skip(f"template.yaml has no {provider} webhook function yet")
    sent = 0
    for path in sorted((ROOT / "events" / provider).glob("*.json")):
        envelope = json.loads(path.read_text())
        endpoint = endpoint_for_type(provider, envelope["type"])
        secret = paygate_server.state.signing_secret(endpoint.function)
        answer = send(paygate_server.url, endpoint, path.read_bytes(), secret=secret)
        assert answer.status == 200, (path.name, answer.body)
        assert answer.body["outcome"] in ("applied", "duplicate", "stale", "ignored"), (path.name, answer.body)
        sent += 1
    assert sent > 0


# -- state out, and the gate ----------------------------------------------------------------------


def test_the_account_route_shows_what_a_webhook_applied(paygate_server: Server) -> None:
    if ACCOUNT_ROUTE not in route_keys():
        pytest.skip(f"{ACCOUNT_ROUTE} is not in template.yaml yet")
    user = new_user()
    token = token_for(paygate_server, user)
    status, before = paygate_server.get("/me/subscription", token)
    assert status == 200, before
    assert "pro" not in json.dumps(before)
    answer, _ = subscribe(paygate_server, user)
    assert answer.status == 200
    status, after = paygate_server.get("/me/subscription", token_for(paygate_server, user))
    assert status == 200, after
    assert "pro" in json.dumps(after)
    assert user in json.dumps(after)


def test_the_premium_route_is_denied_then_allowed_by_stored_state(paygate_server: Server) -> None:
    path = premium_path()
    if path is None:
        pytest.skip("no premium route behind the authorizer in template.yaml yet")
    user = new_user()
    assert paygate_server.get(path, token_for(paygate_server, user)) == (403, {"message": "Forbidden"})
    # Without a token: the gateway's own 401 (the Authorization header is an identity source).
    assert paygate_server.get(path)[0] == 401
    assert paygate_server.get(path, "not-a-token")[0] == 403
    answer, _ = subscribe(paygate_server, user)
    assert answer.status == 200
    # A new token (a new cache key) that does not carry the plan: the stored subscription opens the route.
    status, body = paygate_server.get(path, token_for(paygate_server, user))
    assert status == 200, body


def test_a_cached_denial_does_not_cross_routes(paygate_server: Server) -> None:
    path = premium_path()
    keys = route_keys()
    if path is None or not keys.get(ACCOUNT_ROUTE):
        pytest.skip("needs a premium route and the account route behind the authorizer")
    token = token_for(paygate_server, new_user())
    assert paygate_server.get(path, token)[0] == 403
    # The same token on another route is decided afresh (the route key is an identity source).
    status, body = paygate_server.get("/me/subscription", token)
    assert status == 200, body


def test_the_demo_runs_to_the_end(paygate_server: Server) -> None:
    env = {**os.environ, "PAYGATE_LOCAL_DIR": str(paygate_server.state.directory)}
    done = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "paygate_dev.demo", "--url", paygate_server.url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "UNEXPECTED" not in done.stdout
    assert "answered as expected" in done.stdout
    for step in range(1, 8):
        assert f"\n{step}. " in done.stdout


def published_by(server: Server, msg_id: str, count: int) -> list[dict]:
    """The lines of ``.local/bus.jsonl`` caused by delivery ``msg_id``, once ``count`` of them are there
    (the bus thread publishes within a second or so; a generous deadline, not a timing assertion)."""
    bus = server.state.directory / "bus.jsonl"
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for line in bus.read_text().splitlines()] if bus.exists() else []
        found = [e for e in lines if e["detail"]["cause"]["event_id"] == msg_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_make_run_publishes_each_change_once_onto_the_local_bus(paygate_server: Server) -> None:
    user = new_user()
    first, body = subscribe(paygate_server, user)
    (event,) = published_by(paygate_server, first.msg_id, 1)
    # Each line is what an EventBridge target receives.
    assert (event["source"], event["detail-type"]) == ("paygate", "Entitlements Changed")
    assert event["detail"]["payer"] == {"type": "user", "id": user}
    assert event["detail"]["plans"]["added"] == ["pro"]
    # A redelivery announces nothing; a cancellation announces when access ends.
    endpoint = endpoint_for_type("clerk", "subscriptionItem.active")
    send(
        paygate_server.url,
        endpoint,
        body,
        secret=paygate_server.state.signing_secret(endpoint.function),
        msg_id=first.msg_id,
    )
    canceled, _ = subscribe(paygate_server, user, kind="canceled")
    (ending,) = published_by(paygate_server, canceled.msg_id, 1)
    assert ending["detail"]["access_windows"][0]["ends_at"] is not None
    # The stream is published in order: had the redelivery announced anything, it would be there by now.
    assert published_by(paygate_server, first.msg_id, 1) == [event]
    assert f"event Entitlements Changed user:{user} #1 +pro" in paygate_server.log.read_text()
