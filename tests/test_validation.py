"""SPEC §1-2: every validation rule on tiny hand-made raw tables (string columns + `_source_file`, `_line`).

The tests take the engine from the `engine` fixture, so they run unchanged on every engine.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest

from playcount.validation import (
    Checked,
    bad_rows,
    check_songs,
    check_streams,
    check_users,
    clean_rows,
    clean_summary,
    parse_timestamp_utc,
    rule_counts,
)

RUN_DATE = dt.date(2024, 6, 25)
RUN_TIME = dt.datetime(2024, 6, 25, 12, 0, 0)

SONG_COLS = ("track_id", "artists", "track_name", "popularity", "duration_ms", "explicit", "track_genre")
USER_COLS = ("user_id", "user_name", "user_age", "user_country", "created_at")
STREAM_COLS = ("user_id", "track_id", "listen_time")


def raw_table(columns: tuple[str, ...], rows: list[tuple[Any, ...]], source: str = "a.csv") -> ir.Table:
    """A raw table as the readers produce it: every column text, rows on lines 2, 3, ... of `source`.

    A row may start with `(source, line)` instead, given as a leading tuple: `(("b.csv", 7), "1", ...)`.
    """
    data: dict[str, list[Any]] = {c: [] for c in (*columns, "_source_file", "_line")}
    for i, row in enumerate(rows):
        if row and isinstance(row[0], tuple):
            (src, line), values = row[0], row[1:]
        else:
            src, line, values = source, i + 2, row
        assert len(values) == len(columns)
        for c, v in zip(columns, values, strict=True):
            data[c].append(v)
        data["_source_file"].append(src)
        data["_line"].append(line)
    schema = pa.schema(
        [*(pa.field(c, pa.string()) for c in columns), ("_source_file", pa.string()), ("_line", pa.int64())]
    )
    return ibis.memtable(pa.table(data, schema=schema))


def song(
    track_id: str | None = "T1",
    genre: str | None = "pop",
    duration: str | None = "200000",
    popularity: str | None = "50",
    explicit: str | None = "False",
    name: str | None = "Name",
    artists: str | None = "Artist",
) -> tuple[str | None, ...]:
    return (track_id, artists, name, popularity, duration, explicit, genre)


def user(user_id: str | None = "1", age: str | None = "30", created: str | None = "2024-01-01") -> tuple[Any, ...]:
    return (user_id, "Ann", age, "DE", created)


def rows(engine: Any, expr: ir.Table) -> list[dict[str, Any]]:
    return sorted(engine.to_arrow(expr).to_pylist(), key=lambda r: (r["_source_file"], r["_line"]))


Cases = list[tuple[tuple[Any, ...], str]]


def by_row(engine: Any, checked: Checked, cases: Cases) -> Cases:
    """Each case's row beside the `_reasons` validation gave it (rows are on lines 2, 3, ...)."""
    got = reasons(engine, checked)
    return [(row, got[i + 2]) for i, (row, _) in enumerate(cases)]


def reasons(engine: Any, checked: Checked) -> dict[int, str]:
    """`_line` -> `_reasons` of every row (empty when clean)."""
    return {r["_line"]: r["_reasons"] for r in rows(engine, checked.table.select("_source_file", "_line", "_reasons"))}


# -- songs ---------------------------------------------------------------------------------------


SONG_FAILS = [
    (song(track_id=""), "track_id is empty"),
    (song(track_id="   "), "track_id is empty"),
    (song(track_id=None), "track_id is empty"),
    (song(genre=""), "track_genre is empty"),
    (song(genre=" "), "track_genre is empty"),
    (song(duration="12.5"), "duration_ms is not an integer"),
    (song(duration="abc"), "duration_ms is not an integer"),
    (song(duration=None), "duration_ms is not an integer"),
    (song(duration="0"), "duration_ms out of range [1,86400000]"),
    (song(duration="86400001"), "duration_ms out of range [1,86400000]"),
    (song(duration="-5"), "duration_ms out of range [1,86400000]"),
    (song(popularity="101"), "popularity out of range [0,100]"),
    (song(popularity="-1"), "popularity out of range [0,100]"),
    (song(popularity="abc"), "popularity is not an integer"),
    (song(explicit="maybe"), "explicit is not True/False"),
]


