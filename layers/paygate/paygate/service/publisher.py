"""Publishing the outbox: stream records to the event bus.

:class:`Publisher` receives the table's stream records in order (the Lambda event source mapping
  filters them to outbox items that announce something) and puts each record's events on the bus. On
  the first failure it stops and names that record: Lambda (or the local runner) delivers it and
  everything after it again, so nothing is lost and one payer's events never overtake each other.
  A redelivered event carries the id it had the first time. The clock's changes are written to the
  outbox by :mod:`paygate.service.sweeper`.

Wired into a Lambda handler here (``publisher_handler``) and into the local runner by
``paygate_dev.bus``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from paygate.service.outbox import events_of


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
