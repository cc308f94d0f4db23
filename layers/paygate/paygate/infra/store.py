"""The DynamoDB store: an inbox of every verified event and each payer's versioned state.

One table, two kinds of item:

* ``pk = EVENT#<family>#<event_id>, sk = EVENT`` - the inbox: the raw body, its type and outcome.
* ``pk = PAYER#<payer key>, sk = <record kind>#<record id>`` - a payer's state, so reading
  everything a payer has is one Query.

An event's inbox item is written in the same transaction as the state it changes: a redelivery
fails the inbox condition (a duplicate, nothing applied twice) and a crash leaves nothing
half-written. Each state record is written only if its version is newer than the stored one, so a
stale event never rolls state back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from paygate.domain.links import INHERIT, LINKED_PAYER, MergedRecord, fill_inherited, is_link, link_record_id
from paygate.domain.state import Effect, Outcome, Payer, PayerKind, RecordKind, StateRecord
from paygate.infra.dynamodb import from_item, new_client, to_item

#: Answer fast and let the provider retry, rather than hold a webhook open on a sick store:
#: two tries of at most 1 s to connect and 3 s to read stay inside the 10 s Lambda timeout.
CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})
_MAX_APPLY_ATTEMPTS = 6
#: A customer, or a payment that leads to its customer: links never chain further than this.
_MAX_LINK_HOPS = 3


class StoreUnavailable(Exception):
    """The store could not be read or written; the caller answers 5xx so the provider retries."""


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A verified delivery, kept whatever becomes of it."""

    family: str
    provider: str
    event_id: str
    body: str
    received_at: int
    event_type: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a provider id's state belongs now: the payer its links lead to."""

    payer: Payer | None
    #: Facts the links on the way know (e.g. a payment's subscription).
    inherit: Mapping[str, object] = field(default_factory=dict)
    #: The provider id with no link yet, whose state is kept under it; the write checks it is still unlinked.
    unlinked: Payer | None = None


def payer_pk(payer_key: str) -> str:
    return f"PAYER#{payer_key}"


def record_sk(record: StateRecord) -> str:
    return f"{record.kind.value}#{record.record_id}"


def event_pk(family: str, event_id: str) -> str:
    return f"EVENT#{family}#{event_id}"


