"""The default KPI store: a DuckDB file with tables `genre_kpis`, `top_songs`, `top_genres`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

from playcount.errors import StoreError
from playcount.stores.base import KPI_SCHEMAS

__all__ = ["DuckDBStore"]

_SQL_TYPES = {pa.string(): "VARCHAR", pa.date32(): "DATE", pa.int64(): "BIGINT", pa.float64(): "DOUBLE"}
_ORDER = {
    "genre_kpis": '"date", genre',
    "top_songs": '"date", genre, "rank"',
    "top_genres": '"date", "rank"',
}


class DuckDBStore:
    """A DuckDB database file. Each `replace` is one transaction: readers never see half a date."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        try:
            if read_only:
                if not self.path.exists():
                    raise StoreError(
                        f"no KPI store at `{self.path}`", fix="run `playcount run` first"
                    )
                return duckdb.connect(str(self.path), read_only=True)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path))
        except duckdb.IOException as e:
            raise StoreError(
                f"cannot open the KPI store `{self.path}`: {e}",
                fix="close other programs that hold the file open and retry",
            ) from e
        for table, schema in KPI_SCHEMAS.items():
            cols = ", ".join(f'"{f.name}" {_SQL_TYPES[f.type]}' for f in schema)
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        return con

    def replace(self, table: str, dates: list[dt.date], rows: pa.Table) -> int:
        rows = rows.select(KPI_SCHEMAS[table].names).cast(KPI_SCHEMAS[table])
        con = self._connect()
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(f'DELETE FROM {table} WHERE "date" IN (SELECT unnest(?::DATE[]))', [dates])
            con.register("_rows", rows)
            con.execute(f"INSERT INTO {table} SELECT * FROM _rows")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return rows.num_rows

    def read(self, table: str, *, date: dt.date | None = None, genre: str | None = None) -> pa.Table:
        con = self._connect(read_only=True)
        try:
            where: list[str] = []
            params: list[object] = []
            if date is not None:
                where.append('"date" = ?')
                params.append(date)
            if genre is not None:
                where.append("genre = ?")
                params.append(genre)
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            return con.execute(
                f"SELECT * FROM {table} {clause} ORDER BY {_ORDER[table]}", params
            ).to_arrow_table()
        except duckdb.CatalogException as e:
            raise StoreError(
                f"the KPI store `{self.path}` has no table `{table}`", fix="run `playcount run` first"
            ) from e
        finally:
            con.close()
