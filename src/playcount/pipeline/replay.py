"""`replay` (SPEC §5): quarantined stream rows re-validated against the merged dimensions; the
rows that pass now become events, the others stay quarantined with their current reasons.

Per bad-rows file (`bad_rows/streams/<run-id>.csv`), in this order, so that a replay killed at
any point and run again gives exactly what one that was not gives:

1. the dates of the rows that pass go into the journal (`Layout.stale_dates`): if what follows is
   cut short, the next run, replay or rebuild recomputes them;
2. their events are written as `processed_data/streams/date=D/replay-<fingerprint>.parquet`,
   named by the bad-rows file's content: a second attempt on the same file writes the same
   parts again, never a second copy;
3. the bad-rows file is replaced (atomically) by its rows still bad, or deleted when none is: a
   row that passed is never replayed again.

Rows quarantined as `malformed row` (their fields are raw text) or `duplicate` (their first
occurrence counts already) are kept as they are: no reference data can change what they are.
"""

from __future__ import annotations

import json
import logging

import ibis
import ibis.expr.types as ir

from playcount import validation as v
from playcount.contracts import DUPLICATE, MALFORMED
from playcount.engine.reading import read_header
from playcount.errors import PlaycountError
from playcount.pipeline.reference import read_dimension
from playcount.pipeline.results import ReplayFile, ReplayResult, TransformResult
from playcount.pipeline.run import Run
from playcount.pipeline.stages import _journal, _set_journal
from playcount.transform import events_of

__all__ = ["replay_quarantine", "quarantine_files"]

log = logging.getLogger("playcount")

_META = ("_source_file", "_line", "_reasons")


def quarantine_files(run: Run) -> tuple[list[str], list[str]]:
    """The stream bad-rows files to replay, oldest run first, and those left alone: a file is
    replayed only when its run succeeded (`_playcount/runs/<run-id>.json`). A run that was killed
    or failed after validate wrote bad rows for files it never finished: those files are read
    again by the next run (which quarantines their rows anew) or were corrected meanwhile, so
    replaying its rows would count what is no longer, or twice."""
    folder = run.layout.bad_rows_dir("streams")
    replayed: list[str] = []
    ignored: list[str] = []
    for f in sorted(run.storage.list(folder), key=lambda f: f.path):
        if not f.name.endswith(".csv") or f.name.startswith(("_", ".")) or f.path != f"{folder}/{f.name}":
            continue
        report = run.layout.run_report(f.name.removesuffix(".csv"))
        ok = run.storage.exists(report) and json.loads(run.storage.read_bytes(report)).get("status") == "succeeded"
        (replayed if ok else ignored).append(f.path)
    return replayed, ignored


def replay_quarantine(run: Run) -> ReplayResult:
    """Replay every stream bad-rows file (see the module); stages the dates whose events changed
    as this run's transform result, for the kpis and load stages that follow."""
    songs, users = read_dimension(run, "songs"), read_dimension(run, "users")
    if songs is None or users is None:
        raise PlaycountError(
            "there are no songs or users dimensions to replay the quarantined rows against",
            fix="run `playcount run` with the songs and users CSVs in the landing zone first",
        )
    folder = run.layout.bad_rows_dir("streams")
    for f in run.storage.list(folder):  # what a replay killed while replacing a file left aside
        if f.name.startswith("_replaying-") and f.path == f"{folder}/{f.name}":
            run.storage.delete(f.path)
    paths, ignored = quarantine_files(run)
    result = ReplayResult(ignored=ignored)
    for path in ignored:
        log.warning("run %s: `%s` is left alone: its run did not succeed", run.run_id, path)
    for n, path in enumerate(paths):
        run.progress("replay", f"bad rows file {n + 1} of {len(paths)}")
        try:
            result.files.append(_replay_file(run, path, songs, users))
        except PlaycountError as e:  # this file only: the others are replayed
            log.warning("run %s: `%s` is not replayed: %s", run.run_id, path, e)
            result.refused[path] = str(e)
    dates = sorted({d for f in result.files for d in f.dates})
    result.dates = dates
    for one in result.files:
        result.replayed += one.replayed
        result.still_bad += one.still_bad
        for rule, k in one.rules.items():
            result.rules[rule] = result.rules.get(rule, 0) + k
    run.save("replay", result)
    run.save("transform", TransformResult(dates=dates, events=result.replayed))
    run.progress("replay", f"{result.replayed:,} row(s) replayed, {result.still_bad:,} still bad")
    return result


