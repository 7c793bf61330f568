"""The PySpark peer plus the outputs playcount must give and the peer skips, as lean hand-written PySpark.

    python benchmarks/peers/pyspark_outputs_peer.py ROOT OUT [--master local[2]] [--driver-memory 4g]

What do SPEC §1-2's outputs cost on Spark, written plainly? The PySpark peer (`pyspark_peer.py`, whose
checks this reuses) plus: every row's line number, its reasons (every failed rule's text), the rows
and each rule's count per file, a bad-rows CSV per dataset (the original text, file, line, reasons,
in file order), the early-listen warnings per (file, date), the events written per (source file,
date) and the KPIs read back from them (SPEC §3: a date's KPIs count every event of that date stored
so far, not only this run's). As little work as that takes, written the obvious way: each dataset's
files read by Spark's text source in one scan (a line's number from its split's position, as
playcount's Spark reader does, with one small counting job first), fields split at commas or, on a
line with a quote, by an RFC 4180 pattern in the JVM; the checked stream rows persisted once, with
their text; duplicates found by one aggregate of the full key, as the peer does. Skipped: the exact
reader (records spanning lines, bad UTF-8; every file of a dataset must have the first one's
header here), caching the lines so that their numbers survive a change of a cluster's cores, the
ISO 8601 forms beyond the peer's, the ledger, moves, archive, store and report. A line with a stray
quote is split by the same pattern, not as Python's `csv` would, and the bad rows of a rejected file
are written too (neither matters on the generated lakes). Not a lower bound:
playcount, which persists the rows without their text and finds duplicates from a key hash, is
faster at 10M events; at 1M, where a run is mostly fixed costs, it shows what the outputs alone
add to the peer. Measured by `run_benchmark.py --engine spark --only pyspark --only outputs`.
Prints the seconds of each step on stderr and a JSON summary (per stream file: rows, bad,
duplicates, rejected; events; KPI rows) on stdout, as the peer does.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import json
import os
import sys
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark_peer import DATE, inrange, int_, step, ts_, txt, write_kpis  # this folder: the peer's own checks

FIELD = r',("(?:[^"]++|"")*+"|[^",]*+)'
"""One field of an RFC 4180 line, after its comma (the line is read with a comma put before it)."""


def _fields(v: Column) -> Column:
    """A line's fields: split at its commas, or, when it has a quote, quoted fields unquoted."""
    found = F.regexp_extract_all(F.concat(F.lit(","), v), F.lit(FIELD), 1)
    unquoted = F.transform(
        found,
        lambda x: F.when(x.startswith('"'), F.regexp_replace(x.substr(F.lit(2), F.length(x) - 2), '""', '"')).otherwise(
            x
        ),
    )
    return F.when(v.contains('"'), unquoted).otherwise(F.split(v, ",", -1))


def read(spark: SparkSession, root: Path, dataset: str) -> tuple[DataFrame, list[str]]:
    """Every data row of a dataset's files: `file` (name), `line` (1-based), `f` (the fields' text),
    `malformed` (a wrong number of fields); and the header's columns."""
    files = sorted((root / "raw_data" / dataset).glob("*.csv"))
    headers = set()
    for path in files:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            headers.add(tuple(next(csv.reader(fh), [])))
    if len(headers) != 1:
        sys.exit(f"{dataset}: every file must have the same header here")
    (header,) = headers
    text = spark.read.text([str(p) for p in files]).select(
        F.col("value").alias("v"),
        F.col("_metadata.file_name").alias("file"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("id"),
    )
    # line = lines of the file's splits before this one + place in the split (ids are consecutive
    # within a split's task)
    base = []
    splits = text.groupBy("file", "block").agg(F.count(F.lit(1)).alias("n"), F.min("id").alias("first")).collect()
    for file in {r["file"] for r in splits}:
        before = 0
        for r in sorted((r for r in splits if r["file"] == file), key=lambda r: r["block"]):
            base.append((file, r["block"], before - r["first"] + 1))
            before += r["n"]
    index = spark.createDataFrame(base, "file STRING, block BIGINT, base BIGINT")
    lined = text.join(F.broadcast(index), ["file", "block"]).select(
        "file", (F.col("id") + F.col("base")).alias("line"), "v"
    )
    rows = lined.where((F.col("line") > 1) & (F.col("v") != "")).select("file", "line", _fields(F.col("v")).alias("f"))
    return rows.select("file", "line", "f", (F.size("f") != len(header)).alias("malformed")), list(header)


def col(header: list[str], name: str) -> Column:
    """A column's text by the header, empty as null (null on a malformed row: its fields are not the columns)."""
    return F.when(~F.col("malformed"), F.nullif(F.col("f")[header.index(name)], F.lit("")))


def reasons(rules: dict[str, Column]) -> tuple[list[Column], Column]:
    """The rules' boolean columns (`r0`, `r1`, ...) and `reasons` (their texts joined by "; ", "" when none)."""
    flags = [F.coalesce(c, F.lit(False)).alias(f"r{i}") for i, c in enumerate(rules.values())]
    text = F.concat_ws("; ", *[F.when(F.col(f"r{i}"), F.lit(r)) for i, r in enumerate(rules)])
    return flags, text


def checked(rows: DataFrame, keep: list[Column], rules: dict[str, Column]) -> DataFrame:
    """`rows` with the columns `keep`, every rule's flag and `reasons` (the flags computed once)."""
    flags, text = reasons(rules)
    return rows.select("file", "line", "f", *keep, *flags).withColumn("reasons", text)


def rule_counts(t: DataFrame, rules: dict[str, Column], by: list[str]) -> list[dict]:
    """Rows, bad rows and each rule's count, grouped by `by`, in one aggregate."""
    return [
        r.asDict()
        for r in t.groupBy(*by)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum((F.col("reasons") != "").cast("int")).alias("bad"),
            *[F.sum(F.col(f"r{i}").cast("int")).alias(f"r{i}") for i in range(len(rules))],
        )
        .collect()
    ]


