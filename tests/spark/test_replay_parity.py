"""The merged dimensions and `replay` on Spark: the same late-reference-data story as
tests/test_replay.py, on both engines; KPIs and the quarantine left must be identical."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import SONGS_HEADER, USERS_HEADER, cli, csv_rows, kpis, run_json, tiny_lake, write

pytestmark = pytest.mark.spark

GOOD = "".join(f"{1 + i % 3},T{1 + i % 3},2024-06-{25 + i % 2} 10:{i:02d}:00\n" for i in range(30))
LATE = "1,T4,2024-06-25 12:00:00\n4,T1,2024-06-28 09:00:00\n2,T4,not a time\n"


def _story(root: Path, *engine: str) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    lake = tiny_lake(root, {"a.csv": GOOD + LATE})
    assert run_json(lake, *engine)[0] == 0
    # a genre change in a later songs file, the late track, and the late user
    write(
        lake / "raw_data/songs/songs_late.csv",
        f"{SONGS_HEADER}\n9,T4,Dee,D,Four,40,150000,False,Jazz\n8,T2,Bob,B,Two,60,100000,True,Rock\n",
    )
    write(lake / "raw_data/users/users_late.csv", f"{USERS_HEADER}\n4,U4,22,KE,2024-01-01\n")
    code, out, err = cli("replay", "--root", str(lake), "--json", *engine)
    assert code == 0, err
    replay = json.loads(out)["replay"]
    assert (replay["replayed"], replay["still_bad"]) == (2, 1)
    quarantine = sorted(
        (r["_source_file"], r["_line"], r["_reasons"])
        for f in (lake / "bad_rows/streams").iterdir()
        for r in csv_rows(f)
    )
    return kpis(lake), quarantine


def test_replay_and_merged_dimensions_on_spark_match_duckdb(tmp_path: Path, spark_session: Any) -> None:
    duck = _story(tmp_path / "duck")
    spark = _story(tmp_path / "spark", "--engine", "spark")
    assert spark == duck
    assert duck[1] == [("a.csv", "34", "listen_time is not a timestamp")]
    genres = {(str(r["date"]), r["genre"]): r["total_streams"] for r in duck[0]["genre_kpis"]}
    assert genres[("2024-06-25", "jazz")] == 1 and genres[("2024-06-28", "pop")] == 1
