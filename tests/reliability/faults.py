"""Makes a chosen DynamoDB request of paygate's store fail, the way a real outage or timeout would.

Attached to the store's client with botocore event hooks (see ``bench.instrument``): the store and
its retry configuration run unchanged, botocore retries as it would, and only the wire is faked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.httpsession import URLLib3Session


class Fault(StrEnum):
    #: The connection is refused on every attempt: the request never reaches DynamoDB.
    REFUSED = "refused"
    #: Every attempt times out before DynamoDB has it.
    TIMEOUT_BEFORE = "timeout_before"
    #: DynamoDB answers 500 on every attempt.
    SERVER_ERROR = "server_error"
    #: DynamoDB throttles every attempt.
    THROTTLED = "throttled"
    #: DynamoDB does the work, then every answer is lost (read timeout): committed, but the caller sees an error.
    LOST_RESPONSE = "lost_response"
    #: A 500 on the first attempt only; botocore's retry goes through.
    SERVER_ERROR_ONCE = "server_error_once"
    #: The first attempt's answer is lost after DynamoDB did the work; botocore's retry goes through.
    LOST_RESPONSE_ONCE = "lost_response_once"

    @property
    def transient(self) -> bool:
        return self in (Fault.SERVER_ERROR_ONCE, Fault.LOST_RESPONSE_ONCE)


_ERROR_BODIES = {
    Fault.SERVER_ERROR: (500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
    Fault.SERVER_ERROR_ONCE: (500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
    Fault.THROTTLED: (400, "com.amazonaws.dynamodb.v20120810#ThrottlingException"),
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


@dataclass
class FaultInjector:
    """Fails the ``at``-th API call (1-based) the store makes after :meth:`arm`. Single-threaded use."""

    fault: Fault | None = None
    at: int = 0
    calls: int = 0
    _attempt: int = 0
    _target: bool = False

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("before-send.dynamodb.*", self._before_send)
        return client

    def arm(self, fault: Fault, at: int) -> None:
        self.fault, self.at, self.calls = fault, at, 0

    def disarm(self) -> None:
        self.fault = None

    def _before_call(self, **_: Any) -> None:
        self.calls += 1
        self._target = self.fault is not None and self.calls == self.at
        self._attempt = 0

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self._target:
            return None
        self._attempt += 1
        fault = self.fault
        if fault is Fault.REFUSED:
            raise EndpointConnectionError(endpoint_url=request.url)
        if fault is Fault.TIMEOUT_BEFORE:
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault in _ERROR_BODIES and (fault is not Fault.SERVER_ERROR_ONCE or self._attempt == 1):
            status, error_type = _ERROR_BODIES[fault]
            body = f'{{"__type":"{error_type}","message":"injected fault"}}'.encode()
            return AWSResponse(request.url, status, {"content-type": "application/x-amz-json-1.0"}, _Body(body))
        if fault is Fault.LOST_RESPONSE or (fault is Fault.LOST_RESPONSE_ONCE and self._attempt == 1):
            # DynamoDB receives and executes the request; only its answer never arrives.
            URLLib3Session().send(request).content  # noqa: B018 - read the answer to finish the exchange
            raise ReadTimeoutError(endpoint_url=request.url)
        return None
