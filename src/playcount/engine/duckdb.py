"""The embedded default engine: DuckDB through Ibis, with DuckDB's own CSV reader where it
can give exact line numbers and the exact reader (`engine.reading`) where it cannot."""

from __future__ import annotations

import csv
import itertools
import os
import re
import shutil
import tempfile
import weakref
import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from playcount.engine.base import Opener, RawRead, read_one_by_one, write_parts_one_by_one
from playcount.engine.reading import (
    CsvRecords,
    is_gzip,
    malformed_reason,
    no_data_rows,
    read_columns,
    scan_lines,
    text_reader,
    unreadable,
    unreadable_at,
)

if TYPE_CHECKING:
    from playcount.aws import S3Access

_counter = itertools.count()


def duckdb_literal(uri: str) -> str:
    """`uri` as a DuckDB file reader takes it literally: each glob character (`*`, `?`, `[`, `{`)
    as a one-character class (`[*]`), so `lake[ab]` means that folder, never `lakea` and `lakeb`.
    (DuckDB has no other escape; a path without these characters is not globbed at all.)"""
    return re.sub(r"([*?\[{])", r"[\1]", uri)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


_FIELD_COUNT_ERRORS = ("MISSING COLUMNS", "TOO MANY COLUMNS")
_EXTRA = "_pc_extra"
"""The column declared past the header's: a row with a value in it has too many fields."""
_NULL = "\x01\x02playcount-null\x02\x01"
"""DuckDB's null string while reading: no real field equals it, so an empty field reads as ""
and a null marks a field that is missing (a short row, padded)."""


_MAX_PARTS = 1000
"""Parts written by one partitioned `COPY`: each is an open file until the write ends."""


def _open_files(current: int, parts: int) -> int:
    """`partitioned_write_max_open_files` for a write of `parts` parts: all of them open at once."""
    return max(current, parts + 1)


BATCH_SHARE = 8
"""`DuckDBEngine.batch_bytes` is the memory limit divided by this."""

_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _bytes(size: str) -> int:
    """A DuckDB size (`953.6 MiB`, `1GB`, `100 bytes`) in bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", size)
    if m is None or m.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {size!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _memory_limit(value: str) -> str:
    """`memory_limit` as DuckDB's `SET` takes it: a share (`50%`, which DuckDB 1.5 does not take)
    becomes that share of the machine's physical memory in bytes."""
    if not value.strip().endswith("%"):
        return value
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(machine * float(value.strip()[:-1]) / 100)}B"


