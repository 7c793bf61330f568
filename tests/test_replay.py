"""`playcount replay` (SPEC §5): quarantined stream rows re-validated against the merged dimensions
once late songs or users arrive. Each row counts at most once however often replay runs, and a
replay killed at any point then run again gives the KPIs of one that was not.

The tiny lake: songs T1, T2 (pop), T3 (rock); users 1, 2, 3. Late: track T4 (jazz, 150 s) and
user 4. Every file has ten good rows per bad one or more (under `max_bad_row_ratio`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import SONGS_HEADER, USERS_HEADER, cli, csv_rows, kpis, run_json, tiny_lake, write

LATE_SONG = f"{SONGS_HEADER}\n9,T4,Dee,D,Four,40,150000,False,Jazz\n"
LATE_USER = f"{USERS_HEADER}\n4,U4,22,KE,2024-01-01\n"


def _good(n: int, hour: int = 10, day: int = 25) -> str:
    return "".join(f"{1 + i % 3},T{1 + i % 3},2024-06-{day} {hour:02d}:{i:02d}:00\n" for i in range(n))


# a.csv: a late track (line 12), a late user on a date nothing else has (line 13), and a row that
# is bad whatever arrives (line 14: not a timestamp, and an unknown track)
A = _good(30) + "1,T4,2024-06-25 12:00:00\n4,T1,2024-06-28 09:00:00\n2,T4,not a time\n"
# b.csv, a second run: the late track again, a row of both late keys, and a duplicate of line 2
B = _good(30, hour=14) + "3,T4,2024-06-25 15:00:00\n4,T4,2024-06-25 16:00:00\n1,T1,2024-06-25 14:00:00\n"


def _lake(root: Path) -> Path:
    lake = tiny_lake(root, {"a.csv": A})
    assert run_json(lake)[0] == 0
    write(lake / "raw_data/streams/b.csv", "user_id,track_id,listen_time\n" + B)
    assert run_json(lake)[0] == 0
    return lake


def _baseline(root: Path) -> Path:
    """The same inputs with the late reference data there from the start."""
    lake = tiny_lake(root, {"a.csv": A, "b.csv": B})
    _late(lake)
    assert run_json(lake)[0] == 0
    return lake


def _late(root: Path) -> None:
    write(root / "raw_data/songs/songs_late.csv", LATE_SONG)
    write(root / "raw_data/users/users_late.csv", LATE_USER)


def _replay(root: Path) -> dict[str, Any]:
    code, out, err = cli("replay", "--root", str(root), "--json")
    assert code == 0, err
    return json.loads(out)


def _quarantine(root: Path) -> list[tuple[str, str, str]]:
    folder = root / "bad_rows/streams"
    return sorted(
        (r["_source_file"], r["_line"], r["_reasons"])
        for f in (folder.iterdir() if folder.exists() else [])
        for r in csv_rows(f)
    )


def test_late_tracks_and_users_are_replayed_into_the_kpis_of_their_dates(tmp_path: Path) -> None:
    root = _lake(tmp_path / "lake")
    before = kpis(root)
    assert "2024-06-28" not in {str(r["date"]) for r in before["genre_kpis"]}
    assert _quarantine(root) == [
        ("a.csv", "32", "unknown track_id"),
        ("a.csv", "33", "unknown user_id"),
        ("a.csv", "34", "unknown track_id; listen_time is not a timestamp"),
        ("b.csv", "32", "unknown track_id"),
        ("b.csv", "33", "unknown user_id; unknown track_id"),
        ("b.csv", "34", "duplicate"),
    ]
    _late(root)
    report = _replay(root)
    assert (report["kind"], report["status"]) == ("replay", "succeeded")
    r = report["replay"]
    assert (r["replayed"], r["still_bad"]) == (4, 2)
    assert r["rules"] == {"listen_time is not a timestamp": 1, "duplicate": 1}
    assert r["dates"] == ["2024-06-25", "2024-06-28"]
    assert report["dates"] == ["2024-06-25", "2024-06-28"]
    # what is still bad stays, with its reasons now: T4 is known, the time is still not one
    assert _quarantine(root) == [("a.csv", "34", "listen_time is not a timestamp"), ("b.csv", "34", "duplicate")]
    jazz = [r for r in kpis(root)["genre_kpis"] if r["genre"] == "jazz"]
    assert [(str(r["date"]), r["total_streams"], r["unique_users"], r["total_listen_time"]) for r in jazz] == [
        ("2024-06-25", 3, 3, 450.0)
    ]
    assert kpis(root) == kpis(_baseline(tmp_path / "baseline"))
    summary = json.loads((root / f"_playcount/runs/{report['run_id']}.json").read_text())
    assert summary["replay"]["replayed"] == 4
    page = (root / f"_playcount/reports/{report['run_id']}.html").read_text()
    assert 'data-key="replayed">4<' in page and 'data-key="still_bad">2<' in page


def test_replay_twice_and_a_run_after_count_every_row_once(tmp_path: Path) -> None:
    root = _lake(tmp_path / "lake")
    _late(root)
    assert _replay(root)["replay"]["replayed"] == 4
    after = kpis(root)
    again = _replay(root)
    assert (again["replay"]["replayed"], again["replay"]["still_bad"], again["replay"]["dates"]) == (0, 2, [])
    assert kpis(root) == after
    code, report = run_json(root)
    assert (code, report["status"]) == (0, "nothing_to_do")
    assert kpis(root) == after


def test_replay_with_nothing_new_changes_nothing(tmp_path: Path) -> None:
    root = _lake(tmp_path / "lake")
    before, quarantined = kpis(root), _quarantine(root)
    stamp = {p: p.stat().st_mtime_ns for p in (root / "bad_rows/streams").iterdir()}
    r = _replay(root)["replay"]
    assert (r["replayed"], r["still_bad"]) == (0, 6)
    assert r["rules"] == {
        "unknown track_id": 4,
        "unknown user_id": 2,
        "listen_time is not a timestamp": 1,
        "duplicate": 1,
    }
    assert (kpis(root), _quarantine(root)) == (before, quarantined)
    assert {p: p.stat().st_mtime_ns for p in (root / "bad_rows/streams").iterdir()} == stamp  # not rewritten


def test_a_row_still_bad_keeps_its_current_reasons_only(tmp_path: Path) -> None:
    root = _lake(tmp_path / "lake")
    write(root / "raw_data/songs/songs_late.csv", LATE_SONG)  # the track arrives, the user does not
    r = _replay(root)["replay"]
    assert (r["replayed"], r["still_bad"]) == (2, 4)
    assert _quarantine(root) == [
        ("a.csv", "33", "unknown user_id"),
        ("a.csv", "34", "listen_time is not a timestamp"),
        ("b.csv", "33", "unknown user_id"),
        ("b.csv", "34", "duplicate"),
    ]
    write(root / "raw_data/users/users_late.csv", LATE_USER)  # then the user
    assert _replay(root)["replay"]["replayed"] == 2
    assert kpis(root) == kpis(_baseline(tmp_path / "baseline"))


@pytest.mark.parametrize("edit", ["field", "line", "empty", "header"])
def test_a_bad_rows_file_edited_by_hand_is_refused_not_truncated(tmp_path: Path, edit: str) -> None:
    root = _lake(tmp_path / "lake")
    [first, _] = sorted((root / "bad_rows/streams").iterdir())
    text = first.read_text()
    header, row, *rest = text.splitlines(keepends=True)
    edited, why = {
        "field": (text + "1,T4,2024-06-25 12:00:00,oops\n", "wrong number of fields"),  # a field too many
        "line": (header + row.replace(",a.csv,32,", ",a.csv,three,") + "".join(rest), "is not a line number"),
        "empty": ("", "empty"),
        "header": (header, "no data rows"),
    }[edit]
    first.write_text(edited)
    _late(root)
    code, out, err = cli("replay", "--root", str(root), "--json")
    assert code == 0, err
    r = json.loads(out)["replay"]
    assert list(r["refused"]) == [f"bad_rows/streams/{first.name}"]
    assert why in r["refused"][f"bad_rows/streams/{first.name}"]
    assert first.read_text() == edited  # left as it is
    assert r["replayed"] == 2  # the other file (b.csv's) is replayed all the same


class _Killed(BaseException):
    """A kill at that point (not an `Exception`: nothing catches it)."""


@pytest.mark.parametrize("point", ["events", "replace", "delete", "kpis", "load"])
def test_a_replay_killed_then_run_again_gives_the_kpis_of_one_that_was_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    from playcount import pipeline
    from playcount.engine.duckdb import DuckDBEngine
    from playcount.lake.local import LocalStorage
    from playcount.settings import load_settings

    root = _lake(tmp_path / "lake")
    _late(root)
    if point == "events":  # after the journal, before the events
        monkeypatch.setattr(DuckDBEngine, "write_parquet_parts", lambda *a, **k: (_ for _ in ()).throw(_Killed()))
    elif point == "replace":  # the events written, the first bad-rows file not yet replaced
        real = LocalStorage.write_bytes

        def write_bytes(self: LocalStorage, path: str, data: bytes) -> None:
            if path.startswith("bad_rows/streams/"):
                raise _Killed
            real(self, path, data)

        monkeypatch.setattr(LocalStorage, "write_bytes", write_bytes)
    elif point == "delete":  # the first file replaced, the copy it was written to not yet deleted
        real_delete = LocalStorage.delete

        def delete(self: LocalStorage, path: str) -> None:
            if path.startswith("bad_rows/streams/_replaying-"):
                raise _Killed
            real_delete(self, path)

        monkeypatch.setattr(LocalStorage, "delete", delete)

    def after(stage: str) -> None:
        if stage == {"kpis": "replay", "load": "kpis"}.get(point):
            raise _Killed

    opened = pipeline.open_run(load_settings(root=str(root)))
    with pytest.raises(_Killed):
        pipeline.replay(opened, after_stage=after)
    opened.engine.close()
    monkeypatch.undo()
    _replay(root)
    assert kpis(root) == kpis(_baseline(tmp_path / "baseline"))
    assert _quarantine(root) == [("a.csv", "34", "listen_time is not a timestamp"), ("b.csv", "34", "duplicate")]
    assert not [p for p in (root / "bad_rows/streams").iterdir() if p.name.startswith("_")]
    assert _replay(root)["replay"]["replayed"] == 0


def test_a_bad_rows_file_all_replayed_is_deleted(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": _good(20) + "1,T4,2024-06-25 12:00:00\n"})
    assert run_json(root)[0] == 0
    assert len(_quarantine(root)) == 1
    _late(root)
    assert _replay(root)["replay"]["replayed"] == 1
    assert list((root / "bad_rows/streams").iterdir()) == []


def test_replays_sigkilled_at_random_points_then_run_to_the_end_count_every_row_once(tmp_path: Path) -> None:
    import random

    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", "20261202")))
    root = _lake(tmp_path / "lake")
    _late(root)
    cmd = [sys.executable, "-m", "playcount.cli", "replay", "--root", str(root), "--json"]
    for _ in range(6):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(1.0, 6.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
    _replay(root)
    assert kpis(root) == kpis(_baseline(tmp_path / "baseline"))
    assert _quarantine(root) == [("a.csv", "34", "listen_time is not a timestamp"), ("b.csv", "34", "duplicate")]
    assert not [p for p in (root / "bad_rows/streams").iterdir() if p.name.startswith("_")]


def test_replay_waits_for_the_lock_like_a_run(tmp_path: Path) -> None:
    from playcount import pipeline
    from playcount.errors import LockedError
    from playcount.settings import load_settings

    root = _lake(tmp_path / "lake")
    opened = pipeline.open_run(load_settings(root=str(root)))
    _late(root)
    with opened.storage.lock(opened.layout.lock, "holder"), pytest.raises(LockedError, match="holder"):
        pipeline.replay(opened)
    assert len(_quarantine(root)) == 6  # nothing replayed while another run held the root


def test_a_bad_rows_file_dropped_back_into_the_landing_zone_is_read_not_a_crash(tmp_path: Path) -> None:
    # what users did before replay existed: its `_raw`, `_source_file`, `_line`, `_reasons` are
    # carried renamed (`input_reasons`), its rows checked again like any stream file's
    root = tiny_lake(tmp_path / "lake", {"a.csv": _good(20) + "1,T4,2024-06-25 12:00:00\n"})
    assert run_json(root)[0] == 0
    [bad] = (root / "bad_rows/streams").iterdir()
    _late(root)
    shutil.copy(bad, root / "raw_data/streams/again.csv")
    code, report = run_json(root)
    assert code == 0, report
    again = next(f for f in report["files"] if f["name"] == "again.csv")
    assert (again["status"], again["rows"], again["clean"], again["bad"]) == ("accepted", 1, 1, 0)
    jazz = [r for r in kpis(root)["genre_kpis"] if r["genre"] == "jazz"]
    assert [(str(r["date"]), r["total_streams"]) for r in jazz] == [("2024-06-25", 1)]
    assert _replay(root)["replay"]["replayed"] == 1  # the quarantined copy: the same event, counted once
    assert [(str(r["date"]), r["total_streams"]) for r in kpis(root)["genre_kpis"] if r["genre"] == "jazz"] == [
        ("2024-06-25", 1)
    ]


def test_the_bad_rows_of_a_run_killed_after_validate_are_not_replayed(tmp_path: Path) -> None:
    """The killed run quarantined a row of a.csv, then the user corrected a.csv: the next run
    quarantines the corrected row; replay counts that one only, never the one no longer there."""
    from playcount import pipeline
    from playcount.settings import load_settings

    wrong, fixed = _good(20) + "1,T4,2024-06-25 11:00:00\n", _good(20) + "1,T4,2024-06-25 11:30:00\n"
    root = tiny_lake(tmp_path / "lake", {"a.csv": wrong})

    def after(stage: str) -> None:
        if stage == "validate":
            raise _Killed

    opened = pipeline.open_run(load_settings(root=str(root)))
    with pytest.raises(_Killed):
        pipeline.run_pipeline(opened, after_stage=after)
    opened.engine.close()
    write(root / "raw_data/streams/a.csv", "user_id,track_id,listen_time\n" + fixed)
    assert run_json(root)[0] == 0
    assert len(list((root / "bad_rows/streams").iterdir())) == 2  # the killed run's, and this one's
    _late(root)
    report = _replay(root)
    assert (report["replay"]["replayed"], len(report["replay"]["ignored"])) == (1, 1)
    baseline = tiny_lake(tmp_path / "baseline", {"a.csv": fixed})
    _late(baseline)
    assert run_json(baseline)[0] == 0
    assert kpis(root) == kpis(baseline)
