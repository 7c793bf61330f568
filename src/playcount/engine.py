"""The only place that chooses a backend. DuckDB (embedded) is the default.

Everything engine-specific lives here: how a CSV is parsed (line numbers, ragged rows, BOM,
gzip, encoding), how tables are materialised, and how Parquet/CSV are read and written.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from playcount.errors import SchemaError

__all__ = ["DuckDBEngine", "RawRead", "Opener", "connect"]

Opener = Callable[[], IO[bytes]]
_CHUNK = 1 << 22
_counter = itertools.count()


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


def _text(stream: IO[bytes], name: str) -> io.TextIOWrapper:
    raw: IO[bytes] = gzip.GzipFile(fileobj=stream) if name.endswith(".gz") else stream  # type: ignore[assignment]
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _unreadable(name: str, e: Exception, line: int | None = None) -> SchemaError:
    where = f"`{name}`" if line is None else f"`{name}` line `{line}`"
    if isinstance(e, UnicodeDecodeError):
        return SchemaError(
            f"{where} is not valid UTF-8 (byte {e.start}: {e.object[e.start:e.start + 4]!r})",
            fix="re-export the file as UTF-8",
            file=name,
            line=line,
        )
    return SchemaError(
        f"{where} cannot be read: {e}",
        fix="check that the file is a complete CSV (or .csv.gz) and drop it again",
        file=name,
        line=line,
    )


def _unreadable_at(opener: Opener, name: str, e: Exception) -> SchemaError:
    """`_unreadable`, with the physical line of the first invalid UTF-8 byte when that is the cause.

    The text reader decodes ahead in chunks, so its position is not the bad line; lines are
    decoded one by one instead (a UTF-8 sequence never spans a newline).
    """
    if isinstance(e, UnicodeDecodeError):
        try:
            with opener() as stream:
                raw: IO[bytes] = gzip.GzipFile(fileobj=stream) if name.endswith(".gz") else stream
                for number, line in enumerate(raw, 1):
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as found:
                        return _unreadable(name, found, number)
        except (OSError, EOFError, zlib.error):
            pass
    return _unreadable(name, e)


def read_header(opener: Opener, name: str) -> tuple[str, ...]:
    """The header row's column names; raises `SchemaError` when there is none or it is unusable."""
    try:
        with opener() as stream, _text(stream, name) as text:
            header = next(csv.reader(text), None)
    except (UnicodeDecodeError, OSError, EOFError, zlib.error, csv.Error) as e:
        raise _unreadable_at(opener, name, e) from e
    if not header or all(not h.strip() for h in header):
        raise SchemaError(f"`{name}` is empty: no header row", fix="add the header row", file=name)
    cols = tuple(h.strip() for h in header)
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes or "" in cols:
        bad = ", ".join(f"`{c}`" for c in dupes) or "an empty name"
        raise SchemaError(
            f"`{name}` has a header with {bad} twice or unnamed",
            fix="give every column a unique name",
            file=name,
        )
    return cols


