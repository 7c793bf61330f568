"""Tests of the synthetic landing-zone generator (playcount.generate)."""

from __future__ import annotations

import csv
import gzip
import re
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from playcount.generate import (
    FAULT_KINDS,
    SONGS_HEADER,
    STREAMS_HEADER,
    USERS_HEADER,
    GenerateResult,
    cover_streams,
    generate_landing_zone,
)

START = date(2024, 6, 25)
BAD = {"songs": 400, "users": 400, "streams": 3000, "files": 3, "bad_ratio": 0.05}


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


def _is_int(text: str) -> bool:
    return re.fullmatch(r"\s*[+-]?\d+\s*", text) is not None


def _parse_time(text: str) -> datetime | None:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _clean_songs(rows: list[list[str]]) -> tuple[set[str], int]:
    """A minimal SPEC validator: (clean track ids, bad rows)."""
    seen: set[str] = set()
    bad = 0
    for r in rows:
        if len(r) != len(SONGS_HEADER):
            bad += 1
            continue
        f = dict(zip(SONGS_HEADER, r, strict=True))
        tid = f["track_id"].strip()
        ok = (
            tid != ""
            and f["track_genre"].strip() != ""
            and _is_int(f["duration_ms"])
            and 1 <= int(f["duration_ms"]) <= 86_400_000
            and _is_int(f["popularity"])
            and 0 <= int(f["popularity"]) <= 100
            and f["explicit"].lower() in {"true", "false"}
        )
        if not ok or tid in seen:
            bad += 1
        else:
            seen.add(tid)
    return seen, bad


def _clean_users(rows: list[list[str]]) -> tuple[set[int], int]:
    seen: set[int] = set()
    bad = 0
    for r in rows:
        if len(r) != len(USERS_HEADER):
            bad += 1
            continue
        uid, _, age, _, created = r
        try:
            created_ok = date.fromisoformat(created) <= date.today()
        except ValueError:
            created_ok = False
        ok = _is_int(uid) and _is_int(age) and 13 <= int(age) <= 120 and created_ok
        if not ok or int(uid) in seen:
            bad += 1
        else:
            seen.add(int(uid))
    return seen, bad


def _bad_streams(rows: list[list[str]], users: set[int], tracks: set[str], days: int) -> int:
    end = datetime.combine(START, datetime.min.time(), UTC) + timedelta(days=days)
    begin = end - timedelta(days=days)
    seen: set[tuple[str, ...]] = set()
    bad = 0
    for r in rows:
        if len(r) != len(STREAMS_HEADER):
            bad += 1
            continue
        uid, tid, when = r
        ts = _parse_time(when)
        ok = _is_int(uid) and int(uid) in users and tid.strip() in tracks and ts is not None and begin <= ts < end
        if not ok or tuple(r) in seen:
            bad += 1
        else:
            seen.add(tuple(r))
    return bad


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    out = tmp_path_factory.mktemp("small")
    return generate_landing_zone(out, songs=300, users=200, streams=5000, files=4, days=2)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    return generate_landing_zone(tmp_path_factory.mktemp("faulty"), **BAD)


def test_layout_headers_and_counts(small: GenerateResult) -> None:
    raw = small.out / "raw_data"
    assert [p.name for p in small.stream_files] == [f"streams_00{i}.csv" for i in range(1, 5)]
    assert all(p.parent == raw / "streams" for p in small.stream_files)
    expected = {
        raw / "songs" / "songs.csv": (SONGS_HEADER, small.songs),
        raw / "users" / "users.csv": (USERS_HEADER, small.users),
    }
    for path, (header, count) in expected.items():
        head, rows = _read(path)
        assert tuple(head) == header
        assert len(rows) == count
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(header)
    total = 0
    for path in small.stream_files:
        assert path.read_text(encoding="utf-8").splitlines()[0] == "user_id,track_id,listen_time"
        head, rows = _read(path)
        assert tuple(head) == STREAMS_HEADER
        assert len(rows) == 1250  # split evenly
        total += len(rows)
    assert (small.songs, small.users, small.streams, total) == (300, 200, 5000, 5000)
    assert small.injected == {}


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    kw = {"songs": 250, "users": 200, "streams": 2000, "files": 2, "bad_ratio": 0.05}
    generate_landing_zone(tmp_path / "a", seed=7, **kw)
    generate_landing_zone(tmp_path / "b", seed=7, **kw)
    generate_landing_zone(tmp_path / "c", seed=8, **kw)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert len(a) == 4
    assert a == b
    assert all(a[name] != c[name] for name in a)


