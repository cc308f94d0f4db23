"""Reads the records of one or two payers (a user and their active organization) in one request.

A payer's state is one partition (``pk = PAYER#<payer key>``). The authorizer may need the user's
and the organization's at once, and answers with at most one DynamoDB request per decision: a
PartiQL ``SELECT ... WHERE pk IN [?, ?]`` is one ``ExecuteStatement`` call that DynamoDB serves
as key lookups on both partitions (never a scan: the partition key is fixed by ``IN``). It is
paged only past 1 MB, which a payer's items never reach.

botocore is imported on first use, not with this module: a decision the token's claims already
allow never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: Decisions re-read a payer at most this often per container (a few seconds, see docs/gate.md).
DEFAULT_CACHE_MS = 5_000
_MAX_CACHED = 1024
_PAYER_PREFIX = "PAYER#"


class PayerReadError(Exception):
    """The store could not be read; the authorizer denies, the account API answers 503."""


class PayerReader:
    """``read()`` returns each payer's records; results are cached per container for ``cache_ms``."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any] | None = None, cache_ms: int = 0) -> None:
        self.table_name = table_name
        self.cache_ms = cache_ms
        self._client_factory = client_factory
        self._client: Any = None
        self._cache: dict[tuple[tuple[str, ...], str | None], tuple[int, dict[str, list[dict[str, Any]]]]] = {}
        #: DynamoDB requests made, for tests and metrics.
        self.requests = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                from botocore.config import Config

                from paygate.infra.dynamodb import new_client

                # A caller is waiting: fail fast (and deny) rather than hold the request on a sick store.
                config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})
                self._client = new_client(config)
        return self._client

    def read(
        self, payer_keys: Sequence[str], now_ms: int, sk_prefix: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """``{payer key: [records]}`` for every key asked (empty list when nothing is stored).

        ``sk_prefix`` (e.g. ``"item#"``) narrows the read to one record kind. Raises
        :class:`PayerReadError` when DynamoDB cannot be read.
        """
        keys = tuple(sorted(set(payer_keys)))
        if not keys:
            return {}
        cache_key = (keys, sk_prefix)
        cached = self._cache.get(cache_key)
        if cached is not None and 0 <= now_ms - cached[0] < self.cache_ms:
            return cached[1]
        result = self._query(keys, sk_prefix)
        if self.cache_ms > 0:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[cache_key] = (now_ms, result)
        return result

    def _query(self, keys: tuple[str, ...], sk_prefix: str | None) -> dict[str, list[dict[str, Any]]]:
        from botocore.exceptions import BotoCoreError, ClientError

        from paygate.infra.dynamodb import from_item
        from paygate.infra.store import payer_pk

        placeholders = ", ".join("?" for _ in keys)
        # The table name comes from the deployment (TABLE_NAME), never from a request.
        statement = f'SELECT * FROM "{self.table_name}" WHERE pk IN [{placeholders}]'  # noqa: S608
        parameters: list[dict[str, Any]] = [{"S": payer_pk(k)} for k in keys]
        if sk_prefix:
            statement += " AND begins_with(sk, ?)"
            parameters.append({"S": sk_prefix})
        request: dict[str, Any] = {"Statement": statement, "Parameters": parameters}
        result: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        try:
            while True:
                self.requests += 1
                page = self.client.execute_statement(**request)
                for raw in page.get("Items", []):
                    record = from_item(raw)
                    payer = str(record.get("pk", "")).removeprefix(_PAYER_PREFIX)
                    result.setdefault(payer, []).append(record)
                if not page.get("NextToken"):
                    return result
                request["NextToken"] = page["NextToken"]
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            raise PayerReadError(code or type(exc).__name__) from exc
