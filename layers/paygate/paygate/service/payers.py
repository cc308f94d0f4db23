"""Reads the records of one or two payers (a user and their active organization) in one request.

The authorizer may need the user's and the organization's state at once and answers with at most
one store request per decision (:meth:`StateStore.read_partitions`); results are kept a few seconds
per container, so a burst of requests from one caller reads once.
"""

from __future__ import annotations

from collections.abc import Sequence

from paygate.domain.records import PayerState
from paygate.service.layout import PAYER_PREFIX, payer_pk, payer_state
from paygate.service.ports import StateStore

_MAX_CACHED = 1024


class PayerReader:
    """``read()`` returns each payer's typed state; results are cached per container for ``cache_ms``."""

    def __init__(self, store: StateStore, cache_ms: int = 0) -> None:
        self.store = store
        self.cache_ms = cache_ms
        self._cache: dict[tuple[str, ...], tuple[int, dict[str, PayerState]]] = {}
        #: Store reads made (cache misses), for tests and metrics.
        self.requests = 0

    def read(self, payer_keys: Sequence[str], now_ms: int) -> dict[str, PayerState]:
        """``{payer key: state}`` for every key asked (empty when nothing is stored).

        Raises :class:`~paygate.service.ports.StoreUnavailable` when the store cannot be read.
        """
        keys = tuple(sorted(set(payer_keys)))
        if not keys:
            return {}
        cached = self._cache.get(keys)
        if cached is not None and 0 <= now_ms - cached[0] < self.cache_ms:
            return cached[1]
        self.requests += 1
        partitions = self.store.read_partitions([payer_pk(k) for k in keys])
        result = {pk.removeprefix(PAYER_PREFIX): payer_state(items, now_ms) for pk, items in partitions.items()}
        if self.cache_ms > 0:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[keys] = (now_ms, result)
        return result
