"""Service-level harness: the real pipeline, apply rules and gate on the in-memory store.

The in-memory store passes the same contract tests as the DynamoDB adapter (tests/contract), so
these tests state the rules exhaustively at unit-test speed. Signatures are still made with the
real ``svix`` library, and each family is the one its function's handler serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from paygate.clock import system_clock
from paygate.infra.catalog_file import load_catalog
from paygate.providers.base import WebhookFamily
from paygate.service.apply import ApplyService
from paygate.service.webhooks import WebhookService
from paygate_dev.invoke import load_handler
from paygate_dev.memory_store import InMemoryStateStore
from paygate_dev.template import functions
from tests.conftest import Sender


def family_of(function: str) -> WebhookFamily:
    """The family the function's real handler serves (``ClerkSubscriptionsFunction`` ...)."""
    return load_handler(functions()[function]).family  # type: ignore[attr-defined]


class ServiceSender(Sender):
    """Hands signed bodies to the webhook pipeline of a function's family, over :attr:`store` (an
    :class:`ApplyService` on an in-memory store)."""

    def __init__(self, store: ApplyService, clock: Callable[[], int] = system_clock) -> None:
        super().__init__()
        self.store = store
        self.clock = clock

    def handle(self, function: str, event: dict[str, Any], secrets: str) -> dict[str, Any]:
        configured = [s.strip() for s in secrets.split(",") if s.strip()]
        service = WebhookService(family_of(function), self.store, load_catalog(), lambda: configured, clock=self.clock)
        return service.handle(event).response

    def use(self, store: ApplyService) -> None:
        """Deliver to another store from now on (a fresh one, for a replayed story)."""
        self.store = store


@pytest.fixture
def memory() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def store(memory: InMemoryStateStore) -> ApplyService:
    return ApplyService(memory, sleep=lambda _: None)


@pytest.fixture
def sender(store: ApplyService) -> ServiceSender:
    return ServiceSender(store)
