"""``paygate replay``: re-run stored events through the current code, after a fix.

The raw body of each event (verified when it was received) goes through the family's current mappers
and the one apply loop under its own event id: an applied event is a duplicate and changes nothing, a
quarantined one is processed afresh. ``--dry-run`` prints the difference it would make, writing nothing.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from paygate.clock import now_ms
from paygate.domain.state import Outcome
from paygate.service.inbox import Inbox
from paygate.service.replay import Change, ReplayResult, ReplayService, UnknownFamily
from paygate_dev.cli.common import (
    NOT_FOUND,
    OK,
    STILL_QUARANTINED,
    USAGE,
    Failure,
    Target,
    parse_since,
    print_json,
    short,
)
from paygate_dev.cli.events import find_event


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    replay = subparsers.add_parser(
        "replay",
        parents=[common],
        help="re-run stored events through the current code (exactly once still holds)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="events to replay")
    replay.add_argument("--outcome", choices=[Outcome.QUARANTINED.value], help="replay every event with this outcome")
    replay.add_argument("--family", help="only this family (e.g. clerk.subscriptions)")
    replay.add_argument("--since", metavar="T", help="with --outcome: received since 30m, 2h, 7d, an ISO time")
    replay.add_argument("--dry-run", action="store_true", help="print the state diff it would make; write nothing")
    replay.set_defaults(run=replay_events)


def replay_events(args: argparse.Namespace, target: Target) -> int:
    now = now_ms()
    if bool(args.event_ids) == bool(args.outcome):
        raise Failure(USAGE, "name events to replay, or pass --outcome quarantined (not both)")
    if args.since and not args.outcome:
        raise Failure(USAGE, "--since goes with --outcome")
    if args.family and args.family not in target.families:
        raise Failure(USAGE, f"unknown family {args.family}; known: {', '.join(target.families)}")
    if args.outcome:
        try:
            since = parse_since(args.since, now) if args.since else None
        except argparse.ArgumentTypeError as exc:
            raise Failure(USAGE, f"--since: {exc}") from None
        stored = Inbox(target.store, target.families).list(
            outcomes=[args.outcome],
            families=[args.family] if args.family else [],
            since_ms=since,
            now_ms=now,
            with_body=True,
        )
    else:
        stored = []
        for event_id in args.event_ids:
            try:
                stored.append(find_event(target, event_id, args.family))
            except Failure as failure:
                if failure.code != NOT_FOUND or args.json:
                    raise
                raise Failure(NOT_FOUND, f"{failure} (nothing was replayed)") from None

    service = ReplayService(target.store, target.catalog, target.families, target.retention_days)
    results: list[ReplayResult] = []
    failures: list[dict[str, str]] = []
    for item in stored:
        try:
            results.append(service.replay(item, dry_run=args.dry_run))
        except UnknownFamily as exc:
            failures.append({"event_id": item["event_id"], "family": item["family"], "error": str(exc)})

    still = [r for r in results if r.outcome is Outcome.QUARANTINED]
    if args.json:
        print_json({"dry_run": args.dry_run, "results": [r.to_json() for r in results], "failures": failures})
    else:
        print_results(results, failures, args.dry_run, target.name)
    return STILL_QUARANTINED if still or failures else OK


def print_results(results: list[ReplayResult], failures: list[dict[str, str]], dry_run: bool, where: str) -> None:
    mode = "dry run, nothing written" if dry_run else "written"
    print(f"replaying {len(results) + len(failures)} event(s) in {where} ({mode})")
    for result in results:
        outcome = result.outcome.value if result.outcome else f"HTTP {result.status}"
        print(f"\n{result.event_id}  {result.family}  {result.event_type or '-'}: {result.previous} -> {outcome}")
        if result.error:
            print(f"  error: {result.error}")
        for change in result.changes:
            print(_change_lines(change))
        if not result.changes:
            print("  no change")
    for failure in failures:
        print(f"\n{failure['event_id']}  {failure['family']}: not replayed: {failure['error']}")
    counts = Counter(r.outcome.value if r.outcome else "failed" for r in results)
    counts.update({"not replayed": len(failures)} if failures else {})
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    print(f"\n{summary or 'nothing to replay'}" + (" (dry run)" if dry_run and results else ""))


def _change_lines(change: Change) -> str:
    mark = "+" if change.before is None else "-" if change.after is None else "~"
    lines = [f"  {mark} {change.key.pk}  {change.key.sk}"]
    for name, (before, after) in change.fields.items():
        if change.before is None:
            lines.append(f"      {name}: {_value(after)}")
        else:
            lines.append(f"      {name}: {_value(before)} -> {_value(after)}")
    return "\n".join(lines)


def _value(value: Any) -> str:
    return short(json.dumps(value, default=str), 70)
