"""`python -m paygate_dev.reconcile` against the local server started with its local provider servers
(`make run ARGS=--fake-providers`), as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from paygate_dev import ROOT
from tests.e2e.conftest import Server, _start
from tests.e2e.test_paygate import token_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start(tmp_path_factory.mktemp("reconcile-local"), "--fake-providers")


def reconcile(server: Server, *args: str) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "DODO_PAYMENTS_"))}
    env["PAYGATE_LOCAL_DIR"] = str(server.state.directory)
    done = subprocess.run(  # noqa: S603 - the project's own module
        [sys.executable, "-m", "paygate_dev.reconcile", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {"stderr": done.stderr}


def test_a_local_reconcile_loads_the_providers_state_and_then_finds_nothing_to_do(server):
    code, first = reconcile(server)
    assert code == 0, first
    assert (first["status"], first["created"], first["trigger"]) == ("finished", 5, "cli")
    assert set(first["providers"]) == {"clerk", "dodo"}

    code, second = reconcile(server)
    assert (code, second["unchanged"], second["created"], second["repaired"]) == (0, 5, 0, 0)

    token = token_for(server, "user_local_maya")
    status, account = server.get("/me/subscription", token)
    assert status == 200 and account["plans"] == ["pro"]


def test_one_payer_and_the_refresh_route(server):
    code, run = reconcile(server, "--org", "org_local_acme")
    assert code == 0 and run["scope"] == "org:org_local_acme" and run["read"] == 1
    token = token_for(server, "user_local_maya")
    status, body = server.call("POST", "/me/subscription/refresh", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and body["refreshed"] == ["user:user_local_maya"]


def paygate(server: Server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "DODO_PAYMENTS_"))}
    clean.update(PAYGATE_LOCAL_DIR=str(server.state.directory), **(env or {}))
    return subprocess.run(  # noqa: S603 - the project's own command
        [sys.executable, "-m", "paygate_dev.cli", *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_paygate_reconcile_reads_every_provider_and_says_what_it_did(server):
    done = paygate(server, "reconcile", "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert (run["status"], run["trigger"], run["read"]) == ("finished", "cli", 5)  # the example data
    assert run["read"] == run["unchanged"] + run["created"] + run["repaired"]

    table = paygate(server, "reconcile", "--user", "user_local_maya")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()[1:]
    assert header.split()[:3] == ["provider", "read", "unchanged"]
    assert {r.split()[0] for r in rows} == {"clerk", "dodo"}
    assert "reconcile user:user_local_maya on local server" in table.stdout


def test_paygate_reconcile_without_a_reachable_provider_fails_with_its_exit_code(server):
    # A Dodo API that refuses connections: the run is recorded as failed, the exit code says so.
    done = paygate(server, "reconcile", "--json", env={"DODO_PAYMENTS_BASE_URL": "http://127.0.0.1:9"})
    assert done.returncode == 4, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "failed" and run["providers"]["dodo"]["error"]