def test_song_rules(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [row for row, _ in SONG_FAILS]))
    assert by_row(engine, checked, SONG_FAILS) == SONG_FAILS


SONG_OK = [
    (song(duration="86400000"), ""),
    (song(duration="1"), ""),
    (song(duration=" 200000 "), ""),
    (song(popularity=""), ""),
    (song(popularity=None), ""),
    (song(popularity="0"), ""),
    (song(popularity="100"), ""),
    (song(explicit="TRUE"), ""),
    (song(explicit="false"), ""),
    (song(explicit=""), ""),
    (song(name="", artists=""), ""),
]


def test_song_accepted(engine: Any) -> None:
    cases = [((f"OK{i}", *row[1:]), "") for i, (row, _) in enumerate(SONG_OK)]  # distinct track ids
    checked = check_songs(raw_table(SONG_COLS, [row for row, _ in cases]))
    assert by_row(engine, checked, cases) == cases


def test_song_clean_values_are_typed_and_normalised(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [song("AbC", genre=" Pop ", duration="1500", explicit="TRUE")]))
    [r] = rows(engine, clean_rows(checked))
    assert r["track_id"] == "AbC"  # case kept
    assert r["track_genre"] == "pop"
    assert r["duration_ms"] == 1500
    assert r["popularity"] == 50
    assert r["explicit"] is True
    assert r["track_name"] == "Name"
    assert r["_source_file"] == "a.csv"
    assert r["_line"] == 2


def test_song_track_id_is_case_sensitive_for_duplicates(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [song("abc"), song("ABC"), song("abc")]))
    assert reasons(engine, checked) == {2: "", 3: "", 4: "duplicate"}


def test_song_several_failures_give_every_reason(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [song("", genre="", duration="0", popularity="101", explicit="x")]))
    assert reasons(engine, checked) == {
        2: "track_id is empty; track_genre is empty; duration_ms out of range [1,86400000]; "
        "popularity out of range [0,100]; explicit is not True/False"
    }


def test_song_bad_rows_keep_original_text(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [song("T9", genre=" Pop ", duration="0")]))
    [r] = rows(engine, bad_rows(checked))
    assert r == {
        "track_id": "T9",
        "artists": "Artist",
        "track_name": "Name",
        "popularity": "50",
        "duration_ms": "0",
        "explicit": "False",
        "track_genre": " Pop ",
        "_source_file": "a.csv",
        "_line": 2,
        "_reasons": "duration_ms out of range [1,86400000]",
    }


def test_song_duplicates_are_judged_within_each_file(engine: Any) -> None:
    # across files a key is no duplicate: the merged dimension keeps the last file's (by name)
    t = raw_table(
        SONG_COLS,
        [
            (("b.csv", 2), *song("T1", genre="rock")),
            (("a.csv", 5), *song("T1", genre="pop")),
            (("a.csv", 3), *song("T2")),
            (("b.csv", 3), *song("T2")),
            (("b.csv", 4), *song("T2", genre="jazz")),
        ],
    )
    checked = check_songs(t)
    got = {(r["_source_file"], r["_line"]): r["_reasons"] for r in rows(engine, checked.table)}
    assert got == {("a.csv", 3): "", ("a.csv", 5): "", ("b.csv", 2): "", ("b.csv", 3): "", ("b.csv", 4): "duplicate"}


def test_song_duplicate_of_a_bad_row_is_not_a_duplicate(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [song("T1", duration="0"), song("T1"), song("T1")]))
    assert reasons(engine, checked) == {2: "duration_ms out of range [1,86400000]", 3: "", 4: "duplicate"}


# -- users ---------------------------------------------------------------------------------------


