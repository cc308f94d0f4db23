"""Secrets Manager, as a deployed webhook reads its signing secrets: botocore alone, cached five minutes.

A local stand-in answers ``GetSecretValue`` (the AWS JSON protocol) and counts the requests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paygate.infra import secrets
from paygate_dev import ROOT
from paygate_dev.signing import new_secret

ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:paygate-dev-clerk-subscriptions-AbCdEf"
VALUE = new_secret()  # made for the run: no secret value in the repository
BINARY = "arn:aws:secretsmanager:us-east-1:000000000000:secret:paygate-dev-binary-AbCdEf"


class SecretsManager(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Answer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.headers["X-Amz-Target"] == "secretsmanager.GetSecretValue"
        self.server.requests.append(request)  # type: ignore[attr-defined]
        held = {"SecretBinary": "d2hzZWM="} if request["SecretId"] == BINARY else {"SecretString": VALUE}
        body = json.dumps({"ARN": request["SecretId"], "Name": "paygate", **held}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def manager(monkeypatch) -> Iterator[SecretsManager]:
    server = SecretsManager()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.url)
    monkeypatch.setattr(secrets, "_client", None)
    monkeypatch.setattr(secrets, "_cache", {})
    yield server
    server.shutdown()


def test_a_secret_is_read_once_then_again_after_five_minutes(manager):
    now = [1000.0]
    assert secrets.secret_value(ARN, clock=lambda: now[0]) == VALUE
    now[0] += secrets.MAX_AGE_S - 1
    assert secrets.secret_value(ARN, clock=lambda: now[0]) == VALUE
    assert manager.requests == [{"SecretId": ARN}]
    now[0] += 1
    assert secrets.secret_value(ARN, clock=lambda: now[0]) == VALUE
    assert len(manager.requests) == 2


def test_reading_a_secret_does_not_load_boto3(manager):
    """boto3 brings s3transfer and multiprocessing: a tenth of a second of a webhook's first request."""
    script = textwrap.dedent(
        f"""
        import sys
        from paygate.infra.secrets import secret_value
        assert secret_value({ARN!r}) == {VALUE!r}
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "s3transfer")))
        """
    )
    env = {
        "PYTHONPATH": str(ROOT / "layers" / "paygate"),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": manager.url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)  # noqa: S603 - our own script
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_binary_secret_is_refused_by_name_not_read_as_text(manager):
    with pytest.raises(ValueError, match="holds no text") as refused:
        secrets.secret_value(BINARY)
    assert BINARY in str(refused.value) and "d2hzZWM" not in str(refused.value)
