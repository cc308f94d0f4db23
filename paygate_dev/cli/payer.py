"""``paygate payer show``: why does this payer have (or lack) this plan?"""

from __future__ import annotations

import argparse
from typing import Any

from paygate.clock import now_ms
from paygate.service.inspection import PayerInspection, PayerReport, view_json, why
from paygate.service.ports import Item
from paygate_dev.cli.common import NOT_FOUND, OK, USAGE, Failure, Target, ordered, print_json, short, table, when

#: Fields every record carries, shown in their own columns rather than among the record's facts.
_BOOKKEEPING = ("pk", "sk", "kind", "record_id", "payer", "version", "event_id", "provider")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    payer = subparsers.add_parser("payer", help="what is stored for a payer, and what it grants now")
    actions = payer.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        parents=[common],
        help="records, plans and features now with each access window and why, credits, events",
    )
    show.add_argument("payer", help="user_…, org_…, cus_… (a Dodo customer: shown as the payer it is linked to)")
    show.add_argument(
        "--history", type=int, default=20, metavar="N", help="show the newest N history records (default 20; 0: none)"
    )
    show.set_defaults(run=show_payer)


def show_payer(args: argparse.Namespace, target: Target) -> int:
    inspection = PayerInspection(target.store, target.catalog, target.policy, target.families)
    try:
        report = inspection.report(args.payer, now_ms(), history_limit=None if args.json else args.history)
    except ValueError as exc:
        raise Failure(USAGE, str(exc)) from None
    if args.json:
        print_json(report_json(report))
    else:
        print_report(report, target)
    return OK if report.found else NOT_FOUND


def report_json(report: PayerReport) -> dict[str, Any]:
    held = report.entitlements
    return {
        "payer": report.payer.key,
        "asked": report.asked,
        "via": report.via.key if report.via else None,
        "as_of": report.as_of,
        "plans": sorted(held.plans),
        "features": sorted(held.features),
        "subscriptions": [view_json(v) for v in held.subscriptions],
        "credits": [c.to_json() for c in held.credits],
        "records": [ordered(i) for i in report.records],
        "history": [ordered(i) for i in report.history],
        "customers": {cid: [ordered(i) for i in items] for cid, items in report.customers.items()},
        "events": [{**_event_summary(e.item), "version": e.version} for e in report.events],
    }


def _event_summary(item: Item) -> dict[str, Any]:
    return {k: item.get(k) for k in ("event_id", "family", "event_type", "outcome", "received_at", "payer", "error")}


def print_report(report: PayerReport, target: Target) -> None:
    held = report.entitlements
    via = f" (linked from {report.via.key})" if report.via else ""
    print(f"payer {report.payer.key}{via} in {target.name}, as of {when(report.as_of)}")
    if not report.found:
        print("  nothing is stored for this payer")
        return
    print(f"  plans now:    {', '.join(sorted(held.plans)) or '-'}")
    print(f"  features now: {', '.join(sorted(held.features)) or '-'}")

    print("\nsubscriptions:")
    if held.subscriptions:
        rows = [
            [
                v.plan,
                v.provider,
                v.item_id,
                v.status,
                "yes" if v.active else "no",
                when(v.access_until) if v.access_until is not None else ("open" if v.active else "-"),
                why(v),
            ]
            for v in held.subscriptions
        ]
        print(table(["PLAN", "PROVIDER", "ITEM", "STATUS", "ACCESS", "UNTIL", "WHY"], rows))
    else:
        print("  none")

    if held.credits:
        print("\ncredits:")
        rows = [[c.credit_entitlement_id, c.name, c.balance, "yes" if c.low_balance else ""] for c in held.credits]
        print(table(["ENTITLEMENT", "NAME", "BALANCE", "LOW"], rows))

    for title, items in (
        (f"records (PAYER#{report.payer.key}):", report.records),
        (f"history (HISTORY#{report.payer.key}, newest {len(report.history)}):", report.history),
        *((f"kept under customer {cid}:", items) for cid, items in report.customers.items()),
    ):
        if not items:
            continue
        print(f"\n{title}")
        print(table(["SK", "CHANGED AT", "EVENT", "FACTS"], [_record_row(i) for i in items]))

    print("\nevents:")
    if report.events:
        rows = [
            [
                when(e.item.get("received_at")),
                e.item.get("event_id"),
                e.item.get("event_type"),
                e.item.get("outcome"),
                _changed_at(e.version),
            ]
            for e in report.events
        ]
        print(table(["RECEIVED", "EVENT ID", "TYPE", "OUTCOME", "VERSION (CHANGED AT)"], rows))
    else:
        print("  none")


def _record_row(item: Item) -> list[Any]:
    facts = {k: v for k, v in item.items() if k not in _BOOKKEEPING and v not in (None, "", [], {})}
    shown = " ".join(f"{k}={short(v, 20)}" for k, v in facts.items())
    return [item.get("sk"), _changed_at(item.get("version")), item.get("event_id"), short(shown, 64)]


def _changed_at(version: Any) -> str:
    """A version key starts with the provider's change time (see ``domain.state.version_key``)."""
    if not isinstance(version, str) or not version[:15].isdigit():
        return "-"
    return when(int(version[:15]))
