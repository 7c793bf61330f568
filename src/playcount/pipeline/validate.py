"""Stage 2: read and check every new file; quarantine bad rows, reject unusable files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import ibis
import ibis.expr.types as ir

from playcount import dimensions
from playcount import validation as v
from playcount.contracts import CONTRACTS, Contract
from playcount.engine import CsvSource, RawRead
from playcount.engine.base import rows_of
from playcount.engine.reading import is_gzip
from playcount.errors import SchemaError
from playcount.pipeline.discover import (
    _signature,
)
from playcount.pipeline.reference import read_dimension, write_dimension
from playcount.pipeline.results import (
    Discovery,
    FileOutcome,
    FileStatus,
    InputFile,
    StagedPart,
    Validation,
    ValidationStatus,
)
from playcount.pipeline.run import (
    Run,
)
from playcount.transform import events_of

log = logging.getLogger("playcount")


# -- 2. validate -------------------------------------------------------------------------------


@dataclass
class _Checked:
    """One dataset after the rules: the checked table, malformed rows, per-file outcomes."""

    checked: v.Checked | None
    malformed: list[ir.Table]
    outcomes: dict[str, FileOutcome]


def _read(
    run: Run, files: list[InputFile], contract: Contract, first: int = 0, total: int | None = None
) -> tuple[list[RawRead], dict[str, FileOutcome]]:
    """Each of `files` read as text (`Engine.read_csvs`: Spark reads them in one scan); `first`
    and `total` place them among the files of their dataset (a batch of them), for the progress
    display."""
    reads: list[RawRead] = []
    outcomes = {f.name: FileOutcome.of(f) for f in files}
    total = len(files) if total is None else total

    def progress(i: int) -> None:
        if total > 1:  # files done of all, for the progress display
            run.progress("validate", f"{files[i].dataset}: reading file {first + i + 1} of {total}")

    sources = [
        CsvSource(run.storage.uri(f.path), lambda path=f.path: run.storage.open(path), f.name)  # type: ignore[misc]
        for f in files
    ]
    results = run.engine.read_csvs(sources, required=contract.required, progress=progress)
    for f, got in zip(files, results, strict=True):
        outcome = outcomes[f.name]
        if isinstance(got, FileNotFoundError):
            outcome.status, outcome.reason = FileStatus.PENDING, f"`{f.name}` disappeared while the run read it"
            continue
        if isinstance(got, SchemaError):
            outcome.status, outcome.reason = FileStatus.REJECTED, str(got)
        if f.signature is not None and _signature(run, f.path) != f.signature:
            # read while it changed: what was read is not its content; the next run takes it whole
            outcome.status = FileStatus.PENDING
            outcome.reason = f"`{f.name}` changed while the run read it: left in the landing zone for the next run"
            if isinstance(got, RawRead):
                got.release()
            continue
        if isinstance(got, RawRead):
            reads.append(got)
    return reads, outcomes


def _check(
    run: Run,
    files: list[InputFile],
    contract: Contract,
    check: Callable[[ir.Table, v.Persist], v.Checked],
    *,
    made: list[ir.Table] | None = None,
    first: int = 0,
    total: int | None = None,
) -> _Checked:
    """Read, check and count one dataset (or a batch of its files: `first`, `total`); reject files
    over `max_bad_row_ratio`. The tables the checks persist are added to `made`."""
    started = time.perf_counter()
    reads, outcomes = _read(run, files, contract, first, total)
    if not reads:
        return _Checked(None, [], outcomes)
    raw = rows_of(run.engine, reads, prefix=f"raw_{contract.dataset}")

    def persist(t: ir.Table) -> ir.Table:
        table = run.engine.materialize(t, f"checked_{contract.dataset}")
        if made is not None:
            made.append(table)
        return table

    checked = replace(check(raw, persist), raw_columns=tuple(dict.fromkeys(c for r in reads for c in r.columns)))
    for r in reads:
        r.release()  # what the checks persisted is all that is used from here on
    counts = run.engine.to_arrow(v.rule_counts(checked)).to_pylist()
    by_file = {row.pop("_source_file"): row for row in counts}
    limit = run.settings.max_bad_row_ratio
    total = 0
    for r in reads:
        src = outcomes[r.source]
        c = by_file.get(src.name, {"rows": 0, "bad": 0})
        malformed = r.rows - int(c["rows"])
        src.rows = r.rows
        src.bad = int(c["bad"]) + malformed
        src.clean = src.rows - src.bad
        src.rules = {k: int(n) for k, n in c.items() if k not in ("rows", "bad") and n}
        if malformed:
            src.rules[v.MALFORMED] = malformed
        total += r.rows
        share = src.bad / src.rows
        if share > limit:
            src.status = FileStatus.REJECTED
            src.reason = (
                f"`{src.name}`: {src.bad} of {src.rows} rows are bad ({share:.1%}), more than "
                f"max_bad_row_ratio {limit:.0%}; most common: {_top_rules(src.rules)}"
            )
    elapsed = time.perf_counter() - started
    run.progress(
        "validate",
        f"{contract.dataset}: {total:,} rows in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s)",
    )
    return _Checked(checked, [r.malformed for r in reads], outcomes)


def _top_rules(rules: dict[str, int]) -> str:
    top = sorted(rules.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k} ({n})" for k, n in top) or "none"


def _accepted_filter(t: ir.Table, names: list[str]) -> ir.Table:
    return t.filter(t._source_file.isin(names)) if names else t.filter(ibis.literal(False))


def _bad_rows(run: Run, dataset: str, c: _Checked) -> ir.Table | None:
    """The bad rows of the accepted files (checked and malformed), None when there are none."""
    accepted = [o.name for o in c.outcomes.values() if o.status == FileStatus.ACCEPTED]
    parts = []
    if c.checked is not None:
        parts.append(_accepted_filter(v.bad_rows(c.checked), accepted))
    parts += [_accepted_filter(m, accepted) for m in c.malformed]
    if not parts or not sum(o.bad for o in c.outcomes.values() if o.status == FileStatus.ACCEPTED):
        return None
    return run.engine.union(parts, prefix=f"bad_{dataset}")


def _write_bad_rows(run: Run, dataset: str, c: _Checked) -> str | None:
    bad = _bad_rows(run, dataset, c)
    return None if bad is None else _write_bad(run, dataset, [bad])


def _write_bad(run: Run, dataset: str, tables: list[ir.Table]) -> str | None:
    """`tables` (bad rows) as the dataset's one bad-rows CSV of the run, in file and line order."""
    if not tables:
        return None
    bad = run.engine.union(tables, prefix=f"bad_{dataset}")
    cols = [x for x in bad.columns if x not in ("_source_file", "_line", "_reasons", "_raw")]
    ordered = bad.select(*cols, *(["_raw"] if "_raw" in bad.columns else []), "_source_file", "_line", "_reasons")
    path = run.layout.bad_rows(dataset, run.run_id)
    run.engine.write_csv(ordered.order_by(["_source_file", "_line"]), run.storage.prepare(path))
    return path


