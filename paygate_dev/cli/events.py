"""``paygate events list`` and ``paygate events show``: the inbox, every verified delivery kept."""

from __future__ import annotations

import argparse
import json
from typing import Any

from paygate.clock import now_ms
from paygate.domain.state import Outcome, RecordKind
from paygate.service.inbox import Inbox
from paygate.service.layout import partition_of
from paygate.service.ports import Item, Key
from paygate_dev.cli.common import (
    NOT_FOUND,
    OK,
    USAGE,
    Failure,
    Target,
    ordered,
    parse_since,
    print_json,
    short,
    table,
    when,
)

OUTCOMES = [o.value for o in Outcome if o is not Outcome.DUPLICATE]  # a duplicate is never stored


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    events = subparsers.add_parser("events", help="list and show stored webhook events")
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="the stored events, oldest first")
    listing.add_argument("--outcome", action="append", choices=OUTCOMES, default=[], help="repeatable")
    listing.add_argument("--family", action="append", default=[], help="e.g. clerk.subscriptions; repeatable")
    listing.add_argument("--since", metavar="T", help="received since: 30m, 2h, 7d, an ISO time, or epoch ms")
    listing.add_argument("--payer", action="append", default=[], help="a payer key such as user:user_123")
    listing.set_defaults(run=list_events)

    show = actions.add_parser("show", parents=[common], help="one event: raw body, outcome, error, records written")
    show.add_argument("event_id")
    show.add_argument("--family", help="when the same id reached several families")
    show.set_defaults(run=show_event)


def list_events(args: argparse.Namespace, target: Target) -> int:
    now = now_ms()
    unknown = [f for f in args.family if f not in target.families]
    if unknown:
        raise Failure(USAGE, f"unknown family {', '.join(unknown)}; known: {', '.join(target.families)}")
    try:
        since = parse_since(args.since, now) if args.since else None
    except argparse.ArgumentTypeError as exc:
        raise Failure(USAGE, f"--since: {exc}") from None
    inbox = Inbox(target.store, target.families)
    found = inbox.list(outcomes=args.outcome, families=args.family, since_ms=since, payers=args.payer, now_ms=now)
    if args.json:
        print_json([ordered(i) for i in found])
        return OK
    print(f"{len(found)} event(s) in {target.name}")
    if found:
        rows = [
            [
                when(i.get("received_at")),
                i.get("event_id"),
                i.get("family"),
                i.get("event_type"),
                i.get("outcome"),
                i.get("payer"),
                short(i.get("error") or "", 50),
            ]
            for i in found
        ]
        print(table(["RECEIVED", "EVENT ID", "FAMILY", "TYPE", "OUTCOME", "PAYER", "ERROR"], rows))
    return OK


def written_records(target: Target, item: Item) -> list[dict[str, Any]]:
    """The records the event wrote, and whether each still holds what it wrote."""
    payer = item.get("payer")
    records = []
    for sk in item.get("applied") or []:
        kind = sk.split("#", 1)[0]
        if not payer or kind not in {k.value for k in RecordKind}:
            records.append({"pk": None, "sk": sk, "now_written_by": None})
            continue
        key = Key(partition_of(payer, RecordKind(kind)), sk)
        stored = target.store.get(key)
        records.append({"pk": key.pk, "sk": sk, "now_written_by": stored.get("event_id") if stored else None})
    return records


def find_event(target: Target, event_id: str, family: str | None) -> Item:
    if family and family not in target.families:
        raise Failure(USAGE, f"unknown family {family}; known: {', '.join(target.families)}")
    found = Inbox(target.store, target.families).find(event_id, family)
    if not found:
        raise Failure(NOT_FOUND, f"no stored event {event_id} in {target.name}")
    if len(found) > 1:
        names = ", ".join(i["family"] for i in found)
        raise Failure(USAGE, f"event {event_id} reached several families ({names}): add --family")
    return found[0]


def show_event(args: argparse.Namespace, target: Target) -> int:
    item = find_event(target, args.event_id, args.family)
    records = written_records(target, item)
    if args.json:
        print_json({**ordered(item), "records": records})
        return OK
    print(f"event {item['event_id']} ({item['family']}) in {target.name}")
    rows = [
        ("type", item.get("event_type")),
        ("outcome", item.get("outcome")),
        ("received", when(item.get("received_at"))),
        *([("replayed", when(item["replayed_at"]))] if item.get("replayed_at") else []),
        ("payer", item.get("payer")),
        ("error", item.get("error")),
        ("expires", when(item["expires_at"] * 1000) if isinstance(item.get("expires_at"), int) else "never"),
    ]
    print("\n".join(f"  {name:<9} {value or '-'}" for name, value in rows))
    if records:
        print("\nrecords written:")
        print(
            table(
                ["PK", "SK", "NOW"],
                [
                    [
                        r["pk"],
                        r["sk"],
                        "as written"
                        if r["now_written_by"] == item["event_id"]
                        else f"since written by {r['now_written_by']}"
                        if r["now_written_by"]
                        else "gone",
                    ]
                    for r in records
                ],
            )
        )
    print("\nbody:")
    try:
        print(json.dumps(json.loads(item.get("body") or ""), indent=2))
    except ValueError:
        print(item.get("body"))
    return OK
