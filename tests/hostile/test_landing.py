"""Hostile landing zones (issue: nothing lost on real landing zones): each test is one class of
input a real lake gets, and asserts what a person can check: rows read = clean + bad, where each
file ended up (archived, rejected, left), the KPI totals, the exit code, and no traceback."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import STREAMS_HEADER, cli, csv_rows, kpis, run_json, tiny_lake, write
from playcount import pipeline
from playcount.settings import load_settings

GOOD = "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n3,T3,2024-06-25 12:00:00\n"


def total_streams(root: Path) -> int:
    return sum(r["total_streams"] for r in kpis(root)["genre_kpis"])


def conserved(report: dict[str, Any]) -> None:
    for f in report["files"]:
        assert f["rows"] == f["clean"] + f["bad"], f


def landing(root: Path) -> list[str]:
    base = root / "raw_data/streams"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() or p.is_symlink())


@pytest.fixture(autouse=True)
def _lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYCOUNT_MAX_BAD_ROW_RATIO", "0.9")


# -- literal paths: a root or file name with glob characters means exactly itself ----------------


@pytest.mark.parametrize("name", ["lake[ab]", "lake*", "lake?", "lake{a,b}", "it's a [lake]"])
def test_root_with_glob_characters_is_literal(tmp_path: Path, name: str) -> None:
    # siblings a glob would match, each with more streams than the lake itself
    for sibling in ("lakea", "lakeb", "lakeX"):
        tiny_lake(tmp_path / sibling, {"s.csv": GOOD * 3})
        assert run_json(tmp_path / sibling)[0] == 0
    root = tiny_lake(tmp_path / name, {"s.csv": "1,T1,2024-06-25 10:00:00\n"})
    code, report = run_json(root)
    assert code == 0, report
    assert report["files"][-1]["clean"] == 1
    assert total_streams(root) == 1
    # a second run over the same root reads its own KPI parts only
    write(root / "raw_data/streams/t.csv", f"{STREAMS_HEADER}\n2,T2,2024-06-25 11:00:00\n")
    assert run_json(root)[0] == 0
    assert total_streams(root) == 2


@pytest.mark.parametrize("name", ["s[1].csv", "*.csv", "?.csv", "{a,b}.csv", "it's.csv", "with space.csv"])
def test_file_names_with_glob_characters_are_literal(tmp_path: Path, name: str) -> None:
    root = tiny_lake(
        tmp_path / "lake",
        {name: "1,T1,2024-06-25 07:00:00\n", "s1.csv": GOOD, "a.csv": GOOD.replace(":00:00", ":30:00")},
    )
    code, report = run_json(root)
    assert code == 0, report
    conserved(report)
    files = {f["name"]: f for f in report["files"] if f["dataset"] == "streams"}
    assert files[name]["rows"] == 1 and files["s1.csv"]["rows"] == 3
    assert total_streams(root) == 7
    assert landing(root) == []


# -- streams_prefix --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["", "/", "raw_data", "raw_data/songs", "raw_data/users/x", "archived/in", "..", "_playcount"]
)
def test_streams_prefix_that_overlaps_is_a_settings_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    root = tiny_lake(tmp_path / "lake", {"s.csv": GOOD})
    monkeypatch.setenv("PLAYCOUNT_STREAMS_PREFIX", prefix)
    code, out, err = cli("run", "--root", str(root))
    assert code == 2, err
    assert "streams_prefix" in err and "Traceback" not in err
    assert (root / "raw_data/songs/songs.csv").exists() and not (root / "rejected").exists()


# -- values that once stopped a run ------------------------------------------------------------------


def test_impossible_offsets_and_years_are_bad_rows_and_the_run_goes_on(tmp_path: Path) -> None:
    body = (
        "1,T1,2024-06-25T10:00:00+99:99\n"  # 2: not an offset
        "1,T1,2024-06-25T10:00:00+14:60\n"  # 3: minutes past 59
        "1,T1,2024-06-25T10:00:00+15:00\n"  # 4: hours past 14
        "1,T1,0000-01-01 00:00:00\n"  # 5: year 0
        "1,T1,0001-01-01T00:30:00+01:00\n"  # 6: 1 BC in UTC
        "1,T1,9999-12-31T23:30:00-01:00\n"  # 7: year 10000 in UTC
        "1,T1,2024-06-25T10:00:00+14:00\n"  # 8: the largest real offset: 2024-06-24 20:00 UTC
        "2,T2,2024-06-25T10:00:00-12:30\n"  # 9: 22:30 UTC
    )
    root = tiny_lake(tmp_path, {"odd.csv": body, "good.csv": GOOD})
    code, report = run_json(root)
    assert code == 0, report
    conserved(report)
    odd = next(f for f in report["files"] if f["name"] == "odd.csv")
    assert (odd["rows"], odd["clean"], odd["bad"]) == (8, 2, 6)
    assert odd["rules"] == {"listen_time is not a timestamp": 6}
    assert [r["_line"] for r in csv_rows(root / report["bad_rows"]["streams"])] == ["2", "3", "4", "5", "6", "7"]
    assert report["dates"] == ["2024-06-24", "2024-06-25"]
    assert total_streams(root) == 5
    # and the next run is not blocked by anything left behind
    assert run_json(root)[1]["status"] == "nothing_to_do"


def test_years_out_of_range_in_users_are_bad_rows(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"s.csv": GOOD})
    with (root / "raw_data/users/users.csv").open("a") as f:
        f.write("4,U4,30,NG,0000-01-01\n5,U5,30,NG,10000-01-01\n")
    code, report = run_json(root)
    assert code == 0, report
    users = next(f for f in report["files"] if f["dataset"] == "users")
    assert users["rules"] == {"created_at is not a date": 2}


@pytest.mark.parametrize(
    "extra", ["_source_file", "_line", "_reasons", "_raw", "_pc_extra", "_t_user_id", "_pre", "date", "genre"]
)
def test_input_columns_with_internal_names_are_carried_renamed(tmp_path: Path, extra: str) -> None:
    root = tiny_lake(tmp_path, {})
    write(
        root / "raw_data/streams/x.csv",
        f"{STREAMS_HEADER},{extra}\n1,T1,2024-06-25 10:00:00,a\n9,T1,2024-06-25 10:00:00,b\n",
    )
    code, report = run_json(root)
    assert code == 0, report
    x = report["files"][-1]
    assert (x["rows"], x["clean"], x["bad"]) == (2, 1, 1)
    [bad] = csv_rows(root / report["bad_rows"]["streams"])
    renamed = "input" + extra if extra.startswith("_") else "input_" + extra
    assert bad[renamed] == "b" and bad["_line"] == "3" and bad["_source_file"] == "x.csv"
    assert total_streams(root) == 1


def test_a_bad_rows_file_dropped_back_does_not_crash(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"x.csv": "9,T1,2024-06-25 10:00:00\n1,T1,2024-06-25 10:00:00\n"})
    report = run_json(root)[1]
    bad = root / report["bad_rows"]["streams"]
    write(root / "raw_data/streams/again.csv", bad.read_text())
    code, again = run_json(root)
    # its only row is still bad: the file is rejected whole, with the reason, and nothing crashes
    assert code == 1, again
    f = again["files"][-1]
    assert (f["name"], f["status"], f["rows"], f["bad"], f["rules"]) == (
        "again.csv",
        "rejected",
        1,
        1,
        {"unknown user_id": 1},
    )
    assert (root / f"rejected/{again['run_id']}/again.csv").exists()


def test_huge_field_is_a_bad_row_in_both_readers(tmp_path: Path) -> None:
    huge = "T" * 200_000
    # the same rows: once plain (DuckDB's reader), once with a blank line (the exact reader)
    root = tiny_lake(
        tmp_path,
        {
            "fast.csv": f"1,{huge},2024-06-25 10:00:00\n{GOOD}",
            "exact.csv": f"1,{huge},2024-06-25 10:00:00\n\n{GOOD}",
        },
    )
    code, report = run_json(root)
    assert code == 0, report
    files = {f["name"]: f for f in report["files"] if f["dataset"] == "streams"}
    for name in ("fast.csv", "exact.csv"):
        assert (files[name]["status"], files[name]["bad"], files[name]["rules"]) == (
            "accepted",
            1,
            {"unknown track_id": 1},
        )
    assert total_streams(root) == 3  # the same three events in both files: counted once


@pytest.mark.parametrize("name", ["x[/z].csv", "[bold]b[/bold].csv", "[link=http://x]c.csv", "\\[d].csv"])
def test_names_with_markup_are_printed_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the table's file column shows each name whole
    root = tiny_lake(tmp_path, {"s.csv": GOOD})
    path = root / "raw_data/streams" / name
    path.parent.mkdir(parents=True, exist_ok=True)  # `x[/z].csv` is `z].csv` in the folder `x[`
    path.write_text(f"{STREAMS_HEADER}\n9,T1,2024-06-25 10:00:00\n")
    code, out, err = cli("run", "--root", str(root))
    assert code == 0, err
    assert Path(name).as_posix() in err and "Traceback" not in err  # (a path drops a doubled `/`)
    code, out, err = cli("watch", "--root", str(root), "--once")
    assert code == 0, err


# -- landing files ----------------------------------------------------------------------------------


def test_what_counts_as_a_landing_file(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    streams = root / "raw_data/streams"
    with gzip.open(streams / "B.CSV.GZ", "wt") as f:
        f.write(f"{STREAMS_HEADER}\n1,T2,2024-06-25 13:00:00\n")
    for ignored in ("_temporary/0/part.csv", ".part/p.csv", "sub/_SUCCESS", "sub/.hidden.csv", "notes.txt"):
        write(streams / ignored, f"{STREAMS_HEADER}\n2,T3,2024-06-25 14:00:00\n")
    write(streams / "deeper/c.csv", f"{STREAMS_HEADER}\n3,T1,2024-06-25 15:00:00\n")
    code, report = run_json(root)
    assert code == 0, report
    taken = sorted(f["name"] for f in report["files"] if f["dataset"] == "streams")
    assert taken == ["B.CSV.GZ", "a.csv", "deeper/c.csv"]
    assert all(f["status"] == "accepted" for f in report["files"])
    assert total_streams(root) == 5
    assert landing(root) == sorted(
        ["_temporary/0/part.csv", ".part/p.csv", "notes.txt", "sub/.hidden.csv", "sub/_SUCCESS"]
    )


def test_symlinks_are_never_followed_out_of_the_root(tmp_path: Path) -> None:
    secret = write(tmp_path / "outside/secret.csv", "user_id,track_id,listen_time\nTOP-SECRET,x,y\n")
    root = tiny_lake(tmp_path / "lake", {"a.csv": GOOD})
    streams = root / "raw_data/streams"
    (streams / "leak.csv").symlink_to(secret)
    (streams / "passwd.csv").symlink_to("/etc/passwd")
    (streams / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    inside = write(root / "elsewhere/in.csv", f"{STREAMS_HEADER}\n2,T2,2024-06-25 16:00:00\n")
    (streams / "inside.csv").symlink_to(inside)
    os.mkfifo(streams / "pipe.csv")  # reading it would block the run forever
    code, report = run_json(root)
    assert code == 0, report
    files = {f["name"]: f for f in report["files"] if f["dataset"] == "streams"}
    for name in ("leak.csv", "passwd.csv", "dangling.csv", "pipe.csv"):
        assert files[name]["status"] == "rejected" and files[name]["rows"] == 0, files[name]
        error = (root / f"rejected/{report['run_id']}/{name}.error.json").read_text()
        assert "TOP-SECRET" not in error and "root:x:0" not in error
    assert "outside the lake root" in files["leak.csv"]["reason"]
    assert "does not exist" in files["dangling.csv"]["reason"]
    assert files["inside.csv"]["status"] == "accepted"
    assert total_streams(root) == 4
    everything = "".join(
        p.read_text(errors="replace")
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.suffix in (".json", ".jsonl", ".csv") and "elsewhere" not in p.parts
    )
    assert "TOP-SECRET" not in everything and "root:x:0" not in everything
    assert secret.read_text().count("TOP-SECRET") == 1  # never moved, never changed


# -- half-written files ---------------------------------------------------------------------------


def test_a_file_still_being_written_is_left_for_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny_lake(tmp_path, {"done.csv": GOOD})
    old = time.time() - 60
    for p in root.rglob("*.csv"):
        os.utime(p, (old, old))
    growing = write(root / "raw_data/streams/growing.csv", f"{STREAMS_HEADER}\n1,T1,2024-06-25 09:00:00\n")
    monkeypatch.setenv("PLAYCOUNT_SETTLE_SECONDS", "1")
    stop = threading.Event()

    def writer() -> None:  # appends a row every 0.2 s, as a copy in progress would
        n = 0
        while not stop.wait(0.2):
            n += 1
            with growing.open("a") as f:
                f.write(f"2,T2,2024-06-25 09:{n % 60:02d}:00\n")

    t = threading.Thread(target=writer)
    t.start()
    try:
        started = time.monotonic()
        code, report = run_json(root)
    finally:
        stop.set()
        t.join()
    assert code == 0, report
    assert time.monotonic() - started >= 1.0  # it waited for the settle time
    files = {f["name"]: f for f in report["files"] if f["dataset"] == "streams"}
    assert files["growing.csv"]["status"] == "pending" and "still being written" in files["growing.csv"]["reason"]
    assert files["done.csv"]["status"] == "accepted"
    assert landing(root) == ["growing.csv"]
    rows = growing.read_text().count("\n") - 1
    time.sleep(1.1)
    code, report = run_json(root)
    assert code == 0 and report["files"][-1]["rows"] == rows
    assert total_streams(root) == 3 + rows
    assert landing(root) == []


def test_settle_waits_for_a_fresh_file_that_then_stays_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tiny_lake(tmp_path, {"fresh.csv": GOOD})
    monkeypatch.setenv("PLAYCOUNT_SETTLE_SECONDS", "0.8")
    started = time.monotonic()
    code, report = run_json(root)
    assert code == 0 and time.monotonic() - started >= 0.8
    assert [f["status"] for f in report["files"]] == ["accepted"] * 3
    assert total_streams(root) == 3


def _append(path: Path, rows: str) -> None:
    with path.open("a") as f:
        f.write(rows)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a coarse clock may not tick


def test_a_file_that_changes_while_it_is_read_is_left_whole_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD, "b.csv": "1,T2,2024-06-26 10:00:00\n"})
    target = root / "raw_data/streams/b.csv"
    run = pipeline.open_run(load_settings(root=str(root)))
    read_csv = run.engine.read_csv

    def read_then_grow(uri: str, opener: Any, name: str, *, required: tuple[str, ...]) -> Any:
        raw = read_csv(uri, opener, name, required=required)
        if name == "b.csv":
            _append(target, "2,T3,2024-06-26 11:00:00\n")
        return raw

    monkeypatch.setattr(run.engine, "read_csv", read_then_grow)
    report = pipeline.run_pipeline(run)
    files = {f.name: f for f in report.files if f.dataset == "streams"}
    assert files["b.csv"].status == "pending" and "changed while the run read it" in str(files["b.csv"].reason)
    assert report.dates == [dt.date(2024, 6, 25)]
    assert total_streams(root) == 3 and landing(root) == ["b.csv"]
    code, again = run_json(root)
    assert code == 0 and again["files"][-1]["rows"] == 2
    assert total_streams(root) == 5 and landing(root) == []


@pytest.mark.parametrize("stage", ["transform", "kpis", "load"])
def test_a_file_that_changes_before_it_is_archived_is_withdrawn(tmp_path: Path, stage: str) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD, "b.csv": "1,T2,2024-06-26 10:00:00\n9,T1,2024-06-26 10:00:00\n"})
    target = root / "raw_data/streams/b.csv"

    def grow(at: str) -> None:
        if at == stage:
            _append(target, "2,T3,2024-06-26 11:00:00\n")

    report = pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))), after_stage=grow)
    assert report.status == "succeeded"
    files = {f.name: f for f in report.files if f.dataset == "streams"}
    assert files["b.csv"].status == "pending" and "withdrawn" in str(files["b.csv"].reason)
    assert (files["b.csv"].rows, files["a.csv"].rows) == (0, 3)
    assert total_streams(root) == 3  # nothing of b.csv counted
    assert not [r for r in kpis(root)["genre_kpis"] if str(r["date"]) == "2024-06-26"]
    assert not (root / "bad_rows/streams").exists() or not any(
        r["_source_file"] == "b.csv" for p in (root / "bad_rows/streams").iterdir() for r in csv_rows(p)
    )
    assert landing(root) == ["b.csv"]
    code, again = run_json(root)
    b = again["files"][-1]
    assert code == 0 and (b["name"], b["rows"], b["clean"], b["bad"]) == ("b.csv", 3, 2, 1)
    assert total_streams(root) == 5 and landing(root) == []


def test_watch_with_a_writer_still_appending_counts_every_row_once(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {})
    (root / "raw_data/streams").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PLAYCOUNT_SETTLE_SECONDS": "0.6", "PLAYCOUNT_MAX_BAD_ROW_RATIO": "0.9"}
    watch = subprocess.Popen(
        [sys.executable, "-m", "playcount.cli", "watch", "--root", str(root), "--interval", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    written = 0
    try:
        for k in range(3):  # three files, each written row by row over a second
            path = root / f"raw_data/streams/part-{k}.csv"
            with path.open("w") as f:
                f.write(STREAMS_HEADER + "\n")
                f.flush()
                for i in range(8):
                    f.write(f"{1 + i % 3},T{1 + (i + k) % 3},2024-06-25 1{k}:{i:02d}:00\n")
                    f.flush()
                    written += 1
                    time.sleep(0.12)
        deadline = time.monotonic() + 60
        while landing(root) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        watch.terminate()
        _, err = watch.communicate(timeout=60)
    assert landing(root) == [], err
    assert "Traceback" not in err
    assert not (root / "rejected").exists(), err
    assert total_streams(root) == written


def test_sigkill_at_random_points_with_a_writer_still_copying_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Runs killed (SIGKILL) at random moments while files are still being written into the landing
    zone, then runs to the end: the KPIs are those of one clean run over the finished files."""
    import random
    import signal

    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", "20261202")))
    bodies = {
        f"copy-{k}.csv": "".join(
            f"{1 + (i + k) % 3},T{1 + (i * 7 + k) % 3},2024-06-{25 + (i + k) % 2} {10 + k:02d}:{i:02d}:00\n"
            for i in range(40 + 5 * k)
        )
        for k in range(4)
    }
    baseline = tiny_lake(tmp_path / "baseline", bodies)
    assert run_json(baseline)[0] == 0
    root = tiny_lake(tmp_path / "killed", {})
    (root / "raw_data/streams").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PLAYCOUNT_SETTLE_SECONDS": "0.3"}

    def writer() -> None:  # each file copied in pieces, as `cp` of a large file would
        for name, body in bodies.items():
            data = (STREAMS_HEADER + "\n" + body).encode()
            with (root / "raw_data/streams" / name).open("wb") as f:
                for at in range(0, len(data), 200):
                    f.write(data[at : at + 200])
                    f.flush()
                    time.sleep(rng.uniform(0.0, 0.15))

    thread = threading.Thread(target=writer)
    thread.start()
    cmd = [sys.executable, "-m", "playcount.cli", "run", "--root", str(root), "--json"]
    kills = 0
    try:
        while thread.is_alive() or kills < 8:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                proc.wait(timeout=rng.uniform(0.5, 3.5))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate()
    finally:
        thread.join()
    for _ in range(5):  # then runs that finish, until nothing is left
        code, report = run_json(root)
        assert code == 0, report
        if report["status"] == "nothing_to_do" and not landing(root):
            break
    assert landing(root) == []
    assert not (root / "rejected").exists()
    assert kpis(root) == kpis(baseline)
    assert total_streams(root) == sum(len(b.splitlines()) for b in bodies.values())


