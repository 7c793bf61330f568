"""The Spark engine: the pure Ibis code on PySpark, on a local session, Glue, EMR or any cluster.

It has the methods of `DuckDBEngine` and gives the same results (tests/spark prove it):

- A CSV file is read by Spark's text source, split across tasks, each line a record: its line
  number comes from its split's position and its place in it, a line without a quote is split
  at its commas, a line of well-formed quoted fields is unquoted in the JVM, any other line
  with a quote is parsed by Python's `csv` on the executors (`_read_lines`).
  A gzip file, a record spanning lines or bad UTF-8 take the exact reader (`CsvRecords`) in one
  task (`_read_exact`). Either way rows, lines, malformed rows and rejections are DuckDB's.
- The events are written in one Spark job for all (source file, date) parts, partitioned by
  the part's number into a hidden folder, each part's one file then moved into place
  (`write_parquet_parts`); other outputs are single files written the same way
  (`_write_single`). The layout stays SPEC §4's (`date=D/<source-fingerprint>.parquet`) and a
  re-run replaces a file instead of adding one. (Spark's dynamic partition overwrite is not what
  this layout needs: it would replace a date's whole folder, the events of every other source
  file of that date with it.) Timestamps are written without zone, as DuckDB writes them.
- The session is switched to UTC (`spark.sql.session.timeZone`), so strings without an offset
  are UTC timestamps and dates are UTC dates, as on DuckDB.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import os
import shutil
import sys
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa

from playcount.engine.base import CsvSource, Opener, RawRead, ReadResult, write_parts_one_by_one
from playcount.engine.reading import (
    CsvRecords,
    is_gzip,
    malformed_reason,
    no_data_rows,
    read_columns,
    text_reader,
    unreadable,
    unreadable_at,
)
from playcount.errors import MissingExtraError, PlaycountError, SchemaError

__all__ = ["SparkEngine", "local_session", "SESSION_CONF"]

_counter = itertools.count()

#: Set on every session the engine runs on (Glue's and EMR's too): UTC everywhere, Parquet
#: timestamps as plain microseconds (not the legacy INT96).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

#: Optimizer rules the engine turns off on its session (added to any the session excludes).
#: `PushDownLeftSemiAntiJoin` pushes a semi join into every branch of a union: the bad rows'
#: text (the raw rows of every file, semi-joined with the bad lines) became one broadcast job
#: per file and per reader path, 6 s of a run on 20,000 events, instead of one join on top.
EXCLUDED_RULES = ("org.apache.spark.sql.catalyst.optimizer.PushDownLeftSemiAntiJoin",)
_EXCLUDED = "spark.sql.optimizer.excludedRules"

# A parsed CSV row: `_k` 0 = data row (`_v` its fields), 1 = malformed (`_raw`, reason in
# `_msg`), 2 = the file cannot be read (`_msg`, `_fix`, `_line` if known; nothing after it).
_PARSED_SCHEMA = "_k INT, _line BIGINT, _v ARRAY<STRING>, _raw STRING, _msg STRING, _fix STRING"
_GOOD, _MALFORMED, _ERROR = 0, 1, 2
_BLOCK_KEY = 1 << 40
"""A (file, split) pair as one number: file index times this plus the split's start (a byte
offset: files up to a terabyte)."""


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as e:
        raise MissingExtraError("pyspark", "spark") from e
    return pyspark


def local_session(master: str = "local[*]", conf: Mapping[str, str] | None = None) -> Any:
    """A SparkSession for this machine (or `master`): UI off, few shuffle partitions.

    Returns the active session instead when there is one (its master and static settings are
    then the ones it was started with).
    """
    _pyspark()
    from pyspark.sql import SparkSession

    settings: dict[str, str] = {
        "spark.app.name": "playcount",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # adaptive execution coalesces these further; a handful per core is plenty locally
        "spark.sql.shuffle.partitions": str(max(2, 2 * (os.cpu_count() or 1))),
        **SESSION_CONF,
    }
    if master.startswith("local"):
        # workers run this interpreter (the one with playcount installed), on this host
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    settings.update(conf or {})
    if "spark.pyspark.python" in settings:
        # what spark-submit does with it; a session started from Python only reads the variable
        os.environ["PYSPARK_PYTHON"] = settings["spark.pyspark.python"]
    builder = SparkSession.builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _backend(session: Any) -> Any:
    """Ibis's PySpark backend on `session`, with two fixes that make it agree with DuckDB:

    - `strip()` trims whitespace. Ibis writes the characters as `' \\t\\n\\r\\v\\f'`, and Spark's
      SQL reads `\\v` and `\\f` as the letters `v` and `f` (`'false'.strip()` was `'alse'`).
    - in-memory tables are registered through Arrow. Ibis goes through pandas, where a missing
      string becomes NaN and then the text `NaN`.
    """
    import sqlglot.expressions as sge
    from ibis.backends.pyspark import Backend
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    if ibis.options.pyspark is None:  # what loading it as `ibis.pyspark` does
        Backend.register_options()

    class _Compiler(PySparkCompiler):  # type: ignore[misc]
        # (simple ops are installed over the class's own methods: leave these two out)
        SIMPLE_OPS = {op: fn for op, fn in PySparkCompiler.SIMPLE_OPS.items() if op not in (ops.LStrip, ops.RStrip)}

        def _whitespace(self) -> Any:
            # space, \t \n \r literally (Spark's escapes), vertical tab and form feed by code
            return self.f.concat(sge.convert(" \t\n\r"), self.f.chr(11), self.f.chr(12))

        def visit_Strip(self, op: Any, *, arg: Any) -> Any:
            return sge.Trim(this=arg, expression=self._whitespace())

        def visit_LStrip(self, op: Any, *, arg: Any) -> Any:
            return sge.Trim(this=arg, expression=self._whitespace(), position="LEADING")

        def visit_RStrip(self, op: Any, *, arg: Any) -> Any:
            return sge.Trim(this=arg, expression=self._whitespace(), position="TRAILING")

    class _Backend(Backend):  # type: ignore[misc]
        compiler = _Compiler()

        def _register_in_memory_table(self, op: Any) -> None:
            table = op.data.to_pyarrow(op.schema)
            _dataframe(self._session, table).createOrReplaceTempView(op.name)

    return _Backend().connect(session)


def _dataframe(session: Any, table: pa.Table) -> Any:
    """A Spark DataFrame of an Arrow table, types kept (timestamps without zone are UTC)."""
    from ibis.backends.pyspark.datatypes import PySparkSchema

    schema = PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(table.schema))
    # timestamps without zone are UTC (PySpark would take them as the driver's local time)
    table = pa.Table.from_arrays(
        [
            col.cast(pa.timestamp(col.type.unit, tz="UTC"))
            if pa.types.is_timestamp(col.type) and col.type.tz is None
            else col
            for col in table.columns
        ],
        names=table.column_names,
    )
    if int(_pyspark().__version__.split(".")[0]) >= 4:
        # Arrow straight into the JVM: no Python worker when the rows are scanned
        return session.createDataFrame(table, schema=schema)
    rows = list(zip(*(col.to_pylist() for col in table.columns), strict=True)) if table.num_columns else []
    return session.createDataFrame(rows, schema=schema, verifySchema=False)  # pragma: no cover - 3.5


def _collect(df: Any, schema: pa.Schema) -> pa.Table:
    """All rows of `df` as Arrow, with the types of `schema` (Spark 4: `toArrow`; 3.5: private)."""
    if hasattr(df, "toArrow"):
        got = df.toArrow()
    else:  # pragma: no cover - PySpark 3.5 (Glue 5)
        batches = df._collect_as_arrow()
        got = pa.Table.from_batches(batches) if batches else None
    if got is None or got.num_rows == 0:
        return schema.empty_table()
    # (a zoned timestamp cast to one without zone keeps its UTC wall time: the session is UTC)
    columns = [col.cast(field.type) for field, col in zip(schema, got.columns, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)


def _is_local(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("file:")


def _hadoop(uri: str) -> str:
    """A path Spark and Hadoop take: local paths as `file:` URIs (the default file system of a
    cluster may be HDFS)."""
    return f"file://{os.path.abspath(uri)}" if _is_local(uri) else uri


def _literal(uri: str) -> str:
    """`_hadoop(uri)` for reading: glob characters escaped (file names are literal)."""
    path = _hadoop(uri)
    for ch in "\\{}[]*?":
        path = path.replace(ch, "\\" + ch)
    return path


def _plain_timestamps(df: Any) -> Any:
    """`df` with its timestamps without zone (`timestamp_ntz`), as DuckDB writes them."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    return df.select(
        *[
            F.col(f.name).cast("timestamp_ntz").alias(f.name)
            if isinstance(f.dataType, TimestampType)
            else F.col(f.name)
            for f in df.schema.fields
        ]
    )


