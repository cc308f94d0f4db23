"""The state store on DynamoDB: the :class:`~paygate.service.ports.StateStore` port, and nothing more.

One table, keyed ``pk`` / ``sk``. Conditions become condition expressions through one builder; a
cancelled transaction becomes a typed :class:`WriteRejected` that names the writes whose conditions
failed. No business rule lives here (see :mod:`paygate.service.apply`).

botocore is imported when the first request is made, not with this module: an authorizer decision
that the token's claims already allow never pays for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from paygate.service.ports import (
    AllOf,
    AnyOf,
    AtVersion,
    Condition,
    Delete,
    ExpiredBefore,
    FieldEquals,
    Index,
    IsAbsent,
    Item,
    Key,
    OlderThan,
    Put,
    Require,
    StoreUnavailable,
    Update,
    Write,
    WriteRejected,
)

#: Timeouts and attempts for every paygate client: a webhook or a waiting caller is answered
#: (5xx / deny) inside the 10 s Lambda timeout rather than held on a sick store. Two attempts in
#: all, each at most 1 s to connect and 2 s to read, with standard mode's wait of up to 1 s between
#: them: 7 s at the very worst. (A cold webhook whose Secrets Manager read takes that long and whose
#: store is slow as well can still time out: nothing is half-written, and the provider retries.)
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 2
TOTAL_ATTEMPTS = 2


def client_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS},
    )


def load_client_library() -> None:
    """Import botocore now: for a function that writes on every request (a webhook), during init
    rather than on the first request."""
    import botocore.client  # noqa: F401


_containers: dict[str, DynamoStateStore] = {}


def container_store(table_name: str) -> DynamoStateStore:
    """The container's store of ``table_name``: one client, made on first use, shared by every
    handler of the process (botocore clients are thread-safe)."""
    store = _containers.get(table_name)
    if store is None:
        store = _containers.setdefault(table_name, DynamoStateStore(table_name))
    return store


class DynamoStateStore:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from paygate.infra import dynamodb  # the module's name is looked up now (tests instrument it)

            # AWS_ENDPOINT_URL_DYNAMODB (the AWS SDK's own setting) points this at DynamoDB Local.
            self._client = dynamodb.new_client("dynamodb", client_config())
        return self._client

    # -- writes --------------------------------------------------------------------------------

    def write(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        requests = [_request(self.table_name, w) for w in writes]
        try:
            if len(writes) == 1 and not isinstance(writes[0], Require):
                # A lone write costs half a transaction's write units.
                operation, params = requests[0]
                getattr(self.client, _SINGLE[operation])(**params)
            else:
                self.client.transact_write_items(TransactItems=[{op: params} for op, params in requests])
        except Exception as exc:
            code = _client_error_code(exc)
            if code == "ConditionalCheckFailedException":
                item = exc.response.get("Item")  # type: ignore[attr-defined]
                raise WriteRejected(writes, [0], existing={0: _decoded(item)} if item else None) from None
            if code == "TransactionConflictException":
                raise WriteRejected(writes, [], contended=True) from None
            if code == "TransactionCanceledException":
                cancelled = exc.response.get("CancellationReasons") or []  # type: ignore[attr-defined]
                reasons = [r.get("Code") or "None" for r in cancelled]
                failed = [i for i, c in enumerate(reasons) if c == "ConditionalCheckFailed"]
                contended = "TransactionConflict" in reasons
                existing = {i: _decoded(r["Item"]) for i, r in enumerate(cancelled) if r.get("Item")}
                if failed or contended:
                    raise WriteRejected(writes, failed, contended, existing) from None
                raise StoreUnavailable(f"transaction cancelled: {reasons}") from None
            raise _unavailable(exc) from exc

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: Key) -> Item | None:
        from paygate.infra.dynamodb import from_item

        try:
            got = self.client.get_item(TableName=self.table_name, Key=_key(key), ConsistentRead=True)
        except Exception as exc:
            raise _unavailable(exc) from exc
        return from_item(got["Item"]) if "Item" in got else None

    def query(self, pk: str, sk_prefix: str = "", *, consistent: bool = False) -> list[Item]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        if sk_prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :sk)"
            kwargs["ExpressionAttributeValues"][":sk"] = {"S": sk_prefix}
        if consistent:
            kwargs["ConsistentRead"] = True
        return list(self._pages(self.client.query, kwargs))

    def _pages(self, operation: Any, request: dict[str, Any]) -> Iterator[Item]:
        """Every item of a paged Query or Scan, page by page; a failure is the store's unavailability."""
        from paygate.infra.dynamodb import from_item

        while True:
            try:
                page = operation(**request)
            except Exception as exc:
                raise _unavailable(exc) from exc
            yield from (from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_partitions(
        self, pks: Sequence[str], sk_prefix: str = "", *, consistent: bool = False
    ) -> dict[str, list[Item]]:
        """One PartiQL ``SELECT ... WHERE pk IN [...]``: a single ``ExecuteStatement`` that DynamoDB serves
        as key lookups on each partition (never a scan: the partition key is fixed by ``IN``)."""
        from paygate.infra.dynamodb import from_item

        wanted = sorted(set(pks))
        result: dict[str, list[Item]] = {pk: [] for pk in wanted}
        if not wanted:
            return result
        placeholders = ", ".join("?" for _ in wanted)
        # The table name comes from the deployment (TABLE_NAME), never from a request.
        statement = f'SELECT * FROM "{self.table_name}" WHERE pk IN [{placeholders}]'  # noqa: S608
        parameters: list[dict[str, Any]] = [{"S": pk} for pk in wanted]
        if sk_prefix:
            statement += " AND begins_with(sk, ?)"
            parameters.append({"S": sk_prefix})
        request: dict[str, Any] = {"Statement": statement, "Parameters": parameters}
        if consistent:
            request["ConsistentRead"] = True
        try:
            while True:
                page = self.client.execute_statement(**request)
                for raw in page.get("Items", []):
                    item = from_item(raw)
                    result.setdefault(item["pk"], []).append(item)
                if not page.get("NextToken"):
                    return result
                request["NextToken"] = page["NextToken"]
        except Exception as exc:
            raise _unavailable(exc) from exc

    def scan(self, pk_prefix: str = "", sk_prefix: str = "", attributes: Sequence[str] = ()) -> Iterator[Item]:
        """A paged, strongly consistent Scan filtered on both key prefixes (maintenance and operator tools
        only: it reads the whole table)."""
        expression = _Expression()
        request: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        filters = [
            f"begins_with({key}, {expression.value({'S': prefix})})"
            for key, prefix in (("pk", pk_prefix), ("sk", sk_prefix))
            if prefix
        ]
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if attributes:
            wanted = dict.fromkeys(["pk", "sk", *attributes])
            request["ProjectionExpression"] = ", ".join(expression.name(a) for a in wanted)
        request.update(expression.parameters())
        yield from self._pages(self.client.scan, request)

    def query_index(self, index: Index, pk: str, up_to: int) -> list[Item]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p AND #s <= :s",
            "ExpressionAttributeNames": {"#p": index.pk, "#s": index.sk},
            "ExpressionAttributeValues": {":p": {"S": pk}, ":s": {"N": str(up_to)}},
        }
        return list(self._pages(self.client.query, kwargs))


