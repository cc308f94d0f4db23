"""The local server behaves as API Gateway's HTTP API does, tested over HTTP on a small stub template."""

from __future__ import annotations

import json

from tests.e2e.conftest import Server


def echoed(server: Server, method: str, path: str, **kwargs) -> dict:
    status, body = server.call(method, path, **kwargs)
    assert status == 200, body
    return body["event"]


def test_an_exact_path_wins_over_variables(stub_server: Server) -> None:
    event = echoed(stub_server, "GET", "/items/special")
    assert event["routeKey"] == "GET /items/special"
    assert "pathParameters" not in event


def test_a_path_variable_wins_over_a_greedy_one_and_is_decoded(stub_server: Server) -> None:
    event = echoed(stub_server, "GET", "/items/a%20b")
    assert event["routeKey"] == "GET /items/{id}"
    assert event["pathParameters"] == {"id": "a b"}
    assert event["rawPath"] == "/items/a%20b"


def test_a_greedy_variable_takes_the_rest_of_the_path(stub_server: Server) -> None:
    event = echoed(stub_server, "GET", "/items/a/b/c")
    assert event["routeKey"] == "GET /items/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c"}


def test_any_takes_the_methods_no_route_names(stub_server: Server) -> None:
    event = echoed(stub_server, "DELETE", "/items/42")
    assert event["routeKey"] == "ANY /items/{id}"
    assert event["requestContext"]["http"]["method"] == "DELETE"


def test_no_route_is_a_404_from_the_gateway(stub_server: Server) -> None:
    assert stub_server.call("GET", "/nowhere") == (404, {"message": "Not Found"})
    assert stub_server.call("GET", "/webhooks/echo") == (404, {"message": "Not Found"})


