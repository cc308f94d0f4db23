"""paygate on this machine: DynamoDB Local, and the template's HTTP API served over real HTTP, without Docker.

    python -m paygate_dev.serve                 # what `make run` starts; data kept in .local/dynamodb
    python -m paygate_dev.serve --in-memory     # a throwaway store
    python -m paygate_dev.serve --fresh         # forget the kept data, then start

Every route ``template.yaml`` declares is served by its function's real handler, given the API Gateway
HTTP API (payload 2.0) event it would get in AWS. Routes behind a Lambda authorizer run it first, as API
Gateway does: identity sources checked, the decision cached by their values for the authorizer's TTL,
simple responses, the authorizer's context handed on at ``requestContext.authorizer.lambda``.

Each function runs as Lambda runs it (paygate_dev.container): in containers of its own, each a process with
the function's environment serving one invocation at a time, started when every existing one is busy.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from paygate_dev import LAYER_DIR
from paygate_dev.apigw import http_event
from paygate_dev.bus import start_local_bus
from paygate_dev.container import (
    DEFAULT_CONTAINERS,
    ContainerFailed,
    FunctionPool,
    Invocation,
    Throttled,
    check_functions,
)
from paygate_dev.dynamodb_local import DynamoDBLocal
from paygate_dev.local_env import TABLE_NAME, LocalState, function_environment, load_state, state_dir
from paygate_dev.template import Authorizer, Function, Route, authorizers, functions, load, with_parameters

if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))

#: API Gateway's payload limit for HTTP APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
ACCOUNT_ID = "000000000000"
API_ID = "local"
STAGE = "$default"
REGION = "us-east-1"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str = ""
    #: As received, a name may repeat.
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def message(cls, status: int, message: str) -> Response:
        """API Gateway's own answers (no route, unauthorized, forbidden ...) are ``{"message": ...}``."""
        return cls(status, [("content-type", "application/json")], json.dumps({"message": message}).encode())


@dataclass(frozen=True)
class Target:
    route: Route
    function: Function


@dataclass(frozen=True)
class Match:
    target: Target
    path_parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    return path[1:].split("/") if path.startswith("/") else path.split("/")


def match_path(pattern: str, path: str) -> dict[str, str] | None:
    """The path parameters when ``path`` matches the route path ``pattern``, else ``None``."""
    wanted, given = _segments(pattern), _segments(path)
    params: dict[str, str] = {}
    for i, part in enumerate(wanted):
        if part.startswith("{") and part.endswith("+}"):
            rest = given[i:]
            if not rest or not "/".join(rest):
                return None
            params[part[1:-2]] = unquote("/".join(rest))
            return params
        if i >= len(given):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not given[i]:
                return None
            params[part[1:-1]] = unquote(given[i])
        elif part != given[i]:
            return None
    return params if len(given) == len(wanted) else None


def _specificity(route: Route) -> tuple[int, int, int, int]:
    """Lower sorts first: API Gateway prefers the method over ANY, a full path over variables, and a
    greedy variable last; among equals, the route with more literal segments."""
    parts = _segments(route.path)
    greedy = any(p.endswith("+}") for p in parts)
    variables = sum(p.startswith("{") for p in parts)
    literals = len(parts) - variables
    return (route.method == "ANY", greedy, variables, -literals)


def select_route(targets: list[Target], method: str, path: str) -> Match | None:
    """The route API Gateway would choose for ``method path``; ``$default`` when nothing else matches."""
    candidates: list[tuple[tuple[int, int, int, int], Match]] = []
    fallback = None
    for target in targets:
        route = target.route
        if route.path == "$default":
            fallback = Match(target, {})
            continue
        if route.method not in (method, "ANY"):
            continue
        params = match_path(route.path, path)
        if params is not None:
            candidates.append((_specificity(route), Match(target, params)))
    if candidates:
        return min(candidates, key=lambda c: c[0])[1]
    return fallback


