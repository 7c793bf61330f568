"""The KPI store interface and the tables' exact columns (SPEC §3)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pyarrow as pa

__all__ = ["KpiStore", "KPI_SCHEMAS", "filter_rows"]

KPI_SCHEMAS: dict[str, pa.Schema] = {
    "genre_kpis": pa.schema(
        [
            ("genre", pa.string()),
            ("date", pa.date32()),
            ("total_streams", pa.int64()),
            ("unique_users", pa.int64()),
            ("avg_listen_time", pa.float64()),
            ("total_listen_time", pa.float64()),
            ("avg_listen_time_per_user", pa.float64()),
        ]
    ),
    "top_songs": pa.schema(
        [
            ("date", pa.date32()),
            ("genre", pa.string()),
            ("track_id", pa.string()),
            ("title", pa.string()),
            ("artist", pa.string()),
            ("stream_count", pa.int64()),
            ("rank", pa.int64()),
            ("date#genre", pa.string()),
        ]
    ),
    "top_genres": pa.schema(
        [
            ("date", pa.date32()),
            ("genre", pa.string()),
            ("total_streams", pa.int64()),
            ("rank", pa.int64()),
        ]
    ),
}


class KpiStore(Protocol):
    """Replaces a set of dates' rows of a KPI table at once, and reads them back."""

    def replace(self, table: str, dates: list[dt.date], rows: pa.Table) -> int:
        """Delete every row of `table` on `dates`, insert `rows`; return rows inserted."""
        ...

    def read(self, table: str, *, date: dt.date | None = None, genre: str | None = None) -> pa.Table:
        """Rows of `table`, optionally for one date and/or genre, in key order."""
        ...


def filter_rows(rows: pa.Table, date: dt.date | None, genre: str | None) -> pa.Table:
    """Filter KPI rows by date and genre (for stores that read everything)."""
    import pyarrow.compute as pc

    if date is not None:
        rows = rows.filter(pc.equal(rows["date"], pa.scalar(date, pa.date32())))
    if genre is not None and "genre" in rows.column_names:
        rows = rows.filter(pc.equal(rows["genre"], genre))
    return rows