USER_FAILS = [
    (user(user_id="abc"), "user_id is not an integer"),
    (user(user_id="1.5"), "user_id is not an integer"),
    (user(user_id=""), "user_id is not an integer"),
    (user(age="12"), "user_age out of range [13,120]"),
    (user(age="121"), "user_age out of range [13,120]"),
    (user(age="thirty"), "user_age is not an integer"),
    (user(age=""), "user_age is not an integer"),
    (user(created="2024-13-01"), "created_at is not a date"),
    (user(created="yesterday"), "created_at is not a date"),
    (user(created=""), "created_at is not a date"),
    (user(created="2024-06-26"), "created_at is after the processing date"),
]


def test_user_rules(engine: Any) -> None:
    checked = check_users(raw_table(USER_COLS, [row for row, _ in USER_FAILS]), today=RUN_DATE)
    assert by_row(engine, checked, USER_FAILS) == USER_FAILS


USER_OK = [
    (user(age="13"), ""),
    (user(age="120"), ""),
    (user(created="2024-06-25"), ""),
    (user(created="2024-06-25T23:59:59"), ""),
    (user(created="2024-01-01T10:00:00Z"), ""),
    (user(created="2024-01-01 10:00:00+02:00"), ""),
    (user(created="2024-01-01T10:00:00-05"), ""),
]


def test_user_accepted(engine: Any) -> None:
    cases = [((str(100 + i), *row[1:]), "") for i, (row, _) in enumerate(USER_OK)]  # distinct user ids
    checked = check_users(raw_table(USER_COLS, [row for row, _ in cases]), today=RUN_DATE)
    assert by_row(engine, checked, cases) == cases


def test_user_age_bounds_configurable(engine: Any) -> None:
    t = raw_table(USER_COLS, [user("1", age="17"), user("2", age="18"), user("3", age="65"), user("4", age="66")])
    checked = check_users(t, today=RUN_DATE, min_age=18, max_age=65)
    assert reasons(engine, checked) == {
        2: "user_age out of range [18,65]",
        3: "",
        4: "",
        5: "user_age out of range [18,65]",
    }


def test_user_clean_values_are_typed(engine: Any) -> None:
    checked = check_users(raw_table(USER_COLS, [user(" 7 ", age="30", created="2024-01-02T03:04:05Z")]), today=RUN_DATE)
    [r] = rows(engine, clean_rows(checked))
    assert (r["user_id"], r["user_age"], r["created_at"]) == (7, 30, dt.date(2024, 1, 2))
    assert (r["user_name"], r["user_country"]) == ("Ann", "DE")


def test_user_several_failures(engine: Any) -> None:
    checked = check_users(raw_table(USER_COLS, [user("x", age="5", created="2024-13-01")]), today=RUN_DATE)
    assert reasons(engine, checked) == {
        2: "user_id is not an integer; user_age out of range [13,120]; created_at is not a date"
    }


def test_user_duplicates_judged_on_integer_value_within_each_file(engine: Any) -> None:
    t = raw_table(
        USER_COLS,
        [
            (("a.csv", 2), *user("1")),
            (("a.csv", 3), *user("01")),
            (("b.csv", 2), *user("1")),
            (("b.csv", 3), *user("2", age="5")),
            (("b.csv", 4), *user("2")),
        ],
    )
    checked = check_users(t, today=RUN_DATE)
    got = {(r["_source_file"], r["_line"]): r["_reasons"] for r in rows(engine, checked.table)}
    assert got == {
        ("a.csv", 2): "",
        ("a.csv", 3): "duplicate",
        ("b.csv", 2): "",
        ("b.csv", 3): "user_age out of range [13,120]",
        ("b.csv", 4): "",
    }


# -- streams -------------------------------------------------------------------------------------


@pytest.fixture
def refs(engine: Any) -> tuple[ir.Table, ir.Table]:
    """Clean songs T1, T2 (T3 is a bad song) and clean users 1, 2 (3 is a bad user)."""
    songs = check_songs(raw_table(SONG_COLS, [song("T1"), song("T2", duration="300000"), song("T3", duration="0")]))
    users = check_users(
        raw_table(USER_COLS, [user("1", created="2024-06-01"), user("2"), user("3", age="12")]), today=RUN_DATE
    )
    return clean_rows(songs), clean_rows(users)


