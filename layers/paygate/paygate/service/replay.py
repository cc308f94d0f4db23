"""Replaying stored events through the current code: after a fix, a quarantined event heals.

Every verified delivery is kept in the inbox with its raw body. A replay hands that body to the very
steps a provider's redelivery goes through (:func:`paygate.service.webhooks.record_verified`): read by
the family's current mappers with the current catalog, applied by :class:`ApplyService` under the same
event id. The signature was verified when the body was received and is not checked again.

* An event that was applied (or answered ``stale`` or ``ignored``) is a duplicate: nothing changes.
* A quarantined event is processed afresh, as a redelivery of it is.
* A dry run applies against a rehearsal of the store (reads see what is stored, writes are kept aside)
  and reports the difference it would make, writing nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.clock import Clock, system_clock
from paygate.domain.catalog import Catalog
from paygate.domain.state import Outcome
from paygate.providers.base import Delivery, InvalidEvent, WebhookFamily, load_json_object
from paygate.service.apply import ApplyService
from paygate.service.layout import InboxEntry
from paygate.service.ports import Delete, Item, Key, Put, Require, StateStore, Update, Write, WriteRejected
from paygate.service.webhooks import record_verified


@dataclass(frozen=True, slots=True)
class Change:
    """One item a replay wrote (or would write): as it was, and as it is after."""

    key: Key
    before: Item | None
    after: Item | None

    @property
    def fields(self) -> dict[str, tuple[Any, Any]]:
        """The attributes that differ, with their old and new values (``None`` when absent)."""
        before, after = self.before or {}, self.after or {}
        names = sorted(n for n in {*before, *after} if n not in ("pk", "sk"))
        return {n: (before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)}

    def to_json(self) -> dict[str, Any]:
        change = "added" if self.before is None else "removed" if self.after is None else "changed"
        return {
            "pk": self.key.pk,
            "sk": self.key.sk,
            "change": change,
            "fields": {n: {"before": b, "after": a} for n, (b, a) in self.fields.items()},
        }


@dataclass(frozen=True, slots=True)
class ReplayResult:
    family: str
    event_id: str
    event_type: str | None
    #: The stored outcome before the replay.
    previous: str | None
    outcome: Outcome | None
    #: The status a redelivery of the same body would be answered with.
    status: int
    #: Why the event is (still) quarantined, if it is.
    error: str | None
    changes: tuple[Change, ...]
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "previous": self.previous,
            "outcome": self.outcome.value if self.outcome else None,
            "status": self.status,
            "error": self.error,
            "dry_run": self.dry_run,
            "changes": [c.to_json() for c in self.changes],
        }


class UnknownFamily(LookupError):
    """The stored event names a family this code does not have (an endpoint since removed)."""


class ReplayService:
    def __init__(
        self,
        store: StateStore,
        catalog: Catalog,
        families: Mapping[str, WebhookFamily],
        retention_days: int = 90,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.families = families
        self.retention_days = retention_days
        self._clock = clock

    def replay(self, stored: Mapping[str, Any], *, dry_run: bool = False) -> ReplayResult:
        """Re-run one stored inbox item (as :class:`~paygate.service.inbox.Inbox` reads it) through the
        current code; with ``dry_run`` nothing is written."""
        family = self.families.get(stored["family"])
        if family is None:
            raise UnknownFamily(f"no webhook family {stored['family']!r} in this code")
        entry = InboxEntry(
            family=family.name,
            provider=family.provider,
            event_id=stored["event_id"],
            body=stored["body"],
            received_at=int(stored["received_at"]),
            replayed_at=self._clock(),
        )
        target: _Rehearsal | _Recorder = _Rehearsal(self.store) if dry_run else _Recorder(self.store)
        applier = ApplyService(target, retention_days=self.retention_days)
        try:
            envelope: dict[str, Any] | InvalidEvent = load_json_object(entry.body.encode())
        except InvalidEvent as exc:
            envelope = exc
        # The signed timestamp is not kept; no mapper reads it (versions come from the body's own times).
        delivery = Delivery(entry.event_id, entry.received_at // 1000)
        result = record_verified(family, applier, self.catalog, entry, envelope, delivery)
        changes = tuple(target.changes())
        after = next((c.after for c in changes if c.key == entry.key), None) or stored
        return ReplayResult(
            family=family.name,
            event_id=entry.event_id,
            event_type=result.event_type or stored.get("event_type"),
            previous=stored.get("outcome"),
            outcome=result.outcome,
            status=result.response["statusCode"],
            error=after.get("error") if result.outcome is Outcome.QUARANTINED else _error_of(result.response),
            changes=changes,
            dry_run=dry_run,
        )


def _error_of(response: Mapping[str, Any]) -> str | None:
    if response["statusCode"] < 400:
        return None
    try:
        return json.loads(response["body"]).get("message")
    except (ValueError, AttributeError):
        return None


class _Recorder:
    """The store, noting each written item as it was before and after (two extra reads per item)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._changes: dict[Key, Change] = {}

    def write(self, writes: Sequence[Write]) -> None:
        keys = [w.key for w in writes if not isinstance(w, Require)]
        before = {k: self._store.get(k) for k in keys}
        self._store.write(writes)
        for key in keys:
            first = self._changes[key].before if key in self._changes else before[key]
            self._changes[key] = Change(key, first, self._store.get(key))

    def get(self, key: Key) -> Item | None:
        return self._store.get(key)

    def query(self, pk: str, sk_prefix: str = "", *, consistent: bool = False) -> list[Item]:
        return self._store.query(pk, sk_prefix, consistent=consistent)

    def read_partitions(self, pks: Sequence[str], sk_prefix: str = "") -> dict[str, list[Item]]:
        return self._store.read_partitions(pks, sk_prefix)

    def changes(self) -> Iterator[Change]:
        return (c for c in self._changes.values() if c.before != c.after)


