"""Reconciles the local paygate (`make run`) with the providers' APIs, as the scheduled function does in AWS.

    .venv/bin/python -m paygate_dev.reconcile                        # every payer the providers have
    .venv/bin/python -m paygate_dev.reconcile --user user_local_maya  # one payer (--org org_... likewise)

The providers are reached with the reconcile settings from the environment (``CLERK_API_URL``,
``CLERK_SECRET_KEY``, ``DODO_PAYMENTS_BASE_URL``, ``DODO_PAYMENTS_API_KEY``), else with the local
provider servers of ``make run ARGS=--fake-providers``. The state written is the running server's
(its DynamoDB Local, recorded in ``.local/server.json``). Prints the run's record as JSON; exits 1 when a
provider could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from paygate_dev import LAYER_DIR

if str(LAYER_DIR) not in sys.path:  # the layer's code, as Lambda puts it on the path
    sys.path.insert(0, str(LAYER_DIR))

from paygate import settings
from paygate.domain.state import Payer, PayerKind
from paygate.infra.catalog_file import load_catalog
from paygate.infra.dynamodb_store import DynamoStateStore
from paygate.service.apply import ApplyService
from paygate.service.reconcile import ReconcileService, RunReport, Scope
from paygate.service.reconcile_entry import build_fetchers, publish_metrics
from paygate_dev.local_env import LOCAL_AWS, PROVIDER_SETTINGS, TABLE_NAME, LocalSetupError, load_state


def run_reconcile(
    payer: Payer | None = None,
    *,
    env: Mapping[str, str] | None = None,
    trigger: str = "cli",
) -> RunReport:
    """One reconcile run against the running local server's store: everything, or ``payer`` only.

    ``env`` (default ``os.environ``) gives the providers' settings; those it lacks come from the local
    provider servers the running server started, if any."""
    server = _running_server()
    source = os.environ if env is None else env
    provider_env = {**server.get("providers", {}), **{k: source[k] for k in PROVIDER_SETTINGS if source.get(k)}}
    # The local store: DynamoDB Local with dummy credentials, never an AWS account.
    os.environ.update(LOCAL_AWS, AWS_ENDPOINT_URL_DYNAMODB=server["dynamodb"])
    config = settings.reconcile_settings({"TABLE_NAME": TABLE_NAME, **provider_env})
    catalog = load_catalog(config.catalog_path)
    fetchers = build_fetchers(config, catalog)
    if not fetchers:
        raise LocalSetupError(
            "no provider is configured: set CLERK_SECRET_KEY and/or DODO_PAYMENTS_API_KEY "
            "(with CLERK_API_URL / DODO_PAYMENTS_BASE_URL), or start `make run ARGS=--fake-providers`"
        )
    applier = ApplyService(DynamoStateStore(TABLE_NAME), config.retention_days, catalog=catalog, policy=config.policy)
    service = ReconcileService(applier)
    scope = Scope(payer, service.linked_customers(payer)) if payer else Scope()
    return service.run(fetchers, scope, trigger=trigger)


def _running_server() -> dict[str, Any]:
    state = load_state()
    try:
        server = json.loads(state.server_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise LocalSetupError("the local server is not running: start it with `make run`") from None
    if "dynamodb" not in server:
        raise LocalSetupError("the running server is older than this command: restart `make run`")
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--user", help="reconcile this user only (a Clerk user id)")
    who.add_argument("--org", help="reconcile this organization only (a Clerk organization id)")
    args = parser.parse_args(argv)
    payer = None
    if args.user:
        payer = Payer(PayerKind.USER, args.user)
    elif args.org:
        payer = Payer(PayerKind.ORGANIZATION, args.org)
    try:
        report = run_reconcile(payer)
    except LocalSetupError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    publish_metrics(report)
    print(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