# -- requests -------------------------------------------------------------------------------------

_SINGLE = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}


def _key(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key.pk}, "sk": {"S": key.sk}}


def _request(table: str, write: Write) -> tuple[str, dict[str, Any]]:
    from paygate.infra.dynamodb import to_attribute, to_item

    expression = _Expression()
    params: dict[str, Any] = {"TableName": table}
    match write:
        case Put(item=item, return_existing=return_existing):
            operation = "Put"
            params["Item"] = to_item(item)
            if return_existing:
                params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        case Update(key=key, fields=fields):
            operation = "Update"
            params["Key"] = _key(key)
            assignments = [
                f"{expression.name(name)} = {expression.value(to_attribute(value))}"
                for name, value in fields.items()
                if name not in ("pk", "sk")
            ]
            params["UpdateExpression"] = "SET " + ", ".join(assignments)
        case Delete(key=key):
            operation = "Delete"
            params["Key"] = _key(key)
        case Require(key=key):
            operation = "ConditionCheck"
            params["Key"] = _key(key)
    if write.condition is not None:
        params["ConditionExpression"] = expression.condition(write.condition)
    params.update(expression.parameters())
    return operation, params


class _Expression:
    """Builds one request's condition and update expressions with numbered placeholders."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._counter = itertools.count()

    def name(self, attribute: str) -> str:
        for placeholder, known in self._names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self._names)}"
        self._names[placeholder] = attribute
        return placeholder

    def value(self, attribute_value: Mapping[str, Any]) -> str:
        placeholder = f":v{next(self._counter)}"
        self._values[placeholder] = attribute_value
        return placeholder

    def condition(self, condition: Condition) -> str:
        match condition:
            case IsAbsent():
                return "attribute_not_exists(pk)"
            case OlderThan(version=version):
                name = self.name("version")
                return f"(attribute_not_exists({name}) OR {name} < {self.value({'S': version})})"
            case AtVersion(version=version):
                return f"{self.name('version')} = {self.value({'S': version})}"
            case FieldEquals(name=field, value=value):
                from paygate.infra.dynamodb import to_attribute

                return f"{self.name(field)} = {self.value(to_attribute(value))}"
            case ExpiredBefore(now_s=now_s):
                return f"{self.name('expires_at')} < {self.value({'N': str(now_s)})}"
            case AnyOf(conditions=conditions):
                return "(" + " OR ".join(self.condition(c) for c in conditions) + ")"
            case AllOf(conditions=conditions):
                return "(" + " AND ".join(self.condition(c) for c in conditions) + ")"
        raise TypeError(f"no DynamoDB form for condition {condition!r}")

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self._names:
            params["ExpressionAttributeNames"] = dict(self._names)
        if self._values:
            params["ExpressionAttributeValues"] = dict(self._values)
        return params


def _decoded(item: Mapping[str, Any]) -> Item:
    from paygate.infra.dynamodb import from_item

    return from_item(item)


def _client_error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return response.get("Error", {}).get("Code")
    return None


def _unavailable(exc: Exception) -> StoreUnavailable:
    """Any client or transport fault: the caller answers 5xx (webhooks) or denies (the authorizer)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        return StoreUnavailable(f"DynamoDB error {_client_error_code(exc)}")
    if isinstance(exc, BotoCoreError):
        return StoreUnavailable(type(exc).__name__)
    raise exc
