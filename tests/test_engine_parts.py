"""`Engine.write_parquet_parts`: one partitioned pass, each part renamed into place (DuckDB; the
first test on Spark too, tests/spark/test_spark_parts.py has Spark's own)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import playcount.engine.duckdb as duckdb_engine
from playcount.engine import DuckDBEngine, Engine

D1, D2 = dt.date(2024, 6, 25), dt.date(2024, 6, 26)
Key = tuple[str, dt.date]


def test_each_part_gets_its_rows_and_a_part_without_rows_an_empty_file(tmp_path: Path, engine: Engine) -> None:
    rows = engine.from_arrow(
        pa.table({"f": ["a.csv", "a.csv", "b.csv", "a.csv"], "date": [D1, D2, D1, D1], "v": [1, 2, 3, 4]})
    )
    parts = {
        ("a.csv", D1): str(tmp_path / "d1" / "a.parquet"),
        ("a.csv", D2): str(tmp_path / "d2" / "a.parquet"),
        ("b.csv", D1): str(tmp_path / "d1" / "b.parquet"),
        ("b.csv", D2): str(tmp_path / "d2" / "b.parquet"),  # no such rows
    }
    for uri in parts.values():
        Path(uri).parent.mkdir(exist_ok=True)
    Path(parts[("b.csv", D1)]).write_text("an older file, replaced")
    # rows of keys not asked for are not written
    engine.write_parquet_parts(rows.filter(rows.v != 99), ("f", "date"), parts)

    def read(key: tuple[str, dt.date]) -> list[tuple[object, ...]]:
        return duckdb.sql(f"SELECT f, date, v FROM '{parts[key]}' ORDER BY v").fetchall()

    assert read(("a.csv", D1)) == [("a.csv", D1, 1), ("a.csv", D1, 4)]
    assert read(("a.csv", D2)) == [("a.csv", D2, 2)]
    assert read(("b.csv", D1)) == [("b.csv", D1, 3)]
    assert read(("b.csv", D2)) == []
    # nothing left behind but the parts
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["d1", "d1/a.parquet", "d1/b.parquet", "d2", "d2/a.parquet", "d2/b.parquet"]


def _interleaved(engine: DuckDBEngine, files: int, dates: int, rows: int) -> tuple[object, dict[Key, int]]:
    """`rows` rows cycling over `files` x `dates` keys, so every flush of a partitioned write
    touches every part; and the rows expected per key."""
    keys = [(f"s{f:03}.csv", D1 + dt.timedelta(days=d)) for f in range(files) for d in range(dates)]
    at = [keys[i % len(keys)] for i in range(rows)]
    table = engine.from_arrow(pa.table({"f": [k[0] for k in at], "date": [k[1] for k in at], "v": list(range(rows))}))
    expected: dict[Key, int] = {}
    for k in at:
        expected[k] = expected.get(k, 0) + 1
    return table, expected


def _check_parts(parts: dict[Key, str], expected: dict[Key, int]) -> None:
    for key, uri in parts.items():
        got = duckdb.sql(f"SELECT f, date, count(*) FROM '{uri}' GROUP BY ALL").fetchall()
        assert got == [(key[0], key[1], expected[key])], key


def test_more_parts_than_open_files_are_written_in_one_pass_one_file_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB keeps 100 files open by default and splits a partition it had to close: 150 parts,
    # flushed in small batches that each touch every part, come out one file each all the same
    engine = DuckDBEngine()
    engine.db.execute("SET threads = 2; SET partitioned_write_flush_threshold = 2000")
    rows, expected = _interleaved(engine, 15, 10, 30_000)
    parts = {k: str(tmp_path / f"{k[0]}-{k[1]}.parquet") for k in expected}

    def refuse(*args: object) -> None:
        raise AssertionError("a part was written again, or merged")

    monkeypatch.setattr(duckdb_engine, "write_parts_one_by_one", refuse)
    monkeypatch.setattr(DuckDBEngine, "_merge_parquet", refuse)
    engine.write_parquet_parts(rows, ("f", "date"), parts)
    _check_parts(parts, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(u).name for u in parts.values())
    # the setting is back as it was
    assert engine.db.execute("SELECT current_setting('partitioned_write_max_open_files')").fetchone() == (100,)


def test_a_part_split_into_several_files_is_merged_without_scanning_the_rows_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = DuckDBEngine()
    engine.db.execute("SET threads = 2; SET partitioned_write_flush_threshold = 500")
    rows, expected = _interleaved(engine, 3, 4, 12_000)
    parts = {k: str(tmp_path / f"{k[0]}-{k[1]}.parquet") for k in expected}
    merged: list[int] = []
    merge = DuckDBEngine._merge_parquet

    def spy(self: DuckDBEngine, files: list[str], uri: str) -> None:
        merged.append(len(files))
        merge(self, files, uri)

    def refuse(*args: object) -> None:
        raise AssertionError("a part was written again from the rows")

    # one file open at a time: DuckDB closes and reopens, every part comes out in pieces
    monkeypatch.setattr(duckdb_engine, "_open_files", lambda current, parts: 1)
    monkeypatch.setattr(DuckDBEngine, "_merge_parquet", spy)
    monkeypatch.setattr(duckdb_engine, "write_parts_one_by_one", refuse)
    engine.write_parquet_parts(rows, ("f", "date"), parts)
    assert merged and all(n > 1 for n in merged)
    _check_parts(parts, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(u).name for u in parts.values())
