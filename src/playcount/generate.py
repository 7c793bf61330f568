"""Synthetic landing-zone generator with fault injection.

Writes a realistic landing zone (songs, users and stream CSV files, see SPEC section 1) under a
folder, optionally with a controlled share of bad rows covering every validation rule of SPEC
section 2. The output is fully determined by the arguments (same seed -> byte-identical files).

Songs and users are small (at most a few hundred thousand rows) and are written row by row with
the :mod:`csv` module. Stream events (the bulk, up to tens of millions) are generated vectorised
in DuckDB from a counter-based hash (so the result does not depend on the thread schedule), the
few faulty rows are merged in by position and each file is written with one ``COPY``.

Fault kinds are reported in :attr:`GenerateResult.injected` under the keys listed in
:data:`FAULT_KINDS`.
"""

from __future__ import annotations

import csv
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from playcount.contracts import SONGS, STREAMS, USERS
from playcount.engine import duckdb_literal

__all__ = [
    "FAULT_KINDS",
    "SONG_FAULTS",
    "SONGS_HEADER",
    "STREAM_FAULTS",
    "STREAMS_HEADER",
    "USER_FAULTS",
    "USERS_HEADER",
    "GenerateResult",
    "cover_streams",
    "generate_landing_zone",
]

#: The headers the generator writes: the contracts' canonical layouts (SPEC §1).
SONGS_HEADER: tuple[str, ...] = SONGS.columns
USERS_HEADER: tuple[str, ...] = USERS.columns
STREAMS_HEADER: tuple[str, ...] = STREAMS.columns

SONG_FAULTS: tuple[str, ...] = (
    "songs.track_id_empty",
    "songs.track_id_duplicate",
    "songs.track_genre_empty",
    "songs.duration_ms_not_integer",
    "songs.duration_ms_out_of_range",
    "songs.popularity_not_integer",
    "songs.popularity_out_of_range",
    "songs.explicit_invalid",
    "songs.malformed_row",
)
USER_FAULTS: tuple[str, ...] = (
    "users.user_id_not_integer",
    "users.user_id_duplicate",
    "users.user_age_not_integer",
    "users.user_age_out_of_range",
    "users.created_at_invalid",
    "users.created_at_future",
    "users.malformed_row",
)
STREAM_FAULTS: tuple[str, ...] = (
    "streams.user_id_not_integer",
    "streams.user_id_unknown",
    "streams.track_id_empty",
    "streams.track_id_unknown",
    "streams.listen_time_invalid",
    "streams.listen_time_future",
    "streams.duplicate",
    "streams.malformed_row",
)
CROSS_FILE_REPEAT = "cross_file_repeat"
FAULT_KINDS: tuple[str, ...] = (*SONG_FAULTS, *USER_FAULTS, *STREAM_FAULTS, CROSS_FILE_REPEAT)
"""Every key :attr:`GenerateResult.injected` may hold. All but ``cross_file_repeat`` are bad rows;
``cross_file_repeat`` counts valid events of stream file 1 repeated inside stream file 2."""