def write_bad(t: DataFrame, header: list[str], out: Path) -> None:
    """The bad rows as one CSV in file order: every column's text, file, line, reasons."""
    t.select(
        *[F.col("f")[i].alias(c) for i, c in enumerate(header)], F.col("file").alias("_source_file"), "line", "reasons"
    ).repartition(1).sortWithinPartitions("file", "line").write.mode("overwrite").option("header", "true").option(
        "escape", '"'
    ).csv(str(out))


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
        .appName("pyspark-outputs-peer")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(2, 2 * (os.cpu_count() or 1))))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    step("session")

    # songs: the first good row of each track in file order is kept, later good ones are duplicates
    rows, header = read(spark, args.root, "songs")
    c = functools.partial(col, header)
    song_rules = {
        "malformed row": F.col("malformed"),
        "track_id is empty": txt(c("track_id")).isNull(),
        "track_genre is empty": txt(c("track_genre")).isNull(),
        "duration_ms is not a whole number from 1 to 86400000": ~F.coalesce(
            int_(c("duration_ms")).between(1, 86_400_000), F.lit(False)
        ),
        "popularity is not a whole number from 0 to 100": txt(c("popularity")).isNotNull()
        & ~F.coalesce(int_(c("popularity")).between(0, 100), F.lit(False)),
        "explicit is not true or false": txt(c("explicit")).isNotNull()
        & ~F.lower(txt(c("explicit"))).isin("true", "false"),
    }
    songs = checked(
        rows,
        [
            txt(c("track_id")).alias("track_id"),
            F.lower(txt(c("track_genre"))).alias("genre"),
            int_(c("duration_ms")).alias("duration_ms"),
            c("track_name").alias("title"),
            c("artists").alias("artist"),
        ],
        song_rules,
    )
    first = Window.partitionBy("track_id", F.col("reasons") == "").orderBy("file", "line")
    songs = (
        songs.withColumn("n", F.row_number().over(first))
        .withColumn(
            "reasons", F.when((F.col("reasons") == "") & (F.col("n") > 1), "duplicate").otherwise(F.col("reasons"))
        )
        .withColumn("f", F.when(F.col("reasons") != "", F.col("f")))  # the text of bad rows alone
        .cache()
    )
    counts = rule_counts(songs, song_rules, ["file"])
    write_bad(songs.where(F.col("reasons") != ""), header, args.out / "bad" / "songs")
    good_songs = (
        songs.where(F.col("reasons") == "").select("track_id", "genre", "duration_ms", "title", "artist").cache()
    )
    good_songs.write.mode("overwrite").parquet(str(args.out / "songs"))
    step(f"songs: read, check, first of each track, bad rows ({sum(r['bad'] for r in counts)})")

    rows, header = read(spark, args.root, "users")
    c = functools.partial(col, header)
    created = F.nullif(F.regexp_extract(c("created_at"), DATE, 1), F.lit("")).cast("date")
    user_rules = {
        "malformed row": F.col("malformed"),
        "user_id is not a whole number": int_(c("user_id")).isNull(),
        "user_age is not a whole number from 13 to 120": ~F.coalesce(
            int_(c("user_age")).between(13, 120), F.lit(False)
        ),
        "created_at is not a date up to today": ~F.coalesce(
            created.between(F.expr("DATE'0001-01-01'"), F.lit(now.date())), F.lit(False)
        ),
    }
    users = checked(rows, [int_(c("user_id")).alias("user_id"), created.alias("created")], user_rules)
    users = users.withColumn("f", F.when(F.col("reasons") != "", F.col("f"))).cache()
    counts = rule_counts(users, user_rules, ["file"])
    write_bad(users.where(F.col("reasons") != ""), header, args.out / "bad" / "users")
    good_users = users.where(F.col("reasons") == "").groupBy("user_id").agg(F.min("created").alias("created")).cache()
    good_users.write.mode("overwrite").parquet(str(args.out / "users"))
    step(f"users: read, check, bad rows ({sum(r['bad'] for r in counts)})")

    rows, header = read(spark, args.root, "streams")
    c = functools.partial(col, header)
    latest = now + dt.timedelta(days=1)
    typed = rows.select(
        "file",
        "line",
        "f",
        "malformed",
        int_(c("user_id")).alias("uid"),
        txt(c("track_id")).alias("track"),
        ts_(c("listen_time")).alias("ts"),
    )
    u = F.broadcast(good_users.select(F.col("user_id").alias("u_id"), "created"))
    s = F.broadcast(good_songs.select(F.col("track_id").alias("s_id"), "genre", "duration_ms"))
    joined = typed.join(u, typed.uid == u.u_id, "left").join(s, typed.track == s.s_id, "left")
    stream_rules = {
        "malformed row": F.col("malformed"),
        "user_id is not a known user": F.col("u_id").isNull(),
        "track_id is not a known song": F.col("s_id").isNull(),
        "listen_time is not a timestamp": ~F.coalesce(inrange(F.col("ts")), F.lit(False)),
        "listen_time is more than a day ahead": F.col("ts") > F.lit(latest),
    }
    streams = checked(
        joined,
        [
            "uid",
            "track",
            "ts",
            "genre",
            "duration_ms",
            F.to_date("ts").alias("date"),
            F.coalesce(F.to_date("ts") < F.col("created"), F.lit(False)).alias("early"),
        ],
        stream_rules,
    ).cache()
    key = ["file", "uid", "track", "ts"]
    good = streams.where(F.col("reasons") == "")
    firsts = good.groupBy(*key).agg(F.count(F.lit(1)).alias("copies"), F.min("line").alias("first"))
    firsts = firsts.where(F.col("copies") > 1).drop("copies")
    dups = good.join(F.broadcast(firsts), key).where(F.col("line") > F.col("first")).select("file", "line").cache()
    by_date = rule_counts(streams, stream_rules, ["file", "date"])
    early = {
        (r["file"], r["date"]): r["early"]
        for r in good.groupBy("file", "date").agg(F.sum(F.col("early").cast("int")).alias("early")).collect()
    }
    duplicates = {r["file"]: r["n"] for r in dups.groupBy("file").agg(F.count(F.lit(1)).alias("n")).collect()}
    files: dict[str, dict] = {}
    for r in by_date:
        f = files.setdefault(r["file"], {"rows": 0, "bad": 0, "duplicates": duplicates.get(r["file"], 0), "early": 0})
        f["rows"] += r["rows"]
        f["bad"] += r["bad"]
        f["early"] += early.get((r["file"], r["date"]), 0)
    for f in files.values():
        f["bad"] += f["duplicates"]
        f["rejected"] = f["bad"] > args.max_bad_ratio * f["rows"]
    step("streams: read, check, join users and songs, reasons; counts per file, date and rule; duplicates")

    marked = streams.join(F.broadcast(dups.withColumn("dup", F.lit(True))), ["file", "line"], "left")
    bad = marked.where((F.col("reasons") != "") | F.col("dup").isNotNull()).withColumn(
        "reasons", F.when(F.col("dup").isNotNull(), "duplicate").otherwise(F.col("reasons"))
    )
    write_bad(bad, header, args.out / "bad" / "streams")
    accepted = [name for name, f in files.items() if not f["rejected"]]
    events = marked.where((F.col("reasons") == "") & F.col("dup").isNull() & F.col("file").isin(accepted)).select(
        F.col("uid").alias("user_id"),
        F.col("track").alias("track_id"),
        F.col("ts").alias("listen_time"),
        "genre",
        "duration_ms",
        "date",
        "file",
    )
    events.repartition("date", "file").write.mode("overwrite").partitionBy("date", "file").parquet(
        str(args.out / "events")
    )
    step("streams: bad rows; clean events, Parquet per (date, source file)")

    enriched = (
        spark.read.parquet(str(args.out / "events")).dropDuplicates(["user_id", "track_id", "listen_time"]).cache()
    )
    kpi_rows = write_kpis(enriched, good_songs, args.out / "kpis")
    events_count = enriched.count()
    step("KPIs")
    summary = {name: {k: v for k, v in f.items() if k != "early"} for name, f in sorted(files.items())}
    print(json.dumps({"files": summary, "events": events_count, "kpi_rows": kpi_rows}, default=int))
    spark.stop()


if __name__ == "__main__":
    main()
