"""Load on the running local server: several senders at once, each a paying user sending its own requests.

    .venv/bin/python -m paygate_dev.load --senders 16 --requests 50

Each sender subscribes a new user to Pro through a signed Clerk webhook, then cycles through reading the
account (``GET /me/subscription``: the authorizer, then the account function), a premium route (the
authorizer, then the route's function) and another signed webhook for the same subscription. Each request
opens its own connection, as independent clients do. It prints requests per second and the latencies'
median and p99, over all requests and by kind; every request is expected to be answered 200.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paygate_dev.demo import DAY_MS, clerk_item_event, premium_path
from paygate_dev.local_env import LocalSetupError, LocalState, load_state
from paygate_dev.send import endpoint_for_type, request, send
from paygate_dev.token import mint, session_claims

KINDS = ("account", "premium", "webhook")


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int | None
    ms: float
    #: Why the request got no answer (a reset or refused connection, a timeout).
    error: str | None = None


@dataclass
class LoadResult:
    senders: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0

    def unanswered(self) -> list[Sample]:
        return [s for s in self.samples if s.error is not None]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def _timed(kind: str, call: Callable[[], int]) -> Sample:
    started = time.perf_counter()
    try:
        status = call()
    except OSError as exc:  # a refused or reset connection, a timeout: the request got no answer
        return Sample(kind, None, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}")
    return Sample(kind, status, (time.perf_counter() - started) * 1000)


class Sender:
    """One paying user: a Pro subscription through Clerk, then its requests in turn."""

    def __init__(self, url: str, state: LocalState, premium: str) -> None:
        self.url, self.state, self.premium = url, state, premium
        self.user = f"user_load_{secrets.token_hex(6)}"
        claims = session_claims(self.user, now_s=int(time.time()), ttl_s=3600)
        self.token = mint(claims, state.private_key_pem, state.public_key_pem)

    def webhook(self) -> int:
        now = int(time.time() * 1000)
        envelope = clerk_item_event(
            "active",
            user=self.user,
            item_id=f"csubi_{self.user}",
            subscription_id=f"csub_{self.user}",
            now_ms=now,
            period_end_ms=now + 30 * DAY_MS,
        )
        endpoint = endpoint_for_type("clerk", envelope["type"])
        body = json.dumps(envelope).encode()
        return send(self.url, endpoint, body, secret=self.state.signing_secret(endpoint.function)).status

    def get(self, path: str) -> int:
        return request("GET", self.url + path, headers={"Authorization": f"Bearer {self.token}"})[0]

    def run(self, count: int, start: threading.Barrier, samples: list[Sample]) -> None:
        calls = {"account": lambda: self.get("/me/subscription"), "premium": lambda: self.get(self.premium)}
        calls["webhook"] = self.webhook
        start.wait()
        samples.append(_timed("webhook", self.webhook))
        for i in range(1, count):
            kind = KINDS[(i - 1) % len(KINDS)]
            samples.append(_timed(kind, calls[kind]))


def run_load(url: str, state: LocalState, *, senders: int, requests: int) -> LoadResult:
    """``senders`` users at once, ``requests`` each; every request's kind, status and latency."""
    premium = premium_path()
    if premium is None:
        raise LocalSetupError("template.yaml has no premium route to send to")
    crowd = [Sender(url, state, premium) for _ in range(senders)]
    start = threading.Barrier(senders + 1)
    per_sender: list[list[Sample]] = [[] for _ in crowd]
    threads = [
        threading.Thread(target=s.run, args=(requests, start, out), daemon=True)
        for s, out in zip(crowd, per_sender, strict=True)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return LoadResult(senders, elapsed, [s for out in per_sender for s in out])


def report(result: LoadResult) -> list[str]:
    lines = [
        f"{result.senders} senders, {len(result.samples)} requests in {result.seconds:.1f} s: "
        f"{result.requests_per_second:.1f} requests/s"
    ]
    for kind in ("all", *KINDS):
        times = [s.ms for s in result.samples if kind in ("all", s.kind) and s.error is None]
        if times:
            p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
            lines.append(f"  {kind:<8} {len(times):>5}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    statuses: dict[Any, int] = {}
    for sample in result.samples:
        key = sample.status if sample.error is None else "no answer"
        statuses[key] = statuses.get(key, 0) + 1
    lines.append("  answers: " + ", ".join(f"{k}: {n}" for k, n in sorted(statuses.items(), key=str)))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=16, help="users sending at once (default 16)")
    parser.add_argument("--requests", type=int, default=50, help="requests each sender sends (default 50)")
    parser.add_argument("--url", help="another server (default: the running `make run`, from .local/)")
    args = parser.parse_args(argv)
    try:
        state = load_state()
        url = args.url or state.server_url()
        if not state.private_key_pem:
            raise LocalSetupError("no local signing key yet: start the server once (`make run`)")
        result = run_load(url, state, senders=args.senders, requests=args.requests)
    except LocalSetupError as exc:
        print(f"not run: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report(result)))
    bad = [s for s in result.samples if s.status != 200]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