def streams(refs: tuple[ir.Table, ir.Table], rows_: list[tuple[Any, ...]], run_time: dt.datetime = RUN_TIME) -> Checked:
    songs, users = refs
    return check_streams(raw_table(STREAM_COLS, rows_), songs=songs, users=users, now=run_time)


STREAM_FAILS = [
    (("9", "T1", "2024-06-25 10:00:00"), "unknown user_id"),
    (("3", "T1", "2024-06-25 10:00:00"), "unknown user_id"),  # user 3 is itself a bad row
    (("x", "T1", "2024-06-25 10:00:00"), "user_id is not an integer"),
    (("", "T1", "2024-06-25 10:00:00"), "user_id is not an integer"),
    (("1", "T9", "2024-06-25 10:00:00"), "unknown track_id"),
    (("1", "T3", "2024-06-25 10:00:00"), "unknown track_id"),  # song T3 is itself a bad row
    (("1", "t1", "2024-06-25 10:00:00"), "unknown track_id"),  # track ids are case-sensitive
    (("1", "", "2024-06-25 10:00:00"), "track_id is empty"),
    (("1", "  ", "2024-06-25 10:00:00"), "track_id is empty"),
    (("1", "T1", "garbage"), "listen_time is not a timestamp"),
    (("1", "T1", ""), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-25"), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-25 25:00:00"), "listen_time is not a timestamp"),
    # no engine decides a time that does not exist (DuckDB took 24:00 as the next midnight)
    (("1", "T1", "2024-06-25 24:00:00"), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-25T24:00:00Z"), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-25 23:60:00"), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-25 23:59:60"), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-25T23:59:60+01:00"), "listen_time is not a timestamp"),
    (("1", "T1", "2024-06-26 12:00:01"), "listen_time is more than 1 day after the processing time"),
    (("1", "T1", "2024-06-26T14:00:01+02:00"), "listen_time is more than 1 day after the processing time"),
]


