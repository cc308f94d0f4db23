"""What the authorizer prepares during init: its store client only when the store is authoritative."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from paygate_dev import LAYER_DIR, ROOT
from paygate_dev.local_env import new_key_pair


@pytest.mark.parametrize(("authoritative", "client_at_init"), [("true", True), ("false", False)])
def test_the_store_client_is_made_during_init_only_when_the_store_is_authoritative(authoritative, client_at_init):
    # A fresh interpreter, as a cold Lambda container: import the handler and look, before any request.
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:0] = [{str(LAYER_DIR)!r}, {str(ROOT / "functions" / "authorizer")!r}]
        import app
        from paygate.infra.dynamodb_store import container_store
        print(json.dumps({{"client": container_store("unused")._client is not None,
                          "botocore_client": "botocore.client" in sys.modules}}))
        """
    )
    env = {
        "PATH": os.environ["PATH"],
        "CLERK_JWT_KEY": new_key_pair()[1],
        "CLERK_ISSUER": "https://clerk.paygate.test",
        "TABLE_NAME": "unused",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",  # Lambda sets both; botocore reads this one
        "STORE_AUTHORITATIVE": authoritative,
    }
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "client": client_at_init,
        "botocore_client": client_at_init,
    }


def test_an_unusable_configuration_at_init_is_left_to_the_first_request():
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(LAYER_DIR)!r}, {str(ROOT / "functions" / "authorizer")!r}, {str(ROOT)!r}]
        import app
        from paygate_dev.apigw import LambdaContext
        print(app.handler({{"routeKey": "GET /pro/export", "headers": {{}}}}, LambdaContext()))
        """
    )
    env = {"PATH": os.environ["PATH"], "TABLE_NAME": "unused", "AWS_REGION": "us-east-1", "STORE_AUTHORITATIVE": "true"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    line, answer = out.stdout.strip().splitlines()[-2:]
    assert answer == "{'isAuthorized': False}" and json.loads(line)["reason"] == "misconfigured"
