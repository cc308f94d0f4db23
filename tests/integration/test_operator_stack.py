"""`paygate --stack NAME`: the table is found through the stack's CloudFormation outputs.

No AWS here: a small local server answers CloudFormation's DescribeStacks (its query protocol, XML, as
botocore's own service model describes it), reached through the AWS SDK's standard setting
``AWS_ENDPOINT_URL_CLOUDFORMATION``; the table it names is on DynamoDB Local.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import pytest

from paygate.domain.access import DAY_MS
from paygate_dev import ROOT
from paygate_dev.cli.common import Failure, stack_target
from tests.conftest import WebhookSender, sample

NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def _members(entries: dict[str, str], key: str, value: str) -> str:
    return "".join(
        f"<member><{key}>{escape(k)}</{key}><{value}>{escape(v)}</{value}></member>" for k, v in entries.items()
    )


class CloudFormationStub:
    """Answers DescribeStacks for the stacks it holds; any other name is CloudFormation's ValidationError."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, dict[str, str]]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                name = form.get("StackName", [""])[0]
                stack = stub.stacks.get(name)
                if form.get("Action") != ["DescribeStacks"] or stack is None:
                    status, body = (
                        400,
                        (
                            f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
                            f"<Message>Stack with id {escape(name)} does not exist</Message></Error>"
                            "<RequestId>stub</RequestId></ErrorResponse>"
                        ),
                    )
                else:
                    status, body = (
                        200,
                        (
                            f'<DescribeStacksResponse xmlns="{NS}"><DescribeStacksResult><Stacks><member>'
                            f"<StackName>{escape(name)}</StackName>"
                            f"<StackId>arn:aws:cloudformation:us-east-1:000000000000:stack/{escape(name)}/1</StackId>"
                            "<CreationTime>2025-01-01T00:00:00Z</CreationTime><StackStatus>UPDATE_COMPLETE</StackStatus>"
                            f"<Parameters>{_members(stack['parameters'], 'ParameterKey', 'ParameterValue')}"
                            "</Parameters>"
                            f"<Outputs>{_members(stack['outputs'], 'OutputKey', 'OutputValue')}</Outputs>"
                            "</member></Stacks></DescribeStacksResult>"
                            "<ResponseMetadata><RequestId>stub</RequestId></ResponseMetadata></DescribeStacksResponse>"
                        ),
                    )
                raw = body.encode()
                self.send_response(status)
                self.send_header("content-type", "text/xml")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudFormationStub]:
    stub = CloudFormationStub()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", stub.url)
    yield stub
    stub.httpd.shutdown()


def paygate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PAYGATE_LOCAL_DIR"}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "paygate_dev.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_stacks_table_and_settings_come_from_its_outputs_and_parameters(
    table: str, cloudformation: CloudFormationStub, sender: WebhookSender
) -> None:
    cloudformation.stacks["paygate-test"] = {
        "outputs": {"TableName": table, "ApiUrl": "https://example.invalid"},
        "parameters": {"GracePeriodDays": "3", "EventRetentionDays": "30", "Stage": "dev"},
    }
    target = stack_target("paygate-test", "us-east-1", catalog=None)  # type: ignore[arg-type]
    assert (target.policy.grace_period_ms, target.retention_days) == (3 * DAY_MS, 30)
    assert "paygate-test" in target.name and table in target.name

    assert sender.post("ClerkSubscriptionsFunction", sample("clerk/subscriptionItem.active.json"), msg_id="msg_s1")
    listed = paygate("events", "list", "--stack", "paygate-test", "--region", "us-east-1")
    assert listed.returncode == 0, listed.stderr
    assert f"1 event(s) in stack paygate-test (us-east-1, table {table})" in listed.stdout
    assert "msg_s1" in listed.stdout and "applied" in listed.stdout


def test_a_missing_stack_or_output_is_named(table: str, cloudformation: CloudFormationStub) -> None:
    missing = paygate("events", "list", "--stack", "no-such-stack", "--region", "us-east-1")
    assert missing.returncode == 4
    assert "Stack with id no-such-stack does not exist" in missing.stderr

    cloudformation.stacks["not-paygate"] = {"outputs": {"Other": "x"}, "parameters": {}}
    with pytest.raises(Failure, match="no TableName output"):
        stack_target("not-paygate", "us-east-1", catalog=None)  # type: ignore[arg-type]


def test_region_goes_with_stack() -> None:
    assert paygate("events", "list", "--region", "eu-west-1").returncode == 2
