"""The local event bus: `make run` publishes entitlement events as AWS does, onto a file.

A thread reads the table's stream on DynamoDB Local and hands each batch to the publisher's own handler
(:func:`paygate.service.publisher.publisher_handler`), as Lambda's event source mapping would: only the
records the template's filter lets through, and a failed record delivered again with everything after
it. Each event is appended as one JSON line to ``.local/bus.jsonl`` in the shape an EventBridge target
receives, and a short line is printed. The sweeper runs every second on the same thread, with
paygate's clock.

    tail -f .local/bus.jsonl      # what a subscriber would receive
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from paygate_dev import LAYER_DIR
from paygate_dev.template import load

PUBLISHER = "EventsPublisherFunction"
SWEEPER = "EntitlementsSweeperFunction"
BUS_FILE = "bus.jsonl"
POSITIONS_FILE = "bus-positions.json"


def eventbridge_envelope(event: Mapping[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """An event as an EventBridge rule's target receives it (the ``id`` there is EventBridge's own;
    locally it is paygate's ``detail.id``)."""
    return {
        "version": "0",
        "id": event["detail"]["id"],
        "detail-type": event["detail_type"],
        "source": event["source"],
        "account": "000000000000",
        "time": datetime.fromtimestamp(event["time"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": event["detail"],
    }


def describe(event: Mapping[str, Any]) -> str:
    """One short line per event, e.g. ``Entitlements Changed user:user_1 #2 +pro (event msg_1)``."""
    detail = event["detail"]
    payer = f"{detail['payer']['type']}:{detail['payer']['id']}"
    parts = [event["detail_type"], payer, f"#{detail['sequence']}"]
    if "plans" in detail:
        parts += [f"+{p}" for p in detail["plans"]["added"]] + [f"-{p}" for p in detail["plans"]["removed"]]
        ends = [f"{w['plan']} until {_iso(w['ends_at'])}" for w in detail["access_windows"] if w["ends_at"]]
        parts += ends
    cause = detail["cause"]
    parts.append(f"(event {cause['event_id']})" if cause["event_id"] else f"({cause['kind']})")
    return " ".join(parts)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FileBus:
    """A :class:`~paygate.service.publisher.Bus` that appends each event to a JSON-lines file."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.echo = echo

    def put(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            for event in events:
                out.write(json.dumps(eventbridge_envelope(event), sort_keys=True) + "\n")
        for event in events:
            if self.echo:
                self.echo(f"event {describe(event)}")


def stream_filters(template: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The filter patterns of the publisher's stream event in the template (what Lambda lets through)."""
    template = template or load()
    events = template["Resources"][PUBLISHER]["Properties"]["Events"]
    (stream,) = [e for e in events.values() if e["Type"] == "DynamoDB"]
    return [json.loads(f["Pattern"]) for f in stream["Properties"]["FilterCriteria"]["Filters"]]


def matches(pattern: Any, value: Any) -> bool:
    """Lambda's event filtering for the exact-value patterns the template uses: every key of a pattern
    object must match, and a list names the values allowed."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches(p, value[k]) for k, p in pattern.items())
    if isinstance(pattern, list):
        return value in pattern
    return pattern == value


class StreamReader:
    """Reads a DynamoDB stream as Lambda's event source mapping does: per shard, in order, in batches,
    filtered, and from a failed record again when the handler reports one (``batchItemFailures``)."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: Callable[[dict, Any], dict],
        filters: Sequence[Mapping[str, Any]] = (),
        positions_file: Path | None = None,
        batch_size: int = 100,
    ) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.handler = handler
        self.filters = list(filters)
        self.positions_file = positions_file
        self.batch_size = batch_size
        self.positions: dict[str, str] = {}
        if positions_file is not None and positions_file.exists():
            self.positions = json.loads(positions_file.read_text())

    def poll(self) -> int:
        """Deliver what is new on every shard; the number of records handed to the handler."""
        delivered = 0
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description["Shards"]:
            delivered += self._poll_shard(shard["ShardId"])
        return delivered

    def _poll_shard(self, shard_id: str) -> int:
        position = self.positions.get(shard_id)
        where = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position}
            if position
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        start = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **where)
        iterator = start["ShardIterator"]
        delivered = 0
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            records = page.get("Records", [])
            if not records:
                return delivered
            batch = [r for r in (self._lambda_record(r) for r in records) if self._wanted(r)]
            failed = None
            if batch:
                answer = self.handler({"Records": batch}, None)
                delivered += len(batch)
                failures = answer.get("batchItemFailures") or []
                failed = failures[0]["itemIdentifier"] if failures else None
            if failed is not None:
                # Everything before the failed record is done; it and what follows come again next time.
                numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
                index = numbers.index(failed)
                if index > 0:
                    self._advance(shard_id, numbers[index - 1])
                return delivered
            self._advance(shard_id, records[-1]["dynamodb"]["SequenceNumber"])
            iterator = page.get("NextShardIterator")
        return delivered

    def _wanted(self, record: Mapping[str, Any]) -> bool:
        return not self.filters or any(matches(f, record) for f in self.filters)

    def _lambda_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": record.get("eventID"),
            "eventName": record.get("eventName"),
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", "us-east-1"),
            "dynamodb": dynamodb,
            "eventSourceARN": self.stream_arn,
        }

    def _advance(self, shard_id: str, sequence_number: str) -> None:
        self.positions[shard_id] = sequence_number
        if self.positions_file is not None:
            self.positions_file.write_text(json.dumps(self.positions, indent=1) + "\n")


