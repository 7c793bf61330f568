"""The DynamoDB KPI store on a moto server: replace semantics, reads, and retried faults.

Faults are injected with botocore event hooks on the real client: the request still goes to
moto over HTTP, only fewer items are sent (and reported unprocessed) or a throttling error
is answered before sending.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from aws_helpers import TABLE_PREFIX
from playcount.aws import Aws
from playcount.bootstrap import BootstrapResult
from playcount.errors import StoreError
from playcount.stores import KPI_SCHEMAS, DynamoDBStore, MemoryStore

pytestmark = pytest.mark.aws

D25, D26 = dt.date(2024, 6, 25), dt.date(2024, 6, 26)


def _songs(date: dt.date, genres: dict[str, int]) -> pa.Table:
    """`genres[g]` ranked tracks for each genre on `date`."""
    rows = [
        {
            "date": date,
            "genre": g,
            "track_id": f"{g}-{r}",
            "title": f"Song {r}",
            "artist": "A",
            "stream_count": 10 - r,
            "rank": r,
            "date#genre": f"{date.isoformat()}#{g}",
        }
        for g, n in genres.items()
        for r in range(1, n + 1)
    ]
    return pa.Table.from_pylist(rows, schema=KPI_SCHEMAS["top_songs"])


def _genres(date: dt.date, n: int) -> pa.Table:
    rows = [
        {
            "genre": f"g{i:03d}",
            "date": date,
            "total_streams": 1000 - i,
            "unique_users": 7 + i,
            "avg_listen_time": round(211.123 + i / 7, 2),
            "total_listen_time": 123456.789 + i / 3,
            "avg_listen_time_per_user": round(17.5 + i / 9, 2),
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=KPI_SCHEMAS["genre_kpis"])


@pytest.fixture
def store(aws: Aws, infra: BootstrapResult) -> DynamoDBStore:
    return DynamoDBStore(aws.client("dynamodb"), table_prefix=TABLE_PREFIX, sleep=lambda s: None)


def test_replace_removes_stale_items_and_reads_like_the_memory_store(store: DynamoDBStore) -> None:
    memory = MemoryStore()
    for s in (store, memory):
        s.replace("top_songs", [D25], _songs(D25, {"pop": 3, "rock": 3}))
        s.replace("top_songs", [D26], _songs(D26, {"pop": 2}))
        # D25 again: pop lost a rank slot, rock is gone: no stale rank may survive
        assert s.replace("top_songs", [D25], _songs(D25, {"pop": 2, "jazz": 1})) == 3
    got = store.read("top_songs")
    assert got.to_pylist() == memory.read("top_songs").to_pylist()
    assert [(r["date"], r["genre"], r["rank"]) for r in got.to_pylist()] == [
        (D25, "jazz", 1),
        (D25, "pop", 1),
        (D25, "pop", 2),
        (D26, "pop", 1),
        (D26, "pop", 2),
    ]
    assert store.read("top_songs", date=D25, genre="pop").num_rows == 2  # one partition
    assert store.read("top_songs", genre="pop").num_rows == 4
    assert store.read("top_songs", date=D26).num_rows == 2


def test_numbers_round_trip_exactly_as_decimals(store: DynamoDBStore, aws: Aws) -> None:
    rows = _genres(D25, 3)
    store.replace("genre_kpis", [D25], rows)
    assert store.read("genre_kpis").to_pylist() == rows.to_pylist()
    assert store.read("genre_kpis", genre="g001", date=D25).to_pylist() == [rows.to_pylist()[1]]
    item = aws.client("dynamodb").get_item(
        TableName=f"{TABLE_PREFIX}genre_kpis", Key={"genre": {"S": "g001"}, "date": {"S": "2024-06-25"}}
    )["Item"]
    assert Decimal(item["total_listen_time"]["N"]) == Decimal(repr(123456.789 + 1 / 3))
    assert item["total_streams"] == {"N": "999"}


def test_unprocessed_items_and_throttling_are_retried_to_completion(store: DynamoDBStore, aws: Aws) -> None:
    client = aws.client("dynamodb")
    held: list[dict[str, Any]] = []
    calls = {"batch": 0, "throttled": 0, "unprocessed": 0}

    def send_half(params: dict[str, Any], **kwargs: Any) -> None:
        calls["batch"] += 1
        for table, requests in params["RequestItems"].items():
            if calls["batch"] % 2 == 1 and len(requests) > 1:  # every other call: half is "not processed"
                keep = len(requests) // 2
                held.extend({table: r} for r in requests[keep:])
                params["RequestItems"][table] = requests[:keep]

    def report_unprocessed(parsed: dict[str, Any], http_response: Any, **kwargs: Any) -> None:
        if http_response.status_code >= 300:
            held.clear()  # the request was refused whole (throttled): nothing of it was written
        elif held:
            unprocessed: dict[str, list[Any]] = {}
            for entry in held:
                for table, request in entry.items():
                    unprocessed.setdefault(table, []).append(request)
            calls["unprocessed"] += sum(len(v) for v in unprocessed.values())
            parsed["UnprocessedItems"] = unprocessed
            held.clear()

    def throttle(**kwargs: Any) -> Any:
        if calls["throttled"] < 3:  # the first three requests are throttled
            calls["throttled"] += 1
            return _Http(400), {
                "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected throttle"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        return None

    events = client.meta.events
    events.register_first("before-call.dynamodb.BatchWriteItem", throttle, unique_id="throttle")
    events.register("provide-client-params.dynamodb.BatchWriteItem", send_half, unique_id="half")
    events.register("after-call.dynamodb.BatchWriteItem", report_unprocessed, unique_id="unprocessed")
    delays: list[float] = []
    store.sleep = delays.append
    try:
        rows = _genres(D25, 60)  # three batches of at most 25
        assert store.replace("genre_kpis", [D25], rows) == 60
    finally:
        events.unregister("before-call.dynamodb.BatchWriteItem", unique_id="throttle")
        events.unregister("provide-client-params.dynamodb.BatchWriteItem", unique_id="half")
        events.unregister("after-call.dynamodb.BatchWriteItem", unique_id="unprocessed")
    assert calls["throttled"] == 3 and calls["unprocessed"] > 0
    assert store.read("genre_kpis").to_pylist() == rows.to_pylist()  # every item arrived
    assert store.retries == len(delays) >= 3 + 2
    # exponential backoff with full jitter: the n-th consecutive retry waits at most base * 2^n
    assert all(0 <= d <= store.max_delay for d in delays)
    assert max(delays[:3]) <= store.base_delay * 4


def test_a_table_that_stays_throttled_fails_with_a_transient_error(store: DynamoDBStore, aws: Aws) -> None:
    def always(**kwargs: Any) -> Any:
        return _Http(400), {
            "Error": {"Code": "ThrottlingException", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    events = aws.client("dynamodb").meta.events
    events.register_first("before-call.dynamodb.BatchWriteItem", always, unique_id="always")
    store.max_attempts = 4
    try:
        with pytest.raises(StoreError, match=f"`{TABLE_PREFIX}top_genres`") as caught:
            store.replace(
                "top_genres",
                [D25],
                pa.Table.from_pylist(
                    [{"date": D25, "genre": "pop", "total_streams": 3, "rank": 1}], schema=KPI_SCHEMAS["top_genres"]
                ),
            )
    finally:
        events.unregister("before-call.dynamodb.BatchWriteItem", unique_id="always")
    assert caught.value.transient and store.retries == 3


def test_missing_table_says_how_to_create_it(aws: Aws, infra: BootstrapResult) -> None:
    store = DynamoDBStore(aws.client("dynamodb"), table_prefix="nope_")
    with pytest.raises(StoreError, match="`nope_genre_kpis` does not exist.*playcount aws bootstrap"):
        store.read("genre_kpis")


class _Http:
    """The bare HTTP response a `before-call` hook answers with (botocore reads its status)."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
