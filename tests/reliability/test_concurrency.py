"""The same payer's events applied from several threads at once end in the in-order state."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from bench.synthetic import clerk_story
from tests.conftest import converging
from tests.reliability.conftest import Answer, Harness

THREADS = 8


def payer_records(harness: Harness, table: str) -> dict:
    return {
        key: {k: v for k, v in converging(item).items() if k != "provider"}
        for key, item in harness.snapshot(table).items()
        if key[0].startswith(("PAYER#", "HISTORY#"))
    }


def test_one_payers_events_racing_from_many_threads_end_in_the_in_order_state(harness: Harness) -> None:
    story = clerk_story(42, 40, random.Random(5))
    reference = harness.fresh_table()
    assert all(harness.deliver(m).status == 200 for m in story)

    raced = harness.fresh_table()
    deliveries = [m for m in story for _ in range(2)]
    random.Random(6).shuffle(deliveries)
    start = threading.Barrier(THREADS)

    def worker(share: list) -> list[tuple[str, Answer]]:
        start.wait()  # all threads begin together: the same items are written at the same moment
        return [(m.msg_id, harness.deliver(m)) for m in share]

    with ThreadPoolExecutor(THREADS) as pool:
        answers = [a for done in pool.map(worker, [deliveries[i::THREADS] for i in range(THREADS)]) for a in done]

    assert {a.status for _, a in answers} == {200}
    effects: dict[str, int] = {}
    for msg_id, answer in answers:
        effects[msg_id] = effects.get(msg_id, 0) + (answer.body["outcome"] != "duplicate")
    assert effects == {m.msg_id: 1 for m in story}
    assert payer_records(harness, raced) == payer_records(harness, reference)
    assert payer_records(harness, reference)
