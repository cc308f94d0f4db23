"""The event bus on Amazon EventBridge: ``PutEvents`` on paygate's custom bus, and nothing more.

An entry EventBridge does not accept (``FailedEntryCount``), or a failed request, raises
:class:`~paygate.service.publisher.BusUnavailable`: the stream record is delivered again, and its
events keep their ids (in ``detail.id``, since EventBridge gives every ``PutEvents`` entry an id of its
own).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from paygate.service.publisher import BusUnavailable

#: ``PutEvents`` takes at most 10 entries per request.
MAX_ENTRIES = 10


class EventBridgeBus:
    def __init__(self, bus_name: str, client: Any | None = None) -> None:
        if not bus_name:
            raise ValueError("EVENT_BUS_NAME is not set")
        self.bus_name = bus_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from paygate.infra.dynamodb import new_client
            from paygate.infra.dynamodb_store import client_config

            # AWS_ENDPOINT_URL_EVENTBRIDGE (the AWS SDK's own setting) points it elsewhere (the tests' stand-in).
            self._client = new_client("events", client_config())
        return self._client

    def put(self, events: Sequence[Mapping[str, Any]]) -> None:
        entries = [self.entry(e) for e in events]
        for start in range(0, len(entries), MAX_ENTRIES):
            chunk = entries[start : start + MAX_ENTRIES]
            try:
                answer = self.client.put_events(Entries=chunk)
            except Exception as exc:  # any client or transport fault: the record is delivered again
                raise BusUnavailable(f"PutEvents failed: {type(exc).__name__}") from exc
            if answer.get("FailedEntryCount"):
                codes = sorted({e.get("ErrorCode") or "?" for e in answer.get("Entries", []) if e.get("ErrorCode")})
                raise BusUnavailable(f"PutEvents refused {answer['FailedEntryCount']} entries: {', '.join(codes)}")

    def entry(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "EventBusName": self.bus_name,
            "Source": event["source"],
            "DetailType": event["detail_type"],
            "Detail": json.dumps(event["detail"], separators=(",", ":"), sort_keys=True),
            "Time": datetime.fromtimestamp(event["time"] / 1000, UTC),
        }