_BASE62 = string.digits + string.ascii_letters
_GENRES = (
    "acoustic", "afrobeat", "alt-rock", "ambient", "blues", "classical", "country", "dance",
    "edm", "folk", "hip-hop", "indie", "jazz", "k-pop", "latin", "metal", "pop", "r-n-b",
    "reggae", "rock",
)  # fmt: skip
_FIRST = (
    "Norma", "Jorge", "Elena", "Ravi", "Aiko", "Lucas", "Amara", "Noah", "Inès", "Mateo", "Sofia",
    "Kenji", "Chloe", "Omar", "Freya", "Diego", "Hana", "Liam", "Zara", "Yusuf", "Maya", "Oskar",
    "Priya", "Leon", "Nia", "Tomás", "Ava", "Björn", "Camila", "Felix",
)  # fmt: skip
_LAST = (
    "Fisher", "Sullivan", "Okafor", "Nakamura", "Silva", "Müller", "Kowalski", "Haddad", "Rossi",
    "Kim", "Dubois", "Novak", "García", "Andersen", "Patel", "Cohen", "O'Brien", "Ivanova",
    "Moreau", "Santos",
)  # fmt: skip
_ADJ = (
    "Blue", "Golden", "Silent", "Electric", "Broken", "Midnight", "Wild", "Neon", "Lost",
    "Crimson", "Endless", "Gentle", "Hollow", "Velvet", "Burning", "Frozen", "Secret", "Lonely",
    "Bright", "Restless",
)  # fmt: skip
_NOUN = (
    "Heart", "River", "Dream", "Light", "City", "Fire", "Ocean", "Shadow", "Road", "Rain",
    "Summer", "Star", "Garden", "Mirror", "Echo", "Storm", "Sky", "Night", "Wave", "Window",
)  # fmt: skip
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
_COUNTRIES = (
    ("United States", 90), ("United Kingdom", 2), ("Canada", 2), ("Australia", 2),
    ("Ireland", 1), ("New Zealand", 1), ("Germany", 1), ("Brazil", 1),
)  # fmt: skip
# Offsets (minutes, suffix) used by the ~1% of valid stream rows written in ISO 8601 form.
_ISO_OFFSETS = (
    (0, "Z"), (120, "+02:00"), (-300, "-05:00"), (330, "+05:30"),
    (540, "+09:00"), (-180, "-03:00"), (60, "+01:00"), (0, "+00:00"),
)  # fmt: skip
_ZIPF_SHARE = 0.7  # share of plays drawn from the Zipf-like head, the rest is uniform
_ISO_PER_MILLE = 10  # ~1% of valid stream rows use ISO 8601 with T and an offset
_CROSS_FILE_REPEATS = 5
_MAX_DURATION_MS = 86_400_000


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate_landing_zone` wrote.

    Attributes:
        out: The landing-zone root (``raw_data/`` lives under it).
        songs: Data rows written to the songs file (valid and bad).
        users: Data rows written to the users file (valid and bad).
        streams: Data rows written over all stream files (valid and bad).
        stream_files: The stream files, in order.
        injected: Fault kind (see :data:`FAULT_KINDS`) -> rows injected; only kinds with a
            non-zero count appear, so it is empty when ``bad_ratio`` is 0.
    """

    out: Path
    songs: int
    users: int
    streams: int
    stream_files: tuple[Path, ...]
    injected: dict[str, int]


# --------------------------------------------------------------------------------------------
# small helpers


def _track_id(rng: random.Random) -> str:
    return "".join(rng.choices(_BASE62, k=22))


def _unique_track_ids(rng: random.Random, n: int, taken: set[str] | None = None) -> list[str]:
    """``n`` distinct fresh track ids, none in ``taken``."""
    taken = taken or set()
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        tid = _track_id(rng)
        if tid not in seen and tid not in taken:
            seen.add(tid)
            out.append(tid)
    return out


def _artist_pool(rng: random.Random, n: int) -> list[str]:
    pool: list[str] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            pool.append(f"{rng.choice(_FIRST)} {rng.choice(_LAST)}")
        elif r < 0.8:
            pool.append(f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}s")
        else:
            pool.append(f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}")
    return pool


def _title(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    if r < 0.7:
        return f"{rng.choice(_NOUN)} of the {rng.choice(_NOUN)}"
    if r < 0.85:
        return f"{rng.choice(_NOUN)}"
    return f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} ({rng.choice(_ADJ)} Mix)"


def _track_name(rng: random.Random, *, force_quoted: bool = False) -> str:
    r = rng.random()
    if force_quoted or r < 0.01:
        # like `Ave Maria, "Ellens Gesang III"`: a comma and a quoted part
        return f'{_title(rng)}, "{rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_ROMAN)}"'
    if r < 0.04:
        return f"{_title(rng)}, Pt. {rng.choice(_ROMAN)}"
    return _title(rng)


def _genre(rng: random.Random) -> str:
    genre = rng.choice(_GENRES)
    r = rng.random()
    if r < 0.02:
        return genre.title()
    if r < 0.035:
        return f" {genre}"
    if r < 0.045:
        return f"{genre.upper()} "
    return genre


def _feature(x: float) -> str:
    return repr(round(x, 3))


def _song_fields(
    rng: random.Random, idx: int, track_id: str, popularity: int, artists: Sequence[str],
    *, force_quoted: bool = False,
) -> list[str]:  # fmt: skip
    """One valid songs row (all fields as text)."""
    n_artists = 1 if rng.random() < 0.75 else rng.randint(2, 3)
    artist = ";".join(rng.sample(artists, min(n_artists, len(artists))))
    name = _track_name(rng, force_quoted=force_quoted)
    r = rng.random()
    if r < 0.3:
        album = name
    elif r < 0.35:
        album = f"{rng.choice(_NOUN)}s, Vol. {rng.randint(1, 4)}"
    else:
        album = _title(rng)
    instrumental = rng.random() ** 6 if rng.random() < 0.7 else rng.random()
    return [
        str(idx),
        track_id,
        artist,
        album,
        name,
        str(popularity),
        str(max(30_000, min(900_000, int(rng.gauss(215_000, 60_000))))),
        "True" if rng.random() < 0.09 else "False",
        _feature(rng.betavariate(5, 3)),
        _feature(rng.betavariate(4, 2.5)),
        str(rng.randrange(12)),
        _feature(-abs(rng.gauss(8, 4))),
        str(1 if rng.random() < 0.63 else 0),
        _feature(0.02 + rng.random() ** 4 * 0.9),
        _feature(rng.random() ** 2),
        _feature(instrumental),
        _feature(0.02 + rng.random() ** 3 * 0.9),
        _feature(rng.random()),
        _feature(rng.uniform(60, 200)),
        str(rng.choices((3, 4, 5, 1), weights=(8, 88, 3, 1))[0]),
        _genre(rng),
    ]


def _popularity(rng: random.Random, rank: int, n: int) -> int:
    base = 85 * (1 - rank / max(n, 1)) ** 2.5
    return max(0, min(100, int(base + rng.gauss(0, 6))))


def _plan_faults(
    rng: random.Random, n: int, ratio: float, kinds: Sequence[str], *, start_kind: int = 0,
) -> dict[int, str]:  # fmt: skip
    """Pick ``round(ratio * n)`` positions (never position 0) and give each a fault kind,
    cycling through ``kinds`` from ``start_kind`` so every kind gets its share."""
    count = min(max(n - 1, 0), round(ratio * n))
    if count <= 0:
        return {}
    positions = sorted(rng.sample(range(1, n), count))
    labels = [kinds[(start_kind + j) % len(kinds)] for j in range(count)]
    rng.shuffle(labels)
    return dict(zip(positions, labels, strict=True))


def _earlier_good(rng: random.Random, pos: int, bad: dict[int, str] | set[int]) -> int:
    """A random position before ``pos`` that holds no fault (position 0 never does)."""
    for _ in range(64):
        q = rng.randrange(0, pos)
        if q not in bad:
            return q
    return 0


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


# --------------------------------------------------------------------------------------------
# songs and users


def _make_songs(
    rng: random.Random, n: int, ratio: float, injected: dict[str, int],
) -> tuple[list[list[str]], list[str], set[str]]:  # fmt: skip
    """Songs rows, the valid track ids ordered by play rank (most played first), and every
    track id present in the file."""
    track_ids = _unique_track_ids(rng, n)
    order = list(range(n))
    rng.shuffle(order)
    rank = [0] * n
    for r, i in enumerate(order):
        rank[i] = r
    artists = _artist_pool(rng, max(20, n // 5))
    rows = [
        _song_fields(rng, i, track_ids[i], _popularity(rng, rank[i], n), artists,
                     force_quoted=(i == 0))
        for i in range(n)
    ]  # fmt: skip
    faults = _plan_faults(rng, n, ratio, SONG_FAULTS)
    unusable: set[int] = set(faults)  # rows whose track must not be streamed
    col = {name: j for j, name in enumerate(SONGS_HEADER)}
    for pos, kind in faults.items():
        row = rows[pos]
        if kind == "songs.track_id_empty":
            row[col["track_id"]] = rng.choice(("", "  "))
        elif kind == "songs.track_id_duplicate":
            q = _earlier_good(rng, pos, faults)
            row[col["track_id"]] = track_ids[q]
            unusable.add(q)  # keep streams independent of the first-wins interpretation
        elif kind == "songs.track_genre_empty":
            row[col["track_genre"]] = rng.choice(("", " "))
        elif kind == "songs.duration_ms_not_integer":
            row[col["duration_ms"]] = rng.choice(("abc", "3:45", "n/a", "2l5000"))
        elif kind == "songs.duration_ms_out_of_range":
            too_long = str(_MAX_DURATION_MS + rng.randint(1, 10**7))
            row[col["duration_ms"]] = rng.choice(("0", too_long))
        elif kind == "songs.popularity_not_integer":
            row[col["popularity"]] = rng.choice(("abc", "high", "n/a"))
        elif kind == "songs.popularity_out_of_range":
            row[col["popularity"]] = rng.choice(("101", "150", "-1"))
        elif kind == "songs.explicit_invalid":
            row[col["explicit"]] = rng.choice(("maybe", "yes", "2"))
        else:  # songs.malformed_row
            rows[pos] = row[:-2] if rng.random() < 0.5 else [*row, "extra"]
        _bump(injected, kind)
    good = [i for i in range(n) if i not in unusable] or [i for i in range(n) if i not in faults]
    good.sort(key=lambda i: rank[i])
    return rows, [track_ids[i] for i in good], set(track_ids)


def _make_users(
    rng: random.Random, n: int, start: date, ratio: float, injected: dict[str, int],
) -> tuple[list[list[str]], list[int]]:  # fmt: skip
    """Users rows and the valid user ids."""
    countries = [c for c, _ in _COUNTRIES]
    weights = [w for _, w in _COUNTRIES]
    first_day = start - timedelta(days=365)
    rows: list[list[str]] = []
    for i in range(n):
        age = min(80, max(13, int(rng.triangular(13, 80, 27))))
        rows.append([
            str(i + 1),
            f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" if rng.random() > 0.005 else "",
            str(age),
            rng.choices(countries, weights)[0],
            (first_day + timedelta(days=rng.randrange(365))).isoformat(),
        ])  # fmt: skip
    faults = _plan_faults(rng, n, ratio, USER_FAULTS)
    unusable: set[int] = set(faults)
    for pos, kind in faults.items():
        row = rows[pos]
        if kind == "users.user_id_not_integer":
            row[0] = rng.choice(("abc", f"u{pos + 1}", f"{pos + 1}x", "N/A"))
        elif kind == "users.user_id_duplicate":
            q = _earlier_good(rng, pos, faults)
            row[0] = str(q + 1)
            unusable.add(q)
        elif kind == "users.user_age_not_integer":
            row[2] = rng.choice(("x", "abc", "twenty"))
        elif kind == "users.user_age_out_of_range":
            row[2] = rng.choice(("7", "200", "0", "-3"))
        elif kind == "users.created_at_invalid":
            row[4] = rng.choice(("not-a-date", "2024-02-30", "31/12/2023"))
        elif kind == "users.created_at_future":
            row[4] = date(2999, rng.randint(1, 12), rng.randint(1, 28)).isoformat()
        else:  # users.malformed_row
            rows[pos] = row[:-1] if rng.random() < 0.5 else [*row, "extra"]
        _bump(injected, kind)
    good = [i + 1 for i in range(n) if i not in unusable]
    return rows, good or [i + 1 for i in range(n) if i not in faults]


# --------------------------------------------------------------------------------------------
# streams


def _bulk_streams_sql(*, seed: int, offset: int, n: int, n_users: int, n_tracks: int,
                      start: date, days: int) -> str:  # fmt: skip
    """SQL creating temp table ``bulk(pos, line)``: ``n`` valid events, global ids from
    ``offset``. Pseudo-random numbers come from hashing the event counter, so the result is the
    same whatever the thread schedule."""

    # hash() of one distinct integer per (event, stream k); multi-argument hash() combines its
    # arguments in a way that correlates the streams, so it is not used.
    mix = random.Random(f"playcount-hash-{seed}").getrandbits(62)

    def h(k: int) -> str:
        return f"hash(xor(i * 16 + {k}, {mix}))"

    def u(k: int) -> str:
        return f"(({h(k)} >> 11)::DOUBLE / 9007199254740992.0)"

    minutes = "[" + ", ".join(str(m) for m, _ in _ISO_OFFSETS) + "]"
    suffixes = "[" + ", ".join(_sql_str(s) for _, s in _ISO_OFFSETS) + "]"
    span = days * 86_400
    return f"""
    CREATE OR REPLACE TEMP TABLE bulk AS
    WITH r AS (
        SELECT
            i - {offset} AS pos,
            ({h(1)} % {n_users})::BIGINT AS uidx,
            CASE WHEN {u(2)} < {_ZIPF_SHARE}
                 THEN least(floor(exp({u(3)} * ln({n_tracks} + 1)))::BIGINT - 1, {n_tracks - 1})
                 ELSE ({h(4)} % {n_tracks})::BIGINT END AS tidx,
            TIMESTAMP '{start.isoformat()} 00:00:00'
                + to_seconds(({h(5)} % {span})::BIGINT) AS ts,
            ({h(6)} % 1000)::INTEGER AS iso,
            ({h(7)} % {len(_ISO_OFFSETS)})::INTEGER + 1 AS off
        FROM range({offset}, {offset + n}) t(i)
    )
    SELECT r.pos,
           u.user_id::VARCHAR || ',' || t.track_id || ',' ||
           CASE WHEN r.iso < {_ISO_PER_MILLE}
                THEN strftime(r.ts + to_minutes({minutes}[r.off]), '%Y-%m-%dT%H:%M:%S')
                     || {suffixes}[r.off]
                ELSE strftime(r.ts, '%Y-%m-%d %H:%M:%S') END AS line
    FROM r
    JOIN users_lut u ON u.idx = r.uidx
    JOIN tracks_lut t ON t.rank = r.tidx
    """


def _stream_fault_line(
    rng: random.Random, kind: str, *, users: Sequence[int], tracks: Sequence[str], n_users: int,
    all_tracks: set[str], start: date, days: int,
) -> str:  # fmt: skip
    """One stream line (no quotes, tabs or newlines) failing (mostly) the rule ``kind``; a valid
    line for any other ``kind`` (e.g. ``"valid"``)."""
    uid = str(rng.choice(users))
    tid = tracks[min(int(len(tracks) * rng.random() ** 3), len(tracks) - 1)]
    ts = datetime.combine(start, datetime.min.time()) + timedelta(seconds=rng.randrange(days * 86_400))
    when = ts.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "streams.user_id_not_integer":
        uid = rng.choice(("abc", f"u{uid}", f"{uid}x", "N/A"))
    elif kind == "streams.user_id_unknown":
        uid = str(n_users + 1 + rng.randrange(1_000_000))
    elif kind == "streams.track_id_empty":
        tid = rng.choice(("", " "))
    elif kind == "streams.track_id_unknown":
        tid = _unique_track_ids(rng, 1, all_tracks)[0]
    elif kind == "streams.listen_time_invalid":
        when = rng.choice(("not-a-time", "2024-06-25 25:61:00", "2024-13-45 10:00:00", "tomorrow", "??"))
    elif kind == "streams.listen_time_future":
        when = ts.replace(year=2999, day=min(ts.day, 28)).strftime("%Y-%m-%d %H:%M:%S")
    elif kind == "streams.malformed_row":
        if rng.random() < 0.5:
            return f"{uid},{tid}"
        return f"{uid},{tid},{when},{rng.choice(('extra', '', '42'))}"
    return f"{uid},{tid},{when}"


def _write_streams(
    con: duckdb.DuckDBPyConnection, rng: random.Random, streams_dir: Path, *, seed: int,
    streams: int, files: int, ratio: float, users: Sequence[int], tracks: Sequence[str],
    n_users: int, all_tracks: set[str], start: date, days: int, injected: dict[str, int],
) -> tuple[Path, ...]:  # fmt: skip
    con.register(
        "users_lut",
        pa.table({"idx": pa.array(range(len(users)), pa.int64()),
                  "user_id": pa.array(users, pa.int64())}),
    )  # fmt: skip
    con.register(
        "tracks_lut",
        pa.table({"rank": pa.array(range(len(tracks)), pa.int64()),
                  "track_id": pa.array(tracks, pa.string())}),
    )  # fmt: skip
    con.execute("CREATE OR REPLACE TEMP TABLE seen (h UBIGINT)")
    streams_dir.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(files)))
    base, extra = divmod(streams, files)
    offset = 0
    kind_cursor = 0
    carried: list[str] = []  # valid lines of file 1 to repeat in file 2
    paths: list[Path] = []
    for f in range(files):
        n = base + (1 if f < extra else 0)
        path = streams_dir / f"streams_{f + 1:0{width}d}.csv"
        con.execute(
            _bulk_streams_sql(seed=seed, offset=offset, n=n, n_users=len(users),
                              n_tracks=len(tracks), start=start, days=days)
        )  # fmt: skip
        faults = _plan_faults(rng, n, ratio, STREAM_FAULTS, start_kind=kind_cursor)
        kind_cursor += len(faults)
        fault_pos: list[int] = []
        fault_line: list[str] = []
        # Chance repeats of (user, track, second) inside the file would be unplanned duplicate
        # rows: replace each later copy with a fresh valid event (a handful at 10M events).
        # The same for events equal to one of an earlier file (by 64-bit hash of the line).
        groups = con.execute("SELECT list_sort(list(pos)) FROM bulk GROUP BY line HAVING count(*) > 1").fetchall()
        chance = {p for (ps,) in groups for p in ps[1:]}
        if f > 0:
            chance.update(
                p for (p,) in con.execute(
                    "SELECT pos FROM bulk WHERE hash(line) IN (SELECT h FROM seen)"
                ).fetchall()
            )  # fmt: skip
        con.execute("INSERT INTO seen SELECT hash(line) FROM bulk")
        chance_dups = sorted(chance.difference(faults))
        for pos in chance_dups:
            fault_pos.append(pos)
            fault_line.append(
                _stream_fault_line(rng, "valid", users=users, tracks=tracks, n_users=n_users,
                                   all_tracks=all_tracks, start=start, days=days)
            )  # fmt: skip
        dup_src: dict[int, int] = {}
        replaced = set(faults).union(chance_dups)
        for pos, kind in faults.items():
            if kind == "streams.duplicate":
                dup_src[pos] = _earlier_good(rng, pos, replaced)
            else:
                fault_pos.append(pos)
                fault_line.append(
                    _stream_fault_line(rng, kind, users=users, tracks=tracks, n_users=n_users,
                                       all_tracks=all_tracks, start=start, days=days)
                )  # fmt: skip
            _bump(injected, kind)
        if ratio > 0 and f == 1 and carried:
            free = [p for p in range(1, n) if p not in replaced]
            for pos, line in zip(rng.sample(free, min(len(carried), len(free))), carried,
                                 strict=False):  # fmt: skip
                fault_pos.append(pos)
                fault_line.append(line)
                _bump(injected, CROSS_FILE_REPEAT)
        wanted = set(dup_src.values())
        if ratio > 0 and f == 0 and files > 1:
            good = [p for p in range(n) if p not in replaced]
            k = min(_CROSS_FILE_REPEATS, max(1, n // 20), len(good))
            repeat_src = sorted(rng.sample(good, k))
            wanted.update(repeat_src)
        else:
            repeat_src = []
        if wanted:
            lines = dict(
                con.execute(
                    "SELECT pos, line FROM bulk WHERE pos IN (SELECT unnest(?::BIGINT[]))",
                    [sorted(wanted)],
                ).fetchall()
            )
            for pos, src in dup_src.items():
                fault_pos.append(pos)
                fault_line.append(lines[src])
            carried = [lines[p] for p in repeat_src]
        con.register(
            "faults",
            pa.table({"pos": pa.array(fault_pos, pa.int64()),
                      "line": pa.array(fault_line, pa.string())}),
        )  # fmt: skip
        header = ",".join(STREAMS_HEADER)
        con.execute(
            f"""
            COPY (
                SELECT line AS "{header}" FROM (
                    SELECT pos, line FROM bulk WHERE pos NOT IN (SELECT pos FROM faults)
                    UNION ALL
                    SELECT pos, line FROM faults
                ) ORDER BY pos
            ) TO {_sql_str(str(path))} (FORMAT csv, HEADER true, DELIMITER '\t', QUOTE '"')
            """
        )
        con.unregister("faults")
        paths.append(path)
        offset += n
    con.execute("DROP TABLE IF EXISTS bulk")
    con.execute("DROP TABLE IF EXISTS seen")
    return tuple(paths)


# --------------------------------------------------------------------------------------------
# public API


def generate_landing_zone(
    out: Path,
    *,
    songs: int = 2000,
    users: int = 1000,
    streams: int = 20000,
    files: int = 3,
    days: int = 1,
    start: date = date(2024, 6, 25),
    bad_ratio: float = 0.0,
    seed: int = 42,
) -> GenerateResult:
    """Write a synthetic landing zone under ``out``.

    Layout: ``raw_data/songs/songs.csv``, ``raw_data/users/users.csv`` and
    ``raw_data/streams/streams_001.csv`` ... (``files`` of them, events split evenly; existing
    files of the same names are overwritten). Songs follow the public Spotify tracks layout
    (some names with commas and doubled quotes, genres in mixed case sometimes); users have ids
    ``1..users`` and a ``created_at`` in the year before ``start``; stream events are spread
    uniformly over ``days`` days from ``start`` (UTC), users uniformly, tracks Zipf-like (a few
    tracks take most plays). About 1% of valid events use ISO 8601 with ``T`` and an offset.

    With ``bad_ratio > 0`` about that share of each dataset's rows (and of each stream file's
    rows) are bad, spread over every rule of SPEC section 1-2 (see :data:`FAULT_KINDS`), each
    failing mostly one rule; a handful of valid events of file 1 are also repeated in file 2.
    Valid stream rows only reference valid songs and users. Same arguments -> byte-identical
    files.

    Args:
        out: Landing-zone root folder (created if missing).
        songs: Data rows in the songs file (bad ones included).
        users: Data rows in the users file (bad ones included).
        streams: Data rows over all stream files (bad ones included).
        files: Number of stream files.
        days: Number of days the events span, from ``start``.
        start: First event date (UTC).
        bad_ratio: Share of bad rows per dataset, 0 <= bad_ratio <= 0.5.
        seed: Seed of every random choice.

    Returns:
        What was written, with the injected fault counts.

    Raises:
        ValueError: On a non-positive size, ``streams < files`` or ``bad_ratio`` out of range.
    """
    if songs < 1 or users < 1 or files < 1 or days < 1:
        raise ValueError("songs, users, files and days must be >= 1")
    if streams < files:
        raise ValueError(f"streams ({streams}) must be >= files ({files})")
    if not 0.0 <= bad_ratio <= 0.5:
        raise ValueError(f"bad_ratio must be within [0, 0.5], got {bad_ratio}")
    out = Path(out)
    raw = out / "raw_data"
    injected: dict[str, int] = {}

    rng = random.Random(f"playcount-songs-{seed}")
    song_rows, tracks, all_tracks = _make_songs(rng, songs, bad_ratio, injected)
    _write_csv(raw / "songs" / "songs.csv", SONGS_HEADER, song_rows)

    rng = random.Random(f"playcount-users-{seed}")
    user_rows, valid_users = _make_users(rng, users, start, bad_ratio, injected)
    _write_csv(raw / "users" / "users.csv", USERS_HEADER, user_rows)

    rng = random.Random(f"playcount-streams-{seed}")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        stream_files = _write_streams(
            con, rng, raw / "streams", seed=seed, streams=streams, files=files,
            ratio=bad_ratio, users=valid_users, tracks=tracks, n_users=users,
            all_tracks=all_tracks, start=start, days=days, injected=injected,
        )  # fmt: skip
    finally:
        con.close()

    return GenerateResult(
        out=out,
        songs=len(song_rows),
        users=len(user_rows),
        streams=streams,
        stream_files=stream_files,
        injected={k: injected[k] for k in FAULT_KINDS if injected.get(k)},
    )


def _stream_track_ids(files: Sequence[Path]) -> list[str]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        rel = con.execute(
            """
            SELECT DISTINCT trim(track_id) AS t
            FROM read_csv(?, header = true, all_varchar = true, delim = ',', quote = '"',
                          escape = '"', strict_mode = false, null_padding = true,
                          ignore_errors = true, union_by_name = true)
            WHERE trim(track_id) <> ''
            """,
            [[duckdb_literal(str(p)) for p in files]],
        )
        return sorted(row[0] for row in rel.fetchall())
    except duckdb.BinderException as exc:
        raise ValueError(f"stream files lack a track_id column: {exc}") from exc
    finally:
        con.close()


def cover_streams(streams_dir: Path, out: Path, *, seed: int = 42, extra_songs: int = 0) -> int:
    """Write a songs CSV at `out` whose track ids cover every track_id found in the stream CSV(s)
    (.csv or .csv.gz) under `streams_dir` (case-sensitive ids, deduplicated, sorted), plus
    `extra_songs` random extra tracks. Returns rows written. All rows valid.

    Track ids are trimmed; empty ones are ignored. Files are searched recursively; rows with a
    wrong field count are skipped.

    Raises:
        FileNotFoundError: When no stream CSV is found under ``streams_dir``.
        ValueError: When the stream files have no ``track_id`` column, or ``extra_songs < 0``.
    """
    if extra_songs < 0:
        raise ValueError("extra_songs must be >= 0")
    streams_dir = Path(streams_dir)
    files = sorted(
        p for p in streams_dir.rglob("*")
        if p.is_file() and (p.name.endswith(".csv") or p.name.endswith(".csv.gz"))
    )  # fmt: skip
    if not files:
        raise FileNotFoundError(f"no .csv or .csv.gz stream file under {streams_dir}")
    covered = _stream_track_ids(files)
    rng = random.Random(f"playcount-cover-{seed}")
    track_ids = covered + _unique_track_ids(rng, extra_songs, set(covered))
    n = len(track_ids)
    artists = _artist_pool(rng, max(20, n // 5))
    rows = [
        _song_fields(rng, i, tid, _popularity(rng, rng.randrange(max(n, 1)), n), artists,
                     force_quoted=(i == 0))
        for i, tid in enumerate(track_ids)
    ]  # fmt: skip
    _write_csv(Path(out), SONGS_HEADER, rows)
    return n
