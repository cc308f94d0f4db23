"""Publishing the outbox: stream records to the event bus, and the sweeper that lets the clock speak.

* :class:`Publisher` receives the table's stream records in order (the Lambda event source mapping
  filters them to outbox items that announce something) and puts each record's events on the bus. On
  the first failure it stops and names that record: Lambda (or the local runner) delivers it and
  everything after it again, so nothing is lost and one payer's events never overtake each other.
  A redelivered event carries the id it had the first time.
* :class:`Sweeper` re-evaluates the payers whose access window ends soon (the sparse index
  ``by_due_at``), at the moment it ends, through :meth:`ApplyService.reevaluate`: the same outbox,
  the same exactly-once path.

Both are wired into Lambda handlers here (``publisher_handler``, ``sweeper_handler``) and into the
local runner by ``paygate_dev.bus``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from paygate.clock import Clock, system_clock
from paygate.domain.state import Payer
from paygate.service.apply import ApplyService
from paygate.service.layout import PAYER_PREFIX
from paygate.service.outbox import DUE_INDEX, Cause, due_shards, events_of

#: The sweeper also handles what ends within this long, each at its moment (it runs every minute).
LOOKAHEAD_MS = 60_000


class BusUnavailable(Exception):
    """The bus refused or failed some of the events; the record is delivered again."""


class Bus(Protocol):
    def put(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Publish ``events`` (``source``, ``detail_type``, ``time``, ``detail``) in order, or raise
        :class:`BusUnavailable`."""
        ...


class Publisher:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def publish(self, records: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[list[dict[str, Any]], str | None]:
        """Publish the events of ``records`` (``(sequence number, new image)``, in stream order).

        Returns the events published and, after a failure, the sequence number of the record that failed:
        it and the records after it are to be delivered again.
        """
        published: list[dict[str, Any]] = []
        for sequence_number, image in records:
            events = events_of(image)
            if not events:
                continue
            try:
                self.bus.put(events)
            except BusUnavailable:
                return published, sequence_number
            published.extend(events)
        return published, None


class Sweeper:
    def __init__(
        self,
        applier: ApplyService,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
        lookahead_ms: int = LOOKAHEAD_MS,
    ) -> None:
        self.applier = applier
        self._clock = clock
        self._sleep = sleep
        self.lookahead_ms = lookahead_ms

    def sweep(self) -> list[dict[str, Any]]:
        """Re-evaluate every payer whose window ends by now plus the lookahead, each once its moment has
        come; the events written."""
        until = self._clock() + self.lookahead_ms
        due = [item for shard in due_shards() for item in self.applier.store.query_index(DUE_INDEX, shard, until)]
        written: list[dict[str, Any]] = []
        for item in sorted(due, key=lambda i: (i[DUE_INDEX.sk], i["pk"])):
            at = int(item[DUE_INDEX.sk])
            wait_ms = at - self._clock()
            if wait_ms > 0:
                self._sleep(wait_ms / 1000)
            if self._clock() < at:
                continue  # woken early: the next sweep has it
            payer = Payer.from_key(item["pk"].removeprefix(PAYER_PREFIX))
            written.extend(self.applier.reevaluate(payer, Cause("clock", at=at)))
        return written


# -- Lambda handlers --------------------------------------------------------------------------------


def publisher_handler(bus: Bus | None = None) -> Callable[[dict, Any], dict]:
    """The handler of the stream's event source mapping (``FunctionResponseTypes: ReportBatchItemFailures``).

    ``bus`` defaults to the EventBridge bus named by ``EVENT_BUS_NAME``, and each event published is logged;
    the local runner passes its own bus, which shows them itself.
    """
    from paygate import settings
    from paygate.infra.dynamodb import from_item

    logger = None
    if bus is None:
        from aws_lambda_powertools import Logger

        logger = Logger(service="paygate", function_family="events")
    bound: dict[str, Publisher] = {}

    def handler(event: dict, context: Any) -> dict:
        publisher = bound.get("bus")
        if publisher is None:
            if bus is None:
                from paygate.infra.eventbridge import EventBridgeBus

                publisher = bound["bus"] = Publisher(EventBridgeBus(settings.event_settings().bus_name))
            else:
                publisher = bound["bus"] = Publisher(bus)
        records = [
            (r["dynamodb"]["SequenceNumber"], from_item(r["dynamodb"].get("NewImage") or {}))
            for r in event.get("Records", [])
        ]
        published, failed = publisher.publish(records)
        if logger is not None:
            for e in published:
                detail = e["detail"]
                shown = {"detail_type": e["detail_type"], "id": detail["id"], "sequence": detail["sequence"]}
                logger.info("event published", extra=shown)
            if failed is not None:
                logger.warning("publishing stopped; the rest is delivered again", extra={"sequence_number": failed})
        return {"batchItemFailures": [{"itemIdentifier": failed}] if failed is not None else []}

    return handler


def sweeper_handler(clock: Clock = system_clock) -> Callable[[dict, Any], dict]:
    """The handler run every minute: announces what the clock changed (windows that ended)."""
    from aws_lambda_powertools import Logger

    from paygate import settings
    from paygate.infra.catalog_file import load_catalog
    from paygate.infra.dynamodb_store import container_store

    logger = Logger(service="paygate", function_family="sweeper")

    def handler(event: dict, context: Any) -> dict:
        config = settings.event_settings()
        applier = ApplyService(
            container_store(config.table_name),
            catalog=load_catalog(config.catalog_path),
            policy=config.policy,
            clock=clock,
        )
        written = Sweeper(applier, clock).sweep()
        for e in written:
            logger.info("window ended", extra={"detail_type": e["detail_type"], "id": e["detail"]["id"]})
        return {"announced": len(written)}

    return handler
