"""Invokes a function in-process with an event - ``sam local invoke`` without Docker.

    python -m paygate_dev.invoke ClerkSubscriptionsFunction -e events/apigw/clerk/subscription.created.json

With ``make run`` going, the function gets the environment the local server gives it (its table on
DynamoDB Local, its signing secret, local region and dummy credentials), read from ``.local/``. With
``TABLE_NAME`` set, the environment is used as it is instead (``WEBHOOK_SECRET``,
``AWS_ENDPOINT_URL_DYNAMODB`` ...). The event's webhook signature is made afresh with the function's
secret (signatures expire after five minutes, so stored samples cannot carry a valid one); add
``--no-sign`` to send it as it is.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paygate_dev import LAYER_DIR
from paygate_dev.apigw import LambdaContext
from paygate_dev.template import Function, functions

_loaded: dict[str, Callable[[dict, Any], dict]] = {}


def load_handler(function: Function) -> Callable[[dict, Any], dict]:
    """Import a function's entry point as Lambda would: the layer on the path, its own folder as the root."""
    if str(LAYER_DIR) not in sys.path:
        sys.path.insert(0, str(LAYER_DIR))
    if function.logical_id not in _loaded:
        name = f"paygate_function_{function.logical_id}"
        spec = importlib.util.spec_from_file_location(name, function.module_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _loaded[function.logical_id] = getattr(module, function.handler_name)
    return _loaded[function.logical_id]


def invoke(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
    function = functions()[logical_id]
    return load_handler(function)(event, LambdaContext(function_name=logical_id))


def resign(event: dict[str, Any], secret: str) -> dict[str, Any]:
    """The same event with its webhook signature made now, in the header style it already uses."""
    from paygate_dev.signing import signed_headers

    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    style = "standard" if "webhook-id" in headers else "svix"
    msg_id = headers.get("svix-id") or headers.get("webhook-id")
    fresh = signed_headers(secret, event.get("body") or "", style=style, msg_id=msg_id)
    return {**event, "headers": {**headers, **fresh}}


def local_environment(function: Function) -> dict[str, str]:
    """The environment the running local server gives ``function`` (from ``.local/server.json``)."""
    from paygate_dev.local_env import LocalSetupError, function_environment, load_state

    state = load_state()
    try:
        server = json.loads(state.server_file.read_text())
        endpoint = server["dynamodb"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        raise LocalSetupError(
            "no local server is running: start it with `make run` (or set TABLE_NAME, "
            "AWS_ENDPOINT_URL_DYNAMODB and WEBHOOK_SECRET to invoke against another table)"
        ) from None
    return function_environment(function, state, endpoint)


def main(argv: list[str] | None = None) -> int:
    from paygate_dev.local_env import LOCAL_AWS, LocalSetupError
    from paygate_dev.signing import secret_from_env

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", help="logical id in template.yaml, e.g. ClerkSubscriptionsFunction")
    parser.add_argument("-e", "--event", type=Path, required=True, help="API Gateway payload 2.0 event (JSON)")
    parser.add_argument("--no-sign", action="store_true", help="do not re-sign the event")
    args = parser.parse_args(argv)
    if args.function not in functions():
        parser.error(f"unknown function {args.function}; known: {', '.join(sorted(functions()))}")
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"{args.event}: {exc}")
    if not os.environ.get("TABLE_NAME"):
        try:
            os.environ.update(local_environment(functions()[args.function]))
        except LocalSetupError as exc:
            print(f"not invoked: {exc}", file=sys.stderr)
            return 1
    elif os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", "").startswith(("http://127.0.0.1", "http://localhost")):
        for name, value in LOCAL_AWS.items():  # DynamoDB Local takes any credentials; AWS gets none of ours
            os.environ.setdefault(name, value)
    if not args.no_sign and os.environ.get("WEBHOOK_SECRET"):
        try:
            event = resign(event, secret_from_env())
        except Exception:  # noqa: BLE001 - svix raises several kinds for a malformed secret
            print("not invoked: WEBHOOK_SECRET is not a signing secret (whsec_ followed by base64)", file=sys.stderr)
            return 1
    print(json.dumps(invoke(args.function, event), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
