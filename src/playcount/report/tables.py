"""Terminal tables that fit: choose and shorten columns for the terminal's width.

A table is a list of `Col`s, each with a priority: columns are dropped from the least important
until the rest fit; text columns are then cut with an ellipsis, never wrapped, and numbers are
never cut. A column whose value is the same on every row moves into the title. Cells are
`rich.text.Text`, so markup in the data prints as itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["Col", "fit_table", "KPI_COLUMNS", "RUNS_COLUMNS", "cell"]

PADDING = 3
"""What each column adds in `box.SIMPLE_HEAD`: a space each side and a separator (one more at the edge)."""


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    priority: int
    """1 is kept longest."""
    numeric: bool = False
    min_width: int = 8
    """A text column is cut to no less than this (or its header)."""
    constant_to_title: bool = False
    """Move into the title when one value fills the column."""


KPI_COLUMNS: dict[str, list[Col]] = {
    "genre_kpis": [
        Col("date", "date", 2, min_width=10, constant_to_title=True),
        Col("genre", "genre", 1, min_width=10, constant_to_title=True),
        Col("total_streams", "streams", 3, numeric=True),
        Col("unique_users", "users", 4, numeric=True),
        Col("avg_listen_time", "avg s", 5, numeric=True),
        Col("avg_listen_time_per_user", "s/user", 6, numeric=True),
        Col("total_listen_time", "total s", 7, numeric=True),
    ],
    "top_songs": [
        Col("date", "date", 7, min_width=10, constant_to_title=True),
        Col("genre", "genre", 1, min_width=9, constant_to_title=True),
        Col("rank", "#", 2, numeric=True),
        Col("title", "title", 3, min_width=18),
        Col("artist", "artist", 5, min_width=14),
        Col("stream_count", "streams", 4, numeric=True),
        Col("track_id", "track id", 6, min_width=22),
    ],
    "top_genres": [
        Col("date", "date", 2, min_width=10, constant_to_title=True),
        Col("rank", "#", 1, numeric=True),
        Col("genre", "genre", 1, min_width=10),
        Col("total_streams", "streams", 3, numeric=True),
    ],
}

RUNS_COLUMNS = [
    Col("run_id", "run id", 1, min_width=23),
    Col("status", "status", 2, min_width=9),
    Col("started_at", "started (UTC)", 6, min_width=16),
    Col("duration", "secs", 7, numeric=True),
    Col("files", "files", 5, numeric=True),
    Col("events", "events", 3, numeric=True),
    Col("bad_rows", "bad", 4, numeric=True),
    Col("rejected_files", "rejected", 4, numeric=True),
]


def cell(value: Any) -> str:
    """A value as the terminal shows it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return " ".join(str(value).split())  # no line breaks inside a cell


def fit_table(rows: Sequence[dict[str, Any]], cols: list[Col], width: int, title: str = "") -> tuple[Table, list[str]]:
    """A table of `rows` no wider than `width`, and the headers of the columns left out."""
    cols = [c for c in cols if any(c.key in r for r in rows)] if rows else cols
    texts = {c.key: [cell(r.get(c.key)) for r in rows] for c in cols}
    extra: list[str] = []
    if len(rows) > 1:
        for c in [c for c in cols if c.constant_to_title and len(set(texts[c.key])) == 1]:
            extra.append(f"{c.header} {texts[c.key][0]}")
            cols.remove(c)
    natural = {c.key: max([len(c.header), *(len(t) for t in texts[c.key])]) for c in cols}
    least = {c.key: natural[c.key] if c.numeric else min(natural[c.key], max(c.min_width, len(c.header))) for c in cols}
    kept = sorted(cols, key=lambda c: c.priority)
    while len(kept) > 1 and 1 + sum(least[c.key] + PADDING for c in kept) > width:
        kept.pop()
    dropped = [c.header for c in cols if c not in kept]
    shown = [c for c in cols if c in kept]
    # the room left goes to the cut text columns, most important first, up to their natural width
    widths = {c.key: least[c.key] for c in shown}
    room = width - 1 - sum(widths[c.key] + PADDING for c in shown)
    for c in kept:
        grow = max(min(natural[c.key] - widths[c.key], room), 0)
        widths[c.key] += grow
        room -= grow
    full_title = " · ".join([t for t in (title, *extra) if t])
    table = Table(title=Text(full_title) if full_title else None, box=box.SIMPLE_HEAD, expand=False)
    for c in shown:
        table.add_column(
            Text(c.header),
            justify="right" if c.numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=widths[c.key],
        )
    for i in range(len(rows)):
        table.add_row(*(Text(texts[c.key][i]) for c in shown))
    return table, dropped
