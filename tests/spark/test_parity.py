"""A DuckDB run and a Spark run of the same landing zone give the same result: KPI tables,
per-file outcomes (rows, clean, bad, status, reason, rules, warnings) and quarantined rows (the
same rows, in the same order, with the same reasons)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spark_helpers import Outcome, lab_root, outcome, rules_fired

from helpers import copy_lake_inputs, kpis, run_json

pytestmark = pytest.mark.spark

LAB = Path(__file__).resolve().parents[3] / "shared" / "lab-data"


def spark_run(root: Path, spark_session: Any) -> Outcome:
    """`playcount run --engine spark` (in-process: the session is the tests' one)."""
    code, report = run_json(root, "--engine", "spark")
    assert code == 0 and report["status"] == "succeeded", report
    return outcome(root, report)


def assert_same(spark: Outcome, duck: Outcome) -> None:
    assert spark.files() == duck.files()
    assert spark.report["dates"] == duck.report["dates"]
    assert spark.report["kpi_rows"] == duck.report["kpi_rows"]
    for table, rows in duck.kpis.items():
        assert spark.kpis[table] == rows, table
    assert spark.bad_rows == duck.bad_rows


def test_generated_adversarial_landing_zone(
    landing: Path, duckdb_outcome: Outcome, tmp_path: Path, run_date: str, spark_session: Any
) -> None:
    # several shuffle partitions: no result may depend on how Spark splits the rows
    spark_session.conf.set("spark.sql.shuffle.partitions", "3")
    try:
        spark = spark_run(copy_lake_inputs(landing, tmp_path / "lake"), spark_session)
    finally:
        spark_session.conf.set("spark.sql.shuffle.partitions", "1")
    assert_same(spark, duckdb_outcome)
    # the comparison covers what it should: every rule, every reader path, rejected files
    fired = rules_fired(duckdb_outcome)
    for rule in (
        "unknown user_id",
        "unknown track_id",
        "duplicate",
        "malformed row",
        "listen_time is not a timestamp",
        "user_age out of range [13,120]",
        "duration_ms is not an integer",
        "track_id is empty",
    ):
        assert fired[rule] > 0, rule
    status = {f["name"]: (f["status"], f["reason"] or "") for f in duckdb_outcome.files()}
    assert status["streams_001.csv.gz"][0] == status["streams_002.csv"][0] == status["odd.csv"][0] == "accepted"
    assert "line `7` is not valid UTF-8" in status["latin1.csv"][1]
    assert "no data rows" in status["header_only.csv"][1]
    assert "`listen_time`" in status["nocol.csv"][1]
    odd = {int(r["_line"]): r["_reasons"] for r in duckdb_outcome.bad_rows["streams"] if r["_source_file"] == "odd.csv"}
    assert odd[24] == odd[25] == "malformed row (expected 3 fields, found 4)"  # `x,y,z,` and `x,y,z,""`
    assert not any("malformed" in odd.get(line, "") for line in (23, 26, 27))  # quotes, stray `x`, a newline


@pytest.mark.skipif(not LAB.is_dir(), reason=f"the real lab data is not at {LAB}")
def test_real_lab_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark_session: Any) -> None:
    monkeypatch.setenv("PLAYCOUNT_RUN_DATE", "2025-01-01")  # after every user's created_at
    duck_root = lab_root(tmp_path / "duckdb", LAB)
    code, report = run_json(duck_root)
    assert code == 0 and report["status"] == "succeeded"
    duck = outcome(duck_root, report)
    spark = spark_run(lab_root(tmp_path / "spark", LAB), spark_session)
    assert_same(spark, duck)
    streams = [f for f in duck.files() if f["dataset"] == "streams"]
    assert sum(f["clean"] for f in streams) == 34_038
    assert sum(f["warnings"].get("listen_time before created_at", 0) for f in streams) > 10_000


def test_runs_on_either_engine_share_one_lake(landing: Path, tmp_path: Path, run_date: str, spark_session: Any) -> None:
    # the same three drops, one run each: on DuckDB only, and alternating engines; every run
    # recomputes its dates from all events so far, so each engine reads the other's files
    names = ["streams_001.csv.gz", "streams_002.csv", "streams_003.csv"]
    duck, mixed = (copy_lake_inputs(landing, tmp_path / lake, []) for lake in ("duck", "mixed"))
    for name, engine in zip(names, ["duckdb", "spark", "duckdb"], strict=True):
        for root, flags in ((duck, ()), (mixed, ("--engine", engine))):
            shutil.copy(landing / "raw_data/streams" / name, root / "raw_data/streams" / name)
            code, report = run_json(root, *flags)
            assert code == 0 and report["status"] == "succeeded", report
    assert kpis(mixed) == kpis(duck)
    # both engines write timestamps the same way: without zone, UTC wall time
    types = {pq.read_schema(p).field("listen_time").type for p in (mixed / "processed_data/streams").rglob("*.parquet")}
    assert types == {pa.timestamp("us")}
