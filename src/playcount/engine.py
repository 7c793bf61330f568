"""The only place that chooses a backend. DuckDB (embedded) is the default; Spark with the
`spark` extra (`playcount.engines.spark`, re-exported here as `SparkEngine`).

Everything engine-specific lives here: how a CSV is parsed (line numbers, ragged rows, BOM,
gzip, encoding), how tables are materialised, and how Parquet/CSV are read and written.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import itertools
import operator
import os
import re
import shutil
import sys
import tempfile
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from playcount.errors import SchemaError, SettingsError

if TYPE_CHECKING:
    from playcount.aws import S3Access

__all__ = ["Engine", "DuckDBEngine", "SparkEngine", "RawRead", "Opener", "connect"]  # noqa: F822 - SparkEngine: lazy

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
    release: Callable[[], None] = lambda: None
    """Frees what holds the rows (DuckDB: its temporary tables) once nothing refers to them."""


# The exact reader takes a field of any size, as DuckDB's does (up to its line limit, past which
# the exact reader is used): a long value is a bad row in either reader, never a rejected file.
csv.field_size_limit(sys.maxsize)

#: Column names playcount adds to a dataset's rows; an input column may not use them.
RESERVED_PREFIX = "_"
#: Columns the transform and the KPIs derive from a stream row (an input column of that name would
#: collide with them downstream).
DERIVED_COLUMNS = frozenset({"date", "genre", "duration_ms", "listen_seconds", "title", "artist", "rank"})
#: What an input column with a reserved name is carried as: `input<name>` (`_line` -> `input_line`).
RENAMED_PREFIX = "input"


def is_gzip(name: str) -> bool:
    """Whether a landing file is gzip-compressed, by its name (`.gz`, any case)."""
    return name.lower().endswith(".gz")


def _decompressed(stream: IO[bytes], name: str) -> IO[bytes]:
    return gzip.GzipFile(fileobj=stream) if is_gzip(name) else stream  # type: ignore[return-value]


def _text(stream: IO[bytes], name: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(_decompressed(stream, name), encoding="utf-8-sig", newline="")


def duckdb_literal(uri: str) -> str:
    """`uri` as a DuckDB file reader takes it literally: each glob character (`*`, `?`, `[`, `{`)
    as a one-character class (`[*]`), so `lake[ab]` means that folder, never `lakea` and `lakeb`.
    (DuckDB has no other escape; a path without these characters is not globbed at all.)"""
    return re.sub(r"([*?\[{])", r"[\1]", uri)


def carried_names(columns: tuple[str, ...], dataset_columns: tuple[str, ...]) -> tuple[str, ...]:
    """The names the rows carry a file's columns under: the contract's own columns as they are,
    other columns as they are unless playcount uses that name itself (`_line`, `_reasons`, ... or a
    derived column such as `date`), which become `input<name>` (`input_line`; `input_date`), with
    a number added while that is taken too. Never a crash on a header (SPEC §1)."""
    taken = set(columns)
    out: list[str] = []
    for c in columns:
        if c in dataset_columns or not (c.startswith(RESERVED_PREFIX) or c in DERIVED_COLUMNS):
            out.append(c)
            continue
        new = f"{RENAMED_PREFIX}{c}" if c.startswith(RESERVED_PREFIX) else f"{RENAMED_PREFIX}_{c}"
        base, n = new, 1
        while new in taken:
            n += 1
            new = f"{base}_{n}"
        taken.add(new)
        out.append(new)
    return tuple(out)


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
                for number, line in enumerate(_decompressed(stream, name), 1):
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


def read_columns(opener: Opener, name: str, required: tuple[str, ...]) -> tuple[str, ...]:
    """`read_header`, raising `SchemaError` when a required column is missing (every engine);
    the names the rows carry the columns under (`carried_names`)."""
    cols = read_header(opener, name)
    missing = [c for c in required if c not in cols]
    if missing:
        raise SchemaError(
            f"`{name}` lacks required column(s) {', '.join(f'`{c}`' for c in missing)} "
            f"(header: {', '.join(cols)})",
            fix="add the column(s) to the header and drop the file again",
            file=name,
        )
    return carried_names(cols, required)


def no_data_rows(name: str) -> SchemaError:
    """The error of a file with a header and nothing else (every engine)."""
    return SchemaError(f"`{name}` has a header but no data rows", fix="drop a file with data", file=name)


def scan_lines(opener: Opener, name: str, wanted: Iterable[int] = ()) -> tuple[int, dict[int, str]]:
    """Physical lines of the (decompressed) file, not counting trailing blank lines, and the text
    of the `wanted` lines (1-based, without the line end): one pass in large chunks, a wanted line
    found by `_skip_lines`."""
    targets = sorted(set(wanted), reverse=True)
    texts: dict[int, str] = {}
    n = lone_cr = 0
    cr_before = False  # the chunk before ended in CR (a CRLF across chunks is no lone CR)
    tail = carry = b""
    try:
        with opener() as stream:
            raw = _decompressed(stream, name)
            while chunk := raw.read(_CHUNK):
                ends = chunk.count(b"\n")
                lone_cr += chunk.count(b"\r") - chunk.count(b"\r\n") - (cr_before and chunk[:1] == b"\n")
                cr_before = chunk[-1:] == b"\r"
                if targets and targets[-1] <= n + ends:
                    buf, pos, line = carry + chunk, 0, n + 1  # buf[pos] starts line `line`
                    average = max(len(buf) // max(ends, 1), 1)
                    while targets and targets[-1] <= n + ends:
                        want = targets.pop()
                        pos, line = _skip_lines(buf, pos, want - line, average), want
                        texts[want] = buf[pos:buf.find(b"\n", pos)].decode("utf-8", "replace").strip("\r\n")
                if targets:
                    carry = chunk[chunk.rfind(b"\n") + 1:] if ends else carry + chunk
                n += ends
                tail = chunk[-4096:] if len(chunk) >= 4096 else (tail + chunk)[-4096:]
    except (OSError, EOFError, zlib.error) as e:
        raise _unreadable(name, e) from e
    if targets and targets[-1] == n + 1:  # the last line, without a line end
        texts[targets.pop()] = carry.decode("utf-8", "replace").strip("\r\n")
    stripped = tail.rstrip(b"\r\n")
    n -= tail[len(stripped):].count(b"\n")
    if lone_cr > 0:
        # a CR without LF ends a line for the exact reader (Python's universal newlines), not for
        # these positions: one more line than can be, so that such a file takes the exact reader
        return n + (1 if stripped else 0) + lone_cr + 1, texts
    return n + (1 if stripped else 0), texts


def _skip_lines(buf: bytes, pos: int, k: int, average: int) -> int:
    """The position just after the `k`-th line end at or after `pos` (`buf` has that many).

    A guess from the average line length, corrected by a few finds: a handful of steps per
    wanted line instead of a Python step per line.
    """
    if k <= 0:
        return pos
    end = min(pos + k * average, len(buf))
    m = buf.count(b"\n", pos, end)
    while m < k:
        end = buf.find(b"\n", end) + 1
        m += 1
    while m > k:
        end = buf.rfind(b"\n", pos, end)
        m -= 1
    return buf.rfind(b"\n", pos, end) + 1


def write_parts_one_by_one(
    engine: Engine, expr: ir.Table, by: tuple[str, ...], parts: dict[tuple[Any, ...], str]
) -> None:
    """`Engine.write_parquet_parts` as one filtered write per part (every engine can)."""
    for key, uri in parts.items():
        match = functools.reduce(operator.and_, [expr[c] == v for c, v in zip(by, key, strict=True)])
        engine.write_parquet(expr.filter(match), uri)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class DuckDBEngine:
    """Runs the pure Ibis code on an embedded DuckDB database."""

    name = "duckdb"

    def __init__(
        self,
        con: ibis.BaseBackend | None = None,
        *,
        threads: int | None = None,
        memory_limit: str | None = "1GB",
    ) -> None:
        self.con = con or ibis.duckdb.connect()
        self.db = self.con.con  # the raw duckdb connection, for the CSV reader
        # DuckDB draws a progress bar on stdout for long queries: stdout is for --json only
        self.db.execute("SET enable_progress_bar = false")
        if threads:
            self.db.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            # beyond it DuckDB spills to disk: the peak stays bounded whatever the data size
            self._spill = tempfile.mkdtemp(prefix="playcount-spill-")
            weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
            self.db.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
            self.db.execute(f"SET temp_directory = {_sql_str(self._spill)}")

    def use_s3(self, access: S3Access) -> None:
        """Read and write `s3://` URLs through httpfs with these credentials (see `httpfs.py`)."""
        from playcount.httpfs import create_s3_secret, load_httpfs

        load_httpfs(self.db)
        create_s3_secret(self.db, access)

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

    def write_parquet_parts(self, expr: ir.Table, by: tuple[str, ...], parts: dict[tuple[Any, ...], str]) -> None:
        """Local files: one partitioned write (a single pass over `expr`), each part then renamed
        into place. A filtered write per part would scan all of `expr` once per part: string
        statistics (8-byte prefixes) cannot skip `streams_001.csv` while looking for `..._002.csv`."""
        uris = list(parts.values())
        if len(parts) < 2 or any("://" in u for u in uris):
            write_parts_one_by_one(self, expr, by, parts)
            return
        keys = list(parts)
        index = self.from_arrow(
            pa.table({**{f"_k{i}": [k[i] for k in keys] for i in range(len(by))}, "_pc_part": list(range(len(keys)))}),
            "parts",
        )
        on = " AND ".join(f'e."{c}" = i._k{n}' for n, c in enumerate(by))
        tagged = (
            f"SELECT e.*, i._pc_part FROM ({ibis.to_sql(expr, dialect='duckdb')}) e "
            f"JOIN {index.get_name()} i ON {on}"
        )
        tmp = tempfile.mkdtemp(prefix=".playcount-parts-", dir=os.path.commonpath([os.path.dirname(u) for u in uris]))
        try:
            self.db.execute(
                f"COPY ({tagged}) TO {_sql_str(tmp)} "
                f"(FORMAT parquet, PARTITION_BY (_pc_part), OVERWRITE_OR_IGNORE)"
            )
            for i, key in enumerate(keys):
                folder = os.path.join(tmp, f"_pc_part={i}")  # listed, not globbed: the root may hold `[`
                names = sorted(n for n in os.listdir(folder) if n.endswith(".parquet")) if os.path.isdir(folder) else []
                files = [os.path.join(folder, n) for n in names]
                if len(files) == 1:
                    os.replace(files[0], parts[key])
                else:  # no rows (no file), or split into several: one file, as every part is
                    write_parts_one_by_one(self, expr, by, {key: parts[key]})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def read_parquet(self, uris: list[str]) -> ir.Table:
        files = "[" + ", ".join(_sql_str(duckdb_literal(u)) for u in uris) + "]"
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
        cols = read_columns(opener, name, required)
        result = self._read_duckdb(uri, opener, name, cols)
        if result is None:
            result = self._read_python(opener, name, cols)
        if result.rows == 0:
            raise no_data_rows(name)
        return result

    def _read_duckdb(self, uri: str, opener: Opener, name: str, cols: tuple[str, ...]) -> RawRead | None:
        """DuckDB's parallel reader, one record per physical line, so that `_line` is the row's
        position (record i is line i + 2): no line mapping, no sort.

        One column more than the header is declared and short rows are padded with nulls, and
        an empty field reads as "" (the null string is a sentinel), so a row with too few fields
        has a null and one with too many a value in the extra column: the malformed rows are
        found in the table itself. Strict mode leaves rows with two or more extra fields out
        (they are then read again without it, every line a record) and rejects anything else
        (a stray quote, bad UTF-8); those files, blank lines and records spanning lines take
        the exact reader (None).
        """
        t = self._name("csv")
        width = len(cols)
        malformed = "(" + " OR ".join([*(f'"{_ident(c)}" IS NULL' for c in cols), f'"{_EXTRA}" IS NOT NULL']) + ")"
        columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in (*cols, _EXTRA)) + "}"
        options = (
            f"header=false, skip=1, auto_detect=false, columns={columns}, delim=',', quote='\"', escape='\"', "
            f"compression={_sql_str('gzip' if is_gzip(name) else 'none')}, null_padding=true, "
            f"nullstr={_sql_str(_NULL)}"
        )
        try:
            errors = self._load_strict(t, uri, options)
            if errors and any(e not in _FIELD_COUNT_ERRORS for e in errors):
                self.db.execute(f"DROP TABLE {t}")
                return None
            if errors:  # rows with two or more extra fields were left out: every line a record
                self.db.execute(
                    f"CREATE OR REPLACE TEMP TABLE {t} AS SELECT * FROM "
                    f"read_csv({_sql_str(duckdb_literal(uri))}, {options}, "
                    f"strict_mode=false)"
                )
            records = self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            rows = self.db.execute(f"SELECT rowid + 2 FROM {t} WHERE {malformed} ORDER BY 1").fetchall()
            flagged = [line for (line,) in rows]
        except Exception:  # noqa: BLE001 - DuckDB could not parse it: the exact reader decides
            self.db.execute(f"DROP TABLE IF EXISTS {t}")
            return None
        physical, texts = scan_lines(opener, name, flagged)
        # fields counted by the exact reader's rules
        found = {line: len(next(csv.reader([text]), [])) for line, text in texts.items()}
        # Blank lines (DuckDB skips them) and records spanning lines both make more lines than
        # records: positions are not lines. A field equal to the null sentinel reads as null: a
        # flagged row is then not malformed.
        if physical != records + 1 or len(texts) != len(flagged) or width in found.values():
            self.db.execute(f"DROP TABLE {t}")
            return None
        bad = [(line, texts[line], malformed_reason(width, found[line])) for line in flagged]
        # A view, not a copy: the rows are materialised once, by the checks downstream.
        out = self._name("raw")
        values = ", ".join(f'NULLIF("{_ident(c)}", \'\') AS "{_ident(c)}"' for c in cols)
        where = f"WHERE NOT {malformed}" if flagged else ""
        self.db.execute(
            f"CREATE TEMP VIEW {out} AS SELECT {values}, {_sql_str(name)} AS _source_file, "
            f"CAST(rowid + 2 AS BIGINT) AS _line FROM {t} {where}"
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
            name, self.con.table(out), self.from_arrow(malformed, "malformed"), cols, records,
            self._dropper(views=[out], tables=[t]),
        )

    def _load_strict(self, table: str, uri: str, options: str) -> list[str]:
        """`table` from a strict read of `uri`; the error types of the rows it left out."""
        rej, scan = self._name("rej"), self._name("scan")
        try:
            self.db.execute(
                f"CREATE TEMP TABLE {table} AS SELECT * FROM read_csv({_sql_str(duckdb_literal(uri))}, {options}, "
                f"strict_mode=true, store_rejects=true, rejects_table={_sql_str(rej)}, rejects_scan={_sql_str(scan)})"
            )
            if not self._exists(rej):  # the rejects table exists only when a row was rejected
                return []
            return [e for (e,) in self.db.execute(f"SELECT error_type FROM {rej}").fetchall()]
        finally:
            self.db.execute(f"DROP TABLE IF EXISTS {rej}; DROP TABLE IF EXISTS {scan}")

    def _dropper(self, *, views: Iterable[str] = (), tables: Iterable[str] = ()) -> Callable[[], None]:
        """What `RawRead.release` calls: drop these temporary views, then tables."""
        def drop() -> None:
            for v in views:
                self.db.execute(f"DROP VIEW IF EXISTS {v}")
            for t in tables:
                self.db.execute(f"DROP TABLE IF EXISTS {t}")

        return drop

    def _exists(self, table: str) -> bool:
        return bool(self.db.execute(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = {_sql_str(table)}")
                    .fetchone()[0])  # type: ignore[index]

    def _read_python(self, opener: Opener, name: str, cols: tuple[str, ...]) -> RawRead:
        width = len(cols)
        values: list[list[str | None]] = [[] for _ in cols]
        lines: list[int] = []
        bad: list[tuple[int, str, str]] = []
        records: CsvRecords | None = None
        try:
            with opener() as stream, _text(stream, name) as text:
                records = CsvRecords(text, width)
                for line, record, raw in records:
                    if raw is None:
                        for col, v in zip(values, record, strict=True):
                            col.append(v if v != "" else None)
                        lines.append(line)
                    else:
                        bad.append((line, raw, malformed_reason(width, len(record))))
        except (UnicodeDecodeError, OSError, EOFError, zlib.error, csv.Error) as e:
            if isinstance(e, UnicodeDecodeError):
                raise _unreadable_at(opener, name, e) from e
            raise _unreadable(name, e, records.line if records else 1) from e
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
        table = self.from_arrow(good, "raw")
        return RawRead(
            name, table, self.from_arrow(malformed, "malformed"), cols, len(lines) + len(bad),
            self._dropper(tables=[table.get_name()]),
        )


class CsvRecords:
    """The data records of a CSV text after its header: the exact reader's parse (Spark's too).

    Iterating yields `(line, fields, raw)` per record: its first physical line (1-based), its
    fields and, when it does not have `width` fields, its original text without the line end
    (what a malformed row keeps in `_raw`; None otherwise). Blank lines are skipped. `line` is
    where the record being read starts, for error messages.
    """

    def __init__(self, text: Iterable[str], width: int) -> None:
        self._text = text
        self._width = width
        self._taken: list[str] = []
        self.line = 1

    def _tee(self) -> Iterator[str]:
        for piece in self._text:
            self._taken.append(piece)
            yield piece

    def __iter__(self) -> Iterator[tuple[int, list[str], str | None]]:
        reader = csv.reader(self._tee())
        next(reader, None)
        taken = self._taken
        taken.clear()
        self.line = reader.line_num + 1
        for record in reader:
            if record:
                raw = None if len(record) == self._width else "".join(taken).strip("\r\n")
                yield self.line, record, raw
            taken.clear()
            self.line = reader.line_num + 1


def malformed_reason(expected: int, found: int) -> str:
    """The reason of a row with the wrong number of fields."""
    return f"malformed row (expected {expected} fields, found {found})"


_FIELD_COUNT_ERRORS = ("MISSING COLUMNS", "TOO MANY COLUMNS")
_EXTRA = "_pc_extra"
"""The column declared past the header's: a row with a value in it has too many fields."""
_NULL = "\x01\x02playcount-null\x02\x01"
"""DuckDB's null string while reading: no real field equals it, so an empty field reads as ""
and a null marks a field that is missing (a short row, padded)."""


