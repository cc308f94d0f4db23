"""The sweeper that lets the clock speak: every minute, the payers whose access window ends soon (the
sparse index ``by_due_at``) are re-evaluated at the moment it ends, through
:meth:`ApplyService.reevaluate`: the same outbox, the same exactly-once path as an event.

Apart from :mod:`paygate.service.publisher`, whose function needs none of the apply service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from paygate.clock import Clock, system_clock
from paygate.domain.state import Payer
from paygate.service.apply import ApplyService
from paygate.service.layout import PAYER_PREFIX
from paygate.service.outbox import DUE_INDEX, Cause, due_shards

#: The sweeper also handles what ends within this long, each at its moment (it runs every minute).
LOOKAHEAD_MS = 60_000


class Sweeper:
    def __init__(
        self,
        applier: ApplyService,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
        lookahead_ms: int = LOOKAHEAD_MS,
    ) -> None:
        self.applier = applier
        self._clock = clock
        self._sleep = sleep
        self.lookahead_ms = lookahead_ms

    def sweep(self) -> list[dict[str, Any]]:
        """Re-evaluate every payer whose window ends by now plus the lookahead, each once its moment has
        come; the events written."""
        until = self._clock() + self.lookahead_ms
        due = [item for shard in due_shards() for item in self.applier.store.query_index(DUE_INDEX, shard, until)]
        written: list[dict[str, Any]] = []
        for item in sorted(due, key=lambda i: (i[DUE_INDEX.sk], i["pk"])):
            at = int(item[DUE_INDEX.sk])
            wait_ms = at - self._clock()
            if wait_ms > 0:
                self._sleep(wait_ms / 1000)
            if self._clock() < at:
                continue  # woken early: the next sweep has it
            payer = Payer.from_key(item["pk"].removeprefix(PAYER_PREFIX))
            written.extend(self.applier.reevaluate(payer, Cause("clock", at=at)))
        return written


def sweeper_handler(clock: Clock = system_clock) -> Callable[[dict, Any], dict]:
    """The handler run every minute: announces what the clock changed (windows that ended)."""
    from aws_lambda_powertools import Logger

    from paygate import settings
    from paygate.infra.catalog_file import load_catalog
    from paygate.infra.dynamodb_store import container_store

    logger = Logger(service="paygate", function_family="sweeper")

    def handler(event: dict, context: Any) -> dict:
        config = settings.event_settings()
        applier = ApplyService(
            container_store(config.table_name),
            catalog=load_catalog(config.catalog_path),
            policy=config.policy,
            clock=clock,
        )
        written = Sweeper(applier, clock).sweep()
        for e in written:
            logger.info("window ended", extra={"detail_type": e["detail_type"], "id": e["detail"]["id"]})
        return {"announced": len(written)}

    return handler
