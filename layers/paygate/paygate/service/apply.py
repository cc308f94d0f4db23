"""Applying an event exactly once: the rules every event, replay and repair goes through.

* **Exactly once.** An event's inbox item is written in the same atomic write as the state it
  changes. A redelivery fails the inbox condition: a duplicate, nothing applied twice; a crash
  leaves nothing half-written.
* **Stale never rolls back.** Each record is written only if its version is newer than the stored
  one. An event whose records are partly newer and partly older applies only its newer part.
* **Links.** A record kept under a provider id (a customer, a payment) is filed under the payer its
  links lead to (:mod:`paygate.domain.links`); when a link is written, what was kept under its source
  moves into the payer's partition.
* **Merged records** (a credit balance) are read, merged and written only if unchanged since the read.

All of it runs against the :class:`~paygate.service.ports.StateStore` port, so the same code is
tested on the in-memory store and on DynamoDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from paygate.domain.links import INHERIT, LINKED_PAYER, fill_inherited, is_link, link_record_id
from paygate.domain.state import (
    Effect,
    MergedRecord,
    Outcome,
    Payer,
    PayerKind,
    RecordKind,
    StateRecord,
    body_fields,
)
from paygate.service.layout import (
    InboxEntry,
    history_pk,
    inbox_item,
    inbox_key,
    partition_of,
    payer_pk,
    record_fields,
    record_key,
    record_sk,
)
from paygate.service.ports import (
    VERSION,
    AllOf,
    AnyOf,
    AtVersion,
    Delete,
    ExpiredBefore,
    FieldEquals,
    IsAbsent,
    Item,
    Key,
    OlderThan,
    Put,
    Require,
    StateStore,
    StoreUnavailable,
    Update,
    Write,
    WriteRejected,
)

#: A link's flag: everything kept under its provider id has moved to the payer.
MOVED = "moved"
#: On an inbox item: the provider ids whose new links still have records to move.
MOVING = "moving"
#: Attempts at one event against concurrent writers of the same records before answering 5xx.
MAX_ATTEMPTS = 6
#: A customer, or a payment that leads to its customer: links never chain further than this.
MAX_LINK_HOPS = 3
DAY_S = 86_400


class PayerConflict(Exception):
    """The event names another payer for a provider id already linked to one (say a Dodo customer
    whose checkout named user A and now names user B). The first link stays; the event is
    quarantined until an operator decides."""

    def __init__(self, source_id: str, linked: str | None, wanted: str, linked_by: str | None) -> None:
        super().__init__(
            f"{source_id} belongs to {linked} (since event {linked_by}); this event names {wanted}. "
            f"The link is not moved: check which payer is right, then relink or replay"
        )
        self.source_id = source_id
        self.linked = linked
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a provider id's state belongs now: the payer its links lead to."""

    payer: Payer | None
    #: Facts the links on the way know (e.g. a payment's subscription).
    inherit: Mapping[str, Any] = field(default_factory=dict)
    #: The provider id with no link yet, whose state is kept under it; the write checks it is still unlinked.
    unlinked: Payer | None = None


