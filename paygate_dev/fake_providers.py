"""Clerk's Backend API and Dodo Payments' API, served from memory on 127.0.0.1: what reconcile reads.

    python -m paygate_dev.fake_providers            # serves an example data set until Ctrl-C

One server answers both, each under its own prefix (``/clerk/v1/...`` and ``/dodo/...``), with the
response shapes of the providers' own SDKs: every object added and every page served is validated with
the SDK's response model (``clerk-backend-api``'s ``CommerceSubscriptionItem`` ..., ``dodopayments``'
``SubscriptionListResponse`` ...), so a change of shape fails here before it can mislead a test. It
honours Clerk's ``limit``/``offset`` and Dodo's 0-based ``page_number``/``page_size``, checks the bearer
key, and can be told to answer the next requests of a path with a fault (429 with ``Retry-After``, 5xx).
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clerk_backend_api import models as clerk_models
from dodopayments import types as dodo_types
from dodopayments.types.credit_entitlements import CreditLedgerEntry, CustomerCreditBalance

from paygate_dev import EVENTS_DIR

CLERK_KEY = "sk_test_paygate_local"
DODO_KEY = "dodo_test_paygate_local"
INSTANCE_ID = "ins_2pQk8sV1aZ3mN7xR4tY6uW9bC0d"


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path starts with ``path`` with ``status``."""

    path: str
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)


