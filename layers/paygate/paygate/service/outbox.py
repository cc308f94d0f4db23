"""The outbox: each payer's announced entitlements, written in the same transaction as the change.

One item per payer, in the payer's own partition (``pk = PAYER#<payer>``, ``sk = entitlements``):

* ``revision``: bumped by every write of the payer's records through :mod:`paygate.service.apply`,
  under the condition that it is still the one read. Two writers of one payer are thus serialized: the
  snapshot a write compares with is always the one its own write builds on, so no change slips
  between two writers that each saw none.
* the snapshot last announced (:class:`~paygate.domain.announcements.Snapshot`) and ``sequence``,
  the number of the payer's announcements so far.
* ``announce`` and ``events``: set by a write that announces something, the events (as JSON) the
  publisher sends. A write that announces nothing sets ``announce`` false; the stream's filter drops it.
* ``due_shard`` / ``due_at``: when a window ends, the instant the clock alone changes the grants: the
  sparse index ``by_due_at`` lists it for the sweeper (:meth:`ApplyService.reevaluate`).

Every announcement modifies this one item, and DynamoDB Streams keeps the records of one item in the
order of its modifications: one payer's events reach the publisher in order.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paygate.domain.access import AccessPolicy
from paygate.domain.announcements import SOURCE, Announcement, Snapshot, changes, snapshot_of
from paygate.domain.catalog import Catalog
from paygate.domain.entitlements import entitlements_of
from paygate.domain.state import Payer, PayerKind
from paygate.service.layout import payer_pk, payer_state
from paygate.service.ports import Delete, FieldEquals, Index, IsAbsent, Item, Put, Update, Write

HEAD_SK = "entitlements"
HEAD_KIND = "entitlements"
#: The sparse index of payers whose grants the clock will change, by when.
DUE_INDEX = Index("by_due_at", "due_shard", "due_at")
#: Index partitions the due instants are spread over (a sweep reads each).
DUE_SHARDS = 8
#: Payers whose grants are announced: a provider customer not linked to one yet grants nothing.
ANNOUNCED_KINDS = frozenset({PayerKind.USER, PayerKind.ORGANIZATION})


@dataclass(frozen=True, slots=True)
class Cause:
    """What made the grants change: a provider event, the clock, or state moving with a new link."""

    kind: str
    provider: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    #: The version of the records the event wrote (``domain.state.version_key``).
    version: str | None = None
    #: For the clock: the instant a window ended.
    at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "provider": self.provider,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "version": self.version,
            "at": self.at,
        }


def due_shard(payer_key: str) -> str:
    return f"due#{zlib.crc32(payer_key.encode()) % DUE_SHARDS}"


def due_shards() -> list[str]:
    return [f"due#{n}" for n in range(DUE_SHARDS)]


def head_of(items: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((i for i in items if i.get("sk") == HEAD_SK), None)


class Outbox:
    """Builds the write of a payer's outbox item from their partition as read and the writes planned."""

    def __init__(self, catalog: Catalog, policy: AccessPolicy) -> None:
        self.catalog = catalog
        self.policy = policy

    def write(
        self,
        payer: Payer,
        items: Sequence[Item],
        planned: Sequence[Write],
        cause: Cause,
        now_ms: int,
        extra: Sequence[Announcement] = (),
        *,
        always: bool = True,
    ) -> Put | None:
        """The outbox item after ``planned`` lands on ``items`` (the payer's partition as read), with the
        events to publish if the grants change. Written under the condition that the item is unchanged
        since the read. ``always=False`` (a re-evaluation) gives ``None`` when there is nothing to record."""
        head = head_of(items)
        after_items = _overlay(items, planned, payer_pk(payer.key))
        held = entitlements_of(payer, payer_state(after_items, now_ms), self.catalog, self.policy, now_ms)
        after = snapshot_of(held)
        if head is None and always:
            # The first event for this payer since events were enabled: compare with what its stored
            # records granted until now, so existing payers are not announced as new ones.
            before_held = entitlements_of(payer, payer_state(items, now_ms), self.catalog, self.policy, now_ms)
            before, revision, sequence = snapshot_of(before_held), 0, 0
        elif head is None:
            # Re-evaluating a payer never announced (state that moved in with a new link): all is new.
            before, revision, sequence = Snapshot(), 0, 0
        else:
            before, revision, sequence = Snapshot.from_fields(head), int(head["revision"]), int(head["sequence"])
        announcements = [*extra, *changes(before, after, held)]
        due = after.next_change_at
        if not always and not announcements and after == before and (head or {}).get("due_at") == due:
            return None
        if announcements:
            sequence += 1
        item: Item = {
            "pk": payer_pk(payer.key),
            "sk": HEAD_SK,
            "kind": HEAD_KIND,
            "payer": payer.key,
            "revision": revision + 1,
            "sequence": sequence,
            **after.to_fields(),
            "announce": bool(announcements),
            "evaluated_at": now_ms,
            "cause": cause.to_json(),
        }
        if announcements:
            events = [published(a, payer, sequence, cause, now_ms) for a in announcements]
            item["events"] = json.dumps(events, separators=(",", ":"), sort_keys=True)
        if due is not None:
            item[DUE_INDEX.pk] = due_shard(payer.key)
            item[DUE_INDEX.sk] = due
        condition = IsAbsent() if head is None else FieldEquals("revision", revision)
        return Put(item, condition)


def published(announcement: Announcement, payer: Payer, sequence: int, cause: Cause, now_ms: int) -> dict[str, Any]:
    """One event as the publisher sends it: EventBridge's ``source``, ``detail-type`` and ``detail``."""
    event_id = announcement.event_id(payer.key, sequence)
    return {
        "source": SOURCE,
        "detail_type": announcement.detail_type,
        "time": now_ms,
        "detail": {
            "id": event_id,
            "payer": {"type": payer.kind.value, "id": payer.id},
            "sequence": sequence,
            "occurred_at": now_ms,
            "cause": cause.to_json(),
            **announcement.detail,
        },
    }


def events_of(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events an outbox item announces (none unless ``announce`` is set)."""
    if item.get("kind") != HEAD_KIND or item.get("announce") is not True or not item.get("events"):
        return []
    return json.loads(item["events"])


def _overlay(items: Sequence[Item], writes: Sequence[Write], pk: str) -> list[Item]:
    """The partition as it will be once ``writes`` land (an update keeps the fields it does not set)."""
    by_sk: dict[str, Item] = {i["sk"]: dict(i) for i in items}
    for write in writes:
        key = write.key
        if key.pk != pk:
            continue
        match write:
            case Put(item=item):
                by_sk[key.sk] = dict(item)
            case Update(fields=fields):
                by_sk[key.sk] = {**by_sk.get(key.sk, {"pk": key.pk, "sk": key.sk}), **fields}
            case Delete():
                by_sk.pop(key.sk, None)
    return list(by_sk.values())
