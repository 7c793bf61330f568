"""Clean and enrich streams: each event gets its UTC date and its song. Pure Ibis."""

from __future__ import annotations

import ibis.expr.types as ir

__all__ = ["enrich_streams", "EVENT_KEY"]

#: An event is counted once per (user_id, track_id, listen_time), across files and runs.
EVENT_KEY = ("user_id", "track_id", "listen_time")


def enrich_streams(streams: ir.Table, songs: ir.Table) -> ir.Table:
    """Clean streams joined with their (clean) song.

    `date` is the UTC date of `listen_time` (already UTC); `listen_seconds` is the song's
    `duration_ms / 1000`: streams carry no duration, so a stream counts as a full play.
    Every clean stream has its song (referential integrity was checked), so the join is inner.
    Titles and artists are not carried: the top songs take them from the catalogue (`song_titles`).
    """
    s = songs.select(
        songs.track_id,
        genre=songs.track_genre,
        duration_ms=songs.duration_ms,
    )
    joined = streams.select("user_id", "track_id", "listen_time", "_source_file").join(s, "track_id")
    return joined.select(
        "user_id",
        "track_id",
        "listen_time",
        date=joined.listen_time.date(),
        genre=joined.genre,
        duration_ms=joined.duration_ms,
        listen_seconds=joined.duration_ms.cast("float64") / 1000.0,
        _source_file=joined._source_file,
    )
