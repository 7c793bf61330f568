"""The three daily KPI tables of SPEC §3. Pure Ibis: events with their song in, KPI tables out."""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from playcount.transform import EVENT_KEY

__all__ = [
    "repeated_keys",
    "unique_events",
    "song_index",
    "with_songs",
    "genre_kpis",
    "top_songs",
    "top_genres",
    "KPI_TABLES",
]

KPI_TABLES = ("genre_kpis", "top_songs", "top_genres")


@ibis.udf.scalar.builtin(name="hash")
def _event_hash(user_id: int, track_id: str, listen_time: dt.datetime) -> int:  # type: ignore[empty-body]
    """The engine's own hash of an event key (DuckDB: 64 bits, Spark: 32 bits), only ever compared
    with itself (declared int64: Spark has no unsigned type for DuckDB's UBIGINT)."""


def _key_hash(events: ir.Table) -> ir.IntegerValue:
    """The event key's hash, one bit shorter: DuckDB's unsigned 64 bits then fit int64 when stored."""
    return _event_hash(events.user_id, events.track_id, events.listen_time) >> 1


def repeated_keys(events: ir.Table) -> ir.Table:
    """`_h`: the hashes of the event keys (user_id, track_id, listen_time) seen more than once.

    One pass groups every event by one integer; the result is small (repeats and collisions),
    so a caller persists it and `unique_events` uses it twice without grouping again.
    """
    g = events.group_by(_h=_key_hash(events)).aggregate(_n=events.count())
    return g.filter(g._n > 1).select("_h")


def unique_events(events: ir.Table, repeated: ir.Table | None = None) -> ir.Table:
    """Each (user_id, track_id, listen_time) once, whichever files and runs it came from: the key
    and `date`.

    `repeated` is `repeated_keys(events)` (computed here when not given). Events whose key hash
    occurs once are unique as they are; only the few others are grouped by their exact key, so
    no ten-million-group aggregate of strings runs and nothing needs materialising. The date
    follows from the key (listen_time), so taking its minimum is deterministic.
    """
    repeated = repeated_keys(events) if repeated is None else repeated
    keyed = events.select(*EVENT_KEY, "date", _h=_key_hash(events))
    once = keyed.anti_join(repeated, keyed._h == repeated._h).drop("_h")
    maybe = keyed.semi_join(repeated, keyed._h == repeated._h)
    many = maybe.group_by(list(EVENT_KEY)).aggregate(date=maybe.date.min())
    return once.union(many)


def song_index(songs: ir.Table) -> ir.Table:
    """Per track of the songs dimension (one row per track_id): `track_id`, `genre`, `duration_ms`,
    `title`, `artist`, and two small integers, `_s` for the track and `_g` for its genre.

    The KPIs group ten million events by these integers, not by the strings: grouping and holding
    a narrow table costs a third of the strings' (the names are joined back on the few result rows).
    Titles come from the dimension, not from every event: a track that left the landing zone's
    songs file keeps its title (the dimension keeps its last version). Small: the caller
    materialises it once for every piece of dates.
    """
    s = songs.select(
        "track_id", genre=songs.track_genre, duration_ms=songs.duration_ms, title=songs.track_name, artist=songs.artists
    )
    return s.mutate(
        _s=ibis.row_number().over(order_by=s.track_id).cast("int32"),
        _g=ibis.dense_rank().over(order_by=s.genre).cast("int32"),
    )


def with_songs(events: ir.Table, index: ir.Table) -> ir.Table:
    """Events (`unique_events`) joined with their song of `song_index`: `date`, `user_id`, `_s`,
    `_g` and `_ms`, the song's duration in milliseconds (streams carry no duration: a stream counts
    as a full play). What `genre_kpis` and `top_songs` read; the caller materialises it once.

    Joined when KPIs are computed, not when events are written, so that every event of a date
    counts under the current version of its track (a re-labelled genre moves all of them). The
    join is inner: the dimension never loses a track, so only a track deleted from it by hand
    (docs/pipeline.md) takes its events out of the KPIs.
    """
    i = index.select(_track=index.track_id, _s=index._s, _g=index._g, _ms=index.duration_ms.cast("int32"))
    j = events.join(i, events.track_id == i._track)
    return j.select("date", "user_id", "_s", "_g", "_ms")


