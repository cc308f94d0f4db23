"""A guided tour of paygate, against the running local server (`make run` in another terminal).

    python -m paygate_dev.demo

Each step sends what a provider or a client would send, over HTTP, and prints the answer:

1. Ana has no plan: the pro route is closed to her.
2. Ana subscribes to Pro through Clerk Billing; her account shows it, and paygate publishes
   ``Entitlements Changed`` (plans added) on its event bus (``.local/bus.jsonl``).
3. The pro route opens for her with a session token that does not carry the plan yet (the store decides).
4. Ana cancels at period end: the route stays open until the period she paid for ends; the event
   published says when her access ends.
5. Ben subscribes through Dodo Payments, then his renewal fails: on hold, with a grace period.
6. Ben is granted credits and spends some: the balance follows.
7. A tampered webhook is refused; a replayed one changes nothing.

Every run uses new users and ids, so it can be repeated against a kept store. The exit status is 0 when
every step answered as expected.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paygate_dev import EVENTS_DIR, LAYER_DIR
from paygate_dev.local_env import LocalSetupError, LocalState, load_state
from paygate_dev.send import Answer, endpoint_for_type, request, send
from paygate_dev.template import functions
from paygate_dev.token import mint, session_claims

DAY_MS = 86_400_000
ACCOUNT_PATH = "/me/subscription"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- provider bodies, made from the samples in events/ with this run's ids and times ---------------


def clerk_item_event(
    kind: str, *, user: str, item_id: str, subscription_id: str, now_ms: int, period_end_ms: int
) -> dict[str, Any]:
    """``subscriptionItem.<kind>`` for ``user``'s Pro item, changed at ``now_ms``."""
    event = sample(f"clerk/subscriptionItem.{kind}.json")
    data = event["data"]
    data.update(
        id=item_id,
        is_free_trial=False,
        subscription_id=subscription_id,
        created_at=now_ms - DAY_MS,
        updated_at=now_ms,
        period_start=now_ms - DAY_MS,
        period_end=period_end_ms,
    )
    if data.get("canceled_at") is not None or kind == "canceled":
        data["canceled_at"] = now_ms
    data["payer"].update(id=f"cpayer_{user}", user_id=user, organization_id="", email=f"{user}@example.com")
    event["timestamp"] = now_ms
    return event


def dodo_subscription_event(
    kind: str, *, user: str, customer: str, subscription_id: str, product_id: str, at_ms: int, next_billing_ms: int
) -> dict[str, Any]:
    """``subscription.<kind>`` for ``user``'s Dodo subscription to ``product_id``, sent at ``at_ms``."""
    event = sample(f"dodo/subscription.{kind}.json")
    data = event["data"]
    data.update(
        subscription_id=subscription_id,
        product_id=product_id,
        metadata={"user_id": user},
        created_at=iso(next_billing_ms - 30 * DAY_MS),
        previous_billing_date=iso(next_billing_ms - 30 * DAY_MS),
        next_billing_date=iso(next_billing_ms),
        trial_period_days=0,
        cancel_at_next_billing_date=False,
        cancelled_at=None,
    )
    data["customer"]["customer_id"] = customer
    event["timestamp"] = iso(at_ms)
    return event


def dodo_credit_event(
    kind: str, *, user: str, customer: str, entry_id: str, amount: int, before: int, at_ms: int
) -> dict[str, Any]:
    """``credit.<kind>`` moving ``customer``'s balance from ``before`` by ``amount``."""
    event = sample(f"dodo/credit.{kind}.json")
    data = event["data"]
    after = before + amount if kind == "added" else before - amount
    data.update(
        id=entry_id,
        customer_id=customer,
        metadata={"user_id": user},
        amount=str(amount),
        balance_before=str(before),
        balance_after=str(after),
        created_at=iso(at_ms),
    )
    event["timestamp"] = iso(at_ms)
    return event


def summarize_account(body: dict[str, Any]) -> list[str]:
    """The lines of an account answer that tell the story: plans, each subscription's window, credits."""
    user = body.get("user") or {}
    lines = [f"plans: {', '.join(body.get('plans') or []) or '(none)'}"]
    for sub in user.get("subscriptions") or []:
        until = sub.get("access_until")
        window = f"access until {day(until)}" if until else "renews, no end in sight"
        state = "grants access" if sub.get("active") else "grants nothing now"
        lines.append(f"{sub.get('provider')} {sub.get('plan')}: {sub.get('status')}, {window} ({state})")
    for credit in user.get("credits") or []:
        lines.append(f"credits {credit.get('credit_entitlement_id')}: balance {credit.get('balance')}")
    return lines