def test_stream_rules(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    cases = [(("1", "T1", "2024-06-25 09:00:00"), ""), *STREAM_FAILS]
    checked = streams(refs, [row for row, _ in cases])
    assert by_row(engine, checked, cases) == cases


LISTEN_TIMES = [
    ("2024-06-25 23:30:00", dt.datetime(2024, 6, 25, 23, 30)),
    ("2024-06-25T23:30:00", dt.datetime(2024, 6, 25, 23, 30)),
    ("2024-06-25T23:30:00Z", dt.datetime(2024, 6, 25, 23, 30)),
    ("2024-06-25T23:30:00+02:00", dt.datetime(2024, 6, 25, 21, 30)),
    ("2024-06-25T23:30:00-02:00", dt.datetime(2024, 6, 26, 1, 30)),
    ("2024-06-25T23:30:00+0530", dt.datetime(2024, 6, 25, 18, 0)),
    ("2024-06-25T23:30:00+02", dt.datetime(2024, 6, 25, 21, 30)),  # ISO 8601 hour-only offset
    ("2024-06-25T23:30:00-02:30", dt.datetime(2024, 6, 26, 2, 0)),
    ("2024-06-25 23:30:00 +0200", dt.datetime(2024, 6, 25, 21, 30)),
    ("2024-06-25 23:30", dt.datetime(2024, 6, 25, 23, 30)),
    # 19 characters with a space at the 11th, like the plain form, but with an offset
    ("2024-06-25 23:30+02", dt.datetime(2024, 6, 25, 21, 30)),
    ("2024-06-25 23:30-01", dt.datetime(2024, 6, 26, 0, 30)),
    ("2024-06-25 1:30:00Z", None),  # one-digit hour: not ISO 8601 (DuckDB's cast alone takes it)
    ("2024-06-25 10:00:0Z", None),  # the plain form's shape, which the cast alone reads as 10:00:00
    (" 024-06-25 10:00:00", None),  # likewise, as the year 24
    ("2024-06-25 23:30:00.5", dt.datetime(2024, 6, 25, 23, 30, 0, 500000)),
    ("2024-06-25T23:30:00.250+01:00", dt.datetime(2024, 6, 25, 22, 30, 0, 250000)),
    ("2024-06-25", None),
    ("garbage", None),
    ("2024-02-30 10:00:00", None),
]


def test_listen_time_to_utc(engine: Any) -> None:
    t = ibis.memtable(pa.table({"s": pa.array([text for text, _ in LISTEN_TIMES], pa.string())}))
    got = engine.to_arrow(t.select("s", utc=parse_timestamp_utc(t.s))).to_pylist()
    by_text = {r["s"]: r["utc"] and r["utc"].replace(tzinfo=None) for r in got}
    assert [(text, by_text[text]) for text, _ in LISTEN_TIMES] == LISTEN_TIMES


def test_stream_check_reads_every_listen_time_form_to_utc(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    # check_streams splits plain and other forms (a cast, the patterns): the same UTC as above
    # (the typed value of every row: some of these are the same instant, so duplicates)
    checked = streams(refs, [("1", "T1", text) for text, _ in LISTEN_TIMES])
    got = {r["_line"]: r["_t_listen_time"] for r in rows(engine, checked.table)}
    assert [got[i + 2] and got[i + 2].replace(tzinfo=None) for i in range(len(LISTEN_TIMES))] == [
        utc for _, utc in LISTEN_TIMES
    ]


def test_stream_listen_time_exactly_one_day_after_run_time_is_allowed(
    engine: Any, refs: tuple[ir.Table, ir.Table]
) -> None:
    checked = streams(refs, [("1", "T1", "2024-06-26 12:00:00"), ("1", "T1", "2024-06-26T14:00:00+02:00")])
    assert reasons(engine, checked) == {2: "", 3: "duplicate"}


def test_stream_negative_offset_moves_the_utc_date(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(refs, [("1", "T1", "2024-06-25T23:30:00-02:00")])
    [r] = rows(engine, clean_rows(checked))
    assert r["listen_time"].date() == dt.date(2024, 6, 26)


def test_stream_clean_row_shape(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(refs, [(" 2 ", " T2 ", "2024-06-25 10:00:00")])
    [r] = rows(engine, clean_rows(checked))
    assert (r["user_id"], r["track_id"], r["_source_file"], r["_line"]) == (2, "T2", "a.csv", 2)
    assert r["listen_time"].replace(tzinfo=None) == dt.datetime(2024, 6, 25, 10)


def test_stream_several_failures_joined(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(refs, [("9", "T9", "nope"), ("x", "", "2024-06-27 00:00:00")])
    assert reasons(engine, checked) == {
        2: "unknown user_id; unknown track_id; listen_time is not a timestamp",
        3: "user_id is not an integer; track_id is empty; listen_time is more than 1 day after the processing time",
    }


def test_stream_bad_rows_keep_text(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(refs, [("9", "T1", "2024-06-25T23:30:00+02:00")])
    assert rows(engine, bad_rows(checked)) == [
        {
            "user_id": "9",
            "track_id": "T1",
            "listen_time": "2024-06-25T23:30:00+02:00",
            "_source_file": "a.csv",
            "_line": 2,
            "_reasons": "unknown user_id",
        }
    ]


def test_stream_duplicates_first_in_file_order_kept(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(
        refs,
        [
            (("a.csv", 4), "1", "T1", "2024-06-25 10:00:00"),
            (("a.csv", 2), "1", "T1", "2024-06-25 10:00:00"),
            (("a.csv", 3), "1", "T1", "2024-06-25T12:00:00+02:00"),  # same instant in UTC
            (("a.csv", 5), "1", "T2", "2024-06-25 10:00:00"),
        ],
    )
    assert reasons(engine, checked) == {2: "", 3: "duplicate", 4: "duplicate", 5: ""}


def test_stream_duplicates_keep_their_original_text(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    """A duplicate's text in the bad rows is its own, not its typed values written back: leading
    zeros, a sign, blanks, an offset, fractions; a plain value's too."""
    checked = streams(
        refs,
        [
            ("1", "T1", "2024-06-25 10:00:00"),
            ("+01", " T1 ", "2024-06-25T12:00:00.000+02:00"),  # the same event, written otherwise
            ("1", "T1", "2024-06-25 10:00:00"),  # the same, written the same
            ("1", "T2", "2024-06-25 10:00:00.5"),
            ("1", "T2", "2024-06-25T10:00:00.500Z"),
            ("x1", "T1", "2024-06-25 10:00:00"),  # a rule's failure: its text too
        ],
    )
    got = [
        (r["user_id"], r["track_id"], r["listen_time"], r["_line"], r["_reasons"])
        for r in rows(engine, bad_rows(checked))
    ]
    assert got == [
        ("+01", " T1 ", "2024-06-25T12:00:00.000+02:00", 3, "duplicate"),
        ("1", "T1", "2024-06-25 10:00:00", 4, "duplicate"),
        ("1", "T2", "2024-06-25T10:00:00.500Z", 6, "duplicate"),
        ("x1", "T1", "2024-06-25 10:00:00", 7, "user_id is not an integer"),
    ]


def test_stream_duplicates_judged_per_file(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(
        refs,
        [
            (("a.csv", 2), "1", "T1", "2024-06-25 10:00:00"),
            (("b.csv", 2), "1", "T1", "2024-06-25 10:00:00"),
            (("b.csv", 3), "1", "T1", "2024-06-25 10:00:00"),
        ],
    )
    got = {(r["_source_file"], r["_line"]): r["_reasons"] for r in rows(engine, checked.table)}
    assert got == {("a.csv", 2): "", ("b.csv", 2): "", ("b.csv", 3): "duplicate"}


def test_stream_duplicate_of_a_bad_row_is_not_a_duplicate(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(
        refs,
        [
            ("9", "T1", "2024-06-25 10:00:00"),
            ("9", "T1", "2024-06-25 10:00:00"),
            ("1", "T1", "2024-06-25 10:00:00"),
            ("1", "T1", "2024-06-25 10:00:00"),
        ],
    )
    assert reasons(engine, checked) == {2: "unknown user_id", 3: "unknown user_id", 4: "", 5: "duplicate"}


# -- counts and warnings -------------------------------------------------------------------------


def test_rule_counts_per_file_and_conservation(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    checked = streams(
        refs,
        [
            (("a.csv", 2), "1", "T1", "2024-06-25 10:00:00"),
            (("a.csv", 3), "1", "T1", "2024-06-25 10:00:00"),
            (("a.csv", 4), "9", "T9", "2024-06-25 10:00:00"),
            (("a.csv", 5), "2", "T2", "2024-06-25 11:00:00"),
            (("b.csv", 2), "x", "T1", "bad"),
            (("b.csv", 3), "2", "T1", "2024-06-25 10:00:00"),
            (("c.csv", 2), "1", "T2", "2024-06-25 12:00:00"),  # a file without bad rows
            (("d.csv", 2), "2", "T2", "2024-06-25 12:00:00"),
            (("d.csv", 3), "2", "T2", "2024-06-25 12:00:00"),  # a file whose only bad row is a duplicate
        ],
    )
    assert checked.duplicates is not None  # streams count from the rows before the mark + the duplicates
    counts = {r["_source_file"]: r for r in engine.to_arrow(rule_counts(checked)).to_pylist()}
    assert set(counts) == {"a.csv", "b.csv", "c.csv", "d.csv"}
    d = counts["d.csv"]
    assert (d["rows"], d["bad"], d["duplicate"], d["unknown user_id"]) == (2, 1, 1, 0)
    assert {k: n for k, n in counts["c.csv"].items() if k != "_source_file"} == {
        "rows": 1,
        "bad": 0,
        **dict.fromkeys(checked.rules, 0),
    }
    a, b = counts["a.csv"], counts["b.csv"]
    assert (a["rows"], a["bad"]) == (4, 2)
    assert (a["duplicate"], a["unknown user_id"], a["unknown track_id"], a["listen_time is not a timestamp"]) == (
        1,
        1,
        1,
        0,
    )
    assert (b["rows"], b["bad"]) == (2, 1)
    assert (b["user_id is not an integer"], b["listen_time is not a timestamp"], b["duplicate"]) == (1, 1, 0)
    for name, c in counts.items():
        clean = engine.to_arrow(clean_rows(checked).filter(ibis._._source_file == name)).num_rows
        bad = engine.to_arrow(bad_rows(checked).filter(ibis._._source_file == name)).num_rows
        assert clean + bad == c["rows"]
        assert bad == c["bad"]


def test_rule_counts_songs_has_a_column_per_rule(engine: Any) -> None:
    checked = check_songs(raw_table(SONG_COLS, [song("T1"), song("T1"), song("", duration="x")]))
    [c] = engine.to_arrow(rule_counts(checked)).to_pylist()
    assert c == {
        "_source_file": "a.csv",
        "rows": 3,
        "bad": 2,
        "track_id is empty": 1,
        "track_genre is empty": 0,
        "duration_ms is not an integer": 1,
        "duration_ms out of range [1,86400000]": 0,
        "popularity is not an integer": 0,
        "popularity out of range [0,100]": 0,
        "explicit is not True/False": 0,
        "duplicate": 1,
    }


def test_clean_summary_counts_events_and_early_listens(engine: Any, refs: tuple[ir.Table, ir.Table]) -> None:
    # user 1 was created on 2024-06-01, user 2 on 2024-01-01
    checked = streams(
        refs,
        [
            (("a.csv", 2), "1", "T1", "2024-05-31 23:59:59"),
            (("a.csv", 3), "1", "T1", "2024-06-01 00:00:00"),
            (("a.csv", 4), "1", "T2", "2024-01-01 10:00:00"),
            (("b.csv", 2), "2", "T1", "2024-01-01 00:00:00"),
        ],
    )
    got = engine.to_arrow(clean_summary(clean_rows(checked))).to_pylist()
    assert sorted((r["_source_file"], r["date"].isoformat(), r["rows"], r["early"]) for r in got) == [
        ("a.csv", "2024-01-01", 1, 1),
        ("a.csv", "2024-05-31", 1, 1),
        ("a.csv", "2024-06-01", 1, 0),
        ("b.csv", "2024-01-01", 1, 0),
    ]


def test_a_reason_that_contains_another_is_counted_exactly(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules are counted from their own booleans, not by looking for their text in `_reasons`: a
    rule whose reason contains another rule's reason does not inflate that rule's count."""
    import dataclasses

    from playcount import validation
    from playcount.contracts import USERS, Rule

    nested = Rule(
        "user_id_negative",
        "user_id is not an integer >= 0",
        lambda t, p: t._t_user_id.notnull() & (t._t_user_id < 0),
    )
    monkeypatch.setattr(validation, "USERS", dataclasses.replace(USERS, rules=(*USERS.rules, nested)))
    checked = check_users(
        raw_table(USER_COLS, [user("x"), user("-5"), user("-6"), user("7")]), today=dt.date(2024, 6, 25)
    )
    [c] = engine.to_arrow(rule_counts(checked)).to_pylist()
    assert (c["rows"], c["bad"]) == (4, 3)
    assert (c["user_id is not an integer"], c["user_id is not an integer >= 0"]) == (1, 2)


def test_every_rule_has_a_unique_name_and_reason_per_contract() -> None:
    from playcount.contracts import CONTRACTS, DUPLICATE

    for contract in CONTRACTS.values():
        names = [r.name for r in contract.rules]
        reasons = [r.reason for r in contract.rules]
        assert len(set(names)) == len(names) and len(set(reasons)) == len(reasons), contract.dataset
        assert DUPLICATE not in reasons
