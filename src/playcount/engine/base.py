"""What every engine is: the `Engine` protocol the pipeline asks of one, the `RawRead` a CSV
read gives, and what any engine can do with only the protocol (`write_parts_one_by_one`).

Implementations (`engine.duckdb`, `engine.spark`) import this module and `engine.reading`;
only the chooser (`playcount.engine`) imports the implementations.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol, Union

import ibis.expr.types as ir
import pyarrow as pa

from playcount.errors import SchemaError

Opener = Callable[[], IO[bytes]]
"""Opens a landing file's bytes (local file or S3 object) afresh each call."""


@dataclass(frozen=True)
class CsvSource:
    """One CSV file to read (`Engine.read_csvs`): where it is, how to open it, its name."""

    uri: str
    opener: Opener
    name: str


ReadResult = Union["RawRead", SchemaError, FileNotFoundError]
"""What reading one file of `Engine.read_csvs` gave: its rows, or why there are none (rejected,
or gone since it was listed)."""


@dataclass(frozen=True)
class RawRead:
    """A CSV file read as text: well-formed rows and malformed ones (wrong field count)."""

    source: str
    """The file's name, as in `_source_file`."""
    table: ir.Table
    """Header columns (strings) + `_source_file` + `_line`."""
    malformed: ir.Table
    """`_source_file`, `_line`, `_raw` (the row's text), `_reasons`."""
    columns: tuple[str, ...]
    rows: int
    """Data rows read (well-formed + malformed)."""
    release: Callable[[], None] = lambda: None
    """Frees what holds the rows (DuckDB: its temporary tables) once nothing refers to them."""
    shared: bool = False
    """`table` holds the rows of every file read with this one that has its columns (the same
    table object for each: Spark's `read_csvs`, one scan for all), not only this file's. A union
    of reads takes each table once and keeps the rows of the files it wants (`rows_of`)."""


def rows_of(engine: Engine, reads: list[RawRead], prefix: str = "union") -> ir.Table:
    """The well-formed rows of `reads`, each file's once: their tables unioned (a shared table
    taken once, then only the rows of these files kept)."""
    tables = list({id(r.table): r.table for r in reads}.values())
    t = engine.union(tables, prefix=prefix)
    if any(r.shared for r in reads):
        t = t.filter(t._source_file.isin([r.source for r in reads]))
    return t


class Engine(Protocol):
    """What the pipeline asks of an engine: `DuckDBEngine` and `SparkEngine` implement it."""

    name: str
    batch_bytes: int | None
    """Stream files are checked in batches of at most this many CSV bytes (a larger file alone),
    each batch's tables dropped before the next; None: all at once."""

    def materialize(self, expr: ir.Table, prefix: str = "t") -> ir.Table: ...

    def drop(self, tables: list[ir.Table]) -> None:
        """Free tables `materialize` made (nothing may refer to them any more)."""
        ...

    def from_arrow(self, table: pa.Table, prefix: str = "arrow") -> ir.Table: ...

    def to_arrow(self, expr: ir.Table) -> pa.Table: ...

    def scalar(self, expr: ir.Scalar) -> object: ...

    def union(self, tables: list[ir.Table], prefix: str = "union") -> ir.Table: ...

    def empty(self, schema: dict[str, str]) -> ir.Table: ...

    def write_parquet(self, expr: ir.Table, uri: str) -> None: ...

    def write_csv(self, expr: ir.Table, uri: str) -> None: ...

    def write_parquet_parts(self, expr: ir.Table, by: tuple[str, ...], parts: dict[tuple[Any, ...], str]) -> None:
        """The rows of `expr` whose `by` columns equal a key of `parts`, one Parquet file per key at
        its uri (replacing any); rows of other keys are not written."""
        ...

    def read_parquet(self, uris: list[str]) -> ir.Table: ...

    def read_csv(self, uri: str, opener: Opener, name: str, *, required: tuple[str, ...]) -> RawRead: ...

    def read_csvs(
        self,
        sources: list[CsvSource],
        *,
        required: tuple[str, ...],
        progress: Callable[[int], None] | None = None,
    ) -> list[ReadResult]:
        """`read_csv` of each source, in order; a file's `SchemaError` or `FileNotFoundError` is its
        result, not raised. `progress(i)` is called when file `i` is being read (or, for an engine
        that reads files together, once with 0). DuckDB reads them one by one
        (`read_one_by_one`); Spark in one scan of all the plain files."""
        ...

    def close(self) -> None:
        """Release what the engine holds (not a session it was given: that may be shared)."""
        ...


def read_one_by_one(
    engine: Engine,
    sources: list[CsvSource],
    *,
    required: tuple[str, ...],
    progress: Callable[[int], None] | None = None,
) -> list[ReadResult]:
    """`Engine.read_csvs` as one `read_csv` per file (every engine can)."""
    out: list[ReadResult] = []
    for i, s in enumerate(sources):
        if progress is not None:
            progress(i)
        try:
            out.append(engine.read_csv(s.uri, s.opener, s.name, required=required))
        except (SchemaError, FileNotFoundError) as e:
            out.append(e)
    return out


def write_parts_one_by_one(
    engine: Engine, expr: ir.Table, by: tuple[str, ...], parts: dict[tuple[Any, ...], str]
) -> None:
    """`Engine.write_parquet_parts` as one filtered write per part (every engine can)."""
    for key, uri in parts.items():
        match = functools.reduce(operator.and_, [expr[c] == v for c, v in zip(by, key, strict=True)])
        engine.write_parquet(expr.filter(match), uri)
