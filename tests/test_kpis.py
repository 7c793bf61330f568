"""SPEC §3: enrichment and the three KPI tables on a dozen hand-made events.

Songs (listen seconds = duration_ms / 1000):
    P1 pop 200 s, P2 pop 100 s, P3 pop 300 s, P4 pop 60 s, R1 rock 123.456 s, J1 jazz 10 s
Events on 2024-06-25 (UTC), counted once each:
    pop : P1 x2 (u1, u2), P2 x2 (u1, u3), P3 x1 (u1), P4 x1 (u2)  -> 6 streams, 3 users, 960 s
    rock: R1 x3 (u1, u1, u4)                                       -> 3 streams, 2 users, 370.368 s
    jazz: J1 x3 (u5, u6, u7)                                       -> 3 streams, 3 users, 30 s
Event on 2024-06-26 (UTC; 2024-06-25 23:30 at -02:00): pop P2 by u1.
The P1/u1 event also appears in a second file: counted once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest

from playcount.kpis import genre_kpis, repeated_keys, song_index, top_genres, top_songs, unique_events, with_songs
from playcount.transform import events_of

D25 = dt.date(2024, 6, 25)
D26 = dt.date(2024, 6, 26)

SONGS = [
    # track_id, genre, duration_ms, track_name, artists
    ("P1", "pop", 200_000, "Pop One", "Ann"),
    ("P2", "pop", 100_000, "Pop Two", "Bob"),
    ("P3", "pop", 300_000, "Pop Three", "Cy"),
    ("P4", "pop", 60_000, "Pop Four", "Di"),
    ("R1", "rock", 123_456, "Rock One", None),
    ("J1", "jazz", 10_000, "Jazz One", "Eve"),
]


def ts(hour: int, minute: int = 0, day: int = 25) -> dt.datetime:
    return dt.datetime(2024, 6, day, hour, minute)


EVENTS = [
    # user_id, track_id, listen_time (UTC), _source_file
    (1, "P1", ts(10), "s1.csv"),
    (1, "P1", ts(10), "s2.csv"),  # the same event in another file
    (2, "P1", ts(10, 5), "s1.csv"),
    (1, "P2", ts(11), "s1.csv"),
    (3, "P2", ts(11), "s1.csv"),
    (1, "P3", ts(12), "s1.csv"),
    (2, "P4", ts(12), "s2.csv"),
    (1, "R1", ts(13), "s1.csv"),
    (1, "R1", ts(14), "s1.csv"),
    (4, "R1", ts(13), "s2.csv"),
    (5, "J1", ts(9), "s1.csv"),
    (6, "J1", ts(9), "s1.csv"),
    (7, "J1", ts(9), "s2.csv"),
    (1, "P2", ts(1, 30, day=26), "s2.csv"),
]


@pytest.fixture
def songs() -> ir.Table:
    cols = list(zip(*SONGS, strict=True))
    return ibis.memtable(
        pa.table(
            {
                "track_id": pa.array(cols[0], pa.string()),
                "track_genre": pa.array(cols[1], pa.string()),
                "duration_ms": pa.array(cols[2], pa.int64()),
                "track_name": pa.array(cols[3], pa.string()),
                "artists": pa.array(cols[4], pa.string()),
                "popularity": pa.array([50] * len(SONGS), pa.int64()),
            }
        )
    )


def stream_table(events: list[tuple[Any, ...]]) -> ir.Table:
    cols = list(zip(*events, strict=True))
    return ibis.memtable(
        pa.table(
            {
                "user_id": pa.array(cols[0], pa.int64()),
                "track_id": pa.array(cols[1], pa.string()),
                "listen_time": pa.array(cols[2], pa.timestamp("us")),
                "_source_file": pa.array(cols[3], pa.string()),
                "_line": pa.array(range(2, len(events) + 2), pa.int64()),
            }
        )
    )


@pytest.fixture
def index(songs: ir.Table) -> ir.Table:
    return song_index(songs)


@pytest.fixture
def events(index: ir.Table) -> ir.Table:
    return with_songs(unique_events(events_of(stream_table(EVENTS))), index)


# `song_index` numbers the tracks by track_id and the genres by name, from 0
S = {"J1": 0, "P1": 1, "P2": 2, "P3": 3, "P4": 4, "R1": 5}
G = {"jazz": 0, "pop": 1, "rock": 2}


def rows(engine: Any, expr: ir.Table) -> list[dict[str, Any]]:
    return engine.to_arrow(expr).to_pylist()


def test_events_of_keeps_the_streams_own_fields_and_the_date(engine: Any) -> None:
    got = rows(engine, events_of(stream_table([(1, "R1", ts(13), "s1.csv"), (1, "P2", ts(1, 30, 26), "s2.csv")])))
    assert [{k: (v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v) for k, v in r.items()} for r in got] == [
        {"user_id": 1, "track_id": "R1", "listen_time": ts(13), "date": D25, "_source_file": "s1.csv"},
        {"user_id": 1, "track_id": "P2", "listen_time": ts(1, 30, 26), "date": D26, "_source_file": "s2.csv"},
    ]


def test_song_index_numbers_tracks_and_genres(engine: Any, index: ir.Table) -> None:
    got = rows(engine, index.order_by("track_id"))
    assert [(r["track_id"], r["_s"], r["genre"], r["_g"], r["duration_ms"], r["title"], r["artist"]) for r in got] == [
        ("J1", 0, "jazz", 0, 10_000, "Jazz One", "Eve"),
        ("P1", 1, "pop", 1, 200_000, "Pop One", "Ann"),
        ("P2", 2, "pop", 1, 100_000, "Pop Two", "Bob"),
        ("P3", 3, "pop", 1, 300_000, "Pop Three", "Cy"),
        ("P4", 4, "pop", 1, 60_000, "Pop Four", "Di"),
        ("R1", 5, "rock", 2, 123_456, "Rock One", None),
    ]


def test_with_songs_adds_the_song_genre_and_duration_from_the_dimension(engine: Any, index: ir.Table) -> None:
    events = events_of(stream_table([(1, "R1", ts(13), "s1.csv"), (1, "P2", ts(1, 30, 26), "s2.csv")]))
    got = rows(engine, with_songs(events, index).order_by("_s"))
    assert got == [
        {"date": D26, "user_id": 1, "_s": S["P2"], "_g": G["pop"], "_ms": 100_000},
        {"date": D25, "user_id": 1, "_s": S["R1"], "_g": G["rock"], "_ms": 123_456},
    ]


def test_with_songs_leaves_out_a_track_the_dimension_lacks(engine: Any, index: ir.Table) -> None:
    events = events_of(stream_table([(1, "R1", ts(13), "s1.csv"), (1, "XX", ts(13), "s1.csv")]))
    assert [r["_s"] for r in rows(engine, with_songs(events, index))] == [S["R1"]]


def test_with_songs_counts_every_event_under_the_tracks_current_genre(engine: Any, songs: ir.Table) -> None:
    # one track re-labelled between two files of a date: both files' events count under the new genre
    events = events_of(stream_table([(1, "R1", ts(10), "old.csv"), (2, "R1", ts(11), "new.csv")]))
    relabelled = songs.mutate(track_genre=ibis.ifelse(songs.track_id == "R1", "jazz", songs.track_genre))
    index = song_index(relabelled)
    got = rows(engine, genre_kpis(with_songs(unique_events(events), index), index))
    assert [(r["genre"], r["date"], r["total_streams"]) for r in got] == [("jazz", D25, 2)]


def test_unique_events_counts_an_event_in_two_files_once(engine: Any, events: ir.Table) -> None:
    assert engine.to_arrow(events_of(stream_table(EVENTS))).num_rows == 14
    assert engine.to_arrow(events).num_rows == 13
    p1 = rows(engine, events.filter((events.user_id == 1) & (events._s == S["P1"])))
    assert p1 == [{"date": D25, "user_id": 1, "_s": S["P1"], "_g": G["pop"], "_ms": 200_000}]


def test_unique_events_is_exact_whatever_the_hashes_say(engine: Any) -> None:
    # the hash only picks the events that are grouped by their exact key: with every hash marked
    # repeated (as if all collided), the exact grouping alone gives the same 13 events
    stored = events_of(stream_table(EVENTS))
    every_hash = repeated_keys(stored.union(stored))
    assert engine.to_arrow(every_hash).num_rows == 13
    key = ["user_id", "track_id", "listen_time"]
    got = rows(engine, unique_events(stored, every_hash).order_by(key))
    assert len(got) == 13
    assert got == rows(engine, unique_events(stored).order_by(key))


def test_unique_events_three_copies_across_files_and_runs(engine: Any, index: ir.Table) -> None:
    twice = [
        (1, "P1", ts(10), "s1.csv"),
        (1, "P1", ts(10), "s2.csv"),
        (1, "P1", ts(10), "old.csv"),
        (2, "P1", ts(10), "s1.csv"),
    ]
    got = rows(engine, with_songs(unique_events(events_of(stream_table(twice))), index).order_by("user_id"))
    assert [(r["user_id"], r["_s"], r["date"], r["_g"], r["_ms"]) for r in got] == [
        (1, S["P1"], D25, G["pop"], 200_000),
        (2, S["P1"], D25, G["pop"], 200_000),
    ]


def test_genre_kpis(engine: Any, events: ir.Table, index: ir.Table) -> None:
    got = rows(engine, genre_kpis(events, index))
    assert got == [
        {
            "genre": "jazz",
            "date": D25,
            "total_streams": 3,
            "unique_users": 3,
            "avg_listen_time": 10.0,
            "total_listen_time": 30.0,
            "avg_listen_time_per_user": 10.0,
        },
        {
            "genre": "pop",
            "date": D25,
            "total_streams": 6,
            "unique_users": 3,
            "avg_listen_time": 160.0,
            "total_listen_time": 960.0,
            "avg_listen_time_per_user": 320.0,
        },
        # 3 x 123.456 = 370.368 s; / 3 streams = 123.456 -> 123.46; / 2 users = 185.184 -> 185.18
        {
            "genre": "rock",
            "date": D25,
            "total_streams": 3,
            "unique_users": 2,
            "avg_listen_time": 123.46,
            "total_listen_time": 370.368,
            "avg_listen_time_per_user": 185.18,
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


def test_genre_kpis_round_exact_ties_half_up(engine: Any) -> None:
    # 1.005 s and 0.125 s are ties at 2 decimals: rounding the float gives 1.0 on DuckDB and
    # 1.01 on Spark; the exact half-up rounding gives 1.01 and 0.13 on both
    songs = ibis.memtable(
        pa.table(
            {
                "track_id": ["A", "B"],
                "track_genre": ["a", "b"],
                "duration_ms": pa.array([1_005, 125], pa.int64()),
                "track_name": ["A", "B"],
                "artists": ["x", "y"],
            }
        )
    )
    index = song_index(songs)
    events = with_songs(
        unique_events(events_of(stream_table([(1, "A", ts(10), "s.csv"), (1, "B", ts(10), "s.csv")]))), index
    )
    got = {r["genre"]: r for r in rows(engine, genre_kpis(events, index))}
    assert (got["a"]["avg_listen_time"], got["a"]["total_listen_time"], got["a"]["avg_listen_time_per_user"]) == (
        1.01,
        1.005,
        1.01,
    )
    assert (got["b"]["avg_listen_time"], got["b"]["avg_listen_time_per_user"]) == (0.13, 0.13)


def test_genre_kpis_without_dedup_would_double_count(engine: Any, index: ir.Table) -> None:
    # guards the test above: the duplicate really is in the input
    raw = genre_kpis(with_songs(events_of(stream_table(EVENTS)), index), index)
    pop = rows(engine, raw.filter((raw.genre == "pop") & (raw.date == D25)))
    assert pop[0]["total_streams"] == 7


def test_top_songs_ranks_ties_by_track_id_and_cuts_at_3(engine: Any, events: ir.Table, index: ir.Table) -> None:
    got = rows(engine, top_songs(events, index))
    assert [(r["date"], r["genre"], r["rank"], r["track_id"], r["stream_count"]) for r in got] == [
        (D25, "jazz", 1, "J1", 3),
        (D25, "pop", 1, "P1", 2),  # P1 and P2 tie on 2: track_id asc
        (D25, "pop", 2, "P2", 2),
        (D25, "pop", 3, "P3", 1),  # P3 and P4 tie on 1: P4 is cut off
        (D25, "rock", 1, "R1", 3),
        (D26, "pop", 1, "P2", 1),
    ]
    first = got[1]
    assert first == {
        "date": D25,
        "genre": "pop",
        "track_id": "P1",
        "title": "Pop One",
        "artist": "Ann",
        "stream_count": 2,
        "rank": 1,
        "date#genre": "2024-06-25#pop",
    }
    assert got[4]["artist"] is None
    assert got[5]["date#genre"] == "2024-06-26#pop"


def test_top_songs_ties_order_track_ids_bytewise(engine: Any) -> None:
    # every engine orders strings the same way: upper case before lower case before accents
    ids = ["é1", "a1", "B1", "b1"]
    songs = ibis.memtable(
        pa.table(
            {
                "track_id": ids,
                "track_genre": ["g"] * 4,
                "duration_ms": pa.array([1000] * 4, pa.int64()),
                "track_name": ids,
                "artists": ids,
            }
        )
    )
    stored = events_of(stream_table([(1, t, ts(10), "s.csv") for t in ids]))
    index = song_index(songs)
    got = rows(engine, top_songs(with_songs(unique_events(stored), index), index, n=4))
    assert [r["track_id"] for r in got] == ["B1", "a1", "b1", "é1"]


@pytest.mark.parametrize(("n", "pop_tracks"), [(1, ["P1"]), (2, ["P1", "P2"]), (10, ["P1", "P2", "P3", "P4"])])
def test_top_songs_n_is_configurable(
    engine: Any, events: ir.Table, index: ir.Table, n: int, pop_tracks: list[str]
) -> None:
    got = rows(engine, top_songs(events, index, n=n))
    pop = [r for r in got if r["genre"] == "pop" and r["date"] == D25]
    assert [r["track_id"] for r in pop] == pop_tracks
    assert [r["rank"] for r in pop] == list(range(1, len(pop_tracks) + 1))
    assert all(r["rank"] <= n for r in got)


def test_top_genres_ranks_ties_by_genre(engine: Any, events: ir.Table, index: ir.Table) -> None:
    got = rows(engine, top_genres(genre_kpis(events, index)))
    assert got == [
        {"date": D25, "genre": "pop", "total_streams": 6, "rank": 1},
        {"date": D25, "genre": "jazz", "total_streams": 3, "rank": 2},  # jazz and rock tie on 3: genre asc
        {"date": D25, "genre": "rock", "total_streams": 3, "rank": 3},
        {"date": D26, "genre": "pop", "total_streams": 1, "rank": 1},
    ]


def test_top_genres_never_more_than_n(engine: Any, events: ir.Table, index: ir.Table) -> None:
    got = rows(engine, top_genres(genre_kpis(events, index), n=2))
    assert [(r["date"], r["genre"], r["rank"]) for r in got] == [(D25, "pop", 1), (D25, "jazz", 2), (D26, "pop", 1)]


def test_top_genres_default_is_5(engine: Any, songs: ir.Table) -> None:
    genres = [f"g{i}" for i in range(7)]
    table = ibis.memtable(
        pa.table(
            {
                "genre": pa.array(genres, pa.string()),
                "date": pa.array([D25] * 7, pa.date32()),
                "total_streams": pa.array([1, 7, 3, 3, 5, 2, 6], pa.int64()),
            }
        )
    )
    got = rows(engine, top_genres(table))
    assert [(r["genre"], r["total_streams"], r["rank"]) for r in got] == [
        ("g1", 7, 1),
        ("g6", 6, 2),
        ("g4", 5, 3),
        ("g2", 3, 4),
        ("g3", 3, 5),
    ]