def test_songs_quoting_uniqueness_and_values(small: GenerateResult) -> None:
    path = small.out / "raw_data" / "songs" / "songs.csv"
    assert '""' in path.read_text(encoding="utf-8")
    _, rows = _read(path)
    names = [r[SONGS_HEADER.index("track_name")] for r in rows]
    tricky = [n for n in names if "," in n and '"' in n]
    assert tricky, "expected a track name with a comma and a quote"
    assert re.fullmatch(r'[^"]+, "[^"]+"', tricky[0])  # parsed back to its original text
    assert [int(r[0]) for r in rows] == list(range(300))
    ids = [r[1] for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9A-Za-z]{22}", t) for t in ids)
    assert any(t != t.lower() for t in ids)
    clean, bad = _clean_songs(rows)
    assert bad == 0 and len(clean) == 300
    genres = {r[-1] for r in rows}
    assert len({g.strip().lower() for g in genres}) >= 10


def test_users_and_streams_are_valid_and_consistent(small: GenerateResult) -> None:
    _, user_rows = _read(small.out / "raw_data" / "users" / "users.csv")
    users, bad_users = _clean_users(user_rows)
    assert bad_users == 0 and users == set(range(1, 201))
    ages = [int(r[2]) for r in user_rows]
    assert min(ages) >= 13 and max(ages) <= 80
    created = [date.fromisoformat(r[4]) for r in user_rows]
    assert START - timedelta(days=366) <= min(created) and max(created) < START
    _, song_rows = _read(small.out / "raw_data" / "songs" / "songs.csv")
    tracks, _ = _clean_songs(song_rows)
    iso = 0
    for path in small.stream_files:
        _, rows = _read(path)
        assert _bad_streams(rows, users, tracks, days=2) == 0
        iso += sum("T" in r[2] for r in rows)
    assert 10 <= iso <= 120  # about 1% of 5000 valid rows use ISO 8601 with an offset


def test_popularity_is_skewed(tmp_path: Path) -> None:
    res = generate_landing_zone(tmp_path, songs=1000, users=300, streams=20000, files=1)
    _, rows = _read(res.stream_files[0])
    plays = Counter(r[1] for r in rows)
    top = sum(c for _, c in plays.most_common(10))  # top 1% of the catalogue
    assert top / len(rows) > 0.10
    assert len(plays) > 500  # but the long tail is played too


def test_bad_ratio_injects_every_fault_kind(faulty: GenerateResult) -> None:
    assert set(faulty.injected) == set(FAULT_KINDS)
    assert all(count >= 1 for count in faulty.injected.values())
    assert faulty.injected["cross_file_repeat"] == 5


def test_injected_faults_match_an_independent_validator(faulty: GenerateResult) -> None:
    raw = faulty.out / "raw_data"

    def injected(prefix: str) -> int:
        return sum(v for k, v in faulty.injected.items() if k.startswith(prefix))

    _, song_rows = _read(raw / "songs" / "songs.csv")
    _, user_rows = _read(raw / "users" / "users.csv")
    tracks, bad_songs = _clean_songs(song_rows)
    users, bad_users = _clean_users(user_rows)
    assert bad_songs == injected("songs.") == 20
    assert bad_users == injected("users.") == 20
    assert len(song_rows) == 400 and len(user_rows) == 400

    bad_streams = 0
    for path in faulty.stream_files:
        _, rows = _read(path)
        assert len(rows) == 1000
        bad = _bad_streams(rows, users, tracks, days=1)
        assert 0 < bad / len(rows) < 0.10
        bad_streams += bad
    assert bad_streams == injected("streams.") == 150


