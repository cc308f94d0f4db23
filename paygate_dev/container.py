"""Lambda execution environments for the local server: one process per container, one invocation at a time.

Lambda runs each function in containers of its own: a container is started (the cold start: the runtime
imports the handler's module) when an invocation arrives and every existing one is busy, serves one
invocation at a time, and is kept warm for the next. :class:`FunctionPool` does the same with child
processes (``python -m paygate_dev.container``), each started with the function's own environment and
nothing else of the server's, so functions never see each other's settings and a function that hangs holds
one container, not the server.

The server and a container speak JSON lines: the container's stdin carries ``{"event", "request_id"}``,
its stdout answers ``{"result"}`` or ``{"error"}`` with the lines the function logged during that
invocation (stdout and stderr, as CloudWatch Logs gets them). The first line a container writes says
whether its init succeeded. What it prints outside an invocation goes to its stderr, which the server
relays line by line.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from paygate_dev import ROOT

#: What a local container keeps of the server's environment: what a process needs to run on this machine.
#: Everything else comes from the template, as Lambda gives a function only its own variables.
MACHINE_VARIABLES = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
#: Containers per function when the template reserves no concurrency: a laptop cannot run Lambda's 1000.
DEFAULT_CONTAINERS = 4


class Throttled(Exception):
    """Every container the function's reserved concurrency allows is busy: Lambda refuses the invocation."""


class ContainerFailed(RuntimeError):
    """The container could not answer: its init failed, or its process ended during the invocation."""


@dataclass
class Invocation:
    """One invocation's outcome, as the server reads it from the container."""

    result: Any = None
    #: ``{"type", "message", "trace"}`` when the handler raised (Lambda's function error).
    error: dict[str, str] | None = None
    #: What the function logged during this invocation, line by line.
    logs: list[str] = field(default_factory=list)
    #: The init's duration when this invocation started the container (a cold start), else ``None``.
    init_ms: float | None = None
    #: Which container of the function served it (1, 2, ...), for the request log.
    container: int = 0


def container_environment(function_environment: Mapping[str, str]) -> dict[str, str]:
    """A container's whole environment: the function's variables over the few the machine needs."""
    base = {name: os.environ[name] for name in MACHINE_VARIABLES if name in os.environ}
    return {**base, **function_environment}


