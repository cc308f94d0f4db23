"""The EventBridge bus adapter, through botocore's own ``events`` client, against a local HTTP server that
answers ``PutEvents`` as EventBridge does (AWS JSON 1.1: ``X-Amz-Target: AWSEvents.PutEvents``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from paygate.infra.eventbridge import EventBridgeBus
from paygate.service.publisher import BusUnavailable, publisher_handler
from paygate_dev.apigw import LambdaContext


class EventBridgeStandIn:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        #: Answers to give, in order: ``"ok"``, ``"refuse"`` (FailedEntryCount) or an HTTP status.
        self.answers: list[str | int] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                stand_in.requests.append({"target": self.headers["x-amz-target"], "body": body})
                answer = stand_in.answers.pop(0) if stand_in.answers else "ok"
                if isinstance(answer, int):
                    self._reply(answer, {"__type": "InternalException", "message": "stand-in fault"})
                elif answer == "refuse":
                    entries = [
                        {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"} for _ in body["Entries"]
                    ]
                    self._reply(200, {"FailedEntryCount": len(entries), "Entries": entries})
                else:
                    entries = [{"EventId": f"eb-{len(stand_in.requests)}-{i}"} for i in range(len(body["Entries"]))]
                    self._reply(200, {"FailedEntryCount": 0, "Entries": entries})

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/x-amz-json-1.1")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def eventbridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventBridgeStandIn]:
    stand_in = EventBridgeStandIn()
    thread = threading.Thread(target=stand_in.server.serve_forever, daemon=True)
    thread.start()
    # The AWS SDK's own setting for the service's endpoint: the adapter makes its client as in AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", stand_in.url)
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def event(n: int) -> dict[str, Any]:
    detail = {"id": f"id-{n}", "payer": {"type": "user", "id": "user_1"}, "sequence": n}
    return {"source": "paygate", "detail_type": "Entitlements Changed", "time": 1_795_000_000_000, "detail": detail}


def stream_record(sequence_number: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    image = {
        "kind": {"S": "entitlements"},
        "announce": {"BOOL": True},
        "events": {"S": json.dumps(events)},
    }
    return {"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": sequence_number, "NewImage": image}}


def test_events_are_put_on_the_bus_with_their_detail_and_time(eventbridge):
    EventBridgeBus("paygate-test").put([event(1), event(2)])
    (request,) = eventbridge.requests
    assert request["target"] == "AWSEvents.PutEvents"
    first = request["body"]["Entries"][0]
    assert (first["EventBusName"], first["Source"], first["DetailType"]) == (
        "paygate-test",
        "paygate",
        "Entitlements Changed",
    )
    assert json.loads(first["Detail"]) == event(1)["detail"]
    assert first["Time"] == 1_795_000_000  # botocore sends the timestamp in epoch seconds


def test_more_than_ten_events_go_in_requests_of_ten(eventbridge):
    EventBridgeBus("paygate-test").put([event(n) for n in range(23)])
    assert [len(r["body"]["Entries"]) for r in eventbridge.requests] == [10, 10, 3]


@pytest.mark.parametrize("answer", ["refuse", 500])
def test_a_refused_entry_or_a_failed_request_is_unavailable(eventbridge, answer):
    eventbridge.answers = [answer, answer]  # botocore tries a failed request twice
    with pytest.raises(BusUnavailable):
        EventBridgeBus("paygate-test").put([event(1)])


def test_the_handler_reports_the_first_failed_record_for_redelivery(eventbridge, monkeypatch):
    monkeypatch.setenv("EVENT_BUS_NAME", "paygate-test")
    handler = publisher_handler()
    eventbridge.answers = ["ok", "refuse"]
    records = [stream_record("100", [event(1)]), stream_record("200", [event(2)]), stream_record("300", [event(3)])]
    answer = handler({"Records": records}, LambdaContext(function_name="EventsPublisherFunction"))
    # The first record was published; the second failed: it and the third come again (Lambda retries from it).
    assert answer == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert len(eventbridge.requests) == 2
    # A record that announces nothing (the filter lets none through, but the handler does not rely on it).
    quiet = {
        "dynamodb": {"SequenceNumber": "400", "NewImage": {"kind": {"S": "entitlements"}, "announce": {"BOOL": False}}}
    }
    assert handler({"Records": [quiet]}, None) == {"batchItemFailures": []}
    assert len(eventbridge.requests) == 2


def test_the_publisher_function_loads_no_apply_service():
    """The stream publisher only reads outbox items and puts their events: the apply service, which the
    sweeper needs, stays out of its cold start."""
    import subprocess
    import sys

    from paygate_dev import ROOT

    paths = [str(ROOT / "layers" / "paygate"), str(ROOT / "functions" / "events_publisher")]
    script = f"import sys; sys.path[:0] = {paths!r}\nimport app\nprint('paygate.service.apply' in sys.modules)"
    env = {"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "TABLE_NAME": "unused", "EVENT_BUS_NAME": "bus"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