class _Rehearsal:
    """The store as it would be after the writes, none of which reach it: reads see the stored items
    with the writes laid over them; conditions are checked as the store port defines them."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        #: Written items by key; ``None`` for a deleted one.
        self._overlay: dict[Key, Item | None] = {}

    def write(self, writes: Sequence[Write]) -> None:
        keys = [w.key for w in writes]
        current = [self.get(k) for k in keys]
        failed = [i for i, w in enumerate(writes) if w.condition is not None and not w.condition.holds(current[i])]
        if failed:
            existing = {
                i: current[i]
                for i in failed
                if isinstance(writes[i], Put) and writes[i].return_existing and current[i] is not None  # type: ignore[union-attr]
            }
            raise WriteRejected(writes, failed, existing=existing)
        for key, write, item in zip(keys, writes, current, strict=True):
            match write:
                case Put(item=new):
                    self._overlay[key] = copy.deepcopy(dict(new))
                case Update(fields=fields):
                    updated = item or {"pk": key.pk, "sk": key.sk}
                    updated.update({k: copy.deepcopy(v) for k, v in fields.items() if k not in ("pk", "sk")})
                    self._overlay[key] = updated
                case Delete():
                    self._overlay[key] = None

    def get(self, key: Key) -> Item | None:
        if key in self._overlay:
            return copy.deepcopy(self._overlay[key])
        return self._store.get(key)

    def query(self, pk: str, sk_prefix: str = "", *, consistent: bool = False) -> list[Item]:
        found = {i["sk"]: i for i in self._store.query(pk, sk_prefix, consistent=consistent)}
        for key, item in self._overlay.items():
            if key.pk == pk and key.sk.startswith(sk_prefix):
                if item is None:
                    found.pop(key.sk, None)
                else:
                    found[key.sk] = copy.deepcopy(item)
        return [found[sk] for sk in sorted(found)]

    def read_partitions(self, pks: Sequence[str], sk_prefix: str = "") -> dict[str, list[Item]]:
        return {pk: self.query(pk, sk_prefix) for pk in sorted(set(pks))}

    def changes(self) -> Iterator[Change]:
        for key, after in self._overlay.items():
            before = self._store.get(key)
            if before != after:
                yield Change(key, before, after)
