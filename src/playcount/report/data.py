"""What goes on a run's page: plain rows for every section and chart, built from the run report,
the lake (bad rows, `.error.json` files) and the KPI store. No HTML here: the page only draws this.

Every chart draws one mark per row of its list, so a test can count the marks against the data.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from playcount.lake import Storage
from playcount.report.record import ReplayRecord, RunRecord
from playcount.stores import KpiStore

__all__ = [
    "Glance",
    "FileRow",
    "RuleBar",
    "Sample",
    "Kpis",
    "StageBar",
    "ReportData",
    "build",
    "glance",
    "file_rows",
    "rule_bars",
    "samples",
    "kpis",
    "stage_bars",
    "SAMPLE_ROWS",
    "KPI_DATES",
    "TREND_DATES",
    "CELL_CHARS",
]

log = logging.getLogger("playcount.report")

SAMPLE_ROWS = 5
"""Quarantined rows shown per rule."""
KPI_DATES = 10
"""Touched dates whose top genres are drawn (the latest ones)."""
TREND_DATES = 30
"""Dates of the trend line chart: the latest ones in the store up to the last touched date."""
CELL_CHARS = 200
"""A quarantined value longer than this is cut (a field may hold 200 KB)."""
_SCAN_ROWS = 1_000_000
"""At most this many quarantined rows are read to find each rule's first rows."""
META = ("_source_file", "_line", "_reasons")


@dataclass(frozen=True)
class Glance:
    """The outcome at a glance. Rows count the stream files (as the notification does)."""

    status: str
    reason: str | None
    run_id: str
    run_date: dt.date
    started_at: dt.datetime
    duration: float | None
    files_in: int
    accepted: int
    rejected: int
    skipped: int
    rows_in: int
    clean: int
    bad: int
    warnings: int


@dataclass(frozen=True)
class FileRow:
    dataset: str
    name: str
    status: str
    rows: int
    clean: int
    bad: int
    reason: str | None
    error_path: str | None = None
    error_text: str | None = None
    """A rejected file's `.error.json`, as text."""


@dataclass(frozen=True)
class RuleBar:
    """Bad rows of one rule in one file: one bar segment."""

    dataset: str
    file: str
    rule: str
    rows: int


@dataclass(frozen=True)
class Sample:
    """The first quarantined rows of one rule."""

    dataset: str
    rule: str
    total: int
    columns: list[str]
    """The file's own columns (the values shown between file/line and reasons)."""
    rows: list[dict[str, str]]
    """Each: `_source_file`, `_line`, `_reasons` and the columns' original text."""


@dataclass
class Kpis:
    dates: list[dt.date] = field(default_factory=list)
    """The touched dates drawn (the latest `KPI_DATES`)."""
    top_genres: list[dict[str, Any]] = field(default_factory=list)
    """date, genre, total_streams, rank: one bar each."""
    trend: list[dict[str, Any]] = field(default_factory=list)
    """date, genre, total_streams of the last touched date's top genres: one point each."""
    songs_date: dt.date | None = None
    top_songs: list[dict[str, Any]] = field(default_factory=list)
    """date, genre, rank, track_id, title, artist, stream_count of `songs_date`."""
    problem: str | None = None
    """Why the KPIs could not be read, if they could not."""


@dataclass(frozen=True)
class StageBar:
    stage: str
    seconds: float


@dataclass
class ReportData:
    glance: Glance
    files: list[FileRow]
    rule_bars: list[RuleBar]
    samples: list[Sample]
    kpis: Kpis
    stages: list[StageBar]
    root: str
    generated_at: dt.datetime
    kind: str = "run"
    replay: ReplayRecord | None = None


def glance(r: RunRecord) -> Glance:
    streams = r.streams()
    return Glance(
        status=r.status,
        reason=r.reason,
        run_id=r.run_id,
        run_date=r.run_date,
        started_at=r.started_at,
        duration=r.duration,
        files_in=len(r.files),
        accepted=r.count("accepted"),
        rejected=r.count("rejected"),
        skipped=r.count("skipped"),
        rows_in=sum(f.rows for f in streams),
        clean=sum(f.clean for f in streams),
        bad=sum(f.bad for f in streams),
        warnings=sum(n for f in r.files for n in f.warnings.values()),
    )


def file_rows(r: RunRecord, storage: Storage | None = None) -> list[FileRow]:
    """One row per input file; a rejected file carries its `.error.json` (read from the lake)."""
    out = []
    for f in r.files:
        error_path = error_text = None
        if f.status == "rejected" and f.path:
            error_path = f"{f.path}.error.json"
            if storage is not None:
                try:
                    error_text = storage.read_bytes(error_path).decode("utf-8", "replace")
                except Exception as e:  # noqa: BLE001 - a missing error file must not lose the page
                    log.warning("run %s: cannot read `%s`: %s", r.run_id, error_path, e)
        out.append(FileRow(f.dataset, f.name, f.status, f.rows, f.clean, f.bad, f.reason, error_path, error_text))
    return out


