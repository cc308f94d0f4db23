"""``paygate reconcile``: read the providers' current state and repair what webhooks missed.

The providers are read with their own SDKs, at the addresses and with the keys of ``CLERK_API_URL`` /
``CLERK_SECRET_KEY`` and ``DODO_PAYMENTS_BASE_URL`` / ``DODO_PAYMENTS_API_KEY`` (a provider without a key
is not read). Against the local server, the provider APIs it serves (``make run ARGS=--fake-providers``)
fill in what the environment does not set. What differs is applied through the same versioned path as
webhooks: a snapshot never overrides a newer webhook; records a provider no longer has are reported,
not deleted. See docs/reconcile.md.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from paygate import settings
from paygate.domain.state import Payer, PayerKind
from paygate.service.apply import ApplyService
from paygate.service.reconcile import ReconcileService, RunReport, Scope
from paygate.service.reconcile_entry import build_fetchers
from paygate.settings import SettingsError
from paygate_dev.cli.common import OK, UNAVAILABLE, USAGE, Failure, Target, print_json, table
from paygate_dev.local_env import PROVIDER_SETTINGS, load_state

#: A provider could not be read (the run is recorded as failed; what was read is applied).
PROVIDER_FAILED = UNAVAILABLE


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    reconcile = subparsers.add_parser(
        "reconcile",
        parents=[common],
        help="read the providers' current state and repair what webhooks missed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    who = reconcile.add_mutually_exclusive_group()
    who.add_argument("--user", metavar="USER_ID", help="only this user (a Clerk user id)")
    who.add_argument("--org", metavar="ORG_ID", help="only this organization (a Clerk organization id)")
    reconcile.set_defaults(run=reconcile_providers)


def reconcile_providers(args: argparse.Namespace, target: Target) -> int:
    env = {**_local_provider_settings(args), **{k: os.environ[k] for k in PROVIDER_SETTINGS if os.environ.get(k)}}
    try:
        config = settings.reconcile_settings(env)
    except SettingsError as exc:
        raise Failure(USAGE, str(exc)) from None
    fetchers = build_fetchers(config, target.catalog)
    if not fetchers:
        raise Failure(
            USAGE,
            "no provider to read: set CLERK_SECRET_KEY and/or DODO_PAYMENTS_API_KEY (with CLERK_API_URL / "
            "DODO_PAYMENTS_BASE_URL), or start the local server with `make run ARGS=--fake-providers`",
        )
    payer = _payer(args)
    applier = ApplyService(target.store, target.retention_days, catalog=target.catalog, policy=target.policy)
    service = ReconcileService(applier)
    scope = Scope(payer, service.linked_customers(payer)) if payer else Scope()
    report = service.run(fetchers, scope, trigger="cli")
    if args.json:
        print_json(report.to_json())
    else:
        print(describe(report, target))
    return OK if report.ok else PROVIDER_FAILED


def describe(report: RunReport, target: Target) -> str:
    names = ("read", "unchanged", "created", "repaired", "missing", "unreadable", "conflicts")
    rows = [[p, *(getattr(c, n) for n in names), c.error or ""] for p, c in sorted(report.providers.items())]
    lines = [
        f"reconcile {report.scope} on {target.name}: {'finished' if report.ok else 'FAILED'} (run {report.run_id})",
        table(["provider", *names, "error"], rows),
    ]
    if report.findings:
        lines.append("findings:")
        lines += [f"  {json.dumps(f, sort_keys=True)}" for f in report.findings]
    return "\n".join(lines)


def _payer(args: argparse.Namespace) -> Payer | None:
    if args.user:
        return Payer(PayerKind.USER, args.user)
    if args.org:
        return Payer(PayerKind.ORGANIZATION, args.org)
    return None


def _local_provider_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The provider APIs the running local server serves (``--fake-providers``), if any."""
    if args.stack:
        return {}
    try:
        return json.loads(load_state().server_file.read_text()).get("providers", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