def subscriptions_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return (body.get("user") or {}).get("subscriptions") or []


def routes() -> dict[str, tuple[str, str | None]]:
    """Every route of the template: route key -> (function, authorizer or ``None``)."""
    return {r.route_key: (f.logical_id, r.authorizer) for f in functions().values() for r in f.routes}


def premium_path() -> str | None:
    """A path gated on the Pro plan: a route whose catalog gate names ``pro``, else the first ``/pro`` one."""
    gated = {key for key, (_, auth) in routes().items() if auth}
    candidates = sorted(key for key in gated if key.startswith("GET ") and "/pro" in key)
    catalog = _catalog()
    if catalog is not None:
        by_gate = sorted(k for k in gated if k.startswith("GET ") and _names_plan(catalog.routes.get(k), "pro"))
        candidates = by_gate or candidates
    if not candidates:
        return None
    path = candidates[0].split(" ", 1)[1]
    return path.replace("{proxy+}", "reports/monthly").replace("{", "").replace("}", "")


def _names_plan(gate: Any, plan: str) -> bool:
    return gate is not None and any(c.kind.value == "plan" and c.key == plan for c in gate.checks())


# -- the tour -------------------------------------------------------------------------------------


@dataclass
class Tour:
    url: str
    state: LocalState
    now_ms: int
    out: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    step: int = 0

    def routes(self) -> dict[str, tuple[str, str | None]]:
        return routes()

    def premium_path(self) -> str | None:
        return premium_path()

    def heading(self, text: str) -> None:
        self.step += 1
        self.out(f"\n{self.step}. {text}")

    def note(self, text: str) -> None:
        self.out(f"   {text}")

    def expect(
        self, what: str, status: int, expected: int | tuple[int, ...], body: Any = None, detail: str = ""
    ) -> bool:
        wanted = expected if isinstance(expected, tuple) else (expected,)
        ok = status in wanted
        mark = "ok" if ok else f"UNEXPECTED (wanted {' or '.join(map(str, wanted))})"
        self.out(f"   {what} -> {status}{f' {detail}' if detail else ''}  [{mark}]")
        if body is not None:
            shown = json.dumps(body, indent=2) if not isinstance(body, str) else body
            lines = shown.splitlines()
            for line in lines[:30]:
                self.out(f"      {line}")
            if len(lines) > 30:
                self.out(f"      ... ({len(lines) - 30} more lines)")
        if not ok:
            self.failures.append(f"step {self.step}: {what} answered {status}")
        return ok

    def missing_part(self, part: str) -> None:
        self.note(f"NOT SHOWN: {part} is not in template.yaml yet.")
        self.missing.append(part)

    def token(self, user: str) -> str:
        """A fresh session token for ``user`` with no plan claim: access comes from the store."""
        claims = session_claims(user, now_s=self.now_ms // 1000)
        return mint(claims, self.state.private_key_pem, self.state.public_key_pem)

    def get(self, path: str, user: str) -> tuple[int, Any]:
        return request("GET", self.url + path, headers={"Authorization": f"Bearer {self.token(user)}"})

    def webhook(self, provider: str, envelope: dict[str, Any], **options: Any) -> tuple[str, bytes, Answer] | None:
        try:
            endpoint = endpoint_for_type(provider, envelope["type"])
        except LocalSetupError:
            return None
        if envelope["type"] not in endpoint.event_types:
            return None
        body = json.dumps(envelope).encode()
        answer = send(self.url, endpoint, body, secret=self.state.signing_secret(endpoint.function), **options)
        return endpoint.path, body, answer

    def post(self, provider: str, envelope: dict[str, Any], expected: int = 200, **options: Any):
        sent = self.webhook(provider, envelope, **options)
        if sent is None:
            self.missing_part(f"a {provider} endpoint for {envelope['type']}")
            return None
        path, _, answer = sent
        reply = answer.body if isinstance(answer.body, dict) else {}
        detail = reply.get("outcome") or (f"{reply['error']}: {reply.get('message')}" if "error" in reply else "")
        self.expect(f"POST {path} {envelope['type']}", answer.status, expected, detail=detail)
        return sent

    def published(self, sent: tuple[str, bytes, Answer] | None, wait_s: float = 15.0) -> None:
        """Show the events the server published for a delivery: the lines of its ``bus.jsonl`` whose cause
        is that delivery (the local bus publishes within a second or so)."""
        if "EventsPublisherFunction" not in functions():
            self.missing_part("the event publisher")
            return
        if sent is None:
            return
        msg_id = sent[2].msg_id
        bus = self.state.directory / "bus.jsonl"
        deadline = time.monotonic() + wait_s
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            lines = bus.read_text().splitlines() if bus.exists() else []
            found = [e for e in map(json.loads, lines) if e["detail"]["cause"]["event_id"] == msg_id]
            if not found:
                time.sleep(0.25)
        if not found:
            self.note(f"UNEXPECTED: nothing was published for delivery {msg_id} (see {bus})")
            self.failures.append(f"step {self.step}: no event published for {msg_id}")
            return
        for event in found:
            detail = event["detail"]
            self.note(f"published on the event bus: {event['detail-type']} #{detail['sequence']} (id {detail['id']})")
            for part in ("plans", "features"):
                if part in detail:
                    moved = [f"+{x}" for x in detail[part]["added"]] + [f"-{x}" for x in detail[part]["removed"]]
                    now_held = ", ".join(detail[part]["current"]) or "none"
                    self.note(f"   {part}: {' '.join(moved) or 'unchanged'} (now: {now_held})")
            for window in detail.get("access_windows", []):
                until = day(window["ends_at"]) if window["ends_at"] else "renewal (no end)"
                self.note(f"   access: {window['plan']} ({window['status']}) until {until}")

    def account(self, user: str, check: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        """``GET /me/subscription`` for ``user``, summarized; ``check`` names what is wrong, if anything."""
        if f"GET {ACCOUNT_PATH}" not in self.routes():
            self.missing_part(f"the account route GET {ACCOUNT_PATH}")
            return
        status, body = self.get(ACCOUNT_PATH, user)
        summary = summarize_account(body) if status == 200 and isinstance(body, dict) else None
        self.expect(f"GET {ACCOUNT_PATH} (token without plan claims)", status, 200, body if summary is None else None)
        for line in summary or ():
            self.note(f"   {line}")
        problem = check(body) if check and summary is not None else None
        if problem:
            self.note(f"   UNEXPECTED: {problem}")
            self.failures.append(f"step {self.step}: {problem}")

    def run(self) -> int:
        run_id = secrets.token_hex(4)
        ana, ben = f"user_demo_ana_{run_id}", f"user_demo_ben_{run_id}"
        pro_path = self.premium_path()
        now = self.now_ms
        self.out(f"paygate demo against {self.url}  (run {run_id}, now {day(now)})")

        # 1
        self.heading(f"Ana ({ana}) has no plan yet")
        if pro_path is None:
            self.missing_part("a premium route behind the authorizer")
        else:
            status, body = self.get(pro_path, ana)
            self.expect(f"GET {pro_path}", status, 403, body)

        # 2
        self.heading("Ana subscribes to Pro through Clerk Billing")
        period_end = now + 30 * DAY_MS
        ids = {"user": ana, "item_id": f"csubi_demo_{run_id}", "subscription_id": f"csub_demo_{run_id}"}
        active = clerk_item_event("active", now_ms=now - 60_000, period_end_ms=period_end, **ids)
        first = self.post("clerk", active)
        self.account(ana, lambda b: None if "pro" in (b.get("plans") or []) else "Pro is not among Ana's plans")
        self.published(first)

        # 3
        self.heading("The pro route opens for Ana, though her token does not carry the plan")
        if pro_path is None:
            self.missing_part("a premium route behind the authorizer")
        else:
            status, body = self.get(pro_path, ana)
            self.expect(f"GET {pro_path}", status, 200, body)

        # 4
        self.heading(f"Ana cancels; Pro stays hers until the period ends ({day(period_end)})")
        canceled = clerk_item_event("canceled", now_ms=now - 30_000, period_end_ms=period_end, **ids)
        self.published(self.post("clerk", canceled))

        def paid_period_kept(body: dict[str, Any]) -> str | None:
            subs = [x for x in subscriptions_of(body) if x.get("status") == "canceled"]
            if not subs or subs[0].get("access_until") != period_end or not subs[0].get("active"):
                return "the canceled subscription does not keep access until the period end"
            return None

        self.account(ana, paid_period_kept)
        if pro_path is not None:
            status, body = self.get(pro_path, ana)
            self.expect(f"GET {pro_path} (still within the paid period)", status, 200)

        # 5
        customer = f"cus_demo_{run_id}"
        renewal_due = now - 3_600_000
        self.heading(f"Ben ({ben}) subscribes through Dodo Payments; his renewal fails")
        product = self.pro_product()
        dodo = {
            "user": ben,
            "customer": customer,
            "subscription_id": f"sub_demo_{run_id}",
            "product_id": product,
            "next_billing_ms": renewal_due,
        }
        self.post("dodo", dodo_subscription_event("active", at_ms=renewal_due - 29 * DAY_MS, **dodo))
        self.post("dodo", dodo_subscription_event("on_hold", at_ms=renewal_due + 60_000, **dodo))
        self.note(f"the renewal was due {day(renewal_due)}; the grace period runs from there")

        def in_grace(body: dict[str, Any]) -> str | None:
            subs = [x for x in subscriptions_of(body) if x.get("status") == "on_hold"]
            if not subs or not subs[0].get("active") or not (subs[0].get("access_until") or 0) > now:
                return "the subscription on hold shows no grace period"
            return None

        self.account(ben, in_grace)
        if pro_path is not None:
            status, body = self.get(pro_path, ben)
            self.expect(f"GET {pro_path} (on hold, within the grace period)", status, 200)

        # 6
        self.heading("Ben is granted 1000 credits and spends 250")
        credit = {"user": ben, "customer": customer}
        self.post(
            "dodo",
            dodo_credit_event(
                "added", entry_id=f"cle_demo_a_{run_id}", amount=1000, before=0, at_ms=now - 20_000, **credit
            ),
        )
        self.post(
            "dodo",
            dodo_credit_event(
                "deducted", entry_id=f"cle_demo_d_{run_id}", amount=250, before=1000, at_ms=now - 10_000, **credit
            ),
        )
        self.account(
            ben,
            lambda b: (
                None
                if any(c.get("balance") == "750" for c in (b.get("user") or {}).get("credits") or [])
                else "no credit balance of 750"
            ),
        )

        # 7
        self.heading("A tampered webhook is refused; a replayed one changes nothing")
        tampered = clerk_item_event("active", now_ms=now, period_end_ms=now + 90 * DAY_MS, **ids)
        self.post("clerk", tampered, expected=401, tamper=True)
        if first is not None:
            path, body, answer = first
            endpoint = endpoint_for_type("clerk", active["type"])
            replay = send(
                self.url, endpoint, body, secret=self.state.signing_secret(endpoint.function), msg_id=answer.msg_id
            )
            outcome = replay.body.get("outcome") if isinstance(replay.body, dict) else None
            self.expect(f"POST {path} again, same delivery id", replay.status, 200, detail=str(outcome))
            if outcome != "duplicate":
                self.failures.append(f"step {self.step}: the replay answered outcome {outcome!r}, not 'duplicate'")

        self.out("")
        if self.missing:
            self.out("Not shown, because it is not in this checkout yet: " + "; ".join(dict.fromkeys(self.missing)))
        if self.failures:
            self.out("Unexpected answers:\n  " + "\n  ".join(self.failures))
            return 1
        self.out("Every step answered as expected." if not self.missing else "Every step shown answered as expected.")
        return 0

    def pro_product(self) -> str:
        """The Dodo product the catalog maps to the Pro plan."""
        catalog = _catalog()
        pro = [p for p, plan in (catalog.products if catalog else {}).items() if plan == "pro"]
        return pro[0] if pro else sample("dodo/subscription.active.json")["data"]["product_id"]


def _catalog() -> Any:
    """The catalog the functions use (paygate.toml), or ``None`` when it does not load."""
    if str(LAYER_DIR) not in sys.path:
        sys.path.insert(0, str(LAYER_DIR))
    from paygate.infra.catalog_file import CatalogError, load_catalog
    from paygate.settings import catalog_path

    try:
        return load_catalog(catalog_path())
    except CatalogError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the server's base URL (default: the running local server)")
    args = parser.parse_args(argv)
    state = load_state()
    try:
        url = args.url or state.server_url()
        if not state.private_key_pem:
            raise LocalSetupError("no local signing key yet: start the server once (`make run`)")
    except LocalSetupError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        return Tour(url, state, now_ms=int(time.time() * 1000)).run()
    except OSError as exc:
        print(f"\nthe server at {url} did not answer: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
