"""Every client paygate makes gives up inside the Lambda timeout when its service never answers.

A local server accepts connections and never answers. Each client is pointed at it and counted: it
must make exactly the attempts its configuration states, and that configuration's worst case (attempts
x (connect + read timeout)) must fit the functions' timeout in template.yaml, so a sick dependency is
answered 5xx (webhooks, the provider retries) or denied (the authorizer), never timed out by Lambda.
Nothing here is timed: the attempts are counted and the budget computed from the clients' own settings.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from paygate.infra import tokens
from paygate.infra.dynamodb_store import DynamoStateStore, client_config
from paygate.service.ports import Key, StoreUnavailable
from paygate_dev.template import load


class SilentServer:
    """Accepts TCP connections, reads what is sent, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._open.append(conn)  # kept open, never answered

    def close(self) -> None:
        self._stop.set()
        for conn in self._open:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def lambda_timeout_s() -> int:
    return int(load()["Globals"]["Function"]["Timeout"])


#: botocore's standard retry mode waits at most this long before a second attempt (random x 2^0 s).
FIRST_RETRY_WAIT_S = 1


def worst_case_s(config) -> float:
    attempts = config.retries["total_max_attempts"]
    return attempts * (config.connect_timeout + config.read_timeout) + (attempts - 1) * FIRST_RETRY_WAIT_S


def test_the_store_client_makes_its_two_attempts_then_gives_up(silent, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", silent.url)
    config = client_config()
    assert worst_case_s(config) < lambda_timeout_s()
    with pytest.raises(StoreUnavailable):
        DynamoStateStore("t").get(Key("PAYER#user:u", "item#x"))
    assert silent.connections == config.retries["total_max_attempts"] == 2


def test_the_secrets_client_makes_its_two_attempts_then_gives_up(silent, monkeypatch):
    from paygate.infra import secrets

    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", silent.url)
    monkeypatch.setattr(secrets, "_client", None)
    with pytest.raises(Exception):  # noqa: B017 - botocore's timeout; the webhook answers 500
        secrets.secret_value("arn:aws:secretsmanager:us-east-1:000000000000:secret:paygate-x")
    assert silent.connections == 2


def test_the_jwks_fetch_makes_one_attempt_inside_the_timeout(silent):
    assert tokens.JWKS_TIMEOUT_SECONDS < lambda_timeout_s()
    with pytest.raises(Exception):  # noqa: B017 - any network fault; the cache turns it into KeyUnavailable
        tokens.fetch_url(f"{silent.url}/.well-known/jwks.json")
    assert silent.connections == 1
