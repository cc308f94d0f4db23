"""Signs a webhook body with the local secret of the function that takes it, and posts it to the local server.

    python -m paygate_dev.send clerk/subscriptionItem.active.json      # a sample from events/
    python -m paygate_dev.send ./my-event.json --provider dodo          # any JSON body
    python -m paygate_dev.send dodo/subscription.on_hold.json --id msg_1 --tamper

The endpoint is chosen from the provider and the event's ``type``; Clerk bodies are signed with ``svix-*``
headers, Dodo Payments bodies with ``webhook-*`` (Standard Webhooks), both by the real ``svix`` library.
Sending the same ``--id`` twice replays a delivery; ``--tamper`` alters the body after signing.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paygate_dev import EVENTS_DIR
from paygate_dev.local_env import LocalSetupError, load_state
from paygate_dev.samples import HEADER_STYLE, WebhookEndpoint, webhook_endpoints
from paygate_dev.signing import signed_headers


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    msg_id: str


def request(
    method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None, timeout_s: float = 30
) -> tuple[int, Any]:
    """One HTTP exchange; the answer's JSON body (or its text when it is not JSON), whatever the status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310 - a local URL
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def guess_provider(envelope: dict[str, Any]) -> str | None:
    """Clerk's envelope says ``"object": "event"`` and names its instance; Dodo's names the business."""
    if envelope.get("object") == "event" or "instance_id" in envelope:
        return "clerk"
    if "business_id" in envelope:
        return "dodo"
    return None


def endpoint_for_type(provider: str, event_type: str) -> WebhookEndpoint:
    """The endpoint whose family applies ``event_type``; else one of the provider's that takes the same
    event group (it will be kept and answered ``ignored``)."""
    mine = [e for e in webhook_endpoints() if e.provider == provider]
    if not mine:
        raise LocalSetupError(f"template.yaml has no webhook endpoint for {provider}")
    for endpoint in mine:
        if event_type in endpoint.event_types:
            return endpoint
    group = event_type.split(".", 1)[0]
    for endpoint in mine:
        if any(t.split(".", 1)[0] == group for t in endpoint.event_types):
            return endpoint
    return mine[0]


def send(
    base_url: str,
    endpoint: WebhookEndpoint,
    body: bytes,
    *,
    secret: str,
    msg_id: str | None = None,
    timestamp: int | None = None,
    tamper: bool = False,
) -> Answer:
    """Sign ``body`` for ``endpoint`` and post it; ``tamper`` changes a byte after signing."""
    headers = signed_headers(secret, body, style=HEADER_STYLE[endpoint.provider], msg_id=msg_id, timestamp=timestamp)
    sent_id = headers.get("svix-id") or headers["webhook-id"]
    if tamper:
        body = body.replace(b"{", b"{ ", 1)
    status, answer = request(endpoint.method, base_url + endpoint.path, body=body, headers=headers)
    return Answer(status, answer, sent_id)


def send_local(
    body: bytes, provider: str, *, base_url: str | None = None, msg_id: str | None = None, tamper: bool = False
) -> tuple[WebhookEndpoint, Answer]:
    """Send to the running local server with the secret it generated for the chosen function."""
    envelope = json.loads(body)
    endpoint = endpoint_for_type(provider, str(envelope.get("type", "")))
    state = load_state()
    base_url = base_url or state.server_url()
    answer = send(
        base_url, endpoint, body, secret=state.signing_secret(endpoint.function), msg_id=msg_id, tamper=tamper
    )
    return endpoint, answer


def resolve_sample(name: str) -> Path:
    """A path as given, else relative to events/ (``.json`` optional)."""
    for candidate in (Path(name), EVENTS_DIR / name, EVENTS_DIR / f"{name}.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("event", help="a sample under events/ (e.g. clerk/subscription.created.json) or a JSON file")
    parser.add_argument("--provider", choices=sorted(HEADER_STYLE), help="default: from the folder or the body")
    parser.add_argument("--url", help="the server's base URL (default: the running local server)")
    parser.add_argument("--id", dest="msg_id", help="the delivery id (repeat one to replay a delivery)")
    parser.add_argument("--tamper", action="store_true", help="change the body after signing (expect 401)")
    args = parser.parse_args(argv)
    try:
        path = resolve_sample(args.event)
    except FileNotFoundError:
        parser.error(f"{args.event}: no such file, here or under {EVENTS_DIR}")
    body = path.read_bytes()
    try:
        envelope = json.loads(body)
    except json.JSONDecodeError as exc:
        parser.error(f"{path}: not JSON ({exc})")
    if not isinstance(envelope, dict):
        parser.error(f"{path}: not a JSON object")
    provider = args.provider or (path.parent.name if path.parent.name in HEADER_STYLE else guess_provider(envelope))
    if provider is None:
        parser.error("cannot tell the provider from the file: add --provider clerk|dodo")
    try:
        endpoint, answer = send_local(body, provider, base_url=args.url, msg_id=args.msg_id, tamper=args.tamper)
    except (LocalSetupError, OSError) as exc:
        print(f"not sent: {exc}", file=sys.stderr)
        return 1
    print(f"{endpoint.method} {endpoint.path} ({endpoint.function}), id {answer.msg_id} -> {answer.status}")
    print(json.dumps(answer.body, indent=2))
    return 0 if answer.status < 400 else 2


if __name__ == "__main__":
    raise SystemExit(main())