def _reject(
    run: Run, outcome: FileOutcome, fix: str = "correct the file and drop it into the landing zone again"
) -> None:
    dst = run.layout.rejected(run.run_id, outcome.name)
    run.storage.move(outcome.path, dst)
    error = {
        "run_id": run.run_id,
        "file": outcome.name,
        "dataset": outcome.dataset,
        "fingerprint": outcome.fingerprint,
        "reason": outcome.reason,
        "rows": outcome.rows,
        "bad": outcome.bad,
        "rules": outcome.rules,
        "fix": fix,
    }
    run.storage.write_bytes(dst + ".error.json", json.dumps(error, indent=2).encode())
    outcome.path = dst


def validate(run: Run, discovery: Discovery | None = None, *, dry_run: bool = False) -> Validation:
    """SPEC §1-2 over the reference files and the new stream files.

    Writes bad rows, moves rejected files, upserts the clean reference rows into the merged
    dimensions (streams are checked against those) and stages the clean events of the accepted
    stream files for `transform` (`staged_part`). With `dry_run`, only reports: writes and moves nothing.
    `discovery` defaults to this run's saved `discover` result.
    """
    d = discovery or run.load("discover", Discovery)
    s = run.settings
    missing = [
        f"no {ds} file: put the {ds} CSV in `{run.storage.uri(run.layout.landing(ds))}/`"
        for ds, files in (("songs", d.songs), ("users", d.users))
        if not files
    ]
    files: list[FileOutcome] = []
    bad_paths: dict[str, str] = {}
    parts: list[StagedPart] = []

    def done(status: ValidationStatus, reason: str | None) -> Validation:
        files.extend(FileOutcome.of(f, FileStatus.SKIPPED, "already processed (same content)") for f in d.skipped)
        files.extend(FileOutcome.of(f, FileStatus.PENDING, f.waiting) for f in d.pending)
        result = Validation(status=status, reason=reason, files=files, bad_rows=bad_paths, parts=parts)
        if not dry_run:
            run.save("validate", result)
        return result

    def pending(reason: str) -> list[FileOutcome]:
        return [
            FileOutcome.of(f, FileStatus.PENDING, f"not validated, left in the landing zone: {reason}") for f in d.new
        ]

    unusable = [FileOutcome.of(f, FileStatus.REJECTED, f"`{f.name}` is {f.problem}") for f in d.unusable]
    files.extend(unusable)
    if not dry_run:
        for o in unusable:
            _reject(run, o, fix="replace the link or special file with the CSV file itself")
    waiting_ref = [f.waiting for f in d.pending if f.dataset != "streams"]
    if waiting_ref:
        reason = "reference data still being written: " + "; ".join(str(w) for w in waiting_ref)
        files.extend(pending(reason))
        return done(ValidationStatus.FAILED, reason)

    if missing:
        reason = "; ".join(missing)
        files.extend(pending(reason))
        return done(ValidationStatus.FAILED, reason)

    songs = _check(run, d.songs, CONTRACTS["songs"], v.check_songs)
    users = _check(
        run,
        d.users,
        CONTRACTS["users"],
        lambda raw, persist: v.check_users(
            raw, today=run.processing_time.date(), min_age=s.min_user_age, max_age=s.max_user_age, persist=persist
        ),
    )
    ref_outcomes = [*songs.outcomes.values(), *users.outcomes.values()]
    files.extend(ref_outcomes)
    changed_ref = [o for o in ref_outcomes if o.status == FileStatus.PENDING]
    if changed_ref:
        reason = "reference data changed while the run read it: " + "; ".join(str(o.reason) for o in changed_ref)
        files.extend(pending(reason))
        return done(ValidationStatus.FAILED, reason)
    rejected_ref = [o for o in ref_outcomes if o.status == FileStatus.REJECTED]
    unusable_ref = [o for o in unusable if o.dataset != "streams"]
    rejected_ref += unusable_ref
    if rejected_ref:
        reason = "reference data rejected: " + "; ".join(str(o.reason) for o in rejected_ref)
        if not dry_run:
            for o in rejected_ref[: len(rejected_ref) - len(unusable_ref)]:  # the unusable ones are moved
                _reject(run, o)
        files.extend(pending(reason))
        return done(ValidationStatus.FAILED, reason)
    dims: dict[str, ir.Table] = {}
    for ds, c in (("songs", songs), ("users", users)):
        assert c.checked is not None
        # the merged dimension (SPEC §5): this run's clean rows upserted into the last version
        merged = dimensions.merge(v.clean_rows(c.checked), read_dimension(run, ds), ds)
        dims[ds] = run.engine.materialize(merged, f"dim_{ds}")
        if not dry_run:
            path = _write_bad_rows(run, ds, c)
            if path:
                bad_paths[ds] = path
            write_dimension(run, ds, dims[ds])
            written = read_dimension(run, ds)
            dims[ds] = dims[ds] if written is None else written  # the file: it outlives any cache
    clean_songs, clean_users = dims["songs"], dims["users"]

    outcomes = _validate_streams(run, d.new, clean_songs, clean_users, bad_paths, parts, dry_run=dry_run)
    files.extend(outcomes)
    accepted = [o.name for o in outcomes if o.status == FileStatus.ACCEPTED]
    if not dry_run:
        for o in outcomes:
            if o.status == FileStatus.REJECTED:
                _reject(run, o)
    if d.new and not accepted and all(o.status == FileStatus.REJECTED for o in outcomes):
        reason = "every new stream file was rejected: " + "; ".join(str(o.reason) for o in outcomes)
        return done(ValidationStatus.FAILED, reason)
    return done(ValidationStatus.PASSED, None)