class ApplyService:
    def __init__(
        self,
        store: StateStore,
        retention_days: int = 90,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.retention_s = retention_days * DAY_S
        self._sleep = sleep

    def apply(self, entry: InboxEntry, effect: Effect) -> Outcome:
        """Record ``entry`` and apply the non-stale part of ``effect``, atomically.

        Raises :class:`PayerConflict` (nothing written) when the effect would point a provider id that
        is already linked to one payer at another: the first link stays, an operator decides.
        """
        customer = effect.payer if effect.payer is not None and effect.payer.kind is PayerKind.CUSTOMER else None
        links = [r for r in effect.records if is_link(r)]
        others = Effect(effect.payer, tuple(r for r in effect.records if not is_link(r)))
        # A link is expected to exist already, pointing where this event says, its records moved: the
        # write then only checks that (one request). Otherwise it is created, or a move is completed.
        creating: set[Key] = set()
        stale: set[Key] = set()  # versions only grow: a record found stale stays stale
        outcome = Outcome.STALE
        item: Item = {}
        for attempt in range(MAX_ATTEMPTS):
            resolution = self.resolve(entry.provider, customer) if customer else Resolution(effect.payer)
            planned = self._plan(entry, others, customer, resolution, stale)
            link_writes = {
                record_key(link): self._link_write(link, entry, record_key(link) in creating) for link in links
            }
            written = [record_sk(r.kind, r.record_id) for r, _ in planned] + [
                key.sk for key in link_writes if key in creating
            ]
            outcome = Outcome.APPLIED if written else Outcome.STALE
            item = inbox_item(entry, outcome, resolution.payer, written, self.retention_s)
            # The moves a new link starts are named on the inbox item, so a redelivery after a crash
            # (a duplicate) finishes them.
            item[MOVING] = [link.payer.key for link in links if record_key(link) in creating]
            inbox = Put(item, self._inbox_accepts(entry), return_existing=True)
            writes: list[Write] = [inbox, *(w for _, w in planned), *link_writes.values()]
            if planned and resolution.unlinked is not None:
                writes.append(Require(_link_key(entry.provider, resolution.unlinked), IsAbsent()))
            try:
                self.store.write(writes)
                break
            except WriteRejected as rejected:
                if rejected.failed(inbox):
                    self._finish_moves(entry, rejected.existing(inbox))
                    return Outcome.DUPLICATE
                # A plain record that failed its version guard is stale: drop it and apply the rest.
                # A merged record or the unlinked check that failed is read and resolved again.
                stale.update(record_key(r) for r, w in planned if isinstance(w, Update) and rejected.failed(w))
                for link in links:
                    if rejected.failed(link_writes[record_key(link)]):
                        self._settle_link(entry.provider, link, creating)
                if rejected.contended:
                    self._sleep(0.005 * (2**attempt))
        else:
            raise StoreUnavailable("the event could not be applied: too many concurrent writers")
        self._finish_moves(entry, item)
        return outcome

    def _link_write(self, link: StateRecord, entry: InboxEntry, create: bool) -> Write:
        key = record_key(link)
        if create:
            item = {**record_fields(link, entry), "pk": key.pk, "sk": key.sk, MOVED: False}
            return Put(item, IsAbsent())
        target = body_fields(link.body)[LINKED_PAYER]
        return Require(key, AllOf((FieldEquals(LINKED_PAYER, target), FieldEquals(MOVED, True))))

    def _settle_link(self, provider: str, link: StateRecord, creating: set[Key]) -> None:
        """After a link check failed: create the link, complete its move, or refuse to re-point it."""
        key = record_key(link)
        stored = self.store.get(key)
        if stored is None:
            creating.add(key)
            return
        creating.discard(key)
        wanted = body_fields(link.body)[LINKED_PAYER]
        if stored.get(LINKED_PAYER) != wanted:
            raise PayerConflict(link.payer.id, stored.get(LINKED_PAYER), wanted, stored.get("event_id"))
        # The same payer, but what was kept under the provider id has not moved yet (a crash between
        # the link's write and the move, or a link written before links recorded their move).
        self._finish_move(provider, link.payer)

    def _finish_moves(self, entry: InboxEntry, inbox: Item | None) -> None:
        """Finish the moves the inbox item names, then clear them from it."""
        sources = (inbox or {}).get(MOVING) or []
        for source in sources:
            self._finish_move(entry.provider, Payer.from_key(source))
        if sources:
            self.store.write([Update(entry.key, {MOVING: []}, FieldEquals("event_id", entry.event_id))])

    def _finish_move(self, provider: str, source: Payer) -> None:
        self.move_linked(provider, source)
        link = _link_key(provider, source)
        self.store.write([Update(link, {MOVED: True}, FieldEquals("kind", RecordKind.CUSTOMER_LINK.value))])

    def keep(self, entry: InboxEntry, outcome: Outcome) -> Outcome:
        """Record an event that changes no state (ignored, or quarantined for a later replay)."""
        inbox = Put(inbox_item(entry, outcome, None, [], self.retention_s), self._inbox_accepts(entry))
        for attempt in range(MAX_ATTEMPTS):
            try:
                self.store.write([inbox])
                return outcome
            except WriteRejected as rejected:
                if rejected.failed(inbox):
                    self._finish_moves(entry, rejected.existing(inbox))
                    return Outcome.DUPLICATE
                self._sleep(0.005 * (2**attempt))
        raise StoreUnavailable("the event could not be recorded: too many concurrent writers")

    def _plan(
        self,
        entry: InboxEntry,
        effect: Effect,
        customer: Payer | None,
        resolution: Resolution,
        stale: set[Key],
    ) -> list[tuple[StateRecord, Write]]:
        planned: list[tuple[StateRecord, Write]] = []
        for record in effect.records:
            record = _bind(record, customer, resolution)
            key = record_key(record)
            if isinstance(record, MergedRecord):
                stored = self.store.get(key)
                merged = record.merge(record.decode(stored) if stored else None)
                if merged is None:
                    continue
                version, body = merged
                concrete = StateRecord(record.payer, record.kind, record.record_id, version, body)
                condition = AtVersion(stored[VERSION]) if stored else IsAbsent()
                planned.append(
                    (concrete, Put({**record_fields(concrete, entry), "pk": key.pk, "sk": key.sk}, condition))
                )
            elif key not in stale:
                planned.append((record, Update(key, record_fields(record, entry), OlderThan(record.version))))
        return planned

    @staticmethod
    def _inbox_accepts(entry: InboxEntry) -> AnyOf:
        # New, or a quarantined one being redelivered after a fix, or expired but not yet deleted
        # (DynamoDB deletes expired items lazily, DynamoDB Local never does).
        return AnyOf(
            (IsAbsent(), FieldEquals("outcome", Outcome.QUARANTINED.value), ExpiredBefore(entry.received_at // 1000))
        )

    # -- payers known through provider ids (see paygate.domain.links) -------------------------

    def resolve(self, provider: str, payer: Payer) -> Resolution:
        """The payer that ``payer`` (a provider id kept as a customer payer) belongs to, by its links."""
        inherit: dict[str, Any] = {}
        current, seen = payer, {payer.key}
        for _ in range(MAX_LINK_HOPS):
            if current.kind is not PayerKind.CUSTOMER:
                break
            link = self.store.get(_link_key(provider, current))
            if link is None:
                return Resolution(current, inherit, unlinked=current)
            for key, value in (link.get(INHERIT) or {}).items():
                inherit.setdefault(key, value)
            following = Payer.from_key(link[LINKED_PAYER])
            if following.key in seen:
                break
            seen.add(following.key)
            current = following
        return Resolution(current, inherit)

    def move_linked(self, provider: str, source: Payer) -> int:
        """Move what is kept under ``source`` to where its stored link leads; the number moved.

        Each record moves in its own atomic write (put into the payer's partition if newer there,
        delete from the source if unchanged), so a crash or a race leaves it in one place or the
        other, never lost; whatever is left behind moves with the next write of the link.
        """
        target = self.resolve(provider, source)
        if target.payer is None or target.payer == source:
            return 0
        moved = 0
        kept = [
            *self.store.query(payer_pk(source.key), consistent=True),
            *self.store.query(history_pk(source.key), consistent=True),
        ]
        for item in kept:
            if item.get("kind") == RecordKind.CUSTOMER_LINK.value:
                continue
            copy = {
                **fill_inherited(item, target.inherit),
                "pk": partition_of(target.payer.key, RecordKind(item["kind"])),
                "payer": target.payer.key,
            }
            put = Put(copy, OlderThan(item[VERSION]))
            delete = Delete(Key(item["pk"], item["sk"]), AtVersion(item[VERSION]))
            try:
                self.store.write([put, delete])
                moved += 1
            except WriteRejected as rejected:
                if rejected.failed(put) and not rejected.failed(delete):
                    # The payer already holds something newer: the kept copy is obsolete.
                    try:
                        self.store.write([delete])
                    except WriteRejected:
                        pass
        return moved

    # -- reads ---------------------------------------------------------------------------------

    def event(self, family: str, event_id: str) -> Item | None:
        """The inbox item of one delivery, or ``None``."""
        return self.store.get(inbox_key(family, event_id))

    def payer_items(self, payer_key: str) -> list[Item]:
        """Everything stored for one payer: what it holds now, then its history."""
        return [*self.store.query(payer_pk(payer_key)), *self.store.query(history_pk(payer_key))]


def _bind(record: StateRecord | MergedRecord, customer: Payer | None, resolution: Resolution) -> Any:
    """A record kept under a provider id, filed under the payer its links lead to."""
    if customer is None or record.payer != customer or is_link(record) or resolution.payer is None:
        return record
    if isinstance(record, MergedRecord):
        return replace(record, payer=resolution.payer)
    return replace(record, payer=resolution.payer, body=fill_inherited(record.body, resolution.inherit))


def _link_key(provider: str, source: Payer) -> Key:
    return Key(payer_pk(source.key), record_sk(RecordKind.CUSTOMER_LINK, link_record_id(provider, source.id)))