def streams_client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local only
    )


class LocalBus:
    """The publisher and the sweeper of a local run, on one background thread."""

    def __init__(
        self,
        dynamodb_client: Any,
        endpoint: str,
        table: str,
        directory: Path,
        environment: Mapping[str, str],
        echo: Callable[[str], None] | None = print,
        template: dict[str, Any] | None = None,
        interval_s: float = 1.0,
    ) -> None:
        if str(LAYER_DIR) not in sys.path:
            sys.path.insert(0, str(LAYER_DIR))  # as Lambda puts the layer on the path
        from paygate import settings
        from paygate.clock import system_clock
        from paygate.infra.catalog_file import load_catalog
        from paygate.infra.dynamodb_store import DynamoStateStore
        from paygate.service.apply import ApplyService
        from paygate.service.publisher import publisher_handler
        from paygate.service.sweeper import Sweeper

        stream_arn = dynamodb_client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.bus = FileBus(directory / BUS_FILE, echo)
        self.reader = StreamReader(
            streams_client(endpoint),
            stream_arn,
            publisher_handler(self.bus),
            stream_filters(template),
            directory / POSITIONS_FILE,
        )
        config = settings.event_settings(environment)
        applier = ApplyService(
            DynamoStateStore(table, dynamodb_client),
            catalog=load_catalog(config.catalog_path),
            policy=config.policy,
            clock=system_clock,
        )
        # Locally the sweeper runs every second: no need to wait inside it for what ends soon.
        self.sweeper = Sweeper(applier, system_clock, lookahead_ms=0)
        self.interval_s = interval_s
        self.echo = echo
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        self.sweeper.sweep()
        self.reader.poll()

    def start(self) -> LocalBus:
        self._thread = threading.Thread(target=self._run, name="paygate-bus", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep publishing after a transient fault, and say so
                if self.echo:
                    self.echo(f"event bus: {type(exc).__name__}: {exc} (retrying)")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def start_local_bus(paygate: Any, echo: Callable[[str], None] | None = print) -> LocalBus | None:
    """Start the bus of a running :class:`paygate_dev.serve.LocalPaygate` (its table, directory, template);
    ``None`` when its template has no event publisher."""
    from paygate_dev.local_env import TABLE_NAME, function_environment
    from paygate_dev.template import functions

    template = paygate.template or load()
    if PUBLISHER not in functions(template) or SWEEPER not in functions(template):
        return None
    function = functions(template)[SWEEPER]
    environment = function_environment(function, paygate.state, paygate.dynamodb.endpoint, template)
    return LocalBus(
        paygate.dynamodb.client(),
        paygate.dynamodb.endpoint,
        TABLE_NAME,
        paygate.state.directory,
        environment,
        echo,
        template,
    ).start()
