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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from paygate.domain.state import Effect, Outcome, StateRecord

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

#: Answer fast and let the provider retry, rather than hold a webhook open on a sick store.
CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
_MAX_APPLY_ATTEMPTS = 6


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
        self.client = client or boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.retention_s = retention_days * 86_400

    # -- writes ------------------------------------------------------------------------------

    def apply(self, entry: InboxEntry, effect: Effect) -> Outcome:
        """Record ``entry`` and apply the non-stale part of ``effect``, atomically."""
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
                "Item": _serialize(item),
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
                "Item": _serialize(item),
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

    # -- reads -------------------------------------------------------------------------------

    def payer_records(self, payer_key: str) -> list[dict[str, Any]]:
        """Everything stored for one payer, in one Query (paged only past 1 MB)."""
        return self.query_partition(payer_pk(payer_key))

    def query_partition(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        try:
            while True:
                page = self.client.query(**kwargs)
                items.extend(_deserialize(i) for i in page.get("Items", []))
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
        return _deserialize(got["Item"]) if "Item" in got else None


class _Cancelled(Exception):
    def __init__(self, reasons: Iterable[Mapping[str, Any]]) -> None:
        super().__init__("cancelled")
        self.codes = [r.get("Code") or "None" for r in reasons]
        self.conflict = "TransactionConflict" in self.codes

    def failed_condition(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; paygate stores only integers (ms, minor units)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