def _ident(column: str) -> str:
    return column.replace('"', '""')


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
        self._owned = con is None
        self.con = con or ibis.duckdb.connect()
        self.db = self.con.con  # the raw duckdb connection, for the CSV reader
        # DuckDB draws a progress bar on stdout for long queries: stdout is for --json only
        self.db.execute("SET enable_progress_bar = false")
        if threads:
            self.db.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            # beyond it DuckDB spills to disk: the peak stays bounded whatever the data size
            self._spill = tempfile.mkdtemp(prefix="playcount-spill-")
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
            self.db.execute(f"SET memory_limit = {_sql_str(_memory_limit(memory_limit))}")
            self.db.execute(f"SET temp_directory = {_sql_str(self._spill)}")
        (limit,) = self.db.execute("SELECT current_setting('memory_limit')").fetchone()  # type: ignore[misc]
        self.batch_bytes: int | None = _bytes(limit) // BATCH_SHARE
        """The CSV bytes of stream files checked together (`Engine.batch_bytes`): an eighth of the
        memory limit, so that a batch's raw text and checked rows (about five times the CSV) fit."""

    def close(self) -> None:
        """Close the database (when the engine opened it) and remove its spill folder."""
        if self._owned:
            self.con.disconnect()
        if hasattr(self, "_cleanup"):
            self._cleanup()

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

    def drop(self, tables: list[ir.Table]) -> None:
        for t in tables:
            # the bare name (`get_name()` is `temp.main.<name>`); no IF EXISTS: a wrong name raises
            self.db.execute(f'DROP TABLE "{_ident(t.op().name)}"')

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
        sql = " UNION ALL BY NAME ".join(f"SELECT * FROM ({ibis.to_sql(t, dialect='duckdb')})" for t in tables)
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
        """Local files: one partitioned write per group of at most `_MAX_PARTS` parts (a single pass
        over `expr` for every part of the group), each part then renamed into place. A filtered
        write per part would scan all of `expr` once per part: string statistics (8-byte prefixes)
        cannot skip `streams_001.csv` while looking for `..._002.csv`.

        DuckDB keeps at most `partitioned_write_max_open_files` files open in a partitioned write
        and starts another file for a partition it had to close: the setting is raised to the
        group's size for the write, so each part is one file. Should a part still come out as
        several files, they are merged into one (a read of that part's files only, not of `expr`);
        a part without rows gets an empty file."""
        uris = list(parts.values())
        if len(parts) < 2 or any("://" in u for u in uris):
            write_parts_one_by_one(self, expr, by, parts)
            return
        keys = list(parts)
        for start in range(0, len(keys), _MAX_PARTS):
            self._write_part_group(expr, by, {k: parts[k] for k in keys[start : start + _MAX_PARTS]})

    def _write_part_group(self, expr: ir.Table, by: tuple[str, ...], parts: dict[tuple[Any, ...], str]) -> None:
        keys, uris = list(parts), list(parts.values())
        index = self.from_arrow(
            pa.table({**{f"_k{i}": [k[i] for k in keys] for i in range(len(by))}, "_pc_part": list(range(len(keys)))}),
            "parts",
        )
        sql = ibis.to_sql(expr, dialect="duckdb")
        on = " AND ".join(f'e."{c}" = i._k{n}' for n, c in enumerate(by))
        tagged = f"SELECT e.*, i._pc_part FROM ({sql}) e JOIN {index.get_name()} i ON {on}"
        tmp = tempfile.mkdtemp(prefix=".playcount-parts-", dir=os.path.commonpath([os.path.dirname(u) for u in uris]))
        (before,) = self.db.execute("SELECT current_setting('partitioned_write_max_open_files')").fetchone()  # type: ignore[misc]
        try:
            self.db.execute(f"SET partitioned_write_max_open_files = {_open_files(int(before), len(keys))}")
            self.db.execute(
                f"COPY ({tagged}) TO {_sql_str(tmp)} (FORMAT parquet, PARTITION_BY (_pc_part), OVERWRITE_OR_IGNORE)"
            )
            for i, key in enumerate(keys):
                folder = os.path.join(tmp, f"_pc_part={i}")  # listed, not globbed: the root may hold `[`
                names = sorted(n for n in os.listdir(folder) if n.endswith(".parquet")) if os.path.isdir(folder) else []
                files = [os.path.join(folder, n) for n in names]
                if len(files) == 1:
                    os.replace(files[0], parts[key])
                elif files:  # split into several: merged into one, as every part is
                    self._merge_parquet(files, parts[key])
                else:  # no rows: an empty file with the columns
                    self.db.execute(f"COPY (SELECT * FROM ({sql}) LIMIT 0) TO {_sql_str(parts[key])} (FORMAT parquet)")
        finally:
            self.db.execute(f"SET partitioned_write_max_open_files = {int(before)}")
            self.db.execute(f"DROP TABLE IF EXISTS {index.get_name()}")
            shutil.rmtree(tmp, ignore_errors=True)

    def _merge_parquet(self, files: list[str], uri: str) -> None:
        """The rows of Parquet `files` (of one partition folder) as the one file `uri`."""
        listed = "[" + ", ".join(_sql_str(duckdb_literal(f)) for f in files) + "]"
        self.db.execute(
            f"COPY (SELECT * FROM read_parquet({listed}, hive_partitioning=false)) TO {_sql_str(uri)} (FORMAT parquet)"
        )

    def read_parquet(self, uris: list[str]) -> ir.Table:
        files = "[" + ", ".join(_sql_str(duckdb_literal(u)) for u in uris) + "]"
        name = self._name("pq")
        self.db.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({files}, union_by_name=true)")
        return self.con.table(name)

    read_csvs = read_one_by_one
    """`Engine.read_csvs`: each file by `read_csv`, one after another (DuckDB's reader is parallel
    within a file)."""

    def read_csv(self, uri: str, opener: Opener, name: str, *, required: tuple[str, ...]) -> RawRead:
        """Read one CSV as text, with the 1-based line of every row.

        DuckDB parses the file; when every record is one physical line (almost always), a
        row's line follows from its position and the lines of the malformed rows. Files with
        blank lines or newlines inside quoted fields take the exact (slower) Python reader.
        Raises `SchemaError` for what rejects a file: unreadable, not UTF-8, a required column
        missing, no data rows.
        """
        cols = read_columns(opener, name, required)
        # an s3:// key with `?` is read by httpfs as options (no escape exists): the exact reader
        result = None if uri.startswith("s3://") and "?" in uri else self._read_duckdb(uri, opener, name, cols)
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
            name,
            self.con.table(out),
            self.from_arrow(malformed, "malformed"),
            cols,
            records,
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
        return bool(
            self.db.execute(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = {_sql_str(table)}").fetchone()[0]
        )  # type: ignore[index]

    def _read_python(self, opener: Opener, name: str, cols: tuple[str, ...]) -> RawRead:
        width = len(cols)
        values: list[list[str | None]] = [[] for _ in cols]
        lines: list[int] = []
        bad: list[tuple[int, str, str]] = []
        records: CsvRecords | None = None
        try:
            with opener() as stream, text_reader(stream, name) as text:
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
                raise unreadable_at(opener, name, e) from e
            raise unreadable(name, e, records.line if records else 1) from e
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
            name,
            table,
            self.from_arrow(malformed, "malformed"),
            cols,
            len(lines) + len(bad),
            self._dropper(tables=[table.get_name()]),
        )
