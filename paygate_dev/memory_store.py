"""An in-memory state store with DynamoDB's conditional semantics, for fast service-level tests.

It implements :class:`~paygate.service.ports.StateStore` exactly as the DynamoDB adapter does: a
write is all or nothing, every condition is checked against the item as it is before the write, a
transaction that touches one key twice is refused, and items are copied in and out so a caller can
never alter what is stored. ``tests/contract`` runs the same tests against both stores, so a test
that passes here says the same of DynamoDB.

``fail_next`` makes the next requests raise :class:`StoreUnavailable`, as an outage would.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from paygate.service.ports import Delete, Item, Key, Put, Require, StoreUnavailable, Update, Write, WriteRejected

#: DynamoDB's item size limit (the JSON length is a close enough measure for tests).
MAX_ITEM_BYTES = 400 * 1024


class InMemoryStateStore:
    def __init__(self) -> None:
        self._items: dict[str, dict[str, Item]] = {}
        self._lock = threading.Lock()
        #: Requests made, by operation, for tests that count them.
        self.requests: list[str] = []
        self._failures: list[str] = []

    def fail_next(self, *operations: str) -> None:
        """The next requests of these operations (``write``, ``get``, ``query``, ``read_partitions``, ``scan``) fail."""
        self._failures.extend(operations)

    def _request(self, operation: str) -> None:
        self.requests.append(operation)
        if operation in self._failures:
            self._failures.remove(operation)
            raise StoreUnavailable(f"injected {operation} fault")

    # -- the port ------------------------------------------------------------------------------

    def write(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        with self._lock:
            self._request("write")
            keys = [_key_of(w) for w in writes]
            if len(set(keys)) != len(keys):
                # DynamoDB refuses a transaction that names one item twice (a ValidationException).
                raise StoreUnavailable("a transaction cannot include several operations on one item")
            for write in writes:
                if isinstance(write, Put | Update) and _size(write) > MAX_ITEM_BYTES:
                    raise StoreUnavailable("an item is over DynamoDB's 400 KB limit")
            failed = [
                i for i, w in enumerate(writes) if w.condition is not None and not w.condition.holds(self._at(keys[i]))
            ]
            if failed:
                existing = {
                    i: copy.deepcopy(self._at(keys[i]))
                    for i in failed
                    if isinstance(writes[i], Put) and writes[i].return_existing and self._at(keys[i]) is not None
                }
                raise WriteRejected(writes, failed, existing=existing)
            for key, write in zip(keys, writes, strict=True):
                self._apply(key, write)

    def get(self, key: Key) -> Item | None:
        with self._lock:
            self._request("get")
            return copy.deepcopy(self._at(key))

    def query(self, pk: str, sk_prefix: str = "", *, consistent: bool = False) -> list[Item]:
        with self._lock:
            self._request("query")
            return self._partition(pk, sk_prefix)

    def read_partitions(self, pks: Sequence[str], sk_prefix: str = "") -> dict[str, list[Item]]:
        with self._lock:
            self._request("read_partitions")
            return {pk: self._partition(pk, sk_prefix) for pk in sorted(set(pks))}

    def scan(self, pk_prefix: str = "", sk_prefix: str = "", attributes: Sequence[str] = ()) -> Iterator[Item]:
        with self._lock:
            self._request("scan")
            found = [
                copy.deepcopy(self._items[pk][sk])
                for pk in sorted(self._items)
                if pk.startswith(pk_prefix)
                for sk in sorted(self._items[pk])
                if sk.startswith(sk_prefix)
            ]
        for item in found:
            yield {k: v for k, v in item.items() if k in ("pk", "sk", *attributes)} if attributes else item

    # -- for tests -----------------------------------------------------------------------------

    def items(self) -> list[Item]:
        """Everything stored (a copy), in key order."""
        with self._lock:
            return [copy.deepcopy(self._items[pk][sk]) for pk in sorted(self._items) for sk in sorted(self._items[pk])]

    # -- internals -----------------------------------------------------------------------------

    def _at(self, key: Key) -> Item | None:
        return self._items.get(key.pk, {}).get(key.sk)

    def _partition(self, pk: str, sk_prefix: str) -> list[Item]:
        partition = self._items.get(pk, {})
        return [copy.deepcopy(partition[sk]) for sk in sorted(partition) if sk.startswith(sk_prefix)]

    def _apply(self, key: Key, write: Write) -> None:
        match write:
            case Put(item=item):
                self._items.setdefault(key.pk, {})[key.sk] = _checked(item)
            case Update(fields=fields):
                current = self._items.setdefault(key.pk, {}).setdefault(key.sk, {"pk": key.pk, "sk": key.sk})
                current.update(_checked({k: v for k, v in fields.items() if k not in ("pk", "sk")}))
            case Delete():
                self._items.get(key.pk, {}).pop(key.sk, None)
            case Require():
                pass


def _size(write: Put | Update) -> int:
    values = write.item if isinstance(write, Put) else write.fields
    return len(json.dumps(values, default=str))


def _key_of(write: Write) -> Key:
    return write.key


def _checked(values: Any) -> Any:
    """A deep copy, refusing what DynamoDB cannot store (floats), as the DynamoDB codec does."""
    if isinstance(values, float):
        raise TypeError("paygate does not store float values")
    if isinstance(values, dict):
        return {k: _checked(v) for k, v in values.items()}
    if isinstance(values, list | tuple):
        return [_checked(v) for v in values]
    return copy.deepcopy(values)
