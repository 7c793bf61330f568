"""The page's charts: Vega-Lite specs (altair) rendered to inline SVG (vl-convert).

Why this pair: Vega-Lite is a well-kept declarative grammar, and vl-convert renders it to SVG
in-process (no browser, no Node), so the page carries static SVG and no script at all: nothing
to load, nothing to run, the same from a disk, a presigned URL or an email attachment.

Each chart draws exactly one mark per data row (a bar segment or a point), so a test can count.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from playcount.report.data import Kpis, RuleBar, StageBar

__all__ = ["rules_chart", "top_genres_chart", "trend_chart", "stages_chart", "svg"]

WIDTH = 520


def _value(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


def _data(rows: list[dict[str, Any]]) -> Any:
    import altair as alt

    return alt.Data(values=[{k: _value(v) for k, v in row.items()} for row in rows])


def rules_chart(bars: list[RuleBar]) -> dict[str, Any]:
    """Bad rows by rule (one bar per rule), split by file (one segment per file)."""
    import altair as alt

    rows = [{"rule": f"{b.dataset}: {b.rule}", "file": f"{b.dataset}/{b.file}", "rows": b.rows} for b in bars]
    chart = (
        alt.Chart(_data(rows), width=WIDTH, title="bad rows by rule and file")
        .mark_bar()
        .encode(
            x=alt.X("rows:Q", title="bad rows"),
            y=alt.Y("rule:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            color=alt.Color("file:N", title="file", legend=alt.Legend(orient="bottom", columns=2, labelLimit=300)),
            tooltip=["rule:N", "file:N", "rows:Q"],
        )
    )
    return dict(chart.to_dict())


def top_genres_chart(k: Kpis) -> dict[str, Any]:
    """The top genres of each touched date: one bar per (date, genre)."""
    import altair as alt

    chart = (
        alt.Chart(_data(k.top_genres), width=WIDTH, title="top genres per date")
        .mark_bar()
        .encode(
            x=alt.X("total_streams:Q", title="streams"),
            y=alt.Y("genre:N", sort="-x", title=None),
            row=alt.Row("date:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            tooltip=["date:N", "genre:N", "total_streams:Q", "rank:Q"],
        )
        .resolve_scale(y="independent")
    )
    return dict(chart.to_dict())


def trend_chart(k: Kpis) -> dict[str, Any]:
    """Streams per date of the last touched date's top genres: one point per (genre, date)."""
    import altair as alt

    chart = (
        alt.Chart(_data(k.trend), width=WIDTH, title="top genres, last dates in the store")
        .mark_line(point=True)
        .encode(
            x=alt.X("date:O", title=None, axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("total_streams:Q", title="streams"),
            color=alt.Color("genre:N", title="genre"),
            tooltip=["date:O", "genre:N", "total_streams:Q"],
        )
    )
    return dict(chart.to_dict())


def stages_chart(stages: list[StageBar]) -> dict[str, Any]:
    """Seconds per stage, in run order: one bar per stage."""
    import altair as alt

    rows = [{"stage": s.stage, "seconds": s.seconds} for s in stages]
    chart = (
        alt.Chart(_data(rows), width=WIDTH, title="stage durations")
        .mark_bar()
        .encode(
            x=alt.X("seconds:Q", title="seconds"),
            y=alt.Y("stage:N", sort=[s.stage for s in stages], title=None),
            tooltip=["stage:N", "seconds:Q"],
        )
    )
    return dict(chart.to_dict())


def svg(spec: dict[str, Any]) -> str:
    """The chart as an SVG document (text as <text>, no fonts or images loaded)."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(spec))
