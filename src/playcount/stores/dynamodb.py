"""The DynamoDB KPI store (SPEC §6): three tables, names with a configurable prefix.

| table        | partition key      | sort key   |
|--------------|--------------------|------------|
| genre_kpis   | `genre` (S)        | `date` (S) |
| top_songs    | `date#genre` (S)   | `rank` (N) |
| top_genres   | `date` (S)         | `rank` (N) |

Dates are ISO strings (`2024-06-25`), numbers `Decimal`. Replacing dates writes the new items
first (a put overwrites an item with the same key) and then deletes the dates' items that are
no longer there (a genre that lost a rank slot), so readers never see a date empty. Batch
writes retry unprocessed items and throttling with exponential backoff and full jitter.
The boto3 client is passed in.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa

from playcount.errors import MissingStoreError, StoreError
from playcount.stores.base import KPI_SCHEMAS, filter_rows

__all__ = ["DynamoDBStore", "TABLE_KEYS", "RETRYABLE_CODES"]

log = logging.getLogger("playcount.stores")

TABLE_KEYS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "genre_kpis": (("genre", "S"), ("date", "S")),
    "top_songs": (("date#genre", "S"), ("rank", "N")),
    "top_genres": (("date", "S"), ("rank", "N")),
}
"""Table -> ((partition key, type), (sort key, type))."""

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
_BATCH = 25  # BatchWriteItem's limit
_IN_LIMIT = 100  # values in one IN (...) condition
_ORDER = {"genre_kpis": ["date", "genre"], "top_songs": ["date", "genre", "rank"], "top_genres": ["date", "rank"]}


def _code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _to_number(value: object, table: str, column: str) -> Decimal:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreError(
                f"`{table}.{column}` = `{value}` cannot be stored in DynamoDB",
                fix="this is a bug in the KPI computation: report it with the run id",
            )
        return Decimal(repr(value))  # the shortest exact round-trip of the float
    return Decimal(int(value))  # type: ignore[call-overload]


class DynamoDBStore:
    """Implements `KpiStore` on DynamoDB.

    `client` is a boto3 DynamoDB client. `sleep` and `rng` are injectable so tests can retry
    without waiting.
    """

    def __init__(
        self,
        client: Any,
        *,
        table_prefix: str = "playcount_",
        max_attempts: int = 10,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.table_prefix = table_prefix
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.retries = 0
        """Batch requests retried (unprocessed items or throttling), for reports and tests."""

    def table_name(self, table: str) -> str:
        return f"{self.table_prefix}{table}"

    # -- conversion -----------------------------------------------------------------------------

    def _items(self, table: str, rows: pa.Table) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeSerializer

        ser = TypeSerializer()
        schema = KPI_SCHEMAS[table]
        rows = rows.select(schema.names).cast(schema)
        items = []
        for row in rows.to_pylist():
            item: dict[str, Any] = {}
            for f in schema:
                value = row[f.name]
                if value is None:
                    continue  # DynamoDB has no typed null worth keeping; absent reads back as null
                if isinstance(value, dt.date):
                    value = value.isoformat()
                elif pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
                    value = _to_number(value, table, f.name)
                item[f.name] = ser.serialize(value)
            items.append(item)
        return items

    def _rows(self, table: str, items: Iterable[dict[str, Any]]) -> pa.Table:
        from boto3.dynamodb.types import TypeDeserializer

        de = TypeDeserializer()
        schema = KPI_SCHEMAS[table]
        columns: dict[str, list[Any]] = {f.name: [] for f in schema}
        for item in items:
            plain = {k: de.deserialize(v) for k, v in item.items()}
            for f in schema:
                value = plain.get(f.name)
                if value is not None:
                    if pa.types.is_date(f.type):
                        value = dt.date.fromisoformat(value)
                    elif pa.types.is_integer(f.type):
                        value = int(value)
                    elif pa.types.is_floating(f.type):
                        value = float(value)
                columns[f.name].append(value)
        rows = pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)
        return rows.sort_by([(k, "ascending") for k in _ORDER[table]])

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        (pk, _), (sk, _) = TABLE_KEYS[table]
        return {pk: item[pk], sk: item[sk]}

    # -- calls ----------------------------------------------------------------------------------

    def _call(self, what: str, table: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """`fn(**kwargs)`, retrying throttling with backoff; a missing table names the fix.

        Each attempt gets its own copy of the arguments (hooks and retries may alter a request).
        """
        for attempt in range(self.max_attempts):
            try:
                return fn(**copy.deepcopy(kwargs))
            except Exception as e:
                code = _code(e)
                if code == "ResourceNotFoundException":
                    raise MissingStoreError(
                        f"DynamoDB table `{self.table_name(table)}` does not exist ({what})",
                        fix="create it with `playcount aws bootstrap` or infra/cloudformation.yaml, "
                        "or correct store.table_prefix",
                        table=self.table_name(table),
                    ) from e
                if code not in RETRYABLE_CODES or attempt == self.max_attempts - 1:
                    raise StoreError(
                        f"DynamoDB {what} on `{self.table_name(table)}` failed: {e}",
                        fix="check the table and the credentials' permissions, then run again",
                        # throttling that outlasted the retries may pass later; AccessDenied and the like need a fix
                        transient=code in RETRYABLE_CODES,
                        table=self.table_name(table),
                    ) from e
                self._backoff(attempt)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        self.retries += 1
        # full jitter: uniform in [0, min(cap, base * 2^attempt)]
        self.sleep(self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt)))

    def _batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        """`BatchWriteItem` in chunks of 25, until every request is processed."""
        name = self.table_name(table)
        for i in range(0, len(requests), _BATCH):
            pending = requests[i : i + _BATCH]
            for attempt in range(self.max_attempts):
                response = self._call("batch write", table, self.client.batch_write_item, RequestItems={name: pending})
                pending = response.get("UnprocessedItems", {}).get(name, [])
                if not pending:
                    break
                if attempt == self.max_attempts - 1:
                    raise StoreError(
                        f"DynamoDB kept {len(pending)} item(s) of `{name}` unprocessed after "
                        f"{self.max_attempts} attempts",
                        fix="the table is throttled: run again later (the load is idempotent)",
                        table=name,
                    )
                log.info("%d unprocessed item(s) on %s, retrying", len(pending), name)
                self._backoff(attempt)

    def _pages(self, table: str, what: str, fn: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs = {"TableName": self.table_name(table), **kwargs}
        while True:
            page = self._call(what, table, fn, **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _date_items(self, table: str, dates: list[dt.date], keys_only: bool) -> list[dict[str, Any]]:
        """Every item of `table` on `dates` (a query per date where the date is the partition)."""
        (pk, _), (sk, _) = TABLE_KEYS[table]
        days = [d.isoformat() for d in dates]
        projection: dict[str, Any] = {}
        if keys_only:
            projection = {"ProjectionExpression": "#pk, #sk"}
        if table == "top_genres":
            out: list[dict[str, Any]] = []
            for day in days:
                out += self._pages(
                    table,
                    "query",
                    self.client.query,
                    KeyConditionExpression="#pk = :d",
                    ExpressionAttributeNames={"#pk": pk, "#sk": sk} if keys_only else {"#pk": pk},
                    ExpressionAttributeValues={":d": {"S": day}},
                    ConsistentRead=True,
                    **projection,
                )
            return out
        # genre_kpis / top_songs: the date is not the partition key; scan with a filter
        out = []
        for i in range(0, len(days), _IN_LIMIT):
            chunk = days[i : i + _IN_LIMIT]
            values = {f":d{j}": {"S": d} for j, d in enumerate(chunk)}
            out += self._pages(
                table,
                "scan",
                self.client.scan,
                FilterExpression=f"#date IN ({', '.join(values)})",
                ExpressionAttributeNames={"#date": "date", **({"#pk": pk, "#sk": sk} if keys_only else {})},
                ExpressionAttributeValues=values,
                ConsistentRead=True,
                **projection,
            )
        return out

    # -- KpiStore -------------------------------------------------------------------------------

    def replace(self, table: str, dates: list[dt.date], rows: pa.Table) -> int:
        """Put `rows`, then delete the items of `dates` that `rows` did not rewrite."""
        items = self._items(table, rows)
        before = self._date_items(table, dates, keys_only=True)
        self._batch_write(table, [{"PutRequest": {"Item": item}} for item in items])
        new_keys = {_freeze(self._key(table, item)) for item in items}
        stale = [k for k in (self._key(table, i) for i in before) if _freeze(k) not in new_keys]
        if stale:
            log.info("deleting %d stale item(s) of %s", len(stale), self.table_name(table))
            self._batch_write(table, [{"DeleteRequest": {"Key": k}} for k in stale])
        return len(items)

    def read(self, table: str, *, date: dt.date | None = None, genre: str | None = None) -> pa.Table:
        (pk, _), _ = TABLE_KEYS[table]
        partition: str | None = None
        if table == "genre_kpis" and genre is not None:
            partition = genre
        elif table == "top_songs" and date is not None and genre is not None:
            partition = f"{date.isoformat()}#{genre}"
        elif table == "top_genres" and date is not None:
            partition = date.isoformat()
        if partition is not None:
            items = list(
                self._pages(
                    table,
                    "query",
                    self.client.query,
                    KeyConditionExpression="#pk = :p",
                    ExpressionAttributeNames={"#pk": pk},
                    ExpressionAttributeValues={":p": {"S": partition}},
                )
            )
        elif date is not None:
            items = self._date_items(table, [date], keys_only=False)
        else:
            items = list(self._pages(table, "scan", self.client.scan))
        return filter_rows(self._rows(table, items), date, genre)


def _freeze(key: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    return tuple(sorted((name, *next(iter(value.items()))) for name, value in key.items()))