def rule_bars(r: RunRecord) -> list[RuleBar]:
    """Bad rows per (rule, file), every file that has any (rejected files too: why they were)."""
    return [
        RuleBar(f.dataset, f.name, rule, n)
        for f in r.files
        for rule, n in sorted(f.rules.items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    ]


def _cut(value: str | None) -> str:
    text = value or ""
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


def _csv_rows(storage: Storage, path: str) -> Iterator[dict[str, str]]:
    with storage.open(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        csv.field_size_limit(1 << 30)
        yield from csv.DictReader(text)


def samples(r: RunRecord, storage: Storage, n: int = SAMPLE_ROWS) -> list[Sample]:
    """The first `n` quarantined rows of each rule, per dataset, from `bad_rows/<dataset>/<run>.csv`.

    Reads the file only until every rule has its rows (the counts are known from the report).
    """
    out: list[Sample] = []
    for dataset, path in sorted(r.bad_rows.items()):
        totals: dict[str, int] = {}
        for f in r.files:
            if f.dataset == dataset and f.status == "accepted":
                for rule, k in f.rules.items():
                    totals[rule] = totals.get(rule, 0) + k
        wanted = {rule: min(n, k) for rule, k in totals.items() if k}
        found: dict[str, list[dict[str, str]]] = {rule: [] for rule in wanted}
        columns: list[str] = []
        try:
            for i, row in enumerate(_csv_rows(storage, path)):
                if not columns:
                    columns = [c for c in row if c not in META]
                for reason in (row.get("_reasons") or "").split("; "):
                    # a reason may detail its rule: `malformed row (expected 3 fields, found 2)`
                    rule = reason if reason in found else reason.split(" (", 1)[0]
                    if rule in found and len(found[rule]) < wanted[rule]:
                        found[rule].append({k: _cut(v) for k, v in row.items() if k is not None})
                if i >= _SCAN_ROWS or all(len(found[k]) >= w for k, w in wanted.items()):
                    break
        except Exception as e:  # noqa: BLE001 - the counts stand without the rows
            log.warning("run %s: cannot read the bad rows `%s`: %s", r.run_id, path, e)
        for rule in sorted(wanted, key=lambda k: (-totals[k], k)):
            out.append(Sample(dataset, rule, totals[rule], columns, found[rule]))
    return out


def _rows(store: KpiStore, table: str, **where: Any) -> list[dict[str, Any]]:
    return list(store.read(table, **where).to_pylist())


def kpis(r: RunRecord, store: KpiStore | None) -> Kpis:
    """The KPIs of the touched dates, read from the store as it is now."""
    if not r.dates:
        return Kpis()
    if store is None:
        return Kpis(problem="no KPI store was given")
    dates = sorted(r.dates)[-KPI_DATES:]
    last = dates[-1]
    try:
        top = [row for d in dates for row in _rows(store, "top_genres", date=d)]
        trend: list[dict[str, Any]] = []
        for genre in [row["genre"] for row in top if row["date"] == last]:
            trend += [
                {"date": row["date"], "genre": genre, "total_streams": row["total_streams"]}
                for row in _rows(store, "genre_kpis", genre=genre)
                if row["date"] <= last
            ]
        window = set(sorted({row["date"] for row in trend})[-TREND_DATES:])
        trend = sorted((row for row in trend if row["date"] in window), key=lambda x: (x["genre"], x["date"]))
        songs = [
            {k: row[k] for k in ("date", "genre", "rank", "track_id", "title", "artist", "stream_count")}
            for row in _rows(store, "top_songs", date=last)
        ]
    except Exception as e:  # noqa: BLE001 - the page shows the run without its KPIs
        log.warning("run %s: cannot read the KPI store: %s", r.run_id, e)
        return Kpis(dates=dates, problem=f"the KPI store could not be read: {e}")
    return Kpis(dates=dates, top_genres=top, trend=trend, songs_date=last, top_songs=songs)


def stage_bars(r: RunRecord) -> list[StageBar]:
    return [StageBar(stage, seconds) for stage, seconds in r.stages.items()]


def build(r: RunRecord, storage: Storage, store: KpiStore | None) -> ReportData:
    """Everything the page shows about run `r`."""
    return ReportData(
        glance=glance(r),
        files=file_rows(r, storage),
        rule_bars=rule_bars(r),
        samples=samples(r, storage),
        kpis=kpis(r, store),
        stages=stage_bars(r),
        root=r.root or storage.root,
        generated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
        kind=r.kind,
        replay=r.replay,
    )
