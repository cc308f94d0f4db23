"""paygate: the operator's command - inspect what is stored, replay events after a fix.

    paygate payer show user_123              # records, plans and features now and why, events
    paygate events list --outcome quarantined
    paygate events show msg_2abc
    paygate replay --outcome quarantined --dry-run

By default it works against the running `make run` (found through .local/); --stack NAME works
against a deployed stack instead (AWS credentials as usual). Add --json for scripts.
"""

# Each subcommand group is one module below; COMMANDS lists them, so adding one is adding its name.

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from paygate_dev import LAYER_DIR, ROOT

if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))

#: The subcommand modules; each has ``register(subparsers, common)``.
COMMANDS = (
    "paygate_dev.cli.payer",
    "paygate_dev.cli.events",
    "paygate_dev.cli.replay",
)


def parser() -> argparse.ArgumentParser:
    from paygate_dev.cli.common import EXIT_CODES_HELP, common_options

    top = argparse.ArgumentParser(
        prog="paygate",
        description=__doc__,
        epilog=f"{EXIT_CODES_HELP}\n\nrunning the code in {ROOT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options()
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers, common)
    return top


def main(argv: list[str] | None = None) -> int:
    from paygate_dev.cli.common import run

    args = parser().parse_args(argv)
    try:
        return run(args)
    except BrokenPipeError:
        # The reader went away (`paygate events list | head`): stop quietly, as other commands do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return 128 + signal.SIGPIPE
