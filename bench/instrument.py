"""Sees every DynamoDB request paygate's store makes, without changing the store.

The store builds its own botocore client (``paygate.infra.dynamodb.new_client``);
:func:`instrumented_store_clients` hands it one with botocore event hooks attached, so a run can
count requests, ask DynamoDB for consumed capacity and (in the reliability tests) make chosen
requests fail. The hooks only observe or short-circuit botocore's
own request cycle; the store's code and its client configuration stay as they ship.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import paygate.infra.dynamodb as dynamodb_module


@dataclass(frozen=True, slots=True)
class Request:
    """One API call of the store (botocore may send it more than once: see ``attempts``)."""

    operation: str
    #: The error code DynamoDB answered with (or the client-side exception name), ``None`` on success.
    error: str | None
    #: Capacity units DynamoDB reported; ``None`` when the answer carries none (errors do not).
    capacity: float | None
    attempts: int
    #: Items the answer carried (reads), and the answer's size in bytes.
    items: int = 0
    response_bytes: int = 0


@dataclass
class DynamoDBMeter:
    """Records each request of the clients it is attached to; thread-safe."""

    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("provide-client-params.dynamodb.*", _ask_for_capacity)
        events.register("before-send.dynamodb.*", self._count_attempt)
        events.register("after-call.dynamodb.*", self._after_call)
        events.register("after-call-error.dynamodb.*", self._after_error)
        return client

    def take(self) -> list[Request]:
        """The requests recorded since the last ``take`` (by any thread)."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def _count_attempt(self, **_: Any) -> None:
        self._local.attempts = getattr(self._local, "attempts", 0) + 1

    def _record(self, request: Request) -> None:
        self._local.attempts = 0
        with self._lock:
            self.requests.append(request)

    def _after_call(self, http_response: Any, parsed: dict, model: Any, **_: Any) -> None:
        error = parsed.get("Error", {}).get("Code") if http_response.status_code >= 300 else None
        items = len(parsed.get("Items") or ()) + (1 if "Item" in parsed else 0)
        size = len(getattr(http_response, "content", b"") or b"")
        attempts = getattr(self._local, "attempts", 1)
        self._record(Request(model.name, error, _capacity(parsed), attempts, items, size))

    def _after_error(self, exception: Exception, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self._record(Request(operation, type(exception).__name__, None, getattr(self._local, "attempts", 1)))


def _ask_for_capacity(params: dict, model: Any, **_: Any) -> None:
    if "ReturnConsumedCapacity" in model.input_shape.members:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _capacity(parsed: dict) -> float | None:
    consumed = parsed.get("ConsumedCapacity")
    if consumed is None:
        return None
    if isinstance(consumed, dict):
        consumed = [consumed]
    return float(sum(c.get("CapacityUnits", 0.0) for c in consumed))


@contextmanager
def _wrapped_factory(module: Any, attach: tuple[Callable[[Any], Any], ...]) -> Iterator[None]:
    """Replace ``module.new_client`` with one that passes every client it makes through ``attach``."""
    original = module.new_client

    def client(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        for hook in attach:
            hook(made)
        return made

    module.new_client = client
    try:
        yield
    finally:
        module.new_client = original


def instrumented_store_clients(*attach: Callable[[Any], Any]) -> contextlib.AbstractContextManager[None]:
    """Every store client made inside the block passes through each of ``attach`` (the store makes
    its client on first use, through ``paygate.infra.dynamodb.new_client``)."""
    return _wrapped_factory(dynamodb_module, attach)


def instrumented_dynamodb_clients(*attach: Callable[[Any], Any]) -> contextlib.AbstractContextManager[None]:
    """Every client made by ``paygate.infra.dynamodb.new_client`` inside the block (the authorizer's
    reader looks it up at first use) passes through ``attach``."""
    return _wrapped_factory(dynamodb_module, attach)
