"""What every subcommand shares: where the store is (the local server or a stack), output, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paygate.domain.access import DAY_MS, AccessPolicy
from paygate.domain.catalog import Catalog, CatalogError
from paygate.infra.catalog_file import DEFAULT_PATH, load_catalog
from paygate.infra.dynamodb_store import DynamoStateStore, client_config
from paygate.providers.base import WebhookFamily
from paygate.providers.families import FAMILIES
from paygate.service.ports import ScanningStore, StoreUnavailable
from paygate_dev.local_env import LOCAL_AWS, load_state

OK = 0
FAILED = 1
USAGE = 2
NOT_FOUND = 3
UNAVAILABLE = 4
STILL_QUARANTINED = 5

EXIT_CODES_HELP = """exit codes:
  0  done
  1  an unexpected failure (a bug: the traceback is printed)
  2  the command line is wrong
  3  not found: no such event, or nothing stored for the payer
  4  the target cannot be reached: no local server running, no such stack, no credentials, store errors
  5  replay: some events are still quarantined (or could not be replayed)"""


class Failure(Exception):
    """Ends the command with a message on stderr and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Target:
    """Where the commands read and write: a store, and the catalog and settings its functions run with."""

    name: str
    store: ScanningStore
    catalog: Catalog
    policy: AccessPolicy
    retention_days: int
    families: dict[str, WebhookFamily]


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("target (default: the running `make run`, found through .local/)")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack: its Outputs say where the table is")
    where.add_argument("--region", metavar="R", help="the stack's region (default: your AWS configuration's)")
    where.add_argument(
        "--catalog",
        type=Path,
        metavar="FILE",
        help=f"the catalog the functions run with (default: PAYGATE_CONFIG, else {DEFAULT_PATH.name} in the layer)",
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    return common


def run(args: argparse.Namespace) -> int:
    command: Callable[[argparse.Namespace, Target], int] = args.run
    try:
        return command(args, resolve_target(args))
    except Failure as failure:
        print(f"paygate: {failure}", file=sys.stderr)
        return failure.code
    except StoreUnavailable as exc:
        print(f"paygate: the store cannot be read: {exc}", file=sys.stderr)
        return UNAVAILABLE


# -- the target ---------------------------------------------------------------------------------


def resolve_target(args: argparse.Namespace) -> Target:
    catalog = _catalog(args.catalog)
    if args.stack:
        return stack_target(args.stack, args.region, catalog)
    if args.region:
        raise Failure(USAGE, "--region goes with --stack")
    return local_target(catalog)


def _catalog(path: Path | None) -> Catalog:
    path = path or Path(os.environ.get("PAYGATE_CONFIG") or DEFAULT_PATH)
    try:
        return load_catalog(path.resolve())
    except CatalogError as exc:
        raise Failure(USAGE, str(exc)) from None


def local_target(catalog: Catalog) -> Target:
    """The store of the running local server, as it recorded it in ``.local/server.json``."""
    state = load_state()
    try:
        server = json.loads(state.server_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise Failure(
            UNAVAILABLE,
            f"no local server is running (no {state.server_file}): start it with `make run`, "
            "or pass --stack NAME for a deployed one",
        ) from None
    if "dynamodb" not in server:
        raise Failure(UNAVAILABLE, f"{state.server_file} is from an older `make run`: restart it")
    # DynamoDB Local takes any credentials; these dummies make sure nothing reaches a real account.
    os.environ.update(LOCAL_AWS)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server["dynamodb"]
    return Target(
        name=f"local server {server['url']} (table {server['table']})",
        store=DynamoStateStore(server["table"]),
        catalog=catalog,
        policy=AccessPolicy(grace_period_ms=int(server.get("grace_period_days", 7)) * DAY_MS),
        retention_days=int(server.get("event_retention_days", 90)),
        families=dict(FAMILIES),
    )


def stack_target(stack: str, region: str | None, catalog: Catalog) -> Target:
    """A deployed stack: the table from its ``TableName`` output, settings from its parameters."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        session = boto3.session.Session(region_name=region)
        cloudformation = session.client("cloudformation")
        (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except NoRegionError:
        raise Failure(USAGE, "no AWS region: pass --region or set AWS_REGION") from None
    except NoCredentialsError:
        raise Failure(UNAVAILABLE, "no AWS credentials (set AWS_PROFILE, or run `aws configure`)") from None
    except ClientError as exc:
        raise Failure(UNAVAILABLE, f"stack {stack}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise Failure(UNAVAILABLE, f"stack {stack}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs") or []}
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in found.get("Parameters") or []}
    table = outputs.get("TableName")
    if not table:
        raise Failure(UNAVAILABLE, f"stack {stack} has no TableName output: is it a paygate stack?")
    return Target(
        name=f"stack {stack} ({session.region_name}, table {table})",
        store=DynamoStateStore(table, client=session.client("dynamodb", config=client_config())),
        catalog=catalog,
        policy=AccessPolicy(grace_period_ms=_int(parameters.get("GracePeriodDays"), 7) * DAY_MS),
        retention_days=_int(parameters.get("EventRetentionDays"), 90),
        families=dict(FAMILIES),
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


# -- input --------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}


def parse_since(value: str, now_ms: int) -> int:
    """``30m``, ``2h``, ``7d`` (ago), an ISO date or time (UTC unless it says), or epoch milliseconds."""
    relative = _RELATIVE.match(value)
    if relative:
        return now_ms - int(relative.group(1)) * _UNITS_MS[relative.group(2)]
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: write 30m, 2h, 7d, an ISO time such as 2025-06-01T12:00Z, or epoch ms"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


# -- output -------------------------------------------------------------------------------------


def when(ms: Any) -> str:
    """Epoch milliseconds as a UTC time; anything else as it is."""
    if isinstance(ms, int) and not isinstance(ms, bool):
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return "-" if ms is None else str(ms)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[str(h) for h in headers], *[["-" if c is None or c == "" else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(indent + line for line in lines)


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def ordered(item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item with its attributes in a stable order (a store hands them back in any): keys first."""
    return {k: item[k] for k in sorted(item, key=lambda k: (k not in ("pk", "sk"), k))}


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