def test_malformed_rows_have_another_field_count(faulty: GenerateResult) -> None:
    raw = faulty.out / "raw_data"
    for path, key, width in (
        (raw / "songs" / "songs.csv", "songs.malformed_row", len(SONGS_HEADER)),
        (raw / "users" / "users.csv", "users.malformed_row", len(USERS_HEADER)),
    ):
        _, rows = _read(path)
        assert sum(len(r) != width for r in rows) == faulty.injected[key]
    malformed = []
    for path in faulty.stream_files:
        assert '"' not in path.read_text(encoding="utf-8")  # no line got quoted by COPY
        _, rows = _read(path)
        malformed += [r for r in rows if len(r) != 3]
    assert len(malformed) == faulty.injected["streams.malformed_row"]


def test_cross_file_repeats_are_valid_rows_of_file_one(faulty: GenerateResult) -> None:
    first = {tuple(r) for r in _read(faulty.stream_files[0])[1]}
    second = [tuple(r) for r in _read(faulty.stream_files[1])[1]]
    third = [tuple(r) for r in _read(faulty.stream_files[2])[1]]
    assert len([r for r in second if r in first]) == 5
    assert not any(r in first for r in third if len(r) == 3 and r[1].strip())


def test_cover_streams_covers_every_track(faulty: GenerateResult, tmp_path: Path) -> None:
    streams_dir = tmp_path / "streams"
    (streams_dir / "gz").mkdir(parents=True)
    shutil.copy(faulty.stream_files[0], streams_dir / "a.csv")
    with (streams_dir / "gz" / "b.csv.gz").open("wb") as fh:
        fh.write(gzip.compress(faulty.stream_files[1].read_bytes()))
    (streams_dir / "notes.txt").write_text("ignored")

    out = tmp_path / "cover" / "songs.csv"
    written = cover_streams(streams_dir, out, seed=3, extra_songs=25)
    head, rows = _read(out)
    assert tuple(head) == SONGS_HEADER
    assert written == len(rows)
    clean, bad = _clean_songs(rows)
    assert bad == 0

    wanted = {r[1].strip() for p in faulty.stream_files[:2] for r in _read(p)[1] if len(r) >= 2 and r[1].strip()}
    assert wanted <= clean
    ids = [r[1] for r in rows]
    assert ids[: len(ids) - 25] == sorted(wanted)
    assert len(rows) == len(wanted) + 25


def test_cover_streams_on_lab_like_file_is_deterministic(tmp_path: Path) -> None:
    streams_dir = tmp_path / "in"
    streams_dir.mkdir()
    (streams_dir / "s.csv").write_text(
        "\ufeffuser_id,track_id,listen_time\r\n"
        "1,4dBa8T7oDV9WvGr7kVS4Ez,2024-06-25 17:43:13\r\n"
        "2,4dba8t7odv9wvgr7kvs4ez,2024-06-25 17:43:14\r\n"
        "3,4dBa8T7oDV9WvGr7kVS4Ez,2024-06-25 17:43:15\r\n",
        encoding="utf-8",
    )
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert cover_streams(streams_dir, a) == 2
    assert cover_streams(streams_dir, b) == 2
    assert a.read_bytes() == b.read_bytes()
    assert [r[1] for r in _read(a)[1]] == ["4dBa8T7oDV9WvGr7kVS4Ez", "4dba8t7odv9wvgr7kvs4ez"]


def test_cover_streams_without_files_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cover_streams(tmp_path, tmp_path / "songs.csv")


@pytest.mark.parametrize(
    "kwargs",
    [{"songs": 0}, {"streams": 2, "files": 3}, {"bad_ratio": -0.1}, {"bad_ratio": 0.9}],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate_landing_zone(tmp_path, **kwargs)  # type: ignore[arg-type]