STAGED_EVENTS = "events"
"""The staged event parts, under the run's staging: `events/date=D/<fingerprint>.parquet`."""


def staged_part(run: Run, date: dt.date, fingerprint: str) -> str:
    """Where validate stages the clean events of one accepted stream file on one date: transform
    moves it to `Layout.events` (the same name under the processed events)."""
    return run.staging(f"{STAGED_EVENTS}/date={date.isoformat()}/{fingerprint}.parquet")


def batches(files: list[InputFile], budget: int | None) -> list[list[InputFile]]:
    """`files` in order, cut into batches of at most `budget` bytes (`Engine.batch_bytes`; a
    larger file is a batch alone; a gzip file counts five times its size, about what its text
    holds). None: one batch."""
    if budget is None:
        return [files]
    out: list[list[InputFile]] = []
    size = 0
    for f in files:
        n = f.size * (5 if is_gzip(f.name) else 1)
        if not out or size + n > budget:
            out.append([])
            size = 0
        out[-1].append(f)
        size += n
    return out or [[]]


def _validate_streams(
    run: Run,
    new: list[InputFile],
    songs: ir.Table,
    users: ir.Table,
    bad_paths: dict[str, str],
    parts: list[StagedPart],
    *,
    dry_run: bool,
) -> list[FileOutcome]:
    """Check the new stream files against the merged dimensions, in batches that fit the engine's
    memory (`batches`): per file its outcome and warnings; the clean events of each batch's
    accepted files staged as one Parquet file per (file, date) (`staged_part`, added to `parts`),
    in one partitioned write per batch, straight from the checked rows; the bad rows written once.
    With more than one batch, each batch's tables are dropped before the next is read, so the
    memory a run holds is one batch's, whatever the number of files.

    The events are written here, not by transform, so that the clean rows are written once: a
    stage boundary in between (an Airflow task, a Glue job) would otherwise stage them first and
    transform read them back (about a fifth of a run's time at ten million rows)."""
    if not dry_run:
        for f in run.storage.list(run.staging(STAGED_EVENTS)):  # an earlier attempt's (a retried task)
            run.storage.delete(f.path)
    groups = batches(new, run.engine.batch_bytes)
    outcomes: dict[str, FileOutcome] = {}
    bad: list[ir.Table] = []
    first = 0
    for group in groups:
        made: list[ir.Table] = []
        c = _check(
            run,
            group,
            CONTRACTS["streams"],
            lambda raw, persist: v.check_streams(
                raw, songs=songs, users=users, now=run.processing_time, persist=persist
            ),
            made=made,
            first=first,
            total=len(new),
        )
        first += len(group)
        outcomes.update(c.outcomes)
        accepted = [o.name for o in c.outcomes.values() if o.status == FileStatus.ACCEPTED]
        if c.checked is not None and accepted:
            clean = _accepted_filter(v.clean_rows(c.checked), accepted)
            summary = run.engine.to_arrow(v.clean_summary(clean)).to_pylist()
            found = []
            for row in summary:
                if row["early"]:
                    warnings = c.outcomes[row["_source_file"]].warnings
                    key = "listen_time before created_at"
                    warnings[key] = warnings.get(key, 0) + int(row["early"])
                found.append(StagedPart(file=row["_source_file"], date=row["date"], rows=row["rows"]))
            if not dry_run:
                fp = {o.name: o.fingerprint for o in c.outcomes.values()}
                run.engine.write_parquet_parts(
                    events_of(clean),
                    ("_source_file", "date"),
                    {(p.file, p.date): run.storage.prepare(staged_part(run, p.date, fp[p.file])) for p in found},
                )
            parts += found
        rows = None if dry_run else _bad_rows(run, "streams", c)
        if rows is not None:  # a few: kept past the batch's tables
            bad.append(rows if len(groups) == 1 else run.engine.materialize(rows, "bad_streams"))
        if len(groups) > 1:
            run.engine.drop(made)
    if not dry_run:
        written = _write_bad(run, "streams", bad)
        if written:
            bad_paths["streams"] = written
    return list(outcomes.values())
