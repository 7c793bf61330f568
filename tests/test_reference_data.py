"""SPEC §5: songs and users as merged dimensions (late, changed and removed reference data), and
backfills checked against the wall clock. Through the CLI, on lakes small enough to check by hand.

The tiny lake's songs: T1 `Song, "One"` by Ann (pop, 200 s), T2 Two by Bob (pop, 100 s), T3 Three
by Cy (rock, 300 s); users 1, 2, 3 (user 3 created 2024-07-01).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from helpers import SONGS_HEADER, STREAMS_HEADER, cli, kpis, run_json, tiny_lake, write

SONGS = "raw_data/songs/songs.csv"


def _genres(root: Path, date: str) -> list[tuple[str, int, float]]:
    return [
        (r["genre"], r["total_streams"], r["total_listen_time"])
        for r in kpis(root)["genre_kpis"]
        if str(r["date"]) == date
    ]


def _top(root: Path, date: str) -> list[tuple[Any, ...]]:
    return [
        (r["genre"], r["rank"], r["track_id"], r["title"], r["artist"], r["stream_count"])
        for r in kpis(root)["top_songs"]
        if str(r["date"]) == date
    ]


def _land(root: Path, name: str, body: str) -> None:
    write(root / "raw_data/streams" / name, f"{STREAMS_HEADER}\n{body}")


def test_a_genre_change_then_a_new_file_of_the_same_date_counts_the_track_under_one_genre(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n2,T3,2024-06-25 11:00:00\n"})
    assert run_json(root)[0] == 0
    assert _genres(root, "2024-06-25") == [("pop", 1, 200.0), ("rock", 1, 300.0)]
    # T1 re-labelled rock, and 30 s longer, in a later songs file (the last file by name wins)
    write(root / "raw_data/songs/songs_2.csv", f"{SONGS_HEADER}\n9,T1,Ann,A,One (remaster),50,230000,False,Rock\n")
    _land(root, "b.csv", "2,T1,2024-06-25 12:00:00\n")
    code, report = run_json(root)
    assert code == 0, report
    # both events of T1 on that date count as rock, at the new duration: no pop row is left
    assert _genres(root, "2024-06-25") == [("rock", 3, 760.0)]
    assert _top(root, "2024-06-25") == [
        ("rock", 1, "T1", "One (remaster)", "Ann", 2),
        ("rock", 2, "T3", "Three", "Cy", 1),
    ]


def test_a_track_removed_from_the_songs_file_keeps_its_title_and_its_new_streams_count(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    assert run_json(root)[0] == 0
    # the catalogue export no longer has T1 (the dimension keeps its last version)
    write(
        root / SONGS,
        f"{SONGS_HEADER}\n1,T2,Bob,B,Two,60,100000,True,pop\n2,T3,Cy,C,Three,70,300000,false,Rock\n",
    )
    _land(root, "b.csv", "2,T1,2024-06-25 12:00:00\n2,T2,2024-06-25 13:00:00\n")
    code, report = run_json(root)
    assert code == 0, report
    b = next(f for f in report["files"] if f["name"] == "b.csv")
    assert (b["status"], b["clean"], b["bad"]) == ("accepted", 2, 0)  # T1 is still a known track
    assert _top(root, "2024-06-25") == [
        ("pop", 1, "T1", 'Song, "One"', "Ann", 2),
        ("pop", 2, "T2", "Two", "Bob", 1),
    ]


def test_within_a_run_the_last_songs_file_by_name_wins_and_a_later_run_wins_over_it(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    write(root / "raw_data/songs/songs_b.csv", f"{SONGS_HEADER}\n9,T1,Ann,A,One,50,200000,False,Jazz\n")
    code, report = run_json(root)
    assert code == 0, report
    assert all(f["bad"] == 0 for f in report["files"])  # the same track in two files is no duplicate
    assert _genres(root, "2024-06-25") == [("jazz", 1, 200.0)]
    # a later run with another file: it is the last by name now
    write(root / "raw_data/songs/songs_c.csv", f"{SONGS_HEADER}\n9,T1,Ann,A,One,50,200000,False,Blues\n")
    _land(root, "b.csv", "2,T2,2024-06-25 11:00:00\n")
    assert run_json(root)[0] == 0
    assert _genres(root, "2024-06-25") == [("blues", 1, 200.0), ("pop", 1, 100.0)]


def test_the_dimension_is_one_file_with_every_track_ever_seen(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    assert run_json(root)[0] == 0
    write(root / SONGS, f"{SONGS_HEADER}\n7,T7,Eve,E,Seven,10,70000,False,Folk\n")
    (root / "processed_data/songs/_writing-killed.parquet").write_bytes(b"half a file")  # a killed write
    _land(root, "b.csv", "2,T7,2024-06-25 12:00:00\n")
    assert run_json(root)[0] == 0
    files = sorted(p.name for p in (root / "processed_data/songs").iterdir())
    assert files == ["songs.v000002.parquet"]
    con = duckdb.connect()
    got = con.execute(
        "SELECT track_id, track_genre, duration_ms, track_name, _source_file FROM read_parquet(?) ORDER BY 1",
        [str(root / "processed_data/songs" / files[0])],
    ).fetchall()
    assert got == [
        ("T1", "pop", 200000, 'Song, "One"', "songs.csv"),
        ("T2", "pop", 100000, "Two", "songs.csv"),
        ("T3", "rock", 300000, "Three", "songs.csv"),
        ("T7", "folk", 70000, "Seven", "songs.csv"),
    ]


def test_events_store_only_the_streams_own_fields(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n"})
    assert run_json(root)[0] == 0
    [part] = (root / "processed_data/streams/date=2024-06-25").iterdir()
    cols = [r[0] for r in duckdb.connect().execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(part)]).fetchall()]
    assert cols == ["user_id", "track_id", "listen_time", "date", "_source_file"]


def test_a_lake_written_before_the_dimensions_is_read_and_rebuilt(tmp_path: Path) -> None:
    """Event files that carry their song's genre and duration, and a `songs.parquet` without a
    version: KPIs come from the events' stream fields and the songs of that file."""
    root = tiny_lake(tmp_path / "lake", {"a.csv": "1,T1,2024-06-25 10:00:00\n2,T3,2024-06-25 11:00:00\n"})
    assert run_json(root)[0] == 0
    before = kpis(root)
    con = duckdb.connect()
    songs_dir = root / "processed_data/songs"
    [dim] = songs_dir.iterdir()
    con.execute(f"COPY (SELECT * FROM read_parquet('{dim}')) TO '{songs_dir / 'songs.parquet'}' (FORMAT parquet)")
    dim.unlink()
    [part] = (root / "processed_data/streams/date=2024-06-25").iterdir()
    old = (
        "SELECT e.user_id, e.track_id, e.listen_time, e.date, 'stale' AS genre, 1 AS duration_ms, "
        f"0.001 AS listen_seconds, e._source_file FROM read_parquet('{part}') e"
    )
    con.execute(f"COPY ({old}) TO '{part}.old' (FORMAT parquet)")
    part.unlink()
    (part.parent / f"{part.name}.old").rename(part)
    (root / "kpis.duckdb").unlink()
    code, out, err = cli("rebuild", "--root", str(root), "--json")
    assert code == 0, err
    assert kpis(root) == before
    _land(root, "b.csv", "3,T2,2024-06-25 12:00:00\n")  # and a run on top writes the new layout
    assert run_json(root)[0] == 0
    assert _genres(root, "2024-06-25") == [("pop", 2, 300.0), ("rock", 1, 300.0)]
    assert sorted(p.name for p in songs_dir.iterdir()) == ["songs.v000001.parquet"]


def test_a_backfill_accepts_users_created_after_its_run_date(tmp_path: Path) -> None:
    # user 3 was created on 2024-07-01; the run is a backfill of 2024-06-25 run today
    root = tiny_lake(tmp_path / "lake", {"a.csv": "3,T1,2024-06-25 10:00:00\n1,T2,2024-06-25 11:00:00\n"})
    code, out, err = cli("run", "--root", str(root), "--json", env={"PLAYCOUNT_RUN_DATE": "2024-06-25"})
    assert code == 0, err
    report = json.loads(out)
    users = next(f for f in report["files"] if f["dataset"] == "users")
    assert (users["status"], users["clean"], users["bad"]) == ("accepted", 3, 0)
    assert report["run_date"] == "2024-06-25"
    assert (root / "archived/2024-06-25/a.csv").exists()
    assert _genres(root, "2024-06-25") == [("pop", 2, 300.0)]
    a = next(f for f in report["files"] if f["name"] == "a.csv")
    assert a["warnings"] == {"listen_time before created_at": 1}  # user 3 listened before created_at
