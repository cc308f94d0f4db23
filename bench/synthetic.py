"""Wire-valid webhook traffic for many payers, made from the provider samples in ``events/``.

Each payer gets a *story*: a sequence of real sample bodies with the payer's own ids and strictly
increasing provider times, in the order the provider sent them. Delivering a story in order and
delivering it shuffled must end in the same state; the benchmarks and the reliability suite both
use these stories.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from paygate_dev import EVENTS_DIR
from paygate_dev.signing import signed_headers

#: Ids that belong to one payer in Clerk's samples (plan and product ids are shared catalog ids).
_CLERK_IDS = re.compile(r"\b(csub_item|csub|cpa|pa|cpayer|user|org)_([A-Za-z0-9]{10,})\b")
#: The first Clerk event time used; later events are a second apart.
_CLERK_EPOCH_MS = 1_797_000_000_000


@dataclass(frozen=True, slots=True)
class Message:
    """One provider message: where it goes, its id and its raw body."""

    function: str
    msg_id: str
    body: str
    style: str  # "svix" (Clerk) or "standard" (Dodo)
    payer: str  # the story it belongs to

    def headers(self, secret: str, timestamp: int | None = None) -> dict[str, str]:
        return signed_headers(secret, self.body, style=self.style, msg_id=self.msg_id, timestamp=timestamp)


@cache
def _clerk_samples(only: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """(function, raw text) of every Clerk sample a function applies (or of the ``only`` types)."""
    found = []
    for path in sorted((EVENTS_DIR / "clerk").glob("*.json")):
        if ".org." in path.name or (only and path.stem not in only):
            continue
        function = (
            "ClerkPaymentAttemptsFunction" if path.name.startswith("paymentAttempt.") else "ClerkSubscriptionsFunction"
        )
        found.append((function, path.read_text()))
    return tuple(found)


def clerk_story(payer_no: int, length: int, rng: random.Random, only: tuple[str, ...] = ()) -> list[Message]:
    """``length`` Clerk events of one payer (a user, or an organization for every fifth payer)."""
    tag = f"P{payer_no}"
    org = payer_no % 5 == 0
    messages = []
    for k in range(length):
        function, text = rng.choice(_clerk_samples(only))
        envelope = json.loads(_CLERK_IDS.sub(lambda m: f"{m.group(1)}_{m.group(2)}{tag}", text))
        at = _CLERK_EPOCH_MS + payer_no * 7_919 + k * 1_000
        envelope["timestamp"] = at + 190
        data = envelope["data"]
        data["updated_at"] = at
        for item in data.get("items") or ():
            item["updated_at"] = at
        if org:
            data["payer"]["organization_id"] = f"org_2xYb7Rk4Nq1WmT9cLz3Vp{tag}"
        messages.append(Message(function, f"msg_{tag}_{k:03d}", json.dumps(envelope), "svix", f"clerk:{tag}"))
    return messages


#: Ids that belong to one payer in Dodo's samples (product, business and entitlement ids are shared).
_DODO_IDS = re.compile(r"\b(sub|cus|pay|pm|inv|cks|user|org)_([A-Za-z0-9]{10,})\b")
_DODO_EPOCH_MS = 1_797_500_000_000
#: The Dodo families whose events name their payer in checkout metadata. Refunds, disputes and credit
#: movements reach their payer through links and merged balances; their ordering has its own tests
#: (tests/integration/test_dodo_webhooks.py).
_DODO_FAMILIES = {"subscription": "DodoSubscriptionsFunction", "payment": "DodoPaymentsFunction"}


@cache
def _dodo_samples() -> tuple[tuple[str, str], ...]:
    found = []
    for path in sorted((EVENTS_DIR / "dodo").glob("*.json")):
        function = _DODO_FAMILIES.get(path.name.split(".", 1)[0])
        if function:
            found.append((function, path.read_text()))
    return tuple(found)


def _iso(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dodo_story(payer_no: int, length: int, rng: random.Random) -> list[Message]:
    """``length`` Dodo subscription and payment events of one customer, who checked out as one payer
    (a user, or an organization for every fifth payer) and names it in every event's metadata."""
    tag = f"D{payer_no}"
    metadata = {"organization_id": f"org_4kMb8Tz2Qw6Rn1Xv5Lp{tag}"} if payer_no % 5 == 0 else {}
    metadata["user_id"] = f"user_7Rt3Wq9Zk2Lm5Xb8Np{tag}"
    messages = []
    for k in range(length):
        function, text = rng.choice(_dodo_samples())
        envelope = json.loads(_DODO_IDS.sub(lambda m: f"{m.group(1)}_{m.group(2)}{tag}", text))
        at = _DODO_EPOCH_MS + payer_no * 7_919 + k * 1_000
        envelope["timestamp"] = _iso(at + 190)
        data = envelope["data"]
        if "updated_at" in data:
            data["updated_at"] = _iso(at)
        data["metadata"] = dict(metadata)
        messages.append(Message(function, f"msg_{tag}_{k:03d}", json.dumps(envelope), "standard", f"dodo:{tag}"))
    return messages


def stories(providers: Iterable[str], payers: int, events_per_payer: int, seed: int) -> list[list[Message]]:
    """One story per payer and provider, reproducible from ``seed``."""
    rng = random.Random(seed)
    found = []
    for provider in providers:
        make = MAKERS[provider]
        found.extend(make(n, events_per_payer, rng) for n in range(payers))
    return found


def redeliveries(messages: Iterable[Message], rng: random.Random, most: int = 3) -> list[Message]:
    """Each message 1 to ``most`` times, all shuffled together: what an at-least-once sender may do."""
    deliveries = [m for m in messages for _ in range(rng.randint(1, most))]
    rng.shuffle(deliveries)
    return deliveries


MAKERS = {"clerk": clerk_story, "dodo": dodo_story}


def available_providers() -> list[str]:
    return list(MAKERS)


def chunks[T](items: list[T], count: int) -> Iterator[list[T]]:
    """``items`` dealt round-robin into ``count`` lists."""
    for i in range(count):
        yield items[i::count]