def request_note(response: Response, logs: list[str]) -> str:
    """What a request came to, in a word or two: a webhook's outcome, a denial's reason, an error code."""
    for line in reversed(logs):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("allowed") is False and entry.get("reason"):
            return f"denied: {entry['reason']}"
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("outcome", "error"):
            if isinstance(body.get(key), str):
                return body[key]
    return ""


class AuthorizerFault(Exception):
    """The authorizer failed or answered something API Gateway cannot read: a 500 to the caller."""


class FunctionError(Exception):
    """The function raised (Lambda's function error), or its container failed: a 500 to the caller."""


@dataclass
class Trace:
    """What one request went through, for its log line: the functions' log lines and their cold starts."""

    logs: list[str] = field(default_factory=list)
    cold_starts: list[str] = field(default_factory=list)
    throttled: bool = False

    def add(self, logical_id: str, invocation: Invocation) -> None:
        self.logs.extend(invocation.logs)
        if invocation.init_ms is not None:
            self.cold_starts.append(f"{logical_id} {invocation.init_ms:.0f} ms")


@dataclass(frozen=True)
class Decision:
    authorized: bool
    context: dict[str, Any]


class Gateway:
    """The HTTP API of one template: route selection, the authorizer and the function, each function run in
    containers of its own (:class:`~paygate_dev.container.FunctionPool`), requests served concurrently."""

    def __init__(
        self,
        state: LocalState,
        dynamodb_endpoint: str,
        template: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
        log_json: bool = False,
        containers: int = DEFAULT_CONTAINERS,
    ) -> None:
        self.template = template or load()
        self._log_json = log_json
        self.functions = functions(self.template)
        self.authorizers = authorizers(self.template)
        self.targets = [Target(r, f) for f in self.functions.values() for r in f.routes]
        self.environments = {
            lid: function_environment(f, state, dynamodb_endpoint, self.template) for lid, f in self.functions.items()
        }
        for target in self.targets:
            name = target.route.authorizer
            if name is not None and name not in self.authorizers:
                raise ValueError(f"route {target.route.route_key} names authorizer {name!r}, not in the template")
        for authorizer in self.authorizers.values():
            if authorizer.payload_version != "2.0":
                raise ValueError(f"authorizer {authorizer.name}: only payload format 2.0 is served locally")
        #: What the start-up checks found worth saying, without refusing to start.
        self.warnings = self._check_gates()
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, Decision]] = {}
        self._clock = clock
        self._log = log or (lambda line: None)
        # The functions API Gateway invokes: the routes' and the authorizers'. Containers start on first use.
        invoked = {t.function.logical_id for t in self.targets} | {a.function for a in self.authorizers.values()}
        self.pools = {
            lid: FunctionPool(
                lid,
                self.functions[lid].code_dir,
                self.functions[lid].handler,
                self.environments[lid],
                reserved=self.functions[lid].reserved_concurrency,
                containers=containers,
                relay=self._log,
            )
            for lid in sorted(invoked)
            if lid in self.functions
        }

    def _check_gates(self) -> list[str]:
        """Every route behind paygate's authorizer needs a gate in the catalog (else it is denied forever),
        and every gate should name a route the template sends through it (else it is a typo, or dead)."""
        from paygate.infra.catalog_file import DEFAULT_PATH, load_catalog

        warnings = []
        for authorizer in self.authorizers.values():
            function = self.functions.get(authorizer.function)
            if function is None or "CLERK_ISSUER" not in function.environment:
                continue  # not paygate's authorizer (the template gives it no Clerk issuer): it reads no catalog
            environment = self.environments[authorizer.function]
            path = Path(environment.get("PAYGATE_CONFIG") or DEFAULT_PATH)
            gates = set(load_catalog(path.resolve()).routes)
            routed = {t.route.route_key for t in self.targets if t.route.authorizer == authorizer.name}
            missing = sorted(routed - gates)
            if missing:
                keys = ", ".join(f'[routes."{key}"]' for key in missing)
                raise ValueError(
                    f"{', '.join(missing)}: behind {authorizer.name} in the template, but {path} has no gate "
                    f"for {'them' if len(missing) > 1 else 'it'}, so every request would be denied; add {keys}"
                )
            for key in sorted(gates - routed):
                warnings.append(
                    f"{path.name} gates {key!r}, but no route of the template goes through "
                    f"{authorizer.name} with that key (a typo in the route key?)"
                )
        return warnings

    def load_all(self) -> None:
        """Import every handler now (in a process of its own, each with its function's environment), so a
        broken function fails the start rather than its first request."""
        check_functions(
            [
                FunctionPool(lid, f.code_dir, f.handler, self.environments[lid], relay=self._log)
                for lid, f in self.functions.items()
            ]
        )

    def close(self) -> None:
        """Stop every container."""
        for pool in self.pools.values():
            pool.close()

    # -- the request path ------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        trace = Trace()
        response, served_by = self._handle(request, request_id, trace)
        response.headers.append(("apigw-requestid", request_id))
        elapsed = (time.perf_counter() - started) * 1000
        outcome = "throttled" if trace.throttled else request_note(response, trace.logs)
        timing = ", ".join(p for p in (served_by, f"{elapsed:.0f} ms") if p)
        if trace.cold_starts:
            timing += f"; cold start: {', '.join(trace.cold_starts)}"
        note = " ".join(p for p in (outcome, f"({timing})") if p)
        line = f"{request.method} {request.path} -> {response.status} {note}"
        # One write per request, so concurrent requests never run their lines together.
        self._log("\n".join([line, *(f"    {entry}" for entry in trace.logs)]) if self._log_json else line)
        return response

    def _handle(self, request: Request, request_id: str, trace: Trace) -> tuple[Response, str]:
        if len(request.body) > MAX_BODY_BYTES:
            return Response.message(413, "Request Entity Too Large"), ""
        found = select_route(self.targets, request.method, request.path)
        if found is None:
            return Response.message(404, "Not Found"), ""
        route, function = found.target.route, found.target.function
        event = self._event(request, route, found.path_parameters, request_id)
        note = function.logical_id
        if route.authorizer is not None:
            authorizer = self.authorizers[route.authorizer]
            try:
                denial, decision = self._authorize(authorizer, event, trace)
            except AuthorizerFault as exc:
                self._log(f"authorizer {authorizer.name} failed: {exc}")
                return Response.message(500, "Internal Server Error"), f"{authorizer.name} failed"
            if denial is not None:
                return denial, f"by {authorizer.name}"
            event["requestContext"]["authorizer"] = {"lambda": decision.context}
        try:
            result = self._invoke(function, event, trace)
        except Throttled:
            # Lambda refuses the invocation (429 TooManyRequestsException); the HTTP API answers 503.
            trace.throttled = True
            return Response.message(503, "Service Unavailable"), note
        except FunctionError as exc:  # a function error is a 500, as Lambda reports it to API Gateway
            self._log(f"{function.logical_id} failed:\n{exc}")
            return Response.message(500, "Internal Server Error"), note
        try:
            return function_response(result), note
        except (TypeError, ValueError) as exc:
            self._log(f"{function.logical_id} answered something API Gateway cannot read: {exc}")
            return Response.message(500, "Internal Server Error"), note

    def _event(self, request: Request, route: Route, params: dict[str, str], request_id: str) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers:
            name = name.lower()
            separator = "; " if name == "cookie" else ","
            headers[name] = f"{headers[name]}{separator}{value}" if name in headers else value
        route_key = "$default" if route.path == "$default" else route.route_key
        event = http_event(
            request.method,
            request.path,
            route_key=route_key,
            body=request.body if request.body else None,
            headers=headers,
            query=request.query,
            path_parameters=params or None,
            source_ip=request.source_ip,
        )
        context = event["requestContext"]
        context.update(requestId=request_id, domainName=headers.get("host", "localhost").split(":")[0])
        context["domainPrefix"] = context["domainName"].split(".")[0]
        return event

    # -- the authorizer --------------------------------------------------------------------

    def _authorize(
        self, authorizer: Authorizer, event: dict[str, Any], trace: Trace
    ) -> tuple[Response | None, Decision]:
        values = [identity_value(source, event) for source in authorizer.identity_sources]
        caching = authorizer.ttl_s > 0
        if any(not v for v in values):
            # API Gateway answers this itself, without calling the authorizer, cache or not (the
            # apigatewayv2 reference, Authorizer.identitySource: "runtime validation ... Otherwise, it
            # returns a 401 Unauthorized response without calling the Lambda function").
            return Response.message(401, "Unauthorized"), Decision(False, {})
        present = tuple(v for v in values if v)
        key = (authorizer.name, present)
        now = self._clock()
        cached = self._cache.get(key) if caching else None
        if cached is not None and cached[0] > now:
            decision = cached[1]
        else:
            decision = self._run_authorizer(authorizer, event, list(present), trace)
            if caching:
                self._cache[key] = (now + authorizer.ttl_s, decision)
        if not decision.authorized:
            return Response.message(403, "Forbidden"), decision
        return None, decision

    def _run_authorizer(
        self, authorizer: Authorizer, event: dict[str, Any], identity: list[str], trace: Trace
    ) -> Decision:
        method = event["requestContext"]["http"]["method"]
        route_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{STAGE}/{method}{event['rawPath']}"
        request: dict[str, Any] = {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": route_arn,
            "identitySource": identity,
            "routeKey": event["routeKey"],
            "rawPath": event["rawPath"],
            "rawQueryString": event["rawQueryString"],
            "cookies": event.get("cookies", []),
            "headers": event["headers"],
            "queryStringParameters": event.get("queryStringParameters"),
            "requestContext": event["requestContext"],
            "pathParameters": event.get("pathParameters"),
            "stageVariables": event.get("stageVariables"),
        }
        try:
            answer = self._invoke(self.functions[authorizer.function], request, trace)
        except Throttled as exc:
            raise AuthorizerFault(f"throttled: {exc}") from exc
        except FunctionError as exc:
            raise AuthorizerFault(str(exc)) from exc
        return read_decision(answer, authorizer, route_arn)

    # -- calling a function ----------------------------------------------------------------

    def _invoke(self, function: Function, event: dict[str, Any], trace: Trace) -> Any:
        """The function's answer to ``event``, from one of its containers; raises :class:`Throttled` or
        :class:`FunctionError`."""
        try:
            invocation = self.pools[function.logical_id].invoke(event, str(uuid.uuid4()))
        except ContainerFailed as exc:
            raise FunctionError(str(exc)) from exc
        trace.add(function.logical_id, invocation)
        if invocation.error is not None:
            raise FunctionError(invocation.error["trace"].rstrip())
        return invocation.result