def _ident(column: str) -> str:
    return column.replace('"', '""')


class Engine(Protocol):
    """What the pipeline asks of an engine: `DuckDBEngine` and `SparkEngine` implement it."""

    name: str

    def materialize(self, expr: ir.Table, prefix: str = "t") -> ir.Table: ...

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


def connect(
    engine: str = "duckdb",
    *,
    threads: int | None = None,
    memory_limit: str | None = "1GB",
    spark_master: str | None = None,
    spark_conf: dict[str, str] | None = None,
    session: Any = None,
) -> Engine:
    """The engine named by the `engine` setting.

    `spark`: on `session` (an existing SparkSession: Glue's, EMR's) if given, else on a session
    for `spark_master` (default `local[*]`) with `spark_conf`.
    """
    if engine == "duckdb":
        return DuckDBEngine(threads=threads, memory_limit=memory_limit)
    if engine == "spark":
        from playcount.engines.spark import SparkEngine

        return SparkEngine(session, master=spark_master, conf=spark_conf)
    raise SettingsError(f"unknown engine `{engine}`", fix="use `duckdb` or `spark`", key="engine")


def __getattr__(name: str) -> Any:
    # `SparkEngine` without importing pyspark for everyone who imports this module
    if name == "SparkEngine":
        from playcount.engines.spark import SparkEngine

        return SparkEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
