"""Spark takes every path literally too: a lake root with glob characters reads its own files only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import kpis, run_json, tiny_lake

pytestmark = pytest.mark.spark


@pytest.mark.parametrize("name", ["lake[ab]", "lake*", "lake{a,b}"])
def test_spark_root_with_glob_characters_is_literal(tmp_path: Path, spark_session: Any, name: str) -> None:
    for sibling in ("lakea", "lakeb"):  # what a glob would match, each with more streams
        tiny_lake(tmp_path / sibling, {"s.csv": "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n"})
        assert run_json(tmp_path / sibling)[0] == 0
    root = tiny_lake(tmp_path / name, {"s[1].csv": "1,T1,2024-06-25 10:00:00\n"})
    code, report = run_json(root, "--engine", "spark")
    assert code == 0, report
    assert [(f["name"], f["clean"]) for f in report["files"] if f["dataset"] == "streams"] == [("s[1].csv", 1)]
    assert [(r["genre"], r["total_streams"]) for r in kpis(root)["genre_kpis"]] == [("pop", 1)]
