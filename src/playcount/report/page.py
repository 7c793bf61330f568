"""The run's page: one self-contained HTML file (inline CSS and SVG, no script, no request).

Everything that comes from the data (file names, cell values, reasons, genres, titles) is
untrusted: it is escaped here, and the charts' SVG is checked to hold no script. A
Content-Security-Policy that allows nothing but inline styles and data: images backs that up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from html import escape
from typing import Any
from xml.etree import ElementTree

from playcount.report import charts
from playcount.report.data import Kpis, ReportData, Sample

__all__ = ["render", "CSP"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_ACTIVE_TAGS = {"script", "foreignobject", "iframe", "object", "embed", "image", "use", "a", "style"}


def _inert(svg: str) -> bool:
    """Whether the SVG holds no element or attribute that runs or loads anything."""
    for el in ElementTree.fromstring(svg).iter():
        if str(el.tag).rsplit("}", 1)[-1].lower() in _ACTIVE_TAGS:
            return False
        for name in el.attrib:
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or local in ("href", "src"):
                return False
    return True


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d5d9de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:4px 16px 16px;margin-bottom:16px}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.succeeded{background:#1a7f37}.failed{background:#cf222e}.nothing_to_do{background:#9a6700}
.accepted{color:#1a7f37}.rejected{color:#cf222e}.skipped{color:#9a6700}
dl.glance{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:12px 0}
dl.glance div{background:#f6f8fa;border-radius:4px;padding:6px 10px}
dl.glance dt{font-size:12px;color:#57606a}dl.glance dd{margin:0;font-size:18px;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d5d9de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.wide{overflow-x:auto}.note{color:#57606a;font-size:13px}pre{white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f6f8fa;padding:8px}
details.sample{margin:4px 0}figure{margin:10px 0}figure svg{max-width:100%;height:auto}code{font-size:12px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _secs(value: float | None) -> str:
    if value is None:
        return "unfinished"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _table(head: list[str], rows: Iterable[list[str]], cls: str = "") -> str:
    """`rows` hold already escaped cells."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(f"<tr>{''.join(rows_cells)}</tr>" for rows_cells in rows)
    return f'<div class="wide"><table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _td(value: Any, numeric: bool = False) -> str:
    if numeric and isinstance(value, int):
        return f'<td class="n">{_n(value)}</td>'
    return f'<td class="n">{_e(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


def _figure(name: str, rows: int, spec: Callable[[], dict[str, Any]]) -> str:
    svg = charts.svg(spec())
    if not _inert(svg):
        raise ValueError(f"the `{name}` chart's SVG holds active content; not inlined")
    return f'<figure data-chart="{name}" data-rows="{rows}">{svg}</figure>'


def _glance(d: ReportData) -> str:
    g = d.glance
    items = [
        ("run date", "run_date", g.run_date.isoformat()),
        ("started (UTC)", "started_at", f"{g.started_at:%Y-%m-%d %H:%M:%S}"),
        ("duration", "duration", _secs(g.duration)),
        ("files in", "files_in", _n(g.files_in)),
        ("accepted", "accepted", _n(g.accepted)),
        ("rejected", "rejected", _n(g.rejected)),
        ("skipped", "skipped", _n(g.skipped)),
        ("stream rows in", "rows_in", _n(g.rows_in)),
        ("clean", "clean", _n(g.clean)),
        ("bad", "bad", _n(g.bad)),
        ("warnings", "warnings", _n(g.warnings)),
    ]
    cells = "".join(f'<div><dt>{_e(label)}</dt><dd data-key="{key}">{_e(v)}</dd></div>' for label, key, v in items)
    reason = f'<p data-key="reason">{_e(g.reason)}</p>' if g.reason else ""
    return (
        f'<section id="glance"><h2>Outcome</h2><p><span class="status {_e(g.status)}" data-key="status">'
        f'{_e(g.status.replace("_", " "))}</span> run <code data-key="run_id">{_e(g.run_id)}</code></p>'
        f'{reason}<dl class="glance">{cells}</dl></section>'
    )


def _files(d: ReportData) -> str:
    if not d.files:
        return '<section id="files"><h2>Files</h2><p class="note">No input files.</p></section>'
    rows = []
    for f in d.files:
        reason = _e(f.reason)
        if f.error_path:
            text = f"<pre>{_e(f.error_text)}</pre>" if f.error_text else '<p class="note">(not readable)</p>'
            reason += f"<details><summary><code>{_e(f.error_path)}</code></summary>{text}</details>"
        rows.append(
            [
                _td(f.dataset),
                _td(f.name),
                f'<td class="{_e(f.status)}">{_e(f.status)}</td>',
                _td(f.rows, True),
                _td(f.clean, True),
                _td(f.bad, True),
                f"<td>{reason}</td>",
            ]
        )
    head = ["dataset", "file", "status", "rows", "clean", "bad", "reason"]
    return f'<section id="files"><h2>Files</h2>{_table(head, rows, "files")}</section>'


