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
* **Changes are announced once.** The payer's partition is read with the inbox item (one request);
  when the event changes what the payer is granted, the same atomic write records the events to
  publish in the payer's outbox item (:mod:`paygate.service.outbox`). A duplicate or a stale event
  announces nothing.

All of it runs against the :class:`~paygate.service.ports.StateStore` port, so the same code is
tested on the in-memory store and on DynamoDB.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from paygate.clock import Clock, system_clock
from paygate.domain.access import AccessPolicy
from paygate.domain.announcements import payment_failed
from paygate.domain.catalog import Catalog
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
    INBOX_SK,
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
from paygate.service.outbox import ANNOUNCED_KINDS, Cause, Outbox, events_of
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
MAX_ATTEMPTS = 8
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


#: A record whose partition the first read did not cover (read it on its own).
_NOT_READ: Any = object()


class ApplyService:
    def __init__(
        self,
        store: StateStore,
        retention_days: int = 90,
        sleep: Callable[[float], None] = time.sleep,
        *,
        catalog: Catalog | None = None,
        policy: AccessPolicy | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.retention_s = retention_days * DAY_S
        self._sleep = sleep
        self._clock = clock
        if catalog is None:
            from paygate import settings  # the deployment's catalog, as every function reads it
            from paygate.infra.catalog_file import load_catalog

            catalog = load_catalog(settings.catalog_path())
        self.outbox = Outbox(catalog, policy or AccessPolicy())

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
            bound = [bind(r, customer, resolution) for r in others.records]
            announced = sorted({r.payer for r in bound if r.payer.kind in ANNOUNCED_KINDS}, key=lambda p: p.key)
            # One request: the inbox item (a duplicate ends here), the partitions whose grants may change
            # and the links' own (whether each exists, where it points, whether its move is done).
            link_pks = [record_key(link).pk for link in links] if attempt == 0 else []
            read = self.store.read_partitions(
                [entry.key.pk, *(payer_pk(p.key) for p in announced), *link_pks], consistent=True
            )
            kept = next((i for i in read.get(entry.key.pk, []) if i.get("sk") == INBOX_SK), None)
            if kept is not None and not self._inbox_accepts(entry).holds(kept):
                self._finish_moves(entry, kept)
                return Outcome.DUPLICATE
            for link in links if attempt == 0 else []:
                key = record_key(link)
                found = next((i for i in read[key.pk] if i.get("sk") == key.sk), None)
                if (
                    found is None
                    or found.get(LINKED_PAYER) != body_fields(link.body)[LINKED_PAYER]
                    or not found.get(MOVED)
                ):
                    self._settle_link(entry.provider, link, creating, found)
            planned = self._plan(entry, bound, stale, read)
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
            heads = self._outboxes(entry, announced, planned, read)
            writes: list[Write] = [inbox, *(w for _, w in planned), *link_writes.values(), *heads]
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
                # A merged record, the unlinked check or an outbox item that another writer moved on
                # is read and resolved again.
                stale.update(record_key(r) for r, w in planned if isinstance(w, Update) and rejected.failed(w))
                for link in links:
                    if rejected.failed(link_writes[record_key(link)]):
                        self._settle_link(entry.provider, link, creating)
                if rejected.contended or any(rejected.failed(h) for h in heads):
                    # Another writer of the same payer went first: wait a little, spread, before reading again.
                    self._sleep(_backoff(attempt))
        else:
            raise StoreUnavailable("the event could not be applied: too many concurrent writers")
        self._finish_moves(entry, item, just_linked=True)
        return outcome

    def _outboxes(
        self,
        entry: InboxEntry,
        announced: list[Payer],
        planned: list[tuple[StateRecord, Write]],
        read: Mapping[str, list[Item]],
    ) -> list[Write]:
        """Each announced payer's outbox item, for the records this write changes (none if stale)."""
        writes: list[Write] = []
        now = self._clock()
        for payer in announced:
            mine = [(r, w) for r, w in planned if r.payer == payer]
            if not mine:
                continue
            cause = Cause("event", entry.provider, entry.event_id, entry.event_type, max(r.version for r, _ in mine))
            failures = [
                found for r, w in mine if (found := payment_failed(r.kind, r.record_id, _fields_of(w))) is not None
            ]
            put = self.outbox.write(payer, read[payer_pk(payer.key)], [w for _, w in mine], cause, now, failures)
            if put is not None:
                writes.append(put)
        return writes

    def reevaluate(self, payer: Payer, cause: Cause) -> list[dict[str, Any]]:
        """Compare what ``payer`` is granted now with what was last announced, and announce the
        difference (a window that ended, state that moved with a link). The events written, if any."""
        if payer.kind not in ANNOUNCED_KINDS:
            return []
        pk = payer_pk(payer.key)
        for attempt in range(MAX_ATTEMPTS):
            items = self.store.read_partitions([pk], consistent=True)[pk]
            put = self.outbox.write(payer, items, [], cause, self._clock(), always=False)
            if put is None:
                return []
            try:
                self.store.write([put])
                return events_of(put.item)
            except WriteRejected:
                self._sleep(_backoff(attempt))
        raise StoreUnavailable("the payer could not be re-evaluated: too many concurrent writers")

    def _link_write(self, link: StateRecord, entry: InboxEntry, create: bool) -> Write:
        key = record_key(link)
        if create:
            item = {**record_fields(link, entry), "pk": key.pk, "sk": key.sk, MOVED: False}
            return Put(item, IsAbsent())
        target = body_fields(link.body)[LINKED_PAYER]
        return Require(key, AllOf((FieldEquals(LINKED_PAYER, target), FieldEquals(MOVED, True))))

    def _settle_link(self, provider: str, link: StateRecord, creating: set[Key], stored: Any = _NOT_READ) -> None:
        """A link not stored as this event expects (found by the first read, or by a failed check):
        create it, complete its move, or refuse to re-point it."""
        key = record_key(link)
        if stored is _NOT_READ:
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
        self._write_moves([self._finish_move(provider, link.payer)])

    def _finish_moves(self, entry: InboxEntry, inbox: Item | None, *, just_linked: bool = False) -> None:
        """Finish the moves the inbox item names, then clear them from it, with the links' ``moved``
        flags in one write. ``just_linked``: the links were created by this very delivery (nothing
        can have moved before, so an empty move changes no one's grants)."""
        sources = (inbox or {}).get(MOVING) or []
        done = [self._finish_move(entry.provider, Payer.from_key(s), announce=not just_linked) for s in sources]
        if sources:
            self._write_moves([*done, Update(entry.key, {MOVING: []}, FieldEquals("event_id", entry.event_id))])

    def _write_moves(self, writes: list[Write]) -> None:
        """Mark moves done. Refused only when another writer's transaction was in the way: the moves
        stay named on the inbox item, so the provider's redelivery (answered 503 now) finishes them."""
        try:
            self.store.write(writes)
        except WriteRejected as rejected:
            raise StoreUnavailable("the moves could not be marked done; a redelivery finishes them") from rejected

    def _finish_move(self, provider: str, source: Payer, *, announce: bool = True) -> Update:
        """Move what is kept under ``source``; the write that marks its link's move done (to make)."""
        target, moved = self._move(provider, source)
        # What moved may change what the payer is granted: announced before the move is marked done,
        # so a crash in between is announced by the redelivery (which announces even an empty move:
        # the crashed attempt may have moved everything).
        if target is not None and target != source and (moved or announce):
            self.reevaluate(target, Cause("link", provider, at=self._clock()))
        return Update(_link_key(provider, source), {MOVED: True}, FieldEquals("kind", RecordKind.CUSTOMER_LINK.value))

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
                self._sleep(_backoff(attempt))
        raise StoreUnavailable("the event could not be recorded: too many concurrent writers")

    def _plan(
        self,
        entry: InboxEntry,
        records: list[Any],
        stale: set[Key],
        read: Mapping[str, list[Item]],
    ) -> list[tuple[StateRecord, Write]]:
        planned: list[tuple[StateRecord, Write]] = []
        for record in records:
            key = record_key(record)
            # What the read found of the record (``None`` if absent, ``_NOT_READ`` if its partition was not read).
            found = next((i for i in read[key.pk] if i.get("sk") == key.sk), None) if key.pk in read else _NOT_READ
            if isinstance(record, MergedRecord):
                stored = self.store.get(key) if found is _NOT_READ else found
                merged = record.merge(record.decode(stored) if stored else None)
                if merged is None:
                    continue
                version, body = merged
                concrete = StateRecord(record.payer, record.kind, record.record_id, version, body)
                condition = AtVersion(stored[VERSION]) if stored else IsAbsent()
                planned.append(
                    (concrete, Put({**record_fields(concrete, entry), "pk": key.pk, "sk": key.sk}, condition))
                )
            elif key in stale or (isinstance(found, dict) and not OlderThan(record.version).holds(found)):
                stale.add(key)  # versions only grow: known stale without a failed write
            else:
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
        return resolve(self.store, provider, payer)

    def _move(self, provider: str, source: Payer) -> tuple[Payer | None, int]:
        """Move what is kept under ``source`` to where its stored link leads: (the payer, the number moved).

        Each record moves in its own atomic write (put into the payer's partition if newer there,
        delete from the source if unchanged), so a crash or a race leaves it in one place or the
        other, never lost; whatever is left behind moves with the next write of the link.
        """
        target = self.resolve(provider, source)
        if target.payer is None or target.payer == source:
            return target.payer, 0
        moved = 0
        # Both of the source's partitions in one read (what it holds now, and its history).
        found = self.store.read_partitions([payer_pk(source.key), history_pk(source.key)], consistent=True)
        kept = [item for items in found.values() for item in items]
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
        return target.payer, moved

    # -- reads ---------------------------------------------------------------------------------

    def event(self, family: str, event_id: str) -> Item | None:
        """The inbox item of one delivery, or ``None``."""
        return self.store.get(inbox_key(family, event_id))

    def payer_items(self, payer_key: str) -> list[Item]:
        """Everything stored for one payer: what it holds now, then its history."""
        return [*self.store.query(payer_pk(payer_key)), *self.store.query(history_pk(payer_key))]


def resolve(store: StateStore, provider: str, payer: Payer) -> Resolution:
    """The payer that ``payer`` (a provider id kept as a customer payer) belongs to, by its links."""
    inherit: dict[str, Any] = {}
    current, seen = payer, {payer.key}
    for _ in range(MAX_LINK_HOPS):
        if current.kind is not PayerKind.CUSTOMER:
            break
        link = store.get(_link_key(provider, current))
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


def bind[R: (StateRecord, MergedRecord)](record: R, customer: Payer | None, resolution: Resolution) -> R:
    """A record kept under the provider id ``customer``, filed under the payer its links lead to (with
    what the links know); any other record as it is."""
    if customer is None or record.payer != customer or is_link(record) or resolution.payer is None:
        return record
    if isinstance(record, MergedRecord):
        return replace(record, payer=resolution.payer)
    return replace(record, payer=resolution.payer, body=fill_inherited(record.body, resolution.inherit))


def _backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, with jitter so racing writers spread."""
    return 0.005 * (2**attempt) * (0.5 + random.random())  # noqa: S311 - timing jitter, not a secret


def _fields_of(write: Write) -> Mapping[str, Any]:
    if isinstance(write, Put):
        return write.item
    return write.fields if isinstance(write, Update) else {}


def _link_key(provider: str, source: Payer) -> Key:
    return Key(payer_pk(source.key), record_sk(RecordKind.CUSTOMER_LINK, link_record_id(provider, source.id)))
