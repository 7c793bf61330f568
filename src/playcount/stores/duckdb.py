"""The default KPI store: a DuckDB file with tables `genre_kpis`, `top_songs`, `top_genres`.

A reader that holds the file open (a notebook, a BI tool, `playcount kpis`) must never block or
break a run (SPEC §6), and DuckDB lets no process write a file that another one has open. So a
write never opens the store itself: it copies the file, changes the copy, and renames the copy
over the store. A reader keeps the version it opened; the next one opens the new version. Writers
take turns on `<store>.lock`, and a write killed half-way leaves the store as it was. (KPI tables
are small: a copy per load costs milliseconds to a second.)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from playcount.errors import MissingStoreError, StoreError
from playcount.stores.base import KPI_SCHEMAS

__all__ = ["DuckDBStore"]

_SQL_TYPES = {pa.string(): "VARCHAR", pa.date32(): "DATE", pa.int64(): "BIGINT", pa.float64(): "DOUBLE"}
_ORDER = {
    "genre_kpis": '"date", genre',
    "top_songs": '"date", genre, "rank"',
    "top_genres": '"date", "rank"',
}


@contextmanager
def _openable(path: str, *, write: bool = False) -> Iterator[str]:
    """A name DuckDB opens as `path` itself. DuckDB reads `?` in a database path as the start of
    options (`lake?/kpis.duckdb` writes its log to `lake.wal?/...`): such a file is worked on as a
    copy in a temporary folder, copied back when `write`."""
    if "?" not in path:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="playcount-store-") as folder:
        work = os.path.join(folder, "kpis.duckdb")
        if os.path.exists(path):
            shutil.copyfile(path, work)
        yield work
        if write:
            shutil.copyfile(work, path)


class CorruptStoreError(StoreError):
    """The store file is not a DuckDB database (or a damaged one): no retry mends it."""

    transient = False


class DuckDBStore:
    """A DuckDB database file. Each `replace` is atomic: readers never see half a date."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _corrupt(self, e: Exception) -> StoreError:
        return CorruptStoreError(
            f"the KPI store `{self.path}` cannot be opened, it is not a (complete) DuckDB file: {e}",
            fix=f"move `{self.path}` away (keep it for inspection), then `playcount rebuild` fills a new store "
            "with every date's KPIs from the processed events",
            path=str(self.path),
        )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Writers one at a time (two lake roots may share a store file)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = (self.path.parent / f".{self.path.name}.lock").open("a")
        except OSError as e:
            raise StoreError(
                f"cannot write the KPI store `{self.path}`: {e.strerror}",
                fix=f"give write access to `{self.path.parent}` or set store.path to a writable place",
                path=str(self.path),
            ) from e
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            yield

    @contextmanager
    def _writable_copy(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to a copy of the store, renamed over the store when the block succeeds."""
        if self.path.is_dir():
            raise StoreError(
                f"the KPI store `{self.path}` is a folder", fix="set store.path to a file name, e.g. kpis.duckdb"
            )
        with self._lock():
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            os.close(fd)
            os.unlink(tmp)  # DuckDB creates it (an empty file is not a database)
            try:
                if self.path.exists():
                    shutil.copyfile(self.path, tmp)
                with _openable(tmp, write=True) as name:
                    try:
                        con = duckdb.connect(name)
                    except duckdb.Error as e:
                        raise self._corrupt(e) from e
                    try:
                        for table, schema in KPI_SCHEMAS.items():
                            cols = ", ".join(f'"{f.name}" {_SQL_TYPES[f.type]}' for f in schema)
                            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
                        yield con
                        con.execute("CHECKPOINT")
                    finally:
                        con.close()
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except OSError as e:
                raise StoreError(
                    f"cannot write the KPI store `{self.path}`: {e}",
                    fix="check the free space and write access of its folder, then run again",
                    path=str(self.path),
                ) from e
            finally:
                for leftover in (tmp, tmp + ".wal"):
                    if os.path.exists(leftover):
                        os.unlink(leftover)

    def replace(self, table: str, dates: list[dt.date], rows: pa.Table) -> int:
        rows = rows.select(KPI_SCHEMAS[table].names).cast(KPI_SCHEMAS[table])
        with self._writable_copy() as con:
            con.execute(f'DELETE FROM {table} WHERE "date" IN (SELECT unnest(?::DATE[]))', [dates])
            con.register("_rows", rows)
            con.execute(f"INSERT INTO {table} SELECT * FROM _rows")
        return rows.num_rows

    def read(self, table: str, *, date: dt.date | None = None, genre: str | None = None) -> pa.Table:
        if not self.path.exists():
            raise MissingStoreError(
                f"no KPI store at `{self.path}`", fix="run `playcount run` (or `playcount rebuild`) first"
            )
        with _openable(str(self.path)) as name:
            return self._read(name, table, date, genre)

    def _read(self, name: str, table: str, date: dt.date | None, genre: str | None) -> pa.Table:
        try:
            con = duckdb.connect(name, read_only=True)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():  # a process holds it open read-write (not playcount)
                raise StoreError(
                    f"the KPI store `{self.path}` is held open for writing by another program: {e}",
                    fix="close that program's connection, or open the file read-only there",
                ) from e
            raise self._corrupt(e) from e
        except duckdb.Error as e:
            raise self._corrupt(e) from e
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
            return con.execute(f"SELECT * FROM {table} {clause} ORDER BY {_ORDER[table]}", params).to_arrow_table()
        except duckdb.CatalogException as e:
            raise StoreError(
                f"the KPI store `{self.path}` has no table `{table}`", fix="run `playcount run` first"
            ) from e
        finally:
            con.close()
