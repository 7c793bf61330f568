"""SPEC §1 file contract: `DuckDBEngine.read_csv` on small files written to tmp_path.

Most tests run twice: on DuckDB's CSV reader (`fast`, the Python reader forbidden) and on the exact
Python reader (`exact`, DuckDB's reader switched off), which must agree line for line.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from playcount.engine import DuckDBEngine, RawRead
from playcount.errors import SchemaError

REQUIRED = ("user_id", "track_id", "listen_time")
Read = Callable[..., RawRead]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    data = content.encode("utf-8") if isinstance(content, str) else content
    if name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def duck() -> DuckDBEngine:
    return DuckDBEngine(threads=1)


def _read(duck: DuckDBEngine, path: Path, required: tuple[str, ...] = REQUIRED) -> RawRead:
    return duck.read_csv(str(path), lambda: open(path, "rb"), path.name, required=required)


@pytest.fixture(params=["fast", "exact"])
def read(request: pytest.FixtureRequest, duck: DuckDBEngine, monkeypatch: pytest.MonkeyPatch) -> Read:
    """`read(path)`: read_csv on one path, pinned to DuckDB's reader or to the Python one."""
    if request.param == "fast":

        def no_fallback(*args: Any, **kwargs: Any) -> RawRead:
            raise AssertionError("the file should not need the Python reader")

        monkeypatch.setattr(duck, "_read_python", no_fallback)
    else:
        monkeypatch.setattr(duck, "_read_duckdb", lambda *args, **kwargs: None)
    return lambda path, required=REQUIRED: _read(duck, path, required)


def good(duck: DuckDBEngine, result: RawRead) -> list[dict[str, Any]]:
    return sorted(duck.to_arrow(result.table).to_pylist(), key=lambda r: r["_line"])


def bad(duck: DuckDBEngine, result: RawRead) -> list[dict[str, Any]]:
    return sorted(duck.to_arrow(result.malformed).to_pylist(), key=lambda r: r["_line"])


# -- well-formed files ---------------------------------------------------------------------------


