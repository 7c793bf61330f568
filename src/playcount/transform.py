"""Clean streams as events, and events with their song. Pure Ibis."""

from __future__ import annotations

import ibis.expr.types as ir

__all__ = ["events_of", "with_songs", "EVENT_KEY", "EVENT_COLUMNS"]

#: An event is counted once per (user_id, track_id, listen_time), across files and runs.
EVENT_KEY = ("user_id", "track_id", "listen_time")
#: What an event stores: the stream's own fields and its UTC date (SPEC §5). Event files written
#: before the merged dimensions also hold the song's genre and duration: those are never read.
EVENT_COLUMNS = (*EVENT_KEY, "date")


def events_of(streams: ir.Table) -> ir.Table:
    """The clean streams as events: the key, `date` (the UTC date of `listen_time`, which is UTC
    already) and `_source_file`, by which they are written per (source file, date)."""
    return streams.select(*EVENT_KEY, date=streams.listen_time.date(), _source_file=streams._source_file)


def with_songs(events: ir.Table, songs: ir.Table) -> ir.Table:
    """Events joined with their song of the songs dimension: the key, `date`, `genre` and
    `listen_seconds`, the song's `duration_ms / 1000` (streams carry no duration: a stream counts
    as a full play).

    Joined when KPIs are computed, not when events are written, so that every event of a date
    counts under the current version of its track (a re-labelled genre moves all of them). The
    join is inner: the dimension never loses a track, so only a track deleted from it by hand
    (docs/pipeline.md) takes its events out of the KPIs.
    """
    s = songs.select(_track=songs.track_id, genre=songs.track_genre, _ms=songs.duration_ms)
    j = events.join(s, events.track_id == s._track)
    return j.select(*EVENT_COLUMNS, genre=j.genre, listen_seconds=j._ms.cast("float64") / 1000.0)