def _common_folder(uris: list[str]) -> str:
    """The deepest folder holding every one of `uris` (local paths or URIs)."""
    return os.path.commonprefix([u.rpartition("/")[0] + "/" for u in uris]).rpartition("/")[0]


def _parse_partition(rows: Iterable[Any], name: str, width: int) -> Iterator[tuple[Any, ...]]:
    """Runs on the executors: every file of the partition (one) through `_parse_file`."""
    for row in rows:
        yield from _parse_file(bytes(row.content), name, width)


def _parse_file(content: bytes, name: str, width: int) -> Iterator[tuple[Any, ...]]:
    """One CSV file's rows as `_PARSED_SCHEMA` tuples, exactly as the DuckDB engine reads it."""
    records: CsvRecords | None = None
    try:
        with text_reader(io.BytesIO(content), name) as text:
            records = CsvRecords(text, width)
            for line, fields, raw in records:
                if raw is None:
                    yield _GOOD, line, [v if v != "" else None for v in fields], None, None, None
                else:
                    yield _MALFORMED, line, None, raw, malformed_reason(width, len(fields)), None
    except UnicodeDecodeError as e:
        err = unreadable_at(lambda: io.BytesIO(content), name, e)
        yield _ERROR, err.context.get("line"), None, None, err.message, err.fix
    except (OSError, EOFError, zlib.error) as e:
        err = unreadable(name, e)  # as the DuckDB engine's whole-file scan says it: no line
        yield _ERROR, None, None, None, err.message, err.fix
    except csv.Error as e:
        err = unreadable(name, e, records.line if records else 1)
        yield _ERROR, err.context.get("line"), None, None, err.message, err.fix


