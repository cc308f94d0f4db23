"""The commands README.md and docs/local.md show, run verbatim against a freshly started local server.

Every shell command in a ``sh`` block runs as written (in bash, from the repository root, with the server
found through ``PAYGATE_LOCAL_DIR`` as ``.local/`` is by default), in the docs' order, on a server of its
own (as a reader's first ``make run`` is), except the few listed in
:data:`NOT_RUN_HERE` with the reason. A command added to the docs is therefore run here unless it is
listed, so the docs cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from paygate_dev import ROOT
from tests.e2e.conftest import Server, _start

DOCS = ("README.md", "docs/local.md")

#: Commands that cannot run inside the test suite, by their start, and why.
NOT_RUN_HERE = {
    "make run": "the server itself: the tests start it the same way (tests/e2e/conftest.py)",
    "make test": "the whole suite, this test included",
    "scripts/bootstrap --sam": "installs the AWS SAM CLI (network); `make sam-validate` runs it in CI",
    ".venv-sam/bin/sam": "builds or deploys to AWS",
    "cloudflared ": "opens a public tunnel",
    "ngrok ": "opens a public tunnel",
    ".venv/bin/python -m pytest": "the test suite itself",
    ".venv/bin/python -m paygate_dev.send ./my-event.json": "stands for a JSON file of the reader's own",
}


def documented_blocks() -> list[tuple[str, list[str]]]:
    """``(doc, commands)`` for every ``sh`` block, continuation lines joined, trailing comments dropped."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", (ROOT / doc).read_text(), flags=re.S):
            commands, command = [], ""
            for line in block.splitlines():
                if line.endswith("\\"):
                    command += line[:-1].rstrip() + " "
                    continue
                command = re.sub(r"\s+#\s.*$", "", command + line).strip()
                if command:
                    commands.append(command)
                command = ""
            found.append((doc, commands))
    return found


BLOCKS = documented_blocks()


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start(tmp_path_factory.mktemp("docs-local"))


def not_run_here(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN_HERE.items() if command.startswith(prefix)), None)


def test_the_docs_show_commands_and_every_exception_is_still_used() -> None:
    commands = [c for _, block in BLOCKS for c in block]
    assert len(commands) > 15
    assert {p for p in NOT_RUN_HERE if any(c.startswith(p) for c in commands)} == set(NOT_RUN_HERE)


@pytest.mark.parametrize(("doc", "commands"), BLOCKS, ids=[f"{d}:{b[0][:50]}" for d, b in BLOCKS])
def test_a_documented_block_works_verbatim(fresh_server: Server, doc: str, commands: list[str]) -> None:
    """One bash session per block, as a reader pastes it (so ``TOKEN=$(...)`` reaches the next line)."""
    runnable = [c for c in commands if not_run_here(c) is None]
    if not runnable:
        pytest.skip("; ".join(sorted({not_run_here(c) or "" for c in commands})))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("TABLE_NAME", "WEBHOOK_SECRET")
    }
    env["PAYGATE_LOCAL_DIR"] = str(fresh_server.state.directory)
    # The docs' http://localhost:3000 is wherever the test started the server.
    script = "\n".join(c.replace("http://localhost:3000", fresh_server.url) for c in runnable)
    done = subprocess.run(  # noqa: S603
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{doc}:\n{script}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_every_linked_doc_exists() -> None:
    for doc in ("README.md", "docs/local.md", "docs/operations.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)", (ROOT / doc).read_text()):
            assert (ROOT / doc).parent.joinpath(target).resolve().is_file(), f"{doc} links {target}"


def test_the_operations_doc_commands_are_the_paygate_command() -> None:
    """docs/operations.md shows captured runs; each `$ .venv/bin/paygate ...` there parses as a command."""
    text = (ROOT / "docs" / "operations.md").read_text()
    shown = re.findall(r"^\$ (?:PAYGATE_LOCAL_DIR=\S+ )?\.venv/bin/paygate (.+)$", text, flags=re.M)
    assert len(shown) >= 10
    for arguments in shown:
        done = subprocess.run(  # noqa: S603
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "paygate_dev.cli", *arguments.split(), "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{arguments}: {done.stderr}"
