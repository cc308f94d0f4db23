"""Reconciliation: repair what webhooks missed from the providers' own APIs, order-safely.

A provider's *fetcher* reads its API and turns each object into the same :class:`Effect` its webhook
mapper makes, versioned by the moment of the read (:func:`~paygate.domain.state.snapshot_version`).
This module is provider-neutral: it compares each snapshot with what is stored and applies what
differs through :class:`~paygate.service.apply.ApplyService`, the path every webhook takes, so the
version guard holds both ways: a snapshot never overrides a newer webhook, and a later webhook wins
over an older snapshot.

* **unchanged**: what is stored says the same (or is newer); nothing is written.
* **created**: nothing was stored for the object (a delivery that never arrived, or a payer who
  subscribed before paygate was deployed).
* **repaired**: what was stored was older and said something else.
* **missing**: a subscription item stored as live that the provider no longer lists. It is reported,
  never deleted: an operator decides.

Each run is recorded (``RECONCILE#<scope>`` / ``RUN#...``, see :mod:`paygate.service.layout`) with its
counts, and each repair keeps an inbox item (family ``reconcile.<provider>``) holding the object read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from paygate.clock import Clock, system_clock
from paygate.domain.links import LINKED_PAYER, is_link
from paygate.domain.records import ItemStatus
from paygate.domain.state import Effect, MergedRecord, Outcome, Payer, PayerKind, RecordKind, StateRecord, body_fields
from paygate.service.apply import ApplyService, PayerConflict, Resolution, bind
from paygate.service.layout import (
    PAYER_PREFIX,
    InboxEntry,
    partition_of,
    payer_pk,
    reconcile_run_key,
    record_key,
    record_sk,
    refresh_key,
)
from paygate.service.ports import (
    EXPIRES_AT,
    VERSION,
    AnyOf,
    ExpiredBefore,
    IsAbsent,
    Key,
    Put,
    StoreUnavailable,
    Update,
    WriteRejected,
)
from paygate.service.provider_api import Fetcher, Scope, Snapshot

#: Stored fields a snapshot does not compare: when paygate learned of the state, or which figure it was
#: taken from (a credit balance's), not the state itself.
_NOT_COMPARED = frozenset({"changed_at", "balance_at", "balance_version", "balance_source"})
#: Item statuses after which the provider may stop listing an item without anything being wrong.
_FINAL = frozenset({ItemStatus.ENDED, ItemStatus.EXPIRED, ItemStatus.ABANDONED, ItemStatus.FAILED})
#: At most this many missing records are named on a run's item (all are counted and logged).
MAX_NAMED = 100


class Verdict(StrEnum):
    UNCHANGED = "unchanged"
    CREATED = "created"
    REPAIRED = "repaired"
    #: The object could not be read as paygate's records (named on the run, like a quarantined event).
    UNREADABLE = "unreadable"
    #: The object names another payer for a provider id already linked to one: left for an operator.
    CONFLICT = "conflict"


@dataclass
class ProviderCounts:
    read: int = 0
    unchanged: int = 0
    created: int = 0
    repaired: int = 0
    missing: int = 0
    unreadable: int = 0
    conflicts: int = 0
    error: str | None = None

    def add(self, verdict: Verdict) -> None:
        self.read += 1
        name = "conflicts" if verdict is Verdict.CONFLICT else verdict.value
        setattr(self, name, getattr(self, name) + 1)


@dataclass
class RunReport:
    run_id: str
    scope: str
    trigger: str
    started_at: int
    finished_at: int | None = None
    providers: dict[str, ProviderCounts] = field(default_factory=dict)
    #: What was found missing, unreadable or in conflict, each with its provider and record (capped).
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: Why the run stopped before its end (paygate's own store failed), if it did.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.error is None for c in self.providers.values())

    def totals(self) -> dict[str, int]:
        names = ("read", "unchanged", "created", "repaired", "missing", "unreadable", "conflicts")
        return {n: sum(getattr(c, n) for c in self.providers.values()) for n in names}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "scope": self.scope,
            "trigger": self.trigger,
            "status": "finished" if self.ok else "failed",
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            **self.totals(),
            "providers": {p: {k: v for k, v in vars(c).items()} for p, c in self.providers.items()},
            "findings": self.findings[:MAX_NAMED],
            **({"error": self.error} if self.error else {}),
        }

    def note(self, finding: dict[str, Any]) -> None:
        if len(self.findings) < MAX_NAMED:
            self.findings.append(finding)


class ReconcileService:
    def __init__(self, applier: ApplyService, clock: Clock = system_clock) -> None:
        self.applier = applier
        self.store = applier.store
        self._clock = clock
        #: Runs are kept as long as events (``EVENT_RETENTION_DAYS``).
        self.retention_s = applier.retention_s

    # -- a run -------------------------------------------------------------------------------------

    def run(
        self,
        fetchers: Sequence[Fetcher],
        scope: Scope | None = None,
        trigger: str = "manual",
        named: Sequence[tuple[str, Snapshot]] = (),
    ) -> RunReport:
        """Read every fetcher's provider within ``scope`` and apply what differs; the run is recorded.

        ``named`` are objects read by id for a payer's refresh (provider, snapshot): applied first, since
        one may link a provider customer to the payer, whose objects the fetchers then read too."""
        scope = scope or Scope()
        started = self._clock()
        report = RunReport(f"{started}-{uuid.uuid4().hex[:8]}", scope.name, trigger, started)
        key = reconcile_run_key(scope.name, started, report.run_id)
        self._record(key, report, "running")
        try:
            self._run(fetchers, scope, named, report)
        except StoreUnavailable as exc:
            # Our own store, not a provider: the run stops (a refresh answers store_unavailable), and says
            # so on its record if the store takes that write.
            report.finished_at = self._clock()
            report.error = f"the store could not be read or written: {exc}"[:500]
            try:
                self._record(key, report, "failed")
            except StoreUnavailable:
                pass
            raise
        report.finished_at = self._clock()
        self._record(key, report, "finished" if report.ok else "failed")
        return report

    def _run(
        self, fetchers: Sequence[Fetcher], scope: Scope, named: Sequence[tuple[str, Snapshot]], report: RunReport
    ) -> None:
        for provider, snapshot in named:
            report.providers.setdefault(provider, ProviderCounts()).add(self._reconcile(provider, snapshot, report))
        if named and scope.payer is not None:
            scope = Scope(scope.payer, self.linked_customers(scope.payer))
        for fetcher in fetchers:
            counts = report.providers.setdefault(fetcher.provider, ProviderCounts())
            seen: set[str] = set()
            try:
                for snapshot in fetcher.snapshots(scope, report.run_id):
                    verdict = self._reconcile(fetcher.provider, snapshot, report)
                    counts.add(verdict)
                    if snapshot.effect is not None:
                        seen.update(r.record_id for r in snapshot.effect.records if r.kind is RecordKind.ITEM)
            except StoreUnavailable:
                raise  # our own store, not the provider's (see run)
            except Exception as exc:  # noqa: BLE001 - a provider's failure is recorded; the others still run
                counts.error = f"{type(exc).__name__}: {exc}"[:500]
                continue
            # Only a complete listing can say what the provider no longer has.
            for missing in self._missing(fetcher.provider, scope, seen):
                counts.missing += 1
                report.note({"provider": fetcher.provider, "verdict": "missing", **missing})

    def _record(self, key: Key, report: RunReport, status: str) -> None:
        fields = {**report.to_json(), "status": status, EXPIRES_AT: report.started_at // 1000 + self.retention_s}
        self.store.write([Update(key, fields)])

    # -- one object ----------------------------------------------------------------------------------

    def _reconcile(self, provider: str, snapshot: Snapshot, report: RunReport) -> Verdict:
        if snapshot.effect is None:
            report.note(
                {
                    "provider": provider,
                    "verdict": "unreadable",
                    "object_id": snapshot.object_id,
                    "error": snapshot.error,
                }
            )
            return Verdict.UNREADABLE
        stored_any, differs = self._compare(provider, snapshot.effect)
        if stored_any and not differs:
            return Verdict.UNCHANGED
        entry = InboxEntry(
            family=f"reconcile.{provider}",
            provider=provider,
            event_id=f"{report.run_id}:{snapshot.kind}:{snapshot.object_id}",
            body=snapshot.body,
            received_at=self._clock(),
            event_type=f"snapshot.{snapshot.kind}",
        )
        try:
            outcome = self.applier.apply(entry, snapshot.effect)
        except PayerConflict as exc:
            report.note(
                {"provider": provider, "verdict": "conflict", "object_id": snapshot.object_id, "error": str(exc)}
            )
            return Verdict.CONFLICT
        if outcome is not Outcome.APPLIED:
            return Verdict.UNCHANGED  # a webhook wrote something newer meanwhile
        return Verdict.REPAIRED if stored_any else Verdict.CREATED

    def _compare(self, provider: str, effect: Effect) -> tuple[bool, bool]:
        """(whether any of the effect's state is stored, whether any of it differs from what is stored)."""
        stored_any = stored_merged = differs = False
        resolutions: dict[Payer, Resolution] = {}
        for record in effect.records:
            if isinstance(record, MergedRecord):
                found, changes = self._compare_merged(self._bound(provider, record, resolutions))
                stored_merged |= found
                differs |= changes
                continue
            if is_link(record):
                link = self.store.get(record_key(record))
                wanted = body_fields(record.body)[LINKED_PAYER]
                differs |= link is None or link.get(LINKED_PAYER) != wanted
                continue
            record = self._bound(provider, record, resolutions)
            stored = self.store.get(record_key(record))
            if stored is None:
                differs = True
                continue
            # A payer's copy of a customer link is shared by every object of that customer: bookkeeping.
            stored_any |= record.kind is not RecordKind.CUSTOMER_LINK
            if stored.get(VERSION, "") >= record.version:
                continue  # as new or newer: the version guard keeps it
            fields = body_fields(record.body)
            differs |= any(stored.get(k) != v for k, v in fields.items() if k not in _NOT_COMPARED)
        # A merged record (a balance) is shared by every ledger entry that states it: it is the object
        # itself only when read alone.
        own = [r for r in effect.records if isinstance(r, StateRecord) and r.kind is not RecordKind.CUSTOMER_LINK]
        return stored_any or (stored_merged and not own), differs

    def _compare_merged(self, record: MergedRecord) -> tuple[bool, bool]:
        """A merged record (a credit balance): what the merge would write, compared with what is stored."""
        stored = self.store.get(record_key(record))
        merged = record.merge(record.decode(stored) if stored else None)
        if stored is None:
            return False, merged is not None
        if merged is None:
            return True, False  # the stored figure is as new or newer: the merge keeps it
        fields = body_fields(merged[1])
        return True, any(stored.get(k) != v for k, v in fields.items() if k not in _NOT_COMPARED)

    def _bound[R: (StateRecord, MergedRecord)](
        self, provider: str, record: R, resolutions: dict[Payer, Resolution]
    ) -> R:
        """A record kept under a provider id, where the apply would file it (see ``ApplyService``)."""
        if record.payer.kind is not PayerKind.CUSTOMER:
            return record
        if record.payer not in resolutions:
            resolutions[record.payer] = self.applier.resolve(provider, record.payer)
        return bind(record, record.payer, resolutions[record.payer])

    def _missing(self, provider: str, scope: Scope, seen: set[str]) -> Iterator[dict[str, Any]]:
        """Stored items of ``provider`` in ``scope``, still live, that the provider did not list."""
        prefix = record_sk(RecordKind.ITEM, f"{provider}:")
        if scope.payer is None:
            stored = self.store.scan(PAYER_PREFIX, prefix)
        else:
            stored = iter(self.store.query(partition_of(scope.payer.key, RecordKind.ITEM), prefix, consistent=True))
        for item in stored:
            if item.get("record_id") in seen or item.get("status") in _FINAL:
                continue
            yield {
                "payer": item.get("payer"),
                "record_id": item.get("record_id"),
                "status": item.get("status"),
                "version": item.get(VERSION),
            }

    # -- a payer's refresh ---------------------------------------------------------------------------

    def claim_refresh(self, payer: Payer, interval_s: int) -> int | None:
        """Claim ``payer``'s refresh: ``None`` when granted, else the seconds until the next is allowed.

        One conditional write on the payer's ``REFRESH`` item: granted when there is none or its time
        is past, so concurrent requests get one refresh between them."""
        now_s = self._clock() // 1000
        item = {**_as_item(refresh_key(payer.key)), "payer": payer.key, "at": now_s, EXPIRES_AT: now_s + interval_s}
        claim = Put(item, AnyOf((IsAbsent(), ExpiredBefore(now_s))), return_existing=True)
        try:
            self.store.write([claim])
        except WriteRejected as rejected:
            existing = rejected.existing(claim) or {}
            until = existing.get(EXPIRES_AT)
            return max(1, (until if isinstance(until, int) else now_s + interval_s) - now_s + 1)
        return None

    def linked_customers(self, payer: Payer) -> dict[str, tuple[str, ...]]:
        """By provider, the customer ids linked to ``payer`` (the payer-side copies of its links)."""
        found: dict[str, list[str]] = {}
        for item in self.store.query(payer_pk(payer.key), record_sk(RecordKind.CUSTOMER_LINK, ""), consistent=True):
            provider, _, customer = str(item.get("record_id", "")).partition(":")
            if customer:
                found.setdefault(provider, []).append(customer)
        return {p: tuple(ids) for p, ids in found.items()}


def _as_item(key: Key) -> dict[str, str]:
    return {"pk": key.pk, "sk": key.sk}