def count_lines(opener: Opener, name: str) -> int:
    """Physical lines of the (decompressed) file, not counting trailing blank lines."""
    n = 0
    tail = b""
    try:
        with opener() as stream:
            raw: IO[bytes] = gzip.GzipFile(fileobj=stream) if name.endswith(".gz") else stream  # type: ignore[assignment]
            while chunk := raw.read(_CHUNK):
                n += chunk.count(b"\n")
                tail = (tail + chunk)[-4096:]
    except (OSError, EOFError, zlib.error) as e:
        raise _unreadable(name, e) from e
    stripped = tail.rstrip(b"\r\n")
    n -= tail[len(stripped):].count(b"\n")
    return n + (1 if stripped else 0)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class DuckDBEngine:
    """Runs the pure Ibis code on an embedded DuckDB database."""

    name = "duckdb"

    def __init__(self, con: ibis.BaseBackend | None = None, *, threads: int | None = None) -> None:
        self.con = con or ibis.duckdb.connect()
        self.db = self.con.con  # the raw duckdb connection, for the CSV reader
        if threads:
            self.db.execute(f"SET threads = {int(threads)}")

    # -- tables ------------------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        return f"_pc_{prefix}_{next(_counter)}"

    def materialize(self, expr: ir.Table, prefix: str = "t") -> ir.Table:
        """Compute `expr` once into a temporary table and return it."""
        return self.con.create_table(self._name(prefix), expr, temp=True)

    def from_arrow(self, table: pa.Table, prefix: str = "arrow") -> ir.Table:
        return self.con.create_table(self._name(prefix), table, temp=True)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)

    def scalar(self, expr: ir.Scalar) -> object:
        return self.con.execute(expr)

    def union(self, tables: list[ir.Table], prefix: str = "union") -> ir.Table:
        """All rows of `tables`, matching columns by name (missing ones are null)."""
        if len(tables) == 1:
            return tables[0]
        sql = " UNION ALL BY NAME ".join(
            f"SELECT * FROM ({ibis.to_sql(t, dialect='duckdb')})" for t in tables
        )
        name = self._name(prefix)
        self.db.execute(f"CREATE TEMP VIEW {name} AS {sql}")
        return self.con.table(name)

    def empty(self, schema: dict[str, str]) -> ir.Table:
        return self.con.create_table(self._name("empty"), schema=ibis.schema(schema), temp=True)

    # -- files -------------------------------------------------------------------------------

    def write_parquet(self, expr: ir.Table, uri: str) -> None:
        sql = ibis.to_sql(expr, dialect="duckdb")
        self.db.execute(f"COPY ({sql}) TO {_sql_str(uri)} (FORMAT parquet)")

    def write_csv(self, expr: ir.Table, uri: str) -> None:
        sql = ibis.to_sql(expr, dialect="duckdb")
        self.db.execute(f"COPY ({sql}) TO {_sql_str(uri)} (FORMAT csv, HEADER, QUOTE '\"', ESCAPE '\"')")

    def read_parquet(self, uris: list[str]) -> ir.Table:
        files = "[" + ", ".join(_sql_str(u) for u in uris) + "]"
        name = self._name("pq")
        self.db.execute(
            f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({files}, union_by_name=true)"
        )
        return self.con.table(name)

    def read_csv(self, uri: str, opener: Opener, name: str, *, required: tuple[str, ...]) -> RawRead:
        """Read one CSV as text, with the 1-based line of every row.

        DuckDB parses the file; when every record is one physical line (almost always), a
        row's line follows from its position and the lines of the malformed rows. Files with
        blank lines or newlines inside quoted fields take the exact (slower) Python reader.
        Raises `SchemaError` for what rejects a file: unreadable, not UTF-8, a required column
        missing, no data rows.
        """
        cols = read_header(opener, name)
        missing = [c for c in required if c not in cols]
        if missing:
            raise SchemaError(
                f"`{name}` lacks required column(s) {', '.join(f'`{c}`' for c in missing)} "
                f"(header: {', '.join(cols)})",
                fix="add the column(s) to the header and drop the file again",
                file=name,
            )
        physical = count_lines(opener, name)
        result = self._read_duckdb(uri, name, cols, physical)
        if result is None:
            result = self._read_python(opener, name, cols)
        if result.rows == 0:
            raise SchemaError(
                f"`{name}` has a header but no data rows", fix="drop a file with data", file=name
            )
        return result

    def _read_duckdb(self, uri: str, name: str, cols: tuple[str, ...], physical: int) -> RawRead | None:
        t, rej, scan = self._name("csv"), self._name("rej"), self._name("scan")
        columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in cols) + "}"
        try:
            self.db.execute(
                f"CREATE TEMP TABLE {t} AS SELECT * FROM read_csv({_sql_str(uri)}, header=true, "
                f"auto_detect=false, columns={columns}, delim=',', quote='\"', escape='\"', "
                f"strict_mode=true, store_rejects=true, rejects_table={_sql_str(rej)}, "
                f"rejects_scan={_sql_str(scan)}, compression='auto')"
            )
        except Exception:  # noqa: BLE001 - DuckDB could not parse it: the exact reader decides
            return None
        errors = self.db.execute(
            f"SELECT line, any_value(error_type), any_value(csv_line), any_value(error_message) "
            f"FROM {rej} GROUP BY line ORDER BY line"
        ).fetchall()
        self.db.execute(f"DROP TABLE IF EXISTS {rej}; DROP TABLE IF EXISTS {scan}")
        good = self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        if any("UNICODE" in e[1] or "ENCODING" in e[1] for e in errors) or (
            physical != 1 + good + len(errors)
        ):
            self.db.execute(f"DROP TABLE {t}")
            return None
        lines = self._name("lines")
        self.db.execute(
            f"CREATE TEMP TABLE {lines} AS SELECT line - 1 - m AS gb, max(m) AS m FROM "
            f"(SELECT line, row_number() OVER (ORDER BY line) AS m FROM "
            f"(VALUES {', '.join(f'({e[0]})' for e in errors) or '(NULL)'}) v(line) "
            f"WHERE line IS NOT NULL) GROUP BY gb"
        )
        out = self._name("raw")
        self.db.execute(
            f"CREATE TEMP TABLE {out} AS SELECT g.* EXCLUDE (_rn), {_sql_str(name)} AS _source_file, "
            f"CAST(g._rn + 2 + coalesce(l.m, 0) AS BIGINT) AS _line FROM "
            f"(SELECT *, rowid AS _rn FROM {t}) g ASOF LEFT JOIN {lines} l ON g._rn >= l.gb "
            f"ORDER BY _line"
        )
        self.db.execute(f"DROP TABLE {t}; DROP TABLE {lines}")
        malformed = pa.table(
            {
                "_source_file": pa.array([name] * len(errors), pa.string()),
                "_line": pa.array([e[0] for e in errors], pa.int64()),
                "_raw": pa.array([(e[2] or "").strip("\r\n") for e in errors], pa.string()),
                "_reasons": pa.array([_malformed_reason(e[1], e[3]) for e in errors], pa.string()),
            }
        )
        return RawRead(
            name, self.con.table(out), self.from_arrow(malformed, "malformed"), cols, good + len(errors)
        )

    def _read_python(self, opener: Opener, name: str, cols: tuple[str, ...]) -> RawRead:
        width = len(cols)
        values: list[list[str | None]] = [[] for _ in cols]
        lines: list[int] = []
        bad: list[tuple[int, str, str]] = []
        start = 1
        try:
            with opener() as stream, _text(stream, name) as text:
                reader = csv.reader(text)
                next(reader, None)
                start = reader.line_num + 1
                for record in _records(reader):
                    if record:
                        if len(record) == width:
                            for col, v in zip(values, record, strict=True):
                                col.append(v if v != "" else None)
                            lines.append(start)
                        else:
                            bad.append(
                                (start, _join(record), f"malformed row (expected {width} fields, found {len(record)})")
                            )
                    start = reader.line_num + 1
        except (UnicodeDecodeError, OSError, EOFError, zlib.error, csv.Error) as e:
            if isinstance(e, UnicodeDecodeError):
                raise _unreadable_at(opener, name, e) from e
            raise _unreadable(name, e, start) from e
        good = pa.table(
            {
                **{c: pa.array(v, pa.string()) for c, v in zip(cols, values, strict=True)},
                "_source_file": pa.array([name] * len(lines), pa.string()),
                "_line": pa.array(lines, pa.int64()),
            }
        )
        malformed = pa.table(
            {
                "_source_file": pa.array([name] * len(bad), pa.string()),
                "_line": pa.array([b[0] for b in bad], pa.int64()),
                "_raw": pa.array([b[1] for b in bad], pa.string()),
                "_reasons": pa.array([b[2] for b in bad], pa.string()),
            }
        )
        return RawRead(
            name,
            self.from_arrow(good, "raw"), self.from_arrow(malformed, "malformed"), cols, len(lines) + len(bad)
        )


def _records(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    yield from reader


def _join(record: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(record)
    return buf.getvalue()


def _malformed_reason(error_type: str, message: str | None) -> str:
    m = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message or "")
    if m:
        return f"malformed row (expected {m.group(1)} fields, found {m.group(2)})"
    return f"malformed row ({error_type.lower()})"


def connect(engine: str = "duckdb", *, threads: int | None = None) -> DuckDBEngine:
    """The engine named by the `engine` setting."""
    if engine == "duckdb":
        return DuckDBEngine(threads=threads)
    raise SchemaError(f"unknown engine `{engine}`", fix="use `duckdb`")