class Container:
    """One execution environment of a function: a child process serving one invocation at a time."""

    def __init__(
        self,
        logical_id: str,
        code_dir: Path,
        handler: str,
        environment: Mapping[str, str],
        number: int,
        relay: Callable[[str], None],
    ) -> None:
        self.logical_id, self.number = logical_id, number
        self._started = time.perf_counter()
        command = [sys.executable, "-m", "paygate_dev.container", str(code_dir), handler, logical_id]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            cwd=ROOT,
            env=dict(environment),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._initialized = False
        self._relay = threading.Thread(
            target=self._relay_output, args=(relay,), name=f"{logical_id}-{number}-output", daemon=True
        )
        self._relay.start()

    def _relay_output(self, relay: Callable[[str], None]) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                relay(f"{self.logical_id} (container {self.number}): {line}")

    def invoke(self, event: dict[str, Any], request_id: str) -> Invocation:
        assert self.process.stdin is not None and self.process.stdout is not None
        init_ms = None
        try:
            try:
                self.process.stdin.write(json.dumps({"event": event, "request_id": request_id}).encode() + b"\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass  # the process has ended: what it said before (an init error) is still to be read
            if not self._initialized:
                ready = self._read()
                if "init_error" in ready:
                    raise ContainerFailed(f"init failed:\n{ready['init_error']}")
                # Lambda's Init Duration: the runtime's start and the handler's import, until it takes the event.
                self._initialized, init_ms = True, (time.perf_counter() - self._started) * 1000
            answer = self._read()
        except (OSError, ValueError) as exc:
            raise ContainerFailed(f"the container's process ended ({exc})") from exc
        return Invocation(
            result=answer.get("result"),
            error=answer.get("error"),
            logs=answer.get("logs", []),
            init_ms=init_ms,
            container=self.number,
        )

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise ContainerFailed(f"the container's process ended (exit code {code})")
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, as Lambda ends an environment, then SIGKILL if it does not go."""
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class FunctionPool:
    """The containers of one function: a warm idle one when there is one (the most recently used, as
    Lambda tends to), else a new one, up to ``limit``. Over the function's reserved concurrency an
    invocation is throttled; over the local limit alone it waits for a container to be free."""

    def __init__(
        self,
        logical_id: str,
        code_dir: Path,
        handler: str,
        environment: Mapping[str, str],
        *,
        reserved: int | None = None,
        containers: int = DEFAULT_CONTAINERS,
        relay: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.logical_id, self.code_dir, self.handler = logical_id, code_dir, handler
        self.environment = container_environment(environment)
        self.reserved = reserved
        self.limit = containers if reserved is None else min(reserved, containers)
        self._relay = relay
        self._idle: list[Container] = []
        self._all: list[Container] = []
        self._started = 0
        self._changed = threading.Condition()
        self._closed = False

    @property
    def size(self) -> int:
        """Containers running now."""
        with self._changed:
            return len(self._all)

    def invoke(self, event: dict[str, Any], request_id: str) -> Invocation:
        container = self._acquire()
        try:
            invocation = container.invoke(event, request_id)
        except ContainerFailed:
            self._discard(container)
            raise
        self._release(container)
        return invocation

    def _acquire(self) -> Container:
        with self._changed:
            while True:
                if self._closed:
                    raise ContainerFailed("the local server is stopping")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.limit:
                    self._started += 1
                    number = self._started
                    break
                if self.reserved is not None and self.reserved <= self.limit:
                    raise Throttled(f"{self.logical_id}: all {self.reserved} reserved containers are busy")
                self._changed.wait()
            container = Container(self.logical_id, self.code_dir, self.handler, self.environment, number, self._relay)
            self._all.append(container)
            return container

    def _release(self, container: Container) -> None:
        with self._changed:
            if self._closed:
                return
            self._idle.append(container)
            self._changed.notify()

    def _discard(self, container: Container) -> None:
        with self._changed:
            if container in self._all:
                self._all.remove(container)
            self._changed.notify()
        container.stop()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            containers, self._all, self._idle = self._all, [], []
            self._changed.notify_all()
        for container in containers:
            container.process.terminate()
        for container in containers:
            container.stop()


# -- inside a container ------------------------------------------------------------------------


class InvocationOutput(io.TextIOBase):
    """Stands in for ``sys.stdout`` and ``sys.stderr`` in a container: during an invocation what the function
    writes is kept for the answer, line by line; outside one it goes to the container's stderr."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._kept: list[str] | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._kept is None:
            self._stream.write(text)
        else:
            self._kept.append(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        kept: list[str] = []
        self._kept = kept
        try:
            yield kept
        finally:
            self._kept = None


def serve(requests: BinaryIO, answers: BinaryIO, code_dir: str, handler_spec: str, logical_id: str) -> int:
    """A container's life: the init (import the handler), then one invocation per request line."""
    from paygate_dev.apigw import LambdaContext
    from paygate_dev.invoke import load_handler
    from paygate_dev.template import Function

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    output = InvocationOutput(sys.__stderr__)
    # Handlers bind their loggers to sys.stdout when imported: from now on, their lines are kept per invocation.
    sys.stdout = sys.stderr = output
    try:
        handler = load_handler(Function(logical_id, Path(code_dir), handler_spec))
    except BaseException:  # noqa: BLE001 - any init failure is reported, as Lambda reports Runtime.ImportModuleError
        answer({"init_error": traceback.format_exc()})
        return 1
    answer({"ready": True})
    for line in requests:
        request = json.loads(line)
        message: dict[str, Any]
        with output.capture() as kept:
            try:
                context = LambdaContext(function_name=logical_id, aws_request_id=request["request_id"])
                # Lambda hands over and returns JSON: a result that is not JSON is the function's error.
                message = {"result": json.loads(json.dumps(handler(request["event"], context)))}
            except Exception as exc:  # noqa: BLE001 - a function error is reported, as Lambda reports it
                trace = traceback.format_exc()
                message = {"error": {"type": type(exc).__name__, "message": str(exc), "trace": trace}}
        message["logs"] = [entry for entry in "".join(kept).splitlines() if entry.strip()]
        answer(message)
    return 0


def check(functions: list[dict[str, Any]]) -> list[str]:
    """Import each function's handler with its own environment, as its cold start would: what failed, named.
    The server runs this once in a process of its own before it listens, so a broken function fails the
    start rather than its first request."""
    from paygate_dev.invoke import load_handler
    from paygate_dev.template import Function

    failures = []
    for function in functions:
        os.environ.clear()
        os.environ.update(function["environment"])
        try:
            load_handler(Function(function["logical_id"], Path(function["code_dir"]), function["handler"]))
        except BaseException:  # noqa: BLE001 - every failure is reported, named
            failures.append(f"{function['logical_id']} failed its init:\n{traceback.format_exc()}")
    return failures


def check_functions(pools: list[FunctionPool]) -> None:
    """:func:`check` for the functions of ``pools``, in a child process; raises naming what failed."""
    functions = [
        {"logical_id": p.logical_id, "code_dir": str(p.code_dir), "handler": p.handler, "environment": p.environment}
        for p in pools
    ]
    done = subprocess.run(
        [sys.executable, "-m", "paygate_dev.container", "--check"],
        cwd=ROOT,
        env=container_environment({}),
        input=json.dumps(functions).encode(),
        capture_output=True,
    )
    if done.returncode != 0:
        raise ContainerFailed(done.stdout.decode(errors="replace") or done.stderr.decode(errors="replace"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--check"]:
        report, sys.stdout = sys.stdout, sys.stderr  # what the handlers print at import is not the report
        failures = check(json.loads(sys.stdin.read()))
        report.write("\n".join(failures))
        return 1 if failures else 0
    code_dir, handler_spec, logical_id = argv
    # The server stops its containers itself; Ctrl-C in its terminal reaches this process too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever writes to file descriptor 1 from now on reaches stderr, not the answers
    return serve(requests, answers, code_dir, handler_spec, logical_id)


if __name__ == "__main__":
    raise SystemExit(main())
