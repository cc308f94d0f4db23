"""Test harness: one DynamoDB Local (Amazon's, from the npm package, run with Java) per session.

Each test that touches storage gets a fresh table created from template.yaml's own definition.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Dummy credentials and region for DynamoDB Local; never real ones in tests.
os.environ.update(
    AWS_ACCESS_KEY_ID="local",
    AWS_SECRET_ACCESS_KEY="local",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_METRICS_NAMESPACE="paygate",
    POWERTOOLS_LOG_LEVEL="WARNING",
)
os.environ.pop("AWS_PROFILE", None)

from paygate.infra.dynamodb_store import DynamoStateStore
from paygate.service.apply import ApplyService
from paygate_dev import EVENTS_DIR
from paygate_dev.apigw import http_event
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.invoke import invoke
from paygate_dev.signing import new_secret, signed_headers


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    ddb = DynamoDBLocal().start()
    previous = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ddb.endpoint
    yield ddb
    ddb.stop()
    if previous is None:
        os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    else:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = previous


@pytest.fixture
def table(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"paygate-test-{uuid.uuid4().hex[:12]}"
    dynamodb_local.create_table(name)
    monkeypatch.setenv("TABLE_NAME", name)
    yield name
    dynamodb_local.client().delete_table(TableName=name)


@pytest.fixture
def store(table: str) -> ApplyService:
    """The apply service over the test's DynamoDB Local table (what the webhook functions write with)."""
    return ApplyService(DynamoStateStore(table))


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


class Sender:
    """Signs bodies with the real ``svix`` library and hands them to a function (see the subclasses)."""

    def __init__(self) -> None:
        self.secret = new_secret()

    def post(
        self,
        function: str,
        body: bytes | str,
        *,
        style: str = "svix",
        secret: str | None = None,
        msg_id: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        configured: str | None = None,
    ) -> Answer:
        """``configured`` replaces the function's secrets (e.g. two secrets in rotation)."""
        signed = signed_headers(secret or self.secret, body, style=style, msg_id=msg_id, timestamp=timestamp)
        event = http_event("POST", "/webhook", body=body, headers={**signed, **(headers or {})})
        response = self.handle(function, event, self.secret if configured is None else configured)
        return Answer(response["statusCode"], json.loads(response["body"]))

    def handle(self, function: str, event: dict[str, Any], secrets: str) -> dict[str, Any]:
        raise NotImplementedError


class WebhookSender(Sender):
    """Posts to a function's real handler, its ``WEBHOOK_SECRET`` set as the function's environment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.monkeypatch = monkeypatch

    def handle(self, function: str, event: dict[str, Any], secrets: str) -> dict[str, Any]:
        self.monkeypatch.setenv("WEBHOOK_SECRET", secrets or self.secret)
        return invoke(function, event)


@pytest.fixture
def sender(table: str, monkeypatch: pytest.MonkeyPatch) -> WebhookSender:
    return WebhookSender(monkeypatch)


def sample(name: str) -> bytes:
    """A raw provider body from events/, e.g. ``clerk/subscription.created.json``."""
    return (EVENTS_DIR / name).read_bytes()


def sample_json(name: str) -> dict[str, Any]:
    return json.loads(sample(name))


def sample_names(provider: str) -> list[str]:
    return sorted(f"{provider}/{p.name}" for p in (EVENTS_DIR / provider).glob("*.json"))


def body_of(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


def decode(family: Any, body: bytes | str, delivery: Any) -> tuple[str, Any]:
    """A raw body through a family's reading, as the pipeline does it: JSON first, then the mapper,
    with the shipped catalog."""
    from paygate.infra.catalog_file import load_catalog
    from paygate.providers.base import load_json_object

    raw = body.encode() if isinstance(body, str) else body
    return family.decode(load_json_object(raw), delivery, load_catalog())


#: What a payer's outbox item records of how its announcements arrived (their number, the last cause):
#: it differs between delivery orders, while the announced snapshot itself converges.
ANNOUNCEMENT_HISTORY = frozenset({"revision", "sequence", "announce", "events", "cause", "evaluated_at"})


def converging(record: dict[str, Any]) -> dict[str, Any]:
    """A stored item without what depends on the order deliveries arrived in (for convergence tests)."""
    if record.get("kind") != "entitlements":
        return record
    return {k: v for k, v in record.items() if k not in ANNOUNCEMENT_HISTORY}


def timeless(record: dict[str, Any]) -> dict[str, Any]:
    """A stored item without the instants an outbox item was evaluated at (the clock of the run)."""
    if record.get("kind") != "entitlements":
        return record
    kept = {k: v for k, v in record.items() if k != "evaluated_at"}
    if "events" in kept:
        events = json.loads(kept["events"])
        for event in events:
            event.pop("time", None)
            event["detail"].pop("occurred_at", None)
        kept["events"] = events
    return kept


__all__ = [
    "Answer",
    "Path",
    "Sender",
    "WebhookSender",
    "body_of",
    "converging",
    "decode",
    "sample",
    "sample_json",
    "sample_names",
    "timeless",
]


def optional_field_variants(model: Any, document: Any, path: tuple[Any, ...] = ()) -> list[tuple[str, str, Any]]:
    """For each field ``model`` types as optional or nullable that ``document`` carries: ``(where,
    "null" | "absent", the document changed so)``. Optional fields get both variants, required but
    nullable ones only null. Nested models and lists of models are walked too."""
    import copy
    import types
    import typing

    from pydantic import BaseModel

    def models_in(annotation: Any) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        if typing.get_origin(annotation) in (list, types.UnionType, typing.Union):
            return [m for arg in typing.get_args(annotation) for m in models_in(arg)]
        return []

    def changed(mutate: Any) -> Any:
        doc = copy.deepcopy(document)
        parent = doc
        for step in path:
            parent = parent[step]
        mutate(parent)
        return doc

    here = document
    for step in path:
        here = here[step]
    variants: list[tuple[str, str, Any]] = []
    for name, info in model.model_fields.items():
        if not isinstance(here, dict) or name not in here:
            continue
        where = ".".join(str(p) for p in (*path, name))
        nullable = type(None) in typing.get_args(info.annotation)
        if nullable and here[name] is not None:
            variants.append((where, "null", changed(lambda d, n=name: d.__setitem__(n, None))))
        if not info.is_required():
            variants.append((where, "absent", changed(lambda d, n=name: d.pop(n))))
        for inner in models_in(info.annotation):
            value = here[name]
            if isinstance(value, dict):
                variants += optional_field_variants(inner, document, (*path, name))
            elif isinstance(value, list):
                for i, element in enumerate(value):
                    if isinstance(element, dict):
                        variants += optional_field_variants(inner, document, (*path, name, i))
    return variants
