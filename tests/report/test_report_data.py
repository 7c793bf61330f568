"""What goes into each section and chart of the run's page, on hand-made runs.

The numbers are small enough to check by hand: each test says where they come from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa

from playcount.lake import LocalStorage
from playcount.report import data, page
from playcount.report.record import FileRecord, RunRecord
from playcount.stores import KPI_SCHEMAS, MemoryStore

D1, D2 = dt.date(2024, 6, 25), dt.date(2024, 6, 26)


def _run(**extra: Any) -> RunRecord:
    """Two stream files (10 rows: 8 clean, 2 bad; 4 rows rejected), songs with 1 bad row of 5."""
    fields: dict[str, Any] = {
        "run_id": "20240627T120000Z-abcdef",
        "status": "succeeded",
        "root": "/lake",
        "run_date": dt.date(2024, 6, 27),
        "started_at": dt.datetime(2024, 6, 27, 12, 0, 0),
        "finished_at": dt.datetime(2024, 6, 27, 12, 0, 42),
        "files": [
            FileRecord(dataset="songs", name="songs.csv", rows=5, clean=4, bad=1, rules={"duplicate": 1}),
            FileRecord(dataset="users", name="users.csv", rows=3, clean=3, bad=0),
            FileRecord(
                dataset="streams",
                name="a.csv",
                rows=10,
                clean=8,
                bad=2,
                rules={"unknown user_id": 2, "unknown track_id": 1},
                warnings={"listen_time before created_at": 3},
            ),
            FileRecord(
                dataset="streams",
                name="b.csv",
                path="rejected/20240627T120000Z-abcdef/b.csv",
                rows=4,
                clean=1,
                bad=3,
                status="rejected",
                reason="too many bad rows",
                rules={"unknown user_id": 3},
            ),
            FileRecord(dataset="streams", name="c.csv", status="skipped", reason="already processed"),
        ],
        "dates": [D1, D2],
        "bad_rows": {"streams": "bad_rows/streams/20240627T120000Z-abcdef.csv"},
        "stages": {"discover": 0.5, "validate": 2.25, "transform": 1.0},
    }
    fields.update(extra)
    return RunRecord(**fields)


def test_glance_counts_files_of_every_dataset_and_rows_of_the_stream_files() -> None:
    g = data.glance(_run())
    # 5 files: songs, users, a (accepted), b (rejected), c (skipped)
    assert (g.files_in, g.accepted, g.rejected, g.skipped) == (5, 3, 1, 1)
    # stream rows: a 10 + b 4 + c 0 = 14 in; clean 8 + 1 = 9; bad 2 + 3 = 5 (as the notification counts)
    assert (g.rows_in, g.clean, g.bad, g.warnings) == (14, 9, 5, 3)
    assert g.duration == 42.0 and g.status == "succeeded"


def test_rule_bars_are_one_per_rule_and_file_with_a_count() -> None:
    bars = data.rule_bars(_run())
    assert [(b.dataset, b.file, b.rule, b.rows) for b in bars] == [
        ("songs", "songs.csv", "duplicate", 1),
        ("streams", "a.csv", "unknown user_id", 2),
        ("streams", "a.csv", "unknown track_id", 1),
        ("streams", "b.csv", "unknown user_id", 3),
    ]


def test_stage_bars_keep_the_run_order() -> None:
    assert [(s.stage, s.seconds) for s in data.stage_bars(_run())] == [
        ("discover", 0.5),
        ("validate", 2.25),
        ("transform", 1.0),
    ]


def _bad_rows_csv(root: Path, run: RunRecord) -> LocalStorage:
    path = root / run.bad_rows["streams"]
    path.parent.mkdir(parents=True)
    lines = ["user_id,track_id,listen_time,_raw,_source_file,_line,_reasons"]
    lines += [f"9{i},T1,2024-06-25 10:00:00,,a.csv,{i + 2},unknown user_id" for i in range(7)]
    lines.insert(3, "1,<script>x</script>,2024-06-25,,a.csv,99,unknown user_id; unknown track_id")
    lines.append("2," + "y" * 500 + ",2024-06-25,,a.csv,100,unknown track_id")
    lines.append(',,,"1,T1",a.csv,101,"malformed row (expected 3 fields, found 2)"')
    path.write_text("\n".join(lines) + "\n")
    return LocalStorage(root)


def test_samples_are_the_first_rows_of_each_rule_of_the_accepted_files(tmp_path: Path) -> None:
    rules = {"unknown user_id": 8, "unknown track_id": 2, "malformed row": 1}
    run = _run(files=[f.model_copy(update={"rules": rules}) if f.name == "a.csv" else f for f in _run().files])
    out = data.samples(run, _bad_rows_csv(tmp_path, run), n=5)
    assert [(s.rule, s.total, len(s.rows)) for s in out] == [
        ("unknown user_id", 8, 5),
        ("unknown track_id", 2, 2),
        ("malformed row", 1, 1),
    ]
    user, track, malformed = out
    assert user.columns == ["user_id", "track_id", "listen_time", "_raw"]
    assert (malformed.rows[0]["_line"], malformed.rows[0]["_raw"]) == ("101", "1,T1")
    # file order: lines 2, 3, then the line-99 row with both reasons, then 4, 5
    assert [r["_line"] for r in user.rows] == ["2", "3", "99", "4", "5"]
    assert [r["_line"] for r in track.rows] == ["99", "100"]
    assert track.rows[1]["track_id"] == "y" * data.CELL_CHARS + "…"  # a long value is cut


def test_rejected_files_carry_their_error_json(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write_bytes("rejected/20240627T120000Z-abcdef/b.csv.error.json", b'{"reason": "too many bad rows"}')
    rows = {r.name: r for r in data.file_rows(_run(), storage)}
    assert rows["b.csv"].error_path == "rejected/20240627T120000Z-abcdef/b.csv.error.json"
    assert rows["b.csv"].error_text == '{"reason": "too many bad rows"}'
    assert rows["a.csv"].error_path is None


def _store(days: int) -> MemoryStore:
    """`days` dates ending on D2; pop has 10 + i streams on day i, rock 5, jazz only on D2 (1)."""
    store = MemoryStore()
    dates = [D2 - dt.timedelta(days=days - 1 - i) for i in range(days)]
    genre_rows, top_rows = [], []
    for i, d in enumerate(dates):
        day = [("pop", 10 + i), ("rock", 5)] + ([("jazz", 1)] if d == D2 else [])
        for rank, (g, n) in enumerate(day, 1):
            genre_rows.append(
                {
                    "genre": g,
                    "date": d,
                    "total_streams": n,
                    "unique_users": 1,
                    "avg_listen_time": 1.0,
                    "total_listen_time": 1.0,
                    "avg_listen_time_per_user": 1.0,
                }
            )
            top_rows.append({"date": d, "genre": g, "total_streams": n, "rank": rank})
    store.replace("genre_kpis", dates, pa.Table.from_pylist(genre_rows, KPI_SCHEMAS["genre_kpis"]))
    store.replace("top_genres", dates, pa.Table.from_pylist(top_rows, KPI_SCHEMAS["top_genres"]))
    song = {
        "date": D2,
        "genre": "pop",
        "track_id": "T1",
        "title": "One",
        "artist": "Ann",
        "stream_count": 4,
        "rank": 1,
        "date#genre": "2024-06-26#pop",
    }
    store.replace("top_songs", [D2], pa.Table.from_pylist([song], KPI_SCHEMAS["top_songs"]))
    return store


def test_kpis_of_the_touched_dates_and_a_30_date_trend() -> None:
    k = data.kpis(_run(), _store(days=35))
    # top genres of D1 (pop, rock) and D2 (pop, rock, jazz): 5 bars
    assert [(r["date"], r["genre"]) for r in k.top_genres] == [
        (D1, "pop"),
        (D1, "rock"),
        (D2, "pop"),
        (D2, "rock"),
        (D2, "jazz"),
    ]
    # the trend: D2's top genres over the last 30 dates: pop 30 + rock 30 + jazz 1 = 61 points
    assert len(k.trend) == 61
    assert min(r["date"] for r in k.trend) == D2 - dt.timedelta(days=29)
    pop = [r["total_streams"] for r in k.trend if r["genre"] == "pop"]
    assert pop[0] == 10 + 5 and pop[-1] == 10 + 34  # day 5 of 35 opens the window, day 34 closes it
    assert k.songs_date == D2 and [s["track_id"] for s in k.top_songs] == ["T1"]


def test_kpis_without_touched_dates_or_with_a_broken_store() -> None:
    assert data.kpis(_run(dates=[]), _store(days=2)).top_genres == []

    class Broken(MemoryStore):
        def read(self, table: str, **where: Any) -> pa.Table:
            raise OSError("disk gone")

    k = data.kpis(_run(), Broken())
    assert k.top_genres == [] and "disk gone" in (k.problem or "")


def test_the_page_draws_one_mark_per_row_and_escapes_the_data(tmp_path: Path) -> None:
    run = _run(
        files=[
            *_run().files,
            FileRecord(
                dataset="streams",
                name="<img src=x onerror=alert(1)>.csv",
                rows=1,
                clean=0,
                bad=1,
                rules={"<b>rule</b>": 1},
            ),
        ]
    )
    storage = _bad_rows_csv(tmp_path, run)
    html = page.render(data.build(run, storage, _store(days=3)))
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.csv" in html
    assert "<b>rule</b>" not in html
    # 5 rule bars (4 + the hostile file's), 5 top-genre bars, 3 + 3 + 1 trend points, 3 stages
    for chart, rows in (("rules", 5), ("top_genres", 5), ("trend", 7), ("stages", 3)):
        assert f'data-chart="{chart}" data-rows="{rows}"' in html
    assert html.count("<script") == 0 and "http://" not in html.replace("http://www.w3.org", "")
