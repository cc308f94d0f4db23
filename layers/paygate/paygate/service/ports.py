"""The store port: the few operations paygate's rules need from a key-value store.

Items are plain mappings with a partition key ``pk`` and a sort key ``sk``. A write is a list of
operations applied all or nothing, each under an optional :data:`Condition` on the item it
touches. Conditions are a small named vocabulary, so each store states them in its own terms: the
DynamoDB adapter as condition expressions, the in-memory store by evaluating :meth:`holds`.

The rules that use this port (exactly once, stale never rolls back, provider links) live in
:mod:`paygate.service.apply`; a store holds no business rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Item = dict[str, Any]

#: The version attribute every state record carries (see ``domain.state.version_key``).
VERSION = "version"
#: The table's TTL attribute: epoch *seconds* after which DynamoDB may delete the item.
EXPIRES_AT = "expires_at"


@dataclass(frozen=True, slots=True)
class Key:
    pk: str
    sk: str


# -- conditions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IsAbsent:
    """No item has the key."""

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return item is None


@dataclass(frozen=True, slots=True)
class OlderThan:
    """The version guard: no item, or one whose version sorts before ``version``."""

    version: str

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        stored = None if item is None else item.get(VERSION)
        return stored is None or stored < self.version


@dataclass(frozen=True, slots=True)
class AtVersion:
    """The item exists with exactly this version (it has not changed since it was read)."""

    version: str

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return item is not None and item.get(VERSION) == self.version


@dataclass(frozen=True, slots=True)
class FieldEquals:
    """The item exists and ``name`` holds ``value``."""

    name: str
    value: str | bool | int

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return item is not None and item.get(self.name) == self.value


@dataclass(frozen=True, slots=True)
class ExpiredBefore:
    """The item exists and its TTL (``expires_at``, epoch seconds) is before ``now_s``."""

    now_s: int

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        expires = None if item is None else item.get(EXPIRES_AT)
        return isinstance(expires, int) and expires < self.now_s


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return any(c.holds(item) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return all(c.holds(item) for c in self.conditions)


type Condition = IsAbsent | OlderThan | AtVersion | FieldEquals | ExpiredBefore | AnyOf | AllOf


# -- writes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``item`` whole (replacing what its key holds). With ``return_existing``, a failed condition
    hands back the item it failed on (:meth:`WriteRejected.existing`), at no extra request."""

    item: Mapping[str, Any]
    condition: Condition | None = None
    return_existing: bool = False

    @property
    def key(self) -> Key:
        return Key(self.item["pk"], self.item["sk"])


@dataclass(frozen=True, slots=True)
class Update:
    """Set ``fields`` on the item at ``key`` (created if absent); other attributes are kept."""

    key: Key
    fields: Mapping[str, Any]
    condition: Condition | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    key: Key
    condition: Condition | None = None


@dataclass(frozen=True, slots=True)
class Require:
    """Writes nothing; the whole write fails unless ``condition`` holds for the item at ``key``."""

    key: Key
    condition: Condition


type Write = Put | Update | Delete | Require


# -- errors -------------------------------------------------------------------------------------


class StoreUnavailable(Exception):
    """The store could not be read or written; the caller answers 5xx so the provider retries."""


class WriteRejected(Exception):
    """The write was not applied, and nothing of it was. Says which conditions failed, and whether
    another writer's concurrent transaction was in the way (worth retrying after a short wait)."""

    def __init__(
        self,
        writes: Sequence[Write],
        failed: Sequence[int],
        contended: bool = False,
        existing: Mapping[int, Item] | None = None,
    ) -> None:
        super().__init__(f"write rejected: conditions failed at {list(failed)}, contended={contended}")
        self._writes = tuple(writes)
        self.failed_at = frozenset(failed)
        self.contended = contended
        self._existing = dict(existing or {})

    def failed(self, write: Write) -> bool:
        """Whether ``write`` (one of the writes given) failed its condition."""
        return any(w is write and i in self.failed_at for i, w in enumerate(self._writes))

    def existing(self, write: Write) -> Item | None:
        """The item a ``return_existing`` put failed its condition on, if any."""
        return next((self._existing.get(i) for i, w in enumerate(self._writes) if w is write), None)


# -- the port -----------------------------------------------------------------------------------


class StateStore(Protocol):
    def write(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` atomically. Raises :class:`WriteRejected` (nothing written) when a
        condition fails or a concurrent transaction is in the way, :class:`StoreUnavailable` on
        any other fault."""
        ...

    def get(self, key: Key) -> Item | None:
        """The item at ``key`` (a strongly consistent read), or ``None``."""
        ...

    def query(self, pk: str, sk_prefix: str = "", *, consistent: bool = False) -> list[Item]:
        """Every item of partition ``pk`` whose sort key starts with ``sk_prefix``, in sort-key order."""
        ...

    def read_partitions(self, pks: Sequence[str], sk_prefix: str = "") -> dict[str, list[Item]]:
        """The items of several partitions at once (one request where the store allows), by ``pk``;
        every asked partition is in the result, empty when it holds nothing."""
        ...


class ScanningStore(StateStore, Protocol):
    """A store that can also be read whole: for maintenance runs (reconciliation) and operator tools
    (listing the inbox, finding what touched a payer), never on a request path, since it reads every
    item of the table."""

    def scan(self, pk_prefix: str = "", sk_prefix: str = "", attributes: Sequence[str] = ()) -> Iterator[Item]:
        """Every item whose ``pk`` starts with ``pk_prefix`` and ``sk`` with ``sk_prefix``, in no particular
        order, read page by page. ``attributes`` (with ``pk`` and ``sk`` always included) narrows what each
        item carries."""
        ...
