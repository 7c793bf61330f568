"""Stages 3 to 7: transform, kpis, load, archive, finish; and the run report from staged results."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging

from playcount import kpis as kpi
from playcount.errors import PlaycountError
from playcount.lake import FileInfo
from playcount.notify import Notification, notify_safely
from playcount.pipeline.discover import (
    _signature,
)
from playcount.pipeline.reference import read_dimension
from playcount.pipeline.results import (
    ArchiveResult,
    Discovery,
    FileOutcome,
    FileStatus,
    KpiResult,
    LoadResult,
    RunReport,
    RunStatus,
    TransformResult,
    Validation,
    ValidationStatus,
)
from playcount.pipeline.run import (
    Run,
)
from playcount.pipeline.validate import staged_part
from playcount.report import write_report_safely
from playcount.stores import KPI_SCHEMAS
from playcount.transform import EVENT_COLUMNS

log = logging.getLogger("playcount")


# -- 3. transform ------------------------------------------------------------------------------


def transform(run: Run) -> TransformResult:
    """The events of the accepted stream files into place: each (source file, date) part that
    validate staged (`staged_part`: the stream's own fields, `events_of`) moved to
    `processed_data/streams/date=D/<fingerprint>.parquet`, replacing the part of an earlier run
    of the same content. A record per source file (`_playcount/inflight/`) comes first: a kill
    after the moves leaves one. A retry moves what an earlier attempt left staged."""
    val = run.load("validate", Validation)
    accepted = val.accepted()
    fp = {o.name: o.fingerprint for o in accepted}
    parts = sorted((p for p in val.parts if p.file in fp), key=lambda p: (p.file, p.date))
    listed = dict.fromkeys(fp, 0)
    for p in parts:
        listed[p.file] += p.rows
    short = [o for o in accepted if listed[o.name] != o.clean]
    if short:  # e.g. validated by a version that staged no parts: never archive a file uncounted
        o = short[0]
        raise PlaycountError(
            f"the validate result of run `{run.run_id}` lists {listed[o.name]:,} staged events of `{o.name}`, "
            f"which has {o.clean:,} clean rows ({len(short)} file(s) so)",
            fix="run the validate step of this run again (`playcount run`: run again)",
        )
    written: dict[str, list[str]] = {}
    for p in parts:
        written.setdefault(p.file, []).append(run.layout.events(p.date, fp[p.file]))
    for name, paths in written.items():  # before the events: a kill after them leaves a record
        _record_inflight(run, fp[name], name, paths)
    for p in parts:
        staged, path = staged_part(run, p.date, fp[p.file]), run.layout.events(p.date, fp[p.file])
        if run.storage.exists(staged):
            if run.storage.exists(path):  # re-processing a file replaces its parts
                run.storage.delete(path)
            run.storage.move(staged, path)
        elif not run.storage.exists(path):  # neither staged nor moved by an earlier attempt
            raise PlaycountError(
                f"the staged events of `{p.file}` on {p.date} (`{run.storage.uri(staged)}`) are gone",
                fix="run the validate step again (`playcount run`: run again)",
            )
    dates = sorted({p.date for p in parts})
    result = TransformResult(dates=dates, events=sum(p.rows for p in parts), files=written)
    run.save("transform", result)
    run.progress("transform", f"{result.events:,} events over {len(dates)} date(s)")
    return result


# -- 4. kpis -----------------------------------------------------------------------------------


def _journal(run: Run) -> tuple[set[dt.date], set[str]]:
    """`Layout.stale_dates`: the dates whose KPIs must be recomputed and the event files that must
    go first (a withdraw that was cut short: by a kill, or an error its retry does not repeat)."""
    path = run.layout.stale_dates
    if not run.storage.exists(path):
        return set(), set()
    data = json.loads(run.storage.read_bytes(path))
    if isinstance(data, list):  # dates only
        data = {"dates": data, "events": []}
    return {dt.date.fromisoformat(d) for d in data["dates"]}, set(data["events"])


def _set_journal(run: Run, dates: set[dt.date], events: set[str]) -> None:
    if dates or events:
        data = {"dates": sorted(d.isoformat() for d in dates), "events": sorted(events)}
        run.storage.write_bytes(run.layout.stale_dates, json.dumps(data, indent=1).encode())
    elif run.storage.exists(run.layout.stale_dates):
        run.storage.delete(run.layout.stale_dates)


def _stale_dates(run: Run) -> set[dt.date]:
    return _journal(run)[0]


def _drop_withdrawn_events(run: Run) -> None:
    """Delete the event files the journal names (idempotent), keeping their dates in it."""
    dates, events = _journal(run)
    for path in sorted(events):
        run.storage.delete(path)
    if events:
        _set_journal(run, dates, set())


def _record_inflight(run: Run, fingerprint: str, name: str, events: list[str]) -> None:
    entry = {"file": name, "run_id": run.run_id, "events": sorted(events)}
    run.storage.write_bytes(f"{run.layout.inflight}/{fingerprint}.json", json.dumps(entry, indent=1).encode())


def _clear_inflight(run: Run, fingerprint: str) -> None:
    path = f"{run.layout.inflight}/{fingerprint}.json"
    if run.storage.exists(path):
        run.storage.delete(path)


def withdraw_orphans(run: Run, landing: set[str]) -> int:
    """Withdraw the events of source files that were written but never done and whose content is
    no longer in the landing zone (`landing`: the fingerprints there now): a run killed before it
    archived a file that was then corrected or removed. Their event files and dates go into the
    journal (`recompute_stale` or the next kpis stage finishes it). Returns how many files."""
    done = run.ledger.done()
    orphans = 0
    for f in run.storage.list(run.layout.inflight):
        fingerprint = f.name.removesuffix(".json")
        if fingerprint in done:
            run.storage.delete(f.path)  # finished: the record outlived a kill in `finish`
            continue
        if fingerprint in landing:
            continue  # still there: the run that takes it writes the same parts again
        entry = json.loads(run.storage.read_bytes(f.path))
        dates, events = _journal(run)
        paths = set(entry["events"])
        parts = {p.split("/")[2] for p in paths if p.count("/") >= 3}
        dates |= {dt.date.fromisoformat(d.removeprefix("date=")) for d in parts if d.startswith("date=")}
        _set_journal(run, dates, events | paths)
        run.storage.delete(f.path)
        log.info("run %s: withdrew the events of `%s`, gone from the landing zone undone", run.run_id, entry["file"])
        orphans += 1
    return orphans


def has_stale_dates(run: Run) -> bool:
    """Whether a withdraw was cut short: dates to recompute or event files to delete."""
    dates, events = _journal(run)
    return bool(dates or events)


def recompute_stale(run: Run) -> None:
    """Finish a withdraw that was cut short: drop its events, recompute and load its dates (a run
    with nothing new does it too, so stale KPIs never wait for the next file)."""
    if not has_stale_dates(run):
        return
    if not run.staged("transform"):
        run.save("transform", TransformResult(dates=[], events=0))
    compute_kpis(run)
    load(run)


KPI_PIECE_BYTES = 256 * 2**20
"""The event Parquet the KPIs of one piece of dates read at most (a date holding more is a piece of
its own): every aggregate then stays within the engine's memory, however many dates a run touches.
10M events are about 300 MB of Parquet; 256 MiB kept the KPIs of 100M events over 30 dates
within DuckDB's default 1GB (one piece of all 30 dates ran out of memory)."""


def _kpi_pieces(listed: dict[dt.date, list[FileInfo]]) -> list[list[dt.date]]:
    """The dates in order, in runs of dates whose event files add up to at most
    `KPI_PIECE_BYTES`. An event's key fixes its date, so the KPIs of each piece are those of all
    the dates: no event is counted in two pieces, no repeat is missed across them."""
    pieces: list[list[dt.date]] = []
    size = 0
    for d, files in listed.items():
        bytes_ = sum(f.size for f in files)
        if not pieces or size + bytes_ > KPI_PIECE_BYTES:
            pieces.append([])
            size = 0
        pieces[-1].append(d)
        size += bytes_
    return pieces


def compute_kpis(run: Run) -> KpiResult:
    """Recompute the three KPI tables for the touched dates, from every event of those dates
    joined with the current songs dimension (`with_songs`), in pieces of dates (`_kpi_pieces`).

    The touched dates are the transform's and any stale ones (`Layout.stale_dates`: a withdraw
    that was cut short took events away before their dates were recomputed); a date left with
    no events gets empty tables, which the load turns into no rows for it."""
    tr = run.load("transform", TransformResult)
    _drop_withdrawn_events(run)
    dates = sorted(set(tr.dates) | _stale_dates(run))
    rows: dict[str, int] = dict.fromkeys(kpi.KPI_TABLES, 0)
    listed = {d: [f for f in run.storage.list(run.layout.events_dir(d)) if f.name.endswith(".parquet")] for d in dates}
    songs = read_dimension(run, "songs") if any(listed.values()) else None
    if songs is None and any(listed.values()):
        raise PlaycountError(
            f"`{run.storage.uri(run.layout.dimension_dir('songs'))}` holds no songs dimension, so the KPIs of "
            f"{len(dates)} date(s) cannot be computed",
            fix="run `playcount run` with the songs CSV in the landing zone first",
        )
    index = run.engine.materialize(kpi.song_index(songs), "song_index") if songs is not None else None
    for piece in _kpi_pieces(listed):
        files = [run.storage.uri(f.path) for d in piece for f in listed[d]]
        if not files:
            for name in kpi.KPI_TABLES:
                empty = run.engine.from_arrow(KPI_SCHEMAS[name].empty_table(), name)
                for d in piece:
                    run.engine.write_parquet(empty, run.storage.prepare(run.layout.kpi(name, d)))
            continue
        assert index is not None
        stored = run.engine.read_parquet(files)
        stored = stored.select(*EVENT_COLUMNS)  # older event files also hold their song's fields
        repeated = run.engine.materialize(kpi.repeated_keys(stored), "repeated")
        # the unique events with their song, read from Parquet and joined once for both tables:
        # integers only, about 24 bytes an event (a piece's events stay within the memory limit)
        events = run.engine.materialize(kpi.with_songs(kpi.unique_events(stored, repeated), index), "kpi_events")
        genres = run.engine.materialize(kpi.genre_kpis(events, index), "genre_kpis")
        tables = {
            "genre_kpis": genres,
            "top_songs": kpi.top_songs(events, index, run.settings.top_songs_n),
            "top_genres": kpi.top_genres(genres, run.settings.top_genres_n),
        }
        for name, t in tables.items():
            t = run.engine.materialize(t, name)
            # one write for the piece's dates (a date without rows gets an empty file)
            parts = {(d,): run.storage.prepare(run.layout.kpi(name, d)) for d in piece}
            run.engine.write_parquet_parts(t, ("date",), parts)
            rows[name] += int(run.engine.scalar(t.count()))  # type: ignore[call-overload]
    result = KpiResult(dates=dates, rows=rows)
    run.save("kpis", result)
    run.progress("kpis", ", ".join(f"{k}: {n}" for k, n in rows.items()))
    return result


# -- 5. load -----------------------------------------------------------------------------------


def load(run: Run) -> LoadResult:
    """Replace the touched dates' rows in the KPI store."""
    k = run.load("kpis", KpiResult)
    rows: dict[str, int] = {}
    for name in kpi.KPI_TABLES:
        if not k.dates:
            rows[name] = 0
            continue
        t = run.engine.read_parquet([run.storage.uri(run.layout.kpi(name, d)) for d in k.dates])
        rows[name] = run.store.replace(name, k.dates, run.engine.to_arrow(t))
    result = LoadResult(dates=k.dates, rows=rows)
    run.save("load", result)
    stale, events = _journal(run)
    if stale & set(k.dates):
        _set_journal(run, stale - set(k.dates), events)
    run.progress("load", ", ".join(f"{k}: {n}" for k, n in rows.items()))
    return result


# -- 6. archive --------------------------------------------------------------------------------


def archive(run: Run) -> ArchiveResult:
    """Move the accepted and skipped stream files to `archived/<run date>/`.

    A different file already archived under the same name is never overwritten: this one gets
    its fingerprint in its name instead. A local file is checked again before and after its move:
    one that changed since the run read it is withdrawn (`_withdraw`) and left in the landing
    zone, so that its final content counts exactly once, in a later run.
    """
    if has_stale_dates(run):  # a withdraw of an earlier attempt was cut short: finish it first
        recompute_stale(run)
    val = run.load("validate", Validation)
    moved: dict[str, str] = {}
    changed: list[FileOutcome] = []
    for o in val.files:
        if o.dataset != "streams" or o.status not in (FileStatus.ACCEPTED, FileStatus.SKIPPED):
            continue
        dst = _archive_path(run, o)
        if not run.storage.exists(o.path):
            if run.storage.exists(dst) and run.storage.fingerprint(dst) == o.fingerprint:
                moved[o.path] = dst  # moved by an earlier attempt of this stage
                _clear_inflight(run, o.fingerprint)
            continue
        if o.signature is not None and _signature(run, o.path) != o.signature:
            changed.append(o)
            continue
        run.storage.move(o.path, dst)
        if o.signature is not None and _signature(run, dst) != o.signature:
            # a writer still holding the file wrote to it after the check: back where it was
            run.storage.move(dst, o.path)
            changed.append(o)
            continue
        moved[o.path] = dst
        _clear_inflight(run, o.fingerprint)  # consumed: its events are final, whatever comes next
    if changed:
        _withdraw(run, val, changed)
    result = ArchiveResult(moved=moved, changed=[o.name for o in changed])
    run.save("archive", result)
    gone = f"; {len(changed)} changed after it was read, withdrawn and left for the next run" if changed else ""
    run.progress("archive", f"{len(moved)} file(s) archived{gone}")
    return result


def _archive_path(run: Run, o: FileOutcome) -> str:
    dst = run.layout.archived(run.run_date, o.name)
    if run.storage.exists(dst) and run.storage.fingerprint(dst) != o.fingerprint:
        folder, slash, base = o.name.rpartition("/")
        stem, dot, ext = base.partition(".")
        dst = run.layout.archived(run.run_date, f"{folder}{slash}{stem}.{o.fingerprint[:12]}{dot}{ext}")
    return dst


def _withdraw(run: Run, val: Validation, changed: list[FileOutcome]) -> None:
    """Take back what the run counted of files that changed after it read them: their events,
    their bad rows; then the KPIs of the dates they touched again, and the store.

    First the journal (`Layout.stale_dates`) names the event files to delete and the dates to
    recompute, so that a withdraw cut short at any later point (a kill; an error whose retry finds
    the files already pending) is finished by the next kpis stage or run (`recompute_stale`)."""
    names = {o.name for o in changed if o.status == FileStatus.ACCEPTED}
    if names:
        tr = run.load("transform", TransformResult)
        dates, events = _journal(run)
        _set_journal(run, dates | set(tr.dates), events | {p for n in names for p in tr.files.get(n, [])})
        for o in changed:
            if o.name in names:
                _clear_inflight(run, o.fingerprint)
    for o in changed:
        o.status, o.rows, o.clean, o.bad, o.rules, o.warnings = FileStatus.PENDING, 0, 0, 0, {}, {}
        o.reason = (
            f"`{o.name}` changed after the run read it: what was counted of it is withdrawn, and it is left in the "
            "landing zone for the next run"
        )
    if names and "streams" in val.bad_rows and not _drop_bad_rows(run, val.bad_rows["streams"], names):
        run.storage.delete(val.bad_rows.pop("streams"))
    run.save("validate", val)
    if not names:
        return
    for name in names:
        tr.files.pop(name, None)
    run.save("transform", tr)
    compute_kpis(run)  # deletes the journal's event files first
    load(run)


def _drop_bad_rows(run: Run, path: str, names: set[str]) -> int:
    """Rewrite a bad-rows CSV without the rows of `names`; the rows left."""
    text = run.storage.read_bytes(path).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    at = header.index("_source_file")
    kept = [r for r in body if r[at] not in names]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *kept])
    run.storage.write_bytes(path, buf.getvalue().encode("utf-8"))
    return len(kept)


