"""`SparkEngine.write_parquet_parts`: every part in one Spark job, each part one file in place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from playcount.engine.duckdb import duckdb_literal
from playcount.engine.spark import SparkEngine, _common_folder

pytestmark = pytest.mark.spark

D1 = dt.date(2024, 6, 25)


def test_thirty_parts_of_three_files_in_one_job(tmp_path: Path, spark_session: Any) -> None:
    engine = SparkEngine(spark_session)
    root = tmp_path / "odd [name] *"  # a folder Spark must not read as a glob
    keys = [(f"s{f}.csv", D1 + dt.timedelta(days=d)) for f in range(3) for d in range(10)]
    at = [keys[i % len(keys)] for i in range(3000)]
    when = [dt.datetime(2024, 6, 25, 10, 0) + dt.timedelta(days=k[1].toordinal() - D1.toordinal()) for k in at]
    rows = engine.from_arrow(
        pa.table({"f": [k[0] for k in at], "date": [k[1] for k in at], "v": range(3000), "t": when})
    )
    parts = {k: str(root / f"date={k[1]}" / f"{k[0]}.parquet") for k in keys}
    for uri in parts.values():
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    Path(parts[keys[0]]).write_text("an older file, replaced")
    sc = spark_session.sparkContext
    sc.setJobGroup("parts", "write_parquet_parts")
    try:
        engine.write_parquet_parts(rows, ("f", "date"), parts)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    jobs = sc.statusTracker().getJobIdsForGroup("parts")
    assert 1 <= len(jobs) <= 3, jobs  # the write (and the broadcast of the parts), not 30 writes
    for key, uri in parts.items():
        sql = "SELECT f, date, count(*), min(t) FROM read_parquet(?) GROUP BY ALL"
        got = duckdb.sql(sql, params=[duckdb_literal(uri)]).fetchall()
        assert got == [(key[0], key[1], 100, dt.datetime.combine(key[1], dt.time(10)))], key
    # nothing left behind but the parts: one file in each date's folder per source file
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(str(Path(u).relative_to(tmp_path)) for u in parts.values())
    engine.close()


def test_common_folder() -> None:
    assert _common_folder(["/l/p/date=2024-06-01/a.parquet", "/l/p/date=2024-06-02/a.parquet"]) == "/l/p"
    assert (
        _common_folder(["/l/p/date=2024-06-01/a.parquet", "/l/p/date=2024-06-01/b.parquet"]) == "/l/p/date=2024-06-01"
    )
    s3 = ["s3://b/l/date=2024-06-10/a.parquet", "s3://b/l/date=2024-06-11/a.parquet"]
    assert _common_folder(s3) == "s3://b/l"


def test_drop_frees_a_materialized_table_and_its_view(spark_session: Any) -> None:
    engine = SparkEngine(spark_session)
    kept = engine.materialize(engine.from_arrow(pa.table({"v": [1, 2, 3]})), "kept")
    gone = engine.materialize(engine.from_arrow(pa.table({"v": [4, 5]})), "gone")
    df = spark_session.table(gone.get_name())
    assert spark_session.catalog.isCached(gone.get_name()) and df.storageLevel.useMemory
    engine.drop([gone])
    assert not spark_session.catalog.tableExists(gone.get_name())
    assert not df.storageLevel.useMemory and not df.storageLevel.useDisk  # its cache is freed
    assert spark_session.catalog.isCached(kept.get_name())
    assert engine.to_arrow(kept).column("v").to_pylist() == [1, 2, 3]
    engine.close()


def _jobs_of(spark_session: Any, group: str, call: Any) -> list[int]:
    sc = spark_session.sparkContext
    sc.setJobGroup(group, group)
    try:
        call()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return list(sc.statusTracker().getJobIdsForGroup(group))


def test_write_csv_keeps_the_order_without_sampling_the_input(tmp_path: Path, spark_session: Any) -> None:
    """A sorted file in one job per shuffle, not a sampling job first (a global sort's range split
    would compute the input once more); descending keys and nulls placed as the sort says."""
    engine = SparkEngine(spark_session)
    n = 5000
    rows = engine.from_arrow(
        pa.table({"f": [f"s{i % 7}.csv" for i in range(n)], "line": [(i * 7919) % n for i in range(n)]})
    )
    cached = engine.materialize(rows, "rows")  # as the bad rows are: from cached tables
    out = tmp_path / "out [1].csv"
    spark_session.conf.set("spark.sql.shuffle.partitions", "4")  # as on a real session: a sort has ranges
    try:
        jobs = _jobs_of(spark_session, "csv", lambda: engine.write_csv(cached.order_by(["f", "line"]), str(out)))
    finally:
        spark_session.conf.set("spark.sql.shuffle.partitions", "1")
    got = duckdb.sql("SELECT f, line FROM read_csv(?, header=true)", params=[duckdb_literal(str(out))]).fetchall()
    assert got == sorted((f"s{i % 7}.csv", (i * 7919) % n) for i in range(n))
    assert len(jobs) == 2, jobs  # the shuffle into one partition and the write (no sampling job)
    # descending, nulls first and last as asked
    t = engine.from_arrow(pa.table({"a": [2, None, 1, 3], "b": ["x", "y", None, "z"]}))
    engine.write_csv(t.order_by([t.a.desc(nulls_first=True)]), str(tmp_path / "desc.csv"))
    assert (tmp_path / "desc.csv").read_text().splitlines() == ["a,b", ",y", "3,z", "2,x", "1,"]
    engine.write_csv(t.order_by([t.b.asc(nulls_first=False)]), str(tmp_path / "asc.csv"))
    assert (tmp_path / "asc.csv").read_text().splitlines() == ["a,b", "2,x", ",y", "3,z", "1,"]
    # columns named as a hostile header may name them
    odd = engine.from_arrow(pa.table({"a`b": [2, 1], "c.d e": ["x", "y"]}))
    engine.write_csv(odd.order_by(["a`b", "c.d e"]), str(tmp_path / "odd.csv"))
    assert (tmp_path / "odd.csv").read_text().splitlines() == ["a`b,c.d e", "1,y", "2,x"]
    (tmp_path / "odd.csv").unlink()
    # no rows: the header alone, one file
    engine.write_csv(t.filter(t.a > 9).order_by("a"), str(tmp_path / "empty.csv"))
    assert (tmp_path / "empty.csv").read_text().splitlines() == ["a,b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asc.csv", "desc.csv", "empty.csv", "out [1].csv"]
    engine.close()


def test_a_sorted_table_is_materialized_in_its_order_without_sampling(spark_session: Any) -> None:
    """A materialized sorted table (the KPI tables) keeps its order for whoever reads it, computed
    without a sampling job (a global sort's range split would compute the input once more)."""
    engine = SparkEngine(spark_session)
    n = 4000
    rows = engine.materialize(
        engine.from_arrow(pa.table({"g": [i % 13 for i in range(n)], "v": [(i * 7919) % n for i in range(n)]}))
    )
    made: list[Any] = []
    spark_session.conf.set("spark.sql.shuffle.partitions", "4")
    try:
        by = rows.group_by("g").aggregate(total=rows.v.sum(), n=rows.count())
        order = [by.total.desc(), "g"]
        jobs = _jobs_of(spark_session, "sorted", lambda: made.append(engine.materialize(by.order_by(order), "s")))
        plain = _jobs_of(spark_session, "plain", lambda: engine.materialize(by, "p"))
    finally:
        spark_session.conf.set("spark.sql.shuffle.partitions", "1")
    assert len(jobs) == len(plain), (jobs, plain)  # the sort adds no job of its own
    sums: dict[int, int] = {}
    for i in range(n):
        sums[i % 13] = sums.get(i % 13, 0) + (i * 7919) % n
    want = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(r["g"], r["total"]) for r in spark_session.table(made[0].get_name()).collect()] == want
    assert [(r["g"], r["total"]) for r in engine.to_arrow(made[0]).to_pylist()] == want
    engine.close()