def test_the_function_gets_a_payload_2_event(stub_server: Server) -> None:
    event = echoed(
        stub_server,
        "POST",
        "/webhooks/echo?a=1&a=2&b=x%20y",
        body=b'{"hello": "world"}',
        headers={"X-Custom": "v", "Cookie": "c1=1; c2=2", "Content-Type": "application/json"},
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/echo"
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    assert event["headers"]["x-custom"] == "v"
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert "authorizer" not in event["requestContext"]


def test_a_binary_body_arrives_base64_encoded(stub_server: Server) -> None:
    event = echoed(stub_server, "POST", "/webhooks/echo", body=b"\xff\x00\xfe")
    assert event["isBase64Encoded"] is True
    assert event["body"] == "/wD+"


def test_the_function_answer_becomes_the_http_answer(stub_server: Server) -> None:
    import urllib.request

    with urllib.request.urlopen(stub_server.url + "/items/7") as resp:  # noqa: S310 - a local URL
        assert resp.status == 200
        assert resp.headers["x-echo"] == "yes"
        assert resp.headers.get_all("set-cookie") == ["a=1", "b=2"]
        assert resp.headers["apigw-requestid"]


def test_an_answer_without_status_code_is_200_json(stub_server: Server) -> None:
    assert stub_server.call("GET", "/items/raw") == (200, {"no": "statusCode"})


def test_a_function_that_raises_is_a_500(stub_server: Server) -> None:
    assert stub_server.call("GET", "/items/crash") == (500, {"message": "Internal Server Error"})


def test_each_function_gets_its_template_environment_with_local_values(stub_server: Server) -> None:
    status, body = stub_server.call("GET", "/items/1")
    assert status == 200
    env = body["env"]
    assert env["TABLE_NAME"] == "paygate-local"
    assert env["GRACE_PERIOD_DAYS"] == "9"  # a parameter's default
    assert env["PLAIN_SETTING"] == "plain"
    assert env["WEBHOOK_SECRET"] == stub_server.state.secret_of("EchoFunction")
    assert env["WEBHOOK_SECRET"].startswith("whsec_")
    assert env["WEBHOOK_SECRET_ARN"] is None  # no Secrets Manager locally
    assert env["AWS_ENDPOINT_URL_DYNAMODB"].startswith("http://127.0.0.1:")
    assert env["CLERK_ISSUER"] is None  # only the authorizer gets the session-token settings
    assert env["PAYGATE_LOCAL_DIR"] is None, "the server's own environment is not the function's"


# -- the Lambda authorizer --------------------------------------------------------------------


def authorized(server: Server, path: str, token: str) -> dict:
    status, body = server.get(path, token)
    assert status == 200, body
    return body["event"]["requestContext"]["authorizer"]["lambda"]


def test_the_authorizer_context_reaches_the_route(stub_server: Server) -> None:
    context = authorized(stub_server, "/pro/x?q=1", "allow-context")
    assert context["token"] == "allow-context"
    seen = context["seen"]
    assert seen["version"] == "2.0"
    assert seen["type"] == "REQUEST"
    assert seen["routeArn"] == "arn:aws:execute-api:us-east-1:000000000000:local/$default/GET/pro/x"
    assert seen["identitySource"] == ["Bearer allow-context", "GET /pro/{proxy+}"]
    assert seen["routeKey"] == "GET /pro/{proxy+}"
    assert seen["rawPath"] == "/pro/x"
    assert seen["rawQueryString"] == "q=1"
    assert seen["pathParameters"] == {"proxy": "x"}
    assert seen["headers"]["authorization"] == "Bearer allow-context"


def test_a_denial_is_a_403(stub_server: Server) -> None:
    assert stub_server.get("/pro/x", "deny-me") == (403, {"message": "Forbidden"})


def test_a_missing_identity_source_is_a_401_without_calling_the_authorizer(stub_server: Server) -> None:
    before = authorized(stub_server, "/pro/x", "allow-before")["calls"]
    assert stub_server.get("/pro/x") == (401, {"message": "Unauthorized"})
    assert stub_server.get("/pro/x", Authorization="") == (401, {"message": "Unauthorized"})
    after = authorized(stub_server, "/pro/x", "allow-after")["calls"]
    assert after == before + 1


def test_decisions_are_cached_by_identity_sources_and_not_across_routes(stub_server: Server) -> None:
    first = authorized(stub_server, "/pro/a", "allow-cache")["calls"]
    # Same token, same route key (another path under it): the cached decision, no new call.
    assert authorized(stub_server, "/pro/b", "allow-cache")["calls"] == first
    # Same token on another route: the route key is an identity source, so the authorizer runs again.
    assert authorized(stub_server, "/reports", "allow-cache")["calls"] == first + 1
    # Another token on the first route: not cached either.
    assert authorized(stub_server, "/pro/a", "allow-cache-2")["calls"] == first + 2


def test_a_cached_denial_stays_a_denial(stub_server: Server) -> None:
    assert stub_server.get("/pro/z", "deny-cached") == (403, {"message": "Forbidden"})
    assert stub_server.get("/pro/z", "deny-cached") == (403, {"message": "Forbidden"})


def test_without_caching_the_authorizer_runs_every_time_but_never_without_identity(stub_server: Server) -> None:
    first = authorized(stub_server, "/uncached", "allow-nocache")["calls"]
    assert authorized(stub_server, "/uncached", "allow-nocache")["calls"] == first + 1
    # The identity sources are checked whether or not decisions are cached: the gateway's own 401.
    assert stub_server.get("/uncached") == (401, {"message": "Unauthorized"})
    assert authorized(stub_server, "/uncached", "allow-nocache")["calls"] == first + 2


def test_a_failing_or_unreadable_authorizer_is_a_500(stub_server: Server) -> None:
    assert stub_server.get("/pro/x", "boom") == (500, {"message": "Internal Server Error"})
    assert stub_server.get("/pro/x", "junk") == (500, {"message": "Internal Server Error"})


def test_an_iam_policy_answer_is_read_when_simple_responses_are_off(stub_server: Server) -> None:
    status, body = stub_server.get("/policy/doc", "allow-policy")
    assert status == 200, body
    assert stub_server.get("/policy/doc", "deny-policy") == (403, {"message": "Forbidden"})


def test_the_secrets_file_holds_one_secret_per_webhook_function(stub_server: Server) -> None:
    secrets = json.loads(stub_server.state.secrets_file.read_text())
    assert list(secrets) == ["EchoFunction"]
    assert stub_server.state.private_key_file.stat().st_mode & 0o077 == 0