def _valid_utf8(col: Any) -> Any:
    """Whether a string column's bytes are valid UTF-8 (Spark 4's `is_valid_utf8`; on 3.5 the
    bytes against their re-encoding, where a bad byte became U+FFFD)."""
    from pyspark.sql import functions as F

    if hasattr(F, "is_valid_utf8"):
        return F.is_valid_utf8(col)
    return col.cast("binary") == F.encode(col, "UTF-8")  # pragma: no cover - PySpark 3.5 (Glue 5)


#: A line of whole RFC 4180 fields: each unquoted without a quote, or quoted with its quotes
#: doubled. Python's `csv` makes of such a line its fields unquoted, which the JVM does
#: (`_rfc_fields`); any other line with a quote is parsed by Python's `csv` (`_parse_line`).
#: Possessive quantifiers: no backtracking, and no deep recursion on a long quoted field (the
#: quoted form tried first: a field that starts with a quote is one only if it is quoted whole).
#: `\z`, not `$`: Java's `$` also matches before a last U+0085, U+2028 or U+2029, which Spark's
#: text source keeps inside a line (and Python's `csv` inside the field).
_RFC_LINE = r'^(?:"(?:[^"]++|"")*+"|[^",]*+)(?:,(?:"(?:[^"]++|"")*+"|[^",]*+))*+\z'
_RFC_FIELD = r',("(?:[^"]++|"")*+"|[^",]*+)'


def _rfc_fields(line: Any) -> Any:
    """The fields of a `_RFC_LINE` line (a string column), quoted ones unquoted, in the JVM."""
    from pyspark.sql import functions as F

    found = F.regexp_extract_all(F.concat(F.lit(","), line), F.lit(_RFC_FIELD), 1)  # each after a comma

    def unquoted(x: Any) -> Any:
        return F.when(x.startswith('"'), F.regexp_replace(x.substr(F.lit(2), F.length(x) - 2), '""', '"')).otherwise(x)

    return F.transform(found, unquoted)


def _parse_line(line: str) -> tuple[list[str], bool]:
    """Runs on the executors: one line's fields by Python's `csv`, and whether its record goes on
    past the line (a newline inside quotes: the reader took the next line too)."""
    reader = csv.reader([line + "\n", "\n"])
    fields = next(reader, [])
    return fields, reader.line_num > 1


def _release(session: Any, cached: list[Any], views: list[str]) -> None:
    for df in cached:
        df.unpersist()
    for view in views:
        session.catalog.dropTempView(view)
    cached.clear()
    views.clear()


