"""Functions run as Lambda runs them: each in containers of its own, one invocation at a time per container,
another container started when all are busy; so a function that hangs holds one container, not the server."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from paygate_dev import ROOT
from paygate_dev.container import ContainerFailed, FunctionPool
from paygate_dev.load import run_load
from tests.e2e.conftest import STUB_TEMPLATE, Server

#: A request's line: time, method, path, status, then what it came to and who served it, in parentheses.
REQUEST_LINE = re.compile(r"^\d\d:\d\d:\d\d (GET|POST) /\S* -> \d{3} [^()]*\([^()]* ms[^()]*\)$")


class HungStore:
    """A DynamoDB that takes connections and never answers: a store call to it hangs until it is closed."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        #: Set once a request has arrived: the function is now inside its store call.
        self.called = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._connections.append(connection)
            if connection.recv(65536):
                self.called.set()

    def __enter__(self) -> HungStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        for connection in self._connections:
            connection.close()


def log_lines(server: Server, since: int = 0) -> list[str]:
    return server.log.read_text()[since:].splitlines()


def line_of(server: Server, start: str) -> str:
    (line,) = [line for line in log_lines(server) if line[9:].startswith(start)]
    return line


def test_a_function_hung_in_a_store_call_holds_one_container_and_every_route_still_answers(stub_server: Server):
    with ThreadPoolExecutor(1) as background, HungStore() as store:
        hung = background.submit(stub_server.get, f"/store/hung?endpoint={quote(store.url)}")
        assert store.called.wait(60), "the function did not reach its store call"

        # Another function, a route behind the authorizer, and the same function: a second container,
        # whose store call reaches DynamoDB Local.
        assert stub_server.call("GET", "/items/1")[0] == 200
        assert stub_server.get("/reports", "allow-meanwhile")[0] == 200
        status, body = stub_server.get("/store/meanwhile")
        assert status == 200 and body["found"] is False
        assert not hung.done(), "the hung call is still in its container"
    # The hung store closes its connections: the store call fails, and the function answers.
    status, body = hung.result(timeout=60)
    assert (status, body["error"]) == (503, "ConnectionClosedError")

    assert "cold start: StoreFunction" in line_of(stub_server, "GET /store/meanwhile -> 200 (StoreFunction, ")
    # Both containers are warm now: the next request is served by one of them, no cold start.
    assert stub_server.get("/store/warm")[0] == 200
    assert "cold start" not in line_of(stub_server, "GET /store/warm -> 200 (StoreFunction, ")


def test_each_request_line_is_followed_by_what_its_function_logged(stub_server: Server) -> None:
    assert stub_server.get("/store/logged")[0] == 200
    lines = log_lines(stub_server)
    at = next(i for i, line in enumerate(lines) if line[9:].startswith("GET /store/logged -> 200 (StoreFunction"))
    assert lines[at + 1] == '    {"level": "INFO", "message": "store read", "path": "/store/logged"}'


def test_over_its_reserved_concurrency_a_function_is_throttled_as_api_gateway_answers_it(stub_server: Server):
    # The stub template reserves one concurrent execution for ReservedStoreFunction.
    with ThreadPoolExecutor(1) as background, HungStore() as store:
        hung = background.submit(stub_server.get, f"/reserved/hung?endpoint={quote(store.url)}")
        assert store.called.wait(60), "the function did not reach its store call"
        assert stub_server.get("/reserved/over") == (503, {"message": "Service Unavailable"})
    assert hung.result(timeout=60)[0] == 503
    assert stub_server.get("/reserved/after")[0] == 200
    assert "-> 503 throttled (ReservedStoreFunction, " in line_of(stub_server, "GET /reserved/over -> 503 ")


def test_sixteen_senders_at_once_are_all_answered_and_each_request_is_one_whole_line(paygate_server: Server):
    since = len(paygate_server.log.read_text())
    result = run_load(paygate_server.url, paygate_server.state, senders=16, requests=12)
    assert result.unanswered() == [], "no connection was refused or reset"
    assert {s.status for s in result.samples} == {200}, [s for s in result.samples if s.status != 200][:3]

    requests = [line for line in log_lines(paygate_server, since) if " -> " in line]
    assert len(requests) == 16 * 12
    for line in requests:
        assert REQUEST_LINE.match(line), f"not one whole request line: {line!r}"


def test_a_function_whose_init_fails_stops_the_start_naming_it(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        STUB_TEMPLATE.read_text()
        + """
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tests/e2e/stub
      Handler: broken.handler
"""
    )
    command = [sys.executable, "-m", "paygate_dev.serve", "--port", "0", "--in-memory"]
    command += ["--state-dir", str(tmp_path / "state"), "--template", str(template)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 1
    assert "paygate could not start: BrokenFunction failed its init" in done.stderr
    assert "this function cannot start" in done.stderr


def test_an_invocation_of_a_function_whose_init_fails_reports_the_init_error() -> None:
    pool = FunctionPool("BrokenFunction", STUB_TEMPLATE.parent, "broken.handler", {})
    try:
        with pytest.raises(ContainerFailed, match=r"(?s)init failed.*this function cannot start"):
            pool.invoke({}, "request-1")
        assert pool.size == 0, "a container that could not start is not kept"
    finally:
        pool.close()
