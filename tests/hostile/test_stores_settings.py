"""Hostile surroundings: a KPI store held open or broken, settings that once gave tracebacks, a
lake whose bookkeeping folder is blocked. Each names the file or key and the fix, never a
traceback, and nothing moves before the problem is found."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli, kpis, run_json, tiny_lake, write

GOOD = "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n"


def streams_left(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "raw_data/streams").iterdir())


def test_a_reader_holding_the_store_open_never_blocks_a_run(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    assert run_json(root)[0] == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(root / 'kpis.duckdb')!r}, read_only=True)\n"
            "print(con.execute('select count(*) from genre_kpis').fetchone()[0], flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "1"  # open: one genre row
        write(root / "raw_data/streams/b.csv", "user_id,track_id,listen_time\n3,T3,2024-06-26 10:00:00\n")
        started = time.monotonic()
        code, report = run_json(root)
        assert code == 0, report
        assert time.monotonic() - started < 30
        assert sum(r["total_streams"] for r in kpis(root)["genre_kpis"]) == 3
        assert holder.poll() is None  # the reader is still there, undisturbed
    finally:
        holder.kill()
        holder.wait()


def test_a_corrupt_store_is_a_named_error_and_the_files_stay(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    (root / "kpis.duckdb").write_bytes(b"this is not a database" * 100)
    code, out, err = cli("run", "--root", str(root))
    assert code == 3, err
    assert "kpis.duckdb" in err and "not a (complete) DuckDB file" in err and "move" in err
    assert "safe to run again" not in err and "Traceback" not in err
    assert streams_left(root) == ["a.csv"]  # nothing archived: the next run takes it again
    (root / "kpis.duckdb").rename(root / "kpis.broken")
    code, report = run_json(root)
    assert code == 0 and sum(r["total_streams"] for r in kpis(root)["genre_kpis"]) == 2


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"PLAYCOUNT_MEMORY_LIMIT": "lots"}, "memory_limit"),
        ({"PLAYCOUNT_TOP_SONGS_N": str(10**21)}, "top_songs_n"),
        ({"PLAYCOUNT_TOP_GENRES_N": "0"}, "top_genres_n"),
        ({"PLAYCOUNT_RUN_DATE": "9999-12-31"}, "run_date"),
        ({"PLAYCOUNT_SPARK_CONF": "notjson"}, "spark_conf"),
        ({"PLAYCOUNT_MIN_USER_AGE": "90", "PLAYCOUNT_MAX_USER_AGE": "30"}, "min_user_age"),
        ({"PLAYCOUNT_SETTLE_SECONDS": "-1"}, "settle_seconds"),
        ({"PLAYCOUNT_ENGINE": "pandas"}, "engine"),
    ],
)
def test_bad_settings_exit_2_and_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], key: str
) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out, err = cli("run", "--root", str(root))
    assert code == 2, err
    assert key in err and "Traceback" not in err
    assert streams_left(root) == ["a.csv"] and not (root / "_playcount").exists()


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_store_path_that_cannot_be_a_file_is_a_settings_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": GOOD})
    path = tmp_path / "dir" if where == "folder" else tmp_path / "no/such/folder/kpis.duckdb"
    if where == "folder":
        path.mkdir()
    monkeypatch.setenv("PLAYCOUNT_STORE__PATH", str(path))
    code, out, err = cli("run", "--root", str(root))
    assert code == 2, err
    assert "store.path" in err and "Traceback" not in err
    assert streams_left(root) == ["a.csv"]


@pytest.mark.parametrize("blocked", ["_playcount/ledger", "archived", "processed_data"])
def test_a_file_where_a_lake_folder_belongs_stops_the_run_before_anything_moves(tmp_path: Path, blocked: str) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    write(root / blocked, "in the way\n")
    code, out, err = cli("run", "--root", str(root))
    assert code == 3, err
    assert blocked in err and "move that file" in err and "Traceback" not in err
    assert streams_left(root) == ["a.csv"] and not (root / "kpis.duckdb").exists()
    (root / blocked).unlink()
    assert run_json(root)[0] == 0 and streams_left(root) == []