# -- 7. finish ---------------------------------------------------------------------------------


def finish(run: Run, report: RunReport) -> RunReport:
    """Mark files done, write the run report, notify, and drop the run's staging."""
    if report.status == RunStatus.SUCCEEDED:
        for o in report.files:
            done = o.status in (FileStatus.ACCEPTED, FileStatus.SKIPPED)
            if o.dataset == "streams" and done and o.path in report.archived:
                run.ledger.mark_done(
                    o.fingerprint,
                    {"run_id": run.run_id, "file": o.name, "archived": report.archived[o.path]},
                )
                _clear_inflight(run, o.fingerprint)
    report.finished_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    report_json = report.model_dump_json(indent=2).encode()
    run.storage.write_bytes(run.layout.run_report(run.run_id), report_json)
    # the HTML page (`_playcount/reports/`); a page that cannot be drawn is logged, the run stands
    page = write_report_safely(run.storage, run.store, report_json)
    words = {RunStatus.SUCCEEDED: "succeeded", RunStatus.FAILED: "FAILED", RunStatus.NOTHING_TO_DO: "nothing to do"}
    subject = f"playcount {report.kind} {run.run_id} {words[report.status]}"
    if report.status == RunStatus.SUCCEEDED:
        s = report.summary()
        subject += (
            f": {len(report.dates)} date(s) rebuilt"
            if report.kind == "rebuild"
            else f": {s['clean']:,} clean / {s['bad']:,} bad rows, {len(report.dates)} date(s)"
        )
    if report.status != RunStatus.NOTHING_TO_DO or run.settings.notify.on_nothing_to_do:
        notify_safely(
            run.notifier, Notification(run.run_id, report.status, subject[:100], report.summary(), report=page)
        )
    else:  # a cron'd run with nothing new would notify every time: a log line only (SPEC §7)
        log.info("%s", subject)
    drop_staging(run)
    return report