def identity_value(source: str, event: dict[str, Any]) -> str | None:
    """The value an identity source selects from the request (``None`` when absent)."""
    if source.startswith("$request.header."):
        return event["headers"].get(source.removeprefix("$request.header.").lower())
    if source.startswith("$request.querystring."):
        return (event.get("queryStringParameters") or {}).get(source.removeprefix("$request.querystring."))
    if source.startswith("$stageVariables."):
        return (event.get("stageVariables") or {}).get(source.removeprefix("$stageVariables."))
    if source.startswith("$context."):
        context = event["requestContext"]
        name = source.removeprefix("$context.")
        known = {
            "routeKey": event["routeKey"],
            "httpMethod": context["http"]["method"],
            "path": context["http"]["path"],
            "stage": context["stage"],
            "apiId": context["apiId"],
            "accountId": context["accountId"],
            "domainName": context["domainName"],
            "identity.sourceIp": context["http"]["sourceIp"],
        }
        return known.get(name)
    return None


def read_decision(answer: Any, authorizer: Authorizer, route_arn: str) -> Decision:
    """An authorizer's answer as API Gateway reads it: a simple response or an IAM policy."""
    if not isinstance(answer, dict):
        raise AuthorizerFault(f"the answer is a {type(answer).__name__}, not an object")
    context = answer.get("context") or {}
    if not isinstance(context, dict):
        raise AuthorizerFault("'context' is not an object")
    if authorizer.simple_responses:
        authorized = answer.get("isAuthorized")
        if not isinstance(authorized, bool):
            raise AuthorizerFault("a simple response needs a boolean 'isAuthorized'")
        return Decision(authorized, context)
    statements = (answer.get("policyDocument") or {}).get("Statement")
    if not isinstance(statements, list):
        raise AuthorizerFault("an IAM policy response needs policyDocument.Statement")
    allowed = False
    for statement in statements:
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(route_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return Decision(False, context)
            allowed = allowed or statement.get("Effect") == "Allow"
    return Decision(allowed, context)


def function_response(result: Any) -> Response:
    """A payload 2.0 function result as API Gateway turns it into an HTTP answer."""
    if isinstance(result, dict) and "statusCode" in result:
        status = result["statusCode"]
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"statusCode {status!r} is not an HTTP status")
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("set-cookie", str(c)) for c in result.get("cookies") or ()]
        body = result.get("body") or ""
        if not isinstance(body, str):
            raise TypeError("body must be a string")
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return Response(status, headers, raw)
    # Without a statusCode, API Gateway answers 200 with the result as JSON.
    body = result if isinstance(result, str) else json.dumps(result)
    return Response(200, [("content-type", "application/json")], body.encode())


