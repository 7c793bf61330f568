"""In-memory KPI stores for tests: a real implementation, and one that fails on demand."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from playcount.errors import StoreError
from playcount.stores.base import KPI_SCHEMAS, filter_rows

__all__ = ["MemoryStore", "FaultyStore"]


class MemoryStore:
    """Keeps each table as an Arrow table."""

    def __init__(self) -> None:
        self.tables: dict[str, pa.Table] = {t: s.empty_table() for t, s in KPI_SCHEMAS.items()}

    def replace(self, table: str, dates: list[dt.date], rows: pa.Table) -> int:
        schema = KPI_SCHEMAS[table]
        current = self.tables[table]
        keep = pc.invert(pc.is_in(current["date"], pa.array(dates, pa.date32())))
        self.tables[table] = pa.concat_tables([current.filter(keep), rows.select(schema.names).cast(schema)])
        return rows.num_rows

    def read(self, table: str, *, date: dt.date | None = None, genre: str | None = None) -> pa.Table:
        keys = {"genre_kpis": ["date", "genre"], "top_songs": ["date", "genre", "rank"]}
        rows = filter_rows(self.tables[table], date, genre)
        return rows.sort_by([(k, "ascending") for k in keys.get(table, ["date", "rank"])])


class FaultyStore(MemoryStore):
    """Fails the first `failures` writes with a transient `StoreError`."""

    def __init__(self, failures: int = 1) -> None:
        super().__init__()
        self.failures = failures

    def replace(self, table: str, dates: list[dt.date], rows: pa.Table) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("injected store failure", fix="retry")
        return super().replace(table, dates, rows)
