"""Sample webhook events: which function takes each one, and their API Gateway form.

    python -m paygate_dev.samples            # (re)write events/apigw/<provider>/<type>.json

``events/<provider>/<type>.json`` holds the raw body exactly as the provider sends it;
``events/apigw/...`` the same body as the payload 2.0 event API Gateway hands the function, usable with
``sam local invoke -e`` or ``python -m paygate_dev.invoke``. Their signature is made with the sample
secret below and a fixed time, so it is expired: both invokers re-sign with the function's secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from paygate_dev import EVENTS_DIR
from paygate_dev.apigw import http_event
from paygate_dev.invoke import load_handler
from paygate_dev.signing import signed_headers
from paygate_dev.template import functions

#: Not a real secret: it only makes the stored samples look like what a provider sends. It lives with
#: the samples it signs, so `sam local invoke -e` users can find it.
SAMPLE_SECRET = (EVENTS_DIR / "sample-signing-secret.txt").read_text().strip()
SAMPLE_SIGNED_AT = 1_795_000_000
HEADER_STYLE = {"clerk": "svix", "dodo": "standard"}


@dataclass(frozen=True)
class WebhookEndpoint:
    function: str
    method: str
    path: str
    family: str
    provider: str
    event_types: frozenset[str]


@lru_cache(maxsize=1)
def webhook_endpoints() -> tuple[WebhookEndpoint, ...]:
    """Every webhook function in template.yaml with the event types its family applies."""
    found = []
    for function in functions().values():
        family = getattr(load_handler(function), "family", None)
        if family is None or not function.routes:
            continue
        route = function.routes[0]
        found.append(
            WebhookEndpoint(
                function.logical_id, route.method, route.path, family.name, family.provider, frozenset(family.mappers)
            )
        )
    return tuple(found)


def endpoint_for(provider: str, event_type: str) -> WebhookEndpoint | None:
    """The function that applies ``event_type``; ``None`` when no family does (it would be ignored)."""
    for endpoint in webhook_endpoints():
        if endpoint.provider == provider and event_type in endpoint.event_types:
            return endpoint
    return None


def raw_samples() -> list[Path]:
    return sorted(p for p in EVENTS_DIR.glob("*/*.json") if p.parent.name != "apigw")


def apigw_event(sample: Path) -> tuple[WebhookEndpoint, dict] | None:
    provider = sample.parent.name
    body = sample.read_text()
    endpoint = endpoint_for(provider, json.loads(body)["type"])
    if endpoint is None:
        return None
    headers = signed_headers(
        SAMPLE_SECRET,
        body,
        style=HEADER_STYLE[provider],
        msg_id=f"msg_sample_{sample.stem.replace('.', '_')}",
        timestamp=SAMPLE_SIGNED_AT,
    )
    headers["user-agent"] = "Svix-Webhooks/1.0" if provider == "clerk" else "Dodo-Webhooks/1.0"
    return endpoint, http_event(endpoint.method, endpoint.path, body=body, headers=headers)


def write_apigw_events() -> list[Path]:
    written = []
    for sample in raw_samples():
        made = apigw_event(sample)
        if made is None:
            continue
        _, event = made
        # Fixed ids and times, so regenerating changes nothing unless a sample did.
        event["requestContext"].update(
            requestId=f"req-{sample.stem}", time="18/Nov/2026:19:33:20 +0000", timeEpoch=SAMPLE_SIGNED_AT * 1000
        )
        target = EVENTS_DIR / "apigw" / sample.parent.name / sample.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(event, indent=2) + "\n")
        written.append(target)
    return written


if __name__ == "__main__":
    for path in write_apigw_events():
        print(path.relative_to(EVENTS_DIR.parent))
