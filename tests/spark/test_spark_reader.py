"""SPEC §1 file contract on Spark: `SparkEngine.read_csv` reads every file exactly as
`DuckDBEngine.read_csv` does (tests/test_reader.py pins DuckDB's reading): the same rows with
the same values and lines, the same malformed rows (text and reason), the same rejections
(message and context)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from playcount.engine import CsvSource, DuckDBEngine, Engine, RawRead
from playcount.engine.base import rows_of
from playcount.engine.spark import SparkEngine, _parse_file
from playcount.errors import SchemaError

pytestmark = pytest.mark.spark

HEADER = "user_id,track_id,listen_time\n"
FAR = "".join(f"{i},T{i},2024-06-25 10:00:00\n" for i in range(2000))
CASES: dict[str, str | bytes] = {
    "plain.csv": HEADER + "1,A,2024-06-25 10:00:00\n2,B,\n3,,x\n",
    "bom_crlf_no_final_newline.csv": "\ufeff" + HEADER.replace("\n", "\r\n") + "1,A,t1\r\n2,B,t2",
    "doubled_quotes.csv": HEADER + '1,"Ave Maria, ""Ellens Gesang III""",t\n2,"Plain",t\n',
    "extra_columns.csv": "device,user_id,track_id,listen_time,note\nphone,1,A,t1,hi\n",
    "ragged.csv": HEADER + "1,A,t1\n2,B\n3,C,t3\n4,D,t4,extra\n5,E,t5\n6\n7,G,t7\n",
    "malformed_first_and_last.csv": HEADER.replace("\n", "\r\n") + "1,A\r\n2,B,t2\r\n3,C,t3\r\n4,D\r\n",
    "blank_lines.csv": HEADER + "1,A,t1\n\n2,B,t2\n3,C\n4,D,t4\n\n",
    "newline_in_quotes.csv": HEADER + '1,"two\nlines",t\n2,x,t\n3,"three\r\nline\nname",t\n4,y\n',
    "empty_fields_too_many.csv": HEADER + '1,A,t,\n2,B,t,""\n3,C,\n4,,,\n5,E,t,,\n',
    "stray_quotes.csv": HEADER + '1,"A"x,t\n"1","A"\n2,B"c,t\n3,"C",t\n',
    "spaces_and_quoted_empty.csv": HEADER + ' 1 , A ,""\n',
    "gzip.csv.gz": HEADER + "1,A,t1\n2,B,t2\n",
    "missing_column.csv": "user_id,track,listen_time\n1,A,t1\n",
    "header_only.csv": HEADER,
    "header_and_blank_lines.csv": HEADER + "\n\n",
    "empty.csv": "",
    "not_utf8.csv": (HEADER + "1,caf\u00e9,t1\n").encode("latin-1"),
    "not_utf8_far.csv.gz": (HEADER + FAR + "9,caf\u00e9,t\n1,A,t\n").encode("latin-1"),
    "not_utf8_far.csv": (HEADER + FAR + "9,caf\u00e9,t\n1,A,t\n").encode("latin-1"),
    "replacement_character.csv": HEADER + "1,\ufffd,t\n",  # valid UTF-8: read as it is
}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def read(engine: Engine, path: Path, required: tuple[str, ...] = ("user_id", "track_id")) -> tuple[Any, ...]:
    """What reading `path` gives: its rows, or the rejection."""
    try:
        r = engine.read_csv(str(path), lambda: path.open("rb"), path.name, required=required)
    except SchemaError as e:
        return "rejected", str(e), e.context
    return result(engine, r)


def result(engine: Engine, r: RawRead | SchemaError | FileNotFoundError) -> tuple[Any, ...]:
    """`read`'s tuple of a `RawRead`, or of a rejection."""
    if isinstance(r, FileNotFoundError):
        return ("gone",)
    if isinstance(r, SchemaError):
        return "rejected", str(r), r.context
    table = r.table.filter(r.table._source_file == r.source) if r.shared else r.table  # others' rows too
    good = sorted(engine.to_arrow(table).to_pylist(), key=lambda row: row["_line"])
    bad = sorted(engine.to_arrow(r.malformed).to_pylist(), key=lambda row: row["_line"])
    return r.source, r.columns, r.rows, good, bad


@pytest.fixture
def spark(spark_session: Any) -> Any:
    engine = SparkEngine(spark_session)
    yield engine
    engine.close()


@pytest.mark.parametrize("name", CASES)
def test_spark_reads_as_duckdb(name: str, tmp_path: Path, spark: SparkEngine) -> None:
    path = write(tmp_path, name, CASES[name])
    expected = read(DuckDBEngine(threads=1), path)
    assert read(spark, path) == expected
    if name == "not_utf8_far.csv.gz":
        assert (
            expected == ("rejected", expected[1], {"file": name, "line": 2002})
            and f"`{name}` line `2002` is not valid UTF-8" in expected[1]
        )


