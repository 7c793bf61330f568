"""How fast could any single-node DuckDB version of the run be? Hand-written SQL, timed step by step.

    python benchmarks/lower_bound.py                      # the 10M landing zone of run_benchmark.py
    python benchmarks/lower_bound.py --streams 1000000
    python benchmarks/lower_bound.py --days 30            # the landing zone with events over 30 dates

Does the least work the SPEC asks of a run, with none of playcount's bookkeeping: each stream file
loaded once (its row positions are its line numbers), the typed checks with the user and track
joins persisted once, duplicates within a file found by a key hash, the clean events written as
Parquet per (file, date), and the three KPIs' aggregates read back from them. It skips work the
real run must do (the ISO 8601 forms with offsets, the reason texts' counts, the bad rows' file,
the early-listen warnings, the run report), so it is a lower bound: the ratio it prints is the
best any design that materialises the checked rows once can reach on this machine. Same memory
limit (1 GB) as the run; the floor here is a count of the stream rows, in this process (not
`run_benchmark.py`'s floor, which also types the rows and writes them as Parquet).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from run_benchmark import data_dir  # this folder is on sys.path when run as a script

HERE = Path(__file__).resolve().parent
STREAM = "{'user_id': 'VARCHAR', 'track_id': 'VARCHAR', 'listen_time': 'VARCHAR'}"
CSV = "auto_detect=false, delim=',', quote='\"', escape='\"'"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def steps(con: duckdb.DuckDBPyConnection, raw: Path, out: str) -> list[tuple[str, str]]:
    """(name, SQL) of every step, in order."""
    files = sorted(glob.glob(str(raw / "streams" / "*.csv")))
    listing = "[" + ", ".join(_q(f) for f in files) + "]"
    load = "; ".join(
        f"CREATE TEMP TABLE r{i} AS SELECT * FROM read_csv({_q(f)}, header=true, columns={STREAM}, {CSV}, "
        f"strict_mode=false, null_padding=true)"
        for i, f in enumerate(files)
    )
    rows = " UNION ALL ".join(
        f"SELECT *, {_q(os.path.basename(f))} AS file, rowid + 2 AS line FROM r{i}" for i, f in enumerate(files)
    )
    typed = f"""
        SELECT file, line,
          CASE WHEN regexp_full_match(user_id, '[+-]?\\d{{1,18}}') THEN TRY_CAST(user_id AS BIGINT) END AS uid,
          NULLIF(track_id, '') AS track,
          CASE WHEN listen_time LIKE '____-__-__ __:__:__' THEN TRY_CAST(listen_time AS TIMESTAMP) END AS ts
        FROM ({rows})"""
    return [
        (
            "floor: count the stream rows",
            f"SELECT count(*) FROM read_csv({listing}, header=true, columns={STREAM}, {CSV}, ignore_errors=true)",
        ),
        (
            "reference data: users and songs",
            f"""
            CREATE TEMP TABLE users AS SELECT DISTINCT TRY_CAST(user_id AS BIGINT) AS user_id
            FROM read_csv({_q(str(raw / "users" / "users.csv"))}, all_varchar=true, strict_mode=false,
                          null_padding=true)
            WHERE TRY_CAST(user_id AS BIGINT) IS NOT NULL;
            CREATE TEMP TABLE songs AS SELECT track_id, any_value(lower(trim(track_genre))) AS genre,
                   any_value(TRY_CAST(duration_ms AS BIGINT)) AS duration_ms
            FROM read_csv({_q(str(raw / "songs" / "songs.csv"))}, all_varchar=true, quote='"', escape='"',
                          strict_mode=false, null_padding=true)
            WHERE track_id <> '' GROUP BY track_id""",
        ),
        ("load each stream file (position = line)", load),
        (
            "checks: typed values, user and track joins, persisted",
            f"""
            CREATE TEMP TABLE checked AS
            SELECT t.*, s.genre, s.duration_ms,
                   (t.uid IS NULL OR u.user_id IS NULL OR t.track IS NULL OR s.track_id IS NULL OR t.ts IS NULL
                    OR t.ts > now()::TIMESTAMP + INTERVAL 1 DAY) AS bad
            FROM ({typed}) t LEFT JOIN users u ON t.uid = u.user_id LEFT JOIN songs s ON t.track = s.track_id""",
        ),
        ("rows and bad rows per file", "SELECT file, count(*), count(*) FILTER (bad) FROM checked GROUP BY file"),
        (
            "duplicates within a file: key hash, then exact",
            """
            CREATE TEMP TABLE firsts AS
            SELECT uid, track, ts, file, min(line) AS first FROM checked
            WHERE NOT bad AND hash(uid, track, ts, file) IN (
                SELECT h FROM (SELECT hash(uid, track, ts, file) AS h, count(*) AS n FROM checked WHERE NOT bad
                               GROUP BY h) WHERE n > 1)
            GROUP BY ALL HAVING count(*) > 1""",
        ),
        (
            "write the clean events, one Parquet file per (file, date)",
            f"""
            COPY (SELECT c.uid AS user_id, c.track AS track_id, c.ts AS listen_time, CAST(c.ts AS DATE) AS date,
                         c.genre, c.duration_ms, c.duration_ms / 1000.0 AS listen_seconds, c.file
                  FROM checked c LEFT JOIN firsts f
                    ON c.uid = f.uid AND c.track = f.track AND c.ts = f.ts AND c.file = f.file
                  WHERE NOT c.bad AND (f.first IS NULL OR c.line = f.first))
            TO {_q(out)} (FORMAT parquet, PARTITION_BY (file, date), OVERWRITE_OR_IGNORE)""",
        ),
        (
            "kpis: keys repeated across files (hash)",
            f"""
            CREATE TEMP TABLE repeated AS SELECT h FROM (
                SELECT hash(user_id, track_id, listen_time) AS h, count(*) AS n
                FROM read_parquet({_q(out + "/*/*/*.parquet")}) GROUP BY h) WHERE n > 1""",
        ),
        (
            "kpis: per (genre, date) streams, users, listen time",
            f"""
            CREATE TEMP TABLE genre_kpis AS SELECT genre, date, count(*), count(DISTINCT user_id), sum(duration_ms)
            FROM read_parquet({_q(out + "/*/*/*.parquet")}) GROUP BY ALL""",
        ),
        (
            "kpis: streams per (date, genre, track)",
            f"""
            CREATE TEMP TABLE track_counts AS SELECT date, genre, track_id, count(*)
            FROM read_parquet({_q(out + "/*/*/*.parquet")}) GROUP BY ALL""",
        ),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=1, help="the landing zone with events over this many dates")
    p.add_argument("--data", type=Path, help="a landing zone (default: run_benchmark.py's for --streams, --days)")
    args = p.parse_args()
    data = args.data or data_dir(args.streams, days=args.days)
    if not (data / "raw_data").exists():
        shape = "one" if args.days == 1 else "thirty"
        sys.exit(f"no landing zone at {data}: run benchmarks/run_benchmark.py --streams {args.streams} --shape {shape}")
    with tempfile.TemporaryDirectory(prefix="playcount-bound-") as tmp:
        con = duckdb.connect()
        con.execute(
            f"SET memory_limit = '1GB'; SET temp_directory = {_q(tmp + '/spill')}; SET enable_progress_bar = false"
        )
        floor = total = 0.0
        for i, (name, sql) in enumerate(steps(con, data / "raw_data", tmp + "/events")):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            seconds = time.perf_counter() - started
            if i == 0:
                floor = seconds
            else:
                total += seconds
            print(f"{seconds:7.2f}s  {name}", flush=True)
    print(f"{total:7.2f}s  total, {total / floor:.1f}x the in-process count floor ({floor:.2f}s)")


if __name__ == "__main__":
    main()