class FakeProviders:
    def __init__(self, clerk_key: str = CLERK_KEY, dodo_key: str = DODO_KEY) -> None:
        self.clerk_key = clerk_key
        self.dodo_key = dodo_key
        #: ``CommerceSubscriptionItem`` JSON, in the order Clerk lists them (newest first).
        self.clerk_items: list[dict[str, Any]] = []
        #: ``CommerceSubscription`` JSON by payer key (``user:...`` / ``org:...``).
        self.clerk_subscriptions: dict[str, dict[str, Any]] = {}
        #: Whole Dodo objects (``Subscription``, ``Payment``, ``Refund``, ``GetDispute``) by collection.
        self.dodo: dict[str, list[dict[str, Any]]] = {
            "subscriptions": [],
            "payments": [],
            "refunds": [],
            "disputes": [],
        }
        #: ``CreditEntitlement`` JSON, and ``CustomerCreditBalance`` JSON (one per entitlement and customer).
        self.credit_entitlements: list[dict[str, Any]] = []
        self.credit_balances: list[dict[str, Any]] = []
        #: ``CreditLedgerEntry`` JSON, oldest first.
        self.credit_ledger: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        #: Every request: (method, path, query).
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        #: Responses that failed their SDK model (answered 500).
        self.drift: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- data --------------------------------------------------------------------------------------

    def add_clerk_item(self, item: dict[str, Any]) -> dict[str, Any]:
        clerk_models.CommerceSubscriptionItem.model_validate(item)
        with self._lock:
            self.clerk_items = [i for i in self.clerk_items if i["id"] != item["id"]]
            self.clerk_items.insert(0, item)
        return item

    def set_clerk_subscription(self, payer_key: str, subscription: dict[str, Any]) -> dict[str, Any]:
        clerk_models.CommerceSubscription.model_validate(subscription)
        with self._lock:
            self.clerk_subscriptions[payer_key] = subscription
        return subscription

    def add_dodo(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        model, _ = _DODO[collection]
        model.model_validate(obj)
        key = _DODO_ID[collection]
        with self._lock:
            self.dodo[collection] = [o for o in self.dodo[collection] if o[key] != obj[key]] + [obj]
        return obj

    def add_credit_entitlement(self, entitlement: dict[str, Any]) -> dict[str, Any]:
        dodo_types.CreditEntitlement.model_validate(entitlement)
        with self._lock:
            self.credit_entitlements = [e for e in self.credit_entitlements if e["id"] != entitlement["id"]]
            self.credit_entitlements.append(entitlement)
        return entitlement

    def set_credit_balance(self, balance: dict[str, Any]) -> dict[str, Any]:
        """A customer's balance of an entitlement (added first with :meth:`add_credit_entitlement`)."""
        CustomerCreditBalance.model_validate(balance)
        assert any(e["id"] == balance["credit_entitlement_id"] for e in self.credit_entitlements)
        same = ("credit_entitlement_id", "customer_id")
        with self._lock:
            self.credit_balances = [b for b in self.credit_balances if any(b[k] != balance[k] for k in same)]
            self.credit_balances.append(balance)
        return balance

    def add_credit_ledger_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        CreditLedgerEntry.model_validate(entry)
        with self._lock:
            self.credit_ledger = [e for e in self.credit_ledger if e["id"] != entry["id"]] + [entry]
        return entry

    def fail(self, path: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        with self._lock:
            self.faults.append(Fault(path, status, times, headers))

    # -- serving -----------------------------------------------------------------------------------

    def start(self) -> FakeProviders:
        providers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers = providers.answer("GET", self.path, self.headers.get("authorization", ""))
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def clerk_url(self) -> str:
        """``CLERK_API_URL`` (the ``/v1`` is added as for Clerk's own)."""
        return f"{self.url}/clerk"

    @property
    def dodo_url(self) -> str:
        """``DODO_PAYMENTS_BASE_URL``."""
        return f"{self.url}/dodo"

    def settings(self) -> dict[str, str]:
        """The reconcile settings that point at this server."""
        return {
            "CLERK_API_URL": self.clerk_url,
            "CLERK_SECRET_KEY": self.clerk_key,
            "DODO_PAYMENTS_BASE_URL": self.dodo_url,
            "DODO_PAYMENTS_API_KEY": self.dodo_key,
        }

    def answer(self, method: str, target: str, authorization: str) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((method, path, query))
            for fault in self.faults:
                if path.startswith(fault.path) and fault.times > 0:
                    fault.times -= 1
                    return fault.status, {"message": f"injected {fault.status}"}, fault.headers
        if path.startswith("/clerk/v1/"):
            if authorization != f"Bearer {self.clerk_key}":
                return 401, _clerk_error("authentication_invalid", "invalid secret key"), {}
            return self._checked(*self._clerk(path.removeprefix("/clerk/v1"), query))
        if path.startswith("/dodo/"):
            if authorization != f"Bearer {self.dodo_key}":
                return 401, {"code": "UNAUTHORIZED", "message": "invalid API key"}, {}
            return self._checked(*self._dodo(path.removeprefix("/dodo"), query))
        return 404, {"message": f"no such path {path}"}, {}

    def _checked(self, status: int, body: Any, model: Any) -> tuple[int, Any, dict[str, str]]:
        if model is not None:
            try:
                model.model_validate(body)
            except ValueError as exc:
                self.drift.append(f"{model.__name__}: {exc}")
                return 500, {"message": "the fake's response does not match the SDK model"}, {}
        return status, body, {}

    def _clerk(self, path: str, query: dict[str, str]) -> tuple[int, Any, Any]:
        segments = path.strip("/").split("/")
        if segments == ["billing", "subscription_items"]:
            limit, offset = int(query.get("limit", 10)), int(query.get("offset", 0))
            items = copy.deepcopy(self.clerk_items)
            if query.get("include_free") != "true":
                items = [i for i in items if (i.get("plan") or {}).get("fee")]
            page = {"data": items[offset : offset + limit], "total_count": len(items)}
            return 200, page, clerk_models.PaginatedCommerceSubscriptionItemResponse
        if (
            len(segments) == 4
            and segments[0] in ("users", "organizations")
            and segments[2:] == ["billing", "subscription"]
        ):
            kind = "user" if segments[0] == "users" else "org"
            subscription = self.clerk_subscriptions.get(f"{kind}:{segments[1]}")
            if subscription is None:
                return 404, _clerk_error("resource_not_found", "no billing subscription"), clerk_models.ClerkErrorsData
            return 200, copy.deepcopy(subscription), clerk_models.CommerceSubscription
        return 404, _clerk_error("resource_not_found", f"no such path {path}"), clerk_models.ClerkErrorsData

    def _dodo(self, path: str, query: dict[str, str]) -> tuple[int, Any, Any]:
        segments = path.strip("/").split("/")
        if segments[0] == "credit-entitlements":
            return self._credits(segments[1:], query)
        collection = segments[0]
        if collection not in _DODO:
            return 404, {"code": "NOT_FOUND", "message": f"no such path {path}"}, None
        whole, listed = _DODO[collection]
        objects = copy.deepcopy(self.dodo[collection])
        if len(segments) == 2:
            found = next((o for o in objects if o[_DODO_ID[collection]] == segments[1]), None)
            if found is None:
                return 404, {"code": "NOT_FOUND", "message": f"{segments[1]} not found"}, None
            return 200, found, whole
        if "customer_id" in query:
            objects = [o for o in objects if _customer_of(o, self.dodo) == query["customer_id"]]
        if "created_at_gte" in query:
            objects = [o for o in objects if o["created_at"] >= query["created_at_gte"]]
        page = [_project(o, listed) for o in _page(objects, query)]
        return 200, {"items": page}, _ListOf(listed)

    def _credits(self, segments: list[str], query: dict[str, str]) -> tuple[int, Any, Any]:
        """``GET /credit-entitlements``, ``/credit-entitlements/{id}/balances`` and ``.../balances/{customer}``."""
        if not segments:
            return (
                200,
                {"items": _page(copy.deepcopy(self.credit_entitlements), query)},
                _ListOf(dodo_types.CreditEntitlement),
            )
        entitlement_id = segments[0]
        if segments[1:2] != ["balances"] or len(segments) > 4 or segments[3:] not in ([], ["ledger"]):
            return 404, {"code": "NOT_FOUND", "message": "no such path"}, None
        if not any(e["id"] == entitlement_id for e in self.credit_entitlements):
            return 404, {"code": "NOT_FOUND", "message": f"credit entitlement {entitlement_id} not found"}, None
        if len(segments) == 4:
            entries = [
                e
                for e in copy.deepcopy(self.credit_ledger)
                if (e["credit_entitlement_id"], e["customer_id"]) == (entitlement_id, segments[2])
                and _iso_ms(e["created_at"]) >= _iso_ms(query.get("start_date", "1970-01-01T00:00:00Z"))
            ]
            return 200, {"items": _page(entries, query)}, _ListOf(CreditLedgerEntry)
        balances = [b for b in copy.deepcopy(self.credit_balances) if b["credit_entitlement_id"] == entitlement_id]
        if len(segments) == 3:
            found = next((b for b in balances if b["customer_id"] == segments[2]), None)
            if found is None:
                return 404, {"code": "NOT_FOUND", "message": "customer balance not found"}, None
            return 200, found, CustomerCreditBalance
        if "customer_id" in query:
            balances = [b for b in balances if b["customer_id"] == query["customer_id"]]
        return 200, {"items": _page(balances, query)}, _ListOf(CustomerCreditBalance)


def _iso_ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _page(objects: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """Dodo's 0-based ``page_number`` / ``page_size`` (default 10)."""
    size, number = int(query.get("page_size", 10)), int(query.get("page_number", 0))
    return objects[number * size : (number + 1) * size]


class _ListOf:
    """Validates a Dodo list page (``{"items": [...]}``) item by item with the list model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.__name__ = f"list of {model.__name__}"

    def model_validate(self, body: Any) -> None:
        for item in body["items"]:
            self.model.model_validate(item)


#: Whole model and list model of each Dodo collection (``dodopayments.types``).
_DODO = {
    "subscriptions": (dodo_types.Subscription, dodo_types.SubscriptionListResponse),
    "payments": (dodo_types.Payment, dodo_types.PaymentListResponse),
    "refunds": (dodo_types.Refund, dodo_types.RefundListItem),
    "disputes": (dodo_types.GetDispute, dodo_types.DisputeListResponse),
}
_DODO_ID = {
    "subscriptions": "subscription_id",
    "payments": "payment_id",
    "refunds": "refund_id",
    "disputes": "dispute_id",
}


def _project(obj: dict[str, Any], model: Any) -> dict[str, Any]:
    """The object as a list endpoint returns it: the list model's fields only."""
    return {k: v for k, v in obj.items() if k in model.model_fields}


def _customer_of(obj: dict[str, Any], dodo: dict[str, list[dict[str, Any]]]) -> str | None:
    if "customer" in obj:
        return obj["customer"]["customer_id"]
    payment = next((p for p in dodo["payments"] if p["payment_id"] == obj.get("payment_id")), None)
    return payment["customer"]["customer_id"] if payment else None


def _clerk_error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "long_message": message, "code": code}]}


