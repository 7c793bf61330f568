"""The three daily KPI tables of SPEC §3. Pure Ibis: enriched events in, KPI tables out."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from playcount.transform import EVENT_KEY

__all__ = ["unique_events", "song_titles", "genre_kpis", "top_songs", "top_genres", "KPI_TABLES"]

KPI_TABLES = ("genre_kpis", "top_songs", "top_genres")


def unique_events(events: ir.Table) -> ir.Table:
    """Each (user_id, track_id, listen_time) once, whichever files and runs it came from: the key,
    `date`, `genre` and `listen_seconds` (song titles come from `song_titles`).

    Repeats carry the same song, so taking the minimum of the other columns is deterministic.
    Titles and artists stay out: carried through a ten-million-group aggregate they would
    double its memory for values only the top songs show.
    """
    return events.group_by(list(EVENT_KEY)).aggregate(
        date=events.date.min(),
        genre=events.genre.min(),
        listen_seconds=events.listen_seconds.min(),
    )


def song_titles(events: ir.Table) -> ir.Table:
    """Per (date, track_id) of enriched events: the song's `title` and `artist`."""
    return events.group_by(["date", "track_id"]).aggregate(
        title=events.track_name.min(), artist=events.artists.min()
    )


def _seconds_2dp(ms: ir.IntegerValue, n: ir.IntegerValue) -> ir.FloatingValue:
    """`ms / n` milliseconds in seconds, rounded half up to 2 decimals in integer arithmetic.

    Every engine agrees: rounding a float does not on ties (1.005 s: DuckDB 1.0, Spark 1.01).
    """
    return ((ms + 5 * n) // (10 * n)).cast("float64") / 100


def genre_kpis(events: ir.Table) -> ir.Table:
    """Per (genre, date): streams, distinct users, mean and total listen seconds."""
    # listen time is summed in whole milliseconds: an integer sum is exact, so every run (and
    # engine) gets the same figures; a float sum depends on the order parallel threads add in,
    # which flips a 2-decimal rounding now and then
    ms = (events.listen_seconds * 1000).round().cast("int64")
    g = events.group_by(["genre", "date"]).aggregate(
        total_streams=events.count(),
        unique_users=events.user_id.nunique(),
        total_listen_ms=ms.sum(),
    )
    return g.select(
        "genre",
        "date",
        "total_streams",
        "unique_users",
        avg_listen_time=_seconds_2dp(g.total_listen_ms, g.total_streams),
        total_listen_time=(g.total_listen_ms / 1000).round(3),
        avg_listen_time_per_user=_seconds_2dp(g.total_listen_ms, g.unique_users),
    ).order_by(["date", "genre"])


def top_songs(events: ir.Table, titles: ir.Table, n: int = 3) -> ir.Table:
    """The top `n` tracks per (date, genre) by stream count desc, ties by track_id asc.

    `events`: `unique_events`; `titles`: `song_titles` of the same events.
    """
    c = events.group_by(["date", "genre", "track_id"]).aggregate(stream_count=events.count())
    rank = ibis.row_number().over(
        group_by=[c.date, c.genre], order_by=[c.stream_count.desc(), c.track_id.asc()]
    ) + 1
    ranked = c.mutate(rank=rank)
    ranked = ranked.filter(ranked["rank"] <= n)
    t = titles.select(_d=titles.date, _t=titles.track_id, title=titles.title, artist=titles.artist)
    ranked = ranked.left_join(t, [ranked.date == t._d, ranked.track_id == t._t])
    return ranked.select(
        "date",
        "genre",
        "track_id",
        "title",
        "artist",
        "stream_count",
        ranked["rank"].cast("int64").name("rank"),
        (ranked.date.cast("string") + "#" + ranked.genre).name("date#genre"),
    ).order_by(["date", "genre", "rank"])


def top_genres(genres: ir.Table, n: int = 5) -> ir.Table:
    """The top `n` genres per date by total streams desc, ties by genre asc (from `genre_kpis`)."""
    rank = ibis.row_number().over(
        group_by=genres.date, order_by=[genres.total_streams.desc(), genres.genre.asc()]
    ) + 1
    ranked = genres.mutate(rank=rank)
    ranked = ranked.filter(ranked["rank"] <= n)
    return ranked.select(
        "date", "genre", "total_streams", ranked["rank"].cast("int64").name("rank")
    ).order_by(["date", "rank"])