# -- the HTTP server -------------------------------------------------------------------------


def _handler_class(paygate: LocalPaygate) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "paygate-local"

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            try:
                body = self._body()
            except ValueError:
                self._send(Response.message(400, "Bad Request"))
                return
            if body is None:
                self._send(Response.message(413, "Request Entity Too Large"))
                return
            request = Request(
                method=self.command,
                path=path,
                query=query,
                headers=tuple(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            self._send(paygate.gateway.handle(request))

        def _body(self) -> bytes | None:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    total += size
                    if total > MAX_BODY_BYTES:
                        self.close_connection = True
                        return None
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                return None
            return self.rfile.read(length) if length > 0 else b""

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the gateway logs each request itself, with the function that served it

    return Handler


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog like a real server's (the standard library's is 5,
    which resets connections as soon as a handful of clients arrive at once)."""

    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away before its answer (it gave up waiting): nothing to report
        super().handle_error(request, client_address)


class LocalPaygate:
    """DynamoDB Local, the table, and the HTTP server, started and stopped together."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        directory: Path | None = None,
        in_memory: bool = False,
        fresh: bool = False,
        template: dict[str, Any] | None = None,
        log: Callable[[str], None] | None = None,
        fake_providers: bool = False,
        log_json: bool = False,
        containers: int = DEFAULT_CONTAINERS,
    ) -> None:
        self.host, self.port = host, port
        self.log_json, self.containers = log_json, containers
        #: Also serve Clerk's and Dodo's APIs locally (paygate_dev.fake_providers), for reconcile.
        self.fake_providers = fake_providers
        self.providers: Any = None
        self.directory = directory or state_dir()
        self.in_memory, self.fresh = in_memory, fresh
        self.template = template
        self.log = log or (lambda line: None)
        self.state: LocalState | None = None
        self.dynamodb: DynamoDBLocal | None = None
        self.httpd: LocalHTTPServer | None = None
        self.gateway: Gateway | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104 - only displayed
        return f"http://{shown}:{port}"

    @property
    def local_url(self) -> str:
        """The URL the companion commands use: an address, so no name lookup can pick another interface."""
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"  # noqa: S104 - not a bind

    def start(self) -> LocalPaygate:
        running = running_instance(self.directory)
        if running is not None:
            raise AlreadyRunning(
                f"paygate is already running from {self.directory} (pid {running['pid']}, {running['url']}): "
                "stop it, or give this one its own --state-dir"
            )
        # The port first: a taken port is said at once, before DynamoDB Local takes its seconds to start.
        httpd = LocalHTTPServer((self.host, self.port), _handler_class(self))
        try:
            self.state = load_state(self.directory, create=True, template=self.template)
            if self.fresh and self.state.data_dir.exists():
                shutil.rmtree(self.state.data_dir)
            if self.fake_providers:
                from paygate_dev.fake_providers import example

                self.providers = example().start()
                os.environ.update(self.providers.settings())
            self.dynamodb = DynamoDBLocal(data_dir=None if self.in_memory else self.state.data_dir).start()
            try:
                self.dynamodb.create_table(TABLE_NAME)
                gateway = Gateway(
                    self.state,
                    self.dynamodb.endpoint,
                    self.template,
                    log=self.log,
                    log_json=self.log_json,
                    containers=self.containers,
                )
                gateway.load_all()
                self.gateway = gateway
            except BaseException:
                self.dynamodb.stop()
                raise
        except BaseException:
            httpd.server_close()
            raise
        self.httpd = httpd
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="paygate-http", daemon=True)
        self._thread.start()
        self.bus = start_local_bus(self, echo=self.log)
        self.state.server_file.write_text(json.dumps(self.record(), indent=2) + "\n")
        return self

    def record(self) -> dict[str, Any]:
        """What the companion commands need to find this server and its store (``.local/server.json``)."""
        assert self.dynamodb is not None
        settings = next(iter(self.gateway.environments.values()), {})
        return {
            "url": self.local_url,
            "pid": os.getpid(),
            "dynamodb": self.dynamodb.endpoint,
            "table": TABLE_NAME,
            "grace_period_days": int(settings.get("GRACE_PERIOD_DAYS") or 7),
            "event_retention_days": int(settings.get("EVENT_RETENTION_DAYS") or 90),
            **({"providers": self.providers.settings()} if self.providers is not None else {}),
        }

    def stop(self) -> None:
        if getattr(self, "bus", None) is not None:
            self.bus.stop()
            self.bus = None
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.gateway is not None:
            self.gateway.close()
        if self.dynamodb is not None:
            self.dynamodb.stop()
            self.dynamodb = None
        if self.providers is not None:
            self.providers.stop()
            self.providers = None
        if self.state is not None and (running_instance(self.state.directory) or {}).get("pid") == os.getpid():
            self.state.server_file.unlink(missing_ok=True)  # only our own: another instance may own it

    def __enter__(self) -> LocalPaygate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AlreadyRunning(RuntimeError):
    """Another local server keeps its state (and its ``server.json``) in the same directory."""