def _sample(s: Sample) -> str:
    head = ["file", "line", *s.columns, "reasons"]
    rows = [
        [
            _td(r.get("_source_file")),
            _td(r.get("_line"), True),
            *(_td(r.get(c)) for c in s.columns),
            _td(r.get("_reasons")),
        ]
        for r in s.rows
    ]
    shown = f"first {len(s.rows)} of {_n(s.total)}"
    return (
        f'<details class="sample"><summary><strong>{_e(s.dataset)}: {_e(s.rule)}</strong> '
        f'<span class="note">({shown})</span></summary>{_table(head, rows, "sample")}</details>'
    )


def _quality(d: ReportData) -> str:
    if not d.rule_bars:
        return '<section id="quality"><h2>Data quality</h2><p class="note">No bad rows.</p></section>'
    chart = _figure("rules", len(d.rule_bars), lambda: charts.rules_chart(d.rule_bars))
    shown = "".join(_sample(s) for s in d.samples)
    if shown:
        shown = "<h3>First quarantined rows per rule</h3>" + shown
    note = (
        '<p class="note">Rows of rejected files are not quarantined: their files are kept whole under '
        "<code>rejected/</code>.</p>"
        if any(f.status == "rejected" for f in d.files)
        else ""
    )
    return f'<section id="quality"><h2>Data quality</h2>{chart}{note}{shown}</section>'


def _kpis(k: Kpis) -> str:
    parts = ['<section id="kpis"><h2>KPIs of the touched dates</h2>']
    if not k.dates:
        parts.append('<p class="note">This run touched no dates.</p>')
    elif k.problem:
        parts.append(f'<p class="note">{_e(k.problem)}</p>')
    else:
        parts.append(
            f'<p class="note">As the KPI store holds them now; dates: {_e(", ".join(d.isoformat() for d in k.dates))}'
            "</p>"
        )
        if k.top_genres:
            parts.append(_figure("top_genres", len(k.top_genres), lambda: charts.top_genres_chart(k)))
        if k.trend:
            parts.append(_figure("trend", len(k.trend), lambda: charts.trend_chart(k)))
        if k.top_songs and k.songs_date:
            head = ["genre", "rank", "title", "artist", "streams", "track id"]
            rows = [
                [
                    _td(s["genre"]),
                    _td(s["rank"], True),
                    _td(s["title"]),
                    _td(s["artist"]),
                    _td(s["stream_count"], True),
                    f"<td><code>{_e(s['track_id'])}</code></td>",
                ]
                for s in k.top_songs
            ]
            parts.append(f"<h3>Top songs per genre, {_e(k.songs_date.isoformat())}</h3>")
            parts.append(_table(head, rows, "top_songs"))
    parts.append("</section>")
    return "".join(parts)


def _stages(d: ReportData) -> str:
    if not d.stages:
        return '<section id="stages"><h2>Stages</h2><p class="note">No stage timings.</p></section>'
    chart = _figure("stages", len(d.stages), lambda: charts.stages_chart(d.stages))
    rows = [[_td(s.stage), f'<td class="n">{s.seconds:.3f}</td>'] for s in d.stages]
    note = (
        '<p class="note">The finish stage (ledger, this page, the notification) is timed after the page is drawn.</p>'
    )
    return f'<section id="stages"><h2>Stages</h2>{chart}{_table(["stage", "seconds"], rows, "stages")}{note}</section>'


def _replay(d: ReportData) -> str:
    """What a `replay` did with the quarantine (replays only)."""
    r = d.replay
    if r is None:
        return ""
    rows = [[_td(rule), _td(_n(n), numeric=True)] for rule, n in sorted(r.rules.items(), key=lambda kv: -kv[1])]
    still = _table(["still bad by", "rows"], rows, "replay") if rows else ""
    dates = ", ".join(x.isoformat() for x in r.dates) or "none"
    return (
        '<section id="replay"><h2>Replay of the quarantine</h2><dl class="glance">'
        f'<div><dt>replayed</dt><dd data-key="replayed">{_n(r.replayed)}</dd></div>'
        f'<div><dt>still bad</dt><dd data-key="still_bad">{_n(r.still_bad)}</dd></div></dl>'
        f'<p>Dates recomputed: <span data-key="replay_dates">{_e(dates)}</span></p>{still}</section>'
    )


def render(d: ReportData) -> str:
    """The whole page."""
    g = d.glance
    title = f"playcount {d.kind} {g.run_id}: {g.status.replace('_', ' ')}"
    generated = f"{d.generated_at:%Y-%m-%d %H:%M:%S}" if isinstance(d.generated_at, dt.datetime) else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><p class="note">lake <code>{_e(d.root)}</code> · page made {generated} UTC</p>'
        f"{_glance(d)}{_replay(d)}{_files(d)}{_quality(d)}{_kpis(d.kpis)}{_stages(d)}"
        "</main></body></html>\n"
    )