# -- documented shapes ------------------------------------------------------------------------------


def clerk_plan(slug: str, amount: int = 2000, *, for_payer_type: str = "user") -> dict[str, Any]:
    """A ``CommerceSubscriptionItem.plan`` (clerk-backend-api ``models/commercesubscriptionitem.py`` ``Plan``)."""
    fee = None if amount == 0 else _money(amount)
    return {
        "object": "commerce_plan",
        "id": f"cplan_{slug}",
        "name": slug.replace("_", " ").title(),
        "fee": fee,
        "annual_monthly_fee": fee,
        "annual_fee": None if fee is None else _money(amount * 10),
        "description": None,
        "product_id": "cprod_default",
        "is_default": amount == 0,
        "is_recurring": True,
        "publicly_visible": True,
        "has_base_fee": amount > 0,
        "for_payer_type": for_payer_type,
        "slug": slug,
        "avatar_url": None,
        "free_trial_enabled": False,
        "free_trial_days": None,
    }


def clerk_payer(user_id: str | None = None, organization_id: str | None = None) -> dict[str, Any]:
    """A ``CommercePayerResponse``."""
    return {
        "object": "commerce_payer",
        "id": f"cpayer_{organization_id or user_id}",
        "instance_id": INSTANCE_ID,
        "user_id": user_id,
        "organization_id": organization_id,
        "email": "maya.chen@example.com" if user_id and not organization_id else None,
        "image_url": "https://img.clerk.com/default",
        "created_at": 1761988467318,
        "updated_at": 1761988467318,
    }