def running_instance(directory: Path) -> dict[str, Any] | None:
    """What ``server.json`` in ``directory`` says, if the process it names is alive."""
    try:
        recorded = json.loads((directory / "server.json").read_text())
        os.kill(int(recorded["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, TypeError, ProcessLookupError):
        return None  # none, unreadable, or left behind by a server that was killed
    except PermissionError:
        pass  # alive, and someone else's
    return recorded


def banner(paygate: LocalPaygate) -> str:
    """What a newcomer needs on screen: where to send webhooks, with which secret, and how to get in."""
    assert paygate.state is not None
    state, url = paygate.state, paygate.url
    gateway = paygate.gateway
    storage = "in memory (gone when stopped)" if paygate.in_memory else f"kept in {state.data_dir}"
    lines = [
        f"paygate is running at {url}",
        f"  DynamoDB Local: {paygate.dynamodb.endpoint}, table {TABLE_NAME}, {storage}",
    ]
    if state.created:
        lines.append(f"  generated under {state.directory}: " + ", ".join(state.created))
    lines += [f"  warning: {warning}" for warning in gateway.warnings]
    webhooks = [t for t in gateway.targets if "WEBHOOK_SECRET" in gateway.environments[t.function.logical_id]]
    if webhooks:
        lines += ["", "Webhook endpoints (signing secret for local use):"]
        for t in sorted(webhooks, key=lambda t: t.route.path):
            secret = gateway.environments[t.function.logical_id]["WEBHOOK_SECRET"]
            lines.append(f"  {t.route.method:<6} {url}{t.route.path}")
            lines.append(f"         {t.function.logical_id}  {secret}")
    gated = [t for t in gateway.targets if t.route.authorizer and t not in webhooks]
    open_ = [t for t in gateway.targets if not t.route.authorizer and t not in webhooks]
    for title, targets in (
        ("Routes behind the authorizer (Authorization: Bearer <token>):", gated),
        ("Other routes:", open_),
    ):
        if targets:
            lines += ["", title]
            for t in sorted(targets, key=lambda t: (t.route.path, t.route.method)):
                lines.append(f"  {t.route.method:<6} {url}{t.route.path}")
    lines += [
        "",
        "Try (in another terminal):",
        "  .venv/bin/python -m paygate_dev.send clerk/subscriptionItem.active.json",
        "  TOKEN=$(.venv/bin/python -m paygate_dev.token --user user_2pQk8sV1aZ3mN7xR4tY6uW9bC0d)",
    ]
    if gated:
        example = next((t for t in gated if t.route.path == "/me/subscription"), gated[0]).route.path
        example = example.replace("{proxy+}", "reports").replace("{", "").replace("}", "")
        lines.append(f'  curl -H "Authorization: Bearer $TOKEN" {url}{example}')
    lines += ["  .venv/bin/python -m paygate_dev.demo"]
    if paygate.providers is not None:
        lines += [
            f"  .venv/bin/python -m paygate_dev.reconcile      # Clerk and Dodo served at {paygate.providers.url}",
        ]
    lines += ["", "Ctrl-C stops paygate and DynamoDB Local."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PAYGATE_PORT", "3000")), help="default 3000")
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument("--in-memory", action="store_true", help="a throwaway store: nothing is kept")
    storage.add_argument("--fresh", action="store_true", help="delete the kept data first (secrets are kept)")
    parser.add_argument("--state-dir", type=Path, help="where secrets, keys and data live (default .local/)")
    parser.add_argument("--template", type=Path, help="another SAM template (default template.yaml)")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter's value, e.g. AuthorizerCacheTtl=300; repeatable",
    )
    parser.add_argument("--quiet", action="store_true", help="no request log")
    parser.add_argument(
        "--fake-providers",
        action="store_true",
        help="also serve Clerk's and Dodo's APIs locally with example data, for `python -m paygate_dev.reconcile`",
    )
    parser.add_argument(
        "--log-json", action="store_true", help="under each request, the JSON lines its functions logged"
    )
    parser.add_argument(
        "--containers",
        type=int,
        default=DEFAULT_CONTAINERS,
        metavar="N",
        help=f"containers each function may run at once (default {DEFAULT_CONTAINERS}); past them, requests wait",
    )
    args = parser.parse_args(argv)
    if args.containers < 1:
        parser.error("--containers: at least 1")

    written = threading.Lock()

    def log(line: str) -> None:
        with written:  # one request's lines together, whatever other requests finish meanwhile
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            sys.stderr.flush()

    template = load(args.template.resolve()) if args.template else load()
    try:
        overrides = dict(p.split("=", 1) for p in args.parameter)
        template = with_parameters(template, overrides) if overrides else template
    except ValueError as exc:
        parser.error(f"--parameter: {exc} (write NAME=VALUE)")
    if args.state_dir:
        os.environ["PAYGATE_LOCAL_DIR"] = str(args.state_dir)
    paygate = LocalPaygate(
        args.host,
        args.port,
        directory=args.state_dir,
        in_memory=args.in_memory,
        fresh=args.fresh,
        template=template,
        log=None if args.quiet else log,
        fake_providers=args.fake_providers,
        log_json=args.log_json,
        containers=args.containers,
    )
    try:
        paygate.start()
    except OSError as exc:
        print(f"paygate could not listen on {args.host}:{args.port}: {exc.strerror} (try --port)", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as exc:
        print(f"paygate could not start: {exc}", file=sys.stderr)
        return 1
    print(banner(paygate), flush=True)
    stop = threading.Event()
    # Ctrl-C and a plain `kill` both stop DynamoDB Local too, rather than leaving Java running.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
        print("\nstopping paygate ...", flush=True)
    finally:
        paygate.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