def _replay_file(run: Run, path: str, songs: ir.Table, users: ir.Table) -> ReplayFile:
    e = run.engine
    fingerprint = run.storage.fingerprint(path)
    header = read_header(lambda: run.storage.open(path), path)
    has_raw = len(header) >= 4 and header[-4] == "_raw"
    if tuple(header[-3:]) != _META:
        raise PlaycountError(
            f"`{run.storage.uri(path)}` is not a bad-rows file playcount wrote: its last columns are not "
            f"{', '.join(_META)}",
            fix="move the file out of `bad_rows/streams/` (replay reads only the files playcount wrote there)",
        )
    read = e.read_csv(run.storage.uri(path), lambda: run.storage.open(path), path, required=())
    t = read.table
    cols = list(read.columns)
    source, line, reasons = cols[-3:]
    raw_col = cols[-4] if has_raw else None
    originals = cols[: -4 if has_raw else -3]
    rows = int(e.scalar(t.count()))  # type: ignore[call-overload]
    lines = t[line].strip()
    not_lines = int(e.scalar((lines.isnull() | ~lines.re_search(r"^[0-9]{1,18}$")).sum()) or 0)  # type: ignore[call-overload]
    if not_lines:
        read.release()
        raise PlaycountError(
            f"`{run.storage.uri(path)}` has {not_lines} row(s) whose `_line` is not a line number: it was edited by "
            "hand",
            fix="restore their `_line` (the row's line in its source file) and replay again",
        )
    if rows != read.rows:
        read.release()
        raise PlaycountError(
            f"`{run.storage.uri(path)}` has {read.rows - rows} row(s) with the wrong number of fields: it was edited "
            "by hand, and replaying it would lose them",
            fix="correct those rows (or move the file out of `bad_rows/streams/`) and replay again",
        )
    t = e.materialize(
        t.select(
            *originals,
            **({"_raw": t[raw_col]} if raw_col else {}),
            _source_file=t[source],
            _line=t[line].strip().cast("int64"),
            _prev=t[reasons].fill_null(""),
        ),
        "quarantine",
    )
    read.release()
    # rows no reference data can change: their fields are raw text, or their first copy counts
    fixed = t._prev.contains(MALFORMED) | (t._prev == DUPLICATE)
    if raw_col:
        fixed |= t._raw.notnull() & (t._raw != "")
    kept = t.filter(fixed).mutate(_reasons=t._prev).drop("_prev")
    cand = t.filter(~fixed)
    checked = v.check_streams(
        cand.select(*originals, "_source_file", "_line"),
        songs=songs,
        users=users,
        now=run.processing_time,
        persist=lambda x: e.materialize(x, "replay_checked"),
    )
    clean = e.materialize(v.clean_rows(checked), "replayed")
    still = v.bad_rows(checked)
    counts = e.to_arrow(v.rule_counts(checked)).to_pylist()
    rules: dict[str, int] = {}
    for c in counts:
        for rule, k in c.items():
            if rule not in ("_source_file", "rows", "bad") and k:
                rules[rule] = rules.get(rule, 0) + int(k)
    for c in e.to_arrow(kept.group_by("_reasons").aggregate(n=kept.count())).to_pylist():
        for rule in str(c["_reasons"]).split(v.REASON_SEPARATOR):
            rules[rule] = rules.get(rule, 0) + int(c["n"])
    events = events_of(clean)
    by_date = e.to_arrow(events.group_by("date").aggregate(n=events.count()).order_by("date")).to_pylist()
    replayed = sum(int(r["n"]) for r in by_date)
    old = cand.select(_f=cand._source_file, _l=cand._line, _p=cand._prev)
    j = still.join(old, [still._source_file == old._f, still._line == old._l])
    changed = int(e.scalar((j._reasons != j._p).sum()) or 0) if not replayed else 1  # type: ignore[call-overload]
    still_bad = rows - replayed
    out = ReplayFile(path=path, rows=rows, replayed=replayed, still_bad=still_bad, rules=rules)
    if not replayed and not changed:
        return out
    dates = [r["date"] for r in by_date]
    out.dates = dates
    if dates:
        stale, withdrawn = _journal(run)
        _set_journal(run, stale | set(dates), withdrawn)  # 1: before anything is written
        name = f"replay-{fingerprint[:16]}"
        parts = {(d,): run.storage.prepare(run.layout.events(d, name)) for d in dates}
        e.write_parquet_parts(events, ("date",), parts)  # 2: the same names on a second attempt
        out.events = [run.layout.events(d, name) for d in dates]
    if still_bad:  # 3: the rows still bad replace the file (written aside first: it is being read)
        kept_cols = [*originals, *(["_raw"] if raw_col else []), *_META]
        if raw_col:
            still = still.mutate(_raw=ibis.null("string"))
        remaining = e.union([still.select(*kept_cols), kept.select(*kept_cols)], prefix="still_bad")
        remaining = e.materialize(remaining.order_by(["_source_file", "_line"]), "still_bad")
        aside = f"{path.rpartition('/')[0]}/_replaying-{run.run_id}.csv"
        e.write_csv(remaining, run.storage.prepare(aside))
        run.storage.write_bytes(path, run.storage.read_bytes(aside))
        run.storage.delete(aside)
    else:
        run.storage.delete(path)
    log.info("run %s: `%s`: %d row(s) replayed, %d still bad", run.run_id, path, replayed, still_bad)
    return out
