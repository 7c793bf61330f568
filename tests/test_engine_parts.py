"""`Engine.write_parquet_parts` on DuckDB: one partitioned pass, each part renamed into place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

from playcount.engine import DuckDBEngine

D1, D2 = dt.date(2024, 6, 25), dt.date(2024, 6, 26)


def test_each_part_gets_its_rows_and_a_part_without_rows_an_empty_file(tmp_path: Path) -> None:
    engine = DuckDBEngine()
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
