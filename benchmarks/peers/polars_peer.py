"""The run as one lean Polars script: what `playcount run` computes, with none of its bookkeeping.

    python benchmarks/peers/polars_peer.py ROOT OUT

Needs Polars (`pip install polars`; not a playcount dependency). Reads ROOT/raw_data/{songs,users,
streams}/*.csv; writes OUT/events/date=D/*.parquet (the clean, unique events) and
OUT/kpis/{genre_kpis,top_songs,top_genres}.parquet; prints a JSON summary (rows, bad, duplicates per
stream file, events, KPI rows). The same checks as SPEC §1 and §2 as `duckdb_peer.py` (see there),
the same things left out. Lines are split by hand (Polars' CSV reader pads short rows and truncates
long ones silently, so it cannot tell a malformed row): a line without a quote at each comma, one
with quotes by an RFC 4180 pattern.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path

try:
    import polars as pl
except ImportError:
    sys.exit("the Polars peer needs Polars: pip install polars")

WS = " \t\n\r\x0b\x0c"  # what Ibis's strip() trims
S = r"[\t\n\f\r ]"  # RE2's \s, as in playcount's patterns
INT = rf"^{S}*[+-]?\d{{1,18}}{S}*$"
OFFSET = r"Z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?"
HM = r"(?:[01]\d|2[0-3]):[0-5]\d"  # a time of day that exists (no 24:00, no second 60), as playcount
TS = rf"^{S}*(\d{{4}}-\d{{2}}-\d{{2}})[T ]({HM}(?::[0-5]\d(?:\.\d{{1,6}})?)?){S}*({OFFSET})?{S}*$"
DATE = rf"^{S}*(\d{{4}}-\d{{2}}-\d{{2}})(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d{{1,9}})?)?(?:{OFFSET})?)?{S}*$"
FIELD = r'(?:"((?:[^"]|"")*)"|([^,"]*))'
#: the plain form, read by a fixed format (no hour 24, no second 60: chrono takes :60 for a leap second)
PLAIN = r"^\d{4}-\d{2}-\d{2} (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$"


_last = [time.perf_counter()]


def lap(step: str) -> None:
    """The seconds since the previous step, on stderr."""
    now = time.perf_counter()
    print(f"{now - _last[0]:7.2f}s  {step}", file=sys.stderr, flush=True)
    _last[0] = now


def txt(e: pl.Expr) -> pl.Expr:
    s = e.str.strip_chars(WS)
    return pl.when(s != "").then(s)


def int_(e: pl.Expr) -> pl.Expr:
    return pl.when(e.str.contains(INT)).then(e.str.strip_chars(WS).str.to_integer(strict=False))


def wall(s: pl.Expr) -> pl.Expr:
    """`YYYY-MM-DD HH:MM:SS[.f]` (a time of day `TS` let through) as a timestamp."""
    return s.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False)


def iso(e: pl.Expr) -> pl.Expr:
    """UTC timestamp of ISO 8601 with an optional offset (or a time without seconds); else null. Slow: a
    regular expression with captures, 5 us a value, so only for the values `PLAIN` does not match."""
    g = e.str.extract_groups(TS)
    t, o = g.struct["2"], pl.when(g.struct["3"] != "").then(g.struct["3"]).otherwise(pl.lit("Z"))
    base = wall(g.struct["1"] + " " + pl.when(t.str.len_bytes() == 5).then(t + ":00").otherwise(t))
    digits = o.str.replace(":", "", literal=True)
    minutes = (
        pl.when(o == "Z")
        .then(0)
        .otherwise(
            pl.when(o.str.starts_with("-")).then(-1).otherwise(1)
            * (
                digits.str.slice(1, 2).str.to_integer(strict=False) * 60
                + digits.str.slice(3, 2).str.to_integer(strict=False).fill_null(0)
            )
        )
    )
    return base - pl.duration(minutes=minutes)


def listen_times(lf: pl.LazyFrame) -> pl.LazyFrame:
    """`ts`, the UTC timestamp of `listen_time`, or null when it is none or outside years 1-9999: the
    plain form by a fixed format, the rest (about 1%) by `iso`."""
    plain = pl.col("listen_time").str.contains(PLAIN)
    ts = pl.col("ts")
    return (
        pl.concat(
            [
                lf.filter(plain).with_columns(
                    ts=pl.col("listen_time").str.strptime(
                        pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False, cache=False
                    )
                ),
                lf.filter(~plain | pl.col("listen_time").is_null()).with_columns(ts=iso(pl.col("listen_time"))),
            ]
        )
        .with_columns(ts=pl.when(ts.dt.year().is_between(1, 9999)).then(ts))
        .drop("listen_time")
    )


def raw(
    dataset: str, root: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[pl.LazyFrame, list[str]]:
    """Every file's data lines as the required columns (text, '' as null), `file` (an index into the
    file names, also returned), `line`, `malformed`."""
    frames, names = [], []
    for path in sorted((root / "raw_data" / dataset).glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
        if not set(required) <= set(header):
            print(f"{path.name}: lacks a required column, rejected", file=sys.stderr)
            continue
        n, line = len(header), pl.col("line")
        lines = pl.scan_lines(path).with_row_index("_i").filter((pl.col("_i") > 0) & (line != ""))
        quoted = line.str.contains('"', literal=True)
        parts = line.str.split(",")
        plain = lines.filter(~quoted).select(
            "_i",
            malformed=parts.list.len() != n,
            **{c: parts.list.get(header.index(c), null_on_oob=True) for c in required + optional if c in header},
        )
        groups = line.str.extract_groups("^" + ",".join([FIELD] * n) + "$")
        q = lines.filter(quoted).select(
            "_i",
            malformed=groups.struct["1"].is_null() & groups.struct["2"].is_null(),
            **{
                c: pl.coalesce(
                    groups.struct[str(2 * header.index(c) + 1)].str.replace_all('""', '"', literal=True),
                    groups.struct[str(2 * header.index(c) + 2)],
                )
                for c in required + optional
                if c in header
            },
        )
        frames.append(
            pl.concat([plain, q], how="diagonal")
            .with_columns(
                *[
                    pl.when(pl.col(c) != "").then(pl.col(c)).alias(c)
                    if c in header
                    else pl.lit(None, pl.String).alias(c)
                    for c in required + optional
                ],
                file=pl.lit(len(names), pl.Int16),
            )
            .rename({"_i": "line"})
        )
        names.append(path.name)
    if not frames:
        sys.exit(f"no {dataset} file under {root / 'raw_data' / dataset}")
    return pl.concat(frames, how="diagonal"), names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--max-bad-ratio", type=float, default=0.10)
    args = p.parse_args()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    c = pl.col
    songs, _ = raw(
        "songs",
        args.root,
        ("track_id", "track_genre", "duration_ms", "track_name", "artists"),
        ("popularity", "explicit"),
    )
    songs = (
        songs.with_columns(track=txt(c.track_id), duration=int_(c.duration_ms), pop=int_(c.popularity))
        .filter(
            ~c.malformed
            & c.track.is_not_null()
            & txt(c.track_genre).is_not_null()
            & c.duration.is_between(1, 86_400_000).fill_null(False)
            & (c.popularity.is_null() | c.pop.is_between(0, 100).fill_null(False))
            & (txt(c.explicit).is_null() | c.explicit.str.strip_chars(WS).str.to_lowercase().is_in(["true", "false"]))
        )
        .sort("file", "line")
        .unique("track", keep="first", maintain_order=True)
        .select(
            track_id=c.track,
            genre=c.track_genre.str.strip_chars(WS).str.to_lowercase(),
            duration_ms=c.duration,
            title=c.track_name,
            artist=c.artists,
        )
        .with_row_index("sid")
        .collect()
    )
    lap("songs: read, check, first of each track")
    users = (
        raw("users", args.root, ("user_id", "user_age", "created_at", "user_name", "user_country"))[0]
        .filter(
            ~c.malformed
            & int_(c.user_id).is_not_null()
            & int_(c.user_age).is_between(13, 120).fill_null(False)
            & c.created_at.str.extract(DATE, 1)
            .str.to_date("%Y-%m-%d", strict=False)
            .is_between(dt.date(1, 1, 1), now.date())
            .fill_null(False)
        )
        .select(user_id=int_(c.user_id), known_user=pl.lit(True))
        .unique("user_id")
        .collect()
    )
    lap("users: read, check")
    streams, names = raw("streams", args.root, ("user_id", "track_id", "listen_time"))
    # collected first: the two halves of `listen_times` would each compute it again
    typed = streams.select("file", "malformed", "listen_time", uid=int_(c.user_id), track=txt(c.track_id)).collect()
    typed = listen_times(typed.lazy()).collect()
    lap("streams: read, split, type")
    # the checked rows hold the song's index, not its text
    checked = (
        typed.lazy()
        .join(users.lazy(), left_on="uid", right_on="user_id", how="left")
        .join(songs.lazy().select("track_id", "sid"), left_on="track", right_on="track_id", how="left")
        .select(
            "file",
            "uid",
            "sid",
            "ts",
            bad=c.malformed
            | c.known_user.is_null()
            | c.sid.is_null()
            | c.ts.is_null()
            | (c.ts > now + dt.timedelta(days=1)),
        )
        .collect()
    )
    del typed
    lap("streams: join users and songs")
    # duplicates (within a file) and repeats (across files) among the keys whose hash repeats: a
    # few thousand, so no aggregate of ten million keys
    ok = checked.filter(~c.bad).with_columns(h=pl.struct("uid", "sid", "ts").hash())
    repeated = ok.group_by("h").len().filter(c.len > 1).select("h")
    copies = ok.join(repeated, on="h", how="semi").group_by("file", "uid", "sid", "ts").len("n")
    files = (
        checked.group_by("file")
        .agg(rows=pl.len(), bad=c.bad.sum())
        .join(copies.group_by("file").agg(duplicates=(c.n - 1).sum()), on="file", how="left")
        .with_columns(c.duplicates.fill_null(0))
        .with_columns(bad=c.bad + c.duplicates)
        .with_columns(rejected=c.bad > args.max_bad_ratio * c.rows)
        .sort("file")
    )
    del checked
    lap("duplicates and repeats by key hash, per-file counts")
    accepted = files.filter(~c.rejected)["file"].implode()
    events = (
        pl.concat(
            [
                ok.join(repeated, on="h", how="anti").filter(c.file.is_in(accepted)).select("uid", "sid", "ts"),
                copies.filter(c.file.is_in(accepted)).select("uid", "sid", "ts").unique(),
            ]
        )
        .join(songs.select("sid", "track_id", "genre", "duration_ms"), on="sid")
        .select(
            user_id="uid",
            track_id="track_id",
            listen_time="ts",
            date=c.ts.dt.date(),
            genre="genre",
            duration_ms="duration_ms",
        )
    )
    del ok
    lap("unique events of the accepted files")
    events.write_parquet(args.out / "events", partition_by="date")
    lap("write the events, Parquet by date")
    g = events.group_by("genre", "date").agg(
        total_streams=pl.len(), unique_users=c.user_id.n_unique(), ms=c.duration_ms.sum()
    )
    # averages rounded half up in integer milliseconds, as playcount does (round(2): Polars divides a
    # column by a scalar as a product with its inverse, 238.64000000000001)
    genre_kpis = g.select(
        "genre",
        "date",
        c.total_streams.cast(pl.Int64),
        c.unique_users.cast(pl.Int64),
        avg_listen_time=(((c.ms + 5 * c.total_streams) // (10 * c.total_streams)) / 100).round(2),
        total_listen_time=(c.ms / 1000).round(3),
        avg_listen_time_per_user=(((c.ms + 5 * c.unique_users) // (10 * c.unique_users)) / 100).round(2),
    ).sort("date", "genre")
    top_songs = (
        events.group_by("date", "genre", "track_id")
        .agg(stream_count=pl.len().cast(pl.Int64))
        .sort("date", "genre", "stream_count", "track_id", descending=[False, False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("date", "genre"))
        .filter(c("rank") <= 3)
        .join(songs.select("track_id", "title", "artist"), on="track_id", how="left")
        .select(
            "date",
            "genre",
            "track_id",
            "title",
            "artist",
            "stream_count",
            "rank",
            (c.date.cast(pl.String) + "#" + c.genre).alias("date#genre"),
        )
    )
    top_genres = (
        genre_kpis.sort("date", "total_streams", "genre", descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("date"))
        .filter(c("rank") <= 5)
        .select("date", "genre", "total_streams", "rank")
    )
    (args.out / "kpis").mkdir(parents=True, exist_ok=True)
    kpis = {"genre_kpis": genre_kpis, "top_songs": top_songs, "top_genres": top_genres}
    for name, t in kpis.items():
        t.write_parquet(args.out / "kpis" / f"{name}.parquet")
    summary = {
        "files": {names[r.pop("file")]: r for r in files.to_dicts()},
        "events": events.height,
        "kpi_rows": {k: t.height for k, t in kpis.items()},
    }
    lap("KPIs")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