def clerk_item(
    item_id: str,
    *,
    user_id: str | None = None,
    organization_id: str | None = None,
    status: str = "active",
    plan: str = "pro",
    amount: int = 2000,
    period_start: int = 1761988467318,
    period_end: int | None = 1764580467318,
    updated_at: int = 1761988467318,
    canceled_at: int | None = None,
    past_due_at: int | None = None,
    ended_at: int | None = None,
) -> dict[str, Any]:
    """A ``CommerceSubscriptionItem`` as ``GET /billing/subscription_items`` lists it."""
    payer = clerk_payer(user_id, organization_id)
    renews = status in ("active", "upcoming") and canceled_at is None and amount > 0
    return {
        "object": "commerce_subscription_item",
        "id": item_id,
        "instance_id": INSTANCE_ID,
        "status": status,
        "plan_id": f"cplan_{plan}",
        "plan_period": "month",
        "payer_id": payer["id"],
        "is_free_trial": False,
        "period_start": period_start,
        "period_end": period_end,
        "canceled_at": canceled_at,
        "past_due_at": past_due_at,
        "ended_at": ended_at,
        "plan": clerk_plan(plan, amount, for_payer_type="org" if organization_id else "user"),
        "amount": _money(amount),
        "lifetime_paid": _money(amount),
        "next_payment": {"date": period_end, "amount": _money(amount)} if renews and period_end else None,
        "payer": payer,
        "created_at": period_start,
        "updated_at": updated_at,
    }


def clerk_subscription(subscription_id: str, items: list[dict[str, Any]], *, status: str = "active") -> dict[str, Any]:
    """A ``CommerceSubscription`` (``GET /users/{id}/billing/subscription``)."""
    return {
        "object": "commerce_subscription",
        "id": subscription_id,
        "instance_id": INSTANCE_ID,
        "status": status,
        "payer_id": items[0]["payer_id"] if items else "cpayer_none",
        "created_at": min((i["created_at"] for i in items), default=1761988467318),
        "updated_at": max((i["updated_at"] for i in items), default=1761988467318),
        "active_at": min((i["created_at"] for i in items), default=None),
        "past_due_at": None,
        "subscription_items": items,
    }


def _money(amount: int) -> dict[str, Any]:
    return {"amount": amount, "amount_formatted": f"{amount / 100:.2f}", "currency": "USD", "currency_symbol": "$"}


def _sample_data(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / "dodo" / name).read_text())["data"]


def dodo_subscription(
    subscription_id: str,
    *,
    customer_id: str = "cus_8fK2mQ9xLp3RtV7wZ1nB",
    user_id: str | None = "user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d",
    organization_id: str | None = None,
    status: str = "active",
    product_id: str = "pdt_pro_monthly_7Hq2Lx9Vb4",
    created_at: str = "2026-11-01T09:14:27.318402Z",
    next_billing_date: str = "2026-12-01T09:14:27.318402Z",
    **fields: Any,
) -> dict[str, Any]:
    """A ``Subscription`` (``GET /subscriptions/{id}``; the list serves its ``SubscriptionListResponse`` fields),
    from the subscription.active sample's data."""
    data = _sample_data("subscription.active.json")
    data.pop("payload_type", None)
    metadata = {k: v for k, v in (("user_id", user_id), ("organization_id", organization_id)) if v}
    data.update(
        subscription_id=subscription_id,
        customer={**data["customer"], "customer_id": customer_id},
        metadata=metadata,
        status=status,
        product_id=product_id,
        created_at=created_at,
        previous_billing_date=created_at,
        next_billing_date=next_billing_date,
        discounts=[],
        **fields,
    )
    return data