class SparkEngine:
    """Runs the pure Ibis code on a SparkSession (Ibis's PySpark backend)."""

    name = "spark"
    batch_bytes: int | None = None  # Spark spills and splits by itself: every stream file in one batch

    def __init__(
        self, session: Any = None, *, master: str | None = None, conf: Mapping[str, str] | None = None
    ) -> None:
        """`session`: an existing SparkSession (Glue's, EMR's); else a local one (`local_session`)
        on `master` (default `local[*]`) with `conf` on top of the defaults."""
        _pyspark()
        self.session = session if session is not None else local_session(master or "local[*]", conf)
        for key, value in SESSION_CONF.items():
            self.session.conf.set(key, value)
        excluded = [r for r in (self.session.conf.get(_EXCLUDED, "") or "").split(",") if r]
        self.session.conf.set(_EXCLUDED, ",".join(dict.fromkeys([*excluded, *EXCLUDED_RULES])))
        self.con = _backend(self.session)
        self._cached: list[Any] = []
        self._views: list[str] = []
        # a long-lived session (`watch`, a notebook) must not keep every run's cached tables
        self._release = weakref.finalize(self, _release, self.session, self._cached, self._views)
        self._release.atexit = False  # the JVM may be gone by then

    def close(self) -> None:
        """Release what the engine cached and registered (not the session: it may be shared).

        Also done when the engine is garbage-collected."""
        self._release()

    # -- tables ------------------------------------------------------------------------------

    def _df(self, expr: ir.Expr) -> Any:
        """The Spark DataFrame of an Ibis expression of this engine."""
        self.con._run_pre_execute_hooks(expr)  # registers the expression's in-memory tables
        return self.session.sql(self.con.compile(expr))

    def _register(self, df: Any, prefix: str) -> ir.Table:
        name = f"_pc_{prefix}_{next(_counter)}"
        df.createOrReplaceTempView(name)
        self._views.append(name)
        return self.con.table(name)

    def _cache(self, df: Any) -> Any:
        df = df.persist()
        self._cached.append(df)
        return df

    def materialize(self, expr: ir.Table, prefix: str = "t") -> ir.Table:
        """Compute `expr` once (cached, memory and disk) and return it. A sorted `expr` is cached
        as one partition in its order (`_sorted_alone`)."""
        sorted_alone = self._sorted_alone(expr)
        df = self._cache(sorted_alone if sorted_alone is not None else self._df(expr))
        df.count()
        return self._register(df, prefix)

    def drop(self, tables: list[ir.Table]) -> None:
        for t in tables:
            name = t.get_name()
            self.session.table(name).unpersist()  # the cached plan is the view's
            self.session.catalog.dropTempView(name)
            if name in self._views:
                self._views.remove(name)

    def from_arrow(self, table: pa.Table, prefix: str = "arrow") -> ir.Table:
        return self._register(_dataframe(self.session, table), prefix)

    def to_arrow(self, expr: ir.Table) -> pa.Table:
        return _collect(self._df(expr), expr.schema().to_pyarrow())

    def scalar(self, expr: ir.Scalar) -> object:
        return self.to_arrow(expr.as_table()).column(0)[0].as_py()

    def union(self, tables: list[ir.Table], prefix: str = "union") -> ir.Table:
        """All rows of `tables`, matching columns by name (missing ones are null)."""
        if len(tables) == 1:
            return tables[0]
        dfs = [self._df(t) for t in tables]
        df = functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), dfs)
        return self._register(df, prefix)

    def empty(self, schema: dict[str, str]) -> ir.Table:
        from ibis.backends.pyspark.datatypes import PySparkSchema

        spark_schema = PySparkSchema.from_ibis(ibis.schema(schema))
        return self._register(self.session.createDataFrame([], spark_schema), "empty")

    # -- files -------------------------------------------------------------------------------

    def write_parquet(self, expr: ir.Table, uri: str) -> None:
        """One Parquet file at `uri`, replacing any.

        Timestamps are written as DuckDB writes them, without zone (UTC wall time): either
        engine reads the other's files, so a lake can change engines between runs.
        """
        self._write_single(_plain_timestamps(self._df(expr)).coalesce(1).write.format("parquet"), uri)

    def write_parquet_parts(self, expr: ir.Table, by: tuple[str, ...], parts: dict[tuple[Any, ...], str]) -> None:
        """Every part in one Spark job, each part then moved into place as one file.

        The rows are tagged with their part's number (a broadcast join with the small table of
        parts), repartitioned by it, so that all of a part is one task's, and written partitioned
        by it (`_pc_part=N/`) into a hidden folder beside the parts' common folder (as
        `_write_single` does: a kill mid-write leaves nothing among the files a stage lists).
        A part that still comes out as several files is merged from them alone; a part without
        rows gets an empty file with the columns."""
        from pyspark.sql import functions as F

        if len(parts) < 2:
            write_parts_one_by_one(self, expr, by, parts)
            return
        keys = list(parts)
        index = _dataframe(
            self.session,
            pa.table({**{f"_pc_k{i}": [k[i] for k in keys] for i in range(len(by))}, "_pc_part": range(len(keys))}),
        )
        df = self._df(expr)
        on = [df[c] == index[f"_pc_k{i}"] for i, c in enumerate(by)]
        tagged = _plain_timestamps(df.join(F.broadcast(index), on).select(*df.columns, "_pc_part"))
        parent, _, folder = _common_folder(list(parts.values())).rpartition("/")
        tmp = f"{parent}/.{folder}.parts-{uuid.uuid4().hex[:12]}.tmp"
        tagged.repartition("_pc_part").write.partitionBy("_pc_part").mode("overwrite").parquet(_hadoop(tmp))
        fs, root = self._hadoop_fs(_hadoop(tmp))
        try:
            written: dict[int, list[Any]] = {}
            for status in fs.listStatus(root):
                name = status.getPath().getName()
                if status.isDirectory() and name.startswith("_pc_part="):
                    files = [
                        f.getPath()
                        for f in fs.listStatus(status.getPath())
                        if f.getPath().getName().startswith("part-")
                    ]
                    written[int(name.removeprefix("_pc_part="))] = files
            for i, key in enumerate(keys):
                files = written.get(i, [])
                if len(files) == 1:
                    self._move(fs, files[0], parts[key])
                elif files:  # several: merged into one, as every part is
                    merged = self.session.read.parquet(*[f.toString() for f in files]).coalesce(1)
                    self._write_single(merged.write.format("parquet"), parts[key])
                else:  # no rows
                    self.write_parquet(expr.limit(0), parts[key])
        finally:
            fs.delete(root, True)

    def _move(self, fs: Any, src: Any, uri: str) -> None:
        """Hadoop file `src` to `uri`, replacing any (atomic locally; copy + delete on S3)."""
        if _is_local(uri):
            os.replace(src.toUri().getPath(), uri)
            return
        _, dst = self._hadoop_fs(uri)
        fs.delete(dst, False)
        if not fs.rename(src, dst):
            raise PlaycountError(f"could not move Spark's output to `{uri}`", fix="check write access")

    def write_csv(self, expr: ir.Table, uri: str) -> None:
        """One CSV file at `uri` (header, RFC 4180 quoting, values kept verbatim), in `expr`'s order."""
        writer = (
            self._one_partition(expr)
            .write.format("csv")
            .option("header", "true")
            .option("quote", '"')
            .option("escape", '"')
            .option("ignoreLeadingWhiteSpace", "false")
            .option("ignoreTrailingWhiteSpace", "false")
        )
        self._write_single(writer, uri)

    def _one_partition(self, expr: ir.Table) -> Any:
        """The DataFrame of `expr` as one partition, in `expr`'s order (a file's rows): sorted
        there when `expr` ends in a sort (`_sorted_alone`), else its partitions joined in order."""
        sorted_alone = self._sorted_alone(expr)
        return sorted_alone if sorted_alone is not None else self._df(expr).coalesce(1)

    def _sorted_alone(self, expr: ir.Table) -> Any | None:
        """When `expr` ends in a sort on its columns: its input moved to one partition and sorted
        there (None otherwise).

        A global sort (`ORDER BY`) first samples its input to split it into ranges, a job that
        computes the whole input once more, only for the ranges to be put back into one
        partition by whoever wants the rows in order. The sorted tables of a run are small or
        go to one file anyway (the KPI tables, bad rows): one task sorts them. Measured at a
        million events: a bad-rows file 1.8-2.0 s against 2.7-4.6 s; the KPI tables of 30 dates
        materialised about 0.8 s faster each."""
        from pyspark.sql import functions as F

        op = expr.op()
        if not (
            isinstance(op, ops.Sort) and all(isinstance(k.arg, ops.Field) and k.arg.rel == op.parent for k in op.keys)
        ):
            return None
        order = []
        for k in op.keys:
            col = F.col("`" + k.arg.name.replace("`", "``") + "`")  # any name, taken literally
            if k.ascending:
                order.append(col.asc_nulls_first() if k.nulls_first else col.asc_nulls_last())
            else:
                order.append(col.desc_nulls_first() if k.nulls_first else col.desc_nulls_last())
        return self._df(op.parent.to_expr()).repartition(1).sortWithinPartitions(*order)

    def _write_single(self, writer: Any, uri: str) -> None:
        """Write a one-partition DataFrame into a hidden folder, then move its part file to `uri`
        (atomic locally; copy + delete on object stores) and drop the folder.

        The folder is beside `uri`'s folder, not in it: a run killed mid-write leaves nothing
        among the files a stage lists (the events of a date, say).
        """
        parent, _, base = uri.rstrip("/").rpartition("/")
        grandparent, _, folder = parent.rpartition("/")
        tmp = f"{grandparent}/.{folder}.{base}.{uuid.uuid4().hex[:12]}.tmp"
        writer.mode("overwrite").save(_hadoop(tmp))
        if _is_local(uri):
            try:
                parts = sorted(p for p in os.listdir(tmp) if p.startswith("part-"))
                if len(parts) != 1:
                    raise PlaycountError(f"Spark wrote {len(parts)} files for `{uri}`, expected one")
                os.replace(os.path.join(tmp, parts[0]), uri)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        fs, folder = self._hadoop_fs(tmp)
        try:
            parts = [s.getPath() for s in fs.listStatus(folder) if s.getPath().getName().startswith("part-")]
            if len(parts) != 1:
                raise PlaycountError(f"Spark wrote {len(parts)} files for `{uri}`, expected one")
            self._move(fs, parts[0], uri)
        finally:
            fs.delete(folder, True)

    def _hadoop_fs(self, uri: str) -> tuple[Any, Any]:
        jvm = self.session.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self.session.sparkContext._jsc.hadoopConfiguration()), path

    def read_parquet(self, uris: list[str]) -> ir.Table:
        """The rows of Parquet files, columns matched by name (missing ones are null)."""
        df = self.session.read.option("mergeSchema", "true").parquet(*[_literal(u) for u in uris])
        return self._register(df, "pq")

    def read_csv(self, uri: str, opener: Opener, name: str, *, required: tuple[str, ...]) -> RawRead:
        """Read one CSV as text, with the 1-based line of every row (see the module docstring).

        The header is read here (through `opener`). A plain file is read by Spark's own text
        source, split across tasks (`_read_lines`); a gzip file, or one `_read_lines` turns down,
        is parsed by the exact reader in one task (`_read_exact`). Raises `SchemaError` as the
        DuckDB engine does.
        """
        cols = read_columns(opener, name, required)
        result = None if is_gzip(name) else self._read_lines([(uri, name, cols)])[0]
        if isinstance(result, SchemaError):
            raise result
        return result if result is not None else self._read_exact(uri, name, cols)

    def read_csvs(
        self,
        sources: list[CsvSource],
        *,
        required: tuple[str, ...],
        progress: Callable[[int], None] | None = None,
    ) -> list[ReadResult]:
        """`read_csv` of every source, the plain files in one text scan (`_read_lines`): a few
        Spark jobs for all of them, not a few per file; the others by the exact reader."""
        if progress is not None and sources:
            progress(0)
        results: list[ReadResult | None] = [None] * len(sources)
        columns: dict[int, tuple[str, ...]] = {}
        for i, s in enumerate(sources):
            try:
                columns[i] = read_columns(s.opener, s.name, required)
            except (SchemaError, FileNotFoundError) as e:
                results[i] = e
        plain = [i for i in columns if not is_gzip(sources[i].name)]
        lines = self._read_lines([(sources[i].uri, sources[i].name, columns[i]) for i in plain])
        for i, line_read in zip(plain, lines, strict=True):
            results[i] = line_read
        out: list[ReadResult] = []
        for i, got in enumerate(results):
            if got is not None:
                out.append(got)
                continue
            try:
                out.append(self._read_exact(sources[i].uri, sources[i].name, columns[i]))
            except (SchemaError, FileNotFoundError) as e:
                out.append(e)
        return out

    def _read_lines(self, files: list[tuple[str, str, tuple[str, ...]]]) -> list[RawRead | SchemaError | None]:
        """Files (uri, name, columns) as lines of Spark's text source (in the JVM, split across
        tasks), each line a record, all files in one scan: per file its `RawRead`, its
        `SchemaError` (no data rows), or None when the lines cannot give what the exact reader
        gives (the exact reader then).

        A line's number comes from where it is: Spark numbers the rows of each task
        (`monotonically_increasing_id`: consecutive within a split) and says which split of the
        file a row is from (`_metadata.file_block_start`); one small job counts the lines of each
        (file, split), and a line is the lines of its file's splits before its own plus its place
        in it. The files are scanned as a union of one text source each, tagged with their index,
        so that no task mixes two files. The text source ends lines at LF, CRLF and a lone CR, as
        Python's universal newlines do.

        A line without a quote is split at its commas (exactly what Python's `csv` makes of it);
        a line of well-formed RFC 4180 fields (`_RFC_LINE`: song titles with commas) is split and
        unquoted in the JVM, as Python's `csv` would; any other line with a quote (a stray quote,
        a quoted field going on past the line) is parsed by Python's `csv` on the executors, a
        Python worker started only for those. Turned down: a file with a record that spans lines (a
        newline inside quotes: lines are then not records) and a file that is not valid UTF-8
        (the text source keeps a line's bytes as they are; the exact reader then rejects the file
        and names the line).

        Files with the same columns share one table of rows (`RawRead.shared`): a filter of the
        cache per file would scan all of it once per file (Spark does not skip the other files'
        cached batches). The cache is released when every file's `RawRead` has been.
        """
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        out: list[RawRead | SchemaError | None] = [None] * len(files)
        try:
            scans = []
            for k, (uri, _, _) in enumerate(files):
                try:
                    text = self.session.read.format("text").load(_literal(uri))
                except AnalysisException:  # gone since the header was read: the exact reader says so
                    continue
                scans.append(
                    text.select(
                        F.col("value").alias("_v"),
                        F.col("_metadata.file_block_start").alias("_b"),
                        F.lit(k).alias("_fi"),
                    )
                )
            if not scans:
                return out
            # cached: the numbering must be the one the counts were taken on (the splits of a
            # file depend on the cores the cluster has at the time, which dynamic allocation
            # changes; a cached partition that is lost is recomputed from the same split)
            lined = self._cache(
                functools.reduce(lambda a, b: a.unionByName(b), scans).select(
                    "_v", "_b", "_fi", F.monotonically_increasing_id().alias("_id")
                )
            )
            value = F.col("_v")
            stats = (
                lined.groupBy("_fi", "_b")
                .agg(
                    F.count(F.lit(1)).alias("n"),
                    F.min("_id").alias("first"),
                    F.sum((value == "").cast("int")).alias("blank"),
                    F.sum(value.contains('"').cast("int")).alias("quoted"),
                    F.sum((value.contains('"') & ~value.rlike(_RFC_LINE)).cast("int")).alias("odd"),
                    F.max((~_valid_utf8(value)).cast("int")).alias("not_utf8"),
                )
                .collect()
            )
        except AnalysisException:  # no `_metadata` (old Spark): the exact reader
            return out
        cached = [lined]
        users = [0]

        def release() -> None:
            users[0] -= 1
            if users[0] <= 0:
                for df in cached:
                    df.unpersist()

        blocks: dict[int, list[Any]] = {}
        for row in stats:
            blocks.setdefault(row["_fi"], []).append(row)
        # line of a row = rows of its file's splits before its own + its place in its split + 1
        base: dict[int, int] = {}
        lines: dict[int, int] = {}
        for k, rows in blocks.items():
            if any(row["not_utf8"] for row in rows):
                continue
            before = 0
            for row in sorted(rows, key=lambda r: r["_b"]):
                base[k * _BLOCK_KEY + row["_b"]] = before - row["first"] + 1
                before += row["n"]
            lines[k] = before
        ok = sorted(lines)
        key = F.col("_fi").cast("long") * F.lit(_BLOCK_KEY) + F.col("_b")
        starts = F.create_map(*itertools.chain.from_iterable((F.lit(b), F.lit(n)) for b, n in base.items()))
        numbered = lined.filter(F.col("_fi").isin(ok)).select(
            "_v", "_fi", (F.col("_id") + F.element_at(starts, key)).alias("_line")
        )
        quote, rfc = F.col("_v").contains('"'), F.col("_v").rlike(_RFC_LINE)
        fields = F.split("_v", ",", -1)
        if any(row["quoted"] for row in stats if row["_fi"] in lines):
            fields = F.when(quote, _rfc_fields(F.col("_v"))).otherwise(fields)
        odd = any(row["odd"] for row in stats if row["_fi"] in lines)
        in_jvm = numbered.filter(~quote | rfc) if odd else numbered
        parts = [in_jvm.select("_v", "_fi", "_line", fields.alias("_f"), F.lit(False).alias("_spans"))]
        if odd:
            # the rest (stray quotes, a quoted field that goes on past the line): Python's csv
            parse = F.udf(_parse_line, "struct<f: array<string>, spans: boolean>")
            quoted = numbered.filter(quote & ~rfc).withColumn("_p", parse("_v"))
            quoted = self._cache(
                quoted.select("_v", "_fi", "_line", F.col("_p.f").alias("_f"), F.col("_p.spans").alias("_spans"))
            )
            cached.append(quoted)
            spans = {row["_fi"] for row in quoted.filter("_spans").select("_fi").distinct().collect()}
            ok = [k for k in ok if k not in spans]
            parts.append(quoted)
        for k in list(ok):
            blank = sum(row["blank"] for row in blocks[k])
            if lines[k] - 1 - blank <= 0:  # lines less the header and blanks
                out[k] = no_data_rows(files[k][1])
                ok.remove(k)
        if not ok:
            users[0] = 0
            release()
            return out
        widths = F.create_map(*itertools.chain.from_iterable((F.lit(k), F.lit(len(files[k][2]))) for k in ok))
        # the reason's text around the two counts (each file has its own width)
        head, tail = malformed_reason(-7, -9).split("-7", 1)
        middle, end = tail.split("-9", 1)
        records = functools.reduce(lambda a, b: a.unionByName(b), parts).filter(
            (F.col("_line") > 1) & (F.col("_v") != "") & F.col("_fi").isin(ok)
        )
        n = F.size("_f")
        width = F.element_at(widths, F.col("_fi"))
        # computed now, from the lines as counted: it is used after `release` (the bad-rows file)
        malformed = self._cache(
            records.filter(n != width).select(
                "_fi",
                F.col("_line").cast("bigint").alias("_line"),
                F.col("_v").alias("_raw"),
                F.concat(F.lit(head), width.cast("string"), F.lit(middle), n.cast("string"), F.lit(end)).alias(
                    "_reasons"
                ),
            )
        )
        malformed.count()
        users[0] = len(ok)
        groups: dict[tuple[str, ...], list[int]] = {}
        for k in ok:  # files with the same columns share one table: one scan of the cache for all
            groups.setdefault(files[k][2], []).append(k)
        for cols, group in groups.items():
            names = F.create_map(*itertools.chain.from_iterable((F.lit(k), F.lit(files[k][1])) for k in group))
            mine = F.col("_fi").isin(group)
            good = self._register(
                records.filter(mine & (n == len(cols))).select(
                    *[F.nullif(F.col("_f")[i], F.lit("")).alias(c) for i, c in enumerate(cols)],
                    F.element_at(names, F.col("_fi")).alias("_source_file"),
                    F.col("_line").cast("bigint").alias("_line"),
                ),
                "raw",
            )
            for k in group:
                name = files[k][1]
                bad = malformed.filter(F.col("_fi") == k).select(
                    F.lit(name).alias("_source_file"), "_line", "_raw", "_reasons"
                )
                rows = lines[k] - 1 - sum(row["blank"] for row in blocks[k])
                out[k] = RawRead(
                    name, good, self._register(bad, "malformed"), cols, rows, release, shared=len(group) > 1
                )
        return out

    def _read_exact(self, uri: str, name: str, cols: tuple[str, ...]) -> RawRead:
        """The exact reader's parse of the whole file (`_parse_file`) in one Spark task: its bytes
        from Spark's `binaryFile` source, the parse cached."""
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        try:
            files = self.session.read.format("binaryFile").load(_literal(uri)).select("content")
        except AnalysisException as e:  # gone since the header was read
            raise SchemaError(
                f"`{name}` cannot be read: {str(e).splitlines()[0]}", fix="drop the file again", file=name
            ) from e
        parse = functools.partial(_parse_partition, name=name, width=len(cols))
        parsed = self._cache(self.session.createDataFrame(files.rdd.mapPartitions(parse), _PARSED_SCHEMA))
        stats = (
            parsed.groupBy("_k")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.first("_line").alias("line"),
                F.first("_msg").alias("msg"),
                F.first("_fix").alias("fix"),
            )
            .collect()
        )
        by_kind = {row["_k"]: row for row in stats}
        if _ERROR in by_kind:
            err = by_kind[_ERROR]
            raise SchemaError(err["msg"], fix=err["fix"], file=name, line=err["line"])
        good = by_kind[_GOOD]["n"] if _GOOD in by_kind else 0
        bad = by_kind[_MALFORMED]["n"] if _MALFORMED in by_kind else 0
        if good + bad == 0:
            raise no_data_rows(name)
        v = F.col("_v")
        table = parsed.filter(F.col("_k") == _GOOD).select(
            *[v[i].alias(c) for i, c in enumerate(cols)], F.lit(name).alias("_source_file"), "_line"
        )
        malformed = parsed.filter(F.col("_k") == _MALFORMED).select(
            F.lit(name).alias("_source_file"), "_line", "_raw", F.col("_msg").alias("_reasons")
        )
        return RawRead(name, self._register(table, "raw"), self._register(malformed, "malformed"), cols, good + bad)
