"""Clean streams as events. Pure Ibis (their songs are joined on when KPIs are computed: `kpis.with_songs`)."""

from __future__ import annotations

import ibis.expr.types as ir

__all__ = ["events_of", "EVENT_KEY", "EVENT_COLUMNS"]

#: An event is counted once per (user_id, track_id, listen_time), across files and runs.
EVENT_KEY = ("user_id", "track_id", "listen_time")
#: What an event stores: the stream's own fields and its UTC date (SPEC §5). Event files written
#: before the merged dimensions also hold the song's genre and duration: those are never read.
EVENT_COLUMNS = (*EVENT_KEY, "date")


def events_of(streams: ir.Table) -> ir.Table:
    """The clean streams as events: the key, `date` (the UTC date of `listen_time`, which is UTC
    already) and `_source_file`, by which they are written per (source file, date)."""
    return streams.select(*EVENT_KEY, date=streams.listen_time.date(), _source_file=streams._source_file)
