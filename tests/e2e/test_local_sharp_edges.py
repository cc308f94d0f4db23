"""The local tools as a new user meets them: each one says what is wrong, or just works."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from paygate_dev import ROOT
from paygate_dev.local_env import load_state
from paygate_dev.serve import Gateway
from paygate_dev.template import load
from tests.e2e.conftest import Server

#: What a shell without the test harness's settings has: the commands must set these themselves.
HARNESS_ONLY = (
    "TABLE_NAME",
    "WEBHOOK_SECRET",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


def run(directory: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in HARNESS_ONLY and not k.startswith("AWS_")}
    env["PAYGATE_LOCAL_DIR"] = str(directory)
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_invoke_uses_the_running_servers_table_secret_region_and_credentials(paygate_server: Server) -> None:
    event = "events/apigw/clerk/subscription.created.json"
    done = run(paygate_server.state.directory, "paygate_dev.invoke", "ClerkSubscriptionsFunction", "-e", event)
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["outcome"] in ("applied", "duplicate", "stale")


def test_invoke_without_a_server_or_with_a_placeholder_secret_says_what_to_do(tmp_path: Path) -> None:
    event = "events/apigw/clerk/subscription.created.json"
    done = run(tmp_path, "paygate_dev.invoke", "ClerkSubscriptionsFunction", "-e", event)
    assert done.returncode == 1 and "start it with `make run`" in done.stderr and "Traceback" not in done.stderr
    env = {**os.environ, "WEBHOOK_SECRET": "whsec_...", "TABLE_NAME": "paygate"}
    placeholder = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "paygate_dev.invoke", "ClerkSubscriptionsFunction", "-e", event],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert placeholder.returncode == 1 and "not a signing secret" in placeholder.stderr


def test_a_token_for_a_plan_carries_the_plans_features(paygate_server: Server) -> None:
    user = f"user_tok{uuid.uuid4().hex[:10]}"
    minted = run(paygate_server.state.directory, "paygate_dev.token", "--user", user, "--plan", "pro")
    assert minted.returncode == 0 and minted.stderr == ""
    status, _ = paygate_server.get("/pro/export", minted.stdout.strip())
    assert status == 200, "the export feature comes with the pro plan, as in Clerk's fea claim"

    expired = run(paygate_server.state.directory, "paygate_dev.token", "--user", user, "--plan", "pro", "--expired")
    assert paygate_server.get("/pro/export", expired.stdout.strip())[0] == 403

    unknown = run(paygate_server.state.directory, "paygate_dev.token", "--user", user, "--plan", "gold")
    assert unknown.returncode == 0 and "'gold' is not in the catalog" in unknown.stderr


def test_a_second_server_in_the_same_state_directory_is_refused(paygate_server: Server) -> None:
    directory = paygate_server.state.directory
    before = (directory / "server.json").read_text()
    second = run(directory, "paygate_dev.serve", "--port", "0", "--in-memory", "--state-dir", str(directory))
    assert second.returncode == 1
    assert "already running" in second.stderr and "--state-dir" in second.stderr
    assert (directory / "server.json").read_text() == before


def test_a_taken_port_is_said_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        state = tmp_path / "state"
        done = run(state, "paygate_dev.serve", "--port", port, "--in-memory", "--state-dir", str(state))
    assert done.returncode == 1 and f"could not listen on 127.0.0.1:{port}" in done.stderr
    assert not state.exists(), "nothing was generated or started before the port was checked"


def _with_route(template: dict, path: str) -> dict:
    changed = copy.deepcopy(template)
    events = changed["Resources"]["PremiumExportFunction"]["Properties"]["Events"]
    events["Extra"] = {
        "Type": "HttpApi",
        "Properties": {
            "ApiId": {"Ref": "PaygateHttpApi"},
            "Method": "GET",
            "Path": path,
            "Auth": {"Authorizer": "PaygateAuthorizer"},
        },
    }
    return changed


def test_routes_and_gates_are_checked_against_each_other_at_start(tmp_path: Path) -> None:
    state = load_state(tmp_path, create=True)
    assert Gateway(state, "http://127.0.0.1:1", load()).warnings == []

    with pytest.raises(
        ValueError, match=r'GET /pro/extra: behind PaygateAuthorizer .* add \[routes."GET /pro/extra"\]'
    ):
        Gateway(state, "http://127.0.0.1:1", _with_route(load(), "/pro/extra"))

    without_team = copy.deepcopy(load())
    del without_team["Resources"]["PremiumTeamFunction"]
    (warning,) = Gateway(state, "http://127.0.0.1:1", without_team).warnings
    assert "'GET /team'" in warning and "typo" in warning


def test_each_request_is_one_short_line_and_the_functions_json_stays_behind_a_flag(paygate_server: Server) -> None:
    user = f"user_log{uuid.uuid4().hex[:10]}"
    token = run(paygate_server.state.directory, "paygate_dev.token", "--user", user).stdout.strip()
    assert paygate_server.get("/pro/export", token)[0] == 403
    sent = run(paygate_server.state.directory, "paygate_dev.send", "clerk/subscriptionItem.active.json", "--tamper")
    assert sent.returncode == 2
    log = paygate_server.log.read_text()
    assert "GET /pro/export -> 403 denied: not_granted (by PaygateAuthorizer, " in log
    assert "POST /webhooks/clerk/subscriptions -> 401 invalid_signature (ClerkSubscriptionsFunction, " in log
    assert '{"level"' not in log, "the functions' JSON log lines are shown only with --log-json"