def test_lines_and_values(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(tmp_path, "s.csv", "user_id,track_id,listen_time\n1,A,2024-06-25 10:00:00\n2,B,\n3,,x\n")
    result = read(path)
    assert result.source == "s.csv"
    assert result.columns == REQUIRED
    assert result.rows == 3
    assert good(duck, result) == [
        {"user_id": "1", "track_id": "A", "listen_time": "2024-06-25 10:00:00", "_source_file": "s.csv", "_line": 2},
        {"user_id": "2", "track_id": "B", "listen_time": None, "_source_file": "s.csv", "_line": 3},
        {"user_id": "3", "track_id": None, "listen_time": "x", "_source_file": "s.csv", "_line": 4},
    ]
    assert bad(duck, result) == []


def test_bom_crlf_and_no_final_newline(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(tmp_path, "s.csv", "\ufeffuser_id,track_id,listen_time\r\n1,A,t1\r\n2,B,t2")
    result = read(path)
    assert result.columns == REQUIRED
    got = [(r["user_id"], r["listen_time"], r["_line"]) for r in good(duck, result)]
    assert got == [("1", "t1", 2), ("2", "t2", 3)]


def test_gzip(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(tmp_path, "s.csv.gz", "user_id,track_id,listen_time\n1,A,t1\n2,B,t2\n")
    result = read(path)
    assert result.source == "s.csv.gz"
    assert [(r["user_id"], r["track_id"], r["_line"]) for r in good(duck, result)] == [("1", "A", 2), ("2", "B", 3)]


def test_doubled_quotes_read_back_exactly(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(
        tmp_path,
        "songs.csv",
        'track_id,track_name,artists\nT1,"Ave Maria, ""Ellens Gesang III""","Schubert, Franz"\nT2,"Plain",Me\n',
    )
    result = read(path, required=("track_id", "track_name"))
    assert [(r["track_id"], r["track_name"], r["artists"], r["_line"]) for r in good(duck, result)] == [
        ("T1", 'Ave Maria, "Ellens Gesang III"', "Schubert, Franz", 2),
        ("T2", "Plain", "Me", 3),
    ]


def test_extra_columns_carried_in_header_order(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(tmp_path, "s.csv", "device,user_id,track_id,listen_time,note\nphone,1,A,t1,hi\n")
    result = read(path)
    assert result.columns == ("device", "user_id", "track_id", "listen_time", "note")
    assert good(duck, result) == [
        {
            "device": "phone",
            "user_id": "1",
            "track_id": "A",
            "listen_time": "t1",
            "note": "hi",
            "_source_file": "s.csv",
            "_line": 2,
        }
    ]


def test_ragged_rows_are_malformed_with_their_line(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(
        tmp_path,
        "s.csv",
        "user_id,track_id,listen_time\n"
        "1,A,t1\n"  # line 2
        "2,B\n"  # line 3: too few
        "3,C,t3\n"  # line 4
        "4,D,t4,extra\n"  # line 5: too many
        "5,E,t5\n"  # line 6
        "6\n"  # line 7
        "7,G,t7\n",  # line 8
    )
    result = read(path)
    assert result.rows == 7
    assert [(r["user_id"], r["_line"]) for r in good(duck, result)] == [("1", 2), ("3", 4), ("5", 6), ("7", 8)]
    assert bad(duck, result) == [
        {"_source_file": "s.csv", "_line": 3, "_raw": "2,B", "_reasons": "malformed row (expected 3 fields, found 2)"},
        {
            "_source_file": "s.csv",
            "_line": 5,
            "_raw": "4,D,t4,extra",
            "_reasons": "malformed row (expected 3 fields, found 4)",
        },
        {"_source_file": "s.csv", "_line": 7, "_raw": "6", "_reasons": "malformed row (expected 3 fields, found 1)"},
    ]


def test_malformed_first_and_last_rows(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(tmp_path, "s.csv", "user_id,track_id,listen_time\r\n1,A\r\n2,B,t2\r\n3,C,t3\r\n4,D\r\n")
    result = read(path)
    assert [(r["user_id"], r["_line"]) for r in good(duck, result)] == [("2", 3), ("3", 4)]
    assert [(r["_line"], r["_raw"]) for r in bad(duck, result)] == [(2, "1,A"), (5, "4,D")]
    assert result.rows == 4


def test_rows_with_several_extra_fields(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    # the strict pass leaves such rows out (positions would no longer be lines): read again, padded
    path = write(
        tmp_path,
        "s.csv",
        'user_id,track_id,listen_time\n1,A,t1\n2,B,t2,x,y\n3,"C,c",t3\n4,D,t4,,\n5,E,"t,5",""\n6,F,t6\n',
    )
    result = read(path)
    assert [(r["user_id"], r["track_id"], r["_line"]) for r in good(duck, result)] == [
        ("1", "A", 2),
        ("3", "C,c", 4),
        ("6", "F", 7),
    ]
    assert [(r["_line"], r["_raw"], r["_reasons"]) for r in bad(duck, result)] == [
        (3, "2,B,t2,x,y", "malformed row (expected 3 fields, found 5)"),
        (5, "4,D,t4,,", "malformed row (expected 3 fields, found 5)"),
        (6, '5,E,"t,5",""', "malformed row (expected 3 fields, found 4)"),
    ]
    assert result.rows == 6


# -- files only the exact reader can number ------------------------------------------------------


def test_blank_line_keeps_physical_line_numbers(tmp_path: Path, duck: DuckDBEngine) -> None:
    path = write(tmp_path, "s.csv", "user_id,track_id,listen_time\n1,A,t1\n\n2,B,t2\n3,C\n4,D,t4\n\n")
    result = _read(duck, path)
    assert [(r["user_id"], r["_line"]) for r in good(duck, result)] == [("1", 2), ("2", 4), ("4", 6)]
    assert [(r["_line"], r["_raw"], r["_reasons"]) for r in bad(duck, result)] == [
        (5, "3,C", "malformed row (expected 3 fields, found 2)")
    ]
    assert result.rows == 4


def test_newline_inside_quoted_field(tmp_path: Path, duck: DuckDBEngine) -> None:
    path = write(
        tmp_path,
        "songs.csv",
        'track_id,track_name,artists\nT1,"two\nlines",A\nT2,x,B\nT3,"three\r\nline\nname",C\nT4,y\n',
    )
    result = _read(duck, path, required=("track_id",))
    assert [(r["track_id"], r["track_name"], r["_line"]) for r in good(duck, result)] == [
        ("T1", "two\nlines", 2),
        ("T2", "x", 4),
        ("T3", "three\r\nline\nname", 5),
    ]
    assert [(r["_line"], r["_raw"]) for r in bad(duck, result)] == [(8, "T4,y")]


# -- rejected files ------------------------------------------------------------------------------


def reject(read: Read, path: Path) -> str:
    with pytest.raises(SchemaError) as info:
        read(path)
    message = str(info.value)
    assert path.name in message
    assert info.value.context.get("file") == path.name
    return message


def test_missing_required_column_names_it(tmp_path: Path, read: Read) -> None:
    path = write(tmp_path, "s.csv", "user_id,track,listen_time\n1,A,t1\n")
    message = reject(read, path)
    assert "`track_id`" in message
    assert "required" in message


def test_header_only_file(tmp_path: Path, read: Read) -> None:
    assert "no data rows" in reject(read, write(tmp_path, "s.csv", "user_id,track_id,listen_time\n"))


def test_header_and_blank_lines_only(tmp_path: Path, read: Read) -> None:
    assert "no data rows" in reject(read, write(tmp_path, "s.csv", "user_id,track_id,listen_time\n\n\n"))


@pytest.mark.parametrize("content", ["", "\n", "\ufeff"])
def test_empty_file(tmp_path: Path, read: Read, content: str) -> None:
    assert "empty" in reject(read, write(tmp_path, "s.csv", content))


def test_empty_gz(tmp_path: Path, read: Read) -> None:
    assert "empty" in reject(read, write(tmp_path, "s.csv.gz", ""))


def test_not_utf8_in_first_rows(tmp_path: Path, read: Read) -> None:
    path = write(tmp_path, "s.csv", "user_id,track_id,listen_time\n1,caf\u00e9,t1\n".encode("latin-1"))
    message = reject(read, path)
    assert "is not valid UTF-8" in message
    assert "line `2`" in message


@pytest.mark.parametrize("name", ["s.csv", "s.csv.gz"])
@pytest.mark.parametrize("exact", [False, True])
def test_not_utf8_far_into_the_file_names_the_line(
    tmp_path: Path, duck: DuckDBEngine, monkeypatch: pytest.MonkeyPatch, exact: bool, name: str
) -> None:
    # far past the first decoded chunk: the header reads fine, DuckDB flags the row, the exact reader rejects
    if exact:
        monkeypatch.setattr(duck, "_read_duckdb", lambda *args, **kwargs: None)
    body = "".join(f"{i},T{i},2024-06-25 10:00:00\n" for i in range(2000))
    data = ("user_id,track_id,listen_time\n" + body + "9,caf\u00e9,t\n1,A,t\n").encode("latin-1")
    path = write(tmp_path, name, data)
    with pytest.raises(SchemaError) as info:
        _read(duck, path)
    assert f"`{name}` line `2002` is not valid UTF-8" in str(info.value)
    assert info.value.context == {"file": name, "line": 2002}


def test_corrupt_gz(tmp_path: Path, read: Read) -> None:
    path = tmp_path / "s.csv.gz"
    path.write_bytes(b"this is not gzip at all\n")
    reject(read, path)


def test_truncated_gz(tmp_path: Path, read: Read) -> None:
    body = "".join(f"{i},T{i},2024-06-25 10:00:00\n" for i in range(2000))
    data = gzip.compress(("user_id,track_id,listen_time\n" + body).encode())
    path = tmp_path / "s.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    reject(read, path)


def test_spaces_and_quoted_empty_kept_as_text(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    path = write(tmp_path, "s.csv", 'user_id,track_id,listen_time\n 1 , A ,""\n')
    assert [(r["user_id"], r["track_id"], r["listen_time"]) for r in good(duck, read(path))] == [(" 1 ", " A ", None)]


# -- the fast reader never disagrees with the exact one -------------------------------------------


def test_empty_fields_past_the_header_are_malformed(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    # DuckDB's own reader drops empty fields past the header's width: these rows have 4 or 5
    path = write(tmp_path, "s.csv", 'user_id,track_id,listen_time\n1,A,t,\n2,B,t,""\n3,C,\n4,,,\n5,E,t,,\n')
    result = read(path)
    assert [(r["user_id"], r["_line"]) for r in good(duck, result)] == [("3", 4)]
    assert [(r["_line"], r["_raw"], r["_reasons"]) for r in bad(duck, result)] == [
        (2, "1,A,t,", "malformed row (expected 3 fields, found 4)"),
        (3, '2,B,t,""', "malformed row (expected 3 fields, found 4)"),
        (5, "4,,,", "malformed row (expected 3 fields, found 4)"),
        (6, "5,E,t,,", "malformed row (expected 3 fields, found 5)"),
    ]


def test_a_field_equal_to_the_readers_null_sentinel_is_kept_as_text(tmp_path: Path, duck: DuckDBEngine) -> None:
    # DuckDB reads it as null, like a missing field: the exact reader takes the file
    from playcount.engine.duckdb import _NULL

    path = write(tmp_path, "s.csv", f"user_id,track_id,listen_time\n1,{_NULL},t1\n2,B\n")
    result = _read(duck, path)
    assert [(r["track_id"], r["_line"]) for r in good(duck, result)] == [(_NULL, 2)]
    assert [(r["_line"], r["_raw"]) for r in bad(duck, result)] == [(3, "2,B")]


def test_stray_quotes_read_by_the_exact_rules(tmp_path: Path, duck: DuckDBEngine) -> None:
    # DuckDB rejects `"A"x` (and then reports the wrong line's text): the exact reader takes the file
    path = write(tmp_path, "s.csv", 'user_id,track_id,listen_time\n1,"A"x,t\n"1","A"\n2,B"c,t\n')
    result = _read(duck, path)
    assert [(r["track_id"], r["_line"]) for r in good(duck, result)] == [("Ax", 2), ('B"c', 4)]
    assert [(r["_line"], r["_raw"]) for r in bad(duck, result)] == [(3, '"1","A"')]  # the text as written


def test_fast_and_exact_readers_agree_on_random_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    fields = ["1", "a", "", "", '""', '"a,b"', '"a""b"', '"a"x', 'a"b', " 1 ", '" a "']
    rng = random.Random(7)
    for i in range(60):
        end = rng.choice(["\n", "\r\n"])
        lines = [",".join(rng.choice(fields) for _ in range(rng.choice([1, 2, 3, 3, 3, 3, 4, 5]))) for _ in range(20)]
        path = write(tmp_path, f"f{i}.csv", "x,y,z" + end + end.join(lines) + end)
        results = []
        for exact in (False, True):
            duck = DuckDBEngine(threads=1)
            if exact:
                monkeypatch.setattr(duck, "_read_duckdb", lambda *args, **kwargs: None)
            r = _read(duck, path, required=())
            results.append((r.rows, good(duck, r), bad(duck, r)))
        assert results[0] == results[1], path.read_text()


def test_release_frees_the_rows_but_keeps_the_malformed_ones(tmp_path: Path, duck: DuckDBEngine, read: Read) -> None:
    def temp_objects() -> set[str]:
        tables = duck.db.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
        views = duck.db.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
        return {name for (name,) in tables + views}

    before = temp_objects()
    result = read(write(tmp_path, "s.csv", "user_id,track_id,listen_time\n1,A,t1\n2,B\n3,C,t3,\n4,D,t4\n"))
    assert [r["_line"] for r in good(duck, result)] == [2, 5]
    held = temp_objects() - before
    result.release()
    # only the malformed rows' table is left (the bad rows are written from it later)
    malformed = result.malformed.get_name().split(".")[-1]
    assert len(held) > 1 and temp_objects() - before == {malformed}
    assert [(r["_line"], r["_raw"]) for r in bad(duck, result)] == [(3, "2,B"), (4, "3,C,t3,")]


def test_scan_lines_counts_lines_and_fetches_wanted_ones_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import random

    import playcount.engine.reading as engine

    monkeypatch.setattr(engine, "_CHUNK", 7)  # lines span chunks, chunks hold no or many line ends
    rng = random.Random(3)
    for _ in range(300):
        lines = ["x" * rng.randrange(0, 12) + str(i) for i in range(rng.randrange(0, 30))]
        end = rng.choice(["\n", "\r\n"])
        data = (end.join(lines) + rng.choice(["", end, end + end])).encode()
        wanted = rng.sample(range(1, len(lines) + 1), k=min(5, len(lines)))
        physical, texts = engine.scan_lines(lambda data=data: io.BytesIO(data), "f.csv", wanted)
        assert physical == len(lines)
        assert texts == {w: lines[w - 1] for w in wanted}
        if lines:  # a lone CR in a line, wherever the chunks cut: more lines than records (the exact reader)
            i = rng.randrange(len(lines))
            with_cr = [*lines[:i], "\r" + lines[i], *lines[i + 1 :]]
            data = (end.join(with_cr) + end).encode()
            assert engine.scan_lines(lambda data=data: io.BytesIO(data), "f.csv")[0] > len(lines)
