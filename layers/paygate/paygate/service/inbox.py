"""Reading the inbox: every verified delivery, with its raw body and what became of it.

For the operator tools: listing reads the whole table (a scan), so nothing on a request path uses it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from paygate.service.layout import EVENT_PREFIX, expired, inbox_key
from paygate.service.ports import Item, ScanningStore

#: What a listing shows of each event (the body is left out: it is read by ``find``).
SUMMARY_FIELDS = (
    "family",
    "provider",
    "event_id",
    "event_type",
    "outcome",
    "received_at",
    "replayed_at",
    "payer",
    "error",
    "applied",
    "expires_at",
)


class Inbox:
    def __init__(self, store: ScanningStore, families: Iterable[str]) -> None:
        self.store = store
        self.families = tuple(families)

    def find(self, event_id: str, family: str | None = None) -> list[Item]:
        """The stored deliveries with this event id: one per family that received it (usually one)."""
        names = [family] if family else self.families
        return [item for name in names if (item := self.store.get(inbox_key(name, event_id))) is not None]

    def list(
        self,
        *,
        outcomes: Collection[str] = (),
        families: Collection[str] = (),
        since_ms: int | None = None,
        payers: Collection[str] = (),
        now_ms: int | None = None,
        with_body: bool = False,
    ) -> list[Item]:
        """The deliveries that match every filter given, oldest first. Items past their retention are
        absent (DynamoDB deletes them lazily), as everywhere else."""
        attributes: tuple[str, ...] = () if with_body else SUMMARY_FIELDS
        found = []
        for item in self.store.scan(EVENT_PREFIX, attributes=attributes):
            if now_ms is not None and expired(item, now_ms):
                continue
            if outcomes and item.get("outcome") not in outcomes:
                continue
            if families and item.get("family") not in families:
                continue
            if since_ms is not None and _received(item) < since_ms:
                continue
            if payers and item.get("payer") not in payers:
                continue
            found.append(item)
        return sorted(found, key=lambda i: (_received(i), i.get("event_id") or ""))


def _received(item: Item) -> int:
    value: Any = item.get("received_at")
    return value if isinstance(value, int) else 0