def _seconds_2dp(ms: ir.IntegerValue, n: ir.IntegerValue) -> ir.FloatingValue:
    """`ms / n` milliseconds in seconds, rounded half up to 2 decimals in integer arithmetic.

    Every engine agrees: rounding a float does not on ties (1.005 s: DuckDB 1.0, Spark 1.01).
    """
    return ((ms + 5 * n) // (10 * n)).cast("float64") / 100


def genre_kpis(events: ir.Table, index: ir.Table) -> ir.Table:
    """Per (genre, date): streams, distinct users, mean and total listen seconds.

    `events`: `with_songs`; `index`: `song_index`, for the genres' names."""
    # listen time is summed in whole milliseconds: an integer sum is exact, so every run (and
    # engine) gets the same figures; a float sum depends on the order parallel threads add in,
    # which flips a 2-decimal rounding now and then
    by = events.group_by(["_g", "date"]).aggregate(
        total_streams=events.count(),
        unique_users=events.user_id.nunique(),
        total_listen_ms=events._ms.cast("int64").sum(),
    )
    names = index.select(_n=index._g, genre=index.genre).distinct()
    g = by.join(names, by._g == names._n)
    return g.select(
        "genre",
        "date",
        "total_streams",
        "unique_users",
        avg_listen_time=_seconds_2dp(g.total_listen_ms, g.total_streams),
        total_listen_time=(g.total_listen_ms / 1000).round(3),
        avg_listen_time_per_user=_seconds_2dp(g.total_listen_ms, g.unique_users),
    ).order_by(["date", "genre"])


def top_songs(events: ir.Table, index: ir.Table, n: int = 3) -> ir.Table:
    """The top `n` tracks per (date, genre) by stream count desc, ties by track_id asc.

    `events`: `with_songs`; `index`: `song_index`. Ranked on integers: `_g` numbers the genres
    and `_s` the tracks in track_id order, so (date, `_g`) partitions as (date, genre) does and
    `_s` breaks ties as track_id does; the tracks' ids, genres, titles and artists are joined on
    the top `n` rows of each partition alone, not on every (date, track) count (30 dates: about
    three million rows, whose strings cost a second to rank).
    """
    by = events.group_by(["date", "_g", "_s"]).aggregate(stream_count=events.count())
    rank = ibis.row_number().over(group_by=[by.date, by._g], order_by=[by.stream_count.desc(), by._s.asc()]) + 1
    ranked = by.mutate(rank=rank)
    ranked = ranked.filter(ranked["rank"] <= n)
    t = index.select(_t=index._s, track_id=index.track_id, genre=index.genre, title=index.title, artist=index.artist)
    c = ranked.join(t, ranked._s == t._t)
    return c.select(
        "date",
        "genre",
        "track_id",
        "title",
        "artist",
        "stream_count",
        c["rank"].cast("int64").name("rank"),
        (c.date.cast("string") + "#" + c.genre).name("date#genre"),
    ).order_by(["date", "genre", "rank"])


def top_genres(genres: ir.Table, n: int = 5) -> ir.Table:
    """The top `n` genres per date by total streams desc, ties by genre asc (from `genre_kpis`)."""
    rank = ibis.row_number().over(group_by=genres.date, order_by=[genres.total_streams.desc(), genres.genre.asc()]) + 1
    ranked = genres.mutate(rank=rank)
    ranked = ranked.filter(ranked["rank"] <= n)
    return ranked.select("date", "genre", "total_streams", ranked["rank"].cast("int64").name("rank")).order_by(
        ["date", "rank"]
    )