def dodo_payment(
    payment_id: str,
    subscription_id: str,
    *,
    customer_id: str = "cus_8fK2mQ9xLp3RtV7wZ1nB",
    user_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``Payment``, from the payment.succeeded sample's data (its metadata naming ``user_id`` when given)."""
    data = _sample_data("payment.succeeded.json")
    data.pop("payload_type", None)
    if user_id is not None:
        data["metadata"] = {"user_id": user_id}
    data.update(
        has_license_key=False,  # PaymentListResponse's (the list model's) own field
        payment_id=payment_id,
        subscription_id=subscription_id,
        subscription_ids=[subscription_id],
        customer={**data["customer"], "customer_id": customer_id},
        service_periods=[{**data["service_periods"][0], "subscription_id": subscription_id}],
        **fields,
    )
    return data


def dodo_refund(
    refund_id: str, payment_id: str, *, customer_id: str = "cus_8fK2mQ9xLp3RtV7wZ1nB", **fields: Any
) -> dict[str, Any]:
    """A ``Refund``, from the refund.succeeded sample's data."""
    data = _sample_data("refund.succeeded.json")
    data.pop("payload_type", None)
    data.update(
        refund_id=refund_id, payment_id=payment_id, customer={**data["customer"], "customer_id": customer_id}, **fields
    )
    return data


def dodo_dispute(dispute_id: str, payment_id: str, **fields: Any) -> dict[str, Any]:
    """A ``GetDispute`` (the list serves its ``DisputeListResponse`` fields), from the dispute.opened sample."""
    data = _sample_data("dispute.opened.json")
    data.pop("payload_type", None)
    customer = _sample_data("refund.succeeded.json")["customer"]
    data.update(
        dispute_id=dispute_id,
        payment_id=payment_id,
        brand_id=data["business_id"],
        customer=customer,
        payment_provider="dodo",
        **fields,
    )
    return data


def dodo_credit_entitlement(entitlement_id: str, name: str = "AI Credits", **fields: Any) -> dict[str, Any]:
    """A ``CreditEntitlement`` (``GET /credit-entitlements``; ``types/credit_entitlement.py``)."""
    business_id = _sample_data("credit.added.json")["business_id"]
    return {
        "id": entitlement_id,
        "business_id": business_id,
        "name": name,
        "unit": "credits",
        "precision": 0,
        "overage_enabled": False,
        "overage_behavior": "forgive_at_reset",
        "rollover_enabled": False,
        "created_at": "2026-10-01T08:00:00Z",
        "updated_at": "2026-10-01T08:00:00Z",
        **fields,
    }


def dodo_credit_balance(
    entitlement_id: str,
    customer_id: str = "cus_8fK2mQ9xLp3RtV7wZ1nB",
    *,
    balance: str = "1000",
    overage: str = "0",
    last_transaction_at: str | None = "2026-11-01T09:14:41.927304Z",
) -> dict[str, Any]:
    """A ``CustomerCreditBalance`` (``GET /credit-entitlements/{id}/balances``;
    ``types/credit_entitlements/customer_credit_balance.py``)."""
    return {
        "id": f"cdb_{entitlement_id}_{customer_id}",
        "credit_entitlement_id": entitlement_id,
        "customer_id": customer_id,
        "balance": balance,
        "overage": overage,
        "created_at": "2026-11-01T09:14:41.927304Z",
        "updated_at": last_transaction_at or "2026-11-01T09:14:41.927304Z",
        "last_transaction_at": last_transaction_at,
    }


def dodo_credit_ledger_entry(sample: str, **fields: Any) -> dict[str, Any]:
    """A ``CreditLedgerEntry`` (``GET .../balances/{customer_id}/ledger``), from a credit.* sample's data."""
    data = _sample_data(f"{sample}.json")
    data.pop("payload_type", None)
    data.update(fields)
    return data


def example() -> FakeProviders:
    """A small data set: a Clerk user on pro, a Clerk organization on team, a Dodo customer on pro with a
    balance of AI credits."""
    fake = FakeProviders()
    pro = fake.add_clerk_item(clerk_item("csubi_local_pro", user_id="user_local_maya"))
    fake.set_clerk_subscription("user:user_local_maya", clerk_subscription("csub_local_maya", [pro]))
    team = fake.add_clerk_item(
        clerk_item("csubi_local_team", organization_id="org_local_acme", plan="team", amount=9900)
    )
    fake.set_clerk_subscription("org:org_local_acme", clerk_subscription("csub_local_acme", [team]))
    fake.add_dodo("subscriptions", dodo_subscription("sub_local_dodo_pro", user_id="user_local_maya"))
    fake.add_dodo("payments", dodo_payment("pay_local_dodo_1", "sub_local_dodo_pro", user_id="user_local_maya"))
    fake.add_credit_entitlement(dodo_credit_entitlement("cde_local_ai"))
    fake.set_credit_balance(dodo_credit_balance("cde_local_ai", balance="750"))
    return fake


def main() -> int:
    fake = example().start()
    print(" ".join(f"{name}={value}" for name, value in fake.settings().items()), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