def drop_staging(run: Run) -> None:
    """Delete the run's staging, its folder too (an object store has none to delete)."""
    for f in run.storage.list(f"_playcount/staging/{run.run_id}"):
        run.storage.delete(f.path)
    if run.storage.exists(f"_playcount/staging/{run.run_id}"):
        run.storage.delete(f"_playcount/staging/{run.run_id}")


def staged_report(run: Run, status: RunStatus = RunStatus.SUCCEEDED, reason: str | None = None) -> RunReport:
    """The run report from the stage results staged so far (whichever process ran them: one CLI
    run, Airflow tasks, Glue jobs), with the seconds each stage took."""
    report = RunReport(
        run_id=run.run_id,
        status=status,
        reason=reason,
        root=run.storage.root,
        run_date=run.run_date,
        started_at=run.started_at,
    )
    timings = run.staging("stages.json")
    if run.storage.exists(timings):
        report.stages = json.loads(run.storage.read_bytes(timings))
    if run.staged("discover"):
        d = run.load("discover", Discovery)
        if d.nothing_to_do and status == RunStatus.SUCCEEDED:
            report.status = RunStatus.NOTHING_TO_DO
            report.reason = "no new stream files" + (
                f"; {len(d.pending)} still being written, left for the next run" if d.pending else ""
            )
        if d.nothing_to_do:
            report.files = [FileOutcome.of(f, FileStatus.PENDING, f.waiting) for f in d.pending]
    if run.staged("validate"):
        validation = run.load("validate", Validation)
        report.files, report.bad_rows = validation.files, validation.bad_rows
        if report.status == RunStatus.SUCCEEDED and validation.status == ValidationStatus.FAILED:
            report.status, report.reason = RunStatus.FAILED, validation.reason
    if run.staged("transform"):
        report.dates = run.load("transform", TransformResult).dates
    if run.staged("load"):
        report.kpi_rows = run.load("load", LoadResult).rows
    if run.staged("archive"):
        report.archived = run.load("archive", ArchiveResult).moved
    return report
