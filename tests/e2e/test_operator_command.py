"""The `paygate` operator command against a running local server, as an operator runs it.

Each command is run as ``python -m paygate_dev.cli`` from this checkout, finding the server through its
state directory (``PAYGATE_LOCAL_DIR``, as ``.local/`` is found by default). The last test is the one
that matters most: a release that cannot read an event quarantines it; after the fix, a replay heals it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from paygate_dev import ROOT
from paygate_dev.demo import DAY_MS, clerk_item_event, dodo_credit_event, dodo_subscription_event
from paygate_dev.send import Answer, endpoint_for_type, send
from paygate_dev.token import mint, session_claims
from tests.e2e.conftest import Server, _start

PRO_PRODUCT = "pdt_pro_monthly_7Hq2Lx9Vb4"


def paygate(server_dir: Path, *args: str, checkout: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYGATE_LOCAL_DIR": str(server_dir)}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "paygate_dev.cli", *args], cwd=checkout, env=env, capture_output=True, text=True
    )


def deliver(server: Server, provider: str, event: dict[str, Any], msg_id: str | None = None) -> Answer:
    endpoint = endpoint_for_type(provider, event["type"])
    body = json.dumps(event).encode()
    return send(server.url, endpoint, body, secret=server.state.signing_secret(endpoint.function), msg_id=msg_id)


def new_ids() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:12]
    return f"user_cli{tag}", f"cus_cli{tag}", tag


def clerk_pro(user: str, tag: str, now: int) -> dict[str, Any]:
    return clerk_item_event(
        "active",
        user=user,
        item_id=f"csubi_{tag}",
        subscription_id=f"csub_{tag}",
        now_ms=now,
        period_end_ms=now + DAY_MS,
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(scope="module")
def story(paygate_server: Server) -> dict[str, Any]:
    """One payer with a Clerk plan, a Dodo subscription (linking a customer) and credits."""
    user, customer, tag = new_ids()
    now = now_ms()
    answers = [
        deliver(paygate_server, "clerk", clerk_pro(user, tag, now)),
        deliver(
            paygate_server,
            "dodo",
            dodo_subscription_event(
                "active",
                user=user,
                customer=customer,
                subscription_id=f"sub_{tag}",
                product_id=PRO_PRODUCT,
                at_ms=now,
                next_billing_ms=now + 30 * DAY_MS,
            ),
        ),
        deliver(
            paygate_server,
            "dodo",
            dodo_credit_event(
                "added", user=user, customer=customer, entry_id=f"cdl_{tag}", amount=500, before=0, at_ms=now
            ),
        ),
    ]
    assert [a.body["outcome"] for a in answers] == ["applied"] * 3, answers
    return {"user": user, "customer": customer, "events": [a.msg_id for a in answers]}


def test_payer_show_explains_what_the_payer_holds(paygate_server: Server, story: dict[str, Any]) -> None:
    shown = paygate(paygate_server.state.directory, "payer", "show", story["user"], "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["payer"] == f"user:{story['user']}"
    assert report["plans"] == ["pro"]
    assert {"export", "analytics"} <= set(report["features"])
    assert sorted((s["provider"], s["why"], s["active"]) for s in report["subscriptions"]) == [
        ("clerk", "active", True),
        ("dodo", "active", True),
    ]
    assert [c["balance"] for c in report["credits"]] == ["500"]
    assert [e["event_id"] for e in report["events"]] == story["events"]
    assert all(e["version"] for e in report["events"])
    assert list(report["customers"]) == [story["customer"]]

    human = paygate(paygate_server.state.directory, "payer", "show", story["user"])
    assert human.returncode == 0
    assert "plans now:    pro" in human.stdout
    assert all(event_id in human.stdout for event_id in story["events"])

    via_customer = paygate(paygate_server.state.directory, "payer", "show", story["customer"], "--json")
    assert via_customer.returncode == 0
    assert json.loads(via_customer.stdout)["payer"] == f"user:{story['user']}"
    assert json.loads(via_customer.stdout)["via"] == f"customer:{story['customer']}"


def test_payer_show_exit_codes(paygate_server: Server) -> None:
    nobody = paygate(paygate_server.state.directory, "payer", "show", "user_nobody_at_all")
    assert nobody.returncode == 3 and "nothing is stored" in nobody.stdout
    wrong = paygate(paygate_server.state.directory, "payer", "show", "someone")
    assert wrong.returncode == 2 and "expected user_" in wrong.stderr


def test_events_list_and_show(paygate_server: Server, story: dict[str, Any]) -> None:
    directory = paygate_server.state.directory
    listed = paygate(directory, "events", "list", "--family", "dodo.credits", "--since", "1h", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert story["events"][2] in [i["event_id"] for i in items]
    assert {i["family"] for i in items} == {"dodo.credits"} and all("body" not in i for i in items)
    assert paygate(directory, "events", "list", "--since", "2999-01-01", "--json").stdout.strip() == "[]"
    human = paygate(directory, "events", "list", "--payer", f"user:{story['user']}")
    assert human.returncode == 0 and human.stdout.startswith("3 event(s) in local server")

    shown = paygate(directory, "events", "show", story["events"][0], "--json")
    assert shown.returncode == 0, shown.stderr
    event = json.loads(shown.stdout)
    assert (event["outcome"], event["family"], event["event_type"]) == (
        "applied",
        "clerk.subscriptions",
        "subscriptionItem.active",
    )
    assert json.loads(event["body"])["data"]["payer"]["user_id"] == story["user"]
    assert [r["now_written_by"] for r in event["records"]] == [story["events"][0]]
    human = paygate(directory, "events", "show", story["events"][0])
    assert "outcome   applied" in human.stdout and "as written" in human.stdout and '"data": {' in human.stdout

    assert paygate(directory, "events", "show", "msg_never_sent").returncode == 3
    assert paygate(directory, "events", "list", "--since", "yesterday-ish").returncode == 2


def test_replay_of_an_applied_event_changes_nothing(paygate_server: Server, story: dict[str, Any]) -> None:
    replayed = paygate(paygate_server.state.directory, "replay", story["events"][0], "--json")
    assert replayed.returncode == 0, replayed.stderr
    (result,) = json.loads(replayed.stdout)["results"]
    assert (result["previous"], result["outcome"], result["changes"]) == ("applied", "duplicate", [])


def test_a_quarantined_event_the_code_still_refuses_stays_quarantined(paygate_server: Server) -> None:
    user, _, tag = new_ids()
    event = clerk_pro(user, tag, now_ms())
    event["data"]["status"] = "no_such_status"
    answer = deliver(paygate_server, "clerk", event)
    assert (answer.status, answer.body["outcome"]) == (400, "quarantined")

    directory = paygate_server.state.directory
    listed = json.loads(paygate(directory, "events", "list", "--outcome", "quarantined", "--json").stdout)
    assert answer.msg_id in [i["event_id"] for i in listed]
    replayed = paygate(directory, "replay", answer.msg_id)
    assert replayed.returncode == 5
    assert "quarantined -> quarantined" in replayed.stdout and "data.status" in replayed.stdout


def test_without_a_running_server_the_command_says_so(tmp_path: Path) -> None:
    failed = paygate(tmp_path, "events", "list")
    assert failed.returncode == 4
    assert "no local server is running" in failed.stderr and "make run" in failed.stderr


def test_the_bootstrap_installs_the_launcher_which_runs_this_checkout() -> None:
    subprocess.run([str(ROOT / "scripts" / "bootstrap")], cwd=ROOT, check=True, capture_output=True)  # noqa: S603
    launcher = ROOT / ".venv" / "bin" / "paygate"
    ran = subprocess.run([str(launcher), "--help"], cwd=ROOT / "docs", capture_output=True, text=True)  # noqa: S603
    assert ran.returncode == 0, ran.stderr
    assert "payer" in ran.stdout and "replay" in ran.stdout
    assert f"running the code in {ROOT}" in ran.stdout


# -- replay heals ------------------------------------------------------------------------------


@contextmanager
def running(directory: Path, checkout: Path):
    server = _start(directory, checkout=checkout, in_memory=False)
    try:
        yield next(server)
    finally:
        next(server, None)


def broken_release(tmp_path: Path) -> Path:
    """A copy of this checkout whose Clerk item mapper refuses every item, as a faulty release would."""
    copy = tmp_path / "broken-release"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".*", "node_modules", "tests", "bench", "docs", "__pycache__"),
    )
    (copy / "node_modules").symlink_to((ROOT / "node_modules").resolve())
    clerk = copy / "layers" / "paygate" / "paygate" / "providers" / "clerk.py"
    source = clerk.read_text()
    signature = (
        "def map_subscription_item(envelope: Mapping[str, Any], delivery: Delivery, catalog: Catalog) -> Effect:\n"
    )
    assert signature in source
    clerk.write_text(
        source.replace(signature, signature + '    raise InvalidEvent("data.plan", "this release cannot read plans")\n')
    )
    return copy


def test_replay_heals_a_quarantined_event_after_the_fix(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    user, _, tag = new_ids()
    with running(state, broken_release(tmp_path)) as broken:
        answer = deliver(broken, "clerk", clerk_pro(user, tag, now_ms()))
        assert (answer.status, answer.body["outcome"]) == (400, "quarantined")
        assert answer.body["message"] == "this release cannot read plans"

    # The fix is released (this checkout) and started on the same data; the event is still quarantined.
    with running(state, ROOT) as fixed:
        listed = json.loads(paygate(state, "events", "list", "--outcome", "quarantined", "--json").stdout)
        assert [i["event_id"] for i in listed] == [answer.msg_id]

        rehearsal = paygate(state, "replay", "--outcome", "quarantined", "--dry-run")
        assert rehearsal.returncode == 0, rehearsal.stderr
        assert "quarantined -> applied" in rehearsal.stdout and "(dry run)" in rehearsal.stdout
        assert f"+ PAYER#user:{user}  item#clerk:csubi_{tag}" in rehearsal.stdout
        assert paygate(state, "payer", "show", user).returncode == 3, "a dry run writes nothing"

        healed = paygate(state, "replay", "--outcome", "quarantined", "--json")
        assert healed.returncode == 0, healed.stderr
        (result,) = json.loads(healed.stdout)["results"]
        assert (result["event_id"], result["previous"], result["outcome"]) == (answer.msg_id, "quarantined", "applied")

        report = json.loads(paygate(state, "payer", "show", user, "--json").stdout)
        assert report["plans"] == ["pro"]
        token = mint(
            session_claims(user, now_s=now_ms() // 1000), fixed.state.private_key_pem, fixed.state.public_key_pem
        )
        status, account = fixed.get("/me/subscription", token)
        assert status == 200 and account["plans"] == ["pro"]

        again = paygate(state, "replay", answer.msg_id, "--json")
        assert json.loads(again.stdout)["results"][0]["outcome"] == "duplicate"
        assert paygate(state, "events", "list", "--outcome", "quarantined", "--json").stdout.strip() == "[]"
