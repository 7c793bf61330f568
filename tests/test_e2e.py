"""End to end through the CLI: generated adversarial data, the real lab data, every command."""

from __future__ import annotations

import collections
import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import cli, copy_lake_inputs, csv_rows, kpis, run_json, write
from playcount.generate import cover_streams, generate_landing_zone

LAB = Path(__file__).resolve().parents[2] / "shared" / "lab-data"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate_landing_zone(out, songs=400, users=300, streams=6000, files=3, days=2, bad_ratio=0.03, seed=7)
    return out


def _data_rows(path: Path) -> int:
    """Records in a CSV, counted independently of playcount (Python's csv module)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return sum(1 for rec in csv.reader(f) if rec) - 1


def test_generated_run_conserves_every_row(generated: Path, tmp_path: Path) -> None:
    root = copy_lake_inputs(generated, tmp_path / "lake")
    inputs = {p.name: _data_rows(p) for p in (root / "raw_data/streams").iterdir()}
    code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    bad = csv_rows(root / report["bad_rows"]["streams"])
    bad_per_file = collections.Counter(r["_source_file"] for r in bad)
    for f in report["files"]:
        assert f["rows"] == f["clean"] + f["bad"], f
        if f["dataset"] == "streams":
            assert f["status"] == "accepted"
            assert f["rows"] == inputs[f["name"]]
            assert f["bad"] == bad_per_file[f["name"]] > 0
            assert sum(f["rules"].values()) >= f["bad"]
    # every rule of the contract fired somewhere
    rules = collections.Counter()
    for f in report["files"]:
        rules.update(f["rules"])
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
        assert rules[rule] > 0, rule
    # KPIs: every clean event once (cross-file repeats counted once), split by date
    events = {
        (r["user_id"], r["track_id"], r["listen_time"])
        for p in (root / "processed_data/streams").rglob("*.parquet")
        for r in pq.read_table(p).to_pylist()
    }
    clean = sum(f["clean"] for f in report["files"] if f["dataset"] == "streams")
    got = kpis(root)
    assert sum(r["total_streams"] for r in got["genre_kpis"]) == len(events) < clean
    assert {r["date"].isoformat() for r in got["genre_kpis"]} == set(report["dates"])
    for r in got["top_songs"]:
        assert 1 <= r["rank"] <= 3 and r["date#genre"] == f"{r['date']}#{r['genre']}"
    per_date = collections.Counter(r["date"] for r in got["top_genres"])
    assert set(per_date.values()) == {5}


@pytest.mark.skipif(not LAB.is_dir(), reason=f"the real lab data is not at {LAB}")
def test_real_lab_data_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    (root / "raw_data/users").mkdir(parents=True)
    shutil.copy(LAB / "users.csv", root / "raw_data/users/users.csv")
    (root / "raw_data/streams").mkdir(parents=True)
    for i in (1, 2, 3):
        shutil.copy(LAB / f"streams{i}.csv", root / f"raw_data/streams/streams{i}.csv")
    assert cover_streams(root / "raw_data/streams", root / "raw_data/songs/songs.csv") > 0
    code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    streams = [f for f in report["files"] if f["dataset"] == "streams"]
    assert [f["rows"] for f in streams] == [11346, 11346, 11346]
    assert sum(f["clean"] for f in streams) == 34038  # every user exists, every track covered
    users = next(f for f in report["files"] if f["dataset"] == "users")
    assert (users["rows"], users["bad"]) == (50000, 0)
    early = sum(f["warnings"].get("listen_time before created_at", 0) for f in streams)
    assert 16000 < early < 18000  # ~17k events precede their user's created_at: warned, kept
    assert report["dates"] == ["2024-06-25"]
    distinct = len({tuple(r) for i in (1, 2, 3) for r in list(csv.reader((LAB / f"streams{i}.csv").open()))[1:]})
    assert sum(r["total_streams"] for r in kpis(root)["genre_kpis"]) == distinct


def test_validate_command_reports_and_changes_nothing(generated: Path, tmp_path: Path) -> None:
    root = copy_lake_inputs(generated, tmp_path / "lake")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code, out, _ = cli("validate", "--root", str(root), "--json")
    assert code == 0
    val = json.loads(out)
    assert val["status"] == "passed"
    assert {f["name"] for f in val["files"]} >= {"songs.csv", "users.csv", "streams_001.csv"}
    assert all(f["rows"] == f["clean"] + f["bad"] for f in val["files"])
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_kpis_command(tmp_path: Path) -> None:
    from helpers import tiny_lake

    root = tiny_lake(tmp_path, {"a.csv": "1,T1,2024-06-25 10:00:00\n2,T3,2024-06-25 11:00:00\n"})
    assert run_json(root)[0] == 0
    code, out, _ = cli("kpis", "top-genres", "--root", str(root), "--date", "2024-06-25", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"date": "2024-06-25", "genre": "pop", "total_streams": 1, "rank": 1},
        {"date": "2024-06-25", "genre": "rock", "total_streams": 1, "rank": 2},
    ]
    code, out, _ = cli("kpis", "genres", "--root", str(root), "--genre", "Rock")
    assert code == 0 and "rock" in out and "300.00" in out
    code, _, err = cli("kpis", "genres", "--root", str(root), "--date", "25/06/2024")
    assert code == 2 and "YYYY-MM-DD" in err


def test_settings_errors_exit_2_and_name_the_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "playcount.toml", "max_bad_row_ratoi = 0.2\n")
    code, _, err = cli("run", "--root", str(tmp_path), "--config", str(cfg))
    assert code == 2 and "max_bad_row_ratoi" in err
    cfg = write(tmp_path / "playcount.toml", "max_bad_row_ratio = 2\n")
    code, _, err = cli("run", "--root", str(tmp_path), "--config", str(cfg))
    assert code == 2 and "max_bad_row_ratio" in err


def test_settings_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playcount.settings import load_settings

    cfg = write(tmp_path / "p.toml", 'top_songs_n = 4\ntop_genres_n = 7\n[store]\npath = "/x/k.duckdb"\n')
    monkeypatch.setenv("PLAYCOUNT_TOP_GENRES_N", "8")
    s = load_settings(cfg, root="/r", top_songs_n=None)
    assert (s.root, s.top_songs_n, s.top_genres_n, str(s.store_path())) == ("/r", 4, 8, "/x/k.duckdb")
    monkeypatch.setenv("PLAYCOUNT_TYPO", "1")
    with pytest.raises(Exception, match="PLAYCOUNT_TYPO"):
        load_settings(cfg)


def test_demo_and_watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("demo")
    assert code == 0, err
    assert "top genres" in out and (tmp_path / "playcount-demo/kpis.duckdb").exists()
    # watch picks up a new file on its next poll
    archived = next((tmp_path / "playcount-demo/archived").rglob("*.csv"))
    body = archived.read_text().splitlines()
    write(tmp_path / "playcount-demo/raw_data/streams/late.csv", "\n".join(body[:1] + body[1:4]) + "\n")
    # same events as already counted, different file content: processed, KPIs unchanged
    before = kpis(tmp_path / "playcount-demo")
    code, _, err = cli("watch", "--root", "playcount-demo", "--interval", "0", "--once")
    assert code == 0, err
    assert not (tmp_path / "playcount-demo/raw_data/streams/late.csv").exists()
    assert kpis(tmp_path / "playcount-demo") == before


def test_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cli("run", "--root", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err and "nope" in err


def test_spark_engine_without_the_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if it were not installed
    (tmp_path / "raw_data/streams").mkdir(parents=True)
    code, _, err = cli("run", "--root", str(tmp_path), "--engine", "spark")
    assert code == 2 and "pip install 'playcount[spark]'" in " ".join(err.split())


def test_json_report_is_plain_json_on_a_pipe(tmp_path: Path) -> None:
    """Through a real pipe (not a terminal): long reasons must not be wrapped into broken JSON."""
    import subprocess
    import sys

    from helpers import tiny_lake

    root = tiny_lake(tmp_path, {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    write(root / "raw_data/streams/" / ("x" * 60 + ".csv"), "user_id,track\n1,T1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "playcount.cli", "run", "--root", str(root), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["status"] == "succeeded"
    assert any("lacks required column(s) `track_id`, `listen_time`" in (f["reason"] or "") for f in report["files"])


def test_engine_keeps_stdout_clean_and_memory_bounded() -> None:
    """DuckDB's progress bar would interleave with --json on long runs; the memory limit bounds RSS."""
    from playcount.engine import DuckDBEngine

    db = DuckDBEngine(memory_limit="512MB").db
    progress, limit = db.execute(
        "SELECT current_setting('enable_progress_bar'), current_setting('memory_limit')"
    ).fetchone()
    assert progress is False and limit.startswith(("488", "512"))


def test_a_memory_limit_in_percent_is_a_share_of_the_machine_memory() -> None:
    """`memory_limit = "50%"` (the settings take it) is half the physical memory: DuckDB 1.5's own
    `SET memory_limit` knows no `%` and failed the run at connect."""
    from playcount.engine import DuckDBEngine

    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    engine = DuckDBEngine(memory_limit="50%")
    (limit,) = engine.db.execute("SELECT current_setting('memory_limit')").fetchone()
    number, unit = limit.split()
    got = float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    assert abs(got - machine / 2) / (machine / 2) < 0.01
    engine.close()
