"""The run as a plain PySpark job, as the original Glue design would write it: what `playcount run` computes.

    python benchmarks/peers/pyspark_peer.py ROOT OUT [--master local[2]] [--driver-memory 4g]

Reads ROOT/raw_data/{songs,users,streams}/*.csv with Spark's own CSV reader (split across tasks,
`escape='"'`, a wrong number of fields caught in a corrupt-record column); writes
OUT/events/date=D/*.parquet (the clean, unique events) and OUT/kpis/{genre_kpis,top_songs,top_genres}/
(one Parquet file each); prints a JSON summary (rows, bad, duplicates, rejected per stream file;
events; KPI rows) and the seconds of each action on stderr. The same checks as the DuckDB peer
(`duckdb_peer.py`) and SPEC §1 and §2: field counts, empty values, integers, ranges, dates,
timestamps (plain, or ISO 8601 with a real offset, converted to UTC; years 1-9999; at most a day
ahead), the user and track of a stream among the clean users and songs (broadcast joins),
duplicates (songs: the first good row in file order wins; streams: within a file), a file with more
than 10% bad rows rejected, each (user_id, track_id, listen_time) counted once. Not done: line
numbers, reasons, bad-row files, rejected-file moves, warnings, the ledger, archive, store, report;
records spanning lines; gzip. Columns are found by each file's header; extra ones are ignored. The
session has playcount's settings (UTC, a few shuffle partitions per core, UI off).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

WS = "[ \\t\\n\\u000B\\f\\r]"  # what playcount's strip() trims (Java regex)
INT = r"^\s*[+-]?\d{1,18}\s*$"
OFFSET = r"Z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?"  # one that exists: hours 00-14, minutes 00-59
# a time of day that exists (no 24:00, no second 60), as playcount
TS = rf"^\s*(\d{{4}})-(\d{{2}})-(\d{{2}})[T ]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d(?:\.\d{{1,6}})?))?\s*({OFFSET})?\s*$"
PLAIN = r"^\d{4}-\d{2}-\d{2} (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$"
DATE = rf"^\s*(\d{{4}}-\d{{2}}-\d{{2}})(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d{{1,9}})?)?(?:{OFFSET})?)?\s*$"
CORRUPT = "_corrupt"

_last = [time.perf_counter()]


def step(name: str) -> None:
    """Print the seconds since the previous step on stderr."""
    now = time.perf_counter()
    print(f"{now - _last[0]:7.2f}s  {name}", file=sys.stderr, flush=True)
    _last[0] = now


def trim(c: F.Column) -> F.Column:
    return F.regexp_replace(c, f"^{WS}+|{WS}+$", "")


def txt(c: F.Column) -> F.Column:
    return F.nullif(trim(c), F.lit(""))


def int_(c: F.Column) -> F.Column:
    return F.when(c.rlike(INT), trim(c).cast("bigint"))


def ts_(c: F.Column) -> F.Column:
    """A timestamp (UTC) or null: the plain form by a cast (an impossible date is null), the rest
    (about 1%) from the parts of `TS`."""
    return F.when(c.rlike(PLAIN), c.cast("timestamp")).otherwise(iso(c))


def iso(c: F.Column) -> F.Column:
    """`yyyy-mm-dd[T ]hh:mm[:ss[.ffffff]]` and an optional offset, converted to UTC; else null."""
    part = [F.regexp_extract(c, TS, i) for i in range(8)]
    year, month, day, hour, minute = (p.cast("int") for p in part[1:6])
    second = F.coalesce(F.nullif(part[6], F.lit("")).cast("decimal(8,6)"), F.lit(0).cast("decimal(8,6)"))
    local = F.when(c.rlike(TS), F.make_timestamp(year, month, day, hour, minute, second))
    o = F.regexp_replace(part[7], ":", "")
    minutes = F.when(o.isin("", "Z"), 0).otherwise(
        F.when(o.startswith("-"), -1).otherwise(1)
        * (o.substr(2, 2).cast("int") * 60 + F.coalesce(F.nullif(o.substr(4, 2), F.lit("")).cast("int"), F.lit(0)))
    )
    return local - F.make_dt_interval(F.lit(0), F.lit(0), minutes)


def inrange(t: F.Column) -> F.Column:
    return t.between(F.expr("TIMESTAMP'0001-01-01 00:00:00'"), F.expr("TIMESTAMP'9999-12-31 23:59:59.999999'"))


def raw(
    spark: SparkSession, root: Path, dataset: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[DataFrame, list[str]]:
    """Every file's rows: the required and optional columns (text; missing ones null), `file` (an index
    into the file names, also returned), `malformed`, `seq` (increasing in file order)."""
    frames, names = [], []
    for path in sorted((root / "raw_data" / dataset).glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
        if not set(required) <= set(header):
            print(f"{path.name}: lacks a required column, rejected", file=sys.stderr)
            continue
        schema = ", ".join(f"`c{i}` STRING" for i in range(len(header))) + f", `{CORRUPT}` STRING"
        df = spark.read.csv(
            str(path),
            schema=schema,
            header=True,
            escape='"',
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            encoding="UTF-8",
        )
        names.append(path.name)
        values = [
            (F.nullif(F.col(f"c{header.index(c)}"), F.lit("")) if c in header else F.lit(None).cast("string")).alias(c)
            for c in required + optional
        ]
        frames.append(
            df.select(*values, F.lit(len(names) - 1).alias("file"), F.col(CORRUPT).isNotNull().alias("malformed"))
        )
    if not frames:
        sys.exit(f"no {dataset} file under {root / 'raw_data' / dataset}")
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.withColumn("seq", F.monotonically_increasing_id()), names


def write_kpis(enriched: DataFrame, songs: DataFrame, out: Path) -> dict[str, int]:
    """The three KPI tables of the unique events `enriched` (with `date`, `genre`, `duration_ms`) and
    the songs' titles, each written as one Parquet file under `out`; their row counts."""
    n = F.col("total_streams")
    genre_kpis = (
        enriched.groupBy("genre", "date")
        .agg(
            F.count(F.lit(1)).alias("total_streams"),
            F.countDistinct("user_id").alias("unique_users"),
            F.sum("duration_ms").alias("ms"),
        )
        .select(
            "genre",
            "date",
            "total_streams",
            "unique_users",
            (F.floor((F.col("ms") + 5 * n) / (10 * n)) / 100).alias("avg_listen_time"),
            F.round(F.col("ms") / 1000, 3).alias("total_listen_time"),
            (F.floor((F.col("ms") + 5 * F.col("unique_users")) / (10 * F.col("unique_users"))) / 100).alias(
                "avg_listen_time_per_user"
            ),
        )
        .cache()
    )
    by_genre = Window.partitionBy("date", "genre").orderBy(F.col("stream_count").desc(), "track_id")
    top_songs = (
        enriched.groupBy("date", "genre", "track_id")
        .agg(F.count(F.lit(1)).alias("stream_count"))
        .withColumn("rank", F.row_number().over(by_genre))
        .where(F.col("rank") <= 3)
        .join(F.broadcast(songs.select("track_id", "title", "artist")), "track_id")
        .select(
            "date",
            "genre",
            "track_id",
            "title",
            "artist",
            "stream_count",
            "rank",
            F.concat(F.col("date").cast("string"), F.lit("#"), F.col("genre")).alias("date#genre"),
        )
    )
    by_date = Window.partitionBy("date").orderBy(F.col("total_streams").desc(), "genre")
    top_genres = (
        genre_kpis.select("date", "genre", "total_streams")
        .withColumn("rank", F.row_number().over(by_date))
        .where(F.col("rank") <= 5)
    )
    kpi_rows = {}
    for name, table in (("genre_kpis", genre_kpis), ("top_songs", top_songs), ("top_genres", top_genres)):
        table = table.cache()
        kpi_rows[name] = table.count()
        table.coalesce(1).write.mode("overwrite").parquet(str(out / name))
    return kpi_rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--master", default=os.environ.get("PLAYCOUNT_SPARK_MASTER", "local[2]"))
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--max-bad-ratio", type=float, default=0.10)
    args = p.parse_args()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(args.master)
        .appName("pyspark-peer")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(2, 2 * (os.cpu_count() or 1))))
        .config("spark.sql.session.timeZone", "UTC")
        # Spark 3.5's default (and Glue's): a bad date or number in a cast is null, not an error
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    step("session")

    songs, _ = raw(
        spark,
        args.root,
        "songs",
        ("track_id", "track_genre", "duration_ms", "track_name", "artists"),
        ("popularity", "explicit"),
    )
    popularity, explicit = txt(F.col("popularity")), txt(F.col("explicit"))
    checked_songs = songs.select(
        txt(F.col("track_id")).alias("track_id"),
        F.nullif(F.lower(trim(F.col("track_genre"))), F.lit("")).alias("genre"),
        int_(F.col("duration_ms")).alias("duration_ms"),
        F.col("track_name").alias("title"),
        F.col("artists").alias("artist"),
        "seq",
        (
            F.col("malformed")
            | txt(F.col("track_id")).isNull()
            | F.nullif(F.lower(trim(F.col("track_genre"))), F.lit("")).isNull()
            | ~F.coalesce(int_(F.col("duration_ms")).between(1, 86_400_000), F.lit(False))
            | (popularity.isNotNull() & ~F.coalesce(int_(popularity).between(0, 100), F.lit(False)))
            | (explicit.isNotNull() & ~F.lower(explicit).isin("true", "false"))
        ).alias("bad"),
    )
    first = Window.partitionBy("track_id", "bad").orderBy("seq")
    good_songs = (
        checked_songs.withColumn("n", F.row_number().over(first))
        .where(~F.col("bad") & (F.col("n") == 1))
        .drop("bad", "n", "seq")
        .cache()
    )
    good_songs.count()
    step("songs: read, check, first of each track")

    users, _ = raw(spark, args.root, "users", ("user_id", "user_age", "created_at", "user_name", "user_country"))
    created = F.nullif(F.regexp_extract(F.col("created_at"), DATE, 1), F.lit("")).cast("date")
    good_users = (
        users.where(
            ~F.col("malformed")
            & int_(F.col("user_id")).isNotNull()
            & F.coalesce(int_(F.col("user_age")).between(13, 120), F.lit(False))
            & created.between(F.expr("DATE'0001-01-01'"), F.lit(now.date()))
        )
        .select(int_(F.col("user_id")).alias("user_id"))
        .distinct()
        .cache()
    )
    good_users.count()
    step("users: read, check")

    streams, names = raw(spark, args.root, "streams", ("user_id", "track_id", "listen_time"))
    latest = now + dt.timedelta(days=1)
    typed = streams.select(
        "file",
        "malformed",
        int_(F.col("user_id")).alias("uid"),
        txt(F.col("track_id")).alias("track"),
        ts_(F.col("listen_time")).alias("ts"),
    )
    u = F.broadcast(good_users.select(F.col("user_id").alias("u_id")))
    s = F.broadcast(good_songs.select(F.col("track_id").alias("s_id")))
    checked = (
        typed.join(u, typed.uid == u.u_id, "left")
        .join(s, typed.track == s.s_id, "left")
        .select(
            "file",
            "uid",
            "track",
            "ts",
            (
                F.col("malformed")
                | F.col("u_id").isNull()
                | F.col("s_id").isNull()
                | ~F.coalesce(inrange(F.col("ts")), F.lit(False))
                | (F.col("ts") > F.lit(latest))
            ).alias("bad"),
        )
        .cache()
    )
    key = ["uid", "track", "ts"]
    copies = checked.where(~F.col("bad")).groupBy("file", *key).count().where(F.col("count") > 1)
    files_df = (
        checked.groupBy("file")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col("bad").cast("int")).alias("bad"))
        .join(copies.groupBy("file").agg(F.sum(F.col("count") - 1).alias("d")), "file", "left")
        .select(
            "file",
            "rows",
            (F.col("bad") + F.coalesce(F.col("d"), F.lit(0))).alias("bad"),
            F.coalesce(F.col("d"), F.lit(0)).alias("duplicates"),
        )
    )
    files = {}
    for r in files_df.collect():
        files[names[r["file"]]] = {
            "rows": r["rows"],
            "bad": r["bad"],
            "duplicates": r["duplicates"],
            "rejected": r["bad"] > args.max_bad_ratio * r["rows"],
        }
    step("streams: read, type, join users and songs; per-file counts and duplicates")

    accepted = [i for i, n in enumerate(names) if n in files and not files[n]["rejected"]]
    events = (
        checked.where(~F.col("bad") & F.col("file").isin(accepted))
        .select(F.col("uid").alias("user_id"), F.col("track").alias("track_id"), F.col("ts").alias("listen_time"))
        .dropDuplicates()
    )
    enriched = (
        events.join(F.broadcast(good_songs.select("track_id", "genre", "duration_ms")), "track_id")
        .withColumn("date", F.to_date("listen_time"))
        .cache()
    )
    enriched.select("user_id", "track_id", "listen_time", "date", "genre", "duration_ms").write.mode(
        "overwrite"
    ).partitionBy("date").parquet(str(args.out / "events"))
    step("unique events of the accepted files, Parquet by date")

    kpi_rows = write_kpis(enriched, good_songs, args.out / "kpis")
    events_count = enriched.count()
    step("KPIs")
    print(json.dumps({"files": files, "events": events_count, "kpi_rows": kpi_rows}, default=int))
    spark.stop()


if __name__ == "__main__":
    main()
