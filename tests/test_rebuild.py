"""`playcount rebuild`: the KPI tables recomputed from the processed events and replaced in the
store, for all dates or the given ones; as crash-safe as a run's kpis and load stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import cli, kpis, run_json, tiny_lake
from playcount import pipeline
from playcount.settings import load_settings

A = "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n1,T3,2024-06-26 09:00:00\n"
B = "3,T1,2024-06-27 12:00:00\n2,T3,2024-06-27 13:00:00\n"


def _dates(rows: dict[str, list[dict[str, object]]]) -> set[str]:
    return {str(r["date"]) for table in rows.values() for r in table}


def _lake(tmp_path: Path) -> Path:
    root = tiny_lake(tmp_path / "lake", {"a.csv": A, "b.csv": B})
    assert run_json(root)[0] == 0
    return root


def test_rebuild_after_the_store_is_lost_gives_the_same_rows(tmp_path: Path) -> None:
    root = _lake(tmp_path)
    before = kpis(root)
    assert _dates(before) == {"2024-06-25", "2024-06-26", "2024-06-27"}
    (root / "kpis.duckdb").unlink()
    code, out, err = cli("rebuild", "--root", str(root), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["kind"], report["status"]) == ("rebuild", "succeeded")
    assert report["dates"] == ["2024-06-25", "2024-06-26", "2024-06-27"]
    assert report["kpi_rows"]["genre_kpis"] == len(before["genre_kpis"])
    assert kpis(root) == before
    assert (root / f"_playcount/runs/{report['run_id']}.json").exists()


def test_rebuild_of_one_date_replaces_that_date_only(tmp_path: Path) -> None:
    root = _lake(tmp_path)
    before = kpis(root)
    (root / "kpis.duckdb").unlink()
    code, out, err = cli("rebuild", "--root", str(root), "--date", "2024-06-26", "--json")
    assert code == 0, err
    after = kpis(root)
    assert _dates(after) == {"2024-06-26"}
    for table, rows in before.items():
        assert after[table] == [r for r in rows if str(r["date"]) == "2024-06-26"], table


def test_rebuild_fills_a_new_store_from_a_lake_run_with_another(tmp_path: Path) -> None:
    root = _lake(tmp_path)
    other = tmp_path / "other.duckdb"
    code, _, err = cli("rebuild", "--root", str(root), "--json", env={"PLAYCOUNT_STORE__PATH": str(other)})
    assert code == 0, err
    code, out, err = cli("kpis", "genres", "--root", str(root), "--json", env={"PLAYCOUNT_STORE__PATH": str(other)})
    assert code == 0, err
    assert json.loads(out) == json.loads(cli("kpis", "genres", "--root", str(root), "--json")[1])


def test_rebuild_removes_the_rows_of_a_date_without_events(tmp_path: Path) -> None:
    import shutil

    root = _lake(tmp_path)
    shutil.rmtree(root / "processed_data/streams/date=2024-06-27")  # its events gone
    assert cli("rebuild", "--root", str(root))[0] == 0
    assert _dates(kpis(root)) == {"2024-06-25", "2024-06-26"}


class _Killed(BaseException):
    pass


@pytest.mark.parametrize("stage", ["kpis", "load"])
def test_a_rebuild_killed_then_run_again_gives_the_same_store(tmp_path: Path, stage: str) -> None:
    root = _lake(tmp_path)
    before = kpis(root)
    (root / "kpis.duckdb").unlink()

    def die(at: str) -> None:
        if at == stage:
            raise _Killed(at)

    with pytest.raises(_Killed):
        pipeline.rebuild(pipeline.open_run(load_settings(root=str(root))), after_stage=die)
    assert cli("rebuild", "--root", str(root))[0] == 0
    assert kpis(root) == before


def test_rebuild_with_a_bad_date_or_a_missing_root(tmp_path: Path) -> None:
    root = _lake(tmp_path)
    assert cli("rebuild", "--root", str(root), "--date", "2024-13-01")[0] == 2
    assert cli("rebuild", "--root", str(tmp_path / "missing"))[0] == 2


def test_a_corrupt_store_names_rebuild_as_the_fix_and_rebuild_mends_it(tmp_path: Path) -> None:
    root = _lake(tmp_path)
    before = kpis(root)
    store = root / "kpis.duckdb"
    store.write_bytes(b"garbage" * 1000)
    code, _, err = cli("kpis", "genres", "--root", str(root))
    assert code == 3 and "playcount rebuild" in err, err
    store.rename(root / "kpis.broken")
    assert cli("rebuild", "--root", str(root))[0] == 0
    assert kpis(root) == before
