"""Invokes a function in-process with an event - ``sam local invoke`` without Docker.

    python -m paygate_dev.invoke ClerkSubscriptionsFunction -e events/apigw/clerk/subscription.created.json

The event's webhook signature is made afresh with ``WEBHOOK_SECRET`` (signatures expire after five
minutes, so stored samples cannot carry a valid one). Add ``--no-sign`` to send it as it is.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", help="logical id in template.yaml, e.g. ClerkSubscriptionsFunction")
    parser.add_argument("-e", "--event", type=Path, required=True, help="API Gateway payload 2.0 event (JSON)")
    parser.add_argument("--no-sign", action="store_true", help="do not re-sign the event")
    args = parser.parse_args(argv)
    if args.function not in functions():
        parser.error(f"unknown function {args.function}; known: {', '.join(sorted(functions()))}")
    event = json.loads(args.event.read_text())
    if not args.no_sign and os.environ.get("WEBHOOK_SECRET"):
        from paygate_dev.signing import secret_from_env

        event = resign(event, secret_from_env())
    print(json.dumps(invoke(args.function, event), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
