"""The provider API port: what reconciliation needs of a billing provider's API.

Each provider's reader (:mod:`paygate.providers.clerk_api`, :mod:`paygate.providers.dodo_api`) turns
the objects its SDK returns into :class:`Snapshot` s, the state change a webhook carrying the object
would make; :mod:`paygate.service.reconcile` compares them with what is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from paygate.domain.state import Effect, Payer
from paygate.providers.base import InvalidEvent
from paygate.service.layout import ALL_PAYERS


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One object read from a provider's API, as the state change a webhook carrying it would make."""

    #: What was read, e.g. ``subscription_item`` (the repair's inbox item says ``snapshot.<kind>``).
    kind: str
    #: The provider's id of the object.
    object_id: str
    #: The object as read (JSON), kept on the inbox item of a repair.
    body: str
    effect: Effect | None
    #: Why the object could not be mapped (``effect`` is then ``None``).
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """What a run covers: everything the providers have, or one payer."""

    payer: Payer | None = None
    #: By provider, the provider customer ids linked to ``payer`` (Dodo knows customers, not users).
    customers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.payer.key if self.payer else ALL_PAYERS


class Fetcher(Protocol):
    """Reads one provider's API (see ``paygate.providers.clerk_api`` and ``dodo_api``)."""

    provider: str

    def snapshots(self, scope: Scope, run_id: str) -> Iterator[Snapshot]:
        """Every object in ``scope``, read page by page. Raises on a failure the client's retries did not
        overcome; the run then records the provider as failed and reports nothing missing for it."""
        ...


class NotFound(LookupError):
    """The provider does not know an object asked for by its id."""


class Retriever(Fetcher, Protocol):
    """A fetcher that also reads one object by id: what a checkout return names (Dodo Payments')."""

    def retrieve(self, kind: str, object_id: str, read_id: str) -> Snapshot:
        """The object, read now; raises :class:`NotFound` when the provider has no such object."""
        ...


def snapshot_of(kind: str, object_id: str, data: Mapping[str, Any], mapped: Callable[[], Effect]) -> Snapshot:
    """The object read (JSON ``data``) with the effect ``mapped()`` makes of it; a mapper's refusal is
    kept as the snapshot's error, and the run reports the object unreadable."""
    body = json.dumps(data, separators=(",", ":"), default=str)
    try:
        return Snapshot(kind, object_id, body, mapped())
    except InvalidEvent as exc:
        return Snapshot(kind, object_id, body, None, f"{exc.field}: {exc.message}")