def test_truncated_gzip_rejected_as_duckdb(tmp_path: Path, spark: SparkEngine) -> None:
    data = gzip.compress((HEADER + FAR).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    expected = read(DuckDBEngine(threads=1), path)
    assert expected[0] == "rejected"
    assert read(spark, path) == expected


def _fuzz_file(rng: random.Random) -> str:
    fields = ["1", "a", "", "", '""', '"a,b"', '"a""b"', '"a"x', 'a"b', " 1 ", '" a "', '"x\ny"']
    lines = [",".join(rng.choice(fields) for _ in range(rng.choice([1, 2, 3, 3, 3, 3, 4, 5]))) for _ in range(25)]
    end = rng.choice(["\n", "\r\n"])
    return "x,y,z" + end + end.join(lines) + rng.choice(["", end])


def test_executor_parse_agrees_with_duckdb_on_random_files(tmp_path: Path) -> None:
    # what each Spark task runs on a file's bytes (no JVM needed), against DuckDB's reading of
    # the same file: quotes, stray quotes, empty fields, ragged rows, newlines in fields, CRLF
    rng = random.Random(4)
    duck = DuckDBEngine(threads=1)
    for i in range(150):
        text = _fuzz_file(rng)
        path = write(tmp_path, f"f{i}.csv", text)
        expected = read(duck, path, required=())
        good, bad = [], []
        for kind, line, values, raw, reason, _ in _parse_file(path.read_bytes(), path.name, 3):
            if kind == 0:
                row = dict(zip(("x", "y", "z"), values, strict=True))
                good.append({**row, "_source_file": path.name, "_line": line})
            else:
                assert kind == 1, reason
                bad.append({"_source_file": path.name, "_line": line, "_raw": raw, "_reasons": reason})
        got = (path.name, ("x", "y", "z"), len(good) + len(bad), good, bad) if good or bad else expected
        assert got == expected, text


#: Files each line of which is a record: read by Spark's text source, split across tasks.
LINE_PATH = (
    "plain.csv",
    "bom_crlf_no_final_newline.csv",
    "doubled_quotes.csv",
    "extra_columns.csv",
    "ragged.csv",
    "malformed_first_and_last.csv",
    "blank_lines.csv",
    "empty_fields_too_many.csv",
    "stray_quotes.csv",
    "spaces_and_quoted_empty.csv",
    "header_only.csv",
    "header_and_blank_lines.csv",
    "replacement_character.csv",
)


@pytest.mark.parametrize("name", CASES)
def test_which_files_take_the_exact_reader(
    name: str, tmp_path: Path, spark: SparkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only gzip, a record spanning lines and what may not be UTF-8 (the text source reads a bad
    # byte as U+FFFD) are parsed by Python's csv in one task; files whose header rejects them
    # are read by no engine
    path = write(tmp_path, name, CASES[name])
    taken: list[str] = []
    exact = SparkEngine._read_exact
    monkeypatch.setattr(SparkEngine, "_read_exact", lambda self, *a: taken.append(a[1]) or exact(self, *a))
    read(spark, path)
    exact = ("newline_in_quotes.csv", "gzip.csv.gz", "not_utf8_far.csv.gz", "not_utf8_far.csv")
    assert taken == ([name] if name in exact else [])
    assert name in exact or name in LINE_PATH or name in ("missing_column.csv", "empty.csv", "not_utf8.csv")


def _lines_file(rng: random.Random) -> str:
    fields = ["1", "a", "", "", '""', '"a,b"', '"a""b"', '"a"x', 'a"b', " 1 ", '" a "', "\x00", "é", '"x"""', '""""']
    fields.append('"a"\u2028')  # Java's `$` would end a line before it
    lines = [",".join(rng.choice(fields) for _ in range(rng.choice([1, 2, 3, 3, 3, 3, 4, 5]))) for _ in range(40)]
    lines[rng.randrange(40)] = ""  # a blank line
    end = rng.choice(["\n", "\r\n", "\r"])
    return "x,y,z" + end + end.join(lines) + rng.choice(["", end, end + end])


def test_split_files_read_as_duckdb(tmp_path: Path, spark: SparkEngine) -> None:
    # splits of a few dozen bytes: a file is read by many tasks, a line cut by every boundary
    # (in its CRLF too); lines, values and malformed rows as the DuckDB engine reads them
    rng = random.Random(9)
    duck = DuckDBEngine(threads=1)
    conf = spark.session.conf
    saved = {k: conf.get(k) for k in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")}
    conf.set("spark.sql.files.maxPartitionBytes", "37")
    conf.set("spark.sql.files.openCostInBytes", "1")
    try:
        for i in range(12):
            path = write(tmp_path, f"s{i}.csv", _lines_file(rng))
            assert read(spark, path, required=()) == read(duck, path, required=()), path.read_text()
        parts = spark.session.read.format("text").load(str(path)).rdd.getNumPartitions()
        assert parts > 5  # the file really was read in pieces
    finally:
        for key, value in saved.items():
            conf.set(key, value)


def test_lines_stay_right_when_the_splits_change_after_the_read(tmp_path: Path, spark: SparkEngine) -> None:
    # a file's splits depend on the cores the cluster has when a query is planned (dynamic
    # allocation changes them between the read and the checks): the rows are numbered once
    rng = random.Random(5)
    path = write(tmp_path, "moving.csv", _lines_file(rng))
    expected = read(DuckDBEngine(threads=1), path, required=())
    conf = spark.session.conf
    saved = conf.get("spark.sql.files.maxPartitionBytes")
    conf.set("spark.sql.files.maxPartitionBytes", "41")
    try:
        r = spark.read_csv(str(path), lambda: path.open("rb"), path.name, required=())
    finally:
        conf.set("spark.sql.files.maxPartitionBytes", saved)
    good = sorted(spark.to_arrow(r.table).to_pylist(), key=lambda row: row["_line"])
    r.release()  # the checks have persisted the rows: the malformed ones are still read after it
    bad = sorted(spark.to_arrow(r.malformed).to_pylist(), key=lambda row: row["_line"])
    assert (r.source, r.columns, r.rows, good, bad) == expected


def _sources(paths: list[Path]) -> list[CsvSource]:
    return [CsvSource(str(p), lambda p=p: p.open("rb"), p.name) for p in paths]  # type: ignore[misc]


def test_files_read_together_read_as_each_alone(tmp_path: Path, spark: SparkEngine) -> None:
    # every case in one `read_csvs` (Spark: one text scan of all the plain files): each file gives
    # what reading it alone on DuckDB gives; a file gone since it was listed is its own rejection
    paths = [*(write(tmp_path, name, CASES[name]) for name in CASES), tmp_path / "gone.csv"]
    expected = [read(DuckDBEngine(threads=1), p) for p in paths]
    assert expected[-1][0] == "rejected" and "cannot be read" in expected[-1][1]
    sources = _sources(paths)
    seen: list[int] = []
    for engine in (spark, DuckDBEngine(threads=1)):
        got = engine.read_csvs(sources, required=("user_id", "track_id"), progress=seen.append)
        assert [result(engine, r) for r in got] == expected
        for r in got:
            if isinstance(r, RawRead):
                r.release()
    assert seen == [0, *range(len(sources))]  # Spark reads them together; DuckDB one by one


def test_split_files_read_together_read_as_duckdb(tmp_path: Path, spark: SparkEngine) -> None:
    # twelve files of random lines in one scan, in splits of a few dozen bytes: every file's
    # lines, values and malformed rows as the DuckDB engine reads it alone
    rng = random.Random(13)
    paths = [write(tmp_path, f"s{i}.csv", _lines_file(rng)) for i in range(12)]
    duck = DuckDBEngine(threads=1)
    expected = [read(duck, p, required=()) for p in paths]
    conf = spark.session.conf
    saved = {k: conf.get(k) for k in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")}
    conf.set("spark.sql.files.maxPartitionBytes", "37")
    conf.set("spark.sql.files.openCostInBytes", "1")
    try:
        got = spark.read_csvs(_sources(paths), required=())
    finally:
        for key, value in saved.items():
            conf.set(key, value)
    assert [result(spark, r) for r in got] == expected


def test_reading_more_files_together_takes_no_more_spark_jobs(tmp_path: Path, spark: SparkEngine) -> None:
    # one scan: the jobs a read takes do not grow with the number of plain files
    # (counted by job group: Spark keeps only the last 1,000 jobs, so a count of all of them can
    # shrink in a long test session)
    sc = spark.session.sparkContext

    def jobs(n: int) -> int:
        paths = [write(tmp_path, f"j{n}_{i}.csv", CASES["doubled_quotes.csv"]) for i in range(n)]
        group = f"read-{n}-{tmp_path.name}"
        sc.setJobGroup(group, group)
        try:
            got = spark.read_csvs(_sources(paths), required=())
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)
        assert all(isinstance(r, RawRead) and r.rows == 2 for r in got)
        return len(sc.statusTracker().getJobIdsForGroup(group))

    assert jobs(8) == jobs(2) > 0


def test_a_file_dropped_from_shared_reads_leaves_no_row_behind(tmp_path: Path, spark: SparkEngine) -> None:
    # files with the same columns share one table; the union of the reads kept (one file changed
    # while it was read and is left out) holds the kept files' rows only
    a = write(tmp_path, "a.csv", HEADER + "1,A,t1\n2,B,t2\n")
    b = write(tmp_path, "b.csv", HEADER + "3,C,t3\n")
    c = write(tmp_path, "c.csv", "track_id,user_id,listen_time\nD,4,t4\n")  # other columns: its own table
    ra, rb, rc = spark.read_csvs(_sources([a, b, c]), required=())
    assert isinstance(ra, RawRead) and isinstance(rb, RawRead) and isinstance(rc, RawRead)
    assert ra.shared and rb.shared and ra.table is rb.table and not rc.shared
    kept = rows_of(spark, [ra, rc])
    got = sorted((r["_source_file"], r["_line"], r["user_id"]) for r in spark.to_arrow(kept).to_pylist())
    assert got == [("a.csv", 2, "1"), ("a.csv", 3, "2"), ("c.csv", 2, "4")]
    for r in (ra, rb, rc):
        r.release()


def test_files_with_hostile_names_read_together_as_alone(tmp_path: Path, spark: SparkEngine) -> None:
    # glob characters, a percent escape, a comma, a quote and spaces in the names: each file is
    # read as itself (never as a pattern matching another), its rows named by its own name
    names = ["a [1].csv", "a1.csv", "b?.csv", "b.csv", "c%20d.csv", "e,f.csv", "g'h\".csv", "  i .csv"]
    paths = [write(tmp_path, n, HEADER + f"{i},T{i},t{i}\n{i},T{i}\n") for i, n in enumerate(names)]
    expected = [read(DuckDBEngine(threads=1), p, required=()) for p in paths]
    got = spark.read_csvs(_sources(paths), required=())
    assert [result(spark, r) for r in got] == expected
    assert [e[3][0]["_source_file"] for e in expected] == names  # one good row each, under its own name
    assert [e[4][0]["_line"] for e in expected] == [3] * len(names)  # and its malformed second row


@pytest.mark.parametrize(
    ("lines", "odd"),
    [
        # well-formed quoted fields (song titles): split and unquoted in the JVM
        (
            [
                '1,"River of the Sky, ""Blue River V""",t',
                '2,"",t',
                '"3","a""","""b"',
                '4,"' + "x," * 5000 + '",t',
                '5,"' + '""' * 3000 + '",t',
            ],
            [],
        ),
        # a stray quote, a field quoted in part, a quoted field followed by a character Java's `$`
        # takes for a line's end (Python's csv keeps it in the field): Python's csv, those alone
        (
            ['1,"A"x,t', "2,B,t", '3,"C",t', '4,B"c,t', ' "5",D,t', '6,T,"t"\u2028', '7,"a b"\x85,t', '8,"x",""\u2029'],
            ['1,"A"x,t', '4,B"c,t', ' "5",D,t', '6,T,"t"\u2028', '7,"a b"\x85,t', '8,"x",""\u2029'],
        ),
    ],
)
def test_quoted_lines_python_parses_only_the_odd_ones(
    lines: list[str], odd: list[str], tmp_path: Path, spark: SparkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a line of whole quoted fields gives what Python's csv would make of it without a Python
    # worker; only the other lines with a quote go through Python's csv (a UDF, which logs them)
    from pyspark.sql import functions as F

    path = write(tmp_path, "quoted.csv", HEADER + "\n".join(lines) + "\n")
    log = tmp_path / "python.txt"
    udf = F.udf

    def logged_udf(f: Any, *args: Any) -> Any:
        def logged(line: str, _f: Any = f, _log: str = str(log)) -> Any:
            with open(_log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
            return _f(line)

        return udf(logged, *args)

    monkeypatch.setattr(F, "udf", logged_udf)
    got = read(spark, path, required=())
    assert got == read(DuckDBEngine(threads=1), path, required=())
    parsed = {json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()} if log.exists() else set()
    assert parsed == set(odd)
    values = {row["user_id"]: (row["track_id"], row["listen_time"]) for row in got[3]}
    if not odd:
        assert values == {
            "1": ('River of the Sky, "Blue River V"', "t"),
            "2": (None, "t"),
            "3": ('a"', '"b'),
            "4": ("x," * 5000, "t"),
            "5": ('"' * 3000, "t"),
        }
    else:
        assert values["6"] == ("T", "t\u2028") and values["7"] == ("a b\x85", "t") and values["8"] == ("x", "\u2029")
