"""The whole run on tiny, hand-checkable landing zones: outcomes, KPIs, exactly-once, crashes."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import csv_rows, kpis, run_json, tiny_lake, write
from playcount import pipeline
from playcount.errors import LockedError
from playcount.lake import RunLock
from playcount.settings import load_settings

D25, D26 = dt.date(2024, 6, 25), dt.date(2024, 6, 26)

A_CSV = (
    "1,T1,2024-06-25 10:00:00\n"
    "2,T1,2024-06-25 11:00:00\n"
    "1,T2,2024-06-25T23:30:00-02:00\n"  # UTC 2024-06-26 01:30
    "3,T3,2024-06-25 12:00:00\n"  # before user 3 was created: a warning only
    "9,T1,2024-06-25 13:00:00\n"  # unknown user
    "1,T9,2024-06-25 13:00:00\n"  # unknown track
    "1,T1,2024-06-25 10:00:00\n"  # duplicate of line 2
)
B_CSV = "2,T1,2024-06-25 11:00:00\n2,T3,2024-06-25 09:00:00\n"  # one repeat of a.csv, one new


@pytest.fixture(autouse=True)
def _lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    # tiny files: 3 bad rows of 7 must not reject the file
    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.5")


def test_tiny_run_outcomes_and_kpis(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A_CSV, "b.csv": B_CSV})
    code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    files = {f["name"]: f for f in report["files"]}
    a = files["a.csv"]
    assert (a["rows"], a["clean"], a["bad"], a["status"]) == (7, 4, 3, "accepted")
    assert a["rules"] == {"unknown user_id": 1, "unknown track_id": 1, "duplicate": 1}
    assert a["warnings"] == {"listen_time before created_at": 1}
    assert (files["b.csv"]["clean"], files["b.csv"]["bad"]) == (2, 0)
    assert report["dates"] == ["2024-06-25", "2024-06-26"]

    got = kpis(root)
    assert got["genre_kpis"] == [
        {
            "genre": "pop",
            "date": D25,
            "total_streams": 2,
            "unique_users": 2,
            "avg_listen_time": 200.0,
            "total_listen_time": 400.0,
            "avg_listen_time_per_user": 200.0,
        },
        {
            "genre": "rock",
            "date": D25,
            "total_streams": 2,
            "unique_users": 2,
            "avg_listen_time": 300.0,
            "total_listen_time": 600.0,
            "avg_listen_time_per_user": 300.0,
        },
        {
            "genre": "pop",
            "date": D26,
            "total_streams": 1,
            "unique_users": 1,
            "avg_listen_time": 100.0,
            "total_listen_time": 100.0,
            "avg_listen_time_per_user": 100.0,
        },
    ]
    assert got["top_genres"] == [
        {"date": D25, "genre": "pop", "total_streams": 2, "rank": 1},  # tie 2-2: genre asc
        {"date": D25, "genre": "rock", "total_streams": 2, "rank": 2},
        {"date": D26, "genre": "pop", "total_streams": 1, "rank": 1},
    ]
    assert got["top_songs"][0] == {
        "date": D25,
        "genre": "pop",
        "track_id": "T1",
        "title": 'Song, "One"',
        "artist": "Ann",
        "stream_count": 2,
        "rank": 1,
        "date#genre": "2024-06-25#pop",
    }

    bad = csv_rows(root / report["bad_rows"]["streams"])
    assert [(r["_source_file"], r["_line"], r["_reasons"]) for r in bad] == [
        ("a.csv", "6", "unknown user_id"),
        ("a.csv", "7", "unknown track_id"),
        ("a.csv", "8", "duplicate"),
    ]
    assert bad[0]["user_id"] == "9" and bad[0]["listen_time"] == "2024-06-25 13:00:00"
    # consumed files archived by run date, the landing zone empty, the ledger has both
    today = report["run_date"]
    assert sorted(p.name for p in (root / "archived" / today).iterdir()) == ["a.csv", "b.csv"]
    assert not list((root / "raw_data/streams").iterdir())
    assert len(list((root / "_playcount/ledger").iterdir())) == 2
    assert json.loads((root / f"_playcount/runs/{report['run_id']}.json").read_text())["status"] == "succeeded"
    assert not (root / "_playcount/staging").exists() or not list((root / "_playcount/staging").rglob("*.json"))


def test_nothing_to_do_and_redropped_file_is_skipped(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A_CSV})
    assert run_json(root)[0] == 0
    before = kpis(root)
    code, report = run_json(root)
    assert (code, report["status"]) == (0, "nothing_to_do")
    # the same content lands again under another name: skipped, archived, not counted twice
    archived = next((root / "archived").rglob("a.csv"))
    shutil.copy(archived, root / "raw_data/streams/a-again.csv")
    code, report = run_json(root)
    assert code == 0
    again = next(f for f in report["files"] if f["name"] == "a-again.csv")
    assert again["status"] == "skipped"
    assert kpis(root) == before
    assert not list((root / "raw_data/streams").iterdir())
    assert (archived.parent / "a-again.csv").exists()


def test_log_notifier_appends_one_json_line_per_run_that_did_something(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A_CSV})
    first = run_json(root)[1]
    second = run_json(root)[1]  # nothing to do: a report, no notification (SPEC §7)
    monkeypatch.setenv("PLAYCOUNT_NOTIFY__ON_NOTHING_TO_DO", "true")
    third = run_json(root)[1]
    lines = [json.loads(x) for x in (root / "_playcount/notifications.jsonl").read_text().splitlines()]
    assert [(n["run_id"], n["status"]) for n in lines] == [
        (first["run_id"], "succeeded"),
        (third["run_id"], "nothing_to_do"),
    ]
    assert second["status"] == "nothing_to_do" and (root / f"_playcount/runs/{second['run_id']}.json").exists()
    assert "succeeded" in lines[0]["subject"] and first["run_id"] in lines[0]["subject"]


def test_three_runs_equal_one_run(tmp_path: Path) -> None:
    bodies = {
        "a.csv": A_CSV,
        "b.csv": B_CSV,
        "c.csv": "3,T2,2024-06-25 20:00:00\n1,T3,2024-06-26 08:00:00\n",
    }
    one = tiny_lake(tmp_path / "one", bodies)
    assert run_json(one)[0] == 0
    three = tiny_lake(tmp_path / "three", {})
    for name, body in bodies.items():
        write(three / "raw_data/streams" / name, "user_id,track_id,listen_time\n" + body)
        assert run_json(three)[1]["status"] == "succeeded"
    assert kpis(three) == kpis(one)
    pop25 = kpis(one)["genre_kpis"][0]
    assert (pop25["genre"], pop25["total_streams"], pop25["unique_users"]) == ("pop", 3, 3)


def _fingerprints(folder: Path) -> list[str]:
    import hashlib

    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.csv"))


class _Killed(BaseException):
    """Stops a run dead at a stage boundary, as a kill would (not an `Exception`)."""


@pytest.mark.parametrize("stage", pipeline.STAGES[:-1])
def test_crash_at_each_stage_then_rerun_gives_identical_kpis(tmp_path: Path, stage: str) -> None:
    bodies = {"a.csv": A_CSV, "b.csv": B_CSV}
    baseline = tiny_lake(tmp_path / "baseline", bodies)
    assert run_json(baseline)[0] == 0
    root = tiny_lake(tmp_path / "crash", bodies)
    inputs = _fingerprints(root / "raw_data/streams")

    def die(at: str) -> None:
        if at == stage:
            raise _Killed(at)

    settings = load_settings(root=str(root))
    with pytest.raises(_Killed):
        pipeline.run_pipeline(pipeline.open_run(settings), after_stage=die)
    code, report = run_json(root)
    assert code == 0, report
    assert kpis(root) == kpis(baseline)
    # no input lost: every stream file is archived (or still waiting, never both, never gone)
    leftover = _fingerprints(root / "raw_data/streams")
    archived = _fingerprints(root / "archived")
    assert sorted(leftover + archived) == inputs
    assert run_json(root)[1]["status"] == "nothing_to_do"


def test_rejected_files_and_ratio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.1")
    root = tiny_lake(
        tmp_path,
        {
            "good.csv": "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 10:00:00\n",
            "noisy.csv": "1,T1,2024-06-25 11:00:00\n9,T1,2024-06-25 11:00:00\n",  # 50% bad
        },
    )
    write(root / "raw_data/streams/nocol.csv", "user_id,track\n1,T1\n")
    write(root / "raw_data/streams/empty.csv", "user_id,track_id,listen_time\n")
    code, report = run_json(root)
    assert code == 0 and report["status"] == "succeeded"
    status = {f["name"]: (f["status"], f["reason"] or "") for f in report["files"] if f["dataset"] == "streams"}
    assert status["good.csv"] == ("accepted", "")
    assert status["noisy.csv"][0] == "rejected" and "1 of 2 rows are bad" in status["noisy.csv"][1]
    assert status["nocol.csv"][0] == "rejected" and "`listen_time`" in status["nocol.csv"][1]
    assert status["empty.csv"][0] == "rejected" and "no data rows" in status["empty.csv"][1]
    rejected = root / "rejected" / report["run_id"]
    assert sorted(p.name for p in rejected.iterdir()) == [
        "empty.csv",
        "empty.csv.error.json",
        "nocol.csv",
        "nocol.csv.error.json",
        "noisy.csv",
        "noisy.csv.error.json",
    ]
    error = json.loads((rejected / "noisy.csv.error.json").read_text())
    assert error["rules"] == {"unknown user_id": 1}
    # a rejected file's rows are in neither bad_rows nor the KPIs
    assert "streams" not in report["bad_rows"]
    assert sum(r["total_streams"] for r in kpis(root)["genre_kpis"]) == 2


def test_missing_songs_fails_validation_and_says_where(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A_CSV})
    (root / "raw_data/songs/songs.csv").unlink()
    code, report = run_json(root)
    assert (code, report["status"]) == (1, "failed")
    assert "no songs file: put the songs CSV in" in report["reason"] and "raw_data/songs" in report["reason"]
    assert (root / "raw_data/streams/a.csv").exists()  # nothing moved
    assert not (root / "kpis.duckdb").exists()


def test_songs_lacking_a_column_is_rejected_and_nothing_loaded(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A_CSV})
    write(root / "raw_data/songs/songs.csv", "id,track_id,track_name,artists\n0,T1,x,y\n")
    code, report = run_json(root)
    assert code == 1
    assert "`duration_ms`" in report["reason"] and "`track_genre`" in report["reason"]
    assert (root / "rejected" / report["run_id"] / "songs.csv.error.json").exists()
    assert (root / "raw_data/streams/a.csv").exists()
    assert not (root / "kpis.duckdb").exists()


def test_every_stream_file_rejected_fails(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {})
    write(root / "raw_data/streams/x.csv", "user_id,track_id\n1,T1\n")
    code, report = run_json(root)
    assert code == 1 and "every new stream file was rejected" in report["reason"]


def test_lock_refuses_second_run_and_is_released_by_sigkill(tmp_path: Path) -> None:
    lock_path = tmp_path / "_playcount/lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import time
            from playcount.lake import RunLock
            with RunLock({str(lock_path)!r}, "holder"):
                print("locked", flush=True)
                time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match="holder"), RunLock(lock_path, "second"):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with RunLock(lock_path, "third"):
            pass
    finally:
        holder.kill()


def test_only_stale_staging_is_dropped(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": A_CSV})
    fresh = pipeline.new_run_id(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    old = "20200101T000000Z-abcdef"
    for run_id in (fresh, old):
        write(root / f"_playcount/staging/{run_id}/discover.json", "{}")
    assert run_json(root)[0] == 0
    assert (root / f"_playcount/staging/{fresh}/discover.json").exists()  # another run in flight
    assert not (root / f"_playcount/staging/{old}").exists() or not list((root / f"_playcount/staging/{old}").iterdir())