class Store:
    def __init__(self, table_name: str, client: Any | None = None, retention_days: int = 90) -> None:
        self.table_name = table_name
        # AWS_ENDPOINT_URL_DYNAMODB (boto3's own setting) points this at DynamoDB Local.
        self.client = client or new_client(CLIENT_CONFIG)
        self.retention_s = retention_days * 86_400

    # -- writes ------------------------------------------------------------------------------

    def apply(self, entry: InboxEntry, effect: Effect) -> Outcome:
        """Record ``entry`` and apply the non-stale part of ``effect``, atomically.

        An effect that involves provider links (a customer payer, link records, merged records) is
        resolved first; see :meth:`_apply_linked`.
        """
        if needs_linking(effect):
            return self._apply_linked(entry, effect)
        pending = list(effect.records)
        payer = effect.payer.key if effect.payer else None
        for attempt in range(_MAX_APPLY_ATTEMPTS):
            outcome = Outcome.APPLIED if pending else Outcome.STALE
            writes = [self._inbox_put(entry, outcome, payer, [record_sk(r) for r in pending])]
            writes += [self._record_put(r, entry) for r in pending]
            try:
                self._write(writes)
                return outcome
            except _Cancelled as cancelled:
                if cancelled.failed_condition(0):
                    return Outcome.DUPLICATE
                stale = {i - 1 for i in range(1, len(writes)) if cancelled.failed_condition(i)}
                if stale:
                    # Drop what a newer event already wrote, and apply the rest.
                    pending = [r for j, r in enumerate(pending) if j not in stale]
                elif not cancelled.conflict:
                    raise StoreUnavailable(f"transaction cancelled: {cancelled.codes}") from None
                if cancelled.conflict:
                    time.sleep(0.005 * (2**attempt))
        raise StoreUnavailable("the event could not be applied: too many concurrent writers")

    def keep(self, entry: InboxEntry, outcome: Outcome) -> Outcome:
        """Record an event that changes no state (ignored, or quarantined for a later replay)."""
        try:
            self._write([self._inbox_put(entry, outcome, None, [])])
        except _Cancelled:
            return Outcome.DUPLICATE
        return outcome

    def _inbox_put(self, entry: InboxEntry, outcome: Outcome, payer: str | None, applied: list[str]) -> dict:
        item: dict[str, Any] = {
            "pk": event_pk(entry.family, entry.event_id),
            "sk": "EVENT",
            "family": entry.family,
            "provider": entry.provider,
            "event_id": entry.event_id,
            "event_type": entry.event_type,
            "outcome": outcome.value,
            "received_at": entry.received_at,
            "body": entry.body,
            "payer": payer,
            "applied": applied,
        }
        if entry.error:
            item["error"] = entry.error
        if outcome is not Outcome.QUARANTINED:
            # Quarantined events stay until replayed; the rest expire after the retention period.
            item["expires_at"] = entry.received_at // 1000 + self.retention_s
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(item),
                # New, or a quarantined one being redelivered after a fix, or expired but not yet
                # deleted (DynamoDB deletes expired items lazily, DynamoDB Local never does).
                "ConditionExpression": "attribute_not_exists(pk) OR outcome = :q OR expires_at < :now_s",
                "ExpressionAttributeValues": {
                    ":q": {"S": Outcome.QUARANTINED.value},
                    ":now_s": {"N": str(entry.received_at // 1000)},
                },
            }
        }

    def _record_put(self, record: StateRecord, entry: InboxEntry) -> dict:
        item = {
            **record.fields,
            "pk": payer_pk(record.payer.key),
            "sk": record_sk(record),
            "kind": record.kind.value,
            "record_id": record.record_id,
            "payer": record.payer.key,
            "version": record.version,
            "event_id": entry.event_id,
            "provider": entry.provider,
        }
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(#v) OR #v < :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"S": record.version}},
            }
        }

    def _write(self, writes: Sequence[dict]) -> None:
        try:
            if len(writes) == 1:
                # A lone put costs half a transaction's write units.
                self.client.put_item(**writes[0]["Put"])
            else:
                self.client.transact_write_items(TransactItems=list(writes))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise _Cancelled([{"Code": "ConditionalCheckFailed"}]) from None
            if code == "TransactionCanceledException":
                raise _Cancelled(exc.response.get("CancellationReasons") or []) from None
            raise StoreUnavailable(f"DynamoDB error {code}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    # -- payers known through provider ids (see paygate.domain.links) -------------------------

    def _apply_linked(self, entry: InboxEntry, effect: Effect) -> Outcome:
        """:meth:`apply` for an effect that involves provider links.

        1. A customer payer is resolved through its stored links (a GetItem per hop); its records are
           filed under the payer found, with what the links know filled in. If no link exists yet,
           the transaction checks that none appeared meanwhile.
        2. A merged record is read, merged and written only if unchanged since the read.
        3. After the transaction, each link the effect writes moves what was kept under its source id
           into the linked payer's partition (version-conditioned: it never rolls anything back).
        """
        unresolved = effect.payer if effect.payer is not None and effect.payer.kind is PayerKind.CUSTOMER else None
        stale: set[tuple[str, str]] = set()  # versions only grow: a stale record stays stale
        outcome = Outcome.STALE
        for attempt in range(_MAX_APPLY_ATTEMPTS):
            resolution = self.resolve(entry.provider, unresolved) if unresolved else Resolution(effect.payer)
            planned: list[tuple[StateRecord, str | None, bool]] = []  # record, version read, merged?
            for record in effect.records:
                record = _bind(record, unresolved, resolution)
                if isinstance(record, MergedRecord):
                    current = self._get(payer_pk(record.payer.key), record_sk(record))
                    merged = record.merge(current) if record.merge else None
                    if merged is not None:
                        version, fields = merged
                        concrete = StateRecord(record.payer, record.kind, record.record_id, version, fields)
                        planned.append((concrete, current.get("version") if current else None, True))
                elif (record.payer.key, record_sk(record)) not in stale:
                    planned.append((record, None, False))
            outcome = Outcome.APPLIED if planned else Outcome.STALE
            payer = resolution.payer.key if resolution.payer else None
            writes = [self._inbox_put(entry, outcome, payer, [record_sk(r) for r, _, _ in planned])]
            writes += [self._merged_put(r, entry, seen) if m else self._record_put(r, entry) for r, seen, m in planned]
            if planned and resolution.unlinked is not None:
                writes.append(self._unlinked_check(entry.provider, resolution.unlinked))
            try:
                self._write(writes)
                break
            except _Cancelled as cancelled:
                if cancelled.failed_condition(0):
                    outcome = Outcome.DUPLICATE
                    break
                failed = [i for i in range(1, len(writes)) if cancelled.failed_condition(i)]
                for i in failed:
                    if i <= len(planned) and not planned[i - 1][2]:
                        record = planned[i - 1][0]
                        stale.add((record.payer.key, record_sk(record)))
                # A merged record or the unlinked check failed: read and resolve again.
                if not failed and not cancelled.conflict:
                    raise StoreUnavailable(f"transaction cancelled: {cancelled.codes}") from None
                if cancelled.conflict:
                    time.sleep(0.005 * (2**attempt))
        else:
            raise StoreUnavailable("the event could not be applied: too many concurrent writers")
        # Also after a duplicate: a retry after a crash between the two steps completes the move.
        for link in (r for r in effect.records if is_link(r)):
            self.move_linked(entry.provider, link.payer)
        return outcome

    def resolve(self, provider: str, payer: Payer) -> Resolution:
        """The payer that ``payer`` (a provider id kept as a customer payer) belongs to, by its links."""
        inherit: dict[str, object] = {}
        current, seen = payer, {payer.key}
        for _ in range(_MAX_LINK_HOPS):
            if current.kind is not PayerKind.CUSTOMER:
                break
            link = self._get(payer_pk(current.key), _link_sk(provider, current))
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

        Each record moves in its own transaction (put into the payer's partition if newer there,
        delete from the source if unchanged), so a crash or a race leaves it in one place or the
        other, never lost; whatever is left behind moves with the next write of the link.
        """
        target = self.resolve(provider, source)
        if target.payer is None or target.payer == source:
            return 0
        moved = 0
        for item in self.query_partition(payer_pk(source.key), consistent=True):
            if item.get("kind") == RecordKind.CUSTOMER_LINK.value:
                continue
            copy = {**fill_inherited(item, target.inherit), "pk": payer_pk(target.payer.key), "payer": target.payer.key}
            put = {
                "TableName": self.table_name,
                "Item": to_item(copy),
                "ConditionExpression": "attribute_not_exists(#v) OR #v < :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"S": item["version"]}},
            }
            delete = {
                "TableName": self.table_name,
                "Key": {"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"S": item["version"]}},
            }
            try:
                self._write([{"Put": put}, {"Delete": delete}])
                moved += 1
            except _Cancelled as cancelled:
                if cancelled.failed_condition(0) and not cancelled.failed_condition(1):
                    # The payer already holds something newer: the kept copy is obsolete.
                    try:
                        self._write([{"Delete": delete}])
                    except _Cancelled:
                        pass
        return moved

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            got = self.client.get_item(
                TableName=self.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return from_item(got["Item"]) if "Item" in got else None

    def _merged_put(self, record: StateRecord, entry: InboxEntry, seen_version: str | None) -> dict:
        """Written only if the record is still what the merge read."""
        write = self._record_put(record, entry)
        put = write["Put"]
        if seen_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
            put.pop("ExpressionAttributeNames")
            put.pop("ExpressionAttributeValues")
        else:
            put["ConditionExpression"] = "#v = :seen"
            put["ExpressionAttributeValues"] = {":seen": {"S": seen_version}}
        return write

    def _unlinked_check(self, provider: str, unlinked: Payer) -> dict:
        return {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": {"pk": {"S": payer_pk(unlinked.key)}, "sk": {"S": _link_sk(provider, unlinked)}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    # -- reads -------------------------------------------------------------------------------

    def payer_records(self, payer_key: str) -> list[dict[str, Any]]:
        """Everything stored for one payer, in one Query (paged only past 1 MB)."""
        return self.query_partition(payer_pk(payer_key))

    def query_partition(self, pk: str, consistent: bool = False) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        if consistent:
            kwargs["ConsistentRead"] = True
        try:
            while True:
                page = self.client.query(**kwargs)
                items.extend(from_item(i) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def event(self, family: str, event_id: str) -> dict[str, Any] | None:
        """The inbox record of one delivery, or ``None``."""
        try:
            got = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": event_pk(family, event_id)}, "sk": {"S": "EVENT"}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return from_item(got["Item"]) if "Item" in got else None


class _Cancelled(Exception):
    def __init__(self, reasons: Iterable[Mapping[str, Any]]) -> None:
        super().__init__("cancelled")
        self.codes = [r.get("Code") or "None" for r in reasons]
        self.conflict = "TransactionConflict" in self.codes

    def failed_condition(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"


def needs_linking(effect: Effect) -> bool:
    """Whether applying ``effect`` must follow or write provider links, or merge with stored state."""
    if effect.payer is not None and effect.payer.kind is PayerKind.CUSTOMER:
        return True
    return any(is_link(r) or isinstance(r, MergedRecord) for r in effect.records)


def _bind(record: StateRecord, unresolved: Payer | None, resolution: Resolution) -> StateRecord:
    """A record kept under a provider id, filed under the payer its links lead to."""
    if unresolved is None or record.payer != unresolved or is_link(record) or resolution.payer is None:
        return record
    return replace(record, payer=resolution.payer, fields=fill_inherited(record.fields, resolution.inherit))


def _link_sk(provider: str, source: Payer) -> str:
    return f"{RecordKind.CUSTOMER_LINK.value}#{link_record_id(provider, source.id)}"
