"""The reliability suite's harness: real handlers, DynamoDB Local, and eyes on the store's client.

A :class:`Harness` owns its tables and signing secret, posts signed messages to a function's real
handler in-process, and sees every DynamoDB request the store makes (``meter``) or breaks one
(``faults``). Hypothesis runs with explicit, bounded settings so the suite stays fast.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from bench.instrument import DynamoDBMeter, instrumented_store_clients
from bench.synthetic import Message
from paygate_dev.apigw import http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import invoke
from paygate_dev.signing import new_secret, signed_headers
from tests.conftest import timeless
from tests.reliability.faults import FaultInjector

settings.register_profile(
    "reliability",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reliability"))


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class Harness:
    """Posts to real handlers against its own DynamoDB Local tables."""

    def __init__(self, ddb: DynamoDBLocal) -> None:
        self.ddb = ddb
        self.client = ddb.client()
        self.secret = new_secret()
        self.meter = DynamoDBMeter()
        self.faults = FaultInjector()
        self.tables: list[str] = []
        self.table = ""

    def fresh_table(self) -> str:
        """A new empty table that the handlers write to from now on."""
        name = f"paygate-rel-{uuid.uuid4().hex[:12]}"
        self.ddb.create_table(name)
        self.tables.append(name)
        self.use(name)
        return name

    def use(self, name: str) -> None:
        self.table = name
        os.environ["TABLE_NAME"] = name

    def post(self, function: str, body: str | bytes, headers: dict[str, str], base64_body: bool = False) -> Answer:
        event = http_event("POST", "/webhook", body=body, headers=headers)
        if base64_body and not event["isBase64Encoded"]:
            import base64

            raw = body.encode() if isinstance(body, str) else body
            event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        response = invoke(function, event)
        return Answer(response["statusCode"], json.loads(response["body"]), response.get("headers") or {})

    def deliver(self, message: Message) -> Answer:
        return self.post(message.function, message.body, message.headers(self.secret))

    def send(self, function: str, body: str | bytes, msg_id: str, style: str = "svix") -> Answer:
        return self.post(function, body, signed_headers(self.secret, body, style=style, msg_id=msg_id))

    def items(self, table: str | None = None) -> list[dict[str, Any]]:
        from paygate.infra.dynamodb import from_item

        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table or self.table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            found.extend(from_item(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def snapshot(self, table: str | None = None) -> dict[str, Any]:
        """Everything stored, minus what only says *when* it was received (differs between runs)."""
        volatile = {"received_at", "expires_at"}
        return {
            (item["pk"], item["sk"]): {k: v for k, v in timeless(item).items() if k not in volatile}
            for item in self.items(table)
        }

    def drop_tables(self) -> None:
        for name in self.tables:
            self.client.delete_table(TableName=name)
        self.tables.clear()


@pytest.fixture(scope="module")
def harness(dynamodb_local: DynamoDBLocal) -> Iterator[Harness]:
    """One harness per module: its store clients are instrumented for the module's lifetime."""
    made = Harness(dynamodb_local)
    saved = {k: os.environ.get(k) for k in ("TABLE_NAME", "WEBHOOK_SECRET")}
    os.environ["WEBHOOK_SECRET"] = made.secret
    with instrumented_store_clients(made.meter.attach, made.faults.attach):
        made.fresh_table()
        yield made
        made.faults.disarm()
        made.drop_tables()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