class _Killed(BaseException):
    """A kill at that point (not an `Exception`: nothing catches it)."""


def test_a_kill_in_the_middle_of_a_withdraw_leaves_no_stale_kpis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b.csv is rewritten (other dates) after the run read it; the run withdraws its events and is
    killed before it recomputes their dates. The next runs give the KPIs of one clean run over
    a.csv and the final b.csv: the date only the withdrawn content had is gone from the store."""
    from playcount.pipeline import stages

    final_b = "1,T3,2024-06-27 10:00:00\n"
    baseline = tiny_lake(tmp_path / "baseline", {"a.csv": GOOD, "b.csv": final_b})
    assert run_json(baseline)[0] == 0
    root = tiny_lake(tmp_path / "lake", {"a.csv": GOOD, "b.csv": "1,T2,2024-06-26 10:00:00\n"})
    target = root / "raw_data/streams/b.csv"

    def rewrite(at: str) -> None:
        if at == "load":
            write(target, f"{STREAMS_HEADER}\n{final_b}")
            os.utime(target, (time.time() + 5, time.time() + 5))

    real = stages.compute_kpis

    def killed_in_withdraw(run: pipeline.Run) -> Any:
        raise _Killed("killed after the events were withdrawn, before their dates were recomputed")

    with monkeypatch.context() as m:
        m.setattr(stages, "compute_kpis", killed_in_withdraw)  # the call in `_withdraw` only
        with pytest.raises(_Killed):
            pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))), after_stage=rewrite)
    assert stages.compute_kpis is real
    assert "2024-06-26" in {str(r["date"]) for r in kpis(root)["genre_kpis"]}  # stale, for now
    code, report = run_json(root)
    assert code == 0, report
    assert kpis(root) == kpis(baseline)
    assert landing(root) == []


def test_the_only_file_withdrawn_leaves_an_empty_store_then_counts_once(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    target = root / "raw_data/streams/a.csv"

    def grow(at: str) -> None:
        if at == "load":
            _append(target, "2,T3,2024-06-25 13:00:00\n")

    report = pipeline.run_pipeline(pipeline.open_run(load_settings(root=str(root))), after_stage=grow)
    assert report.status == "succeeded" and [f.status for f in report.files if f.dataset == "streams"] == ["pending"]
    assert kpis(root)["genre_kpis"] == []  # the run's KPIs withdrawn with its only file
    assert run_json(root)[0] == 0
    assert total_streams(root) == 4 and landing(root) == []
