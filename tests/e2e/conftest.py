"""End-to-end harness: the local server started as a user starts it (``python -m paygate_dev.serve``), on a
free port with an in-memory DynamoDB Local and a throwaway state directory, driven over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paygate_dev import ROOT
from paygate_dev.local_env import LocalState, load_state
from paygate_dev.send import request
from paygate_dev.template import load

STUB_TEMPLATE = Path(__file__).parent / "stub" / "template.yaml"


@dataclass
class Server:
    url: str
    state: LocalState
    process: subprocess.Popen[bytes]
    log: Path

    def call(self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None):
        return request(method, self.url + path, body=body, headers=headers)

    def get(self, path: str, token: str | None = None, **headers: str) -> tuple[int, Any]:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.call("GET", path, headers=headers)


def _start(directory: Path, *extra: str, checkout: Path = ROOT, in_memory: bool = True) -> Iterator[Server]:
    """The server of ``checkout`` (this one, or a copy), with its state in ``directory``."""
    log = directory / "server.log"
    command = [sys.executable, "-m", "paygate_dev.serve", "--port", "0", "--state-dir", str(directory)]
    command += ["--in-memory"] if in_memory else []
    with log.open("ab") as out:
        process = subprocess.Popen([*command, *extra], cwd=checkout, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    server_file = directory / "server.json"
    deadline = time.monotonic() + 90
    while not server_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    url = json.loads(server_file.read_text())["url"]
    yield Server(url, load_state(directory), process, log)
    process.terminate()  # SIGTERM: the server stops DynamoDB Local itself
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def stub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on a small test template: a counting authorizer, an echo function, a store reader; with the
    functions' log lines under each request's line."""
    yield from _start(tmp_path_factory.mktemp("stub-local"), "--template", str(STUB_TEMPLATE), "--log-json")


@pytest.fixture(scope="session")
def paygate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on paygate's own template.yaml, as `make run` starts it, with the authorizer's decision
    cache on (as a production stage would set it) so that caching is part of what is tested."""
    extra = ["--parameter", "AuthorizerCacheTtl=300"] if "AuthorizerCacheTtl" in load().get("Parameters", {}) else []
    yield from _start(tmp_path_factory.mktemp("paygate-local"), *extra)
